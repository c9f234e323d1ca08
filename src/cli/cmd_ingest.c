/* vdx ingest: placeholder until its issue lands. */
#include "cli/cli.h"

int cmd_ingest(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error("'ingest' is not implemented yet");
}

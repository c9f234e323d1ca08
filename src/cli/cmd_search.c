/* vdx search: placeholder until its issue lands. */
#include "cli/cli.h"

int cmd_search(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error("'search' is not implemented yet");
}

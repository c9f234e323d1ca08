/* vdx info: placeholder until its issue lands. */
#include "cli/cli.h"

int cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error("'info' is not implemented yet");
}

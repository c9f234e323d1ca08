/* vdx serve: placeholder until its issue lands. */
#include "cli/cli.h"

int cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error("'serve' is not implemented yet");
}

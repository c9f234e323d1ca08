/* vdx model: placeholder until its issue lands. */
#include "cli/cli.h"

int cmd_model(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error("'model' is not implemented yet");
}

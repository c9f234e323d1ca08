/* vdx embed: placeholder until its issue lands. */
#include "cli/cli.h"

int cmd_embed(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error("'embed' is not implemented yet");
}

/* vdx concept: placeholder until its issue lands. */
#include "cli/cli.h"

int cmd_concept(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error("'concept' is not implemented yet");
}

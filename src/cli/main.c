/* main.c - subcommand dispatch. */
#include <string.h>

#include "ebb/cli.h"
#include "ebb/core.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return ebb_cmd_run(argc, argv);   /* plain `ebb [flags]` is `ebb run` */
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return ebb_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "request") == 0)
        return ebb_cmd_request(argc - 1, argv + 1);
    if (strcmp(cmd, "wait") == 0)
        return ebb_cmd_wait(argc - 1, argv + 1);
    if (strcmp(cmd, "validate") == 0)
        return ebb_cmd_validate(argc - 1, argv + 1);
    if (strcmp(cmd, "drill") == 0)
        return ebb_cmd_drill(argc - 1, argv + 1);
    if (strcmp(cmd, "init") == 0)
        return ebb_cmd_init(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ebb %s\n", EBB_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return ebb_cmd_help(argc - 1, argv + 1);
    fprintf(stderr, "ebb: unknown command \"%s\" (see `ebb help`)\n", cmd);
    return 2;
}

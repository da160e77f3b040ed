/* main.c - subcommand dispatch. */
#include <string.h>

#include "ebb/cli.h"
#include "ebb/core.h"

/* The last path component of argv[0]. */
static const char *prog_name(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    return slash ? slash + 1 : argv0 ? argv0 : "";
}

int main(int argc, char **argv)
{
    /* the image links pilot-agent to ebb, for tools that exec Istio's agent */
    if (strcmp(prog_name(argv[0]), "pilot-agent") == 0)
        return ebb_cmd_pilot_agent(argc, argv);
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

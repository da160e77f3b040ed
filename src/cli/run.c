/* run.c - `ebb run` and `ebb validate`: load configuration, start the sidecar. */
#include <malloc.h>
#include <signal.h>
#include <string.h>

#include "ebb/admin.h"
#include "ebb/cli.h"
#include "ebb/config_load.h"
#include "ebb/control.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/proxy.h"
#include "ebb/server.h"

/* Parses the flags shared by run and validate.  Returns 0 or 2 (usage). */
static int parse_flags(int argc, char **argv, struct ebb_config_args *args, const char *cmd)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && next) {
            args->file = next;
            i++;
        } else if (strcmp(a, "--mesh-config") == 0 && next) {
            args->mesh_file = next;
            i++;
        } else if (strcmp(a, "--pod-annotations") == 0 && next) {
            args->annotations_file = next;
            i++;
        } else if (strcmp(a, "--log-level") == 0 && next) {
            args->log_level = next;
            i++;
        } else {
            fprintf(stderr, "ebb %s: unknown or incomplete flag \"%s\" (see `ebb help %s`)\n",
                    cmd, a, cmd);
            return 2;
        }
    }
    return 0;
}

int ebb_cmd_validate(int argc, char **argv)
{
    struct ebb_config_args args = { 0 };
    struct ebb_config *cfg = NULL;
    char err[1024];

    if (parse_flags(argc, argv, &args, "validate"))
        return 2;
    if (ebb_config_load(&args, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "ebb: config error: %s\n", err);
        return 2;
    }
    char *js = ebb_config_to_json(cfg);
    if (!js) {
        fprintf(stderr, "ebb: out of memory\n");
        ebb_config_free(cfg);
        return 2;
    }
    fputs(js, stdout);
    if (js[0] && js[strlen(js) - 1] != '\n')
        fputc('\n', stdout);
    free(js);
    ebb_config_free(cfg);
    return 0;
}

int ebb_cmd_run(int argc, char **argv)
{
    struct ebb_config_args args = { 0 };
    struct ebb_config *cfg = NULL;
    struct ebb_server srv;
    struct ebb_control ctl;
    struct ebb_admin adm;
    char err[1024];
    sigset_t set;
    int level;

    if (parse_flags(argc, argv, &args, "run"))
        return 2;
    /* Each exchange allocates a few small objects and buffers and frees them when it ends.
     * With glibc's default trim threshold (128 KiB, adjusted dynamically) a burst of
     * streams made every worker arena give memory back to the kernel and take it again
     * (sysmalloc + madvise were 13% of the CPU of an h2load run to an HTTP/1.1 cluster,
     * and req/s fell by a third); a fixed 4 MiB keeps that much per arena instead. */
    mallopt(M_TRIM_THRESHOLD, 4 << 20);
    if (args.log_level && ebb_log_parse_level(args.log_level, &level) < 0) {
        fprintf(stderr, "ebb: --log-level: \"%s\" is not one of error, warn, info, debug\n",
                args.log_level);
        return 2;
    }
    if (ebb_config_load(&args, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "ebb: config error: %s\n", err);
        return 2;
    }
    if (cfg->log_level && ebb_log_parse_level(cfg->log_level, &level) == 0)
        ebb_log_level = level;
    if (args.log_level && ebb_log_parse_level(args.log_level, &level) == 0)
        ebb_log_level = level;

    /* signals go to the control thread's signalfd only: block them before
     * any thread exists so every thread inherits the mask */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (ebb_access_log_open(cfg->access_log, err, sizeof(err)) < 0) {
        fprintf(stderr, "ebb: %s\n", err);
        ebb_config_free(cfg);
        return 2;
    }
    memset(&srv, 0, sizeof(srv));
    memset(&ctl, 0, sizeof(ctl));
    memset(&adm, 0, sizeof(adm));
    srv.argc = argc;
    srv.argv = argv;
    if (ebb_server_init(&srv, cfg, err, sizeof(err)) < 0 ||
        ebb_control_init(&ctl, &srv, err, sizeof(err)) < 0 ||
        ebb_admin_init(&adm, &ctl, err, sizeof(err)) < 0) {
        fprintf(stderr, "ebb: startup failed: %s\n", err);
        ebb_admin_close(&adm);
        ebb_control_free(&ctl);
        ebb_server_free(&srv);
        ebb_config_free(cfg);
        return 2;
    }
    if (ebb_server_start(&srv) < 0) {
        fprintf(stderr, "ebb: cannot start worker threads\n");
        return 2;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct ebb_listener_cfg *lc = &cfg->listeners[i];
        ebb_info("main", "listener %s on %s:%u (%s %s)", lc->name, lc->address, lc->port,
                 lc->direction == EBB_DIR_INBOUND ? "inbound" : "outbound",
                 lc->protocol == EBB_PROTO_HTTP ? "http" : "tcp");
    }
    ebb_info("main", "ebb %s ready: %zu workers, admin %s:%u, status %s:%u, readiness %s:%u, "
             "mode %s", EBB_VERSION, srv.nworkers, cfg->admin_address, cfg->proxy.admin_port,
             cfg->status_address, cfg->proxy.status_port, cfg->ready_address, cfg->ready_port,
             cfg->proxy.exit_on_zero ? "EXIT_ON_ZERO_ACTIVE_CONNECTIONS" : "default");

    int code = ebb_control_run(&ctl);
    ebb_admin_close(&adm);
    ebb_control_free(&ctl);
    ebb_server_free(&srv);
    ebb_config_free(cfg);
    return code;
}

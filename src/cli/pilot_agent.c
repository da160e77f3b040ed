/* pilot_agent.c - ebb invoked as `pilot-agent` (the image's symlink, SPEC §10).
 *
 * Tools and runbooks written for Istio exec pilot-agent in the proxy
 * container: the seed's `kubectl exec ... -- pilot-agent request GET
 * config_dump`, the injection template's `pilot-agent wait` (hold the app
 * until the proxy is ready) and `pilot-agent istio-iptables`.  Each maps onto
 * the ebb command that does the same job, with pilot-agent's flag names.
 * Anything else is refused by name rather than run as something it is not. */
#include <stdio.h>
#include <string.h>

#include "ebb/cli.h"
#include "ebb/core.h"

#define PA_MAX_ARGS 64

/* Matches --name VALUE, --name=VALUE, -name VALUE (cobra accepts all three)
 * at argv[*i]; sets *val and advances *i past what it used. */
static bool take_flag(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    a += a[0] == '-' && a[1] == '-' ? 2 : a[0] == '-' ? 1 : 0;
    if (a == argv[*i] || strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if (a[n] != '\0' || *i + 1 >= argc)
        return false;
    *val = argv[++*i];
    return true;
}

/* pilot-agent request [--debug-port N] METHOD PATH [BODY] -> ebb request. */
static int pa_request(int argc, char **argv)
{
    char *out[PA_MAX_ARGS] = { "request" };
    int n = 1;
    const char *port = NULL;

    for (int i = 1; i < argc; i++) {
        if (take_flag(argc, argv, &i, "debug-port", &port))
            continue;
        if (n >= PA_MAX_ARGS - 3)
            break;
        out[n++] = argv[i];
    }
    if (port) {   /* ebb request wants its flag first */
        memmove(out + 3, out + 1, (size_t)(n - 1) * sizeof(out[0]));
        out[1] = "--port";
        out[2] = (char *)port;
        n += 2;
    }
    out[n] = NULL;
    return ebb_cmd_request(n, out);
}

/* pilot-agent wait [--url U] [--timeoutSeconds S] [--periodMillis MS] -> ebb wait. */
static int pa_wait(int argc, char **argv)
{
    static const char *const map[][2] = { { "url", "--url" }, { "timeoutSeconds", "--timeout" },
                                          { "periodMillis", "--period" } };
    char *out[PA_MAX_ARGS] = { "wait" };
    int n = 1;

    for (int i = 1; i < argc; i++) {
        const char *val = NULL;
        size_t k;
        for (k = 0; k < EBB_ARRAY_LEN(map); k++) {
            if (take_flag(argc, argv, &i, map[k][0], &val))
                break;
        }
        if (k < EBB_ARRAY_LEN(map) && n < PA_MAX_ARGS - 2) {
            out[n++] = (char *)map[k][1];
            out[n++] = (char *)val;
        } else if (k == EBB_ARRAY_LEN(map) && !take_flag(argc, argv, &i, "requestTimeoutMillis", &val)) {
            fprintf(stderr, "pilot-agent wait: unknown flag \"%s\" (ebb supports --url, "
                            "--timeoutSeconds, --periodMillis, --requestTimeoutMillis)\n", argv[i]);
            return 2;
        }
    }
    out[n] = NULL;
    return ebb_cmd_wait(n, out);
}

int ebb_cmd_pilot_agent(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";

    if (strcmp(cmd, "request") == 0)
        return pa_request(argc - 1, argv + 1);
    if (strcmp(cmd, "wait") == 0)
        return pa_wait(argc - 1, argv + 1);
    if (strcmp(cmd, "istio-iptables") == 0)
        return ebb_cmd_init(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0) {
        printf("ebb %s (as pilot-agent)\n", EBB_VERSION);
        return 0;
    }
    fprintf(stderr, "pilot-agent: \"%s\" is not supported by ebb; as pilot-agent it runs "
                    "request, wait, istio-iptables, version (the sidecar itself is `ebb run`)\n",
            cmd);
    return 2;
}

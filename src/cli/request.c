/* request.c - `ebb request` and `ebb wait`. */
#include <string.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/cli.h"
#include "ebb/core.h"
#include "ebb/loop.h"
#include "ebb/parse.h"

int ebb_cmd_request(int argc, char **argv)
{
    uint64_t port = 15000;
    int i = 1;

    if (i < argc && strcmp(argv[i], "--port") == 0) {
        if (i + 1 >= argc || ebb_parse_uint(argv[i + 1], 1, 65535, &port) < 0) {
            fprintf(stderr, "ebb request: --port needs a port number (1-65535)\n");
            return 2;
        }
        i += 2;
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: ebb request [--port N] METHOD PATH [BODY]\n");
        return 2;
    }
    const char *method = argv[i], *p = argv[i + 1], *body = i + 2 < argc ? argv[i + 2] : NULL;
    char path[2048];
    /* pilot-agent style: "config_dump" means "/config_dump" */
    snprintf(path, sizeof(path), "%s%s", p[0] == '/' ? "" : "/", p);
    struct ebb_buf out = { .max = 64 << 20 };
    int status = 0;
    int rc = ebb_http_request("127.0.0.1", (uint16_t)port, method, path, body, 10000, &status, &out);
    if (rc < 0) {
        fprintf(stderr, "ebb request: 127.0.0.1:%llu: %s\n", (unsigned long long)port,
                ebb_strerror(rc));
        ebb_buf_free(&out);
        return 1;
    }
    if (ebb_buf_len(&out))
        fwrite(ebb_buf_start(&out), 1, ebb_buf_len(&out), stdout);
    ebb_buf_free(&out);
    return status >= 400 && status != 404 ? 1 : 0;
}

/* Parses http://host:port/path into its parts. */
static int parse_url(const char *url, char *host, size_t hlen, uint16_t *port, char *path,
                     size_t plen)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    const char *slash = strchr(p, '/');
    size_t hp = slash ? (size_t)(slash - p) : strlen(p);
    char hostport[256];
    if (hp == 0 || hp >= sizeof(hostport))
        return EBB_EINVAL;
    memcpy(hostport, p, hp);
    hostport[hp] = '\0';
    snprintf(path, plen, "%s", slash ? slash : "/");
    char *colon = strrchr(hostport, ':');
    uint64_t pn = 80;
    if (colon && !strchr(colon, ']')) {
        *colon = '\0';
        if (ebb_parse_uint(colon + 1, 1, 65535, &pn) < 0)
            return EBB_EINVAL;
    }
    char *h = hostport;
    if (h[0] == '[') {
        h++;
        char *rb = strchr(h, ']');
        if (rb)
            *rb = '\0';
    }
    snprintf(host, hlen, "%s", h);
    *port = (uint16_t)pn;
    return 0;
}

int ebb_cmd_wait(int argc, char **argv)
{
    const char *url = "http://127.0.0.1:15021/healthz/ready";
    uint64_t timeout_s = 60, period_ms = 500;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            uint64_t ms;
            if (ebb_parse_uint(argv[i + 1], 0, 86400, &timeout_s) < 0) {
                if (ebb_parse_duration_ms(argv[i + 1], &ms) < 0) {
                    fprintf(stderr, "ebb wait: --timeout: \"%s\" is not seconds or a Go duration\n",
                            argv[i + 1]);
                    return 2;
                }
                timeout_s = (ms + 999) / 1000;
            }
            i++;
        } else if (strcmp(argv[i], "--period") == 0 && i + 1 < argc) {
            if (ebb_parse_uint(argv[++i], 1, 60000, &period_ms) < 0) {
                fprintf(stderr, "ebb wait: --period: \"%s\" is not milliseconds\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: ebb wait [--url U] [--timeout S] [--period MS]\n");
            return 2;
        }
    }
    char host[256], path[1024];
    uint16_t port;
    if (parse_url(url, host, sizeof(host), &port, path, sizeof(path)) < 0) {
        fprintf(stderr, "ebb wait: bad url \"%s\"\n", url);
        return 2;
    }
    uint64_t deadline = ebb_now_ms() + timeout_s * 1000;
    for (;;) {
        struct ebb_buf out = { 0 };
        int status = 0;
        int rc = ebb_http_request(host, port, "GET", path, NULL, period_ms < 1000 ? 1000 : period_ms,
                                  &status, &out);
        ebb_buf_free(&out);
        if (rc == 0 && status == 200) {
            fprintf(stderr, "ebb wait: %s is ready\n", url);
            return 0;
        }
        if (ebb_now_ms() + period_ms > deadline) {
            fprintf(stderr, "ebb wait: %s not ready after %llus (last: %s)\n", url,
                    (unsigned long long)timeout_s, rc < 0 ? ebb_strerror(rc) : "not 200");
            return 1;
        }
        usleep((useconds_t)(period_ms * 1000));
    }
}

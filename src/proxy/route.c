/* route.c - outbound routing by authority, request ids, access log. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/config.h"
#include "ebb/core.h"
#include "ebb/conn.h"
#include "ebb/listener.h"
#include "ebb/proxy.h"

static size_t host_len(const char *a, size_t len)
{
    /* strip ":port"; keep "[v6]" whole */
    if (len && a[0] == '[') {
        const char *rb = memchr(a, ']', len);
        return rb ? (size_t)(rb - a) + 1 : len;
    }
    const char *colon = memchr(a, ':', len);
    return colon ? (size_t)(colon - a) : len;
}

long ebb_route(const struct ebb_listener *l, const char *authority, size_t len)
{
    const struct ebb_listener_cfg *lc = l->cfg;
    size_t hl = host_len(authority, len);

    if (lc->direction == EBB_DIR_INBOUND || lc->nroutes == 0)
        return lc->cluster ? (long)lc->cluster_idx : -1;
    for (size_t i = 0; i < lc->nroutes; i++) {
        const struct ebb_route_cfg *r = &lc->routes[i];
        if (strcmp(r->host, "*") == 0)
            return (long)r->cluster_idx;
        size_t rl = strlen(r->host);
        size_t rhl = host_len(r->host, rl);
        /* a route with a port must match the port too */
        if (rhl != rl) {
            if (rl == len && strncasecmp(r->host, authority, len) == 0)
                return (long)r->cluster_idx;
        } else if (rl == hl && strncasecmp(r->host, authority, hl) == 0) {
            return (long)r->cluster_idx;
        }
    }
    return -1;
}

/* The built-in cluster of a captured connection's original destination (SPEC §9.2, §9.3). */
static long route_original(const struct ebb_conn *c, const struct ebb_config *cfg)
{
    if (c->l->cfg->direction == EBB_DIR_INBOUND)
        return (long)(c->orig_dst.sa.sa_family == AF_INET6 ? cfg->builtin.inbound6
                                                          : cfg->builtin.inbound4);
    return (long)(cfg->capture.outbound_policy == EBB_REGISTRY_ONLY ? cfg->builtin.blackhole
                                                                    : cfg->builtin.passthrough);
}

long ebb_route_conn(const struct ebb_conn *c, const struct ebb_config *cfg,
                    const char *authority, size_t len)
{
    const struct ebb_listener_cfg *lc = c->l->cfg;

    if (!(c->flags & EBB_CONN_F_REDIRECTED))
        return ebb_route(c->l, authority, len);
    if (lc->direction == EBB_DIR_INBOUND || lc->nroutes == 0)
        return route_original(c, cfg);
    long r = ebb_route(c->l, authority, len);
    return r >= 0 ? r : route_original(c, cfg);
}

long ebb_route_tcp(const struct ebb_conn *c, const struct ebb_config *cfg)
{
    const struct ebb_listener_cfg *lc = c->l->cfg;

    /* an outbound tcp listener's cluster is a route: it wins, as routes do for HTTP */
    if (!(c->flags & EBB_CONN_F_REDIRECTED) ||
        (lc->direction == EBB_DIR_OUTBOUND && lc->protocol == EBB_PROTO_TCP))
        return lc->cluster ? (long)lc->cluster_idx : -1;
    return route_original(c, cfg);
}

bool ebb_capture_loop(const struct ebb_conn *c, const struct ebb_config *cfg)
{
    if (!(c->flags & EBB_CONN_F_REDIRECTED))
        return false;
    uint16_t port = ntohs(c->orig_dst.sa.sa_family == AF_INET6 ? c->orig_dst.in6.sin6_port
                                                                : c->orig_dst.in.sin_port);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (cfg->listeners[i].port == port)
            return true;
    }
    return false;
}

void ebb_request_id(uint32_t *rand_state, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t r = ebb_rand(rand_state);
        memcpy(b + i, &r, 4);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

static int access_fd = -1;

int ebb_access_log_open(const char *spec, char *err, size_t errlen)
{
    if (!spec || strcmp(spec, "-") == 0) {
        access_fd = STDOUT_FILENO;
        return 0;
    }
    if (strcmp(spec, "off") == 0) {
        access_fd = -1;
        return 0;
    }
    access_fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (access_fd < 0) {
        snprintf(err, errlen, "access_log: cannot open \"%s\": %s", spec, strerror(errno));
        return EBB_EIO;
    }
    return 0;
}

const char *ebb_rf_str(unsigned flags, char *buf, size_t len)
{
    static const struct { unsigned f; const char *s; } names[] = {
        { EBB_RF_UF, "UF" }, { EBB_RF_UT, "UT" }, { EBB_RF_UC, "UC" }, { EBB_RF_URX, "URX" },
        { EBB_RF_DC, "DC" }, { EBB_RF_DR, "DR" }, { EBB_RF_NR, "NR" },
    };
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < EBB_ARRAY_LEN(names); i++) {
        if (!(flags & names[i].f))
            continue;
        int n = snprintf(buf + o, len - o, "%s%s", o ? "," : "", names[i].s);
        if (n < 0 || (size_t)n >= len - o)
            break;
        o += (size_t)n;
    }
    if (o == 0)
        snprintf(buf, len, "-");
    return buf;
}

void ebb_access_log(const struct ebb_access *a)
{
    struct ebb_buf b = { .max = 16384 };
    char rf[64];
    struct timespec ts;

    if (access_fd < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    ebb_buf_appendf(&b, "{\"start_time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec, ts.tv_nsec / 1000000);
    ebb_buf_appendf(&b, ",\"listener\":"); ebb_buf_append_json_str(&b, a->listener);
    ebb_buf_appendf(&b, ",\"method\":"); ebb_buf_append_json_str(&b, a->method);
    ebb_buf_appendf(&b, ",\"authority\":"); ebb_buf_append_json_str(&b, a->authority);
    ebb_buf_appendf(&b, ",\"path\":"); ebb_buf_append_json_str(&b, a->path);
    ebb_buf_appendf(&b, ",\"protocol\":"); ebb_buf_append_json_str(&b, a->protocol);
    ebb_buf_appendf(&b, ",\"status\":%d,\"bytes_received\":%llu,\"bytes_sent\":%llu,"
                    "\"duration_ms\":%llu", a->status, (unsigned long long)a->bytes_received,
                    (unsigned long long)a->bytes_sent, (unsigned long long)a->duration_ms);
    ebb_buf_appendf(&b, ",\"upstream_host\":"); ebb_buf_append_json_str(&b, a->upstream_host ? a->upstream_host : "-");
    ebb_buf_appendf(&b, ",\"upstream_cluster\":"); ebb_buf_append_json_str(&b, a->upstream_cluster ? a->upstream_cluster : "-");
    ebb_buf_appendf(&b, ",\"response_flags\":"); ebb_buf_append_json_str(&b, ebb_rf_str(a->flags, rf, sizeof(rf)));
    ebb_buf_appendf(&b, ",\"x_request_id\":"); ebb_buf_append_json_str(&b, a->request_id);
    ebb_buf_appendf(&b, ",\"downstream_remote_address\":"); ebb_buf_append_json_str(&b, a->peer);
    ebb_buf_append(&b, "}\n", 2);
    if (ebb_buf_len(&b)) {
        ssize_t n = write(access_fd, ebb_buf_start(&b), ebb_buf_len(&b));
        (void)n;
    }
    ebb_buf_free(&b);
}

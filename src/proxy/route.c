/* route.c - outbound routing by authority (and of captured connections), request ids. */
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

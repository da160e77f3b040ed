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

/* The eight lower-case hex digits of v, most significant first, computed eight at a time:
 * each nibble spread into a byte of its own, then '0' added, and 39 more to those above 9. */
static void hex8(char *out, uint32_t v)
{
    uint64_t x = v;
    x = (x | x << 16) & 0x0000ffff0000ffffull;
    x = (x | x << 8) & 0x00ff00ff00ff00ffull;
    x = (x | x << 4) & 0x0f0f0f0f0f0f0f0full;   /* byte i: nibble i */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);                    /* memory order: the top nibble first */
#endif
    uint64_t above9 = ((x + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
    x += 0x3030303030303030ull + above9 * 39;
    memcpy(out, &x, 8);
}

void ebb_request_id(uint32_t *rand_state, char out[37])
{
    char t[8];

    /* 8-4-4-4-12 hex digits, version 4, variant 10xx (RFC 9562 §5.4) */
    hex8(out, ebb_rand(rand_state));
    out[8] = '-';
    hex8(t, ebb_rand(rand_state));
    memcpy(out + 9, t, 4);
    out[13] = '-';
    memcpy(out + 14, t + 4, 4);
    out[14] = '4';
    uint32_t r = ebb_rand(rand_state);
    hex8(t, r);
    out[18] = '-';
    memcpy(out + 19, t, 4);
    out[19] = "89ab"[r >> 30];
    out[23] = '-';
    memcpy(out + 24, t + 4, 4);
    hex8(out + 28, ebb_rand(rand_state));
    out[36] = '\0';
}

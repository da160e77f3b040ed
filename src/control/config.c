/*
 * config.c - ebb.yaml: the built-in default, reading it with the directive
 * tables (config_table.c), the checks that span several keys (clusters
 * named by listeners and routes, distinct ports), and ebb_config_load(),
 * which merges the ProxyConfig sources (proxy_config.c) under it.
 *
 * Every error is one line "where: key.path: reason" with the bad value
 * quoted; "where" is "file:line" for files (docs/config.md).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ebb/config_sources.h"
#include "ebb/config_table.h"
#include "ebb/config_walk.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/parse.h"

/* ------------------------------------------------------------------ */
/* defaults and freeing                                               */

void ebb_config_free(struct ebb_config *cfg)
{
    if (!cfg)
        return;
    ebb_dfree(&ebb_file_section, cfg);
    free(cfg);
}

static void cluster_defaults(struct ebb_cluster_cfg *c)
{
    ebb_ddefaults(&ebb_cluster_section, c);
}

static void listener_defaults(struct ebb_listener_cfg *l)
{
    ebb_ddefaults(&ebb_listener_section, l);
    l->cluster_idx = EBB_NO_CLUSTER;
}

static void default_listener(struct ebb_listener_cfg *l, const char *name, const char *address,
                             uint16_t port, enum ebb_direction direction)
{
    listener_defaults(l);
    l->name = ebb_xstrdup(name);
    l->address = ebb_xstrdup(address);
    l->port = port;
    l->direction = direction;
}

/* Listener inbound 0.0.0.0:15006 -> cluster inbound (127.0.0.1:8080);
 * listener outbound 127.0.0.1:15001 without routes. */
static void default_topology(struct ebb_config *cfg)
{
    struct ebb_cluster_cfg *c;

    cfg->clusters = ebb_xcalloc(1, sizeof(*cfg->clusters));
    cfg->nclusters = 1;
    c = &cfg->clusters[0];
    cluster_defaults(c);
    c->name = ebb_xstrdup("inbound");
    c->endpoints = ebb_xcalloc(1, sizeof(*c->endpoints));
    c->nendpoints = 1;
    c->endpoints[0].host = ebb_xstrdup("127.0.0.1");
    c->endpoints[0].port = 8080;

    cfg->listeners = ebb_xcalloc(2, sizeof(*cfg->listeners));
    cfg->nlisteners = 2;
    default_listener(&cfg->listeners[0], "inbound", "0.0.0.0", 15006, EBB_DIR_INBOUND);
    cfg->listeners[0].cluster = ebb_xstrdup("inbound");
    cfg->listeners[0].cluster_idx = 0;
    default_listener(&cfg->listeners[1], "outbound", "127.0.0.1", 15001, EBB_DIR_OUTBOUND);
}


/* ------------------------------------------------------------------ */
/* ebb.yaml                                                           */

/* One ebb.yaml being read, and what is kept for the checks made after the
 * merge with the ProxyConfig sources. */
struct file_ctx {
    struct ebb_ydoc    d;
    struct ebb_dctx    x;               /* the walk: ports remember their nodes */
    struct ebb_pc_src  pc;              /* proxy_config: */
    struct ebb_config *cfg;
    const yaml_node_t *clusters_node;   /* read before everything else */
    const yaml_node_t *listeners_node;
};

static void file_ctx_free(struct file_ctx *fc)
{
    ebb_ydoc_free(&fc->d);
    ebb_pc_src_free(&fc->pc);
    free(fc->x.nodes);
}

/* One item of a list being read. */
struct list_item {
    const char *list;    /* the list's key path, "listeners" */
    const char *path;    /* this item's, "listeners[2]" */
    void       *owner;   /* the struct holding the list */
    void       *item;    /* the zeroed item to fill */
    size_t      index;
};

typedef int (*item_fn)(struct file_ctx *fc, const yaml_node_t *n, const struct list_item *it);

static size_t find_cluster(const struct ebb_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nclusters; i++) {
        if (strcmp(cfg->clusters[i].name, name) == 0)
            return i;
    }
    return EBB_NO_CLUSTER;
}

/* The value node of the directive name in what ebb_dparse() saw. */
static const yaml_node_t *seen_node(const struct ebb_dsection *sec, const yaml_node_t **seen,
                                    const char *name)
{
    return seen[ebb_dfind(sec, name) - sec->d];
}

/* "host:port" or "[v6]:port". */
static int parse_endpoint(struct file_ctx *fc, const yaml_node_t *v, const struct list_item *it)
{
    const struct ebb_ydoc *d = &fc->d;
    const char *path = it->path;
    char *err = fc->x.err;
    size_t errlen = fc->x.errlen;
    struct ebb_endpoint *ep = it->item;
    const char *s, *host, *port_s;
    size_t hlen;
    uint64_t port;
    char q[96];
    int rc = ebb_ystr(d, v, path, &s, err, errlen);

    if (rc)
        return rc;
    ebb_quote(s, strlen(s), q, sizeof(q));
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            goto bad;
        host = s + 1;
        hlen = (size_t)(rb - host);
        port_s = rb + 2;
        char *h = ebb_xstrndup(host, hlen);
        unsigned char buf[16];
        bool ok = inet_pton(AF_INET6, h, buf) == 1;
        free(h);
        if (!ok)
            return ebb_yerr(d, v, path, err, errlen, "%s: not an IPv6 address inside []", q);
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            goto bad;
        host = s;
        hlen = (size_t)(colon - s);
        port_s = colon + 1;
        if (memchr(host, ':', hlen))
            return ebb_yerr(d, v, path, err, errlen,
                            "%s: an IPv6 address needs brackets, e.g. [::1]:8080", q);
        if (hlen == 0 || hlen > 253)
            goto bad;
        for (size_t i = 0; i < hlen; i++) {
            char c = host[i];
            if (!(isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_'))
                return ebb_yerr(d, v, path, err, errlen,
                                "%s: \"%.*s\" is not an IP address or host name", q, (int)hlen,
                                host);
        }
    }
    if (ebb_parse_uint(port_s, 1, 65535, &port) != 0)
        return ebb_yerr(d, v, path, err, errlen, "%s: \"%s\" is not a port (1-65535)", q, port_s);
    ep->host = ebb_xstrndup(host, hlen);
    ep->port = (uint16_t)port;
    return 0;
bad:
    return ebb_yerr(d, v, path, err, errlen,
                    "%s is not host:port (e.g. 127.0.0.1:8080, [::1]:8080, app.local:80)", q);
}

/* The clusters every config has (SPEC §9.4), named as Envoy names them in an Istio sidecar. */
static const struct {
    const char           *name;
    enum ebb_cluster_kind kind;
    const char           *bind;
    size_t                off;   /* its index's place in struct ebb_builtin_clusters */
} builtin_clusters[] = {
    { "InboundPassthroughClusterIpv4", EBB_CLUSTER_ORIGINAL_DST, "127.0.0.6",
      offsetof(struct ebb_builtin_clusters, inbound4) },
    { "InboundPassthroughClusterIpv6", EBB_CLUSTER_ORIGINAL_DST, "::6",
      offsetof(struct ebb_builtin_clusters, inbound6) },
    { "PassthroughCluster", EBB_CLUSTER_ORIGINAL_DST, NULL,
      offsetof(struct ebb_builtin_clusters, passthrough) },
    { "BlackHoleCluster", EBB_CLUSTER_BLACKHOLE, NULL,
      offsetof(struct ebb_builtin_clusters, blackhole) },
};

/* Appends the built-in clusters after the configured ones. */
static void add_builtin_clusters(struct ebb_config *cfg)
{
    size_t n = cfg->nclusters, nb = EBB_ARRAY_LEN(builtin_clusters);
    struct ebb_cluster_cfg *c = realloc(cfg->clusters, (n + nb) * sizeof(*c));

    if (!c) {
        fprintf(stderr, "ebb: out of memory\n");
        exit(2);
    }
    cfg->clusters = c;
    for (size_t i = 0; i < nb; i++) {
        struct ebb_cluster_cfg *b = &c[n + i];
        memset(b, 0, sizeof(*b));
        cluster_defaults(b);
        b->name = ebb_xstrdup(builtin_clusters[i].name);
        b->kind = builtin_clusters[i].kind;
        b->bind_address = builtin_clusters[i].bind ? ebb_xstrdup(builtin_clusters[i].bind) : NULL;
        *(size_t *)((char *)&cfg->builtin + builtin_clusters[i].off) = n + i;
        cfg->nclusters++;
    }
}

static int parse_cluster(struct file_ctx *fc, const yaml_node_t *n, const struct list_item *it)
{
    struct ebb_cluster_cfg *c = it->item;
    const yaml_node_t *seen[EBB_DSECTION_MAX];
    int rc;

    cluster_defaults(c);
    rc = ebb_dparse(&fc->x, n, it->path, &ebb_cluster_section, c, seen);
    if (rc)
        return rc;
    for (size_t i = 0; i < EBB_ARRAY_LEN(builtin_clusters); i++) {
        if (strcmp(c->name, builtin_clusters[i].name) == 0) {
            char sub[256];
            ebb_ypath(sub, sizeof(sub), it->path, "name");
            return ebb_yerr(&fc->d, seen_node(&ebb_cluster_section, seen, "name"), sub,
                            fc->x.err, fc->x.errlen, "\"%s\" is a built-in cluster (SPEC "
                            "§9.4); pick another name", c->name);
        }
    }
    return 0;
}

/* The built-in config without the built-in clusters: ebb.yaml's clusters replace its own. */
static struct ebb_config *config_base(void)
{
    struct ebb_config *cfg = ebb_xcalloc(1, sizeof(*cfg));

    ebb_proxy_config_default(&cfg->proxy);
    ebb_ddefaults(&ebb_file_section, cfg);
    cfg->drain.idle_close_after_ms = cfg->proxy.min_drain_ms;
    default_topology(cfg);
    return cfg;
}

struct ebb_config *ebb_config_default(void)
{
    struct ebb_config *cfg = config_base();

    add_builtin_clusters(cfg);
    return cfg;
}

/* One port of a PORTS list. */
static int parse_port(struct file_ctx *fc, const yaml_node_t *n, const struct list_item *it)
{
    uint64_t port;
    int rc = ebb_yuint(&fc->d, n, it->path, 1, 65535, "a port", &port, fc->x.err, fc->x.errlen);

    if (rc == 0)
        *(uint16_t *)it->item = (uint16_t)port;
    return rc;
}

static int parse_route(struct file_ctx *fc, const yaml_node_t *n, const struct list_item *it)
{
    const struct ebb_listener_cfg *l = it->owner;
    struct ebb_route_cfg *r = it->item;
    const yaml_node_t *seen[EBB_DSECTION_MAX];
    char sub[256];
    int rc = ebb_dparse(&fc->x, n, it->path, &ebb_route_section, r, seen);

    if (rc)
        return rc;
    r->cluster_idx = find_cluster(fc->cfg, r->cluster);
    if (r->cluster_idx == EBB_NO_CLUSTER) {
        ebb_ypath(sub, sizeof(sub), it->path, "cluster");
        return ebb_yerr(&fc->d, seen_node(&ebb_route_section, seen, "cluster"), sub,
                        fc->x.err, fc->x.errlen,
                        "\"%s\" is not a cluster defined in clusters", r->cluster);
    }
    for (size_t j = 0; j < it->index; j++) {
        if (strcmp(l->routes[j].host, "*") == 0) {
            ebb_ywarn(&fc->d, n, it->path, "unreachable: %s[%zu] (\"*\") matches first",
                      it->list, j);
            break;
        }
        if (strcmp(l->routes[j].host, r->host) == 0) {
            ebb_ywarn(&fc->d, n, it->path, "unreachable: %s[%zu] has the same host",
                      it->list, j);
            break;
        }
    }
    return 0;
}

/* Direction/protocol/cluster/routes consistency of one listener. */
static int check_listener(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                          struct ebb_listener_cfg *l, const yaml_node_t *cluster_node,
                          const struct ebb_config *cfg, char *err, size_t errlen)
{
    bool outbound_http = l->direction == EBB_DIR_OUTBOUND && l->protocol == EBB_PROTO_HTTP;
    char sub[256];

    if (l->nroutes && !outbound_http)
        return ebb_yerr(d, n, path, err, errlen,
                        "routes: only outbound http listeners route by host; %s listeners use "
                        "cluster", l->direction == EBB_DIR_INBOUND ? "inbound" : "tcp");
    if (outbound_http && l->cluster)
        return ebb_yerr(d, cluster_node, path, err, errlen,
                        "cluster: outbound http listeners route by host: use routes (a \"*\" "
                        "route catches all)");
    if (!outbound_http && !l->cluster)
        return ebb_yerr(d, n, path, err, errlen, "cluster: missing (%s listeners need one)",
                        l->direction == EBB_DIR_INBOUND ? "inbound" : "outbound tcp");
    if (l->cluster) {
        l->cluster_idx = find_cluster(cfg, l->cluster);
        if (l->cluster_idx == EBB_NO_CLUSTER) {
            ebb_ypath(sub, sizeof(sub), path, "cluster");
            return ebb_yerr(d, cluster_node ? cluster_node : n, sub, err, errlen,
                            "\"%s\" is not a cluster defined in clusters", l->cluster);
        }
    }
    return 0;
}

static int parse_listener(struct file_ctx *fc, const yaml_node_t *n, const struct list_item *it)
{
    struct ebb_listener_cfg *l = it->item;
    const yaml_node_t *seen[EBB_DSECTION_MAX];
    int rc;

    listener_defaults(l);
    rc = ebb_dparse(&fc->x, n, it->path, &ebb_listener_section, l, seen);
    if (rc)
        return rc;
    if (!l->address)
        l->address = ebb_xstrdup(l->direction == EBB_DIR_INBOUND ? "0.0.0.0" : "127.0.0.1");
    if (!l->name) {
        char name[80];
        ebb_listener_addr_name(l->address, l->port, name, sizeof(name));
        l->name = ebb_xstrdup(name);
    }
    return check_listener(&fc->d, n, it->path, l, seen_node(&ebb_listener_section, seen,
                          "cluster"), fc->cfg, fc->x.err, fc->x.errlen);
}

void ebb_listener_addr_name(const char *address, unsigned port, char *out, size_t len)
{
    char a[64];
    size_t n = 0;

    for (const char *p = address; *p && n + 1 < sizeof(a); p++)
        a[n++] = *p == ':' ? '_' : *p;
    a[n] = '\0';
    snprintf(out, len, strchr(address, ':') ? "[%s]_%u" : "%s_%u", a, port);
}

/* The name of item i (a listener or cluster) must differ from the earlier ones. */
static int check_unique_name(struct file_ctx *fc, const struct ebb_directive *dir, char *arr,
                             const yaml_node_t *n, const struct list_item *it)
{
    const struct ebb_directive *name = ebb_dfind(dir->sub, "name");
    const char *mine = *(char **)(arr + it->index * dir->elem_size + name->off);

    for (size_t j = 0; j < it->index; j++) {
        if (strcmp(*(char **)(arr + j * dir->elem_size + name->off), mine) == 0)
            return ebb_yerr(&fc->d, n, it->path, fc->x.err, fc->x.errlen,
                            "name: \"%s\" is already used by %s[%zu]", mine, it->list, j);
    }
    return 0;
}

/* A LIST, ENDPOINTS or PORTS value: replaces the list at base with v's items. */
static int parse_list(struct file_ctx *fc, const struct ebb_directive *dir, const yaml_node_t *v,
                      const char *path, void *base, item_fn parse_item)
{
    char **arr = (char **)((char *)base + dir->off);
    size_t *count = (size_t *)((char *)base + dir->count_off), n;
    int rc = ebb_yseq(&fc->d, v, path, dir->max, fc->x.err, fc->x.errlen);

    if (rc)
        return rc;
    n = EBB_YSEQ_LEN(v);
    if (n < dir->min)
        return ebb_yerr(&fc->d, v, path, fc->x.err, fc->x.errlen, "must list at least one %s",
                        dir->unit);
    ebb_dfree_list(dir, base);
    *arr = ebb_xcalloc(n ? n : 1, dir->elem_size);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *in = ebb_ynode(&fc->d, v->data.sequence.items.start[i]);
        char ipath[256];
        snprintf(ipath, sizeof(ipath), "%.200s[%zu]", path, i);
        struct list_item it = { path, ipath, base, *arr + i * dir->elem_size, i };
        (*count)++;   /* counted first so a half-read item is freed */
        rc = parse_item(fc, in, &it);
        if (rc == 0 && dir->sub && ebb_dfind(dir->sub, "name") &&
            (ebb_dfind(dir->sub, "name")->flags & EBB_D_F_UNIQUE))
            rc = check_unique_name(fc, dir, *arr, in, &it);
        if (rc)
            return rc;
    }
    return 0;
}

/* LIST, ENDPOINTS, PORTS and PROXY_CONFIG values of ebb.yaml. */
static int file_hook(struct ebb_dctx *x, const struct ebb_directive *dir, const yaml_node_t *v,
                     const char *path, void *base)
{
    struct file_ctx *fc = x->arg;

    switch (dir->kind) {
    case EBB_D_PROXY_CONFIG:
        return ebb_pc_parse(&fc->d, v, path, &fc->pc, x->err, x->errlen);
    case EBB_D_ENDPOINTS:
        return parse_list(fc, dir, v, path, base, parse_endpoint);
    case EBB_D_PORTS:
        return parse_list(fc, dir, v, path, base, parse_port);
    case EBB_D_LIST:
        if (dir->sub == &ebb_route_section)
            return parse_list(fc, dir, v, path, base, parse_route);
        if (dir->sub == &ebb_cluster_section)   /* read first, by parse_file_root() */
            return v == fc->clusters_node ? 0 : parse_list(fc, dir, v, path, base,
                                                           parse_cluster);
        fc->listeners_node = v;
        return parse_list(fc, dir, v, path, base, parse_listener);
    default:
        return ebb_yerr(&fc->d, v, path, x->err, x->errlen, "not allowed in ebb.yaml");
    }
}

static int parse_file_root(struct file_ctx *fc, struct ebb_config *cfg)
{
    struct ebb_ydoc *d = &fc->d;
    const yaml_node_t *root = ebb_ydoc_root(d), *v;
    const char *k;
    int rc;

    fc->cfg = cfg;
    if (!root || ebb_ynull(root))
        return 0;
    rc = ebb_ymap(d, root, "", true, fc->x.err, fc->x.errlen);
    if (rc)
        return rc;
    /* clusters first: listeners and routes name them */
    EBB_YMAP_EACH(d, root, pair, k, v) {
        if (ebb_ykey_is(k, "clusters") && !ebb_ynull(v)) {
            rc = parse_list(fc, ebb_dfind(&ebb_file_section, "clusters"), v, "clusters", cfg,
                            parse_cluster);
            if (rc)
                return rc;
            fc->clusters_node = v;
        }
    }
    rc = ebb_dparse(&fc->x, root, "", &ebb_file_section, cfg, NULL);
    if (rc)
        return rc;
    /* the head limit covers the request line too: a larger line limit is moot, and the
     * read buffer is sized to hold a whole head whatever buffer_size says */
    if (cfg->limits.h1.max_line > cfg->limits.h1.max_head)
        cfg->limits.h1.max_line = cfg->limits.h1.max_head;
    /* clusters: replaced but listeners: kept: the built-in listeners must still resolve */
    if (fc->clusters_node && !fc->listeners_node) {
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            struct ebb_listener_cfg *l = &cfg->listeners[i];
            if (!l->cluster)
                continue;
            l->cluster_idx = find_cluster(cfg, l->cluster);
            if (l->cluster_idx == EBB_NO_CLUSTER)
                return ebb_yerr(d, fc->clusters_node, "clusters", fc->x.err, fc->x.errlen,
                                "the built-in %s listener needs a cluster named \"%s\" "
                                "(define it, or define listeners)", l->name, l->cluster);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* checks after the merge                                             */

struct port_use {
    char               what[160]; /* "listeners[0] (inbound)", "the admin port", ... */
    char               path[64];  /* ebb.yaml key path, or the ProxyConfig field */
    uint16_t           port;
    bool               v6;        /* bound to an IPv6 address: shares ports with IPv4 ones */
    const yaml_node_t *node;      /* ebb.yaml node, or NULL */
    enum ebb_source    src;
};

static void port_use_proxy(struct port_use *u, const char *what, const char *field,
                           const char *file_path, uint16_t port, enum ebb_source src,
                           const yaml_node_t *file_node)
{
    u->port = port;
    u->src = src;
    if (src == EBB_SRC_FILE && file_node) {
        snprintf(u->what, sizeof(u->what), "%s", what);
        snprintf(u->path, sizeof(u->path), "%s", file_path);
        u->node = file_node;
    } else {
        snprintf(u->what, sizeof(u->what), "%s (%s from %s)", what, field,
                 ebb_source_name(src));
        snprintf(u->path, sizeof(u->path), "%s", field);
    }
}

static int port_blame(const struct port_use *u, bool proxy)
{
    if (u->node)
        return 3;
    return proxy && u->src != EBB_SRC_DEFAULT ? 2 : 1;
}

/* Every listener, admin, status and readiness port must be distinct within an address
 * family (IPv6 listeners take IPv6 only: a dual-stack pod has 0.0.0.0:15006 and [::]:15006). */
static int check_ports(struct file_ctx *fc, const struct ebb_config *cfg, char *err,
                       size_t errlen)
{
    size_t n = cfg->nlisteners + 3;
    struct port_use *u = ebb_xcalloc(n, sizeof(*u));
    int rc = 0;

    port_use_proxy(&u[0], "the admin port", "proxyAdminPort", "admin.port",
                   cfg->proxy.admin_port, cfg->proxy.admin_port_src,
                   ebb_dnode_of(&fc->x, &cfg->proxy.admin_port));
    port_use_proxy(&u[1], "the status port", "statusPort", "status.port",
                   cfg->proxy.status_port, cfg->proxy.status_port_src,
                   ebb_dnode_of(&fc->x, &cfg->proxy.status_port));
    snprintf(u[2].what, sizeof(u[2].what), "the readiness port");
    snprintf(u[2].path, sizeof(u[2].path), "readiness.port");
    u[2].port = cfg->ready_port;
    u[2].node = ebb_dnode_of(&fc->x, &cfg->ready_port);
    u[2].src = EBB_SRC_FILE;
    u[0].v6 = strchr(cfg->admin_address, ':') != NULL;
    u[1].v6 = strchr(cfg->status_address, ':') != NULL;
    u[2].v6 = strchr(cfg->ready_address, ':') != NULL;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct port_use *p = &u[3 + i];
        snprintf(p->what, sizeof(p->what), "listeners[%zu] (%s)", i, cfg->listeners[i].name);
        snprintf(p->path, sizeof(p->path), "listeners[%zu].port", i);
        p->port = cfg->listeners[i].port;
        p->v6 = strchr(cfg->listeners[i].address, ':') != NULL;
        p->node = ebb_dnode_of(&fc->x, &cfg->listeners[i].port);
        p->src = EBB_SRC_FILE;
    }
    for (size_t i = 1; i < n && rc == 0; i++) {
        for (size_t j = 0; j < i; j++) {
            if (u[i].port != u[j].port || u[i].v6 != u[j].v6)
                continue;
            /* blame what the user wrote: an ebb.yaml line, else a ProxyConfig source */
            size_t b = port_blame(&u[i], i < 2) >= port_blame(&u[j], j < 2) ? i : j;
            size_t o = b == i ? j : i;
            rc = EBB_ECONFIG;
            if (u[b].node && fc->d.loaded)
                ebb_yerr(&fc->d, u[b].node, u[b].path, err, errlen,
                         "%u is already used by %s", u[b].port, u[o].what);
            else if (b < 2)
                snprintf(err, errlen, "%s: %s: %u is already used by %s",
                         ebb_source_name(u[b].src), u[b].path, u[b].port, u[o].what);
            else
                snprintf(err, errlen, "%s: %s: %u is already used by %s",
                         cfg->file ? cfg->file : "built-in config", u[b].path, u[b].port,
                         u[o].what);
            break;
        }
    }
    free(u);
    return rc;
}

/* ------------------------------------------------------------------ */
/* loading                                                            */

int ebb_config_load(const struct ebb_config_args *args, struct ebb_config **out, char *err,
                    size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (args && args->file) {
        rc = ebb_read_file(args->file, &text, &len);
        if (rc < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", args->file, strerror(-rc));
            return EBB_ECONFIG;
        }
    }
    rc = ebb_config_load_text(args, text, len, out, err, errlen);
    free(text);
    return rc;
}

int ebb_config_load_text(const struct ebb_config_args *args, const char *text, size_t len,
                         struct ebb_config **out, char *err, size_t errlen)
{
    static const struct ebb_config_args no_args;
    struct ebb_config *cfg = config_base();
    struct file_ctx fc;
    int rc, level;

    if (!args)
        args = &no_args;
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    memset(&fc, 0, sizeof(fc));
    fc.pc.source = EBB_SRC_FILE;
    fc.x = (struct ebb_dctx){ .d = &fc.d, .source = EBB_SRC_FILE, .hook = file_hook,
                              .arg = &fc, .err = err, .errlen = errlen };
    if (text) {
        cfg->file = ebb_xstrdup(args->file ? args->file : "ebb.yaml");
        fc.d.label = cfg->file;
        fc.d.marks = true;
        rc = ebb_ydoc_load(&fc.d, text, len, err, errlen);
        if (rc == 0)
            rc = parse_file_root(&fc, cfg);
        if (rc)
            goto fail;
    }
    /* cfg->proxy holds ebb.yaml's top-level concurrency and ports, which outrank
     * every ProxyConfig source */
    rc = ebb_proxy_config_load(cfg, args, &fc.pc, err, errlen);
    if (rc)
        goto fail;
    if (!cfg->drain.idle_close_after_set)
        cfg->drain.idle_close_after_ms = cfg->proxy.min_drain_ms;
    rc = check_ports(&fc, cfg, err, errlen);
    if (rc)
        goto fail;
    add_builtin_clusters(cfg);
    if (args->log_level) {
        if (ebb_log_parse_level(args->log_level, &level) != 0) {
            snprintf(err, errlen, "--log-level: \"%s\" is not a log level (error, warn, info, "
                     "debug)", args->log_level);
            rc = EBB_ECONFIG;
            goto fail;
        }
        free(cfg->log_level);
        cfg->log_level = ebb_xstrdup(args->log_level);
    }
    file_ctx_free(&fc);
    *out = cfg;
    return 0;
fail:
    file_ctx_free(&fc);
    ebb_config_free(cfg);
    return EBB_ECONFIG;
}

/*
 * config_json.c - the effective config as JSON, for /config_dump and
 * `ebb validate`: every ProxyConfig value with its source, proxyMetadata
 * with each key's source, the drain knobs, ports, listeners, clusters and
 * limits.  Key list in docs/config.md.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "ebb/buf.h"
#include "ebb/config.h"
#include "ebb/core.h"
#include "ebb/parse.h"

/* A growing string; exits on out-of-memory (startup/admin path). */
struct jbuf {
    struct ebb_buf b;
    bool           comma;   /* the next member needs a ',' first */
};

static void jb_check(int rc)
{
    if (rc) {
        fprintf(stderr, "ebb: out of memory\n");
        exit(2);
    }
}

static void jb_raw(struct jbuf *b, const char *s, size_t n)
{
    jb_check(ebb_buf_append(&b->b, s, n));
}

static void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_printf(struct jbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        jb_raw(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string (ebb_json_escape: always valid UTF-8), or null for NULL. */
static void jb_str(struct jbuf *b, const char *s)
{
    if (!s)
        jb_raw(b, "null", 4);
    else
        jb_check(ebb_buf_append_json_str(&b->b, s));
}

static void jb_sep(struct jbuf *b)
{
    if (b->comma)
        jb_raw(b, ",", 1);
    b->comma = true;
}

static void jb_key(struct jbuf *b, const char *k)
{
    jb_sep(b);
    jb_str(b, k);
    jb_raw(b, ":", 1);
    b->comma = false;
}

static void jb_open(struct jbuf *b, char c)
{
    jb_raw(b, &c, 1);
    b->comma = false;
}

static void jb_close(struct jbuf *b, char c)
{
    jb_raw(b, &c, 1);
    b->comma = true;
}

static void kv_str(struct jbuf *b, const char *k, const char *v)
{
    jb_key(b, k);
    jb_str(b, v);
    b->comma = true;
}

static void kv_u64(struct jbuf *b, const char *k, uint64_t v)
{
    jb_key(b, k);
    jb_printf(b, "%" PRIu64, v);
    b->comma = true;
}

static void kv_bool(struct jbuf *b, const char *k, bool v)
{
    jb_key(b, k);
    jb_raw(b, v ? "true" : "false", v ? 4 : 5);
    b->comma = true;
}

static void kv_dur(struct jbuf *b, const char *k, uint64_t ms)
{
    char d[32];

    ebb_format_duration_ms(ms, d, sizeof(d));
    kv_str(b, k, d);
}

static void kv_src(struct jbuf *b, const char *k, enum ebb_source s)
{
    kv_str(b, k, ebb_source_name(s));
}

static void addr_port(struct jbuf *b, const char *k, const char *addr, uint16_t port)
{
    jb_key(b, k);
    jb_open(b, '{');
    kv_str(b, "address", addr);
    kv_u64(b, "port", port);
    jb_close(b, '}');
}

static void proxy_config(struct jbuf *b, const struct ebb_proxy_cfg *pc)
{
    jb_key(b, "proxy_config");
    jb_open(b, '{');
    kv_dur(b, "terminationDrainDuration", pc->termination_drain_ms);
    kv_dur(b, "drainDuration", pc->drain_duration_ms);
    kv_u64(b, "concurrency", pc->concurrency);
    kv_u64(b, "proxyAdminPort", pc->admin_port);
    kv_u64(b, "statusPort", pc->status_port);
    kv_bool(b, "holdApplicationUntilProxyStarts", pc->hold_app);
    jb_key(b, "proxyMetadata");
    jb_open(b, '{');
    for (size_t i = 0; i < pc->nmetadata; i++)
        kv_str(b, pc->metadata[i].key, pc->metadata[i].value);
    jb_close(b, '}');
    jb_close(b, '}');

    jb_key(b, "sources");
    jb_open(b, '{');
    kv_src(b, "terminationDrainDuration", pc->termination_drain_src);
    kv_src(b, "drainDuration", pc->drain_duration_src);
    kv_src(b, "concurrency", pc->concurrency_src);
    kv_src(b, "proxyAdminPort", pc->admin_port_src);
    kv_src(b, "statusPort", pc->status_port_src);
    kv_src(b, "holdApplicationUntilProxyStarts", pc->hold_app_src);
    kv_src(b, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", pc->exit_on_zero_src);
    kv_src(b, "MINIMUM_DRAIN_DURATION", pc->min_drain_src);
    jb_key(b, "proxyMetadata");
    jb_open(b, '{');
    for (size_t i = 0; i < pc->nmetadata; i++)
        kv_src(b, pc->metadata[i].key, pc->metadata[i].source);
    jb_close(b, '}');
    jb_close(b, '}');
}

static void drain(struct jbuf *b, const struct ebb_config *cfg)
{
    const struct ebb_proxy_cfg *pc = &cfg->proxy;
    const struct ebb_drain_cfg *d = &cfg->drain;

    jb_key(b, "drain");
    jb_open(b, '{');
    kv_str(b, "mode", pc->exit_on_zero ? "exit_on_zero_active_connections"
                                       : "termination_drain_duration");
    kv_bool(b, "exit_on_zero_active_connections", pc->exit_on_zero);
    kv_dur(b, "minimum_drain_duration", pc->min_drain_ms);
    kv_dur(b, "termination_drain_duration", pc->termination_drain_ms);
    kv_dur(b, "drain_duration", pc->drain_duration_ms);
    kv_dur(b, "idle_close_after", d->idle_close_after_ms);
    kv_str(b, "idle_close_after_source",
           d->idle_close_after_set ? "file" : "MINIMUM_DRAIN_DURATION");
    kv_dur(b, "idle_close_spread", d->idle_close_spread_ms);
    kv_dur(b, "drain_timeout", d->drain_timeout_ms);
    kv_dur(b, "drain_deadline", d->drain_deadline_ms);
    kv_dur(b, "linger", d->linger_ms);
    jb_close(b, '}');
}

static void listeners(struct jbuf *b, const struct ebb_config *cfg)
{
    jb_key(b, "listeners");
    jb_open(b, '[');
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct ebb_listener_cfg *l = &cfg->listeners[i];
        jb_sep(b);
        jb_open(b, '{');
        kv_str(b, "name", l->name);
        kv_str(b, "address", l->address);
        kv_u64(b, "port", l->port);
        kv_str(b, "direction", l->direction == EBB_DIR_INBOUND ? "inbound" : "outbound");
        kv_str(b, "protocol", l->protocol == EBB_PROTO_HTTP ? "http" : "tcp");
        kv_str(b, "cluster", l->cluster);
        jb_key(b, "routes");
        jb_open(b, '[');
        for (size_t j = 0; j < l->nroutes; j++) {
            jb_sep(b);
            jb_open(b, '{');
            kv_str(b, "host", l->routes[j].host);
            kv_str(b, "cluster", l->routes[j].cluster);
            jb_close(b, '}');
        }
        jb_close(b, ']');
        kv_u64(b, "max_connections", l->max_connections);
        jb_close(b, '}');
    }
    jb_close(b, ']');
}

static void clusters(struct jbuf *b, const struct ebb_config *cfg)
{
    jb_key(b, "clusters");
    jb_open(b, '[');
    for (size_t i = 0; i < cfg->nclusters; i++) {
        const struct ebb_cluster_cfg *c = &cfg->clusters[i];
        jb_sep(b);
        jb_open(b, '{');
        kv_str(b, "name", c->name);
        jb_key(b, "endpoints");
        jb_open(b, '[');
        for (size_t j = 0; j < c->nendpoints; j++) {
            char ep[320];
            const char *h = c->endpoints[j].host;
            snprintf(ep, sizeof(ep), strchr(h, ':') ? "[%s]:%u" : "%s:%u", h,
                     c->endpoints[j].port);
            jb_sep(b);
            jb_str(b, ep);
        }
        jb_close(b, ']');
        kv_str(b, "protocol", c->protocol == EBB_UP_H2C ? "h2c" : "http1");
        kv_dur(b, "connect_timeout", c->connect_timeout_ms);
        kv_dur(b, "request_timeout", c->request_timeout_ms);
        jb_key(b, "pool");
        jb_open(b, '{');
        kv_u64(b, "max_idle", c->pool_max_idle);
        kv_dur(b, "idle_timeout", c->pool_idle_timeout_ms);
        jb_close(b, '}');
        jb_close(b, '}');
    }
    jb_close(b, ']');
}

static void limits(struct jbuf *b, const struct ebb_limits_cfg *l)
{
    jb_key(b, "limits");
    jb_open(b, '{');
    kv_u64(b, "max_request_line", l->h1.max_line);
    kv_u64(b, "max_request_headers", l->h1.max_head);
    kv_u64(b, "max_header_count", l->h1.max_headers);
    kv_u64(b, "max_request_body", l->max_request_body);
    kv_dur(b, "request_headers_timeout", l->request_headers_timeout_ms);
    kv_dur(b, "idle_timeout", l->idle_timeout_ms);
    kv_u64(b, "h2_max_concurrent_streams", l->h2_max_concurrent_streams);
    kv_u64(b, "buffer_size", l->buffer_size);
    jb_close(b, '}');
}

char *ebb_config_to_json(const struct ebb_config *cfg)
{
    struct jbuf b = { .b.max = SIZE_MAX / 2 };

    jb_open(&b, '{');
    kv_str(&b, "file", cfg->file);
    kv_str(&b, "mesh_file", cfg->mesh_file);
    kv_str(&b, "annotations_file", cfg->annotations_file);
    proxy_config(&b, &cfg->proxy);
    drain(&b, cfg);
    addr_port(&b, "admin", cfg->admin_address, cfg->proxy.admin_port);
    addr_port(&b, "status", cfg->status_address, cfg->proxy.status_port);
    addr_port(&b, "readiness", cfg->ready_address, cfg->ready_port);
    kv_u64(&b, "concurrency", cfg->proxy.concurrency);
    kv_str(&b, "access_log", cfg->access_log);
    kv_str(&b, "log_level", cfg->log_level);
    listeners(&b, cfg);
    clusters(&b, cfg);
    limits(&b, &cfg->limits);
    jb_close(&b, '}');
    jb_raw(&b, "\n", 2);   /* with the NUL: the buffer is the string */
    return b.b.data;
}

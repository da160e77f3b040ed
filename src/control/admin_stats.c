/*
 * admin_stats.c - the renderers behind /stats and /stats/prometheus: every
 * counter and gauge of stats.h under its Envoy name (SPEC §5), as text
 * lines or in Prometheus text format.
 */
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "ebb/admin.h"
#include "ebb/buf.h"
#include "ebb/config.h"
#include "ebb/config_load.h"
#include "ebb/control.h"
#include "ebb/core.h"
#include "ebb/proxy.h"
#include "ebb/server.h"

/* One counter or gauge.  Its strings live in mem (one allocation), their lengths those of
 * the config's names: nothing is cut. */
struct stat_line {
    const char *name;     /* Envoy's name: "cluster.<cluster>.upstream_rq_total" */
    const char *family;   /* the Prometheus metric name */
    const char *lkey;     /* the Prometheus label's name, NULL: none */
    const char *lval;     /* ... its value (the object of the name), not escaped */
    char       *mem;
    int64_t     value;
    bool        gauge;
};

struct stat_list {
    struct stat_line *v;
    size_t n, cap;
    bool failed;          /* an allocation failed: the answer would miss lines */
};

/* Adds a stat named "<scope>.<object>.<stat>" (object may be NULL), in the Prometheus
 * family "<fam><stat>", with the label lkey="<object>" unless lkey is NULL. */
static void stat_add(struct stat_list *sl, bool gauge, int64_t value, const char *scope,
                     const char *object, const char *stat, const char *fam, const char *lkey)
{
    size_t ls = strlen(scope), lo = object ? strlen(object) : 0, lt = strlen(stat);
    size_t lf = strlen(fam);
    char *m = malloc(ls + 1 + lo + 1 + lt + 1 + lf + lt + 1 + lo + 1);

    if (m && sl->n == sl->cap) {
        size_t cap = sl->cap ? sl->cap * 2 : 128;
        struct stat_line *v = realloc(sl->v, cap * sizeof(*v));
        if (v) {
            sl->v = v;
            sl->cap = cap;
        }
    }
    if (!m || sl->n == sl->cap) {
        free(m);
        sl->failed = true;
        return;
    }
    struct stat_line *s = &sl->v[sl->n++];
    char *p = m;
    *s = (struct stat_line){ .mem = m, .value = value, .gauge = gauge, .lkey = lkey };
    s->name = p;
    p = (char *)memcpy(p, scope, ls) + ls;
    if (object) {
        *p++ = '.';
        p = (char *)memcpy(p, object, lo) + lo;
    }
    *p++ = '.';
    p = (char *)memcpy(p, stat, lt) + lt;
    *p++ = '\0';
    s->family = p;
    p = (char *)memcpy(p, fam, lf) + lf;
    p = (char *)memcpy(p, stat, lt) + lt;
    *p++ = '\0';
    s->lval = p;
    memcpy(p, object ? object : "", lo);
    p[lo] = '\0';
}

static void stat_list_free(struct stat_list *sl)
{
    for (size_t i = 0; i < sl->n; i++)
        free(sl->v[i].mem);
    free(sl->v);
}

static void listener_stat_name(const struct ebb_listener_cfg *lc, char *out, size_t len)
{
    /* Envoy names listener stats by address: listener.0.0.0.0_15006.*, listener.[__]_15006.* */
    ebb_listener_addr_name(lc->address, lc->port, out, len);
}

/* One counter or gauge of a stats.h block, under its Envoy name. */
struct stat_def {
    bool        gauge;  /* ebb_gauge (else ebb_counter) */
    size_t      off;    /* offset in its block */
    const char *name;   /* last part of the name, and of the Prometheus family */
};

#define LS(g, f, n) { g, offsetof(struct ebb_listener_stats, f), n }
static const struct stat_def listener_defs[] = {   /* listener.<addr>_<port>.* */
    LS(true, cx_active, "downstream_cx_active"),
    LS(false, cx_total, "downstream_cx_total"),
    LS(false, cx_destroy, "downstream_cx_destroy"),
    LS(false, cx_overflow, "downstream_cx_overflow"),
    LS(false, cx_rx_bytes, "downstream_cx_rx_bytes_total"),
    LS(false, cx_tx_bytes, "downstream_cx_tx_bytes_total"),
};

static const struct stat_def tcp_defs[] = {        /* tcp.<listener>.*, TCP listeners */
    LS(false, cx_idle_timeout, "idle_timeout"),       /* Envoy's tcp_proxy name */
};

static const struct stat_def http_defs[] = {       /* http.<listener>.*, HTTP listeners */
    LS(true, rq_active, "downstream_rq_active"),
    LS(false, rq_total, "downstream_rq_total"),
    LS(false, rq_xx[1], "downstream_rq_1xx"),
    LS(false, rq_xx[2], "downstream_rq_2xx"),
    LS(false, rq_xx[3], "downstream_rq_3xx"),
    LS(false, rq_xx[4], "downstream_rq_4xx"),
    LS(false, rq_xx[5], "downstream_rq_5xx"),
    LS(false, cx_drain_close, "downstream_cx_drain_close"),
    LS(false, cx_protocol_error, "downstream_cx_protocol_error"),
    LS(false, rq_timeout, "downstream_rq_timeout"),
    LS(false, cx_idle_timeout, "downstream_cx_idle_timeout"),
    LS(false, rq_rx_reset, "downstream_rq_rx_reset"),
    LS(false, rq_tx_reset, "downstream_rq_tx_reset"),
    LS(false, no_route, "no_route"),
    LS(false, rq_completed_in_drain, "downstream_rq_completed_during_drain"),
};
#undef LS

#define CS(g, f, n) { g, offsetof(struct ebb_cluster_stats, f), n }
static const struct stat_def cluster_defs[] = {    /* cluster.<name>.* */
    CS(true, cx_active, "upstream_cx_active"),
    CS(false, cx_total, "upstream_cx_total"),
    CS(false, cx_connect_fail, "upstream_cx_connect_fail"),
    CS(false, cx_connect_timeout, "upstream_cx_connect_timeout"),
    CS(false, cx_none_healthy, "upstream_cx_none_healthy"),
    CS(false, cx_destroy, "upstream_cx_destroy"),
    CS(true, rq_active, "upstream_rq_active"),
    CS(false, rq_total, "upstream_rq_total"),
    CS(false, rq_timeout, "upstream_rq_timeout"),
    CS(false, rq_reset, "upstream_rq_rx_reset"),
    CS(false, cx_reused, "upstream_cx_pool_reuse"),
    CS(true, cx_idle, "upstream_cx_idle"),
    CS(false, cx_shared_waited, "upstream_cx_shared_waited"),
    CS(true, rx_buffered, "upstream_cx_rx_bytes_buffered"),
};
#undef CS

#define SS(g, f, n) { g, offsetof(struct ebb_server_stats, f), n }
static const struct stat_def http2_defs[] = {      /* http2.* */
    SS(false, goaway_sent, "goaway_sent"),
    SS(true, h2_streams_active, "streams_active"),
    SS(false, h2_streams_total, "streams_total"),
    SS(false, h2_rx_reset, "rx_reset"),
    SS(false, h2_tx_reset, "tx_reset"),
    SS(false, h2_header_overflow, "header_overflow"),
    SS(false, h2_rx_messaging_error, "rx_messaging_error"),
    SS(false, h2_calm_goaway, "enhance_your_calm"),
    SS(false, h2_up_cx_total, "upstream_cx_total"),
    SS(false, h2_up_goaway_rx, "upstream_goaway_received"),
    SS(false, h2_up_retry, "upstream_rq_retry"),
    SS(false, h2_ping_rx, "ping_received"),
};
#undef SS

/* Adds every stat of defs read from block: named "<scope>.<object>.<name>", in the
 * Prometheus family "<fam><name>" with the label lkey="<object>" (lkey may be NULL). */
static void add_block(struct stat_list *sl, const struct stat_def *defs, size_t n,
                      const void *block, const char *scope, const char *object,
                      const char *fam, const char *lkey)
{
    for (size_t i = 0; i < n; i++) {
        const void *p = (const char *)block + defs[i].off;
        int64_t v = defs[i].gauge ? ebb_stat_get(*(ebb_gauge *)p)
                                  : (int64_t)ebb_stat_get(*(ebb_counter *)p);
        stat_add(sl, defs[i].gauge, v, scope, object, defs[i].name, fam, lkey);
    }
}

/* The server.* gauges: state, uptime, connections, workers, drain phase. */
static void add_server(struct ebb_server *srv, struct stat_list *sl)
{
    struct ebb_control *ctl = srv->ctl;
    int state = ebb_server_state(srv);

    stat_add(sl, false, (int64_t)ebb_stat_get(srv->stats->server.drain_forced_close),
             "server", NULL, "drain_forced_close", "ebb_server_", NULL);
    stat_add(sl, false, (int64_t)ebb_stat_get(srv->stats->server.xch_failed_resource),
             "server", NULL, "exchanges_failed_resource", "ebb_server_", NULL);
    stat_add(sl, true, state, "server", NULL, "state", "envoy_server_", NULL);
    stat_add(sl, true, state == EBB_STATE_LIVE, "server", NULL, "live", "envoy_server_", NULL);
    stat_add(sl, true, (int64_t)((ebb_now_ms() - srv->start_ms) / 1000), "server", NULL,
             "uptime", "envoy_server_", NULL);
    stat_add(sl, true, atomic_load(&srv->active_cx), "server", NULL, "total_connections",
             "envoy_server_", NULL);
    stat_add(sl, true, (int64_t)srv->nworkers, "server", NULL, "concurrency", "envoy_server_",
             NULL);
    stat_add(sl, true, ctl ? (int64_t)ctl->phase : 0, "server", NULL, "drain_phase", "ebb_",
             NULL);
    stat_add(sl, false, (int64_t)ebb_access_log_dropped(), "access_log", NULL, "records_dropped",
             "ebb_access_log_", NULL);
}

static void collect_stats(struct ebb_server *srv, struct stat_list *sl)
{
    const struct ebb_config *cfg = srv->cfg;
    const struct ebb_stats *sum = ebb_server_stats(srv);
    char addr[96];

    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct ebb_listener_cfg *lc = &cfg->listeners[i];
        const struct ebb_listener_stats *st = &sum->listeners[i];
        listener_stat_name(lc, addr, sizeof(addr));
        add_block(sl, listener_defs, EBB_ARRAY_LEN(listener_defs), st, "listener", addr,
                  "envoy_listener_", "envoy_listener_address");
        if (lc->protocol != EBB_PROTO_HTTP)
            add_block(sl, tcp_defs, EBB_ARRAY_LEN(tcp_defs), st, "tcp", lc->name, "envoy_tcp_",
                      "envoy_tcp_prefix");
        else
            add_block(sl, http_defs, EBB_ARRAY_LEN(http_defs), st, "http", lc->name,
                      "envoy_http_", "envoy_http_conn_manager_prefix");
    }
    for (size_t i = 0; i < cfg->nclusters; i++) {
        const char *name = cfg->clusters[i].name;
        add_block(sl, cluster_defs, EBB_ARRAY_LEN(cluster_defs), &sum->clusters[i], "cluster",
                  name, "envoy_cluster_", "envoy_cluster_name");
    }
    add_block(sl, http2_defs, EBB_ARRAY_LEN(http2_defs), &sum->server, "http2", NULL,
              "envoy_http2_", NULL);
    add_server(srv, sl);
}

static int stat_cmp(const void *a, const void *b)
{
    return strcmp(((const struct stat_line *)a)->name, ((const struct stat_line *)b)->name);
}

/* Prometheus order: by family (one TYPE line each), then by name. */
static int stat_family_cmp(const void *a, const void *b)
{
    int c = strcmp(((const struct stat_line *)a)->family, ((const struct stat_line *)b)->family);
    return c ? c : stat_cmp(a, b);
}

/* glibc's regcomp copies a repeated operand once per count, recursively:
 * "(.*){1,32767}" overflowed the control thread's stack (the whole process
 * died of one GET), "((a{0,255}){0,255}){0,255}" took gigabytes and
 * {1,200} nested six deep more than 20 s; a repetition of a
 * repetition ("h*****...", 100 stars) took seconds per star level; a
 * back-reference makes regexec exponential.  Envoy's filter is RE2, which
 * has no back-references and bounds the program size.  So a filter here may
 * use repetition counts whose product stays <= FILTER_MAX_COUNT, nest
 * repetitions at most FILTER_MAX_DEPTH deep ("(ab*)+" is 2), and hold no
 * back-reference.  Returns false for a filter over that. */
#define FILTER_MAX_COUNT 256
#define FILTER_MAX_DEPTH 3
#define FILTER_MAX_GROUPS 32

/* The largest number in an interval "{m}", "{m,}", "{m,n}"; *pp at '{' on
 * entry, at '}' (or the NUL) on return.  Over FILTER_MAX_COUNT: returns it + 1. */
static unsigned long filter_count(const char **pp)
{
    const char *p = *pp;
    unsigned long k = 0, n = 0;

    for (p++; *p && *p != '}'; p++) {
        if (*p >= '0' && *p <= '9') {
            n = n * 10 + (unsigned long)(*p - '0');
            if (n > FILTER_MAX_COUNT)
                n = FILTER_MAX_COUNT + 1;
            k = n > k ? n : k;
        } else {
            n = 0;
        }
    }
    *pp = *p ? p : p - 1;
    return k;
}

/* Skips a bracket expression; *pp at '[' on entry, at its ']' (or before the NUL) on return. */
static void filter_skip_bracket(const char **pp)
{
    const char *p = *pp + 1;

    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    while (*p && *p != ']') {
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            char close = p[1];
            for (p += 2; *p && !(*p == close && p[1] == ']'); p++)
                ;
            if (*p)
                p++;
        }
        if (*p)
            p++;
    }
    *pp = *p ? p : p - 1;
}

static bool filter_cheap(const char *re)
{
    /* per open group: the deepest repetition nesting in it, and that of its last atom (-1: none) */
    int maxd[FILTER_MAX_GROUPS + 1] = { 0 }, lastd[FILTER_MAX_GROUPS + 1] = { -1 };
    unsigned long weight = 1, k;
    int lvl = 0;

    for (const char *p = re; *p; p++) {
        switch (*p) {
        case '\\':
            if (p[1] >= '1' && p[1] <= '9')
                return false;
            if (p[1])
                p++;
            lastd[lvl] = 0;
            break;
        case '[':
            filter_skip_bracket(&p);
            lastd[lvl] = 0;
            break;
        case '(':
            if (++lvl > FILTER_MAX_GROUPS)
                return false;
            maxd[lvl] = 0;
            lastd[lvl] = -1;
            break;
        case ')':
            if (lvl == 0) {
                lastd[lvl] = 0;
                break;
            }
            lvl--;
            lastd[lvl] = maxd[lvl + 1];
            break;
        case '|':
            lastd[lvl] = -1;
            break;
        case '{':
            k = filter_count(&p);
            weight *= k ? k : 1;
            if (weight > FILTER_MAX_COUNT)
                return false;
            /* fall through - an interval is a repetition */
        case '*':
        case '+':
        case '?':
            if (lastd[lvl] >= 0 && ++lastd[lvl] > FILTER_MAX_DEPTH)
                return false;
            break;
        default:
            lastd[lvl] = 0;
            break;
        }
        if (lastd[lvl] > maxd[lvl])
            maxd[lvl] = lastd[lvl];
    }
    return true;
}

int ebb_stats_render_text(struct ebb_server *srv, struct ebb_buf *b, bool usedonly,
                          const char *filter_re)
{
    struct stat_list sl = { 0 };
    regex_t re;
    bool have_re = false;
    int rc = 0;

    if (filter_re && *filter_re) {
        if (!filter_cheap(filter_re) || regcomp(&re, filter_re, REG_EXTENDED | REG_NOSUB) != 0)
            return ebb_buf_appendf(b, "invalid regex\n");
        have_re = true;
    }
    collect_stats(srv, &sl);
    if (sl.failed)
        rc = EBB_ENOMEM;
    else
        qsort(sl.v, sl.n, sizeof(*sl.v), stat_cmp);
    for (size_t i = 0; rc == 0 && i < sl.n; i++) {
        if (usedonly && sl.v[i].value == 0)
            continue;
        if (have_re && regexec(&re, sl.v[i].name, 0, NULL, 0) != 0)
            continue;
        rc = ebb_buf_appendf(b, "%s: %lld\n", sl.v[i].name, (long long)sl.v[i].value);
    }
    if (have_re)
        regfree(&re);
    stat_list_free(&sl);
    return rc;
}

/* A label value in the text format: \, " and newline escaped (Prometheus text format 0.0.4). */
static int append_label_value(struct ebb_buf *b, const char *v)
{
    int rc = 0;

    for (const char *run = v;; v++) {
        if (*v && *v != '\\' && *v != '"' && *v != '\n')
            continue;
        rc = ebb_buf_append(b, run, (size_t)(v - run));
        if (rc || !*v)
            return rc;
        rc = *v == '\n' ? ebb_buf_append_lit(b, "\\n")
           : *v == '"' ? ebb_buf_append_lit(b, "\\\"") : ebb_buf_append_lit(b, "\\\\");
        if (rc)
            return rc;
        run = v + 1;
    }
}

static int append_sample(struct ebb_buf *b, const struct stat_line *s)
{
    int rc = ebb_buf_appendf(b, "%s", s->family);

    if (rc == 0 && s->lkey) {
        rc = ebb_buf_appendf(b, "{%s=\"", s->lkey);
        if (rc == 0)
            rc = append_label_value(b, s->lval);
        if (rc == 0)
            rc = ebb_buf_append_lit(b, "\"}");
    }
    return rc ? rc : ebb_buf_appendf(b, " %lld\n", (long long)s->value);
}

int ebb_stats_render_prometheus(struct ebb_server *srv, struct ebb_buf *b)
{
    struct stat_list sl = { 0 };
    int rc = 0;

    collect_stats(srv, &sl);
    if (sl.failed)
        rc = EBB_ENOMEM;
    else
        qsort(sl.v, sl.n, sizeof(*sl.v), stat_family_cmp);
    for (size_t i = 0; rc == 0 && i < sl.n; i++) {
        if (i == 0 || strcmp(sl.v[i].family, sl.v[i - 1].family) != 0)
            rc = ebb_buf_appendf(b, "# TYPE %s %s\n", sl.v[i].family,
                                 sl.v[i].gauge ? "gauge" : "counter");
        if (rc == 0)
            rc = append_sample(b, &sl.v[i]);
    }
    stat_list_free(&sl);
    return rc;
}

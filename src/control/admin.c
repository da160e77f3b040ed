/*
 * admin.c - the admin (15000), status (15020) and readiness (15021) HTTP
 * endpoints, served by the control thread.  One request per connection
 * ("connection: close"): probes and operators, not traffic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <regex.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/config_load.h"
#include "ebb/control.h"
#include "ebb/core.h"
#include "ebb/h1_parse.h"
#include "ebb/log.h"
#include "ebb/server.h"

enum admin_kind { ADMIN_ADMIN = 0, ADMIN_STATUS, ADMIN_READY };
static const char *const kind_names[] = { "admin", "status", "readiness" };

#define ADMIN_MAX_REQUEST (64 * 1024)
#define ADMIN_TIMEOUT_MS  10000

/* One admin connection.  Owned by the control loop; freed deferred. */
struct admin_conn {
    struct ebb_io       io;
    struct ebb_list     link;       /* in ctl->admin_conns */
    struct ebb_control *ctl;
    enum admin_kind     kind;
    bool                loopback;   /* peer is 127.0.0.0/8 or ::1 */
    bool                responded;
    bool                exit_after; /* /quitquitquit: exit once the answer is out */
    struct ebb_buf      rbuf;
    struct ebb_buf      wbuf;
    struct ebb_timer    timer;
};

/* --- stats --- */

struct stat_line {
    char    name[192];
    char    family[96];   /* prometheus metric name */
    char    label[128];   /* prometheus label set, may be empty */
    int64_t value;
    bool    gauge;
};

struct stat_list {
    struct stat_line *v;
    size_t n, cap;
};

static void stat_add(struct stat_list *sl, bool gauge, int64_t value, const char *family,
                     const char *label, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void stat_add(struct stat_list *sl, bool gauge, int64_t value, const char *family,
                     const char *label, const char *fmt, ...)
{
    if (sl->n == sl->cap) {
        size_t cap = sl->cap ? sl->cap * 2 : 128;
        struct stat_line *v = realloc(sl->v, cap * sizeof(*v));
        if (!v)
            return;
        sl->v = v;
        sl->cap = cap;
    }
    struct stat_line *s = &sl->v[sl->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof(s->name), fmt, ap);
    va_end(ap);
    snprintf(s->family, sizeof(s->family), "%s", family);
    snprintf(s->label, sizeof(s->label), "%s", label ? label : "");
    s->value = value;
    s->gauge = gauge;
}

static void listener_stat_name(const struct ebb_listener_cfg *lc, char *out, size_t len)
{
    /* Envoy names listener stats by address: listener.0.0.0.0_15006.* */
    snprintf(out, len, "%s_%u", lc->address, lc->port);
}

static void collect_stats(struct ebb_server *srv, struct stat_list *sl)
{
    const struct ebb_config *cfg = srv->cfg;
    struct ebb_control *ctl = srv->ctl;
    char lab[160], addr[96];

    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct ebb_listener_cfg *lc = &cfg->listeners[i];
        struct ebb_listener_stats *st = &srv->stats->listeners[i];
        listener_stat_name(lc, addr, sizeof(addr));
        snprintf(lab, sizeof(lab), "envoy_listener_address=\"%s\"", addr);
#define L(gauge, field, nm) \
        stat_add(sl, gauge, (int64_t)ebb_stat_get(st->field), "envoy_listener_" nm, lab, \
                 "listener.%s." nm, addr)
        L(true, cx_active, "downstream_cx_active");
        L(false, cx_total, "downstream_cx_total");
        L(false, cx_destroy, "downstream_cx_destroy");
        L(false, cx_overflow, "downstream_cx_overflow");
        L(false, cx_rx_bytes, "downstream_cx_rx_bytes_total");
        L(false, cx_tx_bytes, "downstream_cx_tx_bytes_total");
#undef L
        if (lc->protocol != EBB_PROTO_HTTP)
            continue;
        snprintf(lab, sizeof(lab), "envoy_http_conn_manager_prefix=\"%s\"", lc->name);
#define H(gauge, field, nm) \
        stat_add(sl, gauge, (int64_t)ebb_stat_get(st->field), "envoy_http_" nm, lab, \
                 "http.%s." nm, lc->name)
        H(true, rq_active, "downstream_rq_active");
        H(false, rq_total, "downstream_rq_total");
        H(false, rq_xx[1], "downstream_rq_1xx");
        H(false, rq_xx[2], "downstream_rq_2xx");
        H(false, rq_xx[3], "downstream_rq_3xx");
        H(false, rq_xx[4], "downstream_rq_4xx");
        H(false, rq_xx[5], "downstream_rq_5xx");
        H(false, cx_drain_close, "downstream_cx_drain_close");
        H(false, cx_protocol_error, "downstream_cx_protocol_error");
        H(false, rq_timeout, "downstream_rq_timeout");
        H(false, cx_idle_timeout, "downstream_cx_idle_timeout");
        H(false, rq_rx_reset, "downstream_rq_rx_reset");
        H(false, rq_tx_reset, "downstream_rq_tx_reset");
        H(false, no_route, "no_route");
        H(false, rq_completed_in_drain, "downstream_rq_completed_during_drain");
#undef H
    }
    for (size_t i = 0; i < cfg->nclusters; i++) {
        const struct ebb_cluster_cfg *cc = &cfg->clusters[i];
        struct ebb_cluster_stats *st = &srv->stats->clusters[i];
        snprintf(lab, sizeof(lab), "envoy_cluster_name=\"%s\"", cc->name);
#define C(gauge, field, nm) \
        stat_add(sl, gauge, (int64_t)ebb_stat_get(st->field), "envoy_cluster_" nm, lab, \
                 "cluster.%s." nm, cc->name)
        C(true, cx_active, "upstream_cx_active");
        C(false, cx_total, "upstream_cx_total");
        C(false, cx_connect_fail, "upstream_cx_connect_fail");
        C(false, cx_connect_timeout, "upstream_cx_connect_timeout");
        C(false, cx_destroy, "upstream_cx_destroy");
        C(true, rq_active, "upstream_rq_active");
        C(false, rq_total, "upstream_rq_total");
        C(false, rq_timeout, "upstream_rq_timeout");
        C(false, rq_reset, "upstream_rq_rx_reset");
        C(false, cx_reused, "upstream_cx_pool_reuse");
        C(true, cx_idle, "upstream_cx_idle");
#undef C
    }
    stat_add(sl, false, (int64_t)ebb_stat_get(srv->stats->server.goaway_sent),
             "envoy_http2_goaway_sent", NULL, "http2.goaway_sent");
#define H2(gauge, field, nm) \
    stat_add(sl, gauge, (int64_t)ebb_stat_get(srv->stats->server.field), "envoy_http2_" nm, NULL, \
             "http2." nm)
    H2(true, h2_streams_active, "streams_active");
    H2(false, h2_streams_total, "streams_total");
    H2(false, h2_rx_reset, "rx_reset");
    H2(false, h2_tx_reset, "tx_reset");
    H2(false, h2_header_overflow, "header_overflow");
    H2(false, h2_rx_messaging_error, "rx_messaging_error");
    H2(false, h2_calm_goaway, "enhance_your_calm");
    H2(false, h2_up_cx_total, "upstream_cx_total");
    H2(false, h2_up_goaway_rx, "upstream_goaway_received");
    H2(false, h2_up_retry, "upstream_rq_retry");
#undef H2
    stat_add(sl, false, (int64_t)ebb_stat_get(srv->stats->server.drain_forced_close),
             "ebb_server_drain_forced_close", NULL, "server.drain_forced_close");
    int state = ebb_server_state(srv);
    stat_add(sl, true, state, "envoy_server_state", NULL, "server.state");
    stat_add(sl, true, state == EBB_STATE_LIVE, "envoy_server_live", NULL, "server.live");
    stat_add(sl, true, (int64_t)((ebb_now_ms() - srv->start_ms) / 1000), "envoy_server_uptime",
             NULL, "server.uptime");
    stat_add(sl, true, atomic_load(&srv->active_cx), "envoy_server_total_connections", NULL,
             "server.total_connections");
    stat_add(sl, true, (int64_t)srv->nworkers, "envoy_server_concurrency", NULL,
             "server.concurrency");
    stat_add(sl, true, ctl ? (int64_t)ctl->phase : 0, "ebb_drain_phase", NULL, "server.drain_phase");
}

static int stat_cmp(const void *a, const void *b)
{
    return strcmp(((const struct stat_line *)a)->name, ((const struct stat_line *)b)->name);
}

void ebb_stats_render_text(struct ebb_server *srv, struct ebb_buf *b, bool usedonly,
                           const char *filter_re)
{
    struct stat_list sl = { 0 };
    regex_t re;
    bool have_re = false;

    if (filter_re && *filter_re) {
        if (regcomp(&re, filter_re, REG_EXTENDED | REG_NOSUB) != 0) {
            ebb_buf_appendf(b, "invalid regex\n");
            return;
        }
        have_re = true;
    }
    collect_stats(srv, &sl);
    qsort(sl.v, sl.n, sizeof(*sl.v), stat_cmp);
    for (size_t i = 0; i < sl.n; i++) {
        if (usedonly && sl.v[i].value == 0)
            continue;
        if (have_re && regexec(&re, sl.v[i].name, 0, NULL, 0) != 0)
            continue;
        ebb_buf_appendf(b, "%s: %lld\n", sl.v[i].name, (long long)sl.v[i].value);
    }
    if (have_re)
        regfree(&re);
    free(sl.v);
}

void ebb_stats_render_prometheus(struct ebb_server *srv, struct ebb_buf *b)
{
    struct stat_list sl = { 0 };
    collect_stats(srv, &sl);
    /* group by family: one TYPE line each */
    bool *done = calloc(sl.n ? sl.n : 1, sizeof(bool));
    for (size_t i = 0; done && i < sl.n; i++) {
        if (done[i])
            continue;
        ebb_buf_appendf(b, "# TYPE %s %s\n", sl.v[i].family, sl.v[i].gauge ? "gauge" : "counter");
        for (size_t j = i; j < sl.n; j++) {
            if (done[j] || strcmp(sl.v[j].family, sl.v[i].family) != 0)
                continue;
            done[j] = true;
            if (sl.v[j].label[0])
                ebb_buf_appendf(b, "%s{%s} %lld\n", sl.v[j].family, sl.v[j].label,
                                (long long)sl.v[j].value);
            else
                ebb_buf_appendf(b, "%s %lld\n", sl.v[j].family, (long long)sl.v[j].value);
        }
    }
    free(done);
    free(sl.v);
}

/* --- responses --- */

static void respond(struct admin_conn *a, int status, const char *ctype, const char *body,
                    size_t len)
{
    const char *reason = status == 200 ? "OK" : status == 403 ? "Forbidden"
                       : status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
                       : status == 400 ? "Bad Request" : status == 503 ? "Service Unavailable"
                       : "Error";
    a->wbuf.max = len + 1024;
    ebb_buf_appendf(&a->wbuf, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                    "connection: close\r\n\r\n", status, reason, ctype, len);
    ebb_buf_append(&a->wbuf, body, len);
    a->responded = true;
}

static void respond_text(struct admin_conn *a, int status, const char *text)
{
    respond(a, status, "text/plain", text, strlen(text));
}

static void respond_buf(struct admin_conn *a, int status, const char *ctype, struct ebb_buf *b)
{
    respond(a, status, ctype, ebb_buf_start(b), ebb_buf_len(b));
    ebb_buf_free(b);
}

/* Finds "name" or "name=value" in a query string; returns value (or "" for
 * a bare name) copied into out, or NULL when absent. */
static const char *query_get(const char *q, size_t qlen, const char *name, char *out, size_t olen)
{
    size_t nl = strlen(name);
    const char *p = q, *end = q + qlen;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) >= nl && strncmp(p, name, nl) == 0 && (p + nl == e || p[nl] == '=')) {
            size_t o = 0;
            for (const char *v = p + nl + (p + nl < e); v < e && o + 1 < olen; v++) {
                if (*v == '%' && v + 2 < e) {
                    char hex[3] = { v[1], v[2], 0 };
                    out[o++] = (char)strtol(hex, NULL, 16);
                    v += 2;
                } else {
                    out[o++] = *v == '+' ? ' ' : *v;
                }
            }
            out[o] = '\0';
            return out;
        }
        p = e + 1;
    }
    return NULL;
}

static const char help_text[] =
    "admin commands are:\n"
    "  /: this help\n"
    "  /help: this help\n"
    "  /stats: counters and gauges (?usedonly, ?filter=REGEX)\n"
    "  /stats/prometheus: the same in Prometheus text format\n"
    "  /listeners: listener names and addresses\n"
    "  /clusters: clusters, endpoints and their counters\n"
    "  /server_info: version, state, uptime, command line (JSON)\n"
    "  /config_dump: effective configuration with the source of every value, drain state (JSON)\n"
    "  /ready: 200 LIVE when ready, 503 when draining\n"
    "  POST /drain_listeners[?inboundonly][&graceful][&skip_exit]: drain listeners (never exits)\n"
    "  POST /healthcheck/fail: readiness 503 and drain connections\n"
    "  POST /healthcheck/ok: readiness 200 again\n"
    "  POST /quitquitquit: exit now\n";

static void server_info(struct admin_conn *a)
{
    struct ebb_server *srv = a->ctl->srv;
    struct ebb_buf b = { .max = 1 << 20 };
    uint64_t up = (ebb_now_ms() - srv->start_ms) / 1000;
    ebb_buf_appendf(&b, "{\"version\":\"ebb/%s\",\"state\":\"%s\",\"drain_phase\":\"%s\","
                    "\"uptime_current_epoch\":\"%llus\",\"uptime_all_epochs\":\"%llus\","
                    "\"hot_restart_version\":\"disabled\",\"command_line_options\":{"
                    "\"concurrency\":%zu,\"argv\":[",
                    EBB_VERSION, ebb_server_state(srv) == EBB_STATE_LIVE ? "LIVE" : "DRAINING",
                    ebb_drain_phase_name(a->ctl->phase), (unsigned long long)up,
                    (unsigned long long)up, srv->nworkers);
    for (int i = 0; i < srv->argc; i++) {
        if (i)
            ebb_buf_append(&b, ",", 1);
        ebb_buf_append_json_str(&b, srv->argv[i]);
    }
    ebb_buf_appendf(&b, "]}}\n");
    respond_buf(a, 200, "application/json", &b);
}

static void config_dump(struct admin_conn *a)
{
    struct ebb_buf b = { .max = 4 << 20 };
    char *js = ebb_config_to_json(a->ctl->srv->cfg);
    size_t n = js ? strlen(js) : 0;
    while (n && (js[n - 1] == '\n' || js[n - 1] == ' '))
        n--;
    if (n && js[n - 1] == '}') {
        ebb_buf_append(&b, js, n - 1);
        ebb_buf_appendf(&b, ",\"drain_state\":");
    } else {
        ebb_buf_appendf(&b, "{\"drain_state\":");
    }
    ebb_drain_json(a->ctl, &b);
    ebb_buf_appendf(&b, "}\n");
    free(js);
    respond_buf(a, 200, "application/json", &b);
}

static void listeners_list(struct admin_conn *a)
{
    const struct ebb_config *cfg = a->ctl->srv->cfg;
    struct ebb_buf b = { .max = 1 << 20 };
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct ebb_listener_cfg *lc = &cfg->listeners[i];
        ebb_buf_appendf(&b, "%s::%s:%u::%s::%s\n", lc->name, lc->address, lc->port,
                        lc->direction == EBB_DIR_INBOUND ? "inbound" : "outbound",
                        lc->protocol == EBB_PROTO_HTTP ? "http" : "tcp");
    }
    respond_buf(a, 200, "text/plain", &b);
}

static void clusters_list(struct admin_conn *a)
{
    struct ebb_server *srv = a->ctl->srv;
    const struct ebb_config *cfg = srv->cfg;
    struct ebb_buf b = { .max = 1 << 20 };
    for (size_t i = 0; i < cfg->nclusters; i++) {
        const struct ebb_cluster_cfg *cc = &cfg->clusters[i];
        struct ebb_cluster_stats *st = &srv->stats->clusters[i];
        ebb_buf_appendf(&b, "%s::observability_name::%s\n", cc->name, cc->name);
        ebb_buf_appendf(&b, "%s::protocol::%s\n", cc->name,
                        cc->protocol == EBB_UP_H2C ? "h2c" : "http1");
        for (size_t j = 0; j < cc->nendpoints; j++) {
            const char *ep = srv->addrs[i]->a[j].str;
            ebb_buf_appendf(&b, "%s::%s::health_flags::healthy\n", cc->name, ep);
        }
        ebb_buf_appendf(&b, "%s::cx_active::%lld\n%s::rq_total::%llu\n"
                        "%s::cx_connect_fail::%llu\n", cc->name,
                        (long long)ebb_stat_get(st->cx_active), cc->name,
                        (unsigned long long)ebb_stat_get(st->rq_total), cc->name,
                        (unsigned long long)ebb_stat_get(st->cx_connect_fail));
    }
    respond_buf(a, 200, "text/plain", &b);
}

static void ready(struct admin_conn *a)
{
    struct ebb_control *ctl = a->ctl;
    if (ebb_control_ready(ctl))
        respond_text(a, 200, "LIVE\n");
    else
        respond_text(a, 503, ctl->phase == EBB_PHASE_LIVE && ctl->hc_failed ? "HEALTHCHECK_FAILED\n"
                                                                            : "DRAINING\n");
}

static bool path_is(const char *path, size_t plen, const char *want)
{
    return strlen(want) == plen && strncmp(path, want, plen) == 0;
}

/* Mutating endpoints: POST only, loopback peers only. */
static bool mutating_ok(struct admin_conn *a, bool is_post)
{
    if (!is_post) {
        respond_text(a, 405, "method not allowed: use POST\n");
        return false;
    }
    if (!a->loopback) {
        respond_text(a, 403, "forbidden: only from localhost\n");
        return false;
    }
    return true;
}

static void dispatch(struct admin_conn *a, const struct ebb_h1_msg *m)
{
    struct ebb_control *ctl = a->ctl;
    struct ebb_server *srv = ctl->srv;
    const char *path = m->path.p;
    size_t plen = m->path.len;
    const char *q = memchr(path, '?', plen);
    size_t qlen = 0;
    bool is_get = m->method.len == 3 && memcmp(m->method.p, "GET", 3) == 0;
    bool is_head = m->method.len == 4 && memcmp(m->method.p, "HEAD", 4) == 0;
    bool is_post = m->method.len == 4 && memcmp(m->method.p, "POST", 4) == 0;
    char val[256];

    if (q) {
        qlen = plen - (size_t)(q - path) - 1;
        plen = (size_t)(q - path);
        q++;
    } else {
        q = "";
    }
    is_get = is_get || is_head;

    if (path_is(path, plen, "/healthz/ready") && a->kind != ADMIN_ADMIN) {
        ready(a);
        return;
    }
    if (a->kind == ADMIN_READY) {
        respond_text(a, 404, "not found: the readiness port serves GET /healthz/ready only\n");
        return;
    }
    if (a->kind == ADMIN_STATUS) {
        if (path_is(path, plen, "/stats/prometheus") && is_get) {
            struct ebb_buf b = { .max = 4 << 20 };
            ebb_stats_render_prometheus(srv, &b);
            respond_buf(a, 200, "text/plain; version=0.0.4", &b);
        } else if (path_is(path, plen, "/drain")) {
            if (!mutating_ok(a, is_post))
                return;
            ctl->status_drained = true;
            ebb_drain_start(ctl, EBB_TRIG_STATUS_DRAIN, true, true, false);
            respond_text(a, 200, "OK\n");
        } else if (path_is(path, plen, "/quitquitquit")) {
            if (!mutating_ok(a, is_post))
                return;
            respond_text(a, 200, "OK\n");
            a->exit_after = true;
        } else {
            respond_text(a, 404, "not found\n");
        }
        return;
    }

    /* admin port */
    if (path_is(path, plen, "/stats/prometheus") && is_get) {
        struct ebb_buf b = { .max = 4 << 20 };
        ebb_stats_render_prometheus(srv, &b);
        respond_buf(a, 200, "text/plain; version=0.0.4", &b);
    } else if (path_is(path, plen, "/stats") && is_get) {
        struct ebb_buf b = { .max = 4 << 20 };
        bool usedonly = query_get(q, qlen, "usedonly", val, sizeof(val)) != NULL;
        const char *filter = query_get(q, qlen, "filter", val, sizeof(val));
        ebb_stats_render_text(srv, &b, usedonly, filter);
        respond_buf(a, 200, "text/plain", &b);
    } else if (path_is(path, plen, "/ready") && is_get) {
        ready(a);
    } else if (path_is(path, plen, "/server_info") && is_get) {
        server_info(a);
    } else if (path_is(path, plen, "/config_dump") && is_get) {
        config_dump(a);
    } else if (path_is(path, plen, "/listeners") && is_get) {
        listeners_list(a);
    } else if (path_is(path, plen, "/clusters") && is_get) {
        clusters_list(a);
    } else if ((path_is(path, plen, "/help") || path_is(path, plen, "/")) && is_get) {
        respond_text(a, 200, help_text);
    } else if (path_is(path, plen, "/quitquitquit")) {
        if (!mutating_ok(a, is_post))
            return;
        respond_text(a, 200, "OK\n");
        a->exit_after = true;
    } else if (path_is(path, plen, "/drain_listeners")) {
        if (!mutating_ok(a, is_post))
            return;
        bool inbound_only = query_get(q, qlen, "inboundonly", val, sizeof(val)) != NULL;
        bool graceful = query_get(q, qlen, "graceful", val, sizeof(val)) != NULL;
        bool skip_exit = query_get(q, qlen, "skip_exit", val, sizeof(val)) != NULL;
        ebb_drain_start(ctl, EBB_TRIG_DRAIN_LISTENERS, inbound_only, graceful, skip_exit);
        respond_text(a, 200, "OK\n");
    } else if (path_is(path, plen, "/healthcheck/fail")) {
        if (!mutating_ok(a, is_post))
            return;
        ctl->hc_failed = true;
        ebb_drain_start(ctl, EBB_TRIG_HEALTHCHECK_FAIL, false, true, true);
        respond_text(a, 200, "OK\n");
    } else if (path_is(path, plen, "/healthcheck/ok")) {
        if (!mutating_ok(a, is_post))
            return;
        ctl->hc_failed = false;
        respond_text(a, 200, "OK\n");
    } else if (is_get || is_post) {
        respond_text(a, 404, "not found: see /help\n");
    } else {
        respond_text(a, 405, "method not allowed\n");
    }
}

/* --- connections --- */

static void admin_free(void *p)
{
    struct admin_conn *a = p;
    ebb_buf_free(&a->rbuf);
    ebb_buf_free(&a->wbuf);
    free(a);
}

static void admin_close(struct admin_conn *a)
{
    if (a->io.fd < 0)
        return;
    ebb_timer_stop(a->ctl->loop, &a->timer);
    ebb_io_stop(a->ctl->loop, &a->io);
    close(a->io.fd);
    a->io.fd = -1;
    ebb_list_del(&a->link);
    if (a->exit_after)
        ebb_drain_exit(a->ctl, "/quitquitquit");
    if (ebb_loop_defer(a->ctl->loop, admin_free, a) < 0)
        EBB_BUG_ON(1);
}

static void admin_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    admin_close(t->data);
}

static void admin_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct admin_conn *a = io->data;

    if (a->io.fd < 0)
        return;
    if (!a->responded && (events & (EBB_READ | EPOLLHUP | EPOLLERR))) {
        ssize_t n = ebb_buf_read_fd(&a->rbuf, a->io.fd);
        if (n == 0 || (n < 0 && n != EBB_EAGAIN)) {
            admin_close(a);
            return;
        }
        struct ebb_h1_limits lim;
        ebb_h1_limits_default(&lim);
        static __thread struct ebb_h1_msg m;
        int rc = ebb_h1_parse_request(ebb_buf_start(&a->rbuf), ebb_buf_len(&a->rbuf), &lim, &m);
        if (rc == EBB_H1_AGAIN)
            return;
        if (rc < 0) {
            respond_text(a, 400, "bad request\n");
        } else {
            /* a small body (POST) must be complete; it is ignored */
            if (m.framing == EBB_H1_BODY_LENGTH &&
                ebb_buf_len(&a->rbuf) - (size_t)rc < m.content_length) {
                if (m.content_length > ADMIN_MAX_REQUEST)
                    respond_text(a, 400, "body too large\n");
                else
                    return;
            } else {
                dispatch(a, &m);
            }
        }
    } else if (!a->responded && (events & (EPOLLHUP | EPOLLERR))) {
        admin_close(a);
        return;
    }
    if (a->responded) {
        ssize_t n;
        while (ebb_buf_len(&a->wbuf) && (n = ebb_buf_write_fd(&a->wbuf, a->io.fd)) > 0)
            ;
        if (ebb_buf_len(&a->wbuf) == 0) {
            shutdown(a->io.fd, SHUT_WR);
            admin_close(a);
            return;
        }
        ebb_io_set(loop, &a->io, EBB_WRITE);
    }
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            return s6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static void accept_admin(struct ebb_loop *loop, struct ebb_io *io, uint32_t events, enum admin_kind k)
{
    struct ebb_control *ctl = io->data;
    for (int i = 0; i < 32; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct admin_conn *a = calloc(1, sizeof(*a));
        if (!a) {
            close(fd);
            continue;
        }
        a->io.fd = fd;
        a->io.cb = admin_io;
        a->io.data = a;
        a->ctl = ctl;
        a->kind = k;
        a->loopback = is_loopback(&ss);
        a->rbuf.max = ADMIN_MAX_REQUEST + 8192;
        a->timer.cb = admin_timeout;
        a->timer.data = a;
        ebb_list_add_tail(&ctl->admin_conns, &a->link);
        ebb_timer_start(loop, &a->timer, ADMIN_TIMEOUT_MS);
        ebb_io_set(loop, &a->io, EBB_READ);
    }
}

static void accept_admin_port(struct ebb_loop *l, struct ebb_io *io, uint32_t ev) { accept_admin(l, io, ev, ADMIN_ADMIN); }
static void accept_status_port(struct ebb_loop *l, struct ebb_io *io, uint32_t ev) { accept_admin(l, io, ev, ADMIN_STATUS); }
static void accept_ready_port(struct ebb_loop *l, struct ebb_io *io, uint32_t ev) { accept_admin(l, io, ev, ADMIN_READY); }

static int open_port(struct ebb_control *ctl, struct ebb_io *io, const char *addr, uint16_t port,
                     ebb_io_cb cb, enum admin_kind k, char *err, size_t errlen)
{
    char tmp[256];
    io->fd = ebb_listen_socket(addr, port, false, tmp, sizeof(tmp));
    if (io->fd < 0) {
        snprintf(err, errlen, "%s port: %s", kind_names[k], tmp);
        return EBB_EIO;
    }
    io->cb = cb;
    io->data = ctl;
    return ebb_io_set(ctl->loop, io, EBB_READ);
}

int ebb_admin_init(struct ebb_control *ctl, char *err, size_t errlen)
{
    const struct ebb_config *cfg = ctl->srv->cfg;
    int rc;
    ctl->admin_io.fd = ctl->status_io.fd = ctl->ready_io.fd = -1;
    ebb_list_init(&ctl->admin_conns);
    rc = open_port(ctl, &ctl->admin_io, cfg->admin_address, cfg->proxy.admin_port,
                   accept_admin_port, ADMIN_ADMIN, err, errlen);
    if (rc == 0)
        rc = open_port(ctl, &ctl->status_io, cfg->status_address, cfg->proxy.status_port,
                       accept_status_port, ADMIN_STATUS, err, errlen);
    if (rc == 0 && cfg->ready_port)
        rc = open_port(ctl, &ctl->ready_io, cfg->ready_address, cfg->ready_port,
                       accept_ready_port, ADMIN_READY, err, errlen);
    return rc;
}

void ebb_admin_close(struct ebb_control *ctl)
{
    struct ebb_io *ios[] = { &ctl->admin_io, &ctl->status_io, &ctl->ready_io };
    for (size_t i = 0; i < EBB_ARRAY_LEN(ios); i++) {
        if (ios[i]->fd >= 0) {
            ebb_io_stop(ctl->loop, ios[i]);
            close(ios[i]->fd);
            ios[i]->fd = -1;
        }
    }
    while (ctl->admin_conns.next && !ebb_list_empty(&ctl->admin_conns)) {
        struct admin_conn *a = ebb_list_entry(ctl->admin_conns.next, struct admin_conn, link);
        a->exit_after = false;
        admin_close(a);
    }
}

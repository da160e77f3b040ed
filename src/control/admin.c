/*
 * admin.c - the admin (15000), status (15020) and readiness (15021) HTTP
 * endpoints, served by the control thread.  One request per connection
 * ("connection: close"): probes and operators, not traffic.
 *
 * Each listener kind has a route table {methods, path, handler, help}; one
 * dispatcher answers wrong methods (405) and unknown paths (404) for all
 * three, and /help is printed from the admin table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/admin.h"
#include "ebb/admin_query.h"
#include "ebb/buf.h"
#include "ebb/config_load.h"
#include "ebb/control.h"
#include "ebb/core.h"
#include "ebb/h1_parse.h"
#include "ebb/log.h"
#include "ebb/server.h"

#define ADMIN_MAX_REQUEST (64 * 1024)
#define ADMIN_TIMEOUT_MS  10000

/* One admin connection.  Owned by the admin server (adm->conns); freed
 * deferred, after the loop turn that closed it. */
struct admin_conn {
    struct ebb_io        io;
    struct ebb_list      link;       /* in adm->conns */
    struct ebb_admin    *adm;
    enum ebb_admin_kind  kind;       /* which port accepted it: its route table */
    bool                 loopback;   /* peer is 127.0.0.0/8 or ::1 */
    bool                 responded;  /* wbuf holds the whole answer */
    bool                 exit_after; /* /quitquitquit: exit once the answer is out */
    struct ebb_buf       rbuf;       /* the request, up to ADMIN_MAX_REQUEST + head */
    struct ebb_buf       wbuf;       /* the answer */
    struct ebb_timer     timer;      /* ADMIN_TIMEOUT_MS for the whole exchange */
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

/* --- responses --- */

static void respond(struct admin_conn *a, int status, const char *ctype, const char *body,
                    size_t len)
{
    const char *reason = status == 200 ? "OK" : status == 403 ? "Forbidden"
                       : status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
                       : status == 400 ? "Bad Request" : status == 503 ? "Service Unavailable"
                       : "Error";
    a->wbuf.max = len + 1024;
    if (ebb_buf_appendf(&a->wbuf, "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                        "connection: close\r\n\r\n", status, reason, ctype, len) != 0 ||
        ebb_buf_append(&a->wbuf, body, len) != 0)
        ebb_buf_reset(&a->wbuf);   /* out of memory: the connection closes without an answer */
    a->responded = true;
}

static void respond_text(struct admin_conn *a, int status, const char *text)
{
    respond(a, status, "text/plain", text, strlen(text));
}

/* Sends b, or 503 when rc says an append to it failed: an answer missing lines, or JSON cut
 * short, is never sent. */
static void respond_buf(struct admin_conn *a, int status, const char *ctype, struct ebb_buf *b,
                        int rc)
{
    if (rc)
        respond_text(a, 503, "out of memory: the answer was not complete\n");
    else
        respond(a, status, ctype, ebb_buf_start(b), ebb_buf_len(b));
    ebb_buf_free(b);
}

void ebb_admin_split_target(const char *p, size_t len, size_t *plen, const char **q,
                            size_t *qlen)
{
    const char *mark = len ? memchr(p, '?', len) : NULL;

    *plen = mark ? (size_t)(mark - p) : len;
    *qlen = mark ? len - *plen - 1 : 0;
    *q = mark ? mark + 1 : "";
}

const char *ebb_admin_query_get(const char *q, size_t qlen, const char *name, char *out,
                                size_t olen)
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
        if (!amp)
            break;
        p = amp + 1;
    }
    return NULL;
}

/* --- handlers: one per route; q is the query string (without '?') --- */

static struct ebb_control *conn_ctl(const struct admin_conn *a)
{
    return a->adm->ctl;
}

static struct ebb_server *conn_srv(const struct admin_conn *a)
{
    return a->adm->ctl->srv;
}

static bool query_has(const char *q, size_t qlen, const char *name)
{
    char val[256];
    return ebb_admin_query_get(q, qlen, name, val, sizeof(val)) != NULL;
}

static void h_help(struct admin_conn *a, const char *q, size_t qlen);

/* Admin answers have no ceiling of their own (a config with thousands of clusters makes a
 * long /config_dump): they are bounded by the config and the stats, and a failed append is a
 * 503 (respond_buf), never a cut answer.  The one ceiling is that of a heap. */
#define ADMIN_ANSWER_MAX (SIZE_MAX / 2)

static void h_stats(struct admin_conn *a, const char *q, size_t qlen)
{
    struct ebb_buf b = { .max = ADMIN_ANSWER_MAX };
    char val[256];
    bool usedonly = query_has(q, qlen, "usedonly");
    const char *filter = ebb_admin_query_get(q, qlen, "filter", val, sizeof(val));
    int rc = ebb_stats_render_text(conn_srv(a), &b, usedonly, filter);
    respond_buf(a, 200, "text/plain", &b, rc);
}

static void h_prometheus(struct admin_conn *a, const char *q, size_t qlen)
{
    struct ebb_buf b = { .max = ADMIN_ANSWER_MAX };
    int rc = ebb_stats_render_prometheus(conn_srv(a), &b);
    respond_buf(a, 200, "text/plain; version=0.0.4", &b, rc);
}

static void h_ready(struct admin_conn *a, const char *q, size_t qlen)
{
    struct ebb_control *ctl = conn_ctl(a);
    char text[32];
    snprintf(text, sizeof(text), "%s\n", ebb_control_ready_name(ctl));
    respond_text(a, ebb_control_ready(ctl) ? 200 : 503, text);
}

static void h_server_info(struct admin_conn *a, const char *q, size_t qlen)
{
    struct ebb_server *srv = conn_srv(a);
    struct ebb_buf b = { .max = ADMIN_ANSWER_MAX };
    uint64_t up = (ebb_now_ms() - srv->start_ms) / 1000;
    int rc = ebb_buf_appendf(&b, "{\"version\":\"ebb/%s\",\"state\":\"%s\",\"drain_phase\":\"%s\","
                    "\"uptime_current_epoch\":\"%llus\",\"uptime_all_epochs\":\"%llus\","
                    "\"hot_restart_version\":\"disabled\",\"command_line_options\":{"
                    "\"concurrency\":%zu,\"argv\":[",
                    EBB_VERSION, ebb_server_state(srv) == EBB_STATE_LIVE ? "LIVE" : "DRAINING",
                    ebb_drain_phase_name(conn_ctl(a)->phase), (unsigned long long)up,
                    (unsigned long long)up, srv->nworkers);
    for (int i = 0; i < srv->argc; i++) {
        if (i)
            rc |= ebb_buf_append(&b, ",", 1);
        rc |= ebb_buf_append_json_str(&b, srv->argv[i]);
    }
    rc |= ebb_buf_appendf(&b, "]}}\n");
    respond_buf(a, 200, "application/json", &b, rc);
}

static void h_config_dump(struct admin_conn *a, const char *q, size_t qlen)
{
    struct ebb_buf b = { .max = ADMIN_ANSWER_MAX };
    char *js = ebb_config_to_json(conn_srv(a)->cfg);
    int rc;

    if (!js) {
        respond_text(a, 503, "out of memory\n");
        return;
    }
    size_t n = strlen(js);
    while (n && (js[n - 1] == '\n' || js[n - 1] == ' '))
        n--;
    if (n && js[n - 1] == '}') {
        rc = ebb_buf_append(&b, js, n - 1);
        rc |= ebb_buf_appendf(&b, ",\"drain_state\":");
    } else {
        rc = ebb_buf_appendf(&b, "{\"drain_state\":");
    }
    rc |= ebb_drain_json(conn_ctl(a), &b);
    rc |= ebb_buf_appendf(&b, "}\n");
    free(js);
    respond_buf(a, 200, "application/json", &b, rc);
}

static void h_listeners(struct admin_conn *a, const char *q, size_t qlen)
{
    const struct ebb_config *cfg = conn_srv(a)->cfg;
    struct ebb_buf b = { .max = ADMIN_ANSWER_MAX };
    int rc = 0;

    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct ebb_listener_cfg *lc = &cfg->listeners[i];
        rc |= ebb_buf_appendf(&b, "%s::%s:%u::%s::%s\n", lc->name, lc->address, lc->port,
                              lc->direction == EBB_DIR_INBOUND ? "inbound" : "outbound",
                              lc->protocol == EBB_PROTO_HTTP ? "http" : "tcp");
    }
    respond_buf(a, 200, "text/plain", &b, rc);
}

static void h_clusters(struct admin_conn *a, const char *q, size_t qlen)
{
    struct ebb_server *srv = conn_srv(a);
    const struct ebb_config *cfg = srv->cfg;
    struct ebb_buf b = { .max = ADMIN_ANSWER_MAX };
    const struct ebb_stats *sum = ebb_server_stats(srv);
    int rc = 0;

    for (size_t i = 0; i < cfg->nclusters; i++) {
        const struct ebb_cluster_cfg *cc = &cfg->clusters[i];
        const struct ebb_cluster_stats *st = &sum->clusters[i];
        rc |= ebb_buf_appendf(&b, "%s::observability_name::%s\n", cc->name, cc->name);
        rc |= ebb_buf_appendf(&b, "%s::protocol::%s\n", cc->name,
                              cc->protocol == EBB_UP_H2C ? "h2c" : "http1");
        for (size_t j = 0; j < cc->nendpoints; j++) {
            const char *ep = srv->addrs[i]->a[j].str;
            rc |= ebb_buf_appendf(&b, "%s::%s::health_flags::healthy\n", cc->name, ep);
        }
        rc |= ebb_buf_appendf(&b, "%s::cx_active::%lld\n%s::rq_total::%llu\n"
                              "%s::cx_connect_fail::%llu\n", cc->name,
                              (long long)ebb_stat_get(st->cx_active), cc->name,
                              (unsigned long long)ebb_stat_get(st->rq_total), cc->name,
                              (unsigned long long)ebb_stat_get(st->cx_connect_fail));
    }
    respond_buf(a, 200, "text/plain", &b, rc);
}

static void h_quit(struct admin_conn *a, const char *q, size_t qlen)
{
    respond_text(a, 200, "OK\n");
    a->exit_after = true;
}

static void h_drain_listeners(struct admin_conn *a, const char *q, size_t qlen)
{
    ebb_drain_listeners(conn_ctl(a), query_has(q, qlen, "inboundonly"),
                        query_has(q, qlen, "graceful"), query_has(q, qlen, "skip_exit"));
    respond_text(a, 200, "OK\n");
}

static void h_status_drain(struct admin_conn *a, const char *q, size_t qlen)
{
    ebb_drain_status(conn_ctl(a));
    respond_text(a, 200, "OK\n");
}

static void h_healthcheck_fail(struct admin_conn *a, const char *q, size_t qlen)
{
    ebb_drain_healthcheck(conn_ctl(a), false);
    respond_text(a, 200, "OK\n");
}

static void h_healthcheck_ok(struct admin_conn *a, const char *q, size_t qlen)
{
    ebb_drain_healthcheck(conn_ctl(a), true);
    respond_text(a, 200, "OK\n");
}

/* --- route tables --- */

/* Methods a route answers.  GET includes HEAD (answered with the body). */
#define M_GET   1u   /* GET, HEAD */
#define M_POST  2u   /* POST from a loopback peer only: the mutating endpoints */
#define M_OTHER 4u   /* any other method */
#define M_ANY   (M_GET | M_POST | M_OTHER)

typedef void (*admin_handler)(struct admin_conn *a, const char *q, size_t qlen);

struct admin_route {
    unsigned      methods;  /* M_*: a POST-only route is mutating (loopback peers only) */
    const char   *path;     /* matched exactly, without the query string */
    admin_handler handler;  /* writes the whole answer */
    const char   *query;    /* query syntax shown after the path by /help, or "" */
    const char   *help;     /* what it does, for /help */
};

/* A listener kind's routes and what it answers when none fits. */
struct admin_table {
    const char               *name;       /* "admin", "status", "readiness": startup errors */
    const struct admin_route *routes;
    size_t                    nroutes;
    const char               *not_found;  /* 404 body: unknown path, or a read-only route
                                             asked with another method */
    const char               *bad_method; /* 405 body instead of not_found for methods other
                                             than GET, HEAD and POST; NULL: not_found */
};

static const struct admin_route admin_routes[] = {
    { M_GET, "/", h_help, "", "this help" },
    { M_GET, "/help", h_help, "", "this help" },
    { M_GET, "/stats", h_stats, "", "counters and gauges (?usedonly, ?filter=REGEX)" },
    { M_GET, "/stats/prometheus", h_prometheus, "", "the same in Prometheus text format" },
    { M_GET, "/listeners", h_listeners, "", "listener names and addresses" },
    { M_GET, "/clusters", h_clusters, "", "clusters, endpoints and their counters" },
    { M_GET, "/server_info", h_server_info, "", "version, state, uptime, command line (JSON)" },
    { M_GET, "/config_dump", h_config_dump, "",
      "effective configuration with the source of every value, drain state (JSON)" },
    { M_GET, "/ready", h_ready, "", "200 LIVE when ready, 503 when draining" },
    { M_POST, "/drain_listeners", h_drain_listeners, "[?inboundonly][&graceful][&skip_exit]",
      "drain listeners (never exits)" },
    { M_POST, "/healthcheck/fail", h_healthcheck_fail, "", "readiness 503 and drain connections" },
    { M_POST, "/healthcheck/ok", h_healthcheck_ok, "", "readiness 200 again" },
    { M_POST, "/quitquitquit", h_quit, "", "exit now" },
};

static const struct admin_route status_routes[] = {
    { M_ANY, "/healthz/ready", h_ready, "", "200 LIVE when ready, 503 when draining" },
    { M_GET, "/stats/prometheus", h_prometheus, "", "counters and gauges for Prometheus" },
    { M_POST, "/drain", h_status_drain, "",
      "drain inbound, readiness stays 200; a later SIGTERM exits at once" },
    { M_POST, "/quitquitquit", h_quit, "", "exit now" },
};

static const struct admin_route ready_routes[] = {
    { M_ANY, "/healthz/ready", h_ready, "", "200 LIVE when ready, 503 when draining" },
};

static const struct admin_table tables[EBB_ADMIN_NKINDS] = {
    [EBB_ADMIN_ADMIN] = { "admin", admin_routes, EBB_ARRAY_LEN(admin_routes),
                          "not found: see /help\n", "method not allowed\n" },
    [EBB_ADMIN_STATUS] = { "status", status_routes, EBB_ARRAY_LEN(status_routes),
                           "not found\n", NULL },
    [EBB_ADMIN_READY] = { "readiness", ready_routes, EBB_ARRAY_LEN(ready_routes),
                          "not found: the readiness port serves GET /healthz/ready only\n", NULL },
};

static void h_help(struct admin_conn *a, const char *q, size_t qlen)
{
    const struct admin_table *t = &tables[EBB_ADMIN_ADMIN];
    struct ebb_buf b = { .max = 1 << 16 };
    int rc = ebb_buf_appendf(&b, "admin commands are:\n");
    for (size_t i = 0; i < t->nroutes; i++) {
        const struct admin_route *r = &t->routes[i];
        rc |= ebb_buf_appendf(&b, "  %s%s%s: %s\n", r->methods == M_POST ? "POST " : "",
                              r->path, r->query, r->help);
    }
    respond_buf(a, 200, "text/plain", &b, rc);
}

static unsigned method_bit(const struct ebb_h1_msg *m)
{
    if ((m->method.len == 3 && memcmp(m->method.p, "GET", 3) == 0) ||
        (m->method.len == 4 && memcmp(m->method.p, "HEAD", 4) == 0))
        return M_GET;
    if (m->method.len == 4 && memcmp(m->method.p, "POST", 4) == 0)
        return M_POST;
    return M_OTHER;
}

static const struct admin_route *find_route(const struct admin_table *t, const char *path,
                                            size_t plen)
{
    for (size_t i = 0; i < t->nroutes; i++)
        if (strlen(t->routes[i].path) == plen && memcmp(t->routes[i].path, path, plen) == 0)
            return &t->routes[i];
    return NULL;
}

/* Answers one parsed request from the connection's route table. */
static void dispatch(struct admin_conn *a, const struct ebb_h1_msg *m)
{
    const struct admin_table *t = &tables[a->kind];
    const char *q;
    size_t plen, qlen;
    unsigned method = method_bit(m);

    ebb_admin_split_target(m->path.p, m->path.len, &plen, &q, &qlen);
    const struct admin_route *r = find_route(t, m->path.p, plen);

    if (r && (r->methods & method)) {
        if (r->methods == M_POST && !a->loopback)
            respond_text(a, 403, "forbidden: only from localhost\n");
        else
            r->handler(a, q, qlen);
    } else if (r && r->methods == M_POST) {
        respond_text(a, 405, "method not allowed: use POST\n");
    } else if (method == M_OTHER && t->bad_method) {
        respond_text(a, 405, t->bad_method);
    } else {
        respond_text(a, 404, t->not_found);
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
    struct ebb_control *ctl = conn_ctl(a);
    ebb_timer_stop(ctl->loop, &a->timer);
    ebb_io_stop(ctl->loop, &a->io);
    close(a->io.fd);
    a->io.fd = -1;
    ebb_list_del(&a->link);
    if (a->exit_after)
        ebb_drain_exit(ctl, "/quitquitquit");
    ebb_loop_defer(ctl->loop, &a->dfr, admin_free, a);
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
        ssize_t n = ebb_buf_recv_fd(&a->rbuf, a->io.fd);
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
        ssize_t n = 0;
        while (ebb_buf_len(&a->wbuf) && (n = ebb_buf_write_fd(&a->wbuf, a->io.fd)) > 0)
            ;
        if (n < 0 && n != EBB_EAGAIN) {
            /* the client reset (or is gone): writing again would fail again, and the write
             * interest of a dead socket fires at once, so the control thread spun on it until
             * the admin timeout (found by test_fault: 30 times the sends of a run without) */
            admin_close(a);
            return;
        }
        if (ebb_buf_len(&a->wbuf) == 0) {
            shutdown(a->io.fd, SHUT_WR);
            admin_close(a);
            return;
        }
        if (ebb_io_set(loop, &a->io, EBB_WRITE) < 0)
            admin_close(a);   /* nothing would say when the socket takes more */
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

/* A listening socket is readable: accept up to 32 connections.  The port
 * (adm->ports[k]) tells which route table they get. */
static void accept_admin(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct ebb_admin *adm = io->data;
    enum ebb_admin_kind k = (enum ebb_admin_kind)(io - adm->ports);
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
        a->adm = adm;
        a->kind = k;
        a->loopback = is_loopback(&ss);
        a->rbuf.max = ADMIN_MAX_REQUEST + 8192;
        a->timer.cb = admin_timeout;
        a->timer.data = a;
        ebb_list_add_tail(&adm->conns, &a->link);
        ebb_timer_start(loop, &a->timer, ADMIN_TIMEOUT_MS);
        if (ebb_io_set(loop, &a->io, EBB_READ) < 0)
            admin_close(a);
    }
}

static int open_port(struct ebb_admin *adm, enum ebb_admin_kind k, const char *addr,
                     uint16_t port, char *err, size_t errlen)
{
    struct ebb_io *io = &adm->ports[k];
    char tmp[256];
    io->fd = ebb_listen_socket(addr, port, false, tmp, sizeof(tmp));
    if (io->fd < 0) {
        snprintf(err, errlen, "%s port: %s", tables[k].name, tmp);
        return EBB_EIO;
    }
    io->cb = accept_admin;
    io->data = adm;
    return ebb_io_set(adm->ctl->loop, io, EBB_READ);
}

int ebb_admin_init(struct ebb_admin *adm, struct ebb_control *ctl, char *err, size_t errlen)
{
    const struct ebb_config *cfg = ctl->srv->cfg;
    int rc;

    adm->ctl = ctl;
    for (size_t k = 0; k < EBB_ADMIN_NKINDS; k++)
        adm->ports[k].fd = -1;
    ebb_list_init(&adm->conns);
    rc = open_port(adm, EBB_ADMIN_ADMIN, cfg->admin_address, cfg->proxy.admin_port, err, errlen);
    if (rc == 0)
        rc = open_port(adm, EBB_ADMIN_STATUS, cfg->status_address, cfg->proxy.status_port, err,
                       errlen);
    if (rc == 0 && cfg->ready_port)
        rc = open_port(adm, EBB_ADMIN_READY, cfg->ready_address, cfg->ready_port, err, errlen);
    return rc;
}

void ebb_admin_close(struct ebb_admin *adm)
{
    if (!adm->ctl)
        return;
    for (size_t k = 0; k < EBB_ADMIN_NKINDS; k++) {
        struct ebb_io *io = &adm->ports[k];
        if (io->fd >= 0) {
            ebb_io_stop(adm->ctl->loop, io);
            close(io->fd);
            io->fd = -1;
        }
    }
    while (!ebb_list_empty(&adm->conns)) {
        struct admin_conn *a = ebb_list_entry(adm->conns.next, struct admin_conn, link);
        a->exit_after = false;
        admin_close(a);
    }
}

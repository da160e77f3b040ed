/*
 * h1.c - the HTTP/1.1 downstream codec and the h1 -> h1 proxy exchange.
 *
 * A connection carries one exchange at a time; pipelined requests wait in
 * the read buffer until the previous response is complete (so they are
 * answered in order).  Event handlers only move bytes between sockets and
 * buffers; h1_run() then advances the state machine as far as the buffers
 * allow and sets the socket interests.  Bodies are decoded and re-framed
 * through bounded buffers, so memory stays flat whatever the body size.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "ebb/cluster.h"
#include "ebb/codecs.h"
#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/core.h"
#include "ebb/h1_parse.h"
#include "ebb/h2.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/proxy.h"
#include "ebb/server.h"
#include "ebb/stats.h"
#include "ebb/tunnel.h"
#include "ebb/upstream.h"
#include "ebb/worker.h"

enum h1_state {
    H1_IDLE = 0,   /* waiting for (the rest of) a request head */
    H1_UPSTREAM,   /* request accepted: connecting to / exchanging with the upstream */
    H1_REPLY,      /* writing a locally generated answer */
    H1_TUNNEL,     /* after 101: raw bytes both ways */
};

static const char *const h1_state_names[] = { "idle", "upstream", "reply", "tunnel" };

/* Codec state of one downstream HTTP/1 connection.  Owned by the conn; it
 * holds a reference to at most one upstream connection. */
struct h1 {
    struct ebb_conn   *c;
    enum h1_state      state;
    bool               dead;          /* destroyed; free pending */
    bool               accounted;     /* current exchange logged and counted (h1_account_end) */
    struct ebb_timer   timer;         /* idle / request-headers / upstream request timeout */
    struct ebb_timer   drain_timer;   /* idle close during a drain */
    struct ebb_timer   stall_timer;   /* exchange waiting on the client (body or reading) */
    bool               read_eof;      /* client closed its write side */
    bool               close_after;   /* close the connection when this exchange ends */
    bool               drain_close;   /* ... because of the drain */
    bool               headers_timer; /* timer is the request-headers timeout */
    bool               seen_request;  /* a request head arrived: no h2c preface any more */
    struct ebb_h2u_stream *us;        /* upstream h2c stream (cluster protocol h2c), else NULL */
    bool               us_end;        /* ... its response ended (bytes may still wait there) */
    struct ebb_buf     us_trl;        /* request trailers (raw) / response trailers (lines) */
    /* the current exchange */
    uint64_t           start_ms;
    long               cluster;       /* cluster index, -1 none */
    struct ebb_upconn *u;             /* lent upstream connection */
    const char        *up_addr;       /* endpoint of the last upstream tried (for the log) */
    bool               head_queued;   /* request head written into u->wbuf */
    struct ebb_buf     uphead;        /* request head as sent upstream (kept for one retry) */
    int                retries;
    struct ebb_h1_body req_body;
    enum ebb_h1_framing req_framing;
    bool               req_done;      /* whole request body read from the client */
    bool               req_last_chunk;/* "0\r\n" queued upstream */
    uint64_t           req_bytes;     /* request body bytes */
    bool               head_req;      /* HEAD request */
    bool               upgrade_req;   /* Upgrade requested */
    bool               expect_continue;
    int                minor;         /* client's HTTP/1.minor */
    bool               resp_started;  /* any response byte from upstream */
    bool               resp_head_done;/* final response head forwarded */
    bool               resp_done;
    int                status;
    enum ebb_h1_framing resp_in;      /* upstream framing */
    bool               resp_chunk_out;/* re-chunk towards the client */
    bool               resp_last_chunk;
    struct ebb_h1_body resp_body;
    uint64_t           resp_bytes;
    bool               up_keepalive;  /* upstream allows reuse */
    unsigned           rf;            /* EBB_RF_* */
    struct ebb_tunnel  tun;
    char method[24];
    char path[512];
    char authority[256];
    char request_id[64];
};

static __thread struct ebb_h1_msg h1_msg;   /* scratch for parsing (large) */

static void h1_run(struct h1 *h);
static void h1_arm_drain_close(struct h1 *h);
static void h1_upstream_cb(void *owner, struct ebb_upconn *u, uint32_t events);
static void h1_h2u_start(struct h1 *h);
static bool h1_h2u_pump(struct h1 *h);

/* An exchange that waits on the client (for request body bytes, or for it to
 * read the response) gives up after this long without a client socket event,
 * or idle_timeout if shorter: a client that stops mid-body or stops reading
 * must not hold the connection and its upstream forever (SPEC §7; nginx's
 * client_body_timeout and send_timeout are 60 s). */
#define H1_CLIENT_STALL_MS 60000

static const struct ebb_config *h1_cfg(const struct h1 *h) { return h->c->w->srv->cfg; }
static struct ebb_listener_stats *h1_st(const struct h1 *h) { return h->c->l->st; }

static void span_copy(char *dst, size_t cap, const struct ebb_h1_span *s)
{
    size_t n = EBB_MIN(s->len, cap - 1);
    memcpy(dst, s->p, n);
    dst[n] = '\0';
}

static bool span_ieq(const struct ebb_h1_span *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->len == n && strncasecmp(s->p, lit, n) == 0;
}

/* --- timers --- */

static void h1_arm_idle(struct h1 *h)
{
    const struct ebb_config *cfg = h1_cfg(h);
    h->headers_timer = ebb_buf_len(&h->c->rbuf) > 0;
    ebb_timer_start(h->c->w->loop, &h->timer,
                    h->headers_timer ? cfg->limits.request_headers_timeout_ms
                                     : cfg->limits.idle_timeout_ms);
}

static void h1_reply(struct h1 *h, int status, unsigned rf, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void h1_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h1 *h = t->data;

    switch (h->state) {
    case H1_IDLE:
        if (!h->headers_timer) {
            ebb_stat_inc(h1_st(h)->cx_idle_timeout);
            ebb_conn_close_staged(h->c);
            return;
        }
        ebb_stat_inc(h1_st(h)->rq_timeout);
        h->close_after = true;
        h1_reply(h, 408, 0, "ebb: request headers not received within %llu ms\n",
                 (unsigned long long)h1_cfg(h)->limits.request_headers_timeout_ms);
        break;
    case H1_UPSTREAM:
        if (h->resp_head_done)
            return;
        ebb_stat_inc(h->c->w->clusters[h->cluster].st->rq_timeout);
        h->close_after = h->close_after || !h->req_done;
        h1_reply(h, 504, EBB_RF_UT, "ebb: upstream request timeout: cluster \"%s\"\n",
                 h->c->w->clusters[h->cluster].cfg->name);
        break;
    default:
        return;
    }
    if (!h->dead)
        h1_run(h);
}

static void h1_drain_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h1 *h = t->data;
    /* still idle with nothing half-received: close gracefully (SPEC §3.3.5) */
    if (h->state == H1_IDLE && ebb_buf_len(&h->c->rbuf) == 0) {
        ebb_stat_inc(h1_st(h)->cx_drain_close);
        ebb_debug("h1", "#%llu idle connection closed by drain", (unsigned long long)h->c->id);
        ebb_conn_close_staged(h->c);
    }
}

static void h1_abort(struct h1 *h, unsigned rf, bool reset);

static void h1_stall_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h1 *h = t->data;
    struct ebb_conn *c = h->c;

    ebb_stat_inc(h1_st(h)->rq_timeout);
    if (h->state == H1_UPSTREAM && !h->resp_head_done && ebb_buf_len(&c->wbuf) == 0) {
        ebb_debug("h1", "#%llu request body stalled", (unsigned long long)c->id);
        h->close_after = true;
        h1_reply(h, 408, EBB_RF_DC, "ebb: request body not received within %llu ms\n",
                 (unsigned long long)EBB_MIN(h1_cfg(h)->limits.idle_timeout_ms,
                                             H1_CLIENT_STALL_MS));
        if (!h->dead)
            h1_run(h);
        return;
    }
    ebb_debug("h1", "#%llu client stopped reading the response", (unsigned long long)c->id);
    h1_abort(h, EBB_RF_DC, true);
}

/* --- ending an exchange --- */

static void h1_log(struct h1 *h)
{
    struct ebb_access a = {
        .listener = h->c->l->cfg->name,
        .method = h->method,
        .authority = h->authority,
        .path = h->path,
        .protocol = h->minor ? "HTTP/1.1" : "HTTP/1.0",
        .status = h->status,
        .bytes_received = h->req_bytes,
        .bytes_sent = h->resp_bytes,
        .duration_ms = ebb_loop_now(h->c->w->loop) - h->start_ms,
        .upstream_host = h->u ? h->u->addr_str : h->up_addr,
        .upstream_cluster = h->cluster >= 0 ? h->c->w->clusters[h->cluster].cfg->name : NULL,
        .flags = h->rf,
        .request_id = h->request_id,
        .peer = h->c->peer_str,
    };
    ebb_access_log(&a);
}

/* Closes the books on the current exchange once: access log line and rq_active.  Every
 * way an exchange ends (complete, aborted, tunnel closed, connection destroyed) goes here. */
static void h1_account_end(struct h1 *h)
{
    if (h->state == H1_IDLE || h->accounted)
        return;
    h->accounted = true;
    h1_log(h);
    ebb_stat_dec(h1_st(h)->rq_active);
}

static void h1_release_upstream(struct h1 *h, bool reusable)
{
    if (h->us) {   /* h1 -> h2c */
        ebb_h2u_close(h->us);
        h->us = NULL;
    }
    if (!h->u)
        return;
    struct ebb_cluster_rt *cl = h->u->cl;
    if (h->head_queued)
        ebb_stat_dec(cl->st->rq_active);
    ebb_upstream_release(h->u, reusable);
    h->u = NULL;
}

static void h1_reset_exchange(struct h1 *h)
{
    ebb_buf_reset(&h->uphead);
    h->state = H1_IDLE;
    h->cluster = -1;
    h->head_queued = false;
    h->retries = 0;
    h->req_done = h->req_last_chunk = false;
    h->req_bytes = h->resp_bytes = 0;
    h->head_req = h->upgrade_req = h->expect_continue = false;
    h->resp_started = h->resp_head_done = h->resp_done = false;
    h->resp_chunk_out = h->resp_last_chunk = false;
    h->status = 0;
    h->rf = 0;
    h->accounted = false;
    h->up_keepalive = false;
    h->us_end = false;
    ebb_buf_reset(&h->us_trl);
    h->method[0] = h->path[0] = h->authority[0] = h->request_id[0] = '\0';
    h->up_addr = NULL;
}

/* The response is complete (or abandoned): account, log, and either wait
 * for the next request or close. */
static void h1_end_exchange(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    bool reusable = h->resp_done && h->req_done && h->up_keepalive &&
                    h->resp_in != EBB_H1_BODY_EOF;

    if (h->drain_close)
        h->rf |= EBB_RF_DR;
    h1_account_end(h);
    if (c->flags & EBB_CONN_F_DRAINING)
        ebb_stat_inc(h1_st(h)->rq_completed_in_drain);
    h1_release_upstream(h, reusable);
    ebb_timer_stop(c->w->loop, &h->timer);
    ebb_timer_stop(c->w->loop, &h->stall_timer);

    /* a response whose head went out before the drain started could not say "close":
     * the connection stays open, the client's next request gets "connection: close", and
     * an idle connection is closed by the drain timer (SPEC §3.3.5) */
    bool must_close = h->close_after || !h->req_done ||
                      (h->read_eof && ebb_buf_len(&c->rbuf) == 0);
    if (must_close) {
        if (h->drain_close)
            ebb_stat_inc(h1_st(h)->cx_drain_close);
        ebb_conn_close_staged(c);
        return;
    }
    h1_reset_exchange(h);
    h1_arm_idle(h);
    if ((c->flags & EBB_CONN_F_DRAINING) && !ebb_timer_active(&h->drain_timer))
        h1_arm_drain_close(h);
}

/* Abandons the exchange and the connection at once; with reset the client
 * gets an RST (never a silently truncated response). */
static void h1_abort(struct h1 *h, unsigned rf, bool reset)
{
    h->rf |= rf;
    if (rf & EBB_RF_DC)
        ebb_stat_inc(h1_st(h)->rq_rx_reset);
    if (reset)
        ebb_stat_inc(h1_st(h)->rq_tx_reset);
    h1_account_end(h);
    h1_release_upstream(h, false);
    if (reset)
        ebb_conn_flush(h->c);   /* hand over what we have; the RST marks the end as broken */
    ebb_conn_close(h->c, reset);
}

static void h1_count_status(struct h1 *h, int status)
{
    h->status = status;
    if (status >= 100 && status < 600)
        ebb_stat_inc(h1_st(h)->rq_xx[status / 100]);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return "Error";
    }
}

/* Answers the current request locally (before any upstream response byte
 * reached the client).  The connection is closed afterwards when the
 * request body was not consumed or close_after is set. */
static void h1_reply(struct h1 *h, int status, unsigned rf, const char *fmt, ...)
{
    struct ebb_conn *c = h->c;
    char body[512];
    va_list ap;

    if (h->resp_head_done) {
        h1_abort(h, rf, true);
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(body))
        n = sizeof(body) - 1;

    if (h->state == H1_IDLE) {
        /* the request never became an exchange: account for it here */
        h->start_ms = ebb_loop_now(c->w->loop);
        ebb_stat_inc(h1_st(h)->rq_total);
        ebb_stat_inc(h1_st(h)->rq_active);
    }
    h1_release_upstream(h, false);
    h->rf |= rf;
    if (!h->req_done)
        h->close_after = true;
    if (c->flags & EBB_CONN_F_DRAINING) {
        h->close_after = true;
        h->drain_close = true;
    }
    h1_count_status(h, status);
    ebb_buf_reset(&c->wbuf);
    ebb_buf_appendf(&c->wbuf,
                    "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                    "%s\r\n%.*s",
                    status, reason_phrase(status), n,
                    h->close_after ? "connection: close\r\n" : "", n, body);
    h->resp_bytes = (uint64_t)n;
    h->resp_head_done = true;
    h->resp_done = true;
    h->state = H1_REPLY;
}

/* --- request side --- */

/* True when the request asks to upgrade to h2c (RFC 7540 §3.2, removed in RFC 9113).
 * ebb does not forward that upgrade, as Envoy does not: an upstream accepting it would
 * turn the connection into an HTTP/2 tunnel whose requests ebb never sees ("h2c
 * smuggling"); the request goes upstream as a plain HTTP/1.1 request. */
static bool h1_upgrade_h2c(const struct ebb_h1_msg *m)
{
    const struct ebb_h1_header *up = ebb_h1_find(m, "upgrade");
    if (!up)
        return false;
    const char *p = up->value.p, *end = p + up->value.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *t = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (p - t == 3 && strncasecmp(t, "h2c", 3) == 0)
            return true;
    }
    return false;
}

static int build_upstream_head(struct h1 *h, const struct ebb_h1_msg *m)
{
    struct ebb_buf *b = &h->uphead;
    const struct ebb_h1_header *xff = NULL;
    bool have_rid = false;
    int rc = 0;

    b->max = h1_cfg(h)->limits.h1.max_head + 4096;
    rc |= ebb_buf_appendf(b, "%.*s %.*s HTTP/1.1\r\n", (int)m->method.len, m->method.p,
                          (int)m->path.len, m->path.p);
    /* Host is written from the parsed authority (the URI's for absolute-form, RFC 9112
     * §3.2.2), never copied: "Connection: host" must not be able to drop it */
    if (m->authority.len)
        rc |= ebb_buf_appendf(b, "host: %.*s\r\n", (int)m->authority.len, m->authority.p);
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *hd = &m->headers[i];
        if (ebb_h1_is_hop_by_hop(m, &hd->name) || span_ieq(&hd->name, "content-length") ||
            span_ieq(&hd->name, "x-forwarded-proto"))
            continue;
        if (span_ieq(&hd->name, "host"))
            continue;
        if (span_ieq(&hd->name, "x-forwarded-for")) {
            xff = hd;
            continue;
        }
        if (span_ieq(&hd->name, "x-request-id") && hd->value.len > 0) {
            if (have_rid)
                continue;
            have_rid = true;
            span_copy(h->request_id, sizeof(h->request_id), &hd->value);
        }
        rc |= ebb_buf_appendf(b, "%.*s: %.*s\r\n", (int)hd->name.len, hd->name.p,
                              (int)hd->value.len, hd->value.p);
    }
    if (xff)
        rc |= ebb_buf_appendf(b, "x-forwarded-for: %.*s, %s\r\n", (int)xff->value.len,
                              xff->value.p, h->c->peer_str);
    else
        rc |= ebb_buf_appendf(b, "x-forwarded-for: %s\r\n", h->c->peer_str);
    rc |= ebb_buf_appendf(b, "x-forwarded-proto: http\r\n");
    if (!have_rid) {
        ebb_request_id(&h->c->w->rand_state, h->request_id);
        rc |= ebb_buf_appendf(b, "x-request-id: %s\r\n", h->request_id);
    }
    if (m->framing == EBB_H1_BODY_LENGTH)
        rc |= ebb_buf_appendf(b, "content-length: %llu\r\n", (unsigned long long)m->content_length);
    else if (m->framing == EBB_H1_BODY_CHUNKED)
        rc |= ebb_buf_appendf(b, "transfer-encoding: chunked\r\n");
    if (h->upgrade_req) {
        const struct ebb_h1_header *up = ebb_h1_find(m, "upgrade");
        rc |= ebb_buf_appendf(b, "connection: upgrade\r\nupgrade: %.*s\r\n",
                              up ? (int)up->value.len : 0, up ? up->value.p : "");
    }
    rc |= ebb_buf_append(b, "\r\n", 2);
    return rc ? EBB_ETOOBIG : 0;
}

/* The cluster's request_timeout runs from the end of the request (Envoy's route timeout),
 * so a slow upload is not a slow upstream; it stops at the response head. */
static void h1_arm_request_timeout(struct h1 *h)
{
    uint64_t rt = h->cluster >= 0 ? h->c->w->clusters[h->cluster].cfg->request_timeout_ms : 0;
    if (rt && h->req_done && !h->resp_head_done)
        ebb_timer_start(h->c->w->loop, &h->timer, rt);
    else
        ebb_timer_stop(h->c->w->loop, &h->timer);
}

static void h1_queue_head(struct h1 *h)
{
    struct ebb_upconn *u = h->u;
    if (ebb_buf_append(&u->wbuf, ebb_buf_start(&h->uphead), ebb_buf_len(&h->uphead)) < 0) {
        h1_reply(h, 502, 0, "ebb: request head too large for the upstream buffer\n");
        return;
    }
    h->head_queued = true;
    u->nrequests++;
    ebb_stat_inc(u->cl->st->rq_total);
    ebb_stat_inc(u->cl->st->rq_active);
    h1_arm_request_timeout(h);
}

/* Starts (or restarts, on retry) the upstream side of the exchange. */
static void h1_connect(struct h1 *h)
{
    struct ebb_cluster_rt *cl = &h->c->w->clusters[h->cluster];
    int rc = ebb_upstream_acquire(cl, h->c->w, h1_upstream_cb, h, &h->u);
    if (h->u)
        h->up_addr = h->u->addr_str;   /* lives as long as the server */
    if (rc == 0) {
        h1_queue_head(h);
    } else if (rc != EBB_EAGAIN) {
        h->u = NULL;
        h1_reply(h, 503, EBB_RF_UF, "ebb: upstream connect error: cluster \"%s\": %s\n",
                 cl->cfg->name, ebb_strerror(rc));
    } else {
        ebb_timer_stop(h->c->w->loop, &h->timer);
    }
}

/* Parses a request head from rbuf and starts an exchange.  Returns true
 * when progress was made. */
static bool h1_start(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    const struct ebb_config *cfg = h1_cfg(h);
    struct ebb_h1_msg *m = &h1_msg;

    if (ebb_buf_len(&c->rbuf) == 0)
        return false;
    /* --- h2c by prior knowledge (SPEC §2): the first bytes of a connection
     * that are (a prefix of) the HTTP/2 preface hand it to the h2 codec,
     * bytes included.  h is freed (deferred) by destroy; h->dead stops h1_run. */
    if (!h->seen_request) {
        int pm = ebb_h2_preface_match(ebb_buf_start(&c->rbuf), ebb_buf_len(&c->rbuf));
        if (pm == 0) {
            /* wait for the rest of the preface, but no longer than for a request head:
             * "P" or "PRI * HTTP/2.0" alone must not hold the connection for idle_timeout */
            if (!h->headers_timer)
                h1_arm_idle(h);
            return false;
        }
        if (pm == 1) {
            c->ops->destroy(c);
            c->codec = NULL;
            ebb_h2_takeover(c);
            return true;
        }
        h->seen_request = true;
    }
    /* --- end h2c */
    int rc = ebb_h1_parse_request(ebb_buf_start(&c->rbuf), ebb_buf_len(&c->rbuf),
                                  &cfg->limits.h1, m);
    if (rc == EBB_H1_AGAIN) {
        if (!h->headers_timer)
            h1_arm_idle(h);
        return false;
    }
    if (rc < 0) {
        int status = ebb_h1_error_status(rc);
        ebb_stat_inc(h1_st(h)->cx_protocol_error);
        ebb_debug("h1", "#%llu bad request from %s: %d", (unsigned long long)c->id,
                  c->peer_str, status);
        h->close_after = true;
        h1_reply(h, status, 0, "ebb: %s\n", reason_phrase(status));
        ebb_buf_reset(&c->rbuf);
        return true;
    }

    size_t head_len = (size_t)rc;
    h->state = H1_UPSTREAM;
    h->start_ms = ebb_loop_now(c->w->loop);
    ebb_stat_inc(h1_st(h)->rq_total);
    ebb_stat_inc(h1_st(h)->rq_active);
    span_copy(h->method, sizeof(h->method), &m->method);
    span_copy(h->path, sizeof(h->path), &m->path);
    span_copy(h->authority, sizeof(h->authority), &m->authority);
    h->minor = m->minor;
    h->head_req = span_ieq(&m->method, "HEAD");
    h->upgrade_req = (m->flags & EBB_H1_F_UPGRADE) != 0 && !h1_upgrade_h2c(m);
    h->expect_continue = (m->flags & EBB_H1_F_EXPECT_CONTINUE) != 0;
    h->close_after = (m->flags & EBB_H1_F_CONN_CLOSE) != 0;
    if (c->flags & EBB_CONN_F_DRAINING)
        h->close_after = h->drain_close = true;
    h->req_framing = m->framing;
    ebb_h1_body_init(&h->req_body, m);
    h->req_done = m->framing == EBB_H1_BODY_NONE ||
                  (m->framing == EBB_H1_BODY_LENGTH && m->content_length == 0);
    h->cluster = ebb_route(c->l, m->authority.p, m->authority.len);
    bool connect = span_ieq(&m->method, "CONNECT");

    int brc = h->cluster >= 0 && !connect ? build_upstream_head(h, m) : 0;
    ebb_buf_consume(&c->rbuf, head_len);   /* m's spans are dead from here on */
    ebb_timer_stop(c->w->loop, &h->timer);
    h->headers_timer = false;

    if (connect) {
        /* SPEC §2 makes CONNECT optional; ebb does not tunnel it (yet) */
        h->close_after = true;
        h1_reply(h, 501, 0, "ebb: CONNECT is not supported\n");
        return true;
    }
    if (h->cluster < 0) {
        ebb_stat_inc(h1_st(h)->no_route);
        h1_reply(h, 404, EBB_RF_NR, "ebb: no route for host \"%s\"\n", h->authority);
        return true;
    }
    if (brc < 0) {
        h1_reply(h, 431, 0, "ebb: request headers too large\n");
        return true;
    }
    uint64_t maxb = cfg->limits.max_request_body;
    if (maxb && h->req_framing == EBB_H1_BODY_LENGTH && m->content_length > maxb) {
        h1_reply(h, 413, 0, "ebb: request body larger than %llu bytes\n",
                 (unsigned long long)maxb);
        return true;
    }
    if (c->w->clusters[h->cluster].cfg->protocol == EBB_UP_H2C)
        h1_h2u_start(h);
    else
        h1_connect(h);
    return true;
}

/* One step of the client's request body, shared by the h1 and h2c upstream pumps: decodes
 * up to limit bytes of c->rbuf and enforces max_request_body.  Returns the decoder's result
 * (the caller consumes *consumed), or H1_BODY_ANSWERED when the request was answered
 * locally (400 for bad framing, 413 over the limit). */
#define H1_BODY_ANSWERED (-100)
static int h1_req_body_step(struct h1 *h, size_t limit, size_t *consumed, const char **data,
                            size_t *dlen)
{
    struct ebb_conn *c = h->c;
    uint64_t maxb = h1_cfg(h)->limits.max_request_body;
    size_t len = EBB_MIN(ebb_buf_len(&c->rbuf), limit);
    int rc = ebb_h1_body_parse(&h->req_body, ebb_buf_start(&c->rbuf), len, consumed, data, dlen);

    if (rc == EBB_H1_EBAD) {
        ebb_stat_inc(h1_st(h)->cx_protocol_error);
        h->close_after = true;
        h1_reply(h, 400, 0, "ebb: malformed request body framing\n");
        return H1_BODY_ANSWERED;
    }
    if (rc == EBB_H1_BODY_DATA && *dlen) {
        h->req_bytes += *dlen;
        if (maxb && h->req_bytes > maxb) {
            h1_reply(h, 413, 0, "ebb: request body larger than %llu bytes\n",
                     (unsigned long long)maxb);
            return H1_BODY_ANSWERED;
        }
    }
    return rc;
}

/* Client -> upstream body bytes.  Returns true on progress. */
static bool h1_pump_request(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    struct ebb_upconn *u = h->u;
    bool chunked = h->req_framing == EBB_H1_BODY_CHUNKED;
    bool progress = false;

    if (!u || u->state != EBB_UP_BUSY || !h->head_queued)
        return false;
    while (!h->req_done && (ebb_buf_len(&c->rbuf) || ebb_h1_body_done(&h->req_body)) &&
           ebb_buf_room(&u->wbuf) > 64) {
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        int rc = h1_req_body_step(h, ebb_buf_room(&u->wbuf) - 32, &consumed, &data, &dlen);
        if (rc == H1_BODY_ANSWERED)
            return true;
        if (rc == EBB_H1_BODY_DATA && dlen) {
            if (chunked)
                ebb_buf_appendf(&u->wbuf, "%zx\r\n", dlen);
            ebb_buf_append(&u->wbuf, data, dlen);
            if (chunked)
                ebb_buf_append(&u->wbuf, "\r\n", 2);
        } else if (rc == EBB_H1_BODY_TRAILER && chunked) {
            if (!h->req_last_chunk) {
                ebb_buf_append(&u->wbuf, "0\r\n", 3);
                h->req_last_chunk = true;
            }
            ebb_buf_append(&u->wbuf, data, dlen);
        } else if (rc == EBB_H1_BODY_DONE) {
            if (chunked) {
                if (!h->req_last_chunk)
                    ebb_buf_append(&u->wbuf, "0\r\n", 3);
                ebb_buf_append(&u->wbuf, "\r\n", 2);
            }
            h->req_done = true;
            h1_arm_request_timeout(h);
        }
        ebb_buf_consume(&c->rbuf, consumed);
        progress = true;
        if (rc == EBB_H1_AGAIN)
            break;
    }
    return progress;
}

/* --- response side --- */

/* Writes the rewritten response head into the client's buffer.  Returns 0,
 * or EBB_ETOOBIG/EBB_ENOMEM when it does not fit: then the buffer and h are
 * as they were (a head is never sent with fields missing). */
static int h1_write_resp_head(struct h1 *h, const struct ebb_h1_msg *m)
{
    struct ebb_conn *c = h->c;
    struct ebb_buf *b = &c->wbuf;
    bool tunnel = m->status == 101;
    size_t before = ebb_buf_len(b);
    bool close_after = h->close_after, drain_close = h->drain_close;
    bool chunk_out = h->resp_chunk_out;
    int rc = 0;

    if (c->flags & EBB_CONN_F_DRAINING)
        h->close_after = h->drain_close = true;
    if (!h->req_done && !tunnel)
        h->close_after = true;   /* the rest of the body would have to be discarded */
    if (m->framing == EBB_H1_BODY_CHUNKED || m->framing == EBB_H1_BODY_EOF) {
        if (h->minor >= 1)
            h->resp_chunk_out = true;
        else
            h->close_after = true;   /* HTTP/1.0 client: delimit by close */
    }
    rc |= ebb_buf_appendf(b, "HTTP/1.1 %d %.*s\r\n", m->status, (int)m->reason.len, m->reason.p);
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *hd = &m->headers[i];
        if (ebb_h1_is_hop_by_hop(m, &hd->name))
            continue;
        if (span_ieq(&hd->name, "content-length") && m->framing != EBB_H1_BODY_NONE)
            continue;
        rc |= ebb_buf_appendf(b, "%.*s: %.*s\r\n", (int)hd->name.len, hd->name.p,
                              (int)hd->value.len, hd->value.p);
    }
    if (tunnel) {
        const struct ebb_h1_header *up = ebb_h1_find(m, "upgrade");
        rc |= ebb_buf_appendf(b, "connection: upgrade\r\nupgrade: %.*s\r\n",
                              up ? (int)up->value.len : 0, up ? up->value.p : "");
    } else {
        if (m->framing == EBB_H1_BODY_LENGTH)
            rc |= ebb_buf_appendf(b, "content-length: %llu\r\n",
                                  (unsigned long long)m->content_length);
        else if (h->resp_chunk_out)
            rc |= ebb_buf_appendf(b, "transfer-encoding: chunked\r\n");
        if (h->close_after)
            rc |= ebb_buf_appendf(b, "connection: close\r\n");
        else if (h->minor == 0)
            rc |= ebb_buf_appendf(b, "connection: keep-alive\r\n");
    }
    rc |= ebb_buf_append(b, "\r\n", 2);
    if (rc) {
        b->tail = b->head + before;   /* appends only ever add after the live bytes */
        h->close_after = close_after;
        h->drain_close = drain_close;
        h->resp_chunk_out = chunk_out;
        return rc == EBB_ENOMEM ? EBB_ENOMEM : EBB_ETOOBIG;
    }
    return 0;
}

/* Parses the upstream response head(s).  Returns true on progress. */
static bool h1_response_head(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    struct ebb_upconn *u = h->u;
    struct ebb_h1_msg *m = &h1_msg;
    const struct ebb_config *cfg = h1_cfg(h);

    if (ebb_buf_len(&u->rbuf) == 0)
        return false;
    h->resp_started = true;
    /* the head must fit the client's buffer in one piece */
    if (ebb_buf_room(&c->wbuf) < ebb_buf_len(&u->rbuf) + 256 && ebb_buf_len(&c->wbuf))
        return false;
    int rc = ebb_h1_parse_response(ebb_buf_start(&u->rbuf), ebb_buf_len(&u->rbuf),
                                   &cfg->limits.h1, h->method, strlen(h->method), m);
    if (rc == EBB_H1_AGAIN)
        return false;
    if (rc < 0) {
        h->close_after = true;
        h1_reply(h, 502, EBB_RF_UC, "ebb: malformed response from upstream cluster \"%s\"\n",
                 u->cl->cfg->name);
        return true;
    }
    if (m->status >= 100 && m->status < 200 && m->status != 101) {
        /* interim response: forward 100 Continue (and other 1xx) as is */
        if (h->minor >= 1)
            ebb_buf_appendf(&c->wbuf, "HTTP/1.1 %d %.*s\r\n\r\n", m->status,
                            (int)m->reason.len, m->reason.p);
        ebb_buf_consume(&u->rbuf, (size_t)rc);
        return true;
    }
    if (m->status == 101 && !h->upgrade_req) {
        h->close_after = true;
        h1_reply(h, 502, EBB_RF_UC, "ebb: unexpected 101 from upstream\n");
        return true;
    }
    if (h1_write_resp_head(h, m) < 0) {
        if (ebb_buf_len(&c->wbuf))
            return false;   /* retried when the client has taken what is queued */
        h->close_after = true;
        h1_reply(h, 502, EBB_RF_UC, "ebb: response head from upstream cluster \"%s\" is larger "
                 "than the client buffer\n", u->cl->cfg->name);
        return true;
    }
    ebb_timer_stop(c->w->loop, &h->timer);
    h->resp_in = m->framing;
    h->up_keepalive = !(m->flags & EBB_H1_F_CONN_CLOSE);
    h1_count_status(h, m->status);
    ebb_h1_body_init(&h->resp_body, m);
    ebb_buf_consume(&u->rbuf, (size_t)rc);
    h->resp_head_done = true;
    if (m->status == 101) {
        h->state = H1_TUNNEL;
        h->req_done = true;
        return true;
    }
    if (m->framing == EBB_H1_BODY_NONE ||
        (m->framing == EBB_H1_BODY_LENGTH && m->content_length == 0))
        h->resp_done = true;
    return true;
}

/* Upstream -> client body bytes.  Returns true on progress. */
static bool h1_pump_response(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    struct ebb_upconn *u = h->u;
    bool progress = false;

    while (!h->resp_done && (ebb_buf_len(&u->rbuf) || ebb_h1_body_done(&h->resp_body)) &&
           ebb_buf_room(&c->wbuf) > 64) {
        size_t limit = ebb_buf_room(&c->wbuf) - 32;
        size_t len = EBB_MIN(ebb_buf_len(&u->rbuf), limit);
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        int rc = ebb_h1_body_parse(&h->resp_body, ebb_buf_start(&u->rbuf), len, &consumed,
                                   &data, &dlen);
        if (rc == EBB_H1_EBAD) {
            ebb_warn("h1", "#%llu malformed response body from %s", (unsigned long long)c->id,
                     u->addr_str);
            h1_abort(h, EBB_RF_UC, true);
            return true;
        }
        if (rc == EBB_H1_BODY_DATA && dlen) {
            h->resp_bytes += dlen;
            if (h->resp_chunk_out)
                ebb_buf_appendf(&c->wbuf, "%zx\r\n", dlen);
            ebb_buf_append(&c->wbuf, data, dlen);
            if (h->resp_chunk_out)
                ebb_buf_append(&c->wbuf, "\r\n", 2);
        } else if (rc == EBB_H1_BODY_TRAILER) {
            if (h->resp_chunk_out) {
                if (!h->resp_last_chunk) {
                    ebb_buf_append(&c->wbuf, "0\r\n", 3);
                    h->resp_last_chunk = true;
                }
                ebb_buf_append(&c->wbuf, data, dlen);
            }
        } else if (rc == EBB_H1_BODY_DONE) {
            if (h->resp_chunk_out) {
                if (!h->resp_last_chunk)
                    ebb_buf_append(&c->wbuf, "0\r\n", 3);
                ebb_buf_append(&c->wbuf, "\r\n", 2);
            }
            h->resp_done = true;
        }
        ebb_buf_consume(&u->rbuf, consumed);
        progress = true;
        if (rc == EBB_H1_AGAIN)
            break;
    }
    /* a close-delimited body ends with the upstream's FIN (a reset truncates it) */
    if (!h->resp_done && h->resp_in == EBB_H1_BODY_EOF && u->eof && !u->reset &&
        !ebb_buf_len(&u->rbuf)) {
        if (h->resp_chunk_out)
            ebb_buf_append(&c->wbuf, "0\r\n\r\n", 5);
        h->resp_done = true;
        progress = true;
    }
    return progress;
}

static bool h1_idempotent(const char *method)
{
    static const char *const m[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" };
    for (size_t i = 0; i < EBB_ARRAY_LEN(m); i++)
        if (strcmp(method, m[i]) == 0)
            return true;
    return false;
}

/* The upstream closed or failed before the exchange finished. */
static void h1_upstream_gone(struct h1 *h)
{
    struct ebb_upconn *u = h->u;
    const char *name = u->cl->cfg->name;

    if (!h->resp_started && u->reused && h->req_framing == EBB_H1_BODY_NONE &&
        h->retries == 0 && h1_idempotent(h->method)) {
        /* a pooled connection the upstream had closed: one fresh try is safe, for a
         * method that may be repeated (RFC 9110 §9.2.2, RFC 9112 §9.3.1: the upstream may
         * have acted on a POST before closing) */
        h->retries++;
        ebb_debug("h1", "#%llu pooled upstream connection closed, retrying",
                  (unsigned long long)h->c->id);
        h1_release_upstream(h, false);
        h->head_queued = false;
        h1_connect(h);
        return;
    }
    ebb_stat_inc(u->cl->st->rq_reset);
    if (!h->resp_head_done) {
        h->close_after = h->close_after || !h->req_done;
        h1_reply(h, 503, EBB_RF_UC,
                 "ebb: upstream reset before response headers: cluster \"%s\"\n", name);
        return;
    }
    ebb_info("h1", "#%llu upstream %s reset after response headers; resetting client",
             (unsigned long long)h->c->id, u->addr_str);
    h1_abort(h, EBB_RF_URX | EBB_RF_UC, true);
}

/* --- h1 exchange -> upstream h2c stream (cluster protocol h2c) ---
 * The rewritten request head (uphead) becomes an HTTP/2 header list; the
 * body is decoded from the client and written into the h2 stream as far as
 * its bounded buffer allows; the response comes back through callbacks and
 * is framed for HTTP/1.1 (content-length kept, else chunked, trailers in
 * the last chunk). */

static void h1_us_head(void *owner, int status, const nghttp2_nv *nv, size_t n)
{
    struct h1 *h = owner;
    struct ebb_conn *c = h->c;
    struct ebb_buf *b = &c->wbuf;
    bool has_cl = false;
    int rc = 0;

    ebb_timer_stop(c->w->loop, &h->timer);
    h->resp_started = true;
    if (c->flags & EBB_CONN_F_DRAINING)
        h->close_after = h->drain_close = true;
    if (!h->req_done)
        h->close_after = true;
    for (size_t i = 0; i < n; i++)
        if (nv[i].namelen == 14 && memcmp(nv[i].name, "content-length", 14) == 0)
            has_cl = true;
    bool body = !h->head_req && status != 204 && status != 304;
    if (body && !has_cl) {
        if (h->minor >= 1)
            h->resp_chunk_out = true;
        else
            h->close_after = true;
    }
    h1_count_status(h, status);
    rc |= ebb_buf_appendf(b, "HTTP/1.1 %d %s\r\n", status,
                          status == 200 ? "OK" : status < 400 ? "" : reason_phrase(status));
    for (size_t i = 0; i < n; i++)
        rc |= ebb_buf_appendf(b, "%.*s: %.*s\r\n", (int)nv[i].namelen, nv[i].name,
                              (int)nv[i].valuelen, nv[i].value);
    if (h->resp_chunk_out)
        rc |= ebb_buf_appendf(b, "transfer-encoding: chunked\r\n");
    if (h->close_after)
        rc |= ebb_buf_appendf(b, "connection: close\r\n");
    else if (h->minor == 0)
        rc |= ebb_buf_appendf(b, "connection: keep-alive\r\n");
    rc |= ebb_buf_append(b, "\r\n", 2);
    h->resp_head_done = true;
    h->resp_in = has_cl ? EBB_H1_BODY_LENGTH : EBB_H1_BODY_CHUNKED;
    if (rc) {
        h1_abort(h, EBB_RF_UC, true);   /* response head too large for the client buffer */
        return;
    }
    h1_run(h);
}

static void h1_us_trailers(void *owner, const nghttp2_nv *nv, size_t n)
{
    struct h1 *h = owner;
    ebb_buf_reset(&h->us_trl);
    h->us_trl.max = 64 * 1024;
    for (size_t i = 0; i < n; i++)
        ebb_buf_appendf(&h->us_trl, "%.*s: %.*s\r\n", (int)nv[i].namelen, nv[i].name,
                        (int)nv[i].valuelen, nv[i].value);
}

static void h1_us_end(void *owner)
{
    struct h1 *h = owner;
    h->us_end = true;
    h1_run(h);
}

static void h1_us_wake(void *owner) { h1_run(owner); }

static void h1_us_error(void *owner, unsigned rf, bool head_seen)
{
    struct h1 *h = owner;
    const char *name = h->c->w->clusters[h->cluster].cfg->name;
    h->us = NULL;   /* gone with this callback */
    if (head_seen) {
        h1_abort(h, rf | EBB_RF_URX, true);
        return;
    }
    if (rf & EBB_RF_UF)
        h1_reply(h, 503, rf, "ebb: upstream connect error: cluster \"%s\"\n", name);
    else
        h1_reply(h, 503, rf, "ebb: upstream reset before response headers: cluster \"%s\"\n",
                 name);
    h1_run(h);
}

static const struct ebb_h2u_cbs h1_us_cbs = {
    .on_head = h1_us_head,
    .on_data = h1_us_wake,
    .on_trailers = h1_us_trailers,
    .on_end = h1_us_end,
    .on_writable = h1_us_wake,
    .on_error = h1_us_error,
};

static void h1_h2u_start(struct h1 *h)
{
    struct ebb_h1_msg *m = &h1_msg;
    struct ebb_cluster_rt *cl = &h->c->w->clusters[h->cluster];
    nghttp2_nv nv[EBB_H1_MAX_HEADERS_CAP + 8];
    size_t n = 0;

    if (h->upgrade_req) {
        h1_reply(h, 501, 0, "ebb: Upgrade is not supported towards an h2c cluster\n");
        return;
    }
    /* our own rewritten head: x-forwarded-*, x-request-id and framing are in it */
    int rc = ebb_h1_parse_request(ebb_buf_start(&h->uphead), ebb_buf_len(&h->uphead),
                                  &h1_cfg(h)->limits.h1, m);
    if (rc < 0) {
        h1_reply(h, 431, 0, "ebb: request headers too large\n");
        return;
    }
#define NV(nm, nl, v, vl) nv[n++] = (nghttp2_nv){ (uint8_t *)(nm), (uint8_t *)(v), (nl), (vl), 0 }
    NV(":method", 7, m->method.p, m->method.len);
    NV(":scheme", 7, "http", 4);
    NV(":authority", 10, m->authority.p, m->authority.len);
    NV(":path", 5, m->path.p, m->path.len);
    for (size_t i = 0; i < m->nheaders; i++) {
        struct ebb_h1_header *hd = &m->headers[i];
        if (span_ieq(&hd->name, "host") || ebb_h2_is_conn_header(hd->name.p, hd->name.len))
            continue;
        for (size_t k = 0; k < hd->name.len; k++) {   /* HTTP/2 names are lowercase */
            char *p = (char *)hd->name.p + k;
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        }
        NV(hd->name.p, hd->name.len, hd->value.p, hd->value.len);
    }
    if (h->req_framing == EBB_H1_BODY_CHUNKED || (m->flags & EBB_H1_F_HAS_TE_TRAILERS))
        NV("te", 2, "trailers", 8);
#undef NV
    h->us = ebb_h2u_open(cl, h->c->w, nv, n, h->req_done, &h1_us_cbs, h);
    if (!h->us) {
        h1_reply(h, 503, EBB_RF_UF, "ebb: upstream connect error: cluster \"%s\"\n",
                 cl->cfg->name);
        return;
    }
    h->head_queued = true;
    if (cl->cfg->request_timeout_ms)
        ebb_timer_start(h->c->w->loop, &h->timer, cl->cfg->request_timeout_ms);
}

/* Moves request body bytes into the h2 stream and response bytes to the
 * client.  Returns true on progress. */
static bool h1_h2u_pump(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    bool progress = false;
    char tmp[16384];

    while (h->us && !h->req_done && (ebb_buf_len(&c->rbuf) || ebb_h1_body_done(&h->req_body))) {
        size_t room = ebb_h2u_writable(h->us);
        if (room == 0)
            break;
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        int rc = h1_req_body_step(h, room, &consumed, &data, &dlen);
        if (rc == H1_BODY_ANSWERED)
            return true;
        if (rc == EBB_H1_BODY_DATA && dlen) {
            ebb_h2u_write(h->us, data, dlen);
        } else if (rc == EBB_H1_BODY_TRAILER) {
            h->us_trl.max = 64 * 1024;
            ebb_buf_append(&h->us_trl, data, dlen);
        } else if (rc == EBB_H1_BODY_DONE) {
            nghttp2_nv tv[64];
            int tn = ebb_buf_len(&h->us_trl)
                   ? ebb_h2_split_trailers(ebb_buf_start(&h->us_trl), ebb_buf_len(&h->us_trl), tv,
                                           EBB_ARRAY_LEN(tv)) : 0;
            ebb_h2u_end(h->us, tv, tn > 0 ? (size_t)tn : 0);
            ebb_buf_reset(&h->us_trl);
            h->req_done = true;
        }
        ebb_buf_consume(&c->rbuf, consumed);
        progress = true;
        if (rc == EBB_H1_AGAIN)
            break;
    }
    if (!h->resp_head_done)
        return progress;
    while (h->us && ebb_h2u_readable(h->us) && ebb_buf_room(&c->wbuf) > 64) {
        size_t n = ebb_h2u_read(h->us, tmp, EBB_MIN(sizeof(tmp), ebb_buf_room(&c->wbuf) - 32));
        if (h->head_req)
            continue;
        h->resp_bytes += n;
        if (h->resp_chunk_out)
            ebb_buf_appendf(&c->wbuf, "%zx\r\n", n);
        ebb_buf_append(&c->wbuf, tmp, n);
        if (h->resp_chunk_out)
            ebb_buf_append(&c->wbuf, "\r\n", 2);
        progress = true;
    }
    size_t wmax = c->wbuf.max ? c->wbuf.max : EBB_BUF_DEFAULT_MAX;
    if (!h->resp_chunk_out || ebb_buf_len(&h->us_trl) + 16 > wmax)
        ebb_buf_reset(&h->us_trl);   /* no chunked framing, or can never fit: dropped */
    if (h->us_end && !h->resp_done && (!h->us || ebb_h2u_readable(h->us) == 0) &&
        ebb_buf_room(&c->wbuf) > ebb_buf_len(&h->us_trl) + 16) {
        if (h->resp_chunk_out) {
            ebb_buf_append(&c->wbuf, "0\r\n", 3);
            ebb_buf_append(&c->wbuf, ebb_buf_start(&h->us_trl), ebb_buf_len(&h->us_trl));
            ebb_buf_append(&c->wbuf, "\r\n", 2);
        }
        h->resp_done = true;
        progress = true;
    }
    return progress;
}

/* --- the state machine --- */

static void h1_set_interest(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    uint32_t dw = 0, uw = 0;

    if (!h->read_eof && ebb_buf_room(&c->rbuf) > 0 &&
        (h->state == H1_IDLE || h->state == H1_UPSTREAM))
        dw |= EBB_READ;
    if (ebb_buf_len(&c->wbuf))
        dw |= EBB_WRITE;
    ebb_conn_want(c, dw);

    /* waiting on the client: a body it does not send, or a response it does not read */
    bool stalled = (h->state == H1_UPSTREAM || h->state == H1_REPLY) &&
                   (ebb_buf_len(&c->wbuf) > 0 ||
                    (h->state == H1_UPSTREAM && !h->req_done && !h->read_eof &&
                     ebb_buf_len(&c->rbuf) == 0 && !(h->expect_continue && !h->resp_started)));
    if (!stalled)
        ebb_timer_stop(c->w->loop, &h->stall_timer);
    else if (!ebb_timer_active(&h->stall_timer))
        ebb_timer_start(c->w->loop, &h->stall_timer,
                        EBB_MIN(h1_cfg(h)->limits.idle_timeout_ms, H1_CLIENT_STALL_MS));

    struct ebb_upconn *u = h->u;
    if (u && u->state == EBB_UP_BUSY) {
        if (h->head_queued && !u->eof && ebb_buf_room(&u->rbuf) > 0)
            uw |= EBB_READ;
        if (ebb_buf_len(&u->wbuf))
            uw |= EBB_WRITE;
        ebb_upstream_want(u, uw);
    }
}

static void h1_run(struct h1 *h)
{
    struct ebb_conn *c = h->c;

    for (int guard = 0; guard < 1000 && !h->dead; guard++) {
        bool progress = false;

        switch (h->state) {
        case H1_IDLE:
            if (ebb_buf_len(&c->rbuf) == 0 && h->read_eof) {
                ebb_conn_close_staged(c);
                return;
            }
            progress = h1_start(h);
            break;

        case H1_UPSTREAM: {
            struct ebb_upconn *u = h->u;
            if (h->us || h->us_end) {   /* h1 -> h2c upstream */
                progress |= h1_h2u_pump(h);
                if (h->dead || h->state != H1_UPSTREAM)
                    break;
                if (ebb_conn_flush(c) < 0) {
                    h1_abort(h, EBB_RF_DC, false);
                    return;
                }
                if (h->resp_done && ebb_buf_len(&c->wbuf) == 0) {
                    h1_end_exchange(h);
                    progress = true;
                } else if (h->read_eof && ebb_buf_len(&c->rbuf) == 0 && !h->resp_done) {
                    h1_abort(h, EBB_RF_DC, false);
                    return;
                }
                break;
            }
            if (!u || u->state != EBB_UP_BUSY || !h->head_queued)
                break;   /* connecting */
            progress |= h1_pump_request(h);
            if (h->dead || h->state != H1_UPSTREAM)
                break;
            if (!h->resp_head_done)
                progress |= h1_response_head(h);
            if (h->dead || h->state != H1_UPSTREAM)
                break;
            if (h->resp_head_done)
                progress |= h1_pump_response(h);
            if (h->dead || h->state != H1_UPSTREAM)
                break;
            /* a flush that frees room lets the pumps move more: that is progress too */
            size_t uw_before = ebb_buf_len(&u->wbuf), cw_before = ebb_buf_len(&c->wbuf);
            if (ebb_upstream_flush(u) < 0) {
                /* the upstream stopped reading: drop what it will not take, but keep
                 * reading, an answer it sent before closing (413, 401) is still there */
                u->wr_failed = true;
                ebb_buf_reset(&u->wbuf);
            }
            if (ebb_conn_flush(c) < 0) {
                h1_abort(h, EBB_RF_DC, false);
                return;
            }
            if (ebb_buf_len(&u->wbuf) < uw_before || ebb_buf_len(&c->wbuf) < cw_before)
                progress = true;
            if (h->resp_done && ebb_buf_len(&c->wbuf) == 0) {
                h1_end_exchange(h);
                progress = true;
                break;
            }
            if (u->eof && !h->resp_done && ebb_buf_len(&u->rbuf) == 0 &&
                (h->resp_in != EBB_H1_BODY_EOF || !h->resp_head_done || u->reset)) {
                h1_upstream_gone(h);
                progress = true;
                break;
            }
            if (h->read_eof && ebb_buf_len(&c->rbuf) == 0 && !h->resp_done) {
                /* the client went away mid-exchange */
                h1_abort(h, EBB_RF_DC, false);
                return;
            }
            break;
        }

        case H1_REPLY:
            if (ebb_conn_flush(c) < 0) {
                h1_abort(h, EBB_RF_DC, false);
                return;
            }
            if (ebb_buf_len(&c->wbuf) == 0) {
                h1_end_exchange(h);
                progress = true;
            }
            break;

        case H1_TUNNEL: {
            ebb_timer_stop(c->w->loop, &h->stall_timer);   /* a tunnel may idle */
            int rc = ebb_tunnel_run(c, h->u, &h->tun);
            if (rc != 0) {
                h->req_bytes += h->tun.up_bytes;
                h->resp_bytes += h->tun.down_bytes;
                h1_account_end(h);
                h1_release_upstream(h, false);
                if (rc == 1)
                    ebb_conn_close_staged(c);
                else
                    ebb_conn_close(c, false);
            }
            return;   /* the tunnel sets its own interests */
        }
        }
        if (!progress)
            break;
    }
    /* no flush here: the states flush inside the loop, where room it frees is seen as
     * progress; a flush after the loop could empty the client buffer while the upstream
     * buffer stays full, leaving no interest that would ever wake us */
    if (!h->dead && !(c->flags & EBB_CONN_F_CLOSING))
        h1_set_interest(h);
}

/* --- events --- */

static void h1_upstream_cb(void *owner, struct ebb_upconn *u, uint32_t events)
{
    struct h1 *h = owner;

    if (events & EBB_UP_EV_FAILED) {
        const char *name = u->cl->cfg->name;
        int err = u->err;
        h1_release_upstream(h, false);
        h1_reply(h, 503, EBB_RF_UF, "ebb: upstream connect error: cluster \"%s\": %s\n", name,
                 err == EBB_ETIMEDOUT ? "connect timeout" : ebb_strerror(err));
        h1_run(h);
        return;
    }
    if (events & EBB_UP_EV_CONNECTED) {
        h1_queue_head(h);
        if (h->dead)
            return;
    }
    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        for (int i = 0; i < 4; i++) {
            ssize_t n = ebb_upstream_read(u);   /* sets eof (and reset) */
            if (n > 0 && ebb_buf_tailroom(&u->rbuf) && ebb_buf_room(&u->rbuf))
                break;   /* short read: the socket is drained, skip the EAGAIN round trip */
            if (n > 0)
                continue;
            break;
        }
    }
    if ((events & EBB_WRITE) && ebb_upstream_flush(u) < 0) {
        u->wr_failed = true;   /* see h1_run */
        ebb_buf_reset(&u->wbuf);
    }
    h1_run(h);
}

static void h1_on_io(struct ebb_conn *c, uint32_t events)
{
    struct h1 *h = c->codec;

    ebb_timer_stop(c->w->loop, &h->stall_timer);   /* the client is alive: start over */

    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        for (int i = 0; i < 4; i++) {
            ssize_t n = ebb_conn_read(c);
            if (n > 0 && ebb_buf_tailroom(&c->rbuf) && ebb_buf_room(&c->rbuf))
                break;   /* short read: the socket is drained, skip the EAGAIN round trip */
            if (n > 0)
                continue;
            if (n == 0) {
                h->read_eof = true;
                if (h->state == H1_TUNNEL)
                    h->tun.down_eof = true;
            } else if (n != EBB_EAGAIN && n != EBB_ETOOBIG) {
                if (h->state == H1_IDLE) {
                    ebb_conn_close(c, false);
                    return;
                }
                h1_abort(h, EBB_RF_DC, false);
                return;
            }
            break;
        }
    }
    if ((events & EBB_WRITE) && ebb_conn_flush(c) < 0) {
        if (h->state == H1_IDLE)
            ebb_conn_close(c, false);
        else
            h1_abort(h, EBB_RF_DC, false);
        return;
    }
    h1_run(h);
}

static void h1_arm_drain_close(struct h1 *h)
{
    const struct ebb_config *cfg = h1_cfg(h);
    struct ebb_worker *w = h->c->w;
    uint64_t now = ebb_loop_now(w->loop);
    uint64_t at = w->drain_started_ms + cfg->drain.idle_close_after_ms;
    uint64_t delay = at > now ? at - now : 0;
    if (cfg->drain.idle_close_spread_ms)
        delay += ebb_rand(&w->rand_state) % cfg->drain.idle_close_spread_ms;
    ebb_timer_start(w->loop, &h->drain_timer, delay);
}

static int h1_init(struct ebb_conn *c)
{
    struct h1 *h = calloc(1, sizeof(*h));
    if (!h)
        return EBB_ENOMEM;
    h->c = c;
    h->cluster = -1;
    h->timer.cb = h1_timeout;
    h->timer.data = h;
    h->drain_timer.cb = h1_drain_timeout;
    h->drain_timer.data = h;
    h->stall_timer.cb = h1_stall_timeout;
    h->stall_timer.data = h;
    c->codec = h;
    if (c->l->draining) {
        c->flags |= EBB_CONN_F_DRAINING;
        h1_arm_drain_close(h);
    }
    h1_arm_idle(h);
    ebb_conn_want(c, EBB_READ);
    return 0;
}

static void h1_drain(struct ebb_conn *c)
{
    struct h1 *h = c->codec;
    if (!h || (c->flags & EBB_CONN_F_DRAINING))
        return;
    c->flags |= EBB_CONN_F_DRAINING;
    /* in-flight exchanges get "connection: close" on their response; idle
     * connections are closed in stages after idle_close_after */
    if (h->state != H1_TUNNEL)
        h1_arm_drain_close(h);
}

static void h1_free(void *p)
{
    struct h1 *h = p;
    ebb_buf_free(&h->uphead);
    ebb_buf_free(&h->us_trl);
    free(h);
}

static void h1_destroy(struct ebb_conn *c)
{
    struct h1 *h = c->codec;
    if (h->state != H1_IDLE && !h->accounted) {
        /* cut by a close we did not choose here: ebb's exit (DR) or anything else (DC) */
        h->rf |= (c->flags & EBB_CONN_F_FORCED) ? EBB_RF_DR : EBB_RF_DC;
        h1_account_end(h);
    }
    h->dead = true;
    ebb_timer_stop(c->w->loop, &h->timer);
    ebb_timer_stop(c->w->loop, &h->drain_timer);
    ebb_timer_stop(c->w->loop, &h->stall_timer);
    h1_release_upstream(h, false);
    ebb_debug("h1", "#%llu destroyed in state %s", (unsigned long long)c->id,
              h1_state_names[h->state]);
    if (ebb_loop_defer(c->w->loop, h1_free, h) < 0)
        EBB_BUG_ON(1);
}

const struct ebb_codec_ops ebb_h1_codec = {
    .name = "h1",
    .init = h1_init,
    .on_io = h1_on_io,
    .drain = h1_drain,
    .destroy = h1_destroy,
};

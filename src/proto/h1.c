/*
 * h1.c - the HTTP/1.1 downstream codec.
 *
 * A connection carries one exchange at a time; pipelined requests wait in
 * the read buffer until the previous response is complete (so they are
 * answered in order).  The upstream side of an exchange is an ebb_us of
 * either upstream codec (ustream.h); its callbacks record and write heads,
 * then call h1_run(), which advances the state machine as far as the
 * buffers allow and sets the socket interests.  Bodies are decoded and
 * re-framed through bounded buffers, so memory stays flat whatever the body
 * size.  After a 101 the exchange becomes a byte tunnel (tunnel.h).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "ebb/codecs.h"
#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/core.h"
#include "ebb/h1_parse.h"
#include "ebb/h2.h"
#include "ebb/http.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/stats.h"
#include "ebb/stream.h"
#include "ebb/tunnel.h"
#include "ebb/upconn.h"
#include "ebb/ustream.h"
#include "ebb/wctx.h"

enum h1_state {
    H1_IDLE = 0,   /* waiting for (the rest of) a request head */
    H1_UPSTREAM,   /* request accepted: connecting to / exchanging with the upstream */
    H1_REPLY,      /* writing a locally generated answer */
    H1_TUNNEL,     /* after 101: raw bytes both ways */
};

static const char *const h1_state_names[] = { "idle", "upstream", "reply", "tunnel" };

/* The current exchange of a connection: taken when a request (or a local answer) starts,
 * given back when it ends (h1x_free), so an idle keep-alive connection holds only struct h1
 * (issue 12: nginx and HAProxy split their connection state the same way).  e and
 * stall_timer come first: h1_begin_exchange inits them and zeroes the rest up to dfr. */
struct h1x {
    struct ebb_xch     e;             /* its record and upstream side (stream.h) */
    struct ebb_timer   stall_timer;   /* exchange waiting on the client (body or reading) */
    bool               accounted;     /* logged and counted (h1_account_end) */
    bool               us_end;        /* the response ended upstream (bytes may still wait there) */
    bool               req_done;      /* whole request body read from the client */
    bool               head_req;      /* HEAD request */
    bool               upgrade_req;   /* Upgrade requested */
    bool               expect_continue;
    bool               resp_started;  /* any response byte from upstream */
    bool               resp_head_done;/* final response head forwarded */
    bool               resp_done;
    bool               resp_chunk_out;/* re-chunk towards the client */
    int                minor;         /* client's HTTP/1.minor */
    enum ebb_h1_framing req_framing;
    struct ebb_buf     req_trl;       /* request trailers (raw), until the request's end */
    struct ebb_buf    *resp_trl;      /* response trailers (lines), allocated when some come */
    struct ebb_upconn *tun_u;         /* after a 101: the upstream connection of the tunnel */
    struct ebb_h1_body req_body;
    struct ebb_tunnel  tun;
    struct ebb_deferred dfr;          /* its deferred free (ebb_loop_defer) */
};

/* Codec state of one downstream HTTP/1 connection.  Owned by the conn; its exchange
 * holds a reference to at most one upstream connection.  The drain's idle close runs
 * on the connection's close timer (ebb_conn_codec_timer). */
struct h1 {
    struct ebb_conn   *c;
    struct h1x        *x;             /* the current exchange; NULL exactly when H1_IDLE */
    enum h1_state      state;
    bool               dead;          /* destroyed; free pending */
    bool               read_eof;      /* client closed its write side */
    bool               close_after;   /* close the connection when this exchange ends */
    bool               drain_close;   /* ... because of the drain */
    bool               headers_timer; /* timer is the request-headers timeout */
    bool               seen_request;  /* a request head arrived: no h2c preface any more */
    struct ebb_timer   timer;         /* idle / request-headers / tunnel idle timeout */
    struct ebb_deferred dfr;          /* its deferred free (ebb_loop_defer) */
};

static __thread struct ebb_h1_msg h1_msg;   /* scratch for parsing (large) */

static void h1_run(struct h1 *h);
static const struct ebb_us_cbs h1_us_cbs;
static void h1_stall_timeout(struct ebb_loop *loop, struct ebb_timer *t);
static void h1_arm_drain_close(struct h1 *h);
static void h1_tunnel_cb(void *owner, struct ebb_upconn *u, uint32_t events);
static void h1_account_end(struct h1 *h);
static void h1_release_upstream(struct h1 *h);

static const struct ebb_config *h1_cfg(const struct h1 *h) { return h->c->w->cfg; }
static struct ebb_listener_stats *h1_st(const struct h1 *h) { return h->c->l->st; }

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
    case H1_TUNNEL: {
        uint64_t idle_ms = h1_cfg(h)->limits.tcp_idle_timeout_ms;
        uint64_t left = ebb_tunnel_idle_left(h->c, &h->x->tun, idle_ms);
        if (left) {
            ebb_timer_start(loop, t, left);
            return;
        }
        ebb_stat_inc(h1_st(h)->cx_idle_timeout);
        h->x->e.x.req_bytes += h->x->tun.up_bytes;
        h->x->e.x.resp_bytes += h->x->tun.down_bytes;
        h1_account_end(h);
        h1_release_upstream(h);
        ebb_conn_close_staged(h->c);   /* idle: nothing in flight, a FIN both ways */
        return;
    }
    default:
        return;
    }
    if (!h->dead)
        h1_run(h);
}

static void h1_drain_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h1 *h = t->data;
    char b;
    /* still idle with nothing half-received: close gracefully (SPEC §3.3.5).  Timers run
     * after the loop pass's I/O: a request that came in since is still in the socket, and
     * the staged close would read and discard it.  It is answered instead (with
     * "connection: close"): the socket is readable, so the loop's next pass reads it. */
    if (h->state == H1_IDLE && ebb_buf_len(&h->c->rbuf) == 0 &&
        recv(h->c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1) {
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
    if (h->state == H1_UPSTREAM && !h->x->resp_head_done && ebb_buf_len(&c->wbuf) == 0) {
        ebb_debug("h1", "#%llu request body stalled", (unsigned long long)c->id);
        h->close_after = true;
        h1_reply(h, 408, EBB_RF_DC, "ebb: request body not received within %llu ms\n",
                 (unsigned long long)EBB_MIN(h1_cfg(h)->limits.idle_timeout_ms,
                                             EBB_CLIENT_STALL_MS));
        if (!h->dead)
            h1_run(h);
        return;
    }
    ebb_debug("h1", "#%llu client stopped reading the response", (unsigned long long)c->id);
    h1_abort(h, EBB_RF_DC, true);
}

/* --- ending an exchange --- */

/* Closes the books on the current exchange once: access log line and rq_active.  Every
 * way an exchange ends (complete, aborted, tunnel closed, connection destroyed) goes here. */
static void h1_account_end(struct h1 *h)
{
    if (h->state == H1_IDLE || h->x->accounted)
        return;
    h->x->accounted = true;
    ebb_xch_end(&h->x->e, h->x->minor ? "HTTP/1.1" : "HTTP/1.0");
}

static void h1_release_upstream(struct h1 *h)
{
    if (!h->x)
        return;
    ebb_xch_release(&h->x->e);
    if (h->x->tun_u) {
        ebb_xch_upconn_release(h->x->tun_u, false);
        h->x->tun_u = NULL;
    }
}

/* The response trailers kept for the final chunk, if any, and their storage. */
static void h1_drop_resp_trl(struct h1x *x)
{
    if (x->resp_trl) {
        ebb_buf_free(x->resp_trl);
        free(x->resp_trl);
        x->resp_trl = NULL;
    }
}

/* Exchange states given back, per thread: the next request takes one instead of malloc.
 * glibc's per-thread cache holds 7 chunks of this size, and one loop pass at 16 busy
 * connections ends more exchanges than that: the rest went through _int_free and
 * _int_malloc (about 250 instructions per request). */
#define H1X_CACHE_MAX 64
static __thread struct {
    struct h1x *p[H1X_CACHE_MAX];
    unsigned    n;
} h1x_cache;

static void h1x_free(void *p)
{
    struct h1x *x = p;
    ebb_buf_free(&x->req_trl);
    h1_drop_resp_trl(x);
    ebb_xrec_free(&x->e.x);   /* its upstream side went before */
    if (h1x_cache.n < H1X_CACHE_MAX) {
        EBB_POISON(x, sizeof(*x));
        h1x_cache.p[h1x_cache.n++] = x;
        return;
    }
    free(x);
}

void ebb_h1_cache_drain(void)
{
    while (h1x_cache.n) {
        struct h1x *x = h1x_cache.p[--h1x_cache.n];
        EBB_UNPOISON(x, sizeof(*x));
        free(x);
    }
}

/* A request (or a local answer) starts: its exchange state.  Returns false when there is no
 * memory for it: then the connection is closed (an answer would need the state too). */
static bool h1_begin_exchange(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    struct h1x *x;
    if (h1x_cache.n) {
        x = h1x_cache.p[--h1x_cache.n];
        EBB_UNPOISON(x, sizeof(*x));
    } else if (!(x = malloc(sizeof(*x)))) {
        ebb_stat_inc(c->w->stats->server.xch_failed_resource);
        ebb_conn_close(c, true);
        return false;
    }
    /* e and the timer are set by their init; the rest starts zeroed */
    memset(&x->accounted, 0, offsetof(struct h1x, dfr) - offsetof(struct h1x, accounted));
    ebb_xch_init(&x->e, c, &h1_us_cbs, h);
    ebb_timer_init(&x->stall_timer, h1_stall_timeout, h);
    h->x = x;
    return true;
}

/* Back to idle: the exchange's state goes (after this loop pass, as callers up the stack
 * may still hold it), and the connection keeps struct h1 alone. */
static void h1_reset_exchange(struct h1 *h)
{
    struct h1x *x = h->x;
    h->state = H1_IDLE;
    h->x = NULL;
    ebb_timer_stop(h->c->w->loop, &x->stall_timer);
    ebb_xch_release(&x->e);   /* the record goes with x (h1x_free) */
    ebb_loop_defer(h->c->w->loop, &x->dfr, h1x_free, x);
}

/* The response is complete (or abandoned): account, log, and either wait
 * for the next request or close. */
static void h1_end_exchange(struct h1 *h)
{
    struct ebb_conn *c = h->c;

    if (h->drain_close)
        h->x->e.x.rf |= EBB_RF_DR;
    h1_account_end(h);
    if (c->flags & EBB_CONN_F_DRAINING)
        ebb_stat_inc(h1_st(h)->rq_completed_in_drain);
    h1_release_upstream(h);
    ebb_timer_stop(c->w->loop, &h->timer);
    ebb_timer_stop(c->w->loop, &h->x->stall_timer);

    /* a response whose head went out before the drain started could not say "close":
     * the connection stays open, the client's next request gets "connection: close", and
     * an idle connection is closed by the drain timer (SPEC §3.3.5) */
    bool must_close = h->close_after || !h->x->req_done ||
                      (h->read_eof && ebb_buf_len(&c->rbuf) == 0);
    if (must_close) {
        if (h->drain_close)
            ebb_stat_inc(h1_st(h)->cx_drain_close);
        ebb_conn_close_staged(c);
        return;
    }
    h1_reset_exchange(h);
    /* an idle keep-alive connection holds no buffer (issue 12): the next request's bytes
     * get one from the worker's cache */
    if (ebb_buf_len(&c->rbuf) == 0)
        ebb_buf_release(&c->rbuf);
    ebb_buf_release(&c->wbuf);   /* the exchange ends when it is empty */
    h1_arm_idle(h);
    if (c->flags & EBB_CONN_F_DRAINING)
        h1_arm_drain_close(h);   /* idle from now: a next request may already be on its way */
}

/* Abandons the exchange and the connection at once; with reset the client
 * gets an RST (never a silently truncated response). */
static void h1_abort(struct h1 *h, unsigned rf, bool reset)
{
    h->x->e.x.rf |= rf;
    if (rf & EBB_RF_DC)
        ebb_stat_inc(h1_st(h)->rq_rx_reset);
    if (reset)
        ebb_stat_inc(h1_st(h)->rq_tx_reset);
    h1_account_end(h);
    h1_release_upstream(h);
    if (reset)
        ebb_conn_flush(h->c);   /* hand over what we have; the RST marks the end as broken */
    ebb_conn_close(h->c, reset);
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

    if (!h->x && !h1_begin_exchange(h))
        return;   /* closed: no memory even for the answer's record */
    if (h->x->resp_head_done) {
        h1_abort(h, rf, true);
        return;
    }
    va_start(ap, fmt);
    int n = (int)ebb_xch_format(body, sizeof(body), fmt, ap);
    va_end(ap);

    if (h->state == H1_IDLE) {
        /* the request never became an exchange: account for it here */
        h->x->e.x.start_ms = ebb_loop_now(c->w->loop);
        ebb_stat_inc(h1_st(h)->rq_total);
        ebb_stat_inc(h1_st(h)->rq_active);
    }
    h1_release_upstream(h);
    h->x->e.x.rf |= rf;
    if (!h->x->req_done)
        h->close_after = true;
    if (c->flags & EBB_CONN_F_DRAINING) {
        h->close_after = true;
        h->drain_close = true;
    }
    ebb_xrec_status(&h->x->e.x, h1_st(h), status);
    ebb_buf_reset(&c->wbuf);
    int rc = ebb_buf_appendf(&c->wbuf,
                    "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                    "%s\r\n%.*s",
                    status, reason_phrase(status), n,
                    h->close_after ? "connection: close\r\n" : "", n, body);
    h->x->e.x.resp_bytes = (uint64_t)n;
    h->x->resp_head_done = true;
    h->x->resp_done = true;
    h->state = H1_REPLY;
    if (rc != 0) {
        /* no storage even for the answer: the client must not wait for one */
        ebb_stat_inc(c->w->stats->server.xch_failed_resource);
        h1_abort(h, 0, true);
    }
}

/* An allocation for the exchange failed: a 503 if nothing of the response went out yet,
 * else a reset; counted.  The connection's other state and the process go on. */
static void h1_fail_resource(struct h1 *h)
{
    ebb_stat_inc(h->c->w->stats->server.xch_failed_resource);
    if (h->x->resp_head_done || ebb_buf_len(&h->c->wbuf)) {
        h1_abort(h, 0, true);
        return;
    }
    h->close_after = true;
    h1_reply(h, 503, 0, "ebb: out of memory\n");
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

/* The request head in the exchange's terms: every field but HTTP/1's connection-specific ones
 * (Connection and the fields it names, Keep-Alive, TE, Transfer-Encoding, Upgrade). */
static void h1_req_of(const struct h1 *h, const struct ebb_h1_msg *m, struct ebb_req *r)
{
    static __thread struct ebb_hdr hdrs[EBB_H1_MAX_HEADERS_CAP];
    size_t n = ebb_h1_fields(m, hdrs, true);   /* the rewrite drops content-length */

    *r = (struct ebb_req){
        .method = { m->method.p, m->method.len },
        .path = { m->path.p, m->path.len },
        .authority = { m->authority.p, m->authority.len },
        .hdrs = hdrs,
        .nhdrs = n,
        .content_length = m->framing == EBB_H1_BODY_LENGTH ? (int64_t)m->content_length : -1,
        .body = m->framing != EBB_H1_BODY_NONE,
        /* an HTTP/2 upstream may answer a chunked body's trailers with its own */
        .te_trailers = (m->flags & EBB_H1_F_HAS_TE_TRAILERS) || m->framing == EBB_H1_BODY_CHUNKED,
    };
    if (h->x->upgrade_req) {
        const struct ebb_h1_header *up = ebb_h1_find(m, "upgrade");
        if (up)
            r->upgrade = (struct ebb_str){ up->value.p, up->value.len };
    }
}

/* Gives the exchange's local answer (a refusal before the upstream, or an upstream failure). */
static void h1_answer(struct h1 *h, const struct ebb_answer *a)
{
    if (a->close)
        h->close_after = true;
    h1_reply(h, a->status, a->rf, "%s", a->body);
}

/* Answers the request locally or starts its upstream side.  m's spans are
 * alive (the caller consumes the head afterwards). */
static void h1_dispatch(struct h1 *h, const struct ebb_h1_msg *m)
{
    struct ebb_answer a;
    struct ebb_req req;

    h1_req_of(h, m, &req);
    if (ebb_xch_start(&h->x->e, &req, 0, &a) < 0) {
        h1_answer(h, &a);
        return;
    }
    if (h->x->req_done)
        ebb_xch_request_done(&h->x->e);
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
        if (ebb_buf_len(&c->rbuf) >= 16 && memcmp(ebb_buf_start(&c->rbuf), "PRI * HTTP/2.0\r\n", 16) == 0) {
            /* the preface's request line, then something else: the client expects HTTP/2, so an
             * HTTP/1.1 answer would be garbage to it; end the connection (RFC 9113 §3.4) */
            ebb_stat_inc(h1_st(h)->cx_protocol_error);
            ebb_conn_close(c, false);
            return false;
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
    if (!h1_begin_exchange(h))
        return true;   /* closed */
    h->state = H1_UPSTREAM;
    ebb_xch_begin(&h->x->e, (struct ebb_str){ m->method.p, m->method.len },
                  (struct ebb_str){ m->path.p, m->path.len },
                  (struct ebb_str){ m->authority.p, m->authority.len });
    h->x->minor = m->minor;
    h->x->head_req = span_ieq(&m->method, "HEAD");
    h->x->upgrade_req = (m->flags & EBB_H1_F_UPGRADE) != 0 && !h1_upgrade_h2c(m);
    h->x->expect_continue = (m->flags & EBB_H1_F_EXPECT_CONTINUE) != 0;
    h->close_after = (m->flags & EBB_H1_F_CONN_CLOSE) != 0;
    if (c->flags & EBB_CONN_F_DRAINING)
        h->close_after = h->drain_close = true;
    h->x->req_framing = m->framing;
    ebb_h1_body_init(&h->x->req_body, m);
    h->x->req_done = m->framing == EBB_H1_BODY_NONE ||
                  (m->framing == EBB_H1_BODY_LENGTH && m->content_length == 0);
    ebb_timer_stop(c->w->loop, &h->timer);
    h->headers_timer = false;
    h1_dispatch(h, m);
    ebb_buf_consume(&c->rbuf, head_len);   /* m's spans are dead from here on */
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
    int rc = ebb_h1_body_parse(&h->x->req_body, ebb_buf_start(&c->rbuf), len, consumed, data, dlen);

    if (rc == EBB_H1_EBAD) {
        ebb_stat_inc(h1_st(h)->cx_protocol_error);
        h->close_after = true;
        h1_reply(h, 400, 0, "ebb: malformed request body framing\n");
        return H1_BODY_ANSWERED;
    }
    if (rc == EBB_H1_BODY_DATA && *dlen) {
        h->x->e.x.req_bytes += *dlen;
        if (maxb && h->x->e.x.req_bytes > maxb) {
            h1_reply(h, 413, 0, "ebb: request body larger than %llu bytes\n",
                     (unsigned long long)maxb);
            return H1_BODY_ANSWERED;
        }
    }
    return rc;
}

/* The client's body ended: the upstream gets the end, with the trailers received. */
static void h1_end_request(struct h1 *h)
{
    struct ebb_hdr t[64];
    ebb_us_end(h->x->e.us, t, ebb_trailers_parse(&h->x->req_trl, t, EBB_ARRAY_LEN(t)));
    ebb_buf_reset(&h->x->req_trl);
    h->x->req_done = true;
    ebb_xch_request_done(&h->x->e);
}

/* Client -> upstream body bytes.  Returns true on progress. */
static bool h1_pump_request(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    bool progress = false;

    while (h->x->e.us && !h->x->req_done && (ebb_buf_len(&c->rbuf) || ebb_h1_body_done(&h->x->req_body))) {
        size_t room = ebb_us_writable(h->x->e.us);
        if (room == 0)
            break;
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        int rc = h1_req_body_step(h, room, &consumed, &data, &dlen);
        if (rc == H1_BODY_ANSWERED)
            return true;
        if (rc == EBB_H1_BODY_DATA && dlen) {
            /* dlen fits the room asked for: less taken means no storage upstream (an h2c
             * stream then expects its owner to keep the bytes, but the body decoder has
             * gone past them): the exchange fails rather than lose them silently */
            if (ebb_us_write(h->x->e.us, data, dlen) < dlen) {
                h1_fail_resource(h);
                return true;
            }
        } else if (rc == EBB_H1_BODY_TRAILER) {
            h->x->req_trl.max = 64 * 1024;
            if (ebb_buf_append(&h->x->req_trl, data, dlen) == EBB_ENOMEM) {
                h1_fail_resource(h);   /* (too large trailers are dropped, as before) */
                return true;
            }
        } else if (rc == EBB_H1_BODY_DONE) {
            h1_end_request(h);
        }
        ebb_buf_consume(&c->rbuf, consumed);
        progress = true;
        if (rc == EBB_H1_AGAIN)
            break;
    }
    return progress;
}

/* Upstream -> client body bytes, then the end of the body.  Returns true on progress. */
static bool h1_pump_response(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    bool progress = false;
    char tmp[16384];

    if (!h->x->resp_head_done)
        return false;
    while (h->x->e.us && ebb_us_readable(h->x->e.us) && ebb_buf_room(&c->wbuf) > 64) {
        size_t n;
        if (h->x->resp_chunk_out) {
            n = ebb_us_read(h->x->e.us, tmp, EBB_MIN(sizeof(tmp), ebb_buf_room(&c->wbuf) - 32));
            if (n && ebb_h1_put_body(&c->wbuf, true, tmp, n) != 0) {
                h1_fail_resource(h);   /* the bytes read are lost: the response is cut */
                return true;
            }
        } else {
            /* straight into the client's buffer */
            size_t want = EBB_MIN(ebb_buf_room(&c->wbuf), ebb_us_readable(h->x->e.us));
            if (ebb_buf_reserve(&c->wbuf, want) < 0) {
                h1_fail_resource(h);   /* want fits: only storage is missing */
                return true;
            }
            n = ebb_us_read(h->x->e.us, ebb_buf_end(&c->wbuf), want);
            c->wbuf.tail += n;
        }
        if (n == 0)
            break;   /* framing only, or the end: the upstream side reports it */
        h->x->e.x.resp_bytes += n;
        progress = true;
    }
    if (h->x->e.us && !h->x->us_end && ebb_us_done(h->x->e.us))
        h->x->us_end = true;   /* our read took the end: no on_end comes */
    size_t wmax = c->wbuf.max ? c->wbuf.max : EBB_BUF_DEFAULT_MAX;
    size_t tl = h->x->resp_trl ? ebb_buf_len(h->x->resp_trl) : 0;
    if (tl && (!h->x->resp_chunk_out || tl + 16 > wmax)) {
        h1_drop_resp_trl(h->x);   /* no chunked framing, or can never fit: dropped */
        tl = 0;
    }
    if (h->x->us_end && !h->x->resp_done && (!h->x->e.us || ebb_us_readable(h->x->e.us) == 0) &&
        ebb_buf_room(&c->wbuf) > tl + 16) {
        if (h->x->resp_chunk_out &&
            (ebb_buf_append(&c->wbuf, "0\r\n", 3) != 0 ||
             (tl && ebb_buf_append(&c->wbuf, ebb_buf_start(h->x->resp_trl), tl) != 0) ||
             ebb_buf_append(&c->wbuf, "\r\n", 2) != 0)) {
            h1_fail_resource(h);   /* room checked above: only storage can be missing */
            return true;
        }
        h->x->resp_done = true;
        progress = true;
    }
    return progress;
}

/* --- response side --- */

/* Writes the rewritten response head into the client's buffer.  Returns 0,
 * or EBB_ETOOBIG/EBB_ENOMEM when it does not fit: then the buffer and h are
 * as they were (a head is never sent with fields missing). */
static int h1_write_resp_head(struct h1 *h, const struct ebb_resp *r)
{
    struct ebb_conn *c = h->c;
    struct ebb_buf *b = &c->wbuf;
    bool tunnel = r->status == 101;
    size_t before = ebb_buf_len(b);
    bool close_after = h->close_after, drain_close = h->drain_close;
    bool chunk_out = h->x->resp_chunk_out;
    int rc = 0;

    if (c->flags & EBB_CONN_F_DRAINING)
        h->close_after = h->drain_close = true;
    if (!h->x->req_done && !tunnel)
        h->close_after = true;   /* the rest of the body would have to be discarded */
    if (r->body && r->content_length < 0 && !tunnel) {
        if (h->x->minor >= 1)
            h->x->resp_chunk_out = true;
        else
            h->close_after = true;   /* HTTP/1.0 client: delimit by close */
    }
    /* appends, not printf: this runs for every response */
    if (r->reason.len || r->status != 200) {
        rc |= ebb_buf_append_lit(b, "HTTP/1.1 ");
        rc |= ebb_buf_append_u64(b, (uint64_t)r->status);
        rc |= ebb_buf_append_lit(b, " ");
        rc |= ebb_buf_append(b, r->reason.p, r->reason.len);
        rc |= ebb_buf_append_lit(b, "\r\n");
    } else {
        rc |= ebb_buf_append_lit(b, "HTTP/1.1 200 OK\r\n");
    }
    rc |= ebb_hdrs_write_h1(b, r->hdrs, r->nhdrs);
    if (tunnel) {
        rc |= ebb_buf_appendf(b, "connection: upgrade\r\nupgrade: %.*s\r\n",
                              (int)r->upgrade.len, r->upgrade.p);
    } else {
        bool bodyless = h->x->head_req || r->status == 204 || r->status == 304;
        if (r->content_length >= 0) {
            rc |= ebb_buf_append_lit(b, "content-length: ");
            rc |= ebb_buf_append_u64(b, (uint64_t)r->content_length);
            rc |= ebb_buf_append_lit(b, "\r\n");
        } else if (h->x->resp_chunk_out) {
            rc |= ebb_buf_append_lit(b, "transfer-encoding: chunked\r\n");
        } else if (!r->body && !bodyless) {
            rc |= ebb_buf_append_lit(b, "content-length: 0\r\n");   /* HTTP/2 answer without DATA */
        }
        if (h->close_after)
            rc |= ebb_buf_append_lit(b, "connection: close\r\n");
        else if (h->x->minor == 0)
            rc |= ebb_buf_append_lit(b, "connection: keep-alive\r\n");
    }
    rc |= ebb_buf_append(b, "\r\n", 2);
    if (rc) {
        b->tail = b->head + before;   /* appends only ever add after the live bytes */
        h->close_after = close_after;
        h->drain_close = drain_close;
        h->x->resp_chunk_out = chunk_out;
        return rc == EBB_ENOMEM ? EBB_ENOMEM : EBB_ETOOBIG;
    }
    return 0;
}

/* --- the upstream's callbacks: they record and write, then h1_run() moves bytes --- */

static void h1_us_interim(void *owner, const struct ebb_resp *r)
{
    struct h1 *h = owner;
    h->x->resp_started = true;
    if (h->x->minor >= 1 &&   /* 100 Continue and other 1xx, as they are */
        ebb_buf_appendf(&h->c->wbuf, "HTTP/1.1 %d %.*s\r\n\r\n", r->status, (int)r->reason.len,
                        r->reason.p) == EBB_ENOMEM)
        h1_fail_resource(h);
    h1_run(h);
}

/* A 101: the exchange becomes a byte tunnel over the upstream's connection. */
static void h1_us_upgrade(struct h1 *h)
{
    struct ebb_upconn *u = ebb_us_take_conn(h->x->e.us);
    h1_release_upstream(h);
    h->x->tun_u = u;
    if (!u) {
        h1_abort(h, EBB_RF_UC, true);
        return;
    }
    h->x->tun_u->cb = h1_tunnel_cb;
    h->x->tun_u->owner = h;
    h->state = H1_TUNNEL;
    h->x->req_done = true;
    ebb_tunnel_start(h->c, u, &h->x->tun);
    if (h1_cfg(h)->limits.tcp_idle_timeout_ms)
        ebb_timer_start(h->c->w->loop, &h->timer, h1_cfg(h)->limits.tcp_idle_timeout_ms);
}

static void h1_us_head(void *owner, const struct ebb_resp *r)
{
    struct h1 *h = owner;
    struct ebb_resp rr = *r;

    ebb_timer_stop(h->c->w->loop, &h->timer);
    h->x->resp_started = true;
    if (!rr.reason.len && rr.status >= 400)
        rr.reason = (struct ebb_str){ reason_phrase(rr.status), strlen(reason_phrase(rr.status)) };
    if (h1_write_resp_head(h, &rr) < 0) {
        if (ebb_buf_len(&h->c->wbuf)) {
            h1_abort(h, EBB_RF_UC, true);   /* an interim answer went out already */
            return;
        }
        h->close_after = true;
        h1_reply(h, 502, EBB_RF_UC, "ebb: response head from upstream cluster \"%s\" is larger "
                 "than the client buffer\n", ebb_xch_cluster_name(&h->x->e));
        h1_run(h);
        return;
    }
    ebb_xrec_status(&h->x->e.x, h1_st(h), rr.status);
    h->x->resp_head_done = true;
    if (rr.status == 101)
        h1_us_upgrade(h);
    h1_run(h);
}

static void h1_us_trailers(void *owner, const struct ebb_hdr *t, size_t n)
{
    struct h1 *h = owner;
    if ((!h->x->resp_trl && !(h->x->resp_trl = calloc(1, sizeof(*h->x->resp_trl)))) ||
        ebb_trailers_keep(h->x->resp_trl, t, n) != 0)
        h1_fail_resource(h);   /* an end without them (grpc-status) would look complete */
}

static void h1_us_end(void *owner)
{
    struct h1 *h = owner;
    h->x->us_end = true;
    h1_run(h);
}

static void h1_us_wake(void *owner) { h1_run(owner); }

static void h1_us_error(void *owner, unsigned rf, bool head_seen, int status)
{
    struct h1 *h = owner;
    struct ebb_answer a;

    if (head_seen || h->x->resp_head_done) {
        h1_abort(h, rf | EBB_RF_URX, true);
        return;
    }
    if (status == 502)
        h->close_after = true;
    ebb_xch_failure(&h->x->e, rf, status, &a);
    h1_answer(h, &a);
    if (!h->dead)
        h1_run(h);
}

static const struct ebb_us_cbs h1_us_cbs = {
    .on_interim = h1_us_interim,
    .on_head = h1_us_head,
    .on_data = h1_us_wake,
    .on_trailers = h1_us_trailers,
    .on_end = h1_us_end,
    .on_writable = h1_us_wake,
    .on_error = h1_us_error,
};

/* --- the state machine --- */

static void h1_set_interest(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    uint32_t dw = 0;

    if (!h->read_eof && ebb_buf_room(&c->rbuf) > 0 &&
        (h->state == H1_IDLE || h->state == H1_UPSTREAM))
        dw |= EBB_READ;
    if (ebb_buf_len(&c->wbuf))
        dw |= EBB_WRITE;
    ebb_conn_want(c, dw);
    if (!h->x)
        return;   /* idle: h->timer alone */

    /* waiting on the client: a body it does not send, or a response it does not read */
    bool stalled = (h->state == H1_UPSTREAM || h->state == H1_REPLY) &&
                   (ebb_buf_len(&c->wbuf) > 0 ||
                    (h->state == H1_UPSTREAM && !h->x->req_done && !h->read_eof &&
                     ebb_buf_len(&c->rbuf) == 0 && !(h->x->expect_continue && !h->x->resp_started)));
    if (!stalled)
        ebb_timer_stop(c->w->loop, &h->x->stall_timer);
    else if (!ebb_timer_active(&h->x->stall_timer))
        ebb_timer_start(c->w->loop, &h->x->stall_timer,
                        EBB_MIN(h1_cfg(h)->limits.idle_timeout_ms, EBB_CLIENT_STALL_MS));
}

#define H1_RUN_ROUNDS 1000   /* rounds of one run: then the other connections' turn */

static void h1_run(struct h1 *h)
{
    struct ebb_conn *c = h->c;
    int guard;

    for (guard = 0; guard < H1_RUN_ROUNDS && !h->dead; guard++) {
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
            /* a flush that frees room lets the pumps move more: that is progress too */
            size_t cw_before = ebb_buf_len(&c->wbuf);
            progress |= h1_pump_request(h);
            if (h->dead || h->state != H1_UPSTREAM)
                break;
            progress |= h1_pump_response(h);
            if (h->dead || h->state != H1_UPSTREAM)
                break;
            if (ebb_conn_flush(c) < 0) {
                h1_abort(h, EBB_RF_DC, false);
                return;
            }
            if (ebb_buf_len(&c->wbuf) < cw_before)
                progress = true;
            /* the request is in: a long response holds no empty request buffer (the
             * next request's bytes get one from the worker's cache) */
            if (h->x->req_done && c->rbuf.data && ebb_buf_len(&c->rbuf) == 0)
                ebb_buf_release(&c->rbuf);
            if (h->x->resp_done && ebb_buf_len(&c->wbuf) == 0) {
                h1_end_exchange(h);
                progress = true;
            } else if (h->read_eof && ebb_buf_len(&c->rbuf) == 0 && !h->x->resp_done) {
                h1_abort(h, EBB_RF_DC, false);   /* the client went away mid-exchange */
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
            ebb_timer_stop(c->w->loop, &h->x->stall_timer);   /* a tunnel may idle */
            int rc = ebb_tunnel_run(c, h->x->tun_u, &h->x->tun);
            if (rc != 0) {
                h->x->e.x.req_bytes += h->x->tun.up_bytes;
                h->x->e.x.resp_bytes += h->x->tun.down_bytes;
                h1_account_end(h);
                h1_release_upstream(h);
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
    if (!h->dead && !(c->flags & EBB_CONN_F_CLOSING)) {
        h1_set_interest(h);
        /* still moving when its rounds ran out (a body read straight from the upstream's
         * socket needs no event of its own): a writable client wakes it next loop turn */
        if (guard == H1_RUN_ROUNDS)
            ebb_conn_want(c, c->io.events | EBB_WRITE);
    }
}

/* --- events --- */

static void h1_tunnel_cb(void *owner, struct ebb_upconn *u, uint32_t events)
{
    if (events & (EBB_READ | EPOLLHUP | EPOLLERR))
        ebb_upstream_read_some(u);
    if (events & EBB_WRITE)
        ebb_upstream_send(u);
    h1_run(owner);
}

static void h1_on_io(struct ebb_conn *c, uint32_t events)
{
    struct h1 *h = c->codec;

    if (h->x)
        ebb_timer_stop(c->w->loop, &h->x->stall_timer);   /* the client is alive: start over */

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
                    h->x->tun.down_eof = true;
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

/* An idle connection is closed once it has been idle for idle_close_after during the drain:
 * counted from the drain's start, or from the moment it became idle (accepted, or its last
 * exchange ended) when that is later.  Counted from the drain's start alone, a connection
 * accepted late in the drain was closed in the loop pass that accepted it, its first request
 * already on the wire and then discarded by the staged close. */
static void h1_arm_drain_close(struct h1 *h)
{
    const struct ebb_config *cfg = h1_cfg(h);
    struct ebb_wctx *w = h->c->w;
    uint64_t delay = cfg->drain.idle_close_after_ms;
    if (cfg->drain.idle_close_spread_ms)
        delay += ebb_rand(&w->rand_state) % cfg->drain.idle_close_spread_ms;
    ebb_conn_codec_timer(h->c, delay, h1_drain_timeout, h);
}

static int h1_init(struct ebb_conn *c)
{
    struct h1 *h = calloc(1, sizeof(*h));
    if (!h)
        return EBB_ENOMEM;
    h->c = c;
    ebb_timer_init(&h->timer, h1_timeout, h);
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
    if (h->x)
        h1x_free(h->x);   /* cut mid-exchange: its upstream side went at destroy */
    free(h);
}

static void h1_destroy(struct ebb_conn *c)
{
    struct h1 *h = c->codec;
    if (h->state != H1_IDLE && !h->x->accounted) {
        /* cut by a close we did not choose here: ebb's exit (DR) or anything else (DC) */
        h->x->e.x.rf |= (c->flags & EBB_CONN_F_FORCED) ? EBB_RF_DR : EBB_RF_DC;
        h1_account_end(h);
    }
    h->dead = true;
    ebb_timer_stop(c->w->loop, &h->timer);
    ebb_conn_codec_timer_stop(c);
    if (h->x)
        ebb_timer_stop(c->w->loop, &h->x->stall_timer);
    h1_release_upstream(h);
    ebb_debug("h1", "#%llu destroyed in state %s", (unsigned long long)c->id,
              h1_state_names[h->state]);
    ebb_loop_defer(c->w->loop, &h->dfr, h1_free, h);
}

const struct ebb_codec_ops ebb_h1_codec = {
    .name = "h1",
    .init = h1_init,
    .on_io = h1_on_io,
    .drain = h1_drain,
    .destroy = h1_destroy,
};

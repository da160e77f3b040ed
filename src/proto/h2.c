/*
 * h2.c - the HTTP/2 (h2c) downstream codec.
 *
 * One nghttp2 server session per connection and one struct h2s per stream.
 * A stream is proxied either as an HTTP/1.1 exchange on a pooled upstream
 * connection (the request head is rebuilt as h1.c does, the response is
 * parsed with ebb_h1_parse_response and the body decoder) or as a stream
 * of a shared upstream h2c connection (h2_upstream.c).
 *
 * Back-pressure: automatic WINDOW_UPDATE is off.  Request body bytes are
 * held in the stream's bounded reqb until they are written upstream; only
 * then are they returned to the client's window (nghttp2_session_consume).
 * Response bytes wait in the bounded respb until the client's window lets
 * the deferred data provider send them; while respb is full the upstream
 * is not read (h1) or not given window (h2).  No body is ever buffered
 * whole.
 *
 * nghttp2 callbacks only record state and submit frames; I/O and
 * nghttp2_session_send happen in h2_run(), which event handlers call last.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "ebb/cluster.h"
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
#include "ebb/upstream.h"
#include "ebb/worker.h"

#define H2_STREAM_WINDOW   65535u        /* per-stream receive window (default size) */
#define H2_BODY_BUF        (64 * 1024)   /* ceiling of reqb / respb */
#define H2_PING_DRAIN      "ebbdrain"    /* opaque data of the drain PING */
#define H2_RESET_WINDOW_MS 10000         /* rapid-reset accounting window */
#define H2_H1_MIN_CONNS    16            /* floor of the h2->h1 connection bound */
#define H2_H1_MAX_CONNS    1024          /* hard cap, with streams that waited too long */
#define H2_H1_WAIT_MS      200           /* a stream waiting this long gets its own connection */

enum h2s_state {
    H2S_HEADERS = 0,  /* receiving the request head */
    H2S_UPSTREAM,     /* proxying to the upstream */
    H2S_REPLY,        /* a local answer was submitted */
    H2S_CLOSED,       /* nghttp2 closed the stream; free pending */
};

enum h2_drain {
    H2_DRAIN_NONE = 0,  /* not draining */
    H2_DRAIN_NOTICE,    /* GOAWAY(2^31-1) + PING sent, waiting for the PING ack */
    H2_DRAIN_FINAL,     /* final GOAWAY sent: streams above it are refused */
};

struct h2_hdr {
    nghttp2_rcbuf *name;
    nghttp2_rcbuf *value;
};

struct h2c;

/* One request/response.  Owned by its connection's codec; holds at most
 * one upstream (an h1 connection from the pool or an h2u stream). */
struct h2s {
    struct h2c        *h;
    int32_t            id;
    struct ebb_list    link;          /* in h->streams */
    struct ebb_list    rlink;         /* in h->ready while it has something to do */
    struct ebb_list    wlink;         /* in cl->h2_waiting while waiting for an h1 connection */
    enum h2s_state     state;
    uint64_t           start_ms;
    const char        *up_addr;       /* endpoint of the last upstream connection used (log) */
    /* request head */
    struct h2_hdr     *hdrs;          /* regular headers, then request trailers */
    size_t             nhdrs, cap;
    size_t             ntrl_at;       /* index of the first trailer in hdrs, 0 = none */
    size_t             hdr_bytes;     /* header list size so far (RFC 9113 §6.5.2 counting) */
    bool               too_big;       /* over the header limits: 431 */
    nghttp2_rcbuf     *method, *path, *authority, *scheme;
    int64_t            content_length;/* -1 when absent */
    /* request body */
    bool               req_end;       /* END_STREAM received */
    bool               req_fwd_end;   /* end of the request forwarded upstream */
    bool               req_discard;   /* response over: consume and drop further body */
    struct ebb_buf     reqb;          /* body bytes received, not yet forwarded/consumed */
    uint64_t           req_bytes;
    /* upstream */
    long               cluster;       /* cluster index, -1 none */
    struct ebb_upconn *u;             /* h1 upstream connection */
    struct ebb_h2u_stream *us;        /* h2c upstream stream */
    int                up_err;        /* connect error when a granted connection failed at once */
    bool               head_queued;   /* h1 request head written into u->wbuf */
    bool               req_chunked;   /* h1 request body is chunked */
    int                retries;
    struct ebb_timer   timer;         /* upstream request timeout */
    /* response */
    bool               resp_started;  /* any upstream response byte */
    bool               resp_head_done;/* response HEADERS submitted */
    bool               resp_done;     /* the whole body is in respb (or sent) */
    bool               up_end;        /* h2c upstream: response ended (bytes may still wait there) */
    bool               up_keepalive;
    bool               deferred;      /* data provider returned DEFERRED */
    bool               head_req;
    enum ebb_h1_framing resp_in;
    struct ebb_h1_body rbody;
    struct ebb_buf     respb;         /* body bytes waiting for the client's window */
    struct ebb_buf     trl;           /* response trailers: raw h1 field lines */
    int                status;
    uint64_t           resp_bytes;
    unsigned           rf;            /* EBB_RF_* */
    char               request_id[64];
};

/* Codec state of one downstream h2 connection.  Owned by the conn. */
struct h2c {
    struct ebb_conn   *c;
    nghttp2_session   *ng;
    bool               dead;          /* destroyed; free pending */
    bool               in_run;        /* h2_run() on the stack */
    bool               rerun;         /* h2_run() asked for while in it */
    bool               read_eof;      /* client closed its write side */
    bool               calm;          /* ENHANCE_YOUR_CALM sent */
    bool               settings_sent; /* our first SETTINGS went into wbuf (see h2_send_cb) */
    uint32_t           max_streams;   /* limits.h2_max_concurrent_streams: more are refused */
    struct ebb_list    streams;       /* struct h2s.link */
    struct ebb_list    ready;         /* struct h2s.rlink: streams h2_run() must advance */
    uint32_t           nstreams;
    struct ebb_timer   kick;          /* zero-delay h2_run() for wake-ups from outside */
    enum h2_drain      drain;
    struct ebb_timer   drain_timer;   /* PING ack deadline (drain_timeout) */
    struct ebb_timer   idle_timer;    /* no stream for idle_timeout */
    struct ebb_h2_rate resets;        /* streams reset by the client before their response ended */
};

static __thread struct ebb_h1_msg h2_msg;   /* scratch for upstream response heads */

static void h2_run(struct h2c *h);
static void h2s_up_cb(void *owner, struct ebb_upconn *u, uint32_t events);
static void h2s_start_h2u(struct h2s *s);

static const struct ebb_config *h2_cfg(const struct h2c *h) { return h->c->w->srv->cfg; }
static struct ebb_listener_stats *h2_st(const struct h2c *h) { return h->c->l->st; }
static struct ebb_server_stats *h2_sst(const struct h2c *h) { return &h->c->w->srv->stats->server; }

static size_t rc_len(nghttp2_rcbuf *rb) { return rb ? nghttp2_rcbuf_get_buf(rb).len : 0; }
static const char *rc_ptr(nghttp2_rcbuf *rb)
{
    return rb ? (const char *)nghttp2_rcbuf_get_buf(rb).base : "";
}
static bool rc_is(nghttp2_rcbuf *rb, const char *lit)
{
    size_t n = strlen(lit);
    return rc_len(rb) == n && memcmp(rc_ptr(rb), lit, n) == 0;
}

static void copy_str(char *dst, size_t cap, const char *p, size_t n)
{
    n = EBB_MIN(n, cap - 1);
    memcpy(dst, p, n);
    dst[n] = '\0';
}

/* --- streams --- */

static struct h2s *h2s_get(struct h2c *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->ng, id);
}

/* Queues s for the next pass of h2_run() (only streams on the ready list
 * are advanced: an event costs the streams it concerns, not all of them). */
static void h2s_wake(struct h2s *s)
{
    if (s->state != H2S_CLOSED && !ebb_list_linked(&s->rlink))
        ebb_list_add_tail(&s->h->ready, &s->rlink);
}

/* h2s_wake() from outside the connection's own handlers: also schedules
 * h2_run() for the next loop iteration. */
static void h2s_wake_async(struct h2s *s)
{
    struct h2c *h = s->h;
    h2s_wake(s);
    if (!h->dead && !h->in_run && !ebb_timer_active(&h->kick))
        ebb_timer_start(h->c->w->loop, &h->kick, 0);
}

static void h2s_count_status(struct h2s *s, int status)
{
    s->status = status;
    if (status >= 100 && status < 600)
        ebb_stat_inc(h2_st(s->h)->rq_xx[status / 100]);
}

/* --- bounded h1 upstream connections ---
 *
 * Streams of all h2 connections of a worker share at most h2_h1_limit()
 * HTTP/1.1 connections per cluster (pool.max_idle, at least
 * H2_H1_MIN_CONNS): with keep-alive every one of them goes back to the
 * pool and is reused, instead of one connect and close per request once
 * the streams outnumber the pool.  A stream that finds them all lent waits
 * in cl->h2_waiting, in order, and gets the next one given back.  One that
 * waited H2_H1_WAIT_MS (the connections are held by long responses: long
 * polls, downloads) connects one more, up to H2_H1_MAX_CONNS: the bound
 * gives reuse under load without letting slow exchanges starve the rest. */

static uint32_t h2_h1_limit(const struct ebb_cluster_rt *cl)
{
    return EBB_MAX(cl->cfg->pool_max_idle, (uint32_t)H2_H1_MIN_CONNS);
}

static void h2_waiting_init(struct ebb_cluster_rt *cl)
{
    if (!cl->h2_waiting.next)
        ebb_list_init(&cl->h2_waiting);
}

/* Takes waiting stream s off the queue and lends it a connection.  Never
 * calls back: s is advanced by its own connection's h2_run() (kicked). */
static void h2s_h1_lend(struct h2s *s, struct ebb_cluster_rt *cl, struct ebb_worker *w)
{
    ebb_list_del(&s->wlink);
    ebb_timer_stop(w->loop, &s->timer);
    int rc = ebb_upstream_acquire(cl, w, h2s_up_cb, s, &s->u);
    if (rc == 0 || rc == EBB_EAGAIN) {
        cl->h2_h1_busy++;   /* the head is queued by h2s_pump_h1 or on CONNECTED */
    } else {
        s->u = NULL;
        s->up_err = rc;
    }
    h2s_wake_async(s);
}

/* Lends connections given back to waiting streams, oldest first. */
static void h2_h1_grant(struct ebb_cluster_rt *cl, struct ebb_worker *w)
{
    h2_waiting_init(cl);
    while (!ebb_list_empty(&cl->h2_waiting) && cl->h2_h1_busy < h2_h1_limit(cl))
        h2s_h1_lend(ebb_list_entry(cl->h2_waiting.next, struct h2s, wlink), cl, w);
}

static void h2s_release_upstream(struct h2s *s, bool reusable)
{
    ebb_list_del(&s->wlink);
    if (s->u) {
        struct ebb_cluster_rt *cl = s->u->cl;
        if (s->head_queued)
            ebb_stat_dec(s->u->cl->st->rq_active);
        s->up_addr = s->u->addr_str;   /* lives as long as the server; for the log */
        ebb_upstream_release(s->u, reusable);
        s->u = NULL;
        cl->h2_h1_busy--;
        h2_h1_grant(cl, s->h->c->w);
    }
    if (s->us) {
        ebb_h2u_close(s->us);
        s->us = NULL;
    }
    ebb_timer_stop(s->h->c->w->loop, &s->timer);
}

static void h2s_log(struct h2s *s)
{
    struct h2c *h = s->h;
    char method[24], path[512], authority[256];
    copy_str(method, sizeof(method), rc_ptr(s->method), rc_len(s->method));
    copy_str(path, sizeof(path), rc_ptr(s->path), rc_len(s->path));
    copy_str(authority, sizeof(authority), rc_ptr(s->authority), rc_len(s->authority));
    struct ebb_access a = {
        .listener = h->c->l->cfg->name,
        .method = method,
        .authority = authority,
        .path = path,
        .protocol = "HTTP/2",
        .status = s->status,
        .bytes_received = s->req_bytes,
        .bytes_sent = s->resp_bytes,
        .duration_ms = ebb_loop_now(h->c->w->loop) - s->start_ms,
        .upstream_host = s->u ? s->u->addr_str : s->up_addr,
        .upstream_cluster = s->cluster >= 0 ? h->c->w->clusters[s->cluster].cfg->name : NULL,
        .flags = s->rf,
        .request_id = s->request_id,
        .peer = h->c->peer_str,
    };
    ebb_access_log(&a);
}

static void h2s_free(struct h2s *s)
{
    for (size_t i = 0; i < s->nhdrs; i++) {
        nghttp2_rcbuf_decref(s->hdrs[i].name);
        nghttp2_rcbuf_decref(s->hdrs[i].value);
    }
    free(s->hdrs);
    nghttp2_rcbuf *pseudo[] = { s->method, s->path, s->authority, s->scheme };
    for (size_t i = 0; i < EBB_ARRAY_LEN(pseudo); i++)
        if (pseudo[i])
            nghttp2_rcbuf_decref(pseudo[i]);
    ebb_buf_free(&s->reqb);
    ebb_buf_free(&s->respb);
    ebb_buf_free(&s->trl);
    free(s);
}

static void h2s_free_cb(void *p) { h2s_free(p); }

/* The stream is over (nghttp2 closed it, or the connection goes). */
static void h2s_finish(struct h2s *s, uint32_t error_code)
{
    struct h2c *h = s->h;

    if (s->state == H2S_CLOSED)
        return;
    if (s->state != H2S_HEADERS) {
        if (error_code != NGHTTP2_NO_ERROR && !(s->resp_done && ebb_buf_len(&s->respb) == 0))
            s->rf |= EBB_RF_DC;
        if (h->c->flags & EBB_CONN_F_DRAINING) {
            s->rf |= EBB_RF_DR;
            ebb_stat_inc(h2_st(h)->rq_completed_in_drain);
        }
        h2s_log(s);
        ebb_stat_dec(h2_st(h)->rq_active);
    }
    h2s_release_upstream(s, false);
    /* body bytes we never consumed still count against the connection window */
    if (ebb_buf_len(&s->reqb) && !h->dead)
        nghttp2_session_consume_connection(h->ng, ebb_buf_len(&s->reqb));
    ebb_buf_reset(&s->reqb);
    s->state = H2S_CLOSED;
    ebb_list_del(&s->rlink);
    ebb_list_del(&s->link);
    h->nstreams--;
    ebb_stat_dec(h2_sst(h)->h2_streams_active);
    if (h->nstreams == 0 && !h->dead)
        ebb_timer_start(h->c->w->loop, &h->idle_timer, h2_cfg(h)->limits.idle_timeout_ms);
    if (ebb_loop_defer(h->c->w->loop, h2s_free_cb, s) < 0)
        EBB_BUG_ON(1);
}

/* --- response submission --- */

static ssize_t h2s_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2s *s = src->ptr;
    size_t n = EBB_MIN(len, ebb_buf_len(&s->respb));

    if (n) {
        memcpy(buf, ebb_buf_start(&s->respb), n);
        ebb_buf_consume(&s->respb, n);
        s->resp_bytes += n;
        h2s_wake(s);   /* respb has room: the upstream may be read again */
    }
    if (ebb_buf_len(&s->respb) == 0 && s->resp_done) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (ebb_buf_len(&s->trl)) {
            nghttp2_nv nv[128];
            int k = ebb_h2_split_trailers(ebb_buf_start(&s->trl), ebb_buf_len(&s->trl), nv,
                                          EBB_ARRAY_LEN(nv));
            if (k > 0 && nghttp2_submit_trailer(ng, id, nv, (size_t)k) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            ebb_buf_reset(&s->trl);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* Wakes the data provider after respb got bytes or the body ended. */
static void h2s_resume(struct h2s *s)
{
    if (s->deferred && (ebb_buf_len(&s->respb) || s->resp_done)) {
        s->deferred = false;
        nghttp2_session_resume_data(s->h->ng, s->id);
    }
}

/* Submits the response HEADERS; with_body attaches the data provider. */
static int h2s_submit_head(struct h2s *s, const nghttp2_nv *nv, size_t n, bool with_body)
{
    nghttp2_data_provider dp = { .source.ptr = s, .read_callback = h2s_read_cb };
    s->resp_head_done = true;
    int rv = nghttp2_submit_response(s->h->ng, s->id, nv, n, with_body ? &dp : NULL);
    if (rv != 0)
        nghttp2_submit_rst_stream(s->h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    return rv;
}

static void h2s_reply(struct h2s *s, int status, unsigned rf, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers locally (before any response header went out); after response
 * headers the stream is reset instead (never a silently truncated body). */
static void h2s_reply(struct h2s *s, int status, unsigned rf, const char *fmt, ...)
{
    struct h2c *h = s->h;
    char body[512], st[8], cl[24];
    va_list ap;

    s->rf |= rf;
    h2s_release_upstream(s, false);
    h2s_wake(s);
    if (s->resp_head_done) {
        ebb_stat_inc(h2_st(h)->rq_tx_reset);
        ebb_stat_inc(h2_sst(h)->h2_tx_reset);
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    va_start(ap, fmt);
    int len = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    if ((size_t)len >= sizeof(body))
        len = sizeof(body) - 1;
    s->state = H2S_REPLY;
    s->req_discard = true;
    ebb_buf_reset(&s->respb);
    ebb_buf_reset(&s->trl);
    if (!s->head_req)
        ebb_buf_append(&s->respb, body, (size_t)len);
    s->resp_done = true;
    h2s_count_status(s, status);
    snprintf(st, sizeof(st), "%d", status);
    snprintf(cl, sizeof(cl), "%d", len);
    nghttp2_nv nv[] = {
        { (uint8_t *)":status", (uint8_t *)st, 7, strlen(st), NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"content-type", (uint8_t *)"text/plain", 12, 10, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"content-length", (uint8_t *)cl, 14, strlen(cl), NGHTTP2_NV_FLAG_NONE },
    };
    h2s_submit_head(s, nv, EBB_ARRAY_LEN(nv), !s->head_req);
}

static void h2s_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h2s *s = t->data;
    if (ebb_list_linked(&s->wlink)) {
        /* waited H2_H1_WAIT_MS for a connection: one more, within the hard cap */
        struct ebb_cluster_rt *cl = &s->h->c->w->clusters[s->cluster];
        if (cl->h2_h1_busy >= H2_H1_MAX_CONNS) {
            ebb_timer_start(loop, &s->timer, H2_H1_WAIT_MS);
            return;
        }
        ebb_debug("h2", "#%llu stream %d waited %d ms for a connection to \"%s\": one more",
                  (unsigned long long)s->h->c->id, s->id, H2_H1_WAIT_MS, cl->cfg->name);
        h2s_h1_lend(s, cl, s->h->c->w);
        h2_run(s->h);
        return;
    }
    if (s->resp_head_done || s->state != H2S_UPSTREAM)
        return;
    ebb_stat_inc(s->h->c->w->clusters[s->cluster].st->rq_timeout);
    h2s_reply(s, 504, EBB_RF_UT, "ebb: upstream request timeout: cluster \"%s\"\n",
              s->h->c->w->clusters[s->cluster].cfg->name);
    h2_run(s->h);
}

/* --- h2 stream -> HTTP/1.1 upstream --- */

static bool hdr_is(const struct h2_hdr *hd, const char *lit) { return rc_is(hd->name, lit); }

/* Builds the HTTP/1.1 request head into b (like h1.c's build_upstream_head). */
static int h2s_build_h1_head(struct h2s *s, struct ebb_buf *b)
{
    struct h2c *h = s->h;
    size_t end = s->ntrl_at ? s->ntrl_at : s->nhdrs;
    const struct h2_hdr *xff = NULL;
    bool have_rid = false, cookie = false;
    int rc = 0;

    rc |= ebb_buf_appendf(b, "%.*s %.*s HTTP/1.1\r\n", (int)rc_len(s->method), rc_ptr(s->method),
                          (int)rc_len(s->path), rc_ptr(s->path));
    if (s->authority)
        rc |= ebb_buf_appendf(b, "host: %.*s\r\n", (int)rc_len(s->authority),
                              rc_ptr(s->authority));
    for (size_t i = 0; i < end; i++) {
        const struct h2_hdr *hd = &s->hdrs[i];
        if (hdr_is(hd, "te") || hdr_is(hd, "content-length") || hdr_is(hd, "x-forwarded-proto") ||
            (s->authority && hdr_is(hd, "host")))
            continue;
        if (hdr_is(hd, "cookie")) {
            cookie = true;
            continue;
        }
        if (hdr_is(hd, "x-forwarded-for")) {
            xff = hd;
            continue;
        }
        if (hdr_is(hd, "x-request-id") && rc_len(hd->value) > 0) {
            if (have_rid)
                continue;
            have_rid = true;
            copy_str(s->request_id, sizeof(s->request_id), rc_ptr(hd->value), rc_len(hd->value));
        }
        rc |= ebb_buf_appendf(b, "%.*s: %.*s\r\n", (int)rc_len(hd->name), rc_ptr(hd->name),
                              (int)rc_len(hd->value), rc_ptr(hd->value));
    }
    if (cookie) {
        /* RFC 9113 §8.2.3: cookie crumbs are joined with "; " for HTTP/1.1 */
        const char *sep = "";
        rc |= ebb_buf_appendf(b, "cookie: ");
        for (size_t i = 0; i < end; i++) {
            if (!hdr_is(&s->hdrs[i], "cookie"))
                continue;
            rc |= ebb_buf_appendf(b, "%s%.*s", sep, (int)rc_len(s->hdrs[i].value),
                                  rc_ptr(s->hdrs[i].value));
            sep = "; ";
        }
        rc |= ebb_buf_append(b, "\r\n", 2);
    }
    if (xff)
        rc |= ebb_buf_appendf(b, "x-forwarded-for: %.*s, %s\r\n", (int)rc_len(xff->value),
                              rc_ptr(xff->value), h->c->peer_str);
    else
        rc |= ebb_buf_appendf(b, "x-forwarded-for: %s\r\n", h->c->peer_str);
    rc |= ebb_buf_appendf(b, "x-forwarded-proto: http\r\n");
    if (!have_rid) {
        if (!s->request_id[0])
            ebb_request_id(&h->c->w->rand_state, s->request_id);
        rc |= ebb_buf_appendf(b, "x-request-id: %s\r\n", s->request_id);
    }
    s->req_chunked = false;
    if (s->content_length >= 0)
        rc |= ebb_buf_appendf(b, "content-length: %lld\r\n", (long long)s->content_length);
    else if (!s->req_end || s->req_bytes > 0) {
        rc |= ebb_buf_appendf(b, "transfer-encoding: chunked\r\n");
        s->req_chunked = true;
    }
    rc |= ebb_buf_append(b, "\r\n", 2);
    return rc ? EBB_ETOOBIG : 0;
}

static void h2s_queue_head(struct h2s *s)
{
    struct ebb_upconn *u = s->u;
    if (h2s_build_h1_head(s, &u->wbuf) < 0) {
        h2s_reply(s, 431, 0, "ebb: request headers too large\n");
        return;
    }
    s->head_queued = true;
    u->nrequests++;
    ebb_stat_inc(u->cl->st->rq_total);
    ebb_stat_inc(u->cl->st->rq_active);
    uint64_t rt = u->cl->cfg->request_timeout_ms;
    if (rt)
        ebb_timer_start(s->h->c->w->loop, &s->timer, rt);
}

static void h2s_connect_h1(struct h2s *s)
{
    struct ebb_cluster_rt *cl = &s->h->c->w->clusters[s->cluster];

    h2_waiting_init(cl);
    if (cl->h2_h1_busy >= h2_h1_limit(cl) || !ebb_list_empty(&cl->h2_waiting)) {
        ebb_list_add_tail(&cl->h2_waiting, &s->wlink);   /* h2_h1_grant() wakes it */
        ebb_timer_start(s->h->c->w->loop, &s->timer, H2_H1_WAIT_MS);
        return;
    }
    int rc = ebb_upstream_acquire(cl, s->h->c->w, h2s_up_cb, s, &s->u);
    if (rc == 0 || rc == EBB_EAGAIN)
        cl->h2_h1_busy++;
    if (rc == 0) {
        h2s_queue_head(s);
    } else if (rc != EBB_EAGAIN) {
        s->u = NULL;
        h2s_reply(s, 503, EBB_RF_UF, "ebb: upstream connect error: cluster \"%s\": %s\n",
                  cl->cfg->name, ebb_strerror(rc));
    }
}

/* Client body -> upstream h1 connection.  Returns true on progress. */
static bool h2s_pump_h1_request(struct h2s *s)
{
    struct ebb_upconn *u = s->u;
    bool progress = false;

    while (ebb_buf_len(&s->reqb) && ebb_buf_room(&u->wbuf) > 64) {
        size_t n = EBB_MIN(ebb_buf_len(&s->reqb), ebb_buf_room(&u->wbuf) - 32);
        if (s->req_chunked)
            ebb_buf_appendf(&u->wbuf, "%zx\r\n", n);
        ebb_buf_append(&u->wbuf, ebb_buf_start(&s->reqb), n);
        if (s->req_chunked)
            ebb_buf_append(&u->wbuf, "\r\n", 2);
        ebb_buf_consume(&s->reqb, n);
        nghttp2_session_consume(s->h->ng, s->id, n);
        progress = true;
    }
    if (s->req_end && !s->req_fwd_end && ebb_buf_len(&s->reqb) == 0 &&
        ebb_buf_room(&u->wbuf) > 4096) {
        if (s->req_chunked) {
            ebb_buf_append(&u->wbuf, "0\r\n", 3);
            for (size_t i = s->ntrl_at; s->ntrl_at && i < s->nhdrs; i++) {
                const struct h2_hdr *hd = &s->hdrs[i];
                if (ebb_buf_room(&u->wbuf) < rc_len(hd->name) + rc_len(hd->value) + 8)
                    break;   /* trailers that do not fit are dropped */
                ebb_buf_appendf(&u->wbuf, "%.*s: %.*s\r\n", (int)rc_len(hd->name),
                                rc_ptr(hd->name), (int)rc_len(hd->value), rc_ptr(hd->value));
            }
            ebb_buf_append(&u->wbuf, "\r\n", 2);
        }
        s->req_fwd_end = true;
        progress = true;
    }
    return progress;
}

/* Response head from the h1 upstream -> HEADERS.  Returns true on progress. */
static bool h2s_h1_response_head(struct h2s *s)
{
    struct ebb_upconn *u = s->u;
    struct ebb_h1_msg *m = &h2_msg;
    const struct ebb_config *cfg = h2_cfg(s->h);
    static __thread char names[64 * 1024];

    if (ebb_buf_len(&u->rbuf) == 0)
        return false;
    s->resp_started = true;
    char method[24];
    copy_str(method, sizeof(method), rc_ptr(s->method), rc_len(s->method));
    int rc = ebb_h1_parse_response(ebb_buf_start(&u->rbuf), ebb_buf_len(&u->rbuf),
                                   &cfg->limits.h1, method, strlen(method), m);
    if (rc == EBB_H1_AGAIN)
        return false;
    if (rc < 0 || m->status == 101) {
        h2s_reply(s, 502, EBB_RF_UC, "ebb: malformed response from upstream cluster \"%s\"\n",
                  u->cl->cfg->name);
        return true;
    }
    if (m->status < 200) {
        ebb_buf_consume(&u->rbuf, (size_t)rc);   /* interim responses are not forwarded */
        return true;
    }
    ebb_timer_stop(s->h->c->w->loop, &s->timer);
    s->resp_in = m->framing;
    s->up_keepalive = !(m->flags & EBB_H1_F_CONN_CLOSE);
    h2s_count_status(s, m->status);

    nghttp2_nv nv[EBB_H1_MAX_HEADERS_CAP + 1];
    size_t n = 0, used = 0;
    char st[8];
    snprintf(st, sizeof(st), "%d", m->status);
    nv[n++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)st, 7, strlen(st), 0 };
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *hd = &m->headers[i];
        if (ebb_h1_is_hop_by_hop(m, &hd->name) || ebb_h2_is_conn_header(hd->name.p, hd->name.len))
            continue;
        if (hd->name.len == 14 && strncasecmp(hd->name.p, "content-length", 14) == 0 &&
            m->framing != EBB_H1_BODY_LENGTH && m->framing != EBB_H1_BODY_NONE)
            continue;
        if (used + hd->name.len > sizeof(names))
            break;
        char *lower = names + used;
        for (size_t k = 0; k < hd->name.len; k++) {
            char ch = hd->name.p[k];
            lower[k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
        }
        used += hd->name.len;
        nv[n++] = (nghttp2_nv){ (uint8_t *)lower, (uint8_t *)hd->value.p, hd->name.len,
                                hd->value.len, NGHTTP2_NV_FLAG_NONE };
    }
    ebb_h1_body_init(&s->rbody, m);
    if (m->framing == EBB_H1_BODY_NONE ||
        (m->framing == EBB_H1_BODY_LENGTH && m->content_length == 0))
        s->resp_done = true;
    h2s_submit_head(s, nv, n, !s->resp_done);   /* copies nv */
    ebb_buf_consume(&u->rbuf, (size_t)rc);      /* nv pointed into rbuf */
    return true;
}

/* Upstream h1 body -> respb.  Returns true on progress. */
static bool h2s_pump_h1_response(struct h2s *s)
{
    struct ebb_upconn *u = s->u;
    bool progress = false;

    while (!s->resp_done && (ebb_buf_len(&u->rbuf) || ebb_h1_body_done(&s->rbody)) &&
           ebb_buf_room(&s->respb) > 0) {
        size_t len = EBB_MIN(ebb_buf_len(&u->rbuf), ebb_buf_room(&s->respb));
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        int rc = ebb_h1_body_parse(&s->rbody, ebb_buf_start(&u->rbuf), len, &consumed, &data,
                                   &dlen);
        if (rc == EBB_H1_EBAD) {
            ebb_warn("h2", "#%llu stream %d: malformed response body from %s",
                     (unsigned long long)s->h->c->id, s->id, u->addr_str);
            h2s_reply(s, 502, EBB_RF_UC, "ebb: malformed response body\n");
            return true;
        }
        if (rc == EBB_H1_BODY_DATA && dlen)
            ebb_buf_append(&s->respb, data, dlen);
        else if (rc == EBB_H1_BODY_TRAILER) {
            s->trl.max = 64 * 1024;
            ebb_buf_append(&s->trl, data, dlen);   /* too large: truncated, then dropped */
        } else if (rc == EBB_H1_BODY_DONE)
            s->resp_done = true;
        ebb_buf_consume(&u->rbuf, consumed);
        progress = true;
        if (rc == EBB_H1_AGAIN)
            break;
    }
    /* a close-delimited body ends with the upstream's FIN; a reset truncates it, and
     * h2s_pump_h1 then resets the stream (never END_STREAM on a cut body) */
    if (!s->resp_done && s->resp_in == EBB_H1_BODY_EOF && u->eof && !u->reset &&
        !ebb_buf_len(&u->rbuf)) {
        s->resp_done = true;
        progress = true;
    }
    return progress;
}

/* A method that may be repeated (RFC 9110 §9.2.2), as h1.c decides. */
static bool h2s_idempotent(const struct h2s *s)
{
    static const char *const m[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" };
    for (size_t i = 0; i < EBB_ARRAY_LEN(m); i++)
        if (rc_is(s->method, m[i]))
            return true;
    return false;
}

/* The h1 upstream closed or failed before the exchange finished. */
static void h2s_h1_upstream_gone(struct h2s *s)
{
    struct ebb_upconn *u = s->u;
    const char *name = u->cl->cfg->name;

    if (!s->resp_started && u->reused && s->req_end && s->req_bytes == 0 && s->retries == 0 &&
        h2s_idempotent(s)) {
        /* a pooled connection the upstream had closed: one fresh try is safe, for a method
         * that may be repeated (RFC 9110 §9.2.2, RFC 9112 §9.3.1: the upstream may have
         * acted on a POST before closing) */
        s->retries++;
        h2s_release_upstream(s, false);
        s->head_queued = false;
        h2s_connect_h1(s);
        return;
    }
    ebb_stat_inc(u->cl->st->rq_reset);
    if (!s->resp_head_done) {
        h2s_reply(s, 503, EBB_RF_UC,
                  "ebb: upstream reset before response headers: cluster \"%s\"\n", name);
        return;
    }
    h2s_reply(s, 0, EBB_RF_URX | EBB_RF_UC, "-");   /* resets the stream */
}

/* Advances one stream with an h1 upstream.  Returns true on progress. */
static bool h2s_pump_h1(struct h2s *s)
{
    struct ebb_upconn *u = s->u;
    bool progress = false;

    if (u && u->state == EBB_UP_BUSY && !s->head_queued) {
        h2s_queue_head(s);   /* a connection granted from the pool (h2_h1_grant) */
        if (!s->u || s->state != H2S_UPSTREAM)
            return true;
    }
    if (!u || u->state != EBB_UP_BUSY || !s->head_queued)
        return false;
    if (!s->req_fwd_end)
        progress |= h2s_pump_h1_request(s);
    if (!s->resp_head_done)
        progress |= h2s_h1_response_head(s);
    if (!s->u || s->state != H2S_UPSTREAM)
        return true;
    if (s->resp_head_done)
        progress |= h2s_pump_h1_response(s);
    if (!s->u || s->state != H2S_UPSTREAM)
        return true;
    h2s_resume(s);
    if (ebb_upstream_flush(u) < 0) {
        /* the upstream stopped reading: drop what it will not take, but keep reading,
         * an answer it sent before closing (413, 401) is still there */
        u->wr_failed = true;
        ebb_buf_reset(&u->wbuf);
    }
    if (s->resp_done) {
        /* the upstream side is over: give the connection back as early as possible */
        bool reusable = s->req_fwd_end && s->up_keepalive && s->resp_in != EBB_H1_BODY_EOF &&
                        ebb_buf_len(&u->wbuf) == 0;
        if (!s->req_fwd_end)
            s->req_discard = true;
        h2s_release_upstream(s, reusable);
        return true;
    }
    if (u->eof && ebb_buf_len(&u->rbuf) == 0) {
        h2s_h1_upstream_gone(s);
        return true;
    }
    return progress;
}

static void h2s_up_cb(void *owner, struct ebb_upconn *u, uint32_t events)
{
    struct h2s *s = owner;

    if (events & EBB_UP_EV_FAILED) {
        const char *name = u->cl->cfg->name;
        int err = u->err;
        h2s_release_upstream(s, false);
        h2s_reply(s, 503, EBB_RF_UF, "ebb: upstream connect error: cluster \"%s\": %s\n", name,
                  err == EBB_ETIMEDOUT ? "connect timeout" : ebb_strerror(err));
        h2s_wake_async(s);
        return;
    }
    if (events & EBB_UP_EV_CONNECTED)
        h2s_queue_head(s);
    if (s->u && (events & (EBB_READ | EPOLLHUP | EPOLLERR))) {
        for (int i = 0; i < 4; i++) {
            ssize_t n = ebb_upstream_read(u);   /* sets eof (and reset) */
            if (n > 0 && ebb_buf_tailroom(&u->rbuf) && ebb_buf_room(&u->rbuf))
                break;
            if (n > 0)
                continue;
            break;
        }
    }
    if (s->u && (events & EBB_WRITE) && ebb_upstream_flush(u) < 0) {
        u->wr_failed = true;   /* see h2s_pump_h1 */
        ebb_buf_reset(&u->wbuf);
    }
    /* after this epoll batch: one h2_run (one write to the client) for every
     * upstream event of the batch, not one per event */
    h2s_wake_async(s);
}

static void h2s_set_interest(struct h2s *s)
{
    struct ebb_upconn *u = s->u;
    uint32_t ev = 0;
    if (!u || u->state != EBB_UP_BUSY)
        return;
    if (s->head_queued && !u->eof && ebb_buf_room(&u->rbuf) > 0 &&
        (!s->resp_head_done || ebb_buf_room(&s->respb) > 0))
        ev |= EBB_READ;
    if (ebb_buf_len(&u->wbuf))
        ev |= EBB_WRITE;
    ebb_upstream_want(u, ev);
}

/* --- starting a stream's exchange --- */

/* The request head is complete: check it, route it, start the upstream. */
static void h2s_start(struct h2s *s)
{
    struct h2c *h = s->h;
    struct ebb_conn *c = h->c;

    s->state = H2S_UPSTREAM;
    s->start_ms = ebb_loop_now(c->w->loop);
    ebb_stat_inc(h2_st(h)->rq_total);
    ebb_stat_inc(h2_st(h)->rq_active);
    s->head_req = rc_is(s->method, "HEAD");
    if (s->too_big) {
        ebb_stat_inc(h2_sst(h)->h2_header_overflow);
        h2s_reply(s, 431, 0, "ebb: request headers too large\n");
        return;
    }
    if (rc_is(s->method, "CONNECT")) {
        h2s_reply(s, 501, 0, "ebb: CONNECT is not supported\n");
        return;
    }
    const char *auth = rc_ptr(s->authority);
    size_t alen = rc_len(s->authority);
    if (!s->authority) {
        for (size_t i = 0; i < s->nhdrs; i++)
            if (hdr_is(&s->hdrs[i], "host")) {
                auth = rc_ptr(s->hdrs[i].value);
                alen = rc_len(s->hdrs[i].value);
                break;
            }
    }
    if (alen == 0) {
        h2s_reply(s, 400, 0, "ebb: missing :authority\n");
        return;
    }
    s->cluster = ebb_route(c->l, auth, alen);
    if (s->cluster < 0) {
        ebb_stat_inc(h2_st(h)->no_route);
        h2s_reply(s, 404, EBB_RF_NR, "ebb: no route for host \"%.*s\"\n", (int)EBB_MIN(alen, 255),
                  auth);
        return;
    }
    uint64_t maxb = h2_cfg(h)->limits.max_request_body;
    if (maxb && s->content_length > 0 && (uint64_t)s->content_length > maxb) {
        h2s_reply(s, 413, 0, "ebb: request body larger than %llu bytes\n", (unsigned long long)maxb);
        return;
    }
    if (c->w->clusters[s->cluster].cfg->protocol == EBB_UP_H2C)
        h2s_start_h2u(s);
    else
        h2s_connect_h1(s);
}

/* --- h2 stream -> upstream h2c stream --- */

static void h2s_us_head(void *owner, int status, const nghttp2_nv *nv, size_t n)
{
    struct h2s *s = owner;
    nghttp2_nv out[EBB_H1_MAX_HEADERS_CAP + 1];
    char st[8];
    size_t k = 0;

    ebb_timer_stop(s->h->c->w->loop, &s->timer);
    h2s_wake(s);
    s->resp_started = true;
    h2s_count_status(s, status);
    snprintf(st, sizeof(st), "%d", status);
    out[k++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)st, 7, strlen(st), 0 };
    for (size_t i = 0; i < n && k < EBB_ARRAY_LEN(out); i++)
        out[k++] = nv[i];
    h2s_submit_head(s, out, k, !s->head_req);
    if (s->head_req)
        s->resp_done = true;
    h2s_wake_async(s);
}

/* h2u callbacks run inside the upstream connection's receive: the downstream
 * connection runs once after the epoll batch (h2s_wake_async), however many
 * of its streams the upstream frames concerned. */
static void h2s_us_data(void *owner) { h2s_wake_async(owner); }
static void h2s_us_writable(void *owner) { h2s_wake_async(owner); }

static void h2s_us_trailers(void *owner, const nghttp2_nv *nv, size_t n)
{
    struct h2s *s = owner;
    s->trl.max = 64 * 1024;
    for (size_t i = 0; i < n; i++)
        ebb_buf_appendf(&s->trl, "%.*s: %.*s\r\n", (int)nv[i].namelen, nv[i].name,
                        (int)nv[i].valuelen, nv[i].value);
}

static void h2s_us_end(void *owner)
{
    struct h2s *s = owner;
    s->up_end = true;
    h2s_wake_async(s);
}

static void h2s_us_error(void *owner, unsigned rf, bool head_seen)
{
    struct h2s *s = owner;
    struct ebb_cluster_rt *cl = &s->h->c->w->clusters[s->cluster];
    s->us = NULL;   /* the upstream stream is gone with this callback */
    if (rf & EBB_RF_UF)
        h2s_reply(s, 503, rf, "ebb: upstream connect error: cluster \"%s\"\n", cl->cfg->name);
    else if (rf & EBB_RF_UT)
        h2s_reply(s, 504, rf, "ebb: upstream request timeout: cluster \"%s\"\n", cl->cfg->name);
    else if (!head_seen)
        h2s_reply(s, 503, rf, "ebb: upstream reset before response headers: cluster \"%s\"\n",
                  cl->cfg->name);
    else
        h2s_reply(s, 0, rf | EBB_RF_URX, "-");
    h2s_wake_async(s);
}

static const struct ebb_h2u_cbs h2s_us_cbs = {
    .on_head = h2s_us_head,
    .on_data = h2s_us_data,
    .on_trailers = h2s_us_trailers,
    .on_end = h2s_us_end,
    .on_writable = h2s_us_writable,
    .on_error = h2s_us_error,
};

static void h2s_start_h2u(struct h2s *s)
{
    struct h2c *h = s->h;
    struct ebb_cluster_rt *cl = &h->c->w->clusters[s->cluster];
    size_t end = s->ntrl_at ? s->ntrl_at : s->nhdrs;
    nghttp2_nv *nv = calloc(end + 8, sizeof(*nv));
    size_t n = 0;
    char xff[512];
    const struct h2_hdr *oxff = NULL;
    bool have_rid = false;

    if (!nv) {
        h2s_reply(s, 503, 0, "ebb: out of memory\n");
        return;
    }
#define NV(nm, nl, v, vl) nv[n++] = (nghttp2_nv){ (uint8_t *)(nm), (uint8_t *)(v), (nl), (vl), 0 }
    NV(":method", 7, rc_ptr(s->method), rc_len(s->method));
    NV(":scheme", 7, s->scheme ? rc_ptr(s->scheme) : "http", s->scheme ? rc_len(s->scheme) : 4);
    if (s->authority)
        NV(":authority", 10, rc_ptr(s->authority), rc_len(s->authority));
    NV(":path", 5, rc_ptr(s->path), rc_len(s->path));
    for (size_t i = 0; i < end; i++) {
        const struct h2_hdr *hd = &s->hdrs[i];
        if (hdr_is(hd, "x-forwarded-proto"))
            continue;
        if (hdr_is(hd, "x-forwarded-for")) {
            oxff = hd;
            continue;
        }
        if (hdr_is(hd, "x-request-id") && rc_len(hd->value) > 0) {
            if (have_rid)
                continue;
            have_rid = true;
            copy_str(s->request_id, sizeof(s->request_id), rc_ptr(hd->value), rc_len(hd->value));
        }
        NV(rc_ptr(hd->name), rc_len(hd->name), rc_ptr(hd->value), rc_len(hd->value));
    }
    if (oxff)
        snprintf(xff, sizeof(xff), "%.*s, %s", (int)EBB_MIN(rc_len(oxff->value), 400),
                 rc_ptr(oxff->value), h->c->peer_str);
    else
        snprintf(xff, sizeof(xff), "%s", h->c->peer_str);
    NV("x-forwarded-for", 15, xff, strlen(xff));
    NV("x-forwarded-proto", 17, "http", 4);
    if (!have_rid) {
        ebb_request_id(&h->c->w->rand_state, s->request_id);
        NV("x-request-id", 12, s->request_id, strlen(s->request_id));
    }
#undef NV
    s->us = ebb_h2u_open(cl, h->c->w, nv, n, s->req_end && ebb_buf_len(&s->reqb) == 0 &&
                         s->req_bytes == 0, &h2s_us_cbs, s);
    free(nv);
    if (!s->us) {
        h2s_reply(s, 503, EBB_RF_UF, "ebb: upstream connect error: cluster \"%s\"\n",
                  cl->cfg->name);
        return;
    }
    if (s->req_end && s->req_bytes == 0)
        s->req_fwd_end = true;
    if (cl->cfg->request_timeout_ms)
        ebb_timer_start(h->c->w->loop, &s->timer, cl->cfg->request_timeout_ms);
}

/* Advances one stream with an h2c upstream.  Returns true on progress. */
static bool h2s_pump_h2u(struct h2s *s)
{
    bool progress = false;

    while (ebb_buf_len(&s->reqb)) {
        size_t n = ebb_h2u_write(s->us, ebb_buf_start(&s->reqb), ebb_buf_len(&s->reqb));
        if (n == 0)
            break;
        ebb_buf_consume(&s->reqb, n);
        nghttp2_session_consume(s->h->ng, s->id, n);
        progress = true;
    }
    if (s->req_end && !s->req_fwd_end && ebb_buf_len(&s->reqb) == 0) {
        nghttp2_nv tv[128];
        size_t tn = 0;
        for (size_t i = s->ntrl_at; s->ntrl_at && i < s->nhdrs && tn < EBB_ARRAY_LEN(tv); i++)
            tv[tn++] = (nghttp2_nv){ (uint8_t *)rc_ptr(s->hdrs[i].name),
                                     (uint8_t *)rc_ptr(s->hdrs[i].value),
                                     rc_len(s->hdrs[i].name), rc_len(s->hdrs[i].value), 0 };
        ebb_h2u_end(s->us, tv, tn);
        s->req_fwd_end = true;
        progress = true;
    }
    if (s->resp_head_done && !s->head_req) {
        while (ebb_h2u_readable(s->us) && ebb_buf_room(&s->respb) > 0) {
            if (ebb_buf_reserve(&s->respb, EBB_MIN(ebb_buf_room(&s->respb), 16384)) < 0)
                break;
            size_t room = EBB_MIN(ebb_buf_tailroom(&s->respb), ebb_buf_room(&s->respb));
            size_t n = ebb_h2u_read(s->us, ebb_buf_end(&s->respb), room);
            if (n == 0)
                break;
            s->respb.tail += n;
            progress = true;
        }
    }
    if (s->up_end && ebb_h2u_readable(s->us) == 0)
        s->resp_done = true;
    h2s_resume(s);
    if (s->resp_done && ebb_h2u_readable(s->us) == 0) {
        if (!s->req_fwd_end)
            s->req_discard = true;
        h2s_release_upstream(s, false);
        progress = true;
    }
    return progress;
}

/* --- nghttp2 callbacks --- */

/* Rewrites SETTINGS_MAX_CONCURRENT_STREAMS in our first SETTINGS frame
 * (whole in p, n bytes) to the configured limit.  nghttp2 1.52 treats a
 * stream over its acknowledged limit as a connection error (PROTOCOL_ERROR),
 * though RFC 9113 §5.1.2 lets a server refuse just that stream: so nghttp2
 * is given a higher limit (h2_ng_max_streams) and the client is told the
 * real one, which h2_on_begin_headers enforces with REFUSED_STREAM. */
static void h2_patch_settings(struct h2c *h, uint8_t *p, size_t n)
{
    if (n < 9)
        return;
    size_t plen = ((size_t)p[0] << 16) | ((size_t)p[1] << 8) | p[2];
    if (n < 9 + plen)
        return;   /* not whole: nghttp2's (higher) value goes out, still correct */
    for (size_t i = 9; i + 6 <= 9 + plen; i += 6) {
        if (((p[i] << 8) | p[i + 1]) != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
            continue;
        p[i + 2] = (uint8_t)(h->max_streams >> 24);
        p[i + 3] = (uint8_t)(h->max_streams >> 16);
        p[i + 4] = (uint8_t)(h->max_streams >> 8);
        p[i + 5] = (uint8_t)h->max_streams;
    }
}

static ssize_t h2_send_cb(nghttp2_session *ng, const uint8_t *data, size_t len, int flags,
                          void *ud)
{
    struct h2c *h = ud;
    struct ebb_buf *b = &h->c->wbuf;
    size_t n = EBB_MIN(len, ebb_buf_room(b));
    if (n == 0 || ebb_buf_append(b, data, n) < 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    /* a server session's first frame is its SETTINGS */
    if (!h->settings_sent && n >= 9 && data[3] == NGHTTP2_SETTINGS &&
        !(data[4] & NGHTTP2_FLAG_ACK)) {
        h->settings_sent = true;
        h2_patch_settings(h, (uint8_t *)ebb_buf_end(b) - n, n);
    }
    return (ssize_t)n;
}

static int h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2c *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (h->nstreams >= h->max_streams) {
        /* over the advertised limit: refuse this stream only (RFC 9113
         * §5.1.2); its header block and DATA are ignored (no h2s) */
        ebb_debug("h2", "#%llu stream %d over the limit of %u: REFUSED_STREAM",
                  (unsigned long long)h->c->id, f->hd.stream_id, h->max_streams);
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    struct h2s *s = calloc(1, sizeof(*s));
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->h = h;
    s->id = f->hd.stream_id;
    s->cluster = -1;
    s->content_length = -1;
    s->reqb.max = H2_BODY_BUF + 16384;
    s->respb.max = H2_BODY_BUF;
    s->timer.cb = h2s_timeout;
    s->timer.data = s;
    ebb_list_add_tail(&h->streams, &s->link);
    h->nstreams++;
    ebb_stat_inc(h2_sst(h)->h2_streams_active);
    ebb_stat_inc(h2_sst(h)->h2_streams_total);
    ebb_timer_stop(h->c->w->loop, &h->idle_timer);
    nghttp2_session_set_stream_user_data(ng, s->id, s);
    return 0;
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, nghttp2_rcbuf *name,
                        nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    struct h2c *h = ud;
    struct h2s *s = h2s_get(h, f->hd.stream_id);
    const struct ebb_config *cfg = h2_cfg(h);

    if (!s || s->state == H2S_CLOSED)
        return 0;
    bool trailer = f->headers.cat == NGHTTP2_HCAT_HEADERS;
    if (trailer && !s->ntrl_at)
        s->ntrl_at = s->nhdrs ? s->nhdrs : (size_t)-1;
    s->hdr_bytes += rc_len(name) + rc_len(value) + 32;
    if (s->hdr_bytes > cfg->limits.h1.max_head) {
        s->too_big = true;
        if (trailer)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    nghttp2_rcbuf **slot = NULL;
    if (!trailer && rc_len(name) && rc_ptr(name)[0] == ':') {
        if (rc_is(name, ":method"))
            slot = &s->method;
        else if (rc_is(name, ":path"))
            slot = &s->path;
        else if (rc_is(name, ":authority"))
            slot = &s->authority;
        else if (rc_is(name, ":scheme"))
            slot = &s->scheme;
        else
            return 0;   /* :protocol is refused by nghttp2 (no extended CONNECT) */
        if (!*slot) {
            nghttp2_rcbuf_incref(value);
            *slot = value;
        }
        return 0;
    }
    if (rc_is(name, "content-length") && !trailer) {
        char tmp[24];
        copy_str(tmp, sizeof(tmp), rc_ptr(value), rc_len(value));
        s->content_length = strtoll(tmp, NULL, 10);   /* nghttp2 validated it */
    }
    if (s->nhdrs >= cfg->limits.h1.max_headers + (trailer ? 64 : 0)) {
        s->too_big = true;
        return trailer ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    if (s->nhdrs == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct h2_hdr *p = realloc(s->hdrs, cap * sizeof(*p));
        if (!p)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        s->hdrs = p;
        s->cap = cap;
    }
    if (s->ntrl_at == (size_t)-1)
        s->ntrl_at = s->nhdrs;
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    s->hdrs[s->nhdrs++] = (struct h2_hdr){ name, value };
    return 0;
}

static int h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                            size_t len, void *ud)
{
    struct h2c *h = ud;
    struct h2s *s = h2s_get(h, id);

    if (!s || s->state == H2S_CLOSED || s->req_discard) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    s->req_bytes += len;
    h2s_wake(s);
    uint64_t maxb = h2_cfg(h)->limits.max_request_body;
    if (maxb && s->req_bytes > maxb) {
        nghttp2_session_consume(ng, id, len);
        h2s_reply(s, 413, 0, "ebb: request body larger than %llu bytes\n", (unsigned long long)maxb);
        return 0;
    }
    if (ebb_buf_append(&s->reqb, data, len) < 0) {
        /* more than the window we granted: the peer broke flow control */
        nghttp2_session_consume(ng, id, len);
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
    }
    return 0;
}

static void h2_drain_final(struct h2c *h);

static int h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2c *h = ud;
    struct h2s *s;

    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        s = h2s_get(h, f->hd.stream_id);
        if (!s)
            break;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
                s->req_end = true;
            h2s_start(s);
        } else if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            s->req_end = true;   /* request trailers */
        }
        h2s_wake(s);
        break;
    case NGHTTP2_DATA:
        s = h2s_get(h, f->hd.stream_id);
        if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            s->req_end = true;
            h2s_wake(s);
        }
        break;
    case NGHTTP2_RST_STREAM:
        ebb_stat_inc(h2_sst(h)->h2_rx_reset);
        s = h2s_get(h, f->hd.stream_id);
        if (s && s->state != H2S_CLOSED) {
            ebb_stat_inc(h2_st(h)->rq_rx_reset);
            /* rapid reset (CVE-2023-44487): streams cancelled before their
             * response ended, per connection per window */
            uint32_t limit = EBB_MAX(2 * h2_cfg(h)->limits.h2_max_concurrent_streams, 200u);
            if (!(s->resp_done && ebb_buf_len(&s->respb) == 0) && !h->calm &&
                ebb_h2_rate_hit(&h->resets, ebb_loop_now(h->c->w->loop), H2_RESET_WINDOW_MS,
                                limit)) {
                h->calm = true;
                ebb_stat_inc(h2_sst(h)->h2_calm_goaway);
                ebb_warn("h2", "#%llu from %s: too many stream resets, GOAWAY ENHANCE_YOUR_CALM",
                         (unsigned long long)h->c->id, h->c->peer_str);
                nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
            }
        }
        break;
    case NGHTTP2_PING:
        if ((f->hd.flags & NGHTTP2_FLAG_ACK) && h->drain == H2_DRAIN_NOTICE &&
            memcmp(f->ping.opaque_data, H2_PING_DRAIN, 8) == 0)
            h2_drain_final(h);
        break;
    default:
        break;
    }
    return 0;
}

static int h2_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    struct h2c *h = ud;
    struct h2s *s = h2s_get(h, id);
    if (s)
        h2s_finish(s, error_code);
    return 0;
}

static int h2_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2c *h = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        ebb_stat_inc(h2_sst(h)->goaway_sent);
        ebb_debug("h2", "#%llu GOAWAY sent: last stream %d, error %u", (unsigned long long)h->c->id,
                  f->goaway.last_stream_id, f->goaway.error_code);
    } else if (f->hd.type == NGHTTP2_RST_STREAM) {
        ebb_stat_inc(h2_sst(h)->h2_tx_reset);
    }
    return 0;
}

static int h2_on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int lib_error,
                               void *ud)
{
    struct h2c *h = ud;
    ebb_stat_inc(h2_sst(h)->h2_rx_messaging_error);
    ebb_debug("h2", "#%llu invalid frame type %u on stream %d: %s", (unsigned long long)h->c->id,
              f->hd.type, f->hd.stream_id, nghttp2_strerror(lib_error));
    return 0;
}

/* --- drain: two-phase GOAWAY (SPEC §3.3.4) --- */

static void h2_drain_final(struct h2c *h)
{
    if (h->drain == H2_DRAIN_FINAL || h->dead)
        return;
    h->drain = H2_DRAIN_FINAL;
    ebb_timer_stop(h->c->w->loop, &h->drain_timer);
    int32_t last = nghttp2_session_get_last_proc_stream_id(h->ng);
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
    ebb_debug("h2", "#%llu drain: final GOAWAY, last stream %d, %u in flight",
              (unsigned long long)h->c->id, last, h->nstreams);
}

static void h2_drain_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h2c *h = t->data;
    h2_drain_final(h);
    h2_run(h);
}

static void h2_drain_notice(struct h2c *h)
{
    if (h->drain != H2_DRAIN_NONE)
        return;
    h->drain = H2_DRAIN_NOTICE;
    h->c->flags |= EBB_CONN_F_DRAINING;
    nghttp2_submit_shutdown_notice(h->ng);   /* GOAWAY 2^31-1, NO_ERROR */
    nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, (const uint8_t *)H2_PING_DRAIN);
    ebb_timer_start(h->c->w->loop, &h->drain_timer, h2_cfg(h)->drain.drain_timeout_ms);
}

static void h2_drain(struct ebb_conn *c)
{
    struct h2c *h = c->codec;
    if (!h || h->dead || h->drain != H2_DRAIN_NONE)
        return;
    h2_drain_notice(h);
    h2_run(h);
}

static void h2_idle_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h2c *h = t->data;
    if (h->nstreams)
        return;
    ebb_stat_inc(h2_st(h)->cx_idle_timeout);
    nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR);
    h2_run(h);
}

/* --- the connection --- */

static void h2_close(struct h2c *h)
{
    struct ebb_conn *c = h->c;
    if (c->flags & EBB_CONN_F_DRAINING)
        ebb_stat_inc(h2_st(h)->cx_drain_close);
    ebb_conn_close_staged(c);
}

/* One step of one stream.  Returns true on progress. */
static bool h2s_advance(struct h2s *s)
{
    bool progress = false;

    if (s->state == H2S_UPSTREAM && s->u) {
        progress = h2s_pump_h1(s);
    } else if (s->state == H2S_UPSTREAM && s->us) {
        progress = h2s_pump_h2u(s);
    } else if (s->state == H2S_UPSTREAM && s->up_err) {
        int err = s->up_err;
        s->up_err = 0;
        h2s_reply(s, 503, EBB_RF_UF, "ebb: upstream connect error: cluster \"%s\": %s\n",
                  s->h->c->w->clusters[s->cluster].cfg->name, ebb_strerror(err));
        progress = true;
    } else if (s->req_discard && ebb_buf_len(&s->reqb)) {
        nghttp2_session_consume(s->h->ng, s->id, ebb_buf_len(&s->reqb));
        ebb_buf_reset(&s->reqb);
    }
    if (s->state != H2S_CLOSED) {
        h2s_resume(s);
        h2s_set_interest(s);
    }
    return progress;
}

static void h2_kick(struct ebb_loop *loop, struct ebb_timer *t) { h2_run(t->data); }

static void h2_run(struct h2c *h)
{
    struct ebb_conn *c = h->c;

    if (h->dead)
        return;
    if (h->in_run) {
        h->rerun = true;
        return;
    }
    h->in_run = true;
    ebb_timer_stop(c->w->loop, &h->kick);
    for (int guard = 0; guard < 64 && !h->dead; guard++) {
        bool progress = false;
        h->rerun = false;
        /* this pass takes the streams woken so far; wake-ups during it
         * (including a stream that progressed) go to the next pass */
        struct ebb_list pass;
        ebb_list_init(&pass);
        if (!ebb_list_empty(&h->ready)) {
            pass.next = h->ready.next;
            pass.prev = h->ready.prev;
            pass.next->prev = &pass;
            pass.prev->next = &pass;
            ebb_list_init(&h->ready);
        }
        while (!ebb_list_empty(&pass)) {
            struct h2s *s = ebb_list_entry(pass.next, struct h2s, rlink);
            ebb_list_del(&s->rlink);
            if (h2s_advance(s)) {
                progress = true;
                h2s_wake(s);
            }
        }
        if (ebb_conn_flush(c) < 0) {
            ebb_conn_close(c, false);
            return;   /* destroy ran: h is dead */
        }
        size_t before = ebb_buf_len(&c->wbuf);
        int rv = nghttp2_session_send(h->ng);
        if (rv != 0) {
            ebb_debug("h2", "#%llu send: %s", (unsigned long long)c->id, nghttp2_strerror(rv));
            ebb_conn_close(c, true);
            return;
        }
        if (ebb_buf_len(&c->wbuf) != before)
            progress = true;
        if (ebb_conn_flush(c) < 0) {
            ebb_conn_close(c, false);
            return;
        }
        if (!progress && !h->rerun && ebb_list_empty(&h->ready))
            break;
        if (ebb_buf_room(&c->wbuf) == 0)
            break;   /* wait for the socket */
    }
    h->in_run = false;
    if (!h->dead && !ebb_list_empty(&h->ready) && ebb_buf_len(&c->wbuf) == 0)
        ebb_timer_start(c->w->loop, &h->kick, 0);   /* the guard ran out: go on next iteration */
    if (h->dead)
        return;

    bool want_read = nghttp2_session_want_read(h->ng) && !h->read_eof;
    bool want_write = nghttp2_session_want_write(h->ng);
    if (!want_read && !want_write && ebb_buf_len(&c->wbuf) == 0) {
        h2_close(h);
        return;
    }
    if (h->read_eof && h->nstreams == 0 && !want_write && ebb_buf_len(&c->wbuf) == 0) {
        h2_close(h);
        return;
    }
    uint32_t ev = 0;
    if (want_read && ebb_buf_room(&c->rbuf) > 0)
        ev |= EBB_READ;
    if (ebb_buf_len(&c->wbuf))
        ev |= EBB_WRITE;
    ebb_conn_want(c, ev);
}

/* Feeds c->rbuf to nghttp2.  Returns 0 or -1 (connection closed). */
static int h2_recv(struct h2c *h)
{
    struct ebb_conn *c = h->c;
    if (ebb_buf_len(&c->rbuf) == 0)
        return 0;
    ssize_t n = nghttp2_session_mem_recv(h->ng, (const uint8_t *)ebb_buf_start(&c->rbuf),
                                         ebb_buf_len(&c->rbuf));
    if (h->dead)
        return -1;
    if (n < 0) {
        ebb_stat_inc(h2_st(h)->cx_protocol_error);
        ebb_debug("h2", "#%llu from %s: %s", (unsigned long long)c->id, c->peer_str,
                  nghttp2_strerror((int)n));
        ebb_buf_reset(&c->rbuf);
        if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
            ebb_conn_close(c, false);
            return -1;
        }
        /* nghttp2 queued a GOAWAY for most errors: send it, then close */
        nghttp2_session_terminate_session(h->ng, NGHTTP2_PROTOCOL_ERROR);
        h->read_eof = true;
        return 0;
    }
    ebb_buf_consume(&c->rbuf, (size_t)n);
    return 0;
}

static void h2_on_io(struct ebb_conn *c, uint32_t events)
{
    struct h2c *h = c->codec;

    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        for (int i = 0; i < 8 && !h->read_eof; i++) {
            ssize_t n = ebb_conn_read(c);
            if (n > 0) {
                if (h2_recv(h) < 0)
                    return;
                continue;
            }
            if (n == 0) {
                h->read_eof = true;
            } else if (n != EBB_EAGAIN && n != EBB_ETOOBIG) {
                ebb_conn_close(c, false);
                return;
            }
            break;
        }
    }
    if ((events & EBB_WRITE) && ebb_conn_flush(c) < 0) {
        ebb_conn_close(c, false);
        return;
    }
    h2_run(h);
}

/* A new callback table (the caller deletes it: nghttp2_session_*_new2
 * copies it, and a table kept per thread would leak at thread exit). */
static nghttp2_session_callbacks *h2_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cbs, h2_send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, h2_on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, h2_on_invalid_frame);
    return cbs;
}

static int h2_init(struct ebb_conn *c)
{
    const struct ebb_config *cfg = c->w->srv->cfg;
    nghttp2_option *opt = NULL;
    struct h2c *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cbs = h2_callbacks();

    if (!h || !cbs || nghttp2_option_new(&opt) != 0)
        goto fail_alloc;
    h->c = c;
    ebb_list_init(&h->streams);
    ebb_list_init(&h->ready);
    h->kick.cb = h2_kick;
    h->kick.data = h;
    h->drain_timer.cb = h2_drain_timeout;
    h->drain_timer.data = h;
    h->idle_timer.cb = h2_idle_timeout;
    h->idle_timer.data = h;
    uint32_t maxs = cfg->limits.h2_max_concurrent_streams ? cfg->limits.h2_max_concurrent_streams
                                                          : 100;
    /* nghttp2's own limit: excess streams up to it are refused by ebb, a
     * client that goes further still gets nghttp2's connection error */
    uint32_t ng_maxs = (uint32_t)EBB_MIN((uint64_t)maxs + EBB_MAX(maxs, 100u), 0x7fffffffu);
    h->max_streams = maxs;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    /* streams closed but remembered for the state machine (RFC 9113 §5.1) */
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    int rv = nghttp2_session_server_new2(&h->ng, cbs, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    opt = NULL;
    cbs = NULL;
    if (rv != 0)
        goto fail_alloc;
    c->codec = h;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, ng_maxs },   /* sent as maxs */
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->limits.h1.max_head },
        { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096 },
    };
    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, EBB_ARRAY_LEN(iv));
    /* connection window: every stream can fill its own window at once */
    nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)EBB_MIN((uint64_t)maxs * H2_STREAM_WINDOW,
                                                           (uint64_t)1 << 30));
    if (c->l->draining || (c->flags & EBB_CONN_F_DRAINING))
        h2_drain_notice(h);
    ebb_timer_start(c->w->loop, &h->idle_timer, cfg->limits.idle_timeout_ms);
    ebb_conn_want(c, EBB_READ);
    return 0;

fail_alloc:
    if (opt)
        nghttp2_option_del(opt);
    if (cbs)
        nghttp2_session_callbacks_del(cbs);
    free(h);
    return EBB_ENOMEM;
}

static void h2_free(void *p)
{
    struct h2c *h = p;
    nghttp2_session_del(h->ng);
    free(h);
}

static void h2_destroy(struct ebb_conn *c)
{
    struct h2c *h = c->codec;
    struct ebb_list *pos, *tmp;

    ebb_list_for_each_safe(pos, tmp, &h->streams) {
        struct h2s *s = ebb_list_entry(pos, struct h2s, link);
        if (s->state != H2S_CLOSED && !(s->resp_done && ebb_buf_len(&s->respb) == 0))
            s->rf |= (c->flags & EBB_CONN_F_FORCED) ? EBB_RF_DR : EBB_RF_DC;
        h2s_finish(s, NGHTTP2_CANCEL);
    }
    h->dead = true;
    ebb_timer_stop(c->w->loop, &h->kick);
    ebb_timer_stop(c->w->loop, &h->drain_timer);
    ebb_timer_stop(c->w->loop, &h->idle_timer);
    c->codec = NULL;
    if (ebb_loop_defer(c->w->loop, h2_free, h) < 0)
        EBB_BUG_ON(1);
}

void ebb_h2_takeover(struct ebb_conn *c)
{
    c->ops = &ebb_h2_codec;
    if (h2_init(c) < 0) {
        ebb_conn_close(c, false);
        return;
    }
    struct h2c *h = c->codec;
    ebb_debug("h2", "#%llu h2c by prior knowledge", (unsigned long long)c->id);
    if (h2_recv(h) < 0)
        return;
    h2_run(h);
}

const struct ebb_codec_ops ebb_h2_codec = {
    .name = "h2",
    .init = h2_init,
    .on_io = h2_on_io,
    .drain = h2_drain,
    .destroy = h2_destroy,
};

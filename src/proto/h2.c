/*
 * h2.c - the HTTP/2 (h2c) downstream codec.
 *
 * One nghttp2 server session per connection and one struct h2s per stream.
 * A stream's upstream side is an exchange of either upstream codec behind
 * ustream.h (HTTP/1.1: h1_client.c, with connections shared in a bounded
 * set; h2c: h2_upstream.c); the request head is rewritten by exchange.c.
 *
 * Back-pressure: automatic WINDOW_UPDATE is off.  Request body bytes are
 * held in the stream's bounded reqb until they are written upstream; only
 * then are they returned to the client's window (nghttp2_session_consume).
 * Response bytes wait in the bounded respb until the client's window lets
 * the deferred data provider send them; while respb is full the upstream
 * exchange is not read from.  No body is ever buffered
 * whole.
 *
 * nghttp2 callbacks only record state and submit frames; I/O and
 * nghttp2_session_send happen in h2_run(), which event handlers call last.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/core.h"
#include "ebb/h2.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/stats.h"
#include "ebb/stream.h"
#include "ebb/ustream.h"
#include "ebb/wctx.h"

#define H2_STREAM_WINDOW   65535u        /* per-stream receive window (default size) */
#define H2_BODY_BUF        (64 * 1024)   /* ceiling of reqb / respb */
#define H2_PING_DRAIN      "ebbdrain"    /* opaque data of the drain PING */
#define H2_RESET_WINDOW_MS 10000         /* rapid-reset accounting window */
#define H2_DRAIN_RETRY_MS  100           /* a drain GOAWAY that could not be queued, again */

enum h2s_state {
    H2S_HEADERS = 0,  /* receiving the request head */
    H2S_UPSTREAM,     /* proxying to the upstream */
    H2S_REPLY,        /* a local answer was submitted */
    H2S_CLOSED,       /* nghttp2 closed the stream; free pending */
};

enum h2_drain {
    H2_DRAIN_NONE = 0,  /* not draining */
    H2_DRAIN_PENDING,   /* accepted while draining: the GOAWAY waits for the first request */
    H2_DRAIN_NOTICE,    /* GOAWAY(2^31-1) + PING sent, waiting for the PING ack */
    H2_DRAIN_FINAL,     /* final GOAWAY sent: streams above it are refused */
};

struct h2_hdr {
    nghttp2_rcbuf *name;
    nghttp2_rcbuf *value;
};

struct h2c;

/* One request/response.  Owned by its connection's codec; holds at most
 * one upstream exchange (ustream.h). */
struct h2s {
    struct h2c        *h;
    int32_t            id;
    struct ebb_list    link;          /* in h->streams */
    struct ebb_list    rlink;         /* in h->ready while it has something to do */
    enum h2s_state     state;
    struct ebb_xch     e;             /* the exchange: record, upstream side, request timeout */
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
    /* response */
    bool               resp_head_done;/* response HEADERS submitted */
    bool               resp_done;     /* the whole body is in respb (or sent) */
    bool               up_end;        /* the upstream's response ended (bytes may still wait there) */
    bool               deferred;      /* data provider returned DEFERRED */
    bool               head_req;
    struct ebb_buf     respb;         /* body bytes waiting for the client's window */
    struct ebb_buf     trl;           /* response trailers: raw h1 field lines */
    struct ebb_timer   stall;         /* waiting on the client (h2s_waits_on_client) */
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
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
    bool               broken;        /* a frame that had to go could not be queued (no
                                       * memory): h2_run resets the connection */
    uint32_t           max_streams;   /* limits.h2_max_concurrent_streams: more are refused */
    struct ebb_list    streams;       /* struct h2s.link */
    struct ebb_list    ready;         /* struct h2s.rlink: streams h2_run() must advance */
    uint32_t           nstreams;
    struct ebb_timer   kick;          /* zero-delay h2_run() when a run's guard ran out */
    struct ebb_deferred kick_dfr;     /* h2_run() after this iteration's events (wake-ups
                                       * from outside: h2s_wake_async) */
    bool               kick_queued;   /* ... kick_dfr is queued */
    enum h2_drain      drain;
    struct ebb_timer   drain_timer;   /* PING ack deadline (drain_timeout); in PENDING, the
                                       * wait for a first request */
    struct ebb_timer   idle_timer;    /* no stream for idle_timeout */
    struct ebb_h2_rate resets;        /* streams reset by the client before their response ended */
    int32_t            max_sid;       /* highest stream id a client HEADERS frame used */
    int32_t            reset_sids[16];/* the last streams ebb reset (ring; RFC 9113 §5.4.2) */
    uint32_t           reset_next;
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

static void h2_run(struct h2c *h);
static void h2s_stall_timeout(struct ebb_loop *loop, struct ebb_timer *t);

static const struct ebb_config *h2_cfg(const struct h2c *h) { return h->c->w->cfg; }
static struct ebb_listener_stats *h2_st(const struct h2c *h) { return h->c->l->st; }
static struct ebb_server_stats *h2_sst(const struct h2c *h) { return &h->c->w->stats->server; }

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

static void h2_kick_deferred(void *p)
{
    struct h2c *h = p;
    h->kick_queued = false;
    h2_run(h);   /* a no-op once dead: the free is queued after this call */
}

/* h2s_wake() from outside the connection's own handlers: also schedules
 * h2_run() after the current iteration's events, in this same iteration (a
 * zero-delay timer could wait for the next one: the timer clock has 1 ms
 * steps), so an answer goes out as soon as the epoll batch is handled. */
static void h2s_wake_async(struct h2s *s)
{
    struct h2c *h = s->h;
    h2s_wake(s);
    if (!h->dead && !h->in_run && !h->kick_queued) {
        h->kick_queued = true;
        ebb_loop_defer(h->c->w->loop, &h->kick_dfr, h2_kick_deferred, h);
    }
}

/* nghttp2_session_consume (id 0: the connection's window only).  When the WINDOW_UPDATE cannot
 * be queued (no memory) the peer's window could stay shut for good: the connection is reset. */
static void h2_consume(struct h2c *h, int32_t id, size_t n)
{
    int rv = id ? nghttp2_session_consume(h->ng, id, n)
                : nghttp2_session_consume_connection(h->ng, n);
    if (rv == NGHTTP2_ERR_NOMEM)
        h->broken = true;
}

/* Resets s with INTERNAL_ERROR after a failed allocation (counted).  When even that cannot be
 * queued, the connection is reset by the next h2_run: a stream nobody answers would hang. */
static void h2s_fail_resource(struct h2s *s)
{
    struct h2c *h = s->h;
    ebb_stat_inc(h2_sst(h)->xch_failed_resource);
    if (nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR) != 0)
        h->broken = true;
}

static void h2s_release_upstream(struct h2s *s)
{
    ebb_xch_release(&s->e);
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
    ebb_xrec_free(&s->e.x);   /* its upstream side went at h2s_finish */
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
            s->e.x.rf |= EBB_RF_DC;
        if (h->c->flags & EBB_CONN_F_DRAINING) {
            s->e.x.rf |= EBB_RF_DR;
            ebb_stat_inc(h2_st(h)->rq_completed_in_drain);
        }
        ebb_xch_end(&s->e, "HTTP/2");
    }
    h2s_release_upstream(s);
    ebb_timer_stop(h->c->w->loop, &s->stall);
    /* body bytes we never consumed still count against the connection window */
    if (ebb_buf_len(&s->reqb) && !h->dead)
        h2_consume(h, 0, ebb_buf_len(&s->reqb));
    ebb_buf_reset(&s->reqb);
    s->state = H2S_CLOSED;
    ebb_list_del(&s->rlink);
    ebb_list_del(&s->link);
    h->nstreams--;
    ebb_stat_dec(h2_sst(h)->h2_streams_active);
    if (h->nstreams == 0 && !h->dead)
        ebb_timer_start(h->c->w->loop, &h->idle_timer, h2_cfg(h)->limits.idle_timeout_ms);
    ebb_loop_defer(h->c->w->loop, &s->dfr, h2s_free_cb, s);
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
        s->e.x.resp_bytes += n;
        ebb_timer_stop(s->h->c->w->loop, &s->stall);   /* the client reads: start over */
        h2s_wake(s);   /* respb has room: the upstream may be read again */
    }
    if (ebb_buf_len(&s->respb) == 0 && s->resp_done) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (ebb_buf_len(&s->trl)) {
            nghttp2_nv nv[128];
            int k = ebb_h2_split_trailers(ebb_buf_start(&s->trl), ebb_buf_len(&s->trl), nv,
                                          EBB_ARRAY_LEN(nv));
            if (k > 0 && nghttp2_submit_trailer(ng, id, nv, (size_t)k) != 0) {
                /* an end without the trailers (grpc-status) would look complete: reset */
                ebb_stat_inc(h2_sst(s->h)->xch_failed_resource);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* RST_STREAM INTERNAL_ERROR */
            }
            if (k > 0)
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
        if (nghttp2_session_resume_data(s->h->ng, s->id) == NGHTTP2_ERR_NOMEM)
            h2s_fail_resource(s);   /* the body would never be sent */
    }
}

/* Submits the response HEADERS; with_body attaches the data provider. */
static int h2s_submit_head(struct h2s *s, const nghttp2_nv *nv, size_t n, bool with_body)
{
    nghttp2_data_provider dp = { .source.ptr = s, .read_callback = h2s_read_cb };
    s->resp_head_done = true;
    int rv = nghttp2_submit_response(s->h->ng, s->id, nv, n, with_body ? &dp : NULL);
    if (rv != 0)
        h2s_fail_resource(s);
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

    s->e.x.rf |= rf;
    h2s_release_upstream(s);
    h2s_wake(s);
    if (s->resp_head_done) {
        ebb_stat_inc(h2_st(h)->rq_tx_reset);   /* http2.tx_reset: h2_on_frame_send, as sent */
        if (nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR) != 0)
            h->broken = true;   /* the stream must end: the connection is reset */
        return;
    }
    va_start(ap, fmt);
    int len = (int)ebb_xch_format(body, sizeof(body), fmt, ap);
    va_end(ap);
    s->state = H2S_REPLY;
    s->req_discard = true;
    ebb_buf_reset(&s->respb);
    ebb_buf_reset(&s->trl);
    if (!s->head_req && ebb_buf_append(&s->respb, body, (size_t)len) != 0) {
        s->resp_head_done = true;
        h2s_fail_resource(s);   /* a head promising a body we do not have would hang */
        return;
    }
    s->resp_done = true;
    ebb_xrec_status(&s->e.x, h2_st(s->h), status);
    snprintf(st, sizeof(st), "%d", status);
    snprintf(cl, sizeof(cl), "%d", len);
    nghttp2_nv nv[] = {
        { (uint8_t *)":status", (uint8_t *)st, 7, strlen(st), NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"content-type", (uint8_t *)"text/plain", 12, 10, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"content-length", (uint8_t *)cl, 14, strlen(cl), NGHTTP2_NV_FLAG_NONE },
    };
    h2s_submit_head(s, nv, EBB_ARRAY_LEN(nv), !s->head_req);
}

/* Gives the exchange's local answer (a refusal before the upstream, or an upstream failure). */
static void h2s_answer(struct h2s *s, const struct ebb_answer *a)
{
    h2s_reply(s, a->status, a->rf, "%s", a->body);
}

/* The response head from the upstream (either protocol) -> HEADERS. */
static void h2s_resp_head(struct h2s *s, const struct ebb_resp *r)
{
    struct ebb_nvlist nvl;

    ebb_xrec_status(&s->e.x, h2_st(s->h), r->status);
    if (!r->body || s->head_req)
        s->resp_done = true;   /* HEADERS ends the stream */
    if (ebb_resp_to_nv(r, &nvl) < 0) {
        h2s_reply(s, 502, EBB_RF_UC, "ebb: out of memory\n");
        return;
    }
    h2s_submit_head(s, nvl.nv, nvl.n, !s->resp_done);   /* copies nv */
    ebb_nvlist_free(&nvl);
}

/* --- the request as it goes upstream --- */

static bool hdr_is(const struct h2_hdr *hd, const char *lit) { return rc_is(hd->name, lit); }

/* The request head in the exchange's terms (valid while s is).  HTTP/2 has no
 * connection-specific fields but TE, which the rewrite drops. */
static void h2s_req_of(const struct h2s *s, struct ebb_req *r)
{
    static __thread struct ebb_hdr hdrs[EBB_XCH_MAX_FIELDS];
    size_t end = s->ntrl_at ? s->ntrl_at : s->nhdrs, n = 0;
    struct ebb_str auth = { rc_ptr(s->authority), rc_len(s->authority) };
    bool te = false;

    for (size_t i = 0; i < end && n < EBB_ARRAY_LEN(hdrs); i++) {
        const struct h2_hdr *hd = &s->hdrs[i];
        if (hdr_is(hd, "te"))
            te = rc_is(hd->value, "trailers");
        else if (!s->authority && hdr_is(hd, "host"))
            auth = (struct ebb_str){ rc_ptr(hd->value), rc_len(hd->value) };
        hdrs[n++] = (struct ebb_hdr){ { rc_ptr(hd->name), rc_len(hd->name) },
                                      { rc_ptr(hd->value), rc_len(hd->value) } };
    }
    *r = (struct ebb_req){
        .method = { rc_ptr(s->method), rc_len(s->method) },
        .path = { rc_ptr(s->path), rc_len(s->path) },
        .authority = auth,
        .scheme = { rc_ptr(s->scheme), rc_len(s->scheme) },
        .hdrs = hdrs,
        .nhdrs = n,
        .content_length = s->content_length,
        .body = !s->req_end || s->e.x.req_bytes > 0,
        .te_trailers = te,
        .join_cookies = true,
    };
}

/* --- starting a stream's exchange --- */

/* The request head is complete: check it and start the exchange. */
static void h2s_start(struct h2s *s)
{
    struct h2c *h = s->h;
    struct ebb_answer a;
    struct ebb_req req;

    s->state = H2S_UPSTREAM;
    ebb_xch_begin(&s->e, (struct ebb_str){ rc_ptr(s->method), rc_len(s->method) },
                  (struct ebb_str){ rc_ptr(s->path), rc_len(s->path) },
                  (struct ebb_str){ rc_ptr(s->authority), rc_len(s->authority) });
    s->head_req = rc_is(s->method, "HEAD");
    if (s->too_big) {
        ebb_stat_inc(h2_sst(h)->h2_header_overflow);
        h2s_reply(s, 431, 0, "ebb: request headers too large\n");
        return;
    }
    h2s_req_of(s, &req);
    if (req.authority.len == 0) {
        h2s_reply(s, 400, 0, "ebb: missing :authority\n");
        return;
    }
    if (ebb_xch_start(&s->e, &req, EBB_US_F_SHARED | EBB_US_F_H2, &a) < 0) {
        h2s_answer(s, &a);
        return;
    }
    if (!req.body) {
        s->req_fwd_end = true;
        ebb_xch_request_done(&s->e);
    }
}

/* --- the upstream's callbacks (they run inside the upstream's events: the
 * downstream connection runs once after the epoll batch, h2s_wake_async) --- */

static void h2s_us_head(void *owner, const struct ebb_resp *r)
{
    struct h2s *s = owner;
    h2s_wake(s);
    h2s_resp_head(s, r);
    h2s_wake_async(s);
}

static void h2s_us_data(void *owner) { h2s_wake_async(owner); }
static void h2s_us_writable(void *owner) { h2s_wake_async(owner); }

static void h2s_us_trailers(void *owner, const struct ebb_hdr *t, size_t n)
{
    struct h2s *s = owner;
    if (ebb_trailers_keep(&s->trl, t, n) != 0) {
        /* an end without them (grpc-status) would look complete: reset instead */
        h2s_release_upstream(s);
        h2s_fail_resource(s);
        h2s_wake_async(s);
    }
}

static void h2s_us_end(void *owner)
{
    struct h2s *s = owner;
    s->up_end = true;
    h2s_wake_async(s);
}

/* Interim responses (100 Continue) are not forwarded to an HTTP/2 client. */
static void h2s_us_interim(void *owner, const struct ebb_resp *r) { }

static void h2s_us_error(void *owner, unsigned rf, bool head_seen, int status)
{
    struct h2s *s = owner;
    struct ebb_answer a;

    if (head_seen || s->resp_head_done) {
        h2s_reply(s, 0, rf | EBB_RF_URX, "-");   /* resets the stream */
    } else {
        ebb_xch_failure(&s->e, rf, status, &a);
        h2s_answer(s, &a);
    }
    h2s_wake_async(s);
}

static const struct ebb_us_cbs h2s_us_cbs = {
    .on_interim = h2s_us_interim,
    .on_head = h2s_us_head,
    .on_data = h2s_us_data,
    .on_trailers = h2s_us_trailers,
    .on_end = h2s_us_end,
    .on_writable = h2s_us_writable,
    .on_error = h2s_us_error,
};

/* Advances one stream's exchange.  Returns true on progress. */
static bool h2s_pump(struct h2s *s)
{
    bool progress = false;

    while (ebb_buf_len(&s->reqb)) {
        size_t n = ebb_us_write(s->e.us, ebb_buf_start(&s->reqb), ebb_buf_len(&s->reqb));
        if (n == 0)
            break;
        ebb_buf_consume(&s->reqb, n);
        h2_consume(s->h, s->id, n);
        progress = true;
    }
    if (s->req_end && !s->req_fwd_end && ebb_buf_len(&s->reqb) == 0) {
        struct ebb_hdr t[128];
        size_t tn = 0;
        for (size_t i = s->ntrl_at; s->ntrl_at && i < s->nhdrs && tn < EBB_ARRAY_LEN(t); i++)
            t[tn++] = (struct ebb_hdr){ { rc_ptr(s->hdrs[i].name), rc_len(s->hdrs[i].name) },
                                        { rc_ptr(s->hdrs[i].value), rc_len(s->hdrs[i].value) } };
        ebb_us_end(s->e.us, t, tn);
        s->req_fwd_end = true;
        ebb_xch_request_done(&s->e);
        progress = true;
    }
    if (s->resp_head_done && !s->head_req) {
        while (ebb_us_readable(s->e.us) && ebb_buf_room(&s->respb) > 0) {
            /* no more than what waits: a small answer costs a small buffer */
            size_t want = EBB_MIN(ebb_buf_room(&s->respb), ebb_us_readable(s->e.us));
            if (ebb_buf_reserve(&s->respb, EBB_MIN(want, 16384)) < 0) {
                /* want fits: storage is missing, and the bytes waiting upstream would not
                 * wake the stream again */
                h2s_release_upstream(s);
                h2s_fail_resource(s);
                return true;
            }
            size_t room = EBB_MIN(ebb_buf_tailroom(&s->respb), ebb_buf_room(&s->respb));
            size_t n = ebb_us_read(s->e.us, ebb_buf_end(&s->respb), room);
            if (n == 0)
                break;
            s->respb.tail += n;
            progress = true;
        }
    }
    if (!s->up_end && ebb_us_done(s->e.us))
        s->up_end = true;   /* our read took the end: no on_end comes */
    if (s->up_end && ebb_us_readable(s->e.us) == 0)
        s->resp_done = true;
    h2s_resume(s);
    if (s->resp_done && ebb_us_readable(s->e.us) == 0) {
        if (!s->req_fwd_end)
            s->req_discard = true;
        h2s_release_upstream(s);
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
    if (n == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (ebb_buf_append(b, data, n) < 0) {
        /* no storage for the frames: waiting would wait for nothing, the connection fails */
        ebb_stat_inc(h2_sst(h)->xch_failed_resource);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
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
        if (nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                      NGHTTP2_REFUSED_STREAM) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* nghttp2 resets it itself */
        return 0;
    }
    struct h2s *s = malloc(sizeof(*s));   /* not calloc: glibc's calloc skips its per-thread cache */
    if (!s) {
        ebb_stat_inc(h2_sst(h)->xch_failed_resource);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* RST_STREAM INTERNAL_ERROR */
    }
    *s = (struct h2s){ .h = h, .id = f->hd.stream_id };
    ebb_xch_init(&s->e, h->c, &h2s_us_cbs, s);
    s->content_length = -1;
    ebb_timer_init(&s->stall, h2s_stall_timeout, s);
    s->reqb.max = H2_BODY_BUF + 16384;
    s->respb.max = H2_BODY_BUF;
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
        h2_consume(h, id, len);
        return 0;
    }
    s->e.x.req_bytes += len;
    ebb_timer_stop(h->c->w->loop, &s->stall);   /* the client sends: start over */
    h2s_wake(s);
    uint64_t maxb = h2_cfg(h)->limits.max_request_body;
    if (maxb && s->e.x.req_bytes > maxb) {
        h2_consume(h, id, len);
        h2s_reply(s, 413, 0, "ebb: request body larger than %llu bytes\n", (unsigned long long)maxb);
        return 0;
    }
    int rc = ebb_buf_append(&s->reqb, data, len);
    if (rc == EBB_ENOMEM) {
        /* the body bytes cannot be kept: this exchange fails (503, or a reset) */
        h2_consume(h, id, len);
        ebb_stat_inc(h2_sst(h)->xch_failed_resource);
        h2s_reply(s, 503, 0, "ebb: out of memory\n");
    } else if (rc < 0) {
        /* more than the window we granted: the peer broke flow control */
        h2_consume(h, id, len);
        if (nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static void h2_drain_final(struct h2c *h);
static void h2_drain_notice(struct h2c *h);

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
            if (h->drain == H2_DRAIN_PENDING)
                h2_drain_notice(h);   /* after the stream: it is below any last-stream id */
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
                if (nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM) != 0)
                    h->broken = true;
            }
        }
        break;
    case NGHTTP2_PING:
        /* nghttp2 answers a PING itself; counted so keepalives are visible (gRPC clients) */
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            ebb_stat_inc(h2_sst(h)->h2_ping_rx);
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
        h->reset_sids[h->reset_next++ % EBB_ARRAY_LEN(h->reset_sids)] = f->hd.stream_id;
    }
    return 0;
}

static bool h2_reset_by_us(const struct h2c *h, int32_t sid)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(h->reset_sids); i++) {
        if (h->reset_sids[i] == sid)
            return true;
    }
    return false;
}

/* RFC 9113 §5.1.1: a client's new stream must have an id larger than every earlier one.
 * nghttp2 drops a HEADERS frame on a lower id it has no open stream for without telling the
 * application (it cannot tell a stream that never opened from one it forgot), so ebb checks:
 * trailers on an open stream are fine, a stream ebb reset may still get the client's late
 * frames (ignored, §5.4.2); anything else ends the connection with PROTOCOL_ERROR. */
static int h2_on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    struct h2c *h = ud;

    if (hd->type != NGHTTP2_HEADERS || hd->stream_id <= 0 || !(hd->stream_id & 1))
        return 0;
    if (hd->stream_id > h->max_sid) {
        h->max_sid = hd->stream_id;
        return 0;
    }
    nghttp2_stream *st = nghttp2_session_find_stream(ng, hd->stream_id);
    if ((st && nghttp2_stream_get_state(st) != NGHTTP2_STREAM_STATE_CLOSED) ||
        h2_reset_by_us(h, hd->stream_id))
        return 0;
    ebb_stat_inc(h2_sst(h)->h2_rx_messaging_error);
    ebb_debug("h2", "#%llu HEADERS on stream %d after stream %d: PROTOCOL_ERROR",
              (unsigned long long)h->c->id, hd->stream_id, h->max_sid);
    if (nghttp2_session_terminate_session(ng, NGHTTP2_PROTOCOL_ERROR) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
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
    if (nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0) != 0) {
        h->drain = H2_DRAIN_NOTICE;   /* no memory now: the drain timer tries again */
        ebb_timer_start(h->c->w->loop, &h->drain_timer, H2_DRAIN_RETRY_MS);
        return;
    }
    ebb_debug("h2", "#%llu drain: final GOAWAY, last stream %d, %u in flight",
              (unsigned long long)h->c->id, last, h->nstreams);
}

static void h2_drain_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h2c *h = t->data;
    if (h->drain == H2_DRAIN_PENDING)
        h2_drain_notice(h);   /* no request came: the connection is drained like an idle one */
    else
        h2_drain_final(h);
    h2_run(h);
}

static void h2_drain_notice(struct h2c *h)
{
    if (h->drain != H2_DRAIN_NONE && h->drain != H2_DRAIN_PENDING)
        return;
    h->drain = H2_DRAIN_NOTICE;
    h->c->flags |= EBB_CONN_F_DRAINING;
    if (nghttp2_submit_shutdown_notice(h->ng) != 0 ||   /* GOAWAY 2^31-1, NO_ERROR */
        nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, (const uint8_t *)H2_PING_DRAIN) != 0) {
        h->drain = H2_DRAIN_PENDING;   /* no memory now: the drain timer tries again */
        ebb_timer_start(h->c->w->loop, &h->drain_timer, H2_DRAIN_RETRY_MS);
        return;
    }
    ebb_timer_start(h->c->w->loop, &h->drain_timer, h2_cfg(h)->drain.drain_timeout_ms);
}

/* A connection accepted while draining is served its first request before the GOAWAY, as an
 * HTTP/1.1 one is answered with Connection: close.  A GOAWAY sent with our first SETTINGS
 * reaches a client that waits for them before its first stream (gRPC does) ahead of that
 * stream, and the client fails the call ("GOAWAY received") instead of sending it: every call
 * a gRPC channel made on a new connection during the drain failed this way.  No request within
 * drain_timeout: the notice goes anyway. */
static void h2_drain_pending(struct h2c *h)
{
    h->drain = H2_DRAIN_PENDING;
    h->c->flags |= EBB_CONN_F_DRAINING;
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
    if (nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR) != 0) {
        ebb_conn_close(h->c, false);   /* idle: nothing is cut */
        return;
    }
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

static uint64_t h2s_stall_ms(const struct h2c *h)
{
    return EBB_MIN(h2_cfg(h)->limits.idle_timeout_ms, EBB_CLIENT_STALL_MS);
}

/* The exchange waits on the client: response bytes its window holds back, or (towards an
 * HTTP/1.1 upstream, whose connection the stream holds) a request body it does not send.
 * A quiet request towards an h2c upstream is left alone: a gRPC client or bidi stream may
 * send nothing for minutes, and costs the upstream one stream of a shared connection. */
static bool h2s_waits_on_client(const struct h2s *s)
{
    if (s->state != H2S_UPSTREAM && s->state != H2S_REPLY)
        return false;
    if (ebb_buf_len(&s->respb))
        return true;
    return s->state == H2S_UPSTREAM && s->e.us && !s->req_end && !s->req_discard &&
           ebb_buf_len(&s->reqb) == 0 && s->e.us->ops->holds_connection;
}

/* min(idle_timeout, 60 s) without the client sending or reading on the stream: 408 while
 * its request body is missing, else a reset (RST_STREAM), as HTTP/1.1's stall timer does. */
static void h2s_stall_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h2s *s = t->data;
    struct h2c *h = s->h;

    if (h->dead || !h2s_waits_on_client(s))
        return;
    ebb_stat_inc(h2_st(h)->rq_timeout);
    if (!s->resp_head_done && !s->req_end) {
        ebb_debug("h2", "#%llu stream %d: request body stalled", (unsigned long long)h->c->id,
                  s->id);
        h2s_reply(s, 408, EBB_RF_DC, "ebb: request body not received within %llu ms\n",
                  (unsigned long long)h2s_stall_ms(h));
    } else {
        ebb_debug("h2", "#%llu stream %d: the client stopped reading the response",
                  (unsigned long long)h->c->id, s->id);
        h2s_reply(s, 0, EBB_RF_DC, "-");   /* after the head: RST_STREAM */
    }
    h2_run(h);
}

/* One step of one stream.  Returns true on progress. */
static bool h2s_advance(struct h2s *s)
{
    bool progress = false;

    if (s->state == H2S_UPSTREAM && s->e.us) {
        progress = h2s_pump(s);
    } else if (s->req_discard && ebb_buf_len(&s->reqb)) {
        h2_consume(s->h, s->id, ebb_buf_len(&s->reqb));
        ebb_buf_reset(&s->reqb);
    }
    if (s->state != H2S_CLOSED) {
        h2s_resume(s);
        if (!h2s_waits_on_client(s))
            ebb_timer_stop(s->h->c->w->loop, &s->stall);
        else if (!ebb_timer_active(&s->stall))
            ebb_timer_start(s->h->c->w->loop, &s->stall, h2s_stall_ms(s->h));
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
        if (h->broken) {
            ebb_stat_inc(h2_sst(h)->xch_failed_resource);
            ebb_conn_close(c, true);
            return;   /* destroy ran: h is dead */
        }
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
            if (rv == NGHTTP2_ERR_NOMEM)
                ebb_stat_inc(h2_sst(h)->xch_failed_resource);   /* (h2_send_cb counts its own) */
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
    if (!h->dead && h->broken) {
        ebb_stat_inc(h2_sst(h)->xch_failed_resource);
        ebb_conn_close(c, true);
        return;
    }
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
        ebb_buf_reset(&c->rbuf);
        if (n == NGHTTP2_ERR_NOMEM || n == NGHTTP2_ERR_CALLBACK_FAILURE) {
            /* not the client's fault: the session is unusable (NOMEM is fatal to it) */
            ebb_stat_inc(h2_sst(h)->xch_failed_resource);
            ebb_conn_close(c, true);
            return -1;
        }
        ebb_stat_inc(h2_st(h)->cx_protocol_error);
        ebb_debug("h2", "#%llu from %s: %s", (unsigned long long)c->id, c->peer_str,
                  nghttp2_strerror((int)n));
        if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
            ebb_conn_close(c, false);
            return -1;
        }
        /* nghttp2 queued a GOAWAY for most errors: send it, then close */
        if (nghttp2_session_terminate_session(h->ng, NGHTTP2_PROTOCOL_ERROR) != 0)
            h->broken = true;
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
                /* a short read drained the socket: skip the read that would say EAGAIN */
                bool drained = ebb_buf_tailroom(&c->rbuf) && ebb_buf_room(&c->rbuf);
                if (h2_recv(h) < 0)
                    return;
                if (drained)
                    break;
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
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, h2_on_begin_frame);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, h2_on_invalid_frame);
    return cbs;
}

static int h2_init(struct ebb_conn *c)
{
    const struct ebb_config *cfg = c->w->cfg;
    nghttp2_option *opt = NULL;
    struct h2c *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cbs = h2_callbacks();

    if (!h || !cbs || nghttp2_option_new(&opt) != 0)
        goto fail_alloc;
    h->c = c;
    ebb_list_init(&h->streams);
    ebb_list_init(&h->ready);
    ebb_timer_init(&h->kick, h2_kick, h);
    ebb_timer_init(&h->drain_timer, h2_drain_timeout, h);
    ebb_timer_init(&h->idle_timer, h2_idle_timeout, h);
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
    /* connection window: every stream can fill its own window at once */
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, EBB_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)EBB_MIN((uint64_t)maxs * H2_STREAM_WINDOW,
                                                               (uint64_t)1 << 30)) != 0) {
        c->codec = NULL;
        nghttp2_session_del(h->ng);
        goto fail_alloc;
    }
    if (c->l->draining || (c->flags & EBB_CONN_F_DRAINING))
        h2_drain_pending(h);
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
            s->e.x.rf |= (c->flags & EBB_CONN_F_FORCED) ? EBB_RF_DR : EBB_RF_DC;
        h2s_finish(s, NGHTTP2_CANCEL);
    }
    h->dead = true;
    ebb_timer_stop(c->w->loop, &h->kick);
    ebb_timer_stop(c->w->loop, &h->drain_timer);
    ebb_timer_stop(c->w->loop, &h->idle_timer);
    c->codec = NULL;
    ebb_loop_defer(c->w->loop, &h->dfr, h2_free, h);
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

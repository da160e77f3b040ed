/*
 * h1_client.c - the HTTP/1.1 upstream codec: one exchange on a connection
 * lent by the cluster's pool, behind the ops of ustream.h (ebb_h1u_open).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ebb/buf.h"
#include "ebb/core.h"
#include "ebb/exchange.h"
#include "ebb/h2.h"
#include "ebb/http.h"
#include "ebb/log.h"
#include "ebb/proxy.h"
#include "ebb/cluster.h"
#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/listener.h"
#include "ebb/stats.h"
#include "ebb/wctx.h"
#include "ebb/upstream.h"
#include "ebb/ustream.h"

/* The response head of m in the exchange's terms (fields point into m; the
 * field array is per thread and valid until the next call). */
static void resp_of_h1(const struct ebb_h1_msg *m, struct ebb_resp *r)
{
    static __thread struct ebb_hdr hdrs[EBB_H1_MAX_HEADERS_CAP];
    /* the length of a body that follows is re-sent from content_length */
    size_t n = ebb_h1_fields(m, hdrs, m->framing == EBB_H1_BODY_NONE);

    *r = (struct ebb_resp){
        .status = m->status,
        .reason = { m->reason.p, m->reason.len },
        .hdrs = hdrs,
        .nhdrs = n,
        .content_length = m->framing == EBB_H1_BODY_LENGTH ? (int64_t)m->content_length : -1,
        .body = m->framing != EBB_H1_BODY_NONE &&
                !(m->framing == EBB_H1_BODY_LENGTH && m->content_length == 0),
    };
    if (m->status == 101) {
        const struct ebb_h1_header *up = ebb_h1_find(m, "upgrade");
        if (up)
            r->upgrade = (struct ebb_str){ up->value.p, up->value.len };
    }
}




/* True when a request that met a closed pooled connection may be sent again
 * on a fresh one: nothing of the answer came, the connection was reused, the
 * request had no body, it was not retried yet and its method is idempotent
 * (RFC 9110 §9.2.2, RFC 9112 §9.3.1: the upstream may have acted on a POST). */
static bool may_retry(const struct ebb_upconn *u, bool resp_started, bool has_body,
                       int retries, const char *method)
{
    return !resp_started && u->reused && !has_body && retries == 0 &&
           ebb_method_idempotent(method);
}

/* --- the HTTP/1.1 upstream codec (struct ebb_us behind h1u_ops) ---
 *
 * One request/response on a connection lent by the cluster's pool.  The
 * request head is written once (kept for one transparent retry), the body is
 * framed into the connection's write buffer as far as it has room, and the
 * response body stays in the connection's read buffer until the owner takes
 * it with ebb_us_read(), which decodes it straight into the owner's buffer;
 * while the read buffer is full the upstream is not read (back-pressure).
 * An identity body (content-length or close-delimited) goes further: once the
 * read buffer is empty, ebb_us_read() receives it from the socket straight into
 * the owner's buffer (h1u_read_direct), so it is copied once and a slow client
 * holds one buffer, its own, not two.
 * The connection goes back to the pool as soon as both messages are complete.
 *
 * Owners with EBB_US_F_SHARED (HTTP/2 streams: many exchanges per client
 * connection) share at most max(pool.max_idle, H1U_SHARED_MIN) connections
 * per cluster and worker: with keep-alive each is reused instead of one
 * connect per request once the streams outnumber the pool.  A stream that
 * finds them all lent waits in order for the next one given back.  When none
 * was given back for H1U_WAIT_MS (all held by long responses: long polls,
 * downloads), a stream that waited that long connects one more, up to
 * H1U_SHARED_MAX.  A wait during which connections kept coming back is only
 * a queue: on a busy machine a turn can take longer than H1U_WAIT_MS, and
 * adding connections then only churns them (connect, then close when the
 * pool is full). */

#define H1U_SHARED_MIN 16            /* floor of the shared connection bound */
#define H1U_SHARED_MAX 1024          /* hard cap, with streams that waited too long */
#define H1U_WAIT_MS    200           /* no connection given back this long: one more */
#define H1U_DIRECT_READ (64 * 1024)  /* a direct body read's size, as said to the owner */

struct h1u {
    struct ebb_us          base;
    struct ebb_cluster_rt *cl;
    struct ebb_wctx       *w;
    struct ebb_upconn     *u;           /* lent connection; NULL before, and after release */
    char                   addr[48];    /* endpoint of the last connection (for the log) */
    union ebb_sockaddr     dst;         /* original destination (ORIGINAL_DST cluster) */
    bool                   has_dst;     /* ... given: connections go there */
    struct ebb_list        wlink;       /* in cl->shared_waiting while waiting (shared mode) */
    struct ebb_timer       kick;        /* zero-delay run */
    struct ebb_timer       wait;        /* shared mode: waited long enough for a connection */
    uint64_t               wait_mark;   /* cl->shared_returned when the wait (re)started */
    size_t                 head_len;    /* head[]: the request head as sent (kept for one retry) */
    struct ebb_buf         tail;        /* request end: "0\r\n", trailers, "\r\n" (chunked) */
    char                   method[24];
    bool                   shared;      /* EBB_US_F_SHARED */
    bool                   counted;     /* u counts in cl->shared_busy */
    bool                   chunked;     /* request body sent chunked */
    bool                   has_body;    /* the request has a body */
    bool                   upgrade;     /* the request asks for an upgrade (101 expected) */
    bool                   head_queued; /* head written into u->wbuf */
    bool                   req_end;     /* the owner ended the request */
    bool                   req_sent;    /* ... and its end is in u->wbuf */
    bool                   was_full;    /* a write found no room: on_writable owed */
    bool                   resp_started;/* any response byte */
    bool                   head_seen;   /* on_head delivered */
    bool                   resp_done;   /* the body is decoded whole (read by the owner) */
    bool                   resp_bad;    /* the body's framing is malformed (reported by run) */
    bool                   sock_ready;  /* direct body: the socket said readable, not yet read dry */
    bool                   ended;       /* on_end (or on_error) delivered */
    bool                   keepalive;   /* the upstream allows reuse */
    int                    err;         /* pending failure to report: EBB_E* */
    int                    retries;
    enum ebb_h1_framing    resp_in;
    struct ebb_h1_body     rbody;
    struct ebb_buf         trl;         /* response trailers, raw field lines */
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
    char                   head[];      /* in the same allocation */
};

static __thread struct ebb_h1_msg h1u_msg;   /* scratch for response heads (large) */

static void h1u_run(struct h1u *s);
static void h1u_send(struct h1u *s);
static void h1u_set_interest(struct h1u *s);
static size_t h1u_writable(const struct ebb_us *us);
static void h1u_io(void *owner, struct ebb_upconn *u, uint32_t events);

/* The body is read from the socket into the owner's buffer: an identity body whose bytes
 * are not in the read buffer. */
static bool h1u_direct(const struct h1u *s)
{
    return s->u && s->head_seen && !s->resp_done && !s->resp_bad && !s->u->eof &&
           ebb_buf_len(&s->u->rbuf) == 0 &&
           (s->rbody.state == EBB_H1_BS_LENGTH || s->rbody.state == EBB_H1_BS_EOF);
}

static void h1u_kick(struct h1u *s)
{
    if (!ebb_timer_active(&s->kick))
        ebb_timer_start(s->w->loop, &s->kick, 0);
}

static void h1u_kick_cb(struct ebb_loop *loop, struct ebb_timer *t) { h1u_run(t->data); }

static uint32_t h1u_limit(const struct ebb_cluster_rt *cl)
{
    return EBB_MAX(cl->cfg->pool_max_idle, (uint32_t)H1U_SHARED_MIN);
}

static void h1u_waiting_init(struct ebb_cluster_rt *cl)
{
    if (!cl->shared_waiting.next)
        ebb_list_init(&cl->shared_waiting);
}

/* Gets s a connection (from the pool or a new connect).  Never calls back. */
static void h1u_acquire(struct h1u *s)
{
    ebb_list_del(&s->wlink);
    ebb_timer_stop(s->w->loop, &s->wait);
    int rc = ebb_upstream_acquire_to(s->cl, s->w, s->has_dst ? &s->dst : NULL, h1u_io, s,
                                     &s->u);
    if (rc != 0 && rc != EBB_EAGAIN) {
        s->u = NULL;
        s->err = rc;
        h1u_kick(s);   /* reported from the run: never a callback from here */
        return;
    }
    ebb_strcpy_trunc(s->addr, sizeof(s->addr), s->u->addr_str);
    if (s->shared) {
        s->counted = true;
        s->cl->shared_busy++;
    }
    if (rc == 0) {
        /* a pooled connection: the head goes out now (no callback involved).  An owner
         * whose body came while it waited was told "no room" and waits for on_writable:
         * the run owes it that (the head may leave at once, so no write event would) */
        h1u_send(s);
        if (s->err || s->was_full)
            h1u_kick(s);
        else
            h1u_set_interest(s);
    }
}

/* Lends connections given back to waiting shared streams, oldest first. */
static void h1u_grant(struct ebb_cluster_rt *cl)
{
    h1u_waiting_init(cl);
    while (!ebb_list_empty(&cl->shared_waiting) && cl->shared_busy < h1u_limit(cl))
        h1u_acquire(ebb_list_entry(cl->shared_waiting.next, struct h1u, wlink));
}

static void h1u_wait_cb(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h1u *s = t->data;
    if (s->cl->shared_busy >= H1U_SHARED_MAX || s->cl->shared_returned != s->wait_mark) {
        /* at the cap, or the queue moved: wait on */
        s->wait_mark = s->cl->shared_returned;
        ebb_timer_start(loop, &s->wait, H1U_WAIT_MS);
        return;
    }
    ebb_debug("h1u", "no connection to \"%s\" given back in %d ms: one more",
              s->cl->cfg->name, H1U_WAIT_MS);
    ebb_stat_inc(s->cl->st->cx_shared_waited);
    h1u_acquire(s);
}

/* Lets go of the connection: back to the pool when reusable, else closed. */
static void h1u_release(struct h1u *s, bool reusable)
{
    struct ebb_cluster_rt *cl = s->cl;
    if (!s->u)
        return;
    if (s->head_queued)
        ebb_stat_dec(cl->st->rq_active);
    ebb_upstream_release(s->u, reusable);
    s->u = NULL;
    if (s->counted) {
        s->counted = false;
        cl->shared_busy--;
        cl->shared_returned++;
        h1u_grant(cl);
    }
}

/* An allocation for the exchange failed: it fails (503, or a reset once the head went to the
 * client) from the next run, counted.  Never calls back. */
static void h1u_oom(struct h1u *s)
{
    if (s->err)
        return;
    s->err = EBB_ENOMEM;
    ebb_stat_inc(s->w->stats->server.xch_failed_resource);
    h1u_kick(s);
}

static void h1u_queue_head(struct h1u *s)
{
    struct ebb_upconn *u = s->u;
    int rc = ebb_buf_append(&u->wbuf, s->head, s->head_len);
    if (rc == EBB_ENOMEM) {
        h1u_oom(s);
        return;
    }
    if (rc < 0) {
        s->err = EBB_ETOOBIG;
        return;
    }
    s->head_queued = true;
    u->nrequests++;
    ebb_stat_inc(s->cl->st->rq_total);
    ebb_stat_inc(s->cl->st->rq_active);
}

static void h1u_close(struct ebb_us *us);

/* Reports the failure to the owner; the stream is gone with the callback.
 * Returns false (the owner let go), for the callers' convenience. */
static bool h1u_fail(struct h1u *s, unsigned rf, int status)
{
    void *owner = s->base.owner;
    s->ended = true;
    h1u_close(&s->base);
    s->base.cbs->on_error(owner, rf, s->head_seen, status);
    return false;
}

/* The connection closed or failed before the response was complete. */
static bool h1u_gone(struct h1u *s)
{
    struct ebb_upconn *u = s->u;
    if (may_retry(u, s->resp_started, s->has_body, s->retries, s->method)) {
        /* a pooled connection the upstream had closed: one fresh try */
        s->retries++;
        ebb_debug("h1u", "pooled connection to %s closed, retrying", u->addr_str);
        h1u_release(s, false);
        s->head_queued = false;
        h1u_acquire(s);
        return true;
    }
    ebb_stat_inc(s->cl->st->rq_reset);
    if (s->head_seen)
        ebb_info("h1u", "upstream %s reset after response headers", u->addr_str);
    return h1u_fail(s, EBB_RF_UC, 503);
}

/* Parses the response head(s) in u->rbuf.  Returns false when the owner let go. */
static bool h1u_head(struct h1u *s)
{
    struct ebb_upconn *u = s->u;
    struct ebb_h1_msg *m = &h1u_msg;
    const struct ebb_config *cfg = s->w->cfg;
    struct ebb_resp r;

    while (!s->head_seen && ebb_buf_len(&u->rbuf)) {
        s->resp_started = true;
        int rc = ebb_h1_parse_response(ebb_buf_start(&u->rbuf), ebb_buf_len(&u->rbuf),
                                       &cfg->limits.h1, s->method, strlen(s->method), m);
        if (rc == EBB_H1_AGAIN)
            return true;
        if (rc < 0 || (m->status == 101 && !s->upgrade))
            return h1u_fail(s, EBB_RF_UC, 502);
        resp_of_h1(m, &r);
        if (m->status < 200 && m->status != 101) {
            ebb_buf_consume(&u->rbuf, (size_t)rc);
            s->base.cbs->on_interim(s->base.owner, &r);   /* 100 Continue and others */
            if (!s->base.owner)
                return false;
            continue;
        }
        s->head_seen = true;
        s->resp_in = m->framing;
        s->keepalive = !(m->flags & EBB_H1_F_CONN_CLOSE);
        ebb_h1_body_init(&s->rbody, m);
        s->resp_done = !r.body || m->status == 101;
        /* consumed first: the owner reads the body (or, after a 101, starts its tunnel)
         * inside on_head; r still points at the bytes, which nothing overwrites before
         * the next socket read */
        ebb_buf_consume(&u->rbuf, (size_t)rc);
        s->base.cbs->on_head(s->base.owner, &r);
        return s->base.owner != NULL;
    }
    return true;
}

/* The response is whole: the connection goes back to the pool (or is closed)
 * at once, so a waiting stream can have it.  Never calls back. */
static void h1u_give_back(struct h1u *s)
{
    bool reusable = s->req_sent && s->keepalive && s->resp_in != EBB_H1_BODY_EOF &&
                    s->u && ebb_buf_len(&s->u->wbuf) == 0;
    h1u_release(s, reusable);
}

/* Delivers the end of a complete response (trailers, on_end) and gives the
 * connection back. */
static void h1u_finish(struct h1u *s)
{
    h1u_give_back(s);
    s->ended = true;
    if (ebb_buf_len(&s->trl)) {
        struct ebb_hdr t[128];
        size_t n = ebb_trailers_parse(&s->trl, t, EBB_ARRAY_LEN(t));
        if (n > 0)
            s->base.cbs->on_trailers(s->base.owner, t, n);
        if (!s->base.owner)
            return;
    }
    s->base.cbs->on_end(s->base.owner);
}

/* Request side: the head, then the end of the body when the owner gave it. */
static void h1u_send(struct h1u *s)
{
    struct ebb_upconn *u = s->u;
    if (!s->head_queued)
        h1u_queue_head(s);
    if (s->req_end && !s->req_sent && s->head_queued && ebb_buf_room(&u->wbuf) > ebb_buf_len(&s->tail)) {
        if (ebb_buf_append(&u->wbuf, ebb_buf_start(&s->tail), ebb_buf_len(&s->tail)) < 0) {
            h1u_oom(s);   /* fits (checked above): only storage can be missing */
            return;
        }
        ebb_buf_reset(&s->tail);
        s->req_sent = true;
    }
    ebb_upstream_send(u);
    if (s->req_sent && u->wbuf.data && ebb_buf_len(&u->wbuf) == 0)
        ebb_buf_release(&u->wbuf);   /* the request is out: a long response holds no copy */
}

static void h1u_set_interest(struct h1u *s)
{
    struct ebb_upconn *u = s->u;
    uint32_t ev = 0;
    if (!u || u->state != EBB_UP_BUSY || s->ended)
        return;
    /* (a direct body whose socket is known readable waits for the owner to pull it: the
     * level-triggered event would only repeat) */
    if (s->head_queued && !u->eof && ebb_buf_room(&u->rbuf) > 0 &&
        !s->resp_done && !(s->sock_ready && h1u_direct(s)))
        ev |= EBB_READ;
    if (ebb_buf_len(&u->wbuf))
        ev |= EBB_WRITE;
    if (ebb_upstream_want(u, ev) < 0 && !s->err) {
        s->err = EBB_EIO;   /* nothing would wake the exchange: it fails from the next run */
        h1u_kick(s);
    }
}

/* A close-delimited body ends with the upstream's FIN once every byte before it
 * was taken (a reset truncates it instead). */
static void h1u_check_eof_end(struct h1u *s)
{
    struct ebb_upconn *u = s->u;
    if (u && s->head_seen && !s->resp_done && s->resp_in == EBB_H1_BODY_EOF && u->eof &&
        !u->reset && ebb_buf_len(&u->rbuf) == 0)
        s->resp_done = true;
}

/* Advances the exchange as far as the buffers allow, then calls the owner. */
static void h1u_run(struct h1u *s)
{
    const struct ebb_us_cbs *cbs = s->base.cbs;

    ebb_timer_stop(s->w->loop, &s->kick);
    if (!s->base.owner || s->ended)
        return;
    if (s->err) {
        int err = s->err;
        s->err = 0;
        ebb_debug("h1u", "cluster \"%s\": %s", s->cl->cfg->name, ebb_strerror(err));
        h1u_fail(s, err == EBB_ETOOBIG ? 0 : EBB_RF_UF, err == EBB_ETOOBIG ? 502 : 503);
        return;
    }
    if (s->resp_done && !s->u) {
        h1u_finish(s);   /* the owner read the whole body: the connection is back already */
        return;
    }
    struct ebb_upconn *u = s->u;
    if (!u || u->state != EBB_UP_BUSY)
        return;   /* waiting for a connection, or connecting */
    h1u_send(s);
    if (s->err) {
        h1u_run(s);
        return;
    }
    if (!h1u_head(s) || s->ended || !s->u)
        return;
    if (s->resp_bad) {
        ebb_warn("h1u", "malformed response body from %s", u->addr_str);
        h1u_fail(s, EBB_RF_UC, 502);
        return;
    }
    h1u_check_eof_end(s);
    bool data = s->head_seen && !s->resp_done &&
                (ebb_buf_len(&u->rbuf) > 0 || (s->sock_ready && h1u_direct(s)));
    if (s->was_full && h1u_writable(&s->base) > 0) {
        s->was_full = false;
        cbs->on_writable(s->base.owner);
        if (!s->base.owner)
            return;
    }
    if (data) {
        cbs->on_data(s->base.owner);
        if (!s->base.owner || s->ended)
            return;   /* let go, or the owner's read took the end (ebb_us_done) */
    }
    if (s->resp_done) {
        h1u_finish(s);
        return;
    }
    if (u->eof && ebb_buf_len(&u->rbuf) == 0 &&
        (s->resp_in != EBB_H1_BODY_EOF || !s->head_seen || u->reset)) {
        h1u_gone(s);
        return;
    }
    h1u_set_interest(s);
}

static void h1u_io(void *owner, struct ebb_upconn *u, uint32_t events)
{
    struct h1u *s = owner;

    if (events & EBB_UP_EV_FAILED) {
        s->err = u->err == EBB_ETIMEDOUT ? EBB_ETIMEDOUT : (u->err ? u->err : EBB_EIO);
        h1u_release(s, false);
        h1u_run(s);
        return;
    }
    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        if (h1u_direct(s))
            s->sock_ready = true;   /* the owner's read takes the bytes (h1u_read_direct) */
        else
            ebb_upstream_read_some(u);
    }
    if (events & EBB_WRITE)
        ebb_upstream_send(u);
    h1u_run(s);
}

/* --- ops --- */

static size_t h1u_writable(const struct ebb_us *us)
{
    const struct h1u *s = (const struct h1u *)us;
    if (s->req_end || s->ended || (s->u && s->u->wr_failed))
        return 64 * 1024;   /* dropped anyway */
    if (!s->u || !s->head_queued || ebb_buf_room(&s->u->wbuf) <= 64) {
        ((struct h1u *)s)->was_full = true;   /* the owner waits for on_writable */
        return 0;
    }
    return ebb_buf_room(&s->u->wbuf) - 32;
}

static size_t h1u_write(struct ebb_us *us, const void *p, size_t n)
{
    struct h1u *s = (struct h1u *)us;
    size_t room = h1u_writable(us);
    if (s->req_end || s->ended || (s->u && s->u->wr_failed))
        return n;
    if (room == 0) {
        s->was_full = true;
        return 0;
    }
    size_t k = EBB_MIN(n, room);
    size_t tail = s->u->wbuf.tail;
    if (ebb_h1_put_body(&s->u->wbuf, s->chunked, p, k) != 0) {
        s->u->wbuf.tail = tail;   /* no half chunk: the exchange fails (on_error) */
        h1u_oom(s);
        return n;                 /* dropped, as after the end: the owner need not fail it too */
    }
    if (k < n)
        s->was_full = true;
    h1u_kick(s);
    return k;
}

static void h1u_end(struct ebb_us *us, const struct ebb_hdr *t, size_t n)
{
    struct h1u *s = (struct h1u *)us;
    if (s->req_end)
        return;
    s->req_end = true;
    s->tail.max = 64 * 1024;
    if (s->chunked) {
        int rc = ebb_buf_append(&s->tail, "0\r\n", 3);
        for (size_t i = 0; i < n && rc == 0; i++)
            if (ebb_buf_room(&s->tail) > t[i].name.len + t[i].value.len + 8)
                rc = ebb_hdrs_write_h1(&s->tail, &t[i], 1);   /* trailers that do not fit are dropped */
        if (rc == 0)
            rc = ebb_buf_append(&s->tail, "\r\n", 2);
        if (rc != 0) {
            h1u_oom(s);   /* each fits (room checked, 64 KiB ceiling): storage is missing */
            return;
        }
    }
    h1u_kick(s);
}

/* Receives up to n body bytes into out (never past a content-length).  The decoder
 * still counts them, so the end and the framing stay its own. */
static size_t h1u_read_direct(struct h1u *s, char *out, size_t n)
{
    struct ebb_upconn *u = s->u;
    ssize_t r;

    if (s->rbody.state == EBB_H1_BS_LENGTH && n > s->rbody.remaining)
        n = (size_t)s->rbody.remaining;
    if (n == 0)
        return 0;
    r = ebb_upstream_recv(u, out, n);   /* sets eof (and reset) */
    if (r <= 0) {
        s->sock_ready = false;
        return 0;
    }
    if ((size_t)r < n)
        s->sock_ready = false;   /* a short read: the socket is dry */
    size_t consumed = 0, dlen = 0;
    const char *data = NULL;
    int rc = ebb_h1_body_parse(&s->rbody, out, (size_t)r, &consumed, &data, &dlen);
    /* identity framing: every byte is payload, in place */
    EBB_BUG_ON(rc != EBB_H1_BODY_DATA || data != out || dlen != (size_t)r);
    if (ebb_h1_body_done(&s->rbody)) {
        s->resp_done = true;
        /* never read past the content-length: bytes after it (an upstream sending more than
         * it said) stay in the socket, and would answer the next request lent it */
        if (!ebb_upstream_quiet(u))
            s->keepalive = false;
    }
    return (size_t)r;
}

/* Decodes response body bytes from u->rbuf straight into out (at most n);
 * trailers are kept for h1u_finish, the end and a malformed body are
 * reported by the run it kicks. */
static size_t h1u_read(struct ebb_us *us, void *out, size_t n)
{
    struct h1u *s = (struct h1u *)us;
    struct ebb_upconn *u = s->u;
    size_t got = 0;

    while (u && s->head_seen && !s->resp_done && !s->resp_bad &&
           ((ebb_buf_len(&u->rbuf) && got < n) || ebb_h1_body_done(&s->rbody))) {
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        /* a payload byte costs at least one input byte: n - got bounds the output */
        size_t len = EBB_MIN(ebb_buf_len(&u->rbuf), n - got);
        int rc = ebb_h1_body_parse(&s->rbody, ebb_buf_start(&u->rbuf), len, &consumed, &data,
                                   &dlen);
        if (rc == EBB_H1_EBAD) {
            s->resp_bad = true;
            break;
        }
        if (rc == EBB_H1_BODY_DATA && dlen) {
            memcpy((char *)out + got, data, dlen);
            got += dlen;
        } else if (rc == EBB_H1_BODY_TRAILER) {
            s->trl.max = 64 * 1024;
            /* too large: truncated, then dropped; no storage: the exchange fails */
            if (ebb_buf_append(&s->trl, data, dlen) == EBB_ENOMEM) {
                h1u_oom(s);
                break;
            }
        } else if (rc == EBB_H1_BODY_DONE) {
            s->resp_done = true;
        }
        ebb_buf_consume(&u->rbuf, consumed);
        if (rc == EBB_H1_AGAIN)
            break;
    }
    if (h1u_direct(s)) {
        if (u->rbuf.data)
            ebb_buf_release(&u->rbuf);   /* no body byte goes through it any more */
        if (s->sock_ready && got < n)
            got += h1u_read_direct(s, (char *)out + got, n - got);
    }
    /* the FIN may have come with the last bytes: no socket event will say so again */
    h1u_check_eof_end(s);
    if (s->resp_done) {
        h1u_give_back(s);
        if (ebb_buf_len(&s->trl) == 0)
            s->ended = true;   /* the owner sees it with ebb_us_done(): no on_end */
    }
    if ((s->resp_done && !s->ended) || s->resp_bad ||
        (!s->resp_done && u && u->eof && ebb_buf_len(&u->rbuf) == 0))
        h1u_kick(s);   /* trailers and on_end, the failure, or the upstream gone: from the run */
    else if (!s->resp_done)
        h1u_set_interest(s);   /* room in the read buffer again */
    return got;
}

/* Raw bytes of the body waiting (framing included: a read may return 0). */
static size_t h1u_readable(const struct ebb_us *us)
{
    const struct h1u *s = (const struct h1u *)us;
    if (!s->u || !s->head_seen || s->resp_done || s->resp_bad)
        return 0;
    if (s->sock_ready && h1u_direct(s))   /* unknown until read: what one read may take */
        return s->rbody.state == EBB_H1_BS_LENGTH ?
               (size_t)EBB_MIN(s->rbody.remaining, (uint64_t)H1U_DIRECT_READ) : H1U_DIRECT_READ;
    return ebb_buf_len(&s->u->rbuf);
}

static bool h1u_done(const struct ebb_us *us)
{
    const struct h1u *s = (const struct h1u *)us;
    return s->resp_done && s->ended;
}

static const char *h1u_addr(const struct ebb_us *us)
{
    const struct h1u *s = (const struct h1u *)us;
    return s->addr[0] ? s->addr : NULL;
}

static struct ebb_upconn *h1u_take_conn(struct ebb_us *us)
{
    struct h1u *s = (struct h1u *)us;
    struct ebb_upconn *u = s->u;
    if (!u)
        return NULL;
    if (s->head_queued)
        ebb_stat_dec(s->cl->st->rq_active);
    s->u = NULL;
    s->ended = true;
    u->cb = NULL;
    u->owner = NULL;
    return u;
}

static void h1u_free(void *p)
{
    struct h1u *s = p;
    ebb_buf_free(&s->tail);
    ebb_buf_free(&s->trl);
    free(s);
}

static void h1u_close(struct ebb_us *us)
{
    struct h1u *s = (struct h1u *)us;
    s->base.owner = NULL;
    ebb_list_del(&s->wlink);
    ebb_timer_stop(s->w->loop, &s->kick);
    ebb_timer_stop(s->w->loop, &s->wait);
    h1u_release(s, false);
    ebb_loop_defer(s->w->loop, &s->dfr, h1u_free, s);
}

static const struct ebb_us_ops h1u_ops = {
    .name = "h1",
    .holds_connection = true,
    .write = h1u_write,
    .writable = h1u_writable,
    .end = h1u_end,
    .read = h1u_read,
    .readable = h1u_readable,
    .done = h1u_done,
    .addr = h1u_addr,
    .take_conn = h1u_take_conn,
    .close = h1u_close,
};

/* The stream's state with the request head written into it, at its size (1024 streams
 * waiting for a connection must not hold a 4 KiB buffer each): one allocation.  The head
 * is written into the stack buffer first (a larger one only when it does not fit). */
static struct h1u *h1u_new(const struct ebb_fwd *f, size_t max)
{
    char stack[2048];
    /* a buffer whose ceiling is its capacity never reallocates: too large is ETOOBIG */
    struct ebb_buf hb = { .data = stack, .cap = sizeof(stack), .max = sizeof(stack) };
    struct h1u *s = NULL;
    bool chunked = false;
    int rc = ebb_fwd_write_h1(f, &hb, &chunked);
    if (rc == EBB_ETOOBIG) {
        hb = (struct ebb_buf){ .max = max };
        rc = ebb_fwd_write_h1(f, &hb, &chunked);
    }
    /* malloc, not calloc: glibc's calloc skips its per-thread cache */
    if (rc == 0 && (s = malloc(sizeof(*s) + ebb_buf_len(&hb)))) {
        *s = (struct h1u){ .head_len = ebb_buf_len(&hb), .chunked = chunked };
        memcpy(s->head, ebb_buf_start(&hb), s->head_len);
    }
    if (hb.data != stack)
        ebb_buf_free(&hb);
    return s;
}

struct ebb_us *ebb_h1u_open(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const struct ebb_fwd *f, unsigned flags,
                            const struct ebb_us_cbs *cbs, void *owner)
{
    struct h1u *s = h1u_new(f, w->cfg->limits.h1.max_head + 4096);
    if (!s)
        return NULL;
    s->base = (struct ebb_us){ &h1u_ops, cbs, owner };
    s->cl = cl;
    s->w = w;
    ebb_timer_init(&s->kick, h1u_kick_cb, s);
    ebb_timer_init(&s->wait, h1u_wait_cb, s);
    ebb_list_init(&s->wlink);
    size_t ml = EBB_MIN(f->req->method.len, sizeof(s->method) - 1);
    memcpy(s->method, f->req->method.p, ml);
    s->has_body = f->req->body;
    s->req_end = s->req_sent = !f->req->body;
    s->upgrade = f->req->upgrade.len > 0;
    s->shared = (flags & EBB_US_F_SHARED) != 0;
    if (f->dst) {
        s->dst = *f->dst;
        s->has_dst = true;
        s->shared = false;   /* the shared connections are any endpoint's */
    }
    h1u_waiting_init(cl);
    if (s->shared && (cl->shared_busy >= h1u_limit(cl) || !ebb_list_empty(&cl->shared_waiting))) {
        ebb_list_add_tail(&cl->shared_waiting, &s->wlink);   /* h1u_grant() lends it one */
        s->wait_mark = cl->shared_returned;
        ebb_timer_start(w->loop, &s->wait, H1U_WAIT_MS);
        return &s->base;
    }
    h1u_acquire(s);
    return &s->base;
}

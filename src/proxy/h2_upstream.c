/*
 * h2_upstream.c - the h2c upstream codec: shared upstream h2c connections
 * ("h2u") of a cluster, each exchange one stream behind ustream.h's ops
 * (ebb_h2u_open).
 *
 * Each worker keeps, per h2c cluster, a few HTTP/2 client connections
 * (nghttp2 client sessions over sockets connected by the upstream pool's
 * ebb_upstream_connect_to, never its pooled HTTP/1.1 connections); every
 * proxied request is one stream.  A new
 * connection is opened when every existing one has as many streams as the
 * peer's SETTINGS_MAX_CONCURRENT_STREAMS allow, or has received GOAWAY.
 * Streams the upstream refused (GOAWAY above their id, REFUSED_STREAM)
 * before any request body byte left are retried once on a new connection.
 *
 * Flow control is the back-pressure: automatic WINDOW_UPDATE is off, and
 * response bytes are returned to the upstream's window only when the owner
 * has taken them (ebb_us_read).  Request bytes wait in a bounded buffer
 * read by a deferred data provider.
 *
 * Re-entrancy: owner callbacks are only made from nghttp2's receive
 * callbacks (inside the connection's I/O handler) and from connection
 * failure; the functions the owner calls never call back, and never send:
 * they arm a zero-delay "kick" timer that runs the connection next
 * iteration.
 */
#include <string.h>

#include "ebb/cluster.h"
#include "ebb/config.h"
#include "ebb/core.h"
#include "ebb/exchange.h"
#include "ebb/h2.h"
#include "ebb/log.h"
#include "ebb/proxy.h"
#include "ebb/stats.h"
#include "ebb/upstream.h"
#include "ebb/ustream.h"
#include "ebb/wctx.h"

#define H2U_WINDOW      65535u          /* per-stream receive window */
#define H2U_BUF         (64 * 1024)     /* request buffer ceiling per stream */
#define H2U_GUESS_MAXS  100u            /* streams per connection before the peer's SETTINGS */
#define H2U_MAX_NV      256

enum h2u_state {
    H2U_CONNECTING = 0,  /* TCP connect in progress */
    H2U_READY,           /* streams can be opened */
    H2U_GOAWAY,          /* peer sent GOAWAY (or we are closing): no new streams */
    H2U_CLOSED,          /* closed; free pending */
};

struct h2u_conn;

/* One proxied exchange.  Referenced by its owner until ebb_us_close()
 * (or on_error); referenced by the connection while nghttp2 has it. */
struct ebb_h2u_stream {
    struct ebb_us      base;          /* ops, the owner's callbacks, the owner */
    struct h2u_conn   *uc;
    struct ebb_cluster_rt *cl;
    struct ebb_wctx *w;
    struct ebb_list    link;          /* in uc->streams */
    const union ebb_sockaddr *dst;    /* original destination (ORIGINAL_DST), else NULL */
    union ebb_sockaddr dst_store;     /* ... its copy */
    int32_t            id;            /* nghttp2 stream id, 0 before submission */
    nghttp2_nv        *nv;            /* request head copy (for retries) */
    size_t             nnv;
    char              *nvbuf;
    bool               end_stream;    /* request without a body */
    struct ebb_buf     reqb;          /* request body not yet sent */
    bool               req_end;       /* owner ended the request */
    bool               req_sent;      /* a request body byte (or END_STREAM) went out */
    bool               deferred;      /* data provider DEFERRED */
    bool               was_full;      /* reqb was full: owner wants on_writable */
    nghttp2_nv        *tnv;           /* request trailers copy */
    size_t             ntnv;
    char              *tbuf;
    struct ebb_buf     respb;         /* response body not yet read by the owner */
    bool               head_seen;     /* on_head delivered */
    bool               ended;         /* END_STREAM received (on_end delivered) */
    bool               closed;        /* nghttp2 closed it (or it never opened) */
    bool               active;        /* counted in the cluster's upstream_rq_active */
    bool               retried;
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

/* One upstream h2c connection.  Owned by its cluster runtime list. */
struct h2u_conn {
    struct ebb_cluster_rt *cl;
    struct ebb_wctx *w;
    struct ebb_list    link;          /* in cl->h2conns */
    struct ebb_upconn *u;             /* the socket (lent by the pool for good) */
    union ebb_sockaddr dst;           /* where it goes when an original destination (family
                                         0: one of the cluster's endpoints) */
    nghttp2_session   *ng;
    enum h2u_state     state;
    struct ebb_list    streams;       /* struct ebb_h2u_stream.link */
    uint32_t           nstreams;
    struct ebb_timer   kick;          /* zero-delay run */
    struct ebb_timer   idle;          /* no stream for pool_idle_timeout */
    bool               in_run;
    bool               broken;        /* a WINDOW_UPDATE or resumed DATA could not be queued (no
                                       * memory): the next run closes the connection */
    bool               any_full;      /* some stream's owner waits for on_writable */
    /* the header block being received (blocks are never interleaved) */
    nghttp2_nv         hnv[H2U_MAX_NV];
    nghttp2_rcbuf     *hrc[H2U_MAX_NV * 2];
    size_t             hn;
    int                hstatus;
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

static void h2u_run(struct h2u_conn *uc);
static void h2u_conn_cb(void *owner, struct ebb_upconn *u, uint32_t events);
static int h2u_submit(struct h2u_conn *uc, struct ebb_h2u_stream *s);
static struct h2u_conn *h2u_conn_new(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                                     const union ebb_sockaddr *dst);

static struct ebb_server_stats *h2u_sst(struct ebb_wctx *w) { return &w->stats->server; }

static void h2u_list_init(struct ebb_cluster_rt *cl)
{
    if (!cl->h2conns.next)
        ebb_list_init(&cl->h2conns);
}

/* The owner of s waits for request body room (on_writable). */
static void h2u_set_full(struct ebb_h2u_stream *s)
{
    s->was_full = true;
    if (s->uc)
        s->uc->any_full = true;
}

static void h2u_kick(struct h2u_conn *uc)
{
    if (uc && uc->state != H2U_CLOSED && !ebb_timer_active(&uc->kick))
        ebb_timer_start(uc->w->loop, &uc->kick, 0);
}

/* An nghttp2 call that queues a frame failed for want of memory: a window could stay shut or a
 * body unsent for good, so the connection's exchanges fail (from the next run: this may be an
 * owner's call, which must not call back). */
static void h2u_check(struct h2u_conn *uc, int rv)
{
    if (rv != NGHTTP2_ERR_NOMEM || !uc)
        return;
    uc->broken = true;
    h2u_kick(uc);
}

/* --- streams --- */

static void h2u_stream_free(struct ebb_h2u_stream *s)
{
    free(s->nv);
    free(s->nvbuf);
    free(s->tnv);
    free(s->tbuf);
    ebb_buf_free(&s->reqb);
    ebb_buf_free(&s->respb);
    free(s);
}

static void h2u_stream_free_cb(void *p) { h2u_stream_free(p); }

/* n bytes of s's response left ebb (read by the owner) or were dropped, and leave
 * upstream_cx_rx_bytes_buffered: they go back to the receive windows, which nghttp2 keeps
 * shut until told (no automatic WINDOW_UPDATE).  The stream's own window while it is open,
 * the connection's always: bytes never given back shrink a long-lived connection's window
 * for good, until it carries no DATA at all. */
static void h2u_window_back(struct ebb_h2u_stream *s, size_t n)
{
    if (!n)
        return;
    ebb_stat_add(s->cl->st->rx_buffered, -(int64_t)n);
    if (!s->uc)
        return;
    if (!s->closed && s->id)
        h2u_check(s->uc, nghttp2_session_consume(s->uc->ng, s->id, n));
    else
        h2u_check(s->uc, nghttp2_session_consume_connection(s->uc->ng, n));
    h2u_kick(s->uc);
}

/* The owner will read no more of the response: what it had not read goes back. */
static void h2u_drop_response(struct ebb_h2u_stream *s)
{
    h2u_window_back(s, ebb_buf_len(&s->respb));
    ebb_buf_reset(&s->respb);
}

/* Frees s once neither nghttp2 nor the owner refer to it. */
static void h2u_stream_maybe_free(struct ebb_h2u_stream *s)
{
    if (s->base.owner || !s->closed)
        return;
    h2u_drop_response(s);   /* (an upstream reset after the owner was told: bytes still held) */
    if (s->uc) {
        ebb_list_del(&s->link);
        /* its connection's last stream: the run arms the idle timer (or closes after a GOAWAY),
         * which nothing else would do when the owner let go after nghttp2 closed the stream */
        if (--s->uc->nstreams == 0)
            h2u_kick(s->uc);
        s->uc = NULL;
    }
    ebb_loop_defer(s->w->loop, &s->dfr, h2u_stream_free_cb, s);
}

/* The stream is over upstream (closed by nghttp2, its connection gone, or never opened). */
static void h2u_stream_closed(struct ebb_h2u_stream *s)
{
    s->closed = true;
    if (s->active) {
        s->active = false;
        ebb_stat_dec(s->cl->st->rq_active);
    }
}

/* Tells the owner the exchange failed and forgets it. */
static void h2u_stream_fail(struct ebb_h2u_stream *s, unsigned rf)
{
    void *owner = s->base.owner;
    s->base.owner = NULL;
    if (s->uc && s->id)
        nghttp2_session_set_stream_user_data(s->uc->ng, s->id, NULL);
    h2u_stream_closed(s);
    if (owner && !s->ended) {
        ebb_stat_inc(s->cl->st->rq_reset);
        s->base.cbs->on_error(owner, rf, s->head_seen, rf & EBB_RF_UT ? 504 : 503);
    }
    h2u_stream_maybe_free(s);
}

static ssize_t h2u_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    /* not src->ptr: a stream failed by ebb (h2u_stream_fail) is forgotten (its user data
     * NULL) and may be freed while nghttp2 still holds its DATA, to be reset */
    struct ebb_h2u_stream *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* RST_STREAM: it was failed */
    size_t n = EBB_MIN(len, ebb_buf_len(&s->reqb));

    if (n) {
        memcpy(buf, ebb_buf_start(&s->reqb), n);
        ebb_buf_consume(&s->reqb, n);
        s->req_sent = true;
        if (s->was_full)
            h2u_kick(s->uc);   /* the owner hears on_writable from the run */
    }
    if (ebb_buf_len(&s->reqb) == 0 && s->req_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        s->req_sent = true;
        if (s->ntnv) {
            if (nghttp2_submit_trailer(ng, id, s->tnv, s->ntnv) != 0) {
                /* the trailers cannot be queued: the stream is reset (INTERNAL_ERROR) rather
                 * than ended without them, and its owner hears of it from the stream close */
                ebb_stat_inc(h2u_sst(s->w)->xch_failed_resource);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* --- connections --- */

static void h2u_conn_free(void *p)
{
    struct h2u_conn *uc = p;
    if (uc->ng)
        nghttp2_session_del(uc->ng);
    free(uc);
}

static void h2u_conn_close(struct h2u_conn *uc, unsigned rf)
{
    if (uc->state == H2U_CLOSED)
        return;
    uc->state = H2U_CLOSED;
    ebb_list_del(&uc->link);
    ebb_timer_stop(uc->w->loop, &uc->kick);
    ebb_timer_stop(uc->w->loop, &uc->idle);
    if (uc->u) {
        ebb_upstream_release(uc->u, false);
        uc->u = NULL;
    }
    struct ebb_list *pos, *tmp;
    ebb_list_for_each_safe(pos, tmp, &uc->streams) {
        struct ebb_h2u_stream *s = ebb_list_entry(pos, struct ebb_h2u_stream, link);
        ebb_list_del(&s->link);
        uc->nstreams--;
        s->uc = NULL;
        h2u_stream_closed(s);
        if (s->base.owner && !s->ended)
            h2u_stream_fail(s, rf);
        else if (!s->base.owner)
            h2u_stream_maybe_free(s);
        /* else: the owner is still reading the rest of the body; ebb_us_close frees */
    }
    for (size_t i = 0; i < uc->hn * 2; i++)
        nghttp2_rcbuf_decref(uc->hrc[i]);
    uc->hn = 0;
    ebb_loop_defer(uc->w->loop, &uc->dfr, h2u_conn_free, uc);
}

static uint32_t h2u_max_streams(struct h2u_conn *uc)
{
    if (uc->state == H2U_CONNECTING)
        return H2U_GUESS_MAXS;
    uint32_t m = nghttp2_session_get_remote_settings(uc->ng,
                                                     NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return EBB_MIN(m, 1000u);
}

/* True when uc can carry s: open, with room for a stream, to s's destination. */
static bool h2u_conn_takes(struct h2u_conn *uc, const struct ebb_h2u_stream *s)
{
    if (uc->state > H2U_READY || uc->nstreams >= h2u_max_streams(uc))
        return false;
    if (s->dst)
        return ebb_sockaddr_same(&uc->dst, s->dst);
    return uc->dst.sa.sa_family == 0;
}

static ssize_t h2u_send_cb(nghttp2_session *ng, const uint8_t *data, size_t len, int flags,
                           void *ud)
{
    struct h2u_conn *uc = ud;
    struct ebb_buf *b = &uc->u->wbuf;
    size_t n = EBB_MIN(len, ebb_buf_room(b));
    if (n == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (ebb_buf_append(b, data, n) < 0) {
        /* no storage for the frames: waiting would wait for nothing, the connection fails */
        ebb_stat_inc(h2u_sst(uc->w)->xch_failed_resource);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

static int h2u_on_header(nghttp2_session *ng, const nghttp2_frame *f, nghttp2_rcbuf *name,
                         nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    struct h2u_conn *uc = ud;
    nghttp2_vec nm = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);

    if (nm.len == 7 && memcmp(nm.base, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < v.len; i++)
            st = st * 10 + (v.base[i] - '0');
        uc->hstatus = st;
        return 0;
    }
    if (uc->hn == H2U_MAX_NV)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    uc->hrc[uc->hn * 2] = name;
    uc->hrc[uc->hn * 2 + 1] = value;
    uc->hnv[uc->hn++] = (nghttp2_nv){ nm.base, v.base, nm.len, v.len, NGHTTP2_NV_FLAG_NONE };
    return 0;
}

static void h2u_headers_reset(struct h2u_conn *uc)
{
    for (size_t i = 0; i < uc->hn * 2; i++)
        nghttp2_rcbuf_decref(uc->hrc[i]);
    uc->hn = 0;
    uc->hstatus = 0;
}

static int h2u_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    h2u_headers_reset(ud);
    return 0;
}

static int h2u_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                             size_t len, void *ud)
{
    struct ebb_h2u_stream *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s || !s->base.owner) {
        h2u_check(ud, nghttp2_session_consume(ng, id, len));
        return 0;
    }
    int rc = ebb_buf_append(&s->respb, data, len);
    if (rc == 0)
        ebb_stat_add(s->cl->st->rx_buffered, (int64_t)len);
    if (rc < 0) {
        h2u_check(ud, nghttp2_session_consume(ng, id, len));
        if (rc == EBB_ENOMEM) {
            /* the bytes cannot be kept: this exchange fails, the connection goes on */
            ebb_stat_inc(h2u_sst(s->w)->xch_failed_resource);
            h2u_stream_fail(s, EBB_RF_UC);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* RST_STREAM INTERNAL_ERROR */
        }
        if (nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;   /* the connection fails instead */
    }
    return 0;
}

/* The header block received, as exchange fields (valid until the next block). */
static const struct ebb_hdr *h2u_fields(struct h2u_conn *uc)
{
    static __thread struct ebb_hdr hdrs[H2U_MAX_NV];
    for (size_t i = 0; i < uc->hn; i++)
        hdrs[i] = (struct ebb_hdr){ { (const char *)uc->hnv[i].name, uc->hnv[i].namelen },
                                    { (const char *)uc->hnv[i].value, uc->hnv[i].valuelen } };
    return hdrs;
}

/* Gives s's owner the final response head.  end: the HEADERS frame ended the
 * stream (no body; a trailers-only answer keeps its fields in the head). */
static void h2u_deliver_head(struct h2u_conn *uc, struct ebb_h2u_stream *s, bool end)
{
    struct ebb_hdr *hdrs = (struct ebb_hdr *)h2u_fields(uc);
    struct ebb_resp r = { .status = uc->hstatus, .hdrs = hdrs, .content_length = -1 };
    bool head = s->nnv && s->nv[0].valuelen == 4 && memcmp(s->nv[0].value, "HEAD", 4) == 0;
    size_t n = 0;

    for (size_t i = 0; i < uc->hn; i++) {
        if (hdrs[i].name.len == 14 && memcmp(hdrs[i].name.p, "content-length", 14) == 0) {
            int64_t v = 0;   /* nghttp2 checked it is a number */
            for (size_t k = 0; k < hdrs[i].value.len; k++)
                v = v * 10 + (hdrs[i].value.p[k] - '0');
            r.content_length = v;
            continue;
        }
        hdrs[n++] = hdrs[i];
    }
    r.nhdrs = n;
    r.body = !end && !head && r.status != 204 && r.status != 304;
    s->base.cbs->on_head(s->base.owner, &r);
}

static int h2u_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2u_conn *uc = ud;
    struct ebb_h2u_stream *s = f->hd.stream_id ? nghttp2_session_get_stream_user_data(ng,
                                                     f->hd.stream_id) : NULL;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (s && s->base.owner) {
            if (!s->head_seen && uc->hstatus >= 200) {
                s->head_seen = true;
                h2u_deliver_head(uc, s, end);
            } else if (f->headers.cat == NGHTTP2_HCAT_HEADERS && s->head_seen && s->base.owner) {
                s->base.cbs->on_trailers(s->base.owner, h2u_fields(uc), uc->hn);
            }
        }
        h2u_headers_reset(uc);
        break;
    case NGHTTP2_DATA:
        if (s && s->base.owner && ebb_buf_len(&s->respb))
            s->base.cbs->on_data(s->base.owner);
        break;
    case NGHTTP2_GOAWAY:
        ebb_stat_inc(h2u_sst(uc->w)->h2_up_goaway_rx);
        ebb_debug("h2u", "%s: GOAWAY last stream %d error %u", uc->u ? uc->u->addr_str : "-",
                  f->goaway.last_stream_id, f->goaway.error_code);
        if (uc->state == H2U_READY || uc->state == H2U_CONNECTING)
            uc->state = H2U_GOAWAY;
        break;
    default:
        break;
    }
    /* the owner may have let go inside the callbacks above */
    s = f->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, f->hd.stream_id) : NULL;
    if (s && s->base.owner && end && (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        s->head_seen && !s->ended) {
        s->ended = true;
        s->base.cbs->on_end(s->base.owner);
    }
    return 0;
}

static int h2u_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    struct h2u_conn *uc = ud;
    struct ebb_h2u_stream *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    if (error_code == NGHTTP2_REFUSED_STREAM && s->base.owner && !s->head_seen && !s->req_sent &&
        !s->retried) {
        /* never processed by the upstream (GOAWAY / REFUSED_STREAM): safe to retry */
        s->retried = true;
        ebb_stat_inc(h2u_sst(uc->w)->h2_up_retry);
        ebb_list_del(&s->link);
        uc->nstreams--;
        s->uc = NULL;
        s->id = 0;
        s->deferred = false;
        struct ebb_cluster_rt *cl = s->cl;
        struct h2u_conn *nc = NULL;
        struct ebb_list *pos;
        for (pos = cl->h2conns.next; pos != &cl->h2conns; pos = pos->next) {
            struct h2u_conn *c2 = ebb_list_entry(pos, struct h2u_conn, link);
            if (c2 != uc && h2u_conn_takes(c2, s)) {
                nc = c2;
                break;
            }
        }
        if (!nc)
            nc = h2u_conn_new(cl, s->w, s->dst);
        if (nc && h2u_submit(nc, s) == 0) {
            h2u_kick(nc);
            return 0;
        }
        h2u_stream_fail(s, EBB_RF_UC);
        return 0;
    }
    h2u_stream_closed(s);
    if (s->base.owner && !s->ended)
        h2u_stream_fail(s, EBB_RF_UC);
    else
        h2u_stream_maybe_free(s);
    return 0;
}

/* A new callback table; the caller deletes it after creating the session. */
static nghttp2_session_callbacks *h2u_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cbs, h2u_send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2u_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, h2u_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2u_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2u_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2u_on_stream_close);
    return cbs;
}

static void h2u_kick_cb(struct ebb_loop *loop, struct ebb_timer *t) { h2u_run(t->data); }

static void h2u_idle_cb(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h2u_conn *uc = t->data;
    if (uc->nstreams == 0)
        h2u_conn_close(uc, EBB_RF_UC);
}

/* Opens a new connection of cl (connect in progress).  NULL on failure. */
static struct h2u_conn *h2u_conn_new(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                                     const union ebb_sockaddr *dst)
{
    nghttp2_session_callbacks *cbs = h2u_callbacks();
    nghttp2_option *opt = NULL;
    struct h2u_conn *uc = calloc(1, sizeof(*uc));

    if (!uc || !cbs || nghttp2_option_new(&opt) != 0)
        goto fail;
    uc->cl = cl;
    uc->w = w;
    ebb_list_init(&uc->streams);
    ebb_timer_init(&uc->kick, h2u_kick_cb, uc);
    ebb_timer_init(&uc->idle, h2u_idle_cb, uc);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, H2U_GUESS_MAXS);
    int rv = nghttp2_session_client_new2(&uc->ng, cbs, uc, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    opt = NULL;
    cbs = NULL;
    if (rv != 0)
        goto fail;
    if (dst)
        uc->dst = *dst;
    int rc = ebb_upstream_connect_to(cl, w, dst, h2u_conn_cb, uc, &uc->u);
    if (rc != 0 && rc != EBB_EAGAIN)
        goto fail;
    uc->state = rc == 0 ? H2U_READY : H2U_CONNECTING;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2U_WINDOW },
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
    };
    if (nghttp2_submit_settings(uc->ng, NGHTTP2_FLAG_NONE, iv, EBB_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(uc->ng, NGHTTP2_FLAG_NONE, 0, 1 << 30) != 0) {
        ebb_stat_inc(h2u_sst(w)->xch_failed_resource);
        ebb_upstream_release(uc->u, false);
        uc->u = NULL;
        goto fail;
    }
    ebb_list_add_tail(&cl->h2conns, &uc->link);
    ebb_stat_inc(h2u_sst(w)->h2_up_cx_total);
    if (uc->state == H2U_READY)
        h2u_kick(uc);
    return uc;

fail:
    if (opt)
        nghttp2_option_del(opt);
    if (cbs)
        nghttp2_session_callbacks_del(cbs);
    if (uc && uc->ng)
        nghttp2_session_del(uc->ng);
    free(uc);
    return NULL;
}

static void h2u_run(struct h2u_conn *uc)
{
    if (uc->state == H2U_CLOSED || uc->state == H2U_CONNECTING || uc->in_run)
        return;
    struct ebb_upconn *u = uc->u;
    if (uc->broken) {
        ebb_stat_inc(h2u_sst(uc->w)->xch_failed_resource);
        h2u_conn_close(uc, EBB_RF_UC);
        return;
    }
    uc->in_run = true;
    /* owners whose request buffer was full hear that there is room */
    struct ebb_list *pos, *tmp;
    if (uc->any_full) {
        /* only walk the streams when one of them waits; callbacks that fill
         * a stream again set any_full again */
        bool still_full;
        uc->any_full = false;
restart:
        still_full = false;
        ebb_list_for_each_safe(pos, tmp, &uc->streams) {
            struct ebb_h2u_stream *s = ebb_list_entry(pos, struct ebb_h2u_stream, link);
            if (s->was_full && ebb_buf_room(&s->reqb) > H2U_BUF / 2 && s->base.owner) {
                s->was_full = false;
                s->base.cbs->on_writable(s->base.owner);
                if (uc->state == H2U_CLOSED)
                    return;
                /* the owner may have let go of other streams (even tmp): walk again */
                goto restart;
            } else if (s->was_full) {
                still_full = true;
            }
        }
        uc->any_full |= still_full;
    }
    for (int guard = 0; guard < 16; guard++) {
        if (ebb_upstream_flush(u) < 0)
            goto fail_io;
        size_t before = ebb_buf_len(&u->wbuf);
        int rv = nghttp2_session_send(uc->ng);
        if (rv != 0)
            goto fail_io;
        if (ebb_upstream_flush(u) < 0)
            goto fail_io;
        if (ebb_buf_len(&u->wbuf) == before || ebb_buf_len(&u->wbuf))
            break;
    }
    uc->in_run = false;
    bool want_read = nghttp2_session_want_read(uc->ng);
    bool want_write = nghttp2_session_want_write(uc->ng);
    if ((!want_read && !want_write && ebb_buf_len(&u->wbuf) == 0) ||
        (uc->state == H2U_GOAWAY && uc->nstreams == 0)) {
        h2u_conn_close(uc, EBB_RF_UC);
        return;
    }
    uint32_t ev = 0;
    if (want_read && !u->eof)
        ev |= EBB_READ;
    if (ebb_buf_len(&u->wbuf))
        ev |= EBB_WRITE;
    if (ebb_upstream_want(u, ev) < 0) {
        h2u_conn_close(uc, EBB_RF_UC);   /* nothing would wake it again */
        return;
    }
    if (uc->nstreams == 0 && !ebb_timer_active(&uc->idle))
        ebb_timer_start(uc->w->loop, &uc->idle, uc->cl->cfg->pool_idle_timeout_ms);
    return;

fail_io:
    uc->in_run = false;
    h2u_conn_close(uc, EBB_RF_UC);
}

static void h2u_conn_cb(void *owner, struct ebb_upconn *u, uint32_t events)
{
    struct h2u_conn *uc = owner;

    if (events & EBB_UP_EV_FAILED) {
        ebb_debug("h2u", "connect to %s failed", u->addr_str);
        h2u_conn_close(uc, EBB_RF_UF);
        return;
    }
    if (events & EBB_UP_EV_CONNECTED)
        uc->state = uc->state == H2U_CONNECTING ? H2U_READY : uc->state;
    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        for (int i = 0; i < 8; i++) {
            ssize_t n = ebb_upstream_read(u);
            if (n > 0) {
                ssize_t rv = nghttp2_session_mem_recv(uc->ng, (const uint8_t *)ebb_buf_start(&u->rbuf),
                                                      ebb_buf_len(&u->rbuf));
                if (uc->state == H2U_CLOSED)
                    return;
                if (rv < 0) {
                    ebb_warn("h2u", "%s: %s", u->addr_str, nghttp2_strerror((int)rv));
                    h2u_conn_close(uc, EBB_RF_UC);
                    return;
                }
                ebb_buf_consume(&u->rbuf, (size_t)rv);
                continue;
            }
            if (n == 0 || (n != EBB_EAGAIN && n != EBB_ETOOBIG)) {
                h2u_conn_close(uc, EBB_RF_UC);
                return;
            }
            break;
        }
    }
    if ((events & EBB_WRITE) && ebb_upstream_flush(u) < 0) {
        h2u_conn_close(uc, EBB_RF_UC);
        return;
    }
    h2u_run(uc);
}

static int h2u_submit(struct h2u_conn *uc, struct ebb_h2u_stream *s)
{
    nghttp2_data_provider dp = { .source.ptr = s, .read_callback = h2u_read_cb };
    int32_t id = nghttp2_submit_request(uc->ng, NULL, s->nv, s->nnv, s->end_stream ? NULL : &dp, s);
    if (id < 0) {
        if (id == NGHTTP2_ERR_NOMEM)
            ebb_stat_inc(h2u_sst(uc->w)->xch_failed_resource);
        return EBB_EIO;
    }
    s->id = id;
    s->uc = uc;
    s->closed = false;
    if (!s->active) {
        s->active = true;
        ebb_stat_inc(s->cl->st->rq_active);
    }
    if (s->was_full)
        uc->any_full = true;
    ebb_list_add_tail(&uc->streams, &s->link);
    uc->nstreams++;
    ebb_timer_stop(uc->w->loop, &uc->idle);
    if (s->end_stream)
        s->req_sent = false;
    return 0;
}

static const struct ebb_us_ops h2u_ops;

struct ebb_us *ebb_h2u_open(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const struct ebb_fwd *f, unsigned flags,
                            const struct ebb_us_cbs *cbs, void *owner)
{
    struct ebb_h2u_stream *s = calloc(1, sizeof(*s));
    struct ebb_nvlist nvl;
    size_t bytes = 0;

    h2u_list_init(cl);
    if (!s)
        return NULL;
    if (ebb_fwd_to_nv(f, &nvl) < 0) {
        free(s);
        return NULL;
    }
    const nghttp2_nv *nv = nvl.nv;
    size_t n = nvl.n;
    bool end_stream = !f->req->body;
    for (size_t i = 0; i < n; i++)
        bytes += nv[i].namelen + nv[i].valuelen;
    s->nv = calloc(n ? n : 1, sizeof(*s->nv));
    s->nvbuf = malloc(bytes ? bytes : 1);
    if (!s->nv || !s->nvbuf)
        goto fail;
    char *p = s->nvbuf;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, nv[i].name, nv[i].namelen);
        s->nv[i].name = (uint8_t *)p;
        s->nv[i].namelen = nv[i].namelen;
        p += nv[i].namelen;
        memcpy(p, nv[i].value, nv[i].valuelen);
        s->nv[i].value = (uint8_t *)p;
        s->nv[i].valuelen = nv[i].valuelen;
        p += nv[i].valuelen;
    }
    ebb_nvlist_free(&nvl);
    s->nnv = n;
    s->cl = cl;
    s->w = w;
    s->base = (struct ebb_us){ &h2u_ops, cbs, owner };
    if (f->dst) {
        s->dst_store = *f->dst;
        s->dst = &s->dst_store;
    }
    s->end_stream = end_stream;
    s->req_end = end_stream;
    s->reqb.max = H2U_BUF;
    s->respb.max = H2U_WINDOW + 16384;
    ebb_list_init(&s->link);

    struct h2u_conn *uc = NULL;
    struct ebb_list *pos;
    for (pos = cl->h2conns.next; pos != &cl->h2conns; pos = pos->next) {
        struct h2u_conn *c2 = ebb_list_entry(pos, struct h2u_conn, link);
        if (h2u_conn_takes(c2, s)) {
            uc = c2;
            break;
        }
    }
    if (!uc)
        uc = h2u_conn_new(cl, w, s->dst);
    if (!uc || h2u_submit(uc, s) < 0)
        goto fail;
    ebb_stat_inc(cl->st->rq_total);
    h2u_kick(uc);
    return &s->base;

fail:
    ebb_nvlist_free(&nvl);
    h2u_stream_free(s);
    return NULL;
}

static size_t h2u_write(struct ebb_us *us, const void *p, size_t n)
{
    struct ebb_h2u_stream *s = (struct ebb_h2u_stream *)us;
    if (s->closed || s->req_end)
        return n;   /* nowhere to go: drop */
    size_t k = EBB_MIN(n, ebb_buf_room(&s->reqb));
    if (k == 0) {
        h2u_set_full(s);
        return 0;
    }
    if (ebb_buf_append(&s->reqb, p, k) < 0) {
        /* no storage: the owner keeps the bytes and hears on_writable from the next run,
         * so it tries again then (nothing is dropped) */
        h2u_set_full(s);
        h2u_kick(s->uc);
        return 0;
    }
    if (k < n)
        h2u_set_full(s);
    if (s->deferred && s->uc && s->id) {
        s->deferred = false;
        h2u_check(s->uc, nghttp2_session_resume_data(s->uc->ng, s->id));
    }
    h2u_kick(s->uc);
    return k;
}

static size_t h2u_writable(const struct ebb_us *us)
{
    const struct ebb_h2u_stream *s = (const struct ebb_h2u_stream *)us;
    if (s->closed || s->req_end)
        return 64 * 1024;   /* dropped anyway */
    size_t room = ebb_buf_room(&s->reqb);
    if (room == 0)
        h2u_set_full((struct ebb_h2u_stream *)us);
    return room;
}

static void h2u_end(struct ebb_us *us, const struct ebb_hdr *t, size_t n)
{
    struct ebb_h2u_stream *s = (struct ebb_h2u_stream *)us;
    if (s->req_end)
        return;
    s->req_end = true;
    if (n) {
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += t[i].name.len + t[i].value.len;
        s->tnv = calloc(n, sizeof(*s->tnv));
        s->tbuf = malloc(bytes ? bytes : 1);
        if (s->tnv && s->tbuf) {
            char *p = s->tbuf;
            for (size_t i = 0; i < n; i++) {
                memcpy(p, t[i].name.p, t[i].name.len);
                s->tnv[i] = (nghttp2_nv){ (uint8_t *)p, NULL, t[i].name.len, t[i].value.len, 0 };
                p += t[i].name.len;
                memcpy(p, t[i].value.p, t[i].value.len);
                s->tnv[i].value = (uint8_t *)p;
                p += t[i].value.len;
            }
            s->ntnv = n;
        }
    }
    if (s->deferred && s->uc && s->id) {
        s->deferred = false;
        h2u_check(s->uc, nghttp2_session_resume_data(s->uc->ng, s->id));
    }
    h2u_kick(s->uc);
}

static size_t h2u_read(struct ebb_us *us, void *out, size_t n)
{
    struct ebb_h2u_stream *s = (struct ebb_h2u_stream *)us;
    size_t k = EBB_MIN(n, ebb_buf_len(&s->respb));
    if (!k)
        return 0;
    memcpy(out, ebb_buf_start(&s->respb), k);
    ebb_buf_consume(&s->respb, k);
    h2u_window_back(s, k);
    return k;
}

static size_t h2u_readable(const struct ebb_us *us)
{
    return ebb_buf_len(&((const struct ebb_h2u_stream *)us)->respb);
}

static bool h2u_done(const struct ebb_us *us)
{
    const struct ebb_h2u_stream *s = (const struct ebb_h2u_stream *)us;
    return s->ended && ebb_buf_len(&s->respb) == 0;
}

static const char *h2u_addr(const struct ebb_us *us)
{
    const struct ebb_h2u_stream *s = (const struct ebb_h2u_stream *)us;
    return s->uc && s->uc->u ? s->uc->u->addr_str : NULL;
}

static struct ebb_upconn *h2u_take_conn(struct ebb_us *us) { return NULL; }

static void h2u_close(struct ebb_us *us)
{
    struct ebb_h2u_stream *s = (struct ebb_h2u_stream *)us;
    s->base.owner = NULL;
    h2u_drop_response(s);
    if (s->uc && !s->closed && s->id) {
        /* Still open upstream: the response has not ended, or the request has not (its end
         * may wait for a window the upstream, done answering, never opens).  Cancelled, or
         * it would hold the connection for good; one that cannot be cancelled closes the
         * connection instead (h2u_check). */
        h2u_check(s->uc, nghttp2_submit_rst_stream(s->uc->ng, NGHTTP2_FLAG_NONE, s->id,
                                                   NGHTTP2_CANCEL));
        h2u_kick(s->uc);
    }
    h2u_stream_maybe_free(s);
}

static const struct ebb_us_ops h2u_ops = {
    .name = "h2c",
    .write = h2u_write,
    .writable = h2u_writable,
    .end = h2u_end,
    .read = h2u_read,
    .readable = h2u_readable,
    .done = h2u_done,
    .addr = h2u_addr,
    .take_conn = h2u_take_conn,
    .close = h2u_close,
};

void ebb_h2u_close_all(struct ebb_cluster_rt *cl)
{
    h2u_list_init(cl);
    while (!ebb_list_empty(&cl->h2conns)) {
        struct h2u_conn *uc = ebb_list_entry(cl->h2conns.next, struct h2u_conn, link);
        h2u_conn_close(uc, EBB_RF_UC);
    }
}

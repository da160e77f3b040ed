/*
 * stream.h - one proxied exchange as its downstream codec sees it, whatever
 * protocol either side speaks (proto layer: the interface and the record).
 *
 * The exchange layer (src/proxy/stream.c) holds the decisions every request
 * goes through before it reaches an upstream (CONNECT, route, REGISTRY_ONLY,
 * body limit, rewrite, upstream open) and the answer when one says no, the
 * cluster's request timeout, and the record's access-log line.  A codec
 * reaches it through the struct ebb_xch_ops its worker gave it (c->w->xops,
 * wctx.h): the codec never calls up.  The codec keeps the framing: it parses,
 * writes heads and bodies, and moves bytes through e->us (ustream.h).
 *
 * Ownership: an ebb_xch is embedded in the codec's per-request state (the
 * HTTP/1 exchange, the HTTP/2 stream) and lives as long as it.  The
 * upstream side's callbacks reach the codec through the cbs given to
 * ebb_xch_init, after the exchange has seen them; the request timeout
 * arrives as on_error(EBB_RF_UT, 504).  Nothing here calls back
 * synchronously from a call of the codec.
 */
#ifndef EBB_STREAM_H
#define EBB_STREAM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/buf.h"
#include "ebb/conn.h"
#include "ebb/http.h"
#include "ebb/loop.h"
#include "ebb/upconn.h"
#include "ebb/wctx.h"

struct ebb_listener_stats;
struct ebb_us;
struct ebb_us_cbs;

/* --- the record of one exchange: what the stats and the access log need --- */

struct ebb_xrec {
    uint64_t    start_ms;
    long        cluster;        /* cluster index, -1 none */
    int         status;         /* 0 until a response (or a local answer) */
    unsigned    rf;             /* EBB_RF_* */
    uint64_t    req_bytes;      /* request body bytes */
    uint64_t    resp_bytes;     /* response body bytes */
    /* The strings live in one allocation per exchange (strs), so that an idle connection or
     * stream holds none; before ebb_xrec_begin (or when it could not allocate) the three
     * below are "" and the two writable ones NULL. */
    const char *method;         /* at most EBB_XREC_METHOD - 1 bytes */
    const char *path;           /* at most 511 bytes */
    const char *authority;      /* at most 255 bytes */
    char       *request_id;     /* EBB_XREC_RID bytes: x-request-id sent, "" none yet */
    char       *up_addr;        /* EBB_XREC_ADDR bytes: endpoint of the last upstream tried,
                                   "" none (for the log) */
    char       *strs;           /* owned (ebb_xrec_free) */
};

#define EBB_XREC_METHOD 24
#define EBB_XREC_RID    64
#define EBB_XREC_ADDR   48

/* An empty record (cluster -1, no strings). */
#define EBB_XREC_INIT ((struct ebb_xrec){ .cluster = -1, .method = "", .path = "", \
                                          .authority = "" })
/* Frees what x owns and makes it EBB_XREC_INIT. */
void ebb_xrec_free(struct ebb_xrec *x);

/* Starts a record at now_ms for the request line given (copied, truncated; the strings
 * are allocated to size, so an idle connection or stream holds none). */
void ebb_xrec_begin(struct ebb_xrec *x, uint64_t now_ms, struct ebb_str method,
                    struct ebb_str path, struct ebb_str authority);

/* Keeps addr (may be NULL) as the exchange's upstream endpoint, for the log. */
void ebb_xrec_upstream(struct ebb_xrec *x, const char *addr);

/* Sets the status and counts it in the listener's rq_xx. */
void ebb_xrec_status(struct ebb_xrec *x, struct ebb_listener_stats *st, int status);

/* Keeps response trailers as HTTP/1.1 field lines in b (replacing what was
 * there, at most 64 KiB) for a writer that sends them after the body.
 * Returns 0 (trailers over 64 KiB are dropped), or EBB_ENOMEM: then the
 * caller fails the exchange rather than end it without them. */
int ebb_trailers_keep(struct ebb_buf *b, const struct ebb_hdr *t, size_t n);

/* Formats a local answer's body into out (cap bytes, NUL-terminated, cut
 * when longer).  Returns its length. */
size_t ebb_xch_format(char *out, size_t cap, const char *fmt, va_list ap);

/* --- one exchange --- */

/* A local answer, given instead of an upstream response. */
struct ebb_answer {
    int      status;
    unsigned rf;         /* EBB_RF_* for the record */
    bool     close;      /* HTTP/1: close the connection after it */
    size_t   len;
    char     body[512];  /* text/plain, NUL-terminated */
};

/* Fills a with status, rf and the formatted body. */
void ebb_answer(struct ebb_answer *a, int status, unsigned rf, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

struct ebb_xch {
    struct ebb_xrec          x;       /* the record: request line, cluster, status, bytes, flags */
    struct ebb_us           *us;      /* the upstream side, NULL when none (yet, or any more) */
    struct ebb_conn         *c;
    const struct ebb_us_cbs *cbs;     /* the codec's */
    void                    *owner;   /* ... and their first argument */
    struct ebb_timer         timer;   /* the cluster's request_timeout */
    bool                     head_seen; /* the upstream's response head came: no timeout */
};

/* The exchange layer's half (src/proxy/stream.c), called through the wrappers below. */
struct ebb_xch_ops {
    void (*init)(struct ebb_xch *e, struct ebb_conn *c, const struct ebb_us_cbs *cbs,
                 void *owner);
    void (*begin)(struct ebb_xch *e, struct ebb_str method, struct ebb_str path,
                  struct ebb_str authority);
    int  (*start)(struct ebb_xch *e, const struct ebb_req *req, unsigned flags,
                  struct ebb_answer *a);
    void (*request_done)(struct ebb_xch *e);
    void (*failure)(const struct ebb_xch *e, unsigned rf, int status, struct ebb_answer *a);
    const char *(*cluster_name)(const struct ebb_xch *e);
    void (*release)(struct ebb_xch *e);
    void (*end)(struct ebb_xch *e, const char *protocol);
    /* TCP relays and tunnels (upconn.h) */
    int  (*tcp_connect)(struct ebb_conn *c, ebb_upconn_cb cb, void *owner,
                        struct ebb_upconn **out);
    void (*upconn_release)(struct ebb_upconn *u, bool reusable);
    bool (*capture_loop)(struct ebb_conn *c);
};

/* Before the first exchange: owner (the codec's request state) gets the upstream's
 * callbacks through cbs. */
static inline void ebb_xch_init(struct ebb_xch *e, struct ebb_conn *c,
                                const struct ebb_us_cbs *cbs, void *owner)
{
    c->w->xops->init(e, c, cbs, owner);
}

/* A request head arrived: starts the record (request line copied) and counts
 * the request on the listener (rq_total, rq_active). */
static inline void ebb_xch_begin(struct ebb_xch *e, struct ebb_str method, struct ebb_str path,
                                 struct ebb_str authority)
{
    e->c->w->xops->begin(e, method, path, authority);
}

/* Routes req and starts its upstream side (e->us); flags are ebb_us_open's
 * (EBB_US_F_*).  Returns 0, or -1 with the answer to give in *a: 501 for
 * CONNECT or an Upgrade towards an h2c cluster, 404 without a route, 502
 * under REGISTRY_ONLY, 413 for a declared body over max_request_body, 431
 * for too many fields, 503 when no upstream exchange could start. */
static inline int ebb_xch_start(struct ebb_xch *e, const struct ebb_req *req, unsigned flags,
                                struct ebb_answer *a)
{
    return e->c->w->xops->start(e, req, flags, a);
}

/* The whole request went upstream: the cluster's request_timeout runs from
 * here (Envoy's route timeout) until the response head. */
static inline void ebb_xch_request_done(struct ebb_xch *e) { e->c->w->xops->request_done(e); }

/* The answer for an upstream failure (on_error's rf and status). */
static inline void ebb_xch_failure(const struct ebb_xch *e, unsigned rf, int status,
                                   struct ebb_answer *a)
{
    e->c->w->xops->failure(e, rf, status, a);
}

/* The name of the cluster the request was routed to ("" before a route). */
static inline const char *ebb_xch_cluster_name(const struct ebb_xch *e)
{
    return e->c->w->xops->cluster_name(e);
}

/* Lets go of the upstream side (its endpoint stays in the record) and stops the timer. */
static inline void ebb_xch_release(struct ebb_xch *e) { e->c->w->xops->release(e); }

/* The exchange is over: its access-log line (protocol "HTTP/1.1", "HTTP/2")
 * and rq_active.  Once per ebb_xch_begin. */
static inline void ebb_xch_end(struct ebb_xch *e, const char *protocol)
{
    e->c->w->xops->end(e, protocol);
}

/* How long an exchange waits on its client (a body it does not send, an answer it does not
 * read) without a byte, at most: min(limits.idle_timeout, this), then 408 or a reset.  A
 * client that stops must not hold its connection and its upstream forever (SPEC §7; nginx's
 * client_body_timeout and send_timeout are 60 s). */
#define EBB_CLIENT_STALL_MS 60000

/* --- TCP relays (tcp.c) and tunnels after 101 (h1.c) --- */

/* Picks the upstream of the TCP connection c (its listener's cluster, or a
 * captured connection's built-in one) and opens a new connection to it (never
 * a pooled HTTP/1.1 one), as ebb_upstream_connect_to does: EBB_EAGAIN with
 * *out connecting (cb gets EBB_UP_EV_CONNECTED or _FAILED), 0 with *out
 * ready, or a negative error with *out NULL, logged: EBB_EINVAL when nothing
 * may be relayed (no cluster; BlackHoleCluster or a capture loop, counted there). */
static inline int ebb_xch_tcp_connect(struct ebb_conn *c, ebb_upconn_cb cb, void *owner,
                                      struct ebb_upconn **out)
{
    return c->w->xops->tcp_connect(c, cb, owner, out);
}

/* Gives an upstream connection back to its pool (ebb_upstream_release). */
static inline void ebb_xch_upconn_release(struct ebb_upconn *u, bool reusable)
{
    u->w->xops->upconn_release(u, reusable);
}

/* True when c was captured on its way to one of ebb's own listener ports (SPEC
 * §9.2): a capture loop, counted under BlackHoleCluster; the caller closes it. */
static inline bool ebb_xch_capture_loop(struct ebb_conn *c) { return c->w->xops->capture_loop(c); }

#endif

/*
 * upstream.h - upstream connections and the per-worker keep-alive pools.
 *
 * An upstream connection is owned by its cluster's pool while idle and
 * lent to one stream (the "owner") while busy; the owner gets its events
 * through one callback.  Endpoints are picked round robin.
 */
#ifndef EBB_UPSTREAM_H
#define EBB_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "ebb/buf.h"
#include "ebb/conn.h"
#include "ebb/list.h"
#include "ebb/loop.h"

struct ebb_cluster_rt;
struct ebb_wctx;
struct ebb_upconn;

/* Pseudo events delivered to the owner besides EBB_READ/EBB_WRITE. */
#define EBB_UP_EV_CONNECTED   (1u << 28)  /* connect finished; write the request */
#define EBB_UP_EV_FAILED      (1u << 29)  /* connect failed or timed out (u->err) */

typedef void (*ebb_upconn_cb)(void *owner, struct ebb_upconn *u, uint32_t events);

enum ebb_upconn_state {
    EBB_UP_CONNECTING = 0,  /* non-blocking connect in progress, owned by a stream */
    EBB_UP_BUSY,            /* connected, lent to a stream */
    EBB_UP_IDLE,            /* connected, in the pool */
    EBB_UP_CLOSED,          /* closed, free pending */
};

struct ebb_upconn {
    struct ebb_io          io;        /* socket */
    struct ebb_cluster_rt *cl;        /* cluster runtime (pool owner) */
    struct ebb_wctx       *w;
    struct ebb_list        link;      /* in cl->idle while IDLE */
    enum ebb_upconn_state  state;
    struct ebb_buf         rbuf;      /* bytes from the upstream */
    struct ebb_buf         wbuf;      /* bytes to the upstream */
    struct ebb_timer       timer;     /* connect timeout, or pool idle timeout */
    ebb_upconn_cb          cb;        /* owner's callback while CONNECTING/BUSY */
    void                  *owner;
    int                    err;       /* EBB_ECONNREFUSED / EBB_ETIMEDOUT / EBB_EIO on failure */
    bool                   reused;    /* came from the pool */
    bool                   eof;       /* upstream closed its write side, or reset (then also reset) */
    bool                   reset;     /* a read failed (RST): a close-delimited body is truncated */
    bool                   wr_failed; /* a write failed: request bytes are dropped, never reused */
    uint32_t               nrequests; /* requests sent over this connection */
    uint64_t               idle_since_ms; /* when it last went back to the pool */
    const char            *addr_str;  /* "host:port" of the endpoint (or dst_str) */
    union ebb_sockaddr     dst;       /* where it is connected; the pool's key */
    char                   dst_str[48]; /* "ip:port" / "[ip6]:port" of an original destination */
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

/* Lends a connection of cluster cl to owner.  Returns 0 with *out BUSY
 * (reused from the pool, ready to write), EBB_EAGAIN with *out CONNECTING
 * (owner gets EBB_UP_EV_CONNECTED or EBB_UP_EV_FAILED later), or a negative
 * error when no socket could be started (*out NULL). */
int ebb_upstream_acquire(struct ebb_cluster_rt *cl, struct ebb_wctx *w, ebb_upconn_cb cb,
                         void *owner, struct ebb_upconn **out);

/* The same for a connection to dst instead of one of the cluster's endpoints (the original
 * destination of a captured connection, SPEC §9): the pool gives out only connections to
 * dst, and the socket is bound to the cluster's source address if it has one. */
int ebb_upstream_acquire_to(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const union ebb_sockaddr *dst, ebb_upconn_cb cb, void *owner,
                            struct ebb_upconn **out);

/* Gives u back.  reusable: the exchange ended cleanly and the connection
 * may carry another request; else it is closed.  The owner must not touch
 * u afterwards.  Never calls back. */
void ebb_upstream_release(struct ebb_upconn *u, bool reusable);

/* Sets the upstream socket interest. */
void ebb_upstream_want(struct ebb_upconn *u, uint32_t events);

/* Reads into u->rbuf / writes u->wbuf; same returns as ebb_buf_*_fd.  A read
 * sets u->eof on EOF, and u->eof and u->reset on an error. */
ssize_t ebb_upstream_read(struct ebb_upconn *u);
int ebb_upstream_flush(struct ebb_upconn *u);

/* Reads what the socket has (a few reads at most, stopping at a short one),
 * with ebb_upstream_read's eof/reset marks. */
void ebb_upstream_read_some(struct ebb_upconn *u);

/* Writes u->wbuf.  A failed write means the upstream stopped reading: its
 * bytes are dropped and u->wr_failed set, but reading goes on, since an
 * answer it sent before closing (413, 401) may still be there. */
void ebb_upstream_send(struct ebb_upconn *u);

/* Closes every idle pooled connection of the worker (at exit). */
void ebb_upstream_close_idle(struct ebb_cluster_rt *cl);

#endif

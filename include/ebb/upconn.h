/*
 * upconn.h - an upstream connection (net layer): its socket, its two
 * buffers, its owner's callback, and the reads and writes every owner uses.
 * The pools that lend and take back these connections are the exchange
 * layer's (upstream.h); an owner below that layer gives one back through
 * the exchange layer's ops (stream.h).
 */
#ifndef EBB_UPCONN_H
#define EBB_UPCONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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

/* Sets the upstream socket interest.  Returns 0, or EBB_EIO when epoll_ctl failed (counted in
 * server.exchanges_failed_resource): the owner must give the connection up, nothing would
 * wake it. */
int ebb_upstream_want(struct ebb_upconn *u, uint32_t events);

/* Reads into u->rbuf / writes u->wbuf; same returns as ebb_buf_*_fd.  A read
 * sets u->eof on EOF, and u->eof and u->reset on an error. */
ssize_t ebb_upstream_read(struct ebb_upconn *u);
int ebb_upstream_flush(struct ebb_upconn *u);
/* recv(2) of up to n bytes into p, past u->rbuf (a body read straight into its owner's
 * buffer).  Returns bytes (> 0), 0 on EOF or EBB_EAGAIN, or EBB_EIO; the same eof/reset
 * marks as ebb_upstream_read. */
ssize_t ebb_upstream_recv(struct ebb_upconn *u, void *p, size_t n);
/* True when the socket holds no byte and no EOF (a peek): after a message read past u->rbuf,
 * bytes beyond its end mean the connection cannot be reused. */
bool ebb_upstream_quiet(struct ebb_upconn *u);

/* Reads what the socket has (a few reads at most, stopping at a short one),
 * with ebb_upstream_read's eof/reset marks. */
void ebb_upstream_read_some(struct ebb_upconn *u);

/* Writes u->wbuf.  A failed write means the upstream stopped reading: its
 * bytes are dropped and u->wr_failed set, but reading goes on, since an
 * answer it sent before closing (413, 401) may still be there. */
void ebb_upstream_send(struct ebb_upconn *u);

#endif

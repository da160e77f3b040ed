/*
 * conn.h - a downstream connection (net layer, src/net/conn.c): its socket,
 * its two bounded buffers, its staged close, and the ops table of the
 * protocol codec that runs on it.
 *
 * Ownership: a listener owns the connections it accepted (l->conns); a
 * connection owns its codec state (c->codec) and its buffers.  A closed
 * connection is freed after the loop iteration in which it was closed.
 */
#ifndef EBB_CONN_H
#define EBB_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "ebb/buf.h"
#include "ebb/list.h"
#include "ebb/loop.h"

/* An IPv4 or IPv6 socket address, without sockaddr_storage's 128 bytes. */
union ebb_sockaddr {
    struct sockaddr     sa;
    struct sockaddr_in  in;
    struct sockaddr_in6 in6;
};

/* getsockopt(SOL_IP / SOL_IPV6) of a REDIRECTed connection's original destination
 * (linux/netfilter_ipv4.h SO_ORIGINAL_DST, ip6_tables.h IP6T_SO_ORIGINAL_DST). */
#define EBB_SO_ORIGINAL_DST 80

struct ebb_conn;
struct ebb_listener;
struct ebb_wctx;

/* The per-protocol half of a downstream connection.  The listener, the
 * worker's drain and the net layer only ever call these. */
struct ebb_codec_ops {
    const char *name;                              /* "h1", "h2", "tcp" */
    int  (*init)(struct ebb_conn *c);              /* after accept; 0 or error (conn closed) */
    void (*on_io)(struct ebb_conn *c, uint32_t events); /* downstream fd ready */
    void (*drain)(struct ebb_conn *c);             /* the listener started draining */
    void (*destroy)(struct ebb_conn *c);           /* free codec state, release upstreams */
};

/* Connection flags. */
#define EBB_CONN_F_DRAINING   0x01u   /* drain started for this connection */
#define EBB_CONN_F_CLOSING    0x02u   /* staged close in progress */
#define EBB_CONN_F_FREED      0x04u   /* destroy scheduled; ignore further events */
#define EBB_CONN_F_FORCED     0x08u   /* closed by exit, not gracefully */
#define EBB_CONN_F_REDIRECTED 0x10u   /* captured by iptables: orig_dst is where it was going */
#define EBB_CONN_F_IOFAIL     0x20u   /* setting its epoll interest failed: closing (with RST) */

/* A downstream connection.  Owned by its listener; freed after the loop
 * iteration in which it was closed. */
struct ebb_conn {
    struct ebb_io        io;          /* downstream socket */
    struct ebb_listener *l;           /* accepting listener (owner); its loop runs c */
    struct ebb_wctx     *w;           /* l's worker as the data plane sees it (wctx.h) */
    const struct ebb_codec_ops *ops;  /* protocol codec */
    void                *codec;       /* codec state, owned */
    struct ebb_list      link;        /* in l->conns */
    uint64_t             id;          /* process-unique, for logs */
    unsigned             flags;       /* EBB_CONN_F_* */
    union ebb_sockaddr   peer;        /* client address */
    char                 peer_str[46];/* "ip" for logs and x-forwarded-for (INET6_ADDRSTRLEN) */
    struct ebb_buf       rbuf;        /* bytes read from the client, not yet used */
    struct ebb_buf       wbuf;        /* bytes waiting to be written to the client */
    struct ebb_timer     close_timer; /* the deadline of a close: the codec's (ebb_conn_codec_timer)
                                         until a close starts, then the staged close's linger */
    uint64_t             accepted_ms; /* accept time */
    union ebb_sockaddr   orig_dst;    /* with EBB_CONN_F_REDIRECTED: the original destination */
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

/* True when a and b are the same address and port. */
bool ebb_sockaddr_same(const union ebb_sockaddr *a, const union ebb_sockaddr *b);
/* "ip:port" or "[ip6]:port" (at most 48 bytes with the NUL). */
void ebb_sockaddr_str(const union ebb_sockaddr *a, char *out, size_t len);

/* Reads into c->rbuf.  Returns >0, 0 on EOF, EBB_EAGAIN, EBB_ETOOBIG, EBB_EIO. */
ssize_t ebb_conn_read(struct ebb_conn *c);
/* Writes c->wbuf.  Returns 0 (all written or would block) or EBB_EIO. */
int ebb_conn_flush(struct ebb_conn *c);
/* Graceful close per RFC 9112 §9.6: destroy the codec state, flush wbuf,
 * shutdown(SHUT_WR), read and discard until EOF or the listener's linger
 * time, then close.  Idempotent. */
void ebb_conn_close_staged(struct ebb_conn *c);
/* Immediate close; with reset, SO_LINGER 0 so the peer sees RST.  Calls
 * c->ops->destroy and the listener's conn_closed hook; the memory is freed
 * after the loop iteration.  Idempotent. */
void ebb_conn_close(struct ebb_conn *c, bool reset);
/* Sets the downstream interest (EBB_READ|EBB_WRITE); no-op once closed.  When epoll_ctl
 * fails the connection is reset from a zero-delay timer (counted in
 * server.exchanges_failed_resource): the caller's handler finishes first. */
void ebb_conn_want(struct ebb_conn *c, uint32_t events);
/* Arms the connection's close timer for its codec: cb runs (t->data = data) after ms, unless
 * the connection is closing by then.  For a close the codec decides on its own time (the
 * drain's idle close): one timer less in every idle connection.  A close that starts takes
 * the timer over; ebb_conn_codec_timer_stop before that (the codec's destroy). */
void ebb_conn_codec_timer(struct ebb_conn *c, uint64_t ms, ebb_timer_cb cb, void *data);
void ebb_conn_codec_timer_stop(struct ebb_conn *c);
/* True once the connection is closed: callers stop processing. */
static inline bool ebb_conn_dead(const struct ebb_conn *c)
{
    return (c->flags & (EBB_CONN_F_FREED)) != 0;
}

#endif

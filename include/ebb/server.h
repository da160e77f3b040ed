/*
 * server.h - the running sidecar: workers, listeners, downstream
 * connections, and the codec ops table the drain controller talks through.
 *
 * Ownership: the server owns workers; a worker owns its loop, its copy of
 * every data-plane listener (SO_REUSEPORT) and its upstream pools; a
 * listener owns the downstream connections it accepted; a connection owns
 * its codec state; a codec's stream holds a reference to an upstream
 * connection lent by the pool.
 */
#ifndef EBB_SERVER_H
#define EBB_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ebb/buf.h"
#include "ebb/config.h"
#include "ebb/list.h"
#include "ebb/loop.h"
#include "ebb/stats.h"

struct ebb_conn;
struct ebb_worker;
struct ebb_server;
struct ebb_pool;

/* Server-wide state (SPEC §3.1; numbering is Envoy's server.state). */
enum ebb_state {
    EBB_STATE_LIVE = 0,      /* serving, ready */
    EBB_STATE_DRAINING = 1,  /* draining inbound (or all) listeners */
};

/* Commands the control thread posts to workers (bit mask). */
#define EBB_CMD_DRAIN_INBOUND    0x01u  /* start draining inbound connections */
#define EBB_CMD_DRAIN_OUTBOUND   0x02u  /* start draining outbound connections */
#define EBB_CMD_STOP_INBOUND     0x04u  /* close inbound listening sockets */
#define EBB_CMD_STOP_OUTBOUND    0x08u  /* close outbound listening sockets */
#define EBB_CMD_EXIT             0x10u  /* close everything and stop the loop */

/* The per-protocol half of a downstream connection.  The drain controller
 * and the listener only ever call these. */
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

/* A downstream connection.  Owned by its listener; freed after the loop
 * iteration in which it was closed. */
struct ebb_conn {
    struct ebb_io        io;          /* downstream socket */
    struct ebb_listener *l;           /* accepting listener (owner) */
    struct ebb_worker   *w;           /* worker whose loop runs it */
    const struct ebb_codec_ops *ops;  /* protocol codec */
    void                *codec;       /* codec state, owned */
    struct ebb_list      link;        /* in l->conns */
    uint64_t             id;          /* process-unique, for logs */
    unsigned             flags;       /* EBB_CONN_F_* */
    struct sockaddr_storage peer;     /* client address */
    char                 peer_str[64];/* "ip" for logs and x-forwarded-for */
    struct ebb_buf       rbuf;        /* bytes read from the client, not yet used */
    struct ebb_buf       wbuf;        /* bytes waiting to be written to the client */
    struct ebb_timer     close_timer; /* staged-close linger deadline */
    uint64_t             accepted_ms; /* accept time */
};

/* One listening socket in one worker. */
struct ebb_listener {
    struct ebb_io               io;     /* listening socket, fd -1 once stopped */
    const struct ebb_listener_cfg *cfg;
    size_t                      idx;    /* index in cfg->listeners and stats */
    struct ebb_worker          *w;
    struct ebb_listener_stats  *st;
    struct ebb_list             conns;  /* struct ebb_conn.link */
    bool                        draining; /* drain started on this listener */
    struct ebb_timer            accept_pause; /* accept resumes after running out of fds */
};

/* One upstream cluster's per-worker runtime. */
struct ebb_cluster_rt {
    const struct ebb_cluster_cfg *cfg;
    struct ebb_cluster_stats     *st;
    struct ebb_sockaddr_list     *addrs;  /* resolved endpoints (shared, read-only) */
    size_t                        rr;     /* round-robin cursor */
    struct ebb_list               idle;   /* idle pooled upstream connections */
    uint32_t                      nidle;
    struct ebb_list               h2conns; /* upstream h2c connections (h2_upstream.c); zeroed = empty */
    struct ebb_list               h2_waiting; /* h2 streams waiting for an h1 connection (h2.c); zeroed = empty */
    uint32_t                      h2_h1_busy; /* h1 connections lent to h2 streams (h2.c) */
};

struct ebb_worker {
    int                   id;
    pthread_t             thread;
    struct ebb_loop      *loop;
    struct ebb_server    *srv;
    struct ebb_async      wake;       /* commands from the control thread */
    _Atomic unsigned      cmds;       /* EBB_CMD_* posted, not yet handled */
    unsigned              done_cmds;  /* EBB_CMD_* already applied */
    struct ebb_listener  *listeners;  /* one per cfg listener */
    size_t                nlisteners;
    struct ebb_cluster_rt *clusters;  /* one per cfg cluster */
    size_t                nclusters;
    uint32_t              rand_state; /* xorshift for idle-close spread, request ids */
    uint64_t              drain_started_ms;
};

/* Resolved endpoint addresses of a cluster. */
struct ebb_sockaddr_list {
    size_t n;
    struct {
        struct sockaddr_storage sa;
        socklen_t               len;
        char                    str[80];   /* "host:port" */
    } a[];
};

/* The whole process. */
struct ebb_server {
    struct ebb_config   *cfg;
    struct ebb_stats    *stats;
    struct ebb_worker   *workers;
    size_t               nworkers;
    struct ebb_sockaddr_list **addrs;  /* per cluster */
    _Atomic int          state;        /* enum ebb_state */
    _Atomic int64_t      active_cx;    /* active downstream connections, data-plane listeners */
    _Atomic bool         watch_zero;   /* control thread wants to hear when active_cx hits 0 */
    struct ebb_async    *zero_notify;  /* control thread's wakeup for watch_zero */
    _Atomic uint64_t     next_conn_id;
    uint64_t             start_ms;
    bool                 ready;        /* every listener bound */
    int                  argc;
    char               **argv;
    struct ebb_control  *ctl;          /* control-thread state (admin, drain) */
};

/* --- listener.c --- */
/* Creates a bound, listening, non-blocking socket (SO_REUSEPORT when
 * reuseport).  Returns the fd or a negative EBB_E*; err gets a message. */
int ebb_listen_socket(const char *addr, uint16_t port, bool reuseport, char *err, size_t errlen);
/* Starts accepting on l (already has io.fd). */
int ebb_listener_start(struct ebb_listener *l);
/* Closes the listening socket; existing connections are untouched. */
void ebb_listener_stop(struct ebb_listener *l);

/* --- conn.c --- */
/* Reads into c->rbuf.  Returns >0, 0 on EOF, EBB_EAGAIN, EBB_ETOOBIG, EBB_EIO. */
ssize_t ebb_conn_read(struct ebb_conn *c);
/* Writes c->wbuf.  Returns 0 (all written or would block) or EBB_EIO. */
int ebb_conn_flush(struct ebb_conn *c);
/* Graceful close per RFC 9112 §9.6: flush wbuf, shutdown(SHUT_WR), read and
 * discard until EOF or linger timeout, then close.  Idempotent. */
void ebb_conn_close_staged(struct ebb_conn *c);
/* Immediate close; with reset, SO_LINGER 0 so the peer sees RST. */
void ebb_conn_close(struct ebb_conn *c, bool reset);
/* Sets the downstream interest (EBB_READ|EBB_WRITE). */
void ebb_conn_want(struct ebb_conn *c, uint32_t events);
/* True once the connection is closing or closed: callers stop processing. */
static inline bool ebb_conn_dead(const struct ebb_conn *c)
{
    return (c->flags & (EBB_CONN_F_FREED)) != 0;
}

/* --- server.c --- */
/* Builds the server from cfg (resolves endpoints, binds every listener
 * socket).  Returns 0 or EBB_E* with a message in err. */
int ebb_server_init(struct ebb_server *srv, struct ebb_config *cfg, char *err, size_t errlen);
/* Starts the worker threads. */
int ebb_server_start(struct ebb_server *srv);
/* Posts cmds to every worker. */
void ebb_server_post(struct ebb_server *srv, unsigned cmds);
/* Joins worker threads (after EBB_CMD_EXIT). */
void ebb_server_join_threads(struct ebb_server *srv);
/* Frees the runtime (after ebb_server_join_threads). */
void ebb_server_free(struct ebb_server *srv);
/* Called by workers when a data-plane connection is closed. */
void ebb_server_conn_gone(struct ebb_server *srv);
/* Returns the current state (relaxed). */
static inline int ebb_server_state(struct ebb_server *srv)
{
    return atomic_load_explicit(&srv->state, memory_order_relaxed);
}
/* Small xorshift PRNG of a worker. */
uint32_t ebb_worker_rand(struct ebb_worker *w);

/* The codecs. */
extern const struct ebb_codec_ops ebb_h1_codec;
extern const struct ebb_codec_ops ebb_tcp_codec;
extern const struct ebb_codec_ops ebb_h2_codec;   /* h2.h */

#endif

/*
 * listener.h - listening sockets and accept (net layer, src/net/listener.c).
 *
 * Each worker has its own socket per data-plane listener (SO_REUSEPORT).
 * The net layer never reaches up: whoever sets a listener up (the worker
 * runtime) gives it its loop, the codec of its connections and a shared
 * struct ebb_listener_env with the connection settings and two hooks.
 *
 * Ownership: the worker owns its listeners; a listener owns the
 * connections it accepted; the env is owned by the server runtime and
 * outlives every listener.
 */
#ifndef EBB_LISTENER_H
#define EBB_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/conn.h"
#include "ebb/list.h"
#include "ebb/loop.h"

struct ebb_listener_cfg;
struct ebb_listener_stats;

/* What every listener of the process shares; read-only once listening. */
struct ebb_listener_env {
    size_t    rbuf_max;    /* ceiling of a connection's read buffer */
    size_t    wbuf_max;    /* ceiling of a connection's write buffer */
    uint64_t  linger_ms;   /* staged close: read-and-discard time after FIN */
    /* A connection was accepted: counts it, returns its process-unique id
     * (> 0).  Called on the accepting worker's thread. */
    uint64_t (*conn_opened)(void *owner);
    /* A connection was closed (once per accepted connection).  May wake
     * another thread; never calls back into the net layer. */
    void     (*conn_closed)(void *owner);
    void     *owner;       /* passed to both hooks (the server) */
};

/* One listening socket in one worker. */
struct ebb_listener {
    struct ebb_io               io;     /* listening socket, fd -1 once stopped */
    const struct ebb_listener_cfg *cfg; /* name and max_connections; the rest is the codecs' */
    size_t                      idx;    /* index in cfg->listeners and stats */
    struct ebb_wctx            *w;      /* owning worker, as the data plane sees it (wctx.h) */
    struct ebb_loop            *loop;   /* the worker's loop: runs l and its connections */
    const struct ebb_codec_ops *ops;    /* codec of accepted connections */
    const struct ebb_codec_ops *captured_ops; /* ... of those iptables redirected here */
    const struct ebb_listener_env *env; /* shared settings and hooks */
    struct ebb_listener_stats  *st;     /* listener.<name>.* counters (this worker's) */
    _Atomic int64_t            *open;   /* connections open on this listener in every worker */
    struct ebb_list             conns;  /* struct ebb_conn.link */
    bool                        draining; /* drain started on this listener */
    struct ebb_timer            accept_pause; /* accept resumes after running out of fds */
};

/* Creates a bound, listening, non-blocking socket (SO_REUSEPORT when
 * reuseport).  Returns the fd or a negative EBB_E*; err gets a message. */
int ebb_listen_socket(const char *addr, uint16_t port, bool reuseport, char *err, size_t errlen);
/* Starts accepting on l (io.fd, loop, ops, env and st set).  0 or EBB_EIO. */
int ebb_listener_start(struct ebb_listener *l);
/* Makes the connected socket fd (accepted from sa, sl bytes) a connection of l and starts
 * its codec: what accept does after accept4(), also the seam the fuzz drivers feed a
 * socketpair through.  Returns the connection, or NULL when it was closed (fd too). */
struct ebb_conn *ebb_listener_adopt(struct ebb_listener *l, int fd, const struct sockaddr *sa,
                                    socklen_t sl);
/* Closes the listening socket; existing connections are untouched.
 * Harmless on a listener never set up (loop NULL) or already stopped. */
void ebb_listener_stop(struct ebb_listener *l);
/* Accepts every connection the listening socket holds (the kernel finished their handshakes
 * and their clients may have sent a request), then ebb_listener_stop().  Before an exit that
 * must cut nothing: closing a listening socket resets what it holds. */
void ebb_listener_quiesce(struct ebb_listener *l);

#endif

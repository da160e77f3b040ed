/*
 * server.h - the running sidecar (control layer, src/control/server.c):
 * builds the worker runtime from the config, starts and stops the worker
 * threads, and keeps the process-wide state the drain controller and the
 * admin API read.
 *
 * Ownership: the server owns its workers (worker.h), the resolved endpoint
 * lists of every cluster (cluster.h) and the stats; it does not own the
 * config or the control-thread state it points at.
 */
#ifndef EBB_SERVER_H
#define EBB_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/config.h"
#include "ebb/listener.h"
#include "ebb/stats.h"
#include "ebb/worker.h"

struct ebb_async;
struct ebb_control;
struct ebb_sockaddr_list;

/* Server-wide state (SPEC §3.1; numbering is Envoy's server.state). */
enum ebb_state {
    EBB_STATE_LIVE = 0,      /* serving, ready */
    EBB_STATE_DRAINING = 1,  /* draining inbound (or all) listeners */
};

/* The whole process. */
struct ebb_server {
    struct ebb_config   *cfg;          /* not owned */
    struct ebb_stats    *stats;        /* the control thread's sum of the workers' (ebb_server_stats) */
    _Atomic int64_t     *listener_open;/* per listener: its connections in every worker (max_connections) */
    struct ebb_worker   *workers;      /* nworkers of them */
    size_t               nworkers;
    struct ebb_sockaddr_list **addrs;  /* per cluster, shared by the workers' cluster runtimes */
    struct ebb_listener_env lenv;      /* what every data-plane listener shares */
    _Atomic int          state;        /* enum ebb_state */
    _Atomic int64_t      active_cx;    /* active downstream connections, data-plane listeners */
    _Atomic bool         watch_zero;   /* control thread wants to hear when active_cx hits 0 */
    struct ebb_async    *zero_notify;  /* control thread's wakeup for watch_zero */
    _Atomic size_t       quiesced;     /* workers that applied EBB_CMD_QUIESCE */
    _Atomic uint64_t     next_conn_id; /* last connection id handed out */
    uint64_t             start_ms;
    bool                 ready;        /* every listener bound */
    bool                 one_thread;   /* one worker, whose loop the control thread runs as
                                          its own: no second thread (ebb_server_init) */
    int                  argc;
    char               **argv;
    struct ebb_control  *ctl;          /* control-thread state (admin, drain), not owned */
};

/* Builds the server from cfg (resolves endpoints, binds every listener
 * socket).  Returns 0 or EBB_E* with a message in err. */
int ebb_server_init(struct ebb_server *srv, struct ebb_config *cfg, char *err, size_t errlen);
/* The workers' stats summed into srv->stats, which it returns.  Control
 * thread only (the snapshot is overwritten by the next call). */
struct ebb_stats *ebb_server_stats(struct ebb_server *srv);
/* Starts the worker threads (with one_thread: arms the worker, whose loop then runs in
 * ebb_control_run).  0 or EBB_EIO. */
int ebb_server_start(struct ebb_server *srv);
/* Posts cmds (EBB_CMD_*, worker.h) to every worker. */
void ebb_server_post(struct ebb_server *srv, unsigned cmds);
/* Joins worker threads (after EBB_CMD_EXIT); with one_thread, runs the worker's loop until
 * the command has been applied. */
void ebb_server_join_threads(struct ebb_server *srv);
/* Frees the runtime (after ebb_server_join_threads), also a partial one. */
void ebb_server_free(struct ebb_server *srv);
/* Returns the current state (relaxed). */
static inline int ebb_server_state(struct ebb_server *srv)
{
    return atomic_load_explicit(&srv->state, memory_order_relaxed);
}

#endif

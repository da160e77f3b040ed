/*
 * worker.h - one worker thread (control layer, src/control/worker.c): an
 * event loop with its own SO_REUSEPORT socket for every data-plane
 * listener and its own upstream pools.  The control thread talks to a
 * worker only by posting EBB_CMD_* bits (ebb_worker_post()).
 *
 * Ownership: the server owns its workers; a worker owns its loop, its
 * listeners (and through them their connections) and its cluster
 * runtimes (and through them the pooled upstream connections).
 */
#ifndef EBB_WORKER_H
#define EBB_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/cluster.h"
#include "ebb/listener.h"
#include "ebb/loop.h"
#include "ebb/wctx.h"

struct ebb_server;

/* Commands the control thread posts to workers (bit mask). */
#define EBB_CMD_DRAIN_INBOUND    0x01u  /* start draining inbound connections */
#define EBB_CMD_DRAIN_OUTBOUND   0x02u  /* start draining outbound connections */
#define EBB_CMD_STOP_INBOUND     0x04u  /* close inbound listening sockets */
#define EBB_CMD_STOP_OUTBOUND    0x08u  /* close outbound listening sockets */
#define EBB_CMD_EXIT             0x10u  /* close everything and stop the loop */
#define EBB_CMD_QUIESCE          0x20u  /* exit-on-zero: take what every listening socket holds,
                                           close them all, count it in srv->quiesced */

struct ebb_worker {
    int                   id;         /* 0..nworkers-1, in the thread name */
    pthread_t             thread;     /* unset with srv->one_thread */
    struct ebb_wctx       ctx;        /* what its listeners, connections and pools see (wctx.h) */
    struct ebb_server    *srv;        /* owner */
    struct ebb_async      wake;       /* commands from the control thread */
    struct ebb_timer      log_flush;  /* hands the access-log buffer over once a second */
    _Atomic unsigned      cmds;       /* EBB_CMD_* posted, not yet handled */
    unsigned              done_cmds;  /* EBB_CMD_* already applied */
    struct ebb_listener  *listeners;  /* one per cfg listener */
    size_t                nlisteners;
};

/* Sets up worker id of srv (srv->cfg, stats, addrs and listener env set):
 * its loop, a bound socket for every listener, its cluster runtimes.  On
 * failure returns EBB_E* with a message in err; ebb_worker_free() undoes
 * the part that was done. */
int ebb_worker_init(struct ebb_worker *w, struct ebb_server *srv, int id, char *err,
                    size_t errlen);
/* Arms the command wakeup and the listeners, then starts the thread (not with
 * srv->one_thread: ebb_worker_join() runs the loop then).  0 or EBB_EIO. */
int ebb_worker_start(struct ebb_worker *w);
/* Posts cmds (EBB_CMD_*) to w; thread-safe. */
void ebb_worker_post(struct ebb_worker *w, unsigned cmds);
/* Waits for the thread to end (after EBB_CMD_EXIT); with srv->one_thread, runs the
 * loop on the caller's thread until that command stops it. */
void ebb_worker_join(struct ebb_worker *w);
/* Frees what ebb_worker_init() set up, also a partial or zeroed worker
 * (after ebb_worker_join() when the thread ran). */
void ebb_worker_free(struct ebb_worker *w);

#endif

/*
 * worker.c - the worker runtime: one thread and one event loop per worker,
 * each with its own SO_REUSEPORT socket for every data-plane listener and
 * its own upstream pools.  The control thread talks to a worker only by
 * posting EBB_CMD_* bits and waking its loop (worker_wake()).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "ebb/codecs.h"
#include "ebb/core.h"
#include "ebb/exchange.h"
#include "ebb/h2.h"
#include "ebb/log.h"
#include "ebb/proxy.h"
#include "ebb/server.h"
#include "ebb/upstream.h"
#include "ebb/worker.h"

/* Binds w's socket for every data-plane listener.  0 or EBB_EIO. */
static int worker_listeners_init(struct ebb_worker *w, char *err, size_t errlen)
{
    struct ebb_server *srv = w->srv;
    const struct ebb_config *cfg = srv->cfg;

    w->nlisteners = cfg->nlisteners;
    w->listeners = ebb_xcalloc(cfg->nlisteners, sizeof(*w->listeners));
    for (size_t j = 0; j < cfg->nlisteners; j++)
        w->listeners[j].io.fd = -1;
    for (size_t j = 0; j < cfg->nlisteners; j++) {
        struct ebb_listener *l = &w->listeners[j];
        const struct ebb_listener_cfg *lc = &cfg->listeners[j];
        l->cfg = lc;
        l->idx = j;
        l->w = &w->ctx;
        l->loop = w->ctx.loop;
        l->ops = lc->protocol == EBB_PROTO_TCP ? &ebb_tcp_codec : &ebb_h1_codec;
        /* a captured connection on an http listener may be anything (SPEC §9.2) */
        l->captured_ops = lc->protocol == EBB_PROTO_TCP ? &ebb_tcp_codec : &ebb_sniff_codec;
        l->env = &srv->lenv;
        l->st = &w->ctx.stats->listeners[j];
        l->open = &srv->listener_open[j];
        ebb_list_init(&l->conns);
        l->io.fd = ebb_listen_socket(lc->address, lc->port, true, err, errlen);
        if (l->io.fd < 0) {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "listener \"%s\": %s", lc->name, err);
            snprintf(err, errlen, "%s", tmp);
            return EBB_EIO;
        }
    }
    return 0;
}

/* The upstream source address of a cluster that has one (the built-in inbound passthrough
 * clusters: 127.0.0.6, ::6), parsed once. */
static void cluster_source(struct ebb_cluster_rt *cl)
{
    const char *a = cl->cfg->bind_address;

    if (!a)
        return;
    if (inet_pton(AF_INET, a, &cl->source.in.sin_addr) == 1)
        cl->source.in.sin_family = AF_INET;
    else if (inet_pton(AF_INET6, a, &cl->source.in6.sin6_addr) == 1)
        cl->source.in6.sin6_family = AF_INET6;
}

int ebb_worker_init(struct ebb_worker *w, struct ebb_server *srv, int id, char *err,
                    size_t errlen)
{
    const struct ebb_config *cfg = srv->cfg;

    w->id = id;
    w->srv = srv;
    w->ctx.cfg = cfg;
    w->ctx.xops = &ebb_xch_ops;
    w->ctx.rand_state = (uint32_t)(ebb_now_us() ^ (0x9e3779b9u * (uint32_t)(id + 1))) | 1u;
    w->wake.io.fd = -1;
    w->ctx.stats = ebb_stats_new(cfg);
    w->ctx.loop = ebb_loop_new();
    if (!w->ctx.loop) {
        snprintf(err, errlen, "cannot create event loop: %s", strerror(errno));
        return EBB_EIO;
    }
    ebb_loop_set_data(w->ctx.loop, w);
    if (worker_listeners_init(w, err, errlen) < 0)
        return EBB_EIO;
    w->ctx.nclusters = cfg->nclusters;
    w->ctx.clusters = ebb_xcalloc(cfg->nclusters, sizeof(*w->ctx.clusters));
    for (size_t j = 0; j < cfg->nclusters; j++) {
        struct ebb_cluster_rt *cl = &w->ctx.clusters[j];
        cl->cfg = &cfg->clusters[j];
        cl->st = &w->ctx.stats->clusters[j];
        cl->addrs = srv->addrs[j];
        cl->rr = (size_t)id;   /* spread workers over the endpoints */
        ebb_list_init(&cl->idle);
        cluster_source(cl);
    }
    return 0;
}

static void worker_close_conns(struct ebb_listener *l, bool forced)
{
    struct ebb_list *pos, *tmp;
    ebb_list_for_each_safe(pos, tmp, &l->conns) {
        struct ebb_conn *c = ebb_list_entry(pos, struct ebb_conn, link);
        bool cut = forced && !(c->flags & EBB_CONN_F_CLOSING);
        if (cut) {
            c->flags |= EBB_CONN_F_FORCED;   /* codecs log what this cuts as DR */
            ebb_stat_inc(l->w->stats->server.drain_forced_close);
        }
        /* what a forced exit cuts must look cut: an RST, never a FIN that ends a
         * close-delimited body as if it were complete (issue 13) */
        ebb_conn_close(c, cut);
    }
}

static void worker_drain(struct ebb_worker *w, enum ebb_direction dir)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct ebb_listener *l = &w->listeners[i];
        if (l->cfg->direction != dir || l->draining)
            continue;
        l->draining = true;
        struct ebb_list *pos, *tmp;
        ebb_list_for_each_safe(pos, tmp, &l->conns) {
            struct ebb_conn *c = ebb_list_entry(pos, struct ebb_conn, link);
            if (!(c->flags & (EBB_CONN_F_FREED | EBB_CONN_F_CLOSING)))
                c->ops->drain(c);
        }
    }
}

static void worker_stop_listeners(struct ebb_worker *w, enum ebb_direction dir)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].cfg->direction == dir)
            ebb_listener_stop(&w->listeners[i]);
}

/* EBB_CMD_QUIESCE: no connection may arrive any more; the ones the listening sockets hold
 * are taken (and counted) first.  The control thread hears of it as of a zero count. */
static void worker_quiesce(struct ebb_worker *w)
{
    struct ebb_server *srv = w->srv;

    for (size_t i = 0; i < w->nlisteners; i++)
        ebb_listener_quiesce(&w->listeners[i]);
    atomic_fetch_add(&srv->quiesced, 1);
    if (srv->zero_notify)
        ebb_async_send(srv->zero_notify);
}

/* EBB_CMD_EXIT: closes every socket of w and stops its loop. */
static void worker_exit(struct ebb_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        ebb_listener_stop(&w->listeners[i]);
        worker_close_conns(&w->listeners[i], true);
    }
    for (size_t i = 0; i < w->ctx.nclusters; i++) {
        ebb_upstream_close_idle(&w->ctx.clusters[i]);
        ebb_h2u_close_all(&w->ctx.clusters[i]);
    }
    ebb_timer_stop(w->ctx.loop, &w->log_flush);
    ebb_loop_stop(w->ctx.loop);
}

/* The control thread posted commands: applies each new bit once. */
static void worker_wake(struct ebb_loop *loop, void *data)
{
    struct ebb_worker *w = data;
    unsigned cmds = atomic_load(&w->cmds) & ~w->done_cmds;

    w->done_cmds |= cmds;
    if (cmds & EBB_CMD_DRAIN_INBOUND)
        worker_drain(w, EBB_DIR_INBOUND);
    if (cmds & EBB_CMD_DRAIN_OUTBOUND)
        worker_drain(w, EBB_DIR_OUTBOUND);
    if (cmds & EBB_CMD_STOP_INBOUND)
        worker_stop_listeners(w, EBB_DIR_INBOUND);
    if (cmds & EBB_CMD_STOP_OUTBOUND)
        worker_stop_listeners(w, EBB_DIR_OUTBOUND);
    if (cmds & EBB_CMD_QUIESCE)
        worker_quiesce(w);
    if (cmds & EBB_CMD_EXIT)
        worker_exit(w);
}

/* Runs w's loop until EBB_CMD_EXIT stops it, then gives back what its thread holds. */
static void worker_run(struct ebb_worker *w)
{
    ebb_loop_run(w->ctx.loop);
    ebb_access_log_thread_done();   /* what this worker logged since the last second */
    ebb_buf_cache_drain();
    ebb_h1_cache_drain();
}

static void *worker_main(void *arg)
{
    struct ebb_worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "ebb-worker-%d", w->id);
    pthread_setname_np(pthread_self(), name);
    worker_run(w);
    return NULL;
}

#define WORKER_LOG_FLUSH_MS 1000   /* Envoy's access-log flush interval */

static void worker_log_flush(struct ebb_loop *loop, struct ebb_timer *t)
{
    ebb_access_log_flush();
    ebb_timer_start(loop, t, WORKER_LOG_FLUSH_MS);
}

int ebb_worker_start(struct ebb_worker *w)
{
    if (ebb_async_init(w->ctx.loop, &w->wake, worker_wake, w) < 0)
        return EBB_EIO;
    ebb_timer_init(&w->log_flush, worker_log_flush, w);
    ebb_timer_start(w->ctx.loop, &w->log_flush, WORKER_LOG_FLUSH_MS);
    for (size_t j = 0; j < w->nlisteners; j++)
        if (ebb_listener_start(&w->listeners[j]) < 0)
            return EBB_EIO;
    if (w->srv->one_thread)
        return 0;   /* the control thread runs the loop (ebb_control_run, ebb_worker_join) */
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return EBB_EIO;
    return 0;
}

void ebb_worker_post(struct ebb_worker *w, unsigned cmds)
{
    atomic_fetch_or(&w->cmds, cmds);
    ebb_async_send(&w->wake);
}

void ebb_worker_join(struct ebb_worker *w)
{
    if (w->srv->one_thread)
        worker_run(w);   /* the exit command is posted: this turn applies it and stops */
    else
        pthread_join(w->thread, NULL);
}

void ebb_worker_free(struct ebb_worker *w)
{
    if (!w->ctx.loop)
        return;   /* ebb_worker_init() failed before the loop, or never ran */
    for (size_t j = 0; w->listeners && j < w->nlisteners; j++)
        ebb_listener_stop(&w->listeners[j]);
    ebb_async_close(w->ctx.loop, &w->wake);
    ebb_loop_free(w->ctx.loop);
    w->ctx.loop = NULL;
    free(w->listeners);
    free(w->ctx.clusters);
    ebb_stats_free(w->ctx.stats);
    w->ctx.stats = NULL;
}

/*
 * server.c - builds the runtime from the config and runs the workers: one
 * thread and one event loop per worker, each with its own SO_REUSEPORT
 * socket for every data-plane listener.  The control thread talks to
 * workers only by posting EBB_CMD_* bits and waking their loops.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ebb/core.h"
#include "ebb/h2.h"
#include "ebb/log.h"
#include "ebb/server.h"
#include "ebb/upstream.h"

uint32_t ebb_worker_rand(struct ebb_worker *w)
{
    uint32_t x = w->rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rand_state = x;
}

static struct ebb_sockaddr_list *resolve_cluster(const struct ebb_cluster_cfg *cc, char *err,
                                                 size_t errlen)
{
    struct ebb_sockaddr_list *al = ebb_xcalloc(1, sizeof(*al) + cc->nendpoints * sizeof(al->a[0]));
    for (size_t i = 0; i < cc->nendpoints; i++) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
        char port[8];
        snprintf(port, sizeof(port), "%u", cc->endpoints[i].port);
        int rc = getaddrinfo(cc->endpoints[i].host, port, &hints, &res);
        if (rc != 0 || !res) {
            snprintf(err, errlen, "cluster \"%s\": cannot resolve endpoint \"%s\": %s", cc->name,
                     cc->endpoints[i].host, gai_strerror(rc));
            free(al);
            return NULL;
        }
        memcpy(&al->a[al->n].sa, res->ai_addr, res->ai_addrlen);
        al->a[al->n].len = res->ai_addrlen;
        snprintf(al->a[al->n].str, sizeof(al->a[al->n].str),
                 strchr(cc->endpoints[i].host, ':') ? "[%s]:%u" : "%s:%u",
                 cc->endpoints[i].host, cc->endpoints[i].port);
        al->n++;
        freeaddrinfo(res);
    }
    return al;
}

int ebb_server_init(struct ebb_server *srv, struct ebb_config *cfg, char *err, size_t errlen)
{
    srv->cfg = cfg;
    srv->stats = ebb_stats_new(cfg);
    srv->start_ms = ebb_now_ms();
    srv->addrs = ebb_xcalloc(cfg->nclusters, sizeof(*srv->addrs));
    for (size_t i = 0; i < cfg->nclusters; i++) {
        srv->addrs[i] = resolve_cluster(&cfg->clusters[i], err, errlen);
        if (!srv->addrs[i])
            return EBB_ECONFIG;
    }

    size_t nw = cfg->proxy.concurrency;
    if (nw == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nw = n > 0 ? (size_t)n : 1;
    }
    srv->nworkers = nw;
    srv->workers = ebb_xcalloc(nw, sizeof(*srv->workers));
    for (size_t i = 0; i < nw; i++) {
        struct ebb_worker *w = &srv->workers[i];
        w->id = (int)i;
        w->srv = srv;
        w->rand_state = (uint32_t)(ebb_now_us() ^ (0x9e3779b9u * (i + 1))) | 1u;
        w->loop = ebb_loop_new();
        if (!w->loop) {
            snprintf(err, errlen, "cannot create event loop: %s", strerror(errno));
            return EBB_EIO;
        }
        ebb_loop_set_data(w->loop, w);
        w->nlisteners = cfg->nlisteners;
        w->wake.io.fd = -1;
        w->listeners = ebb_xcalloc(cfg->nlisteners, sizeof(*w->listeners));
        for (size_t j = 0; j < cfg->nlisteners; j++)
            w->listeners[j].io.fd = -1;
        for (size_t j = 0; j < cfg->nlisteners; j++) {
            struct ebb_listener *l = &w->listeners[j];
            const struct ebb_listener_cfg *lc = &cfg->listeners[j];
            l->cfg = lc;
            l->idx = j;
            l->w = w;
            l->st = &srv->stats->listeners[j];
            ebb_list_init(&l->conns);
            l->io.fd = ebb_listen_socket(lc->address, lc->port, true, err, errlen);
            if (l->io.fd < 0) {
                char tmp[256];
                snprintf(tmp, sizeof(tmp), "listener \"%s\": %s", lc->name, err);
                snprintf(err, errlen, "%s", tmp);
                return EBB_EIO;
            }
        }
        w->nclusters = cfg->nclusters;
        w->clusters = ebb_xcalloc(cfg->nclusters, sizeof(*w->clusters));
        for (size_t j = 0; j < cfg->nclusters; j++) {
            struct ebb_cluster_rt *cl = &w->clusters[j];
            cl->cfg = &cfg->clusters[j];
            cl->st = &srv->stats->clusters[j];
            cl->addrs = srv->addrs[j];
            cl->rr = i;   /* spread workers over the endpoints */
            ebb_list_init(&cl->idle);
        }
    }
    srv->ready = true;
    return 0;
}

static void worker_close_conns(struct ebb_listener *l, bool forced)
{
    struct ebb_list *pos, *tmp;
    ebb_list_for_each_safe(pos, tmp, &l->conns) {
        struct ebb_conn *c = ebb_list_entry(pos, struct ebb_conn, link);
        if (forced && !(c->flags & EBB_CONN_F_CLOSING)) {
            c->flags |= EBB_CONN_F_FORCED;   /* codecs log what this cuts as DR */
            ebb_stat_inc(l->w->srv->stats->server.drain_forced_close);
        }
        ebb_conn_close(c, false);
    }
}

static void worker_drain(struct ebb_worker *w, enum ebb_direction dir)
{
    if (!w->drain_started_ms)
        w->drain_started_ms = ebb_loop_now(w->loop);
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
    if (cmds & EBB_CMD_EXIT) {
        for (size_t i = 0; i < w->nlisteners; i++) {
            ebb_listener_stop(&w->listeners[i]);
            worker_close_conns(&w->listeners[i], true);
        }
        for (size_t i = 0; i < w->nclusters; i++) {
            ebb_upstream_close_idle(&w->clusters[i]);
            ebb_h2u_close_all(&w->clusters[i]);
        }
        ebb_loop_stop(loop);
    }
}

static void *worker_main(void *arg)
{
    struct ebb_worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "ebb-worker-%d", w->id);
    pthread_setname_np(pthread_self(), name);
    ebb_loop_run(w->loop);
    return NULL;
}

int ebb_server_start(struct ebb_server *srv)
{
    for (size_t i = 0; i < srv->nworkers; i++) {
        struct ebb_worker *w = &srv->workers[i];
        if (ebb_async_init(w->loop, &w->wake, worker_wake, w) < 0)
            return EBB_EIO;
        for (size_t j = 0; j < w->nlisteners; j++)
            if (ebb_listener_start(&w->listeners[j]) < 0)
                return EBB_EIO;
    }
    for (size_t i = 0; i < srv->nworkers; i++) {
        if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0)
            return EBB_EIO;
    }
    return 0;
}

void ebb_server_post(struct ebb_server *srv, unsigned cmds)
{
    for (size_t i = 0; i < srv->nworkers; i++) {
        atomic_fetch_or(&srv->workers[i].cmds, cmds);
        ebb_async_send(&srv->workers[i].wake);
    }
}

void ebb_server_join_threads(struct ebb_server *srv)
{
    for (size_t i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i].thread, NULL);
}

void ebb_server_free(struct ebb_server *srv)
{
    /* also undoes a partial ebb_server_init() (startup failure) */
    for (size_t i = 0; srv->workers && i < srv->nworkers; i++) {
        struct ebb_worker *w = &srv->workers[i];
        if (!w->loop)
            break;
        for (size_t j = 0; w->listeners && j < w->nlisteners; j++)
            ebb_listener_stop(&w->listeners[j]);
        ebb_async_close(w->loop, &w->wake);
        ebb_loop_free(w->loop);
        free(w->listeners);
        free(w->clusters);
    }
    free(srv->workers);
    for (size_t i = 0; srv->addrs && i < srv->cfg->nclusters; i++)
        free(srv->addrs[i]);
    free(srv->addrs);
    ebb_stats_free(srv->stats);
}

void ebb_server_conn_gone(struct ebb_server *srv)
{
    int64_t left = atomic_fetch_sub(&srv->active_cx, 1) - 1;
    if (left == 0 && atomic_load(&srv->watch_zero) && srv->zero_notify)
        ebb_async_send(srv->zero_notify);
}

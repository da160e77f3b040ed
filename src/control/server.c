/*
 * server.c - builds the runtime from the config: resolves every cluster's
 * endpoints once, sets up the workers (worker.c) and the env every
 * listener shares, and keeps the process-wide connection count the drain
 * controller watches.  The control thread talks to workers only through
 * ebb_server_post().
 */
#include <netdb.h>
#include <string.h>
#include <unistd.h>

#include "ebb/cluster.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/server.h"
#include "ebb/worker.h"

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

/* struct ebb_listener_env hooks: count data-plane connections and, when
 * the control thread watches for it, tell it the count reached zero. */
static uint64_t server_conn_opened(void *owner)
{
    struct ebb_server *srv = owner;
    atomic_fetch_add(&srv->active_cx, 1);
    return atomic_fetch_add(&srv->next_conn_id, 1) + 1;
}

static void server_conn_closed(void *owner)
{
    struct ebb_server *srv = owner;
    int64_t left = atomic_fetch_sub(&srv->active_cx, 1) - 1;
    if (left == 0 && atomic_load(&srv->watch_zero) && srv->zero_notify)
        ebb_async_send(srv->zero_notify);
}

int ebb_server_init(struct ebb_server *srv, struct ebb_config *cfg, char *err, size_t errlen)
{
    srv->cfg = cfg;
    srv->stats = ebb_stats_new(cfg);
    srv->listener_open = ebb_xcalloc(cfg->nlisteners ? cfg->nlisteners : 1,
                                     sizeof(*srv->listener_open));
    srv->start_ms = ebb_now_ms();
    srv->addrs = ebb_xcalloc(cfg->nclusters, sizeof(*srv->addrs));
    for (size_t i = 0; i < cfg->nclusters; i++) {
        srv->addrs[i] = resolve_cluster(&cfg->clusters[i], err, errlen);
        if (!srv->addrs[i])
            return EBB_ECONFIG;
    }
    srv->lenv = (struct ebb_listener_env){
        .rbuf_max = EBB_MAX(cfg->limits.buffer_size, cfg->limits.h1.max_head + 4096),
        .wbuf_max = cfg->limits.buffer_size,
        .linger_ms = cfg->drain.linger_ms,
        .conn_opened = server_conn_opened,
        .conn_closed = server_conn_closed,
        .owner = srv,
    };

    size_t nw = cfg->proxy.concurrency;
    if (nw == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nw = n > 0 ? (size_t)n : 1;
    }
    srv->nworkers = nw;
    /* One worker needs no thread of its own: the control loop's few events (signals, admin,
     * drain timers) join its loop.  A second thread would cost every recv, send and
     * epoll_wait a file reference (the fd table is shared) and every libc socket call its
     * cancellation bookkeeping (docs/design.md, "Threads").  ThreadSanitizer builds keep the
     * thread so what the threads share stays checked. */
    srv->one_thread = nw == 1 && !EBB_TSAN;
    srv->workers = ebb_xcalloc(nw, sizeof(*srv->workers));
    for (size_t i = 0; i < nw; i++) {
        int rc = ebb_worker_init(&srv->workers[i], srv, (int)i, err, errlen);
        if (rc < 0)
            return rc;
    }
    srv->ready = true;
    return 0;
}

int ebb_server_start(struct ebb_server *srv)
{
    for (size_t i = 0; i < srv->nworkers; i++)
        if (ebb_worker_start(&srv->workers[i]) < 0)
            return EBB_EIO;
    return 0;
}

struct ebb_stats *ebb_server_stats(struct ebb_server *srv)
{
    ebb_stats_zero(srv->stats, srv->cfg);
    for (size_t i = 0; srv->workers && i < srv->nworkers; i++)
        if (srv->workers[i].ctx.stats)
            ebb_stats_add_into(srv->stats, srv->workers[i].ctx.stats, srv->cfg);
    return srv->stats;
}

void ebb_server_post(struct ebb_server *srv, unsigned cmds)
{
    for (size_t i = 0; i < srv->nworkers; i++)
        ebb_worker_post(&srv->workers[i], cmds);
}

void ebb_server_join_threads(struct ebb_server *srv)
{
    for (size_t i = 0; i < srv->nworkers; i++)
        ebb_worker_join(&srv->workers[i]);
}

void ebb_server_free(struct ebb_server *srv)
{
    /* also undoes a partial ebb_server_init() (startup failure) */
    for (size_t i = 0; srv->workers && i < srv->nworkers; i++)
        ebb_worker_free(&srv->workers[i]);
    free(srv->workers);
    for (size_t i = 0; srv->addrs && i < srv->cfg->nclusters; i++)
        free(srv->addrs[i]);
    free(srv->addrs);
    ebb_stats_free(srv->stats);
    free(srv->listener_open);
}

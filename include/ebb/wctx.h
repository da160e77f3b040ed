/*
 * wctx.h - a worker as the data plane sees it (net layer): the loop its
 * connections run on, the configuration, its counters, its cluster
 * runtimes, its PRNG and its drain clock.  The worker (control/worker.h)
 * embeds one and fills it; listeners, connections, codecs and upstream
 * connections reach it through their `w`, so nothing below control needs
 * the worker or the server.  It also carries the exchange layer's ops table,
 * through which the HTTP codecs reach the layer above them.
 *
 * Ownership: the worker owns it; one thread (the worker's) reads and
 * writes it, but for cfg, which is the server's and read-only.
 */
#ifndef EBB_WCTX_H
#define EBB_WCTX_H

#include <stddef.h>
#include <stdint.h>

struct ebb_loop;
struct ebb_config;
struct ebb_stats;
struct ebb_cluster_rt;
struct ebb_xch_ops;

struct ebb_wctx {
    struct ebb_loop         *loop;       /* NULL until the worker's init got that far */
    const struct ebb_config *cfg;        /* the server's configuration */
    struct ebb_stats        *stats;      /* this worker's counters; it is their only writer */
    struct ebb_cluster_rt   *clusters;   /* one per cfg cluster */
    size_t                   nclusters;
    uint32_t                 rand_state; /* ebb_rand() state: idle-close spread, request ids */
    const struct ebb_xch_ops *xops;      /* the exchange layer, for the HTTP codecs (stream.h) */
};

#endif

/*
 * cluster.h - an upstream cluster as one worker sees it (proxy layer): its
 * resolved endpoints, its round-robin cursor and its connection pools.
 * upstream.c keeps the HTTP/1.1 pool, h2_upstream.c the shared h2c
 * connections, h2.c the h2 streams waiting for an HTTP/1.1 connection.
 *
 * Ownership: the server resolves every cluster's endpoints once and owns
 * the lists (shared, read-only); a worker owns one struct ebb_cluster_rt
 * per configured cluster and, through it, the pooled connections.
 */
#ifndef EBB_CLUSTER_H
#define EBB_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ebb/conn.h"
#include "ebb/list.h"

struct ebb_cluster_cfg;
struct ebb_cluster_stats;

/* Resolved endpoint addresses of a cluster, in configuration order. */
struct ebb_sockaddr_list {
    size_t n;                               /* entries in a[] */
    struct {
        struct sockaddr_storage sa;         /* address to connect to */
        socklen_t               len;        /* its length */
        char                    str[80];    /* "host:port", for logs and stats */
    } a[];
};

/* One upstream cluster's per-worker runtime. */
struct ebb_cluster_rt {
    const struct ebb_cluster_cfg *cfg;
    struct ebb_cluster_stats     *st;     /* cluster.<name>.* counters (shared) */
    struct ebb_sockaddr_list     *addrs;  /* resolved endpoints (shared, read-only) */
    size_t                        rr;     /* round-robin cursor */
    struct ebb_list               idle;   /* idle pooled upstream connections */
    uint32_t                      nidle;  /* entries in idle */
    struct ebb_list               h2conns; /* upstream h2c connections (h2_upstream.c); zeroed = empty */
    struct ebb_list               shared_waiting; /* EBB_US_F_SHARED exchanges waiting for a connection (h1_client.c); zeroed = empty */
    uint32_t                      shared_busy; /* connections lent to EBB_US_F_SHARED exchanges (h1_client.c) */
    uint64_t                      shared_returned; /* ... given back so far: a wait that saw none is stuck (h1_client.c) */
    union ebb_sockaddr            source; /* upstream source address (cfg->bind_address); family 0 = none */
    bool                          bind_warned; /* a failed bind was logged */
};

#endif

/*
 * stats.h - process-wide counters and gauges.
 *
 * Every worker has its own blocks (struct ebb_stats) and is their only
 * writer, so an update is a plain load and store of an atomic (no locked
 * read-modify-write, no cache line shared between workers); the control
 * thread sums the blocks when it reads them (ebb_stats_add_into).
 * Names follow Envoy's where the concept is the same (SPEC §5), so /stats
 * and /stats/prometheus look familiar to Istio tooling.
 */
#ifndef EBB_STATS_H
#define EBB_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct ebb_buf;
struct ebb_config;

typedef _Atomic uint64_t ebb_counter;   /* monotonic */
typedef _Atomic int64_t  ebb_gauge;     /* goes up and down */

/* For the block's one writer: readers on other threads see whole values, never a torn one. */
#define ebb_stat_add(c, n) \
    atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n), \
                          memory_order_relaxed)
#define ebb_stat_inc(c)    ebb_stat_add(c, 1)
#define ebb_stat_dec(c)    ebb_stat_add(c, -1)
#define ebb_stat_get(c)    atomic_load_explicit(&(c), memory_order_relaxed)

/* listener.<name>.* and http.<name>.* */
struct ebb_listener_stats {
    ebb_gauge   cx_active;        /* listener.X.downstream_cx_active */
    ebb_counter cx_total;         /* listener.X.downstream_cx_total */
    ebb_counter cx_destroy;       /* listener.X.downstream_cx_destroy */
    ebb_counter cx_overflow;      /* listener.X.downstream_cx_overflow (max_connections) */
    ebb_gauge   rq_active;        /* http.X.downstream_rq_active */
    ebb_counter rq_total;         /* http.X.downstream_rq_total */
    ebb_counter rq_xx[6];         /* http.X.downstream_rq_1xx..5xx (index 1..5) */
    ebb_counter cx_drain_close;   /* http.X.downstream_cx_drain_close */
    ebb_counter cx_protocol_error;/* http.X.downstream_cx_protocol_error */
    ebb_counter rq_timeout;       /* http.X.downstream_rq_timeout (request headers) */
    ebb_counter cx_idle_timeout;  /* http.X.downstream_cx_idle_timeout */
    ebb_counter rq_rx_reset;      /* http.X.downstream_rq_rx_reset (client went away) */
    ebb_counter rq_tx_reset;      /* http.X.downstream_rq_tx_reset (we reset) */
    ebb_counter cx_rx_bytes;      /* listener.X.downstream_cx_rx_bytes_total */
    ebb_counter cx_tx_bytes;      /* listener.X.downstream_cx_tx_bytes_total */
    ebb_counter no_route;         /* http.X.no_route */
    ebb_counter rq_completed_in_drain; /* requests completed while draining */
};

/* cluster.<name>.* */
struct ebb_cluster_stats {
    ebb_gauge   cx_active;        /* upstream_cx_active */
    ebb_counter cx_total;         /* upstream_cx_total */
    ebb_counter cx_connect_fail;  /* upstream_cx_connect_fail */
    ebb_counter cx_connect_timeout; /* upstream_cx_connect_timeout */
    ebb_counter cx_none_healthy;  /* upstream_cx_none_healthy: refused (BlackHoleCluster) */
    ebb_counter cx_destroy;       /* upstream_cx_destroy */
    ebb_gauge   rq_active;        /* upstream_rq_active */
    ebb_counter rq_total;         /* upstream_rq_total */
    ebb_counter rq_timeout;       /* upstream_rq_timeout */
    ebb_counter rq_reset;         /* upstream_rq_rx_reset */
    ebb_counter cx_reused;        /* upstream_cx_pool_reuse (ebb) */
    ebb_gauge   cx_idle;          /* upstream_cx_idle (ebb) */
    ebb_counter cx_shared_waited; /* upstream_cx_shared_waited (ebb): h2 streams that saw no
                                     shared HTTP/1.1 connection given back in H1U_WAIT_MS and
                                     connected one more */
    ebb_gauge   rx_buffered;      /* upstream_cx_rx_bytes_buffered: response DATA received on
                                     h2c connections, not yet read by clients nor given back
                                     to the connection's window */
};

/* server.*, http2.* */
struct ebb_server_stats {
    ebb_counter total_connections;  /* server.total_connections: active downstream, gauge-like in Envoy */
    ebb_counter goaway_sent;        /* http2.goaway_sent */
    ebb_counter drain_forced_close; /* server.drain_forced_close: connections cut at exit (ebb) */
    ebb_counter xch_failed_resource;/* server.exchanges_failed_resource: exchanges (or connections)
                                     * failed by a failed allocation, epoll_ctl or nghttp2 submit
                                     * (ebb) */
    /* http2.* (h2.c, h2_upstream.c) */
    ebb_gauge   h2_streams_active;  /* http2.streams_active: downstream streams open */
    ebb_counter h2_streams_total;   /* http2.streams_total (ebb) */
    ebb_counter h2_rx_reset;        /* http2.rx_reset: RST_STREAM received from clients */
    ebb_counter h2_tx_reset;        /* http2.tx_reset: RST_STREAM sent to clients */
    ebb_counter h2_header_overflow; /* http2.header_overflow: request headers over the limits */
    ebb_counter h2_rx_messaging_error; /* http2.rx_messaging_error: invalid frames received */
    ebb_counter h2_calm_goaway;     /* http2.enhance_your_calm (ebb): rapid-reset GOAWAYs */
    ebb_counter h2_up_cx_total;     /* http2.upstream_cx_total (ebb): upstream h2c connections */
    ebb_counter h2_up_goaway_rx;    /* http2.upstream_goaway_received (ebb) */
    ebb_counter h2_up_retry;        /* http2.upstream_rq_retry (ebb): streams retried after GOAWAY */
    ebb_counter h2_ping_rx;         /* http2.ping_received (ebb): client PINGs (keepalives), answered */
};

struct ebb_stats {
    struct ebb_listener_stats *listeners;  /* one per cfg->listeners[] */
    struct ebb_cluster_stats  *clusters;   /* one per cfg->clusters[] */
    struct ebb_server_stats    server;
};

/* Allocates zeroed stats sized for cfg.  Exits on OOM (startup). */
struct ebb_stats *ebb_stats_new(const struct ebb_config *cfg);
/* Zeroes sum (sized for cfg). */
void ebb_stats_zero(struct ebb_stats *sum, const struct ebb_config *cfg);
/* Adds every counter and gauge of st (a worker's, being written) into sum. */
void ebb_stats_add_into(struct ebb_stats *sum, const struct ebb_stats *st,
                        const struct ebb_config *cfg);
void ebb_stats_free(struct ebb_stats *st);

#endif

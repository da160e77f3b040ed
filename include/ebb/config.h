/*
 * config.h - the effective configuration: ebb.yaml topology plus the Istio
 * ProxyConfig knobs (proxy_config.h) merged from every source of SPEC §4.
 * Loading, freeing and the JSON dump: config_load.h.  Every ebb.yaml key,
 * with its bounds, default and doc line: the directive tables of
 * config_table.h, which also make docs/config.md's tables.
 */
#ifndef EBB_CONFIG_H
#define EBB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/h1_parse.h"
#include "ebb/proxy_config.h"

enum ebb_direction { EBB_DIR_INBOUND = 0, EBB_DIR_OUTBOUND = 1 };
enum ebb_proto { EBB_PROTO_HTTP = 0, EBB_PROTO_TCP = 1 };
enum ebb_upstream_proto { EBB_UP_HTTP1 = 0, EBB_UP_H2C = 1 };
/* How a cluster finds its upstream: its endpoints, the original destination of a
 * captured connection (SPEC §9), or nowhere. */
enum ebb_cluster_kind { EBB_CLUSTER_STATIC = 0, EBB_CLUSTER_ORIGINAL_DST = 1,
                        EBB_CLUSTER_BLACKHOLE = 2 };
/* MeshConfig outboundTrafficPolicy.mode: where outbound traffic no route names goes. */
enum ebb_outbound_policy { EBB_ALLOW_ANY = 0, EBB_REGISTRY_ONLY = 1 };

#define EBB_NO_CLUSTER ((size_t)-1)   /* cluster_idx of a listener without a fixed cluster */

struct ebb_endpoint {
    char    *host;      /* numeric IPv4/IPv6 or a name resolved at startup */
    uint16_t port;
};

struct ebb_cluster_cfg {
    char                *name;
    struct ebb_endpoint *endpoints;
    size_t               nendpoints;
    enum ebb_upstream_proto protocol;
    uint64_t connect_timeout_ms;   /* default 1000, capped at 10000 */
    uint64_t request_timeout_ms;   /* upstream response timeout -> 504 UT; default 0 = none */
    uint32_t pool_max_idle;        /* idle keep-alive upstream connections kept per worker; default 64 */
    uint64_t pool_idle_timeout_ms; /* default 60000 */
    /* the built-in clusters of SPEC §9.4 (config.c adds them; ebb.yaml cannot) */
    enum ebb_cluster_kind kind;    /* STATIC for every ebb.yaml cluster */
    char    *bind_address;         /* upstream source address (127.0.0.6, ::6), NULL = any */
};

struct ebb_route_cfg {
    char  *host;      /* authority to match (case-insensitive, port optional), "*" matches all */
    char  *cluster;   /* cluster name */
    size_t cluster_idx;  /* resolved index into cfg->clusters */
};

struct ebb_listener_cfg {
    char              *name;       /* stat prefix; default "<addr>_<port>" */
    char              *address;    /* bind address, numeric */
    uint16_t           port;
    enum ebb_direction direction;
    enum ebb_proto     protocol;
    char              *cluster;    /* fixed cluster (inbound, or outbound tcp); NULL for outbound http */
    size_t             cluster_idx; /* index into cfg->clusters, EBB_NO_CLUSTER when cluster is NULL */
    struct ebb_route_cfg *routes;  /* outbound http */
    size_t             nroutes;
    uint32_t           max_connections; /* per listener; default 10000 */
};

struct ebb_limits_cfg {
    struct ebb_h1_limits h1;             /* line 8 KiB, head 60 KiB, 100 fields */
    uint64_t max_request_body;           /* bytes, 0 = unlimited (-> 413) */
    uint64_t request_headers_timeout_ms; /* default 10000 */
    uint64_t idle_timeout_ms;            /* downstream keep-alive idle, default 3600000 */
    uint64_t tcp_idle_timeout_ms;        /* TCP relay and upgraded tunnels idle, default 1 h; 0 none */
    uint32_t h2_max_concurrent_streams;  /* default 100 */
    size_t   buffer_size;                /* per-direction connection buffer ceiling, default 64 KiB */
};

struct ebb_drain_cfg {
    uint64_t idle_close_after_ms;   /* default: MINIMUM_DRAIN_DURATION */
    bool     idle_close_after_set;  /* set explicitly in ebb.yaml */
    uint64_t idle_close_spread_ms;  /* random spread window, default 1000 */
    uint64_t drain_timeout_ms;      /* h2 GOAWAY phase-2 timeout, default 1000 */
    uint64_t drain_deadline_ms;     /* exit-on-zero upper bound, 0 = none */
    uint64_t linger_ms;             /* staged-close read-and-discard time, default 2000 */
};

/* Transparent capture (SPEC §9): what ebb does with redirected connections. */
struct ebb_capture_cfg {
    uint16_t *tcp_ports;                   /* original ports relayed as TCP without detection */
    size_t    ntcp_ports;
    uint64_t  detect_timeout_ms;           /* protocolDetectionTimeout; 0 = wait forever */
    bool      detect_timeout_set;          /* ... set in ebb.yaml (outranks the mesh config) */
    enum ebb_outbound_policy outbound_policy; /* outboundTrafficPolicy.mode */
    bool      outbound_policy_set;         /* ... set in ebb.yaml (outranks the mesh config) */
};

/* Indices of the built-in clusters in cfg->clusters (always present, last). */
struct ebb_builtin_clusters {
    size_t inbound4;    /* InboundPassthroughClusterIpv4: original destination from 127.0.0.6 */
    size_t inbound6;    /* InboundPassthroughClusterIpv6: ... from ::6 */
    size_t passthrough; /* PassthroughCluster: outbound, no route matched, ALLOW_ANY */
    size_t blackhole;   /* BlackHoleCluster: REGISTRY_ONLY, and capture loops */
};

struct ebb_config {
    char    *file;                /* ebb.yaml path, NULL = built-in default */
    char    *mesh_file;           /* --mesh-config path read, NULL = none (default path missing) */
    char    *annotations_file;    /* --pod-annotations path read, NULL = none */
    struct ebb_proxy_cfg proxy;
    char    *admin_address;       /* default 127.0.0.1 */
    char    *status_address;      /* default 0.0.0.0 */
    char    *ready_address;       /* default 0.0.0.0 */
    uint16_t ready_port;          /* default 15021 */
    struct ebb_listener_cfg *listeners;
    size_t   nlisteners;
    struct ebb_cluster_cfg  *clusters;
    size_t   nclusters;
    struct ebb_limits_cfg limits;
    struct ebb_drain_cfg  drain;
    struct ebb_capture_cfg capture;
    struct ebb_builtin_clusters builtin;
    char    *access_log;          /* "-" stdout (default), "off", or a file path */
    char    *log_level;           /* "info" default; --log-level overrides (validated) */
};

#endif

/*
 * config.h - the effective configuration: ebb.yaml topology plus the Istio
 * ProxyConfig knobs merged from every source of SPEC §4.
 *
 * Loading is pure apart from reading files and the environment: it never
 * opens sockets.  Errors are written into a caller buffer as one line that
 * names the source (file:line or variable), the key path and the reason.
 */
#ifndef EBB_CONFIG_H
#define EBB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/h1_parse.h"

enum ebb_direction { EBB_DIR_INBOUND = 0, EBB_DIR_OUTBOUND = 1 };
enum ebb_proto { EBB_PROTO_HTTP = 0, EBB_PROTO_TCP = 1 };
enum ebb_upstream_proto { EBB_UP_HTTP1 = 0, EBB_UP_H2C = 1 };

/* Where a value came from (SPEC §4 precedence, lowest first). */
enum ebb_source {
    EBB_SRC_DEFAULT = 0,
    EBB_SRC_MESH,        /* --mesh-config defaultConfig */
    EBB_SRC_PROXY_CONFIG,/* PROXY_CONFIG environment variable */
    EBB_SRC_ANNOTATION,  /* proxy.istio.io/config in the downward-API file */
    EBB_SRC_ENV,         /* process environment */
    EBB_SRC_FILE,        /* ebb.yaml (-c) */
};
const char *ebb_source_name(enum ebb_source s);   /* "default", "mesh config", ... */

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
    char              *cluster;    /* fixed cluster (inbound, or outbound tcp) */
    size_t             cluster_idx;
    struct ebb_route_cfg *routes;  /* outbound http */
    size_t             nroutes;
    uint32_t           max_connections; /* per listener; default 10000 */
};

struct ebb_limits_cfg {
    struct ebb_h1_limits h1;             /* line 8 KiB, head 60 KiB, 100 fields */
    uint64_t max_request_body;           /* bytes, 0 = unlimited (-> 413) */
    uint64_t request_headers_timeout_ms; /* default 10000 */
    uint64_t idle_timeout_ms;            /* downstream keep-alive idle, default 3600000 */
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

/* A proxyMetadata entry. */
struct ebb_kv {
    char *key;
    char *value;
    enum ebb_source source;
};

/* The Istio ProxyConfig subset ebb honours, with each value's source. */
struct ebb_proxy_cfg {
    uint64_t termination_drain_ms;  enum ebb_source termination_drain_src;  /* 5s */
    uint64_t drain_duration_ms;     enum ebb_source drain_duration_src;     /* 45s */
    uint32_t concurrency;           enum ebb_source concurrency_src;        /* 2; 0 = nproc */
    uint16_t admin_port;            enum ebb_source admin_port_src;         /* 15000 */
    uint16_t status_port;           enum ebb_source status_port_src;        /* 15020 */
    bool     hold_app;              enum ebb_source hold_app_src;           /* holdApplicationUntilProxyStarts */
    struct ebb_kv *metadata;        /* merged proxyMetadata */
    size_t   nmetadata;
    /* derived from metadata/env */
    bool     exit_on_zero;          enum ebb_source exit_on_zero_src;       /* EXIT_ON_ZERO_ACTIVE_CONNECTIONS */
    uint64_t min_drain_ms;          enum ebb_source min_drain_src;          /* MINIMUM_DRAIN_DURATION, 5s */
};

struct ebb_config {
    char    *file;                /* ebb.yaml path, NULL = built-in default */
    char    *mesh_file;           /* --mesh-config path used */
    char    *annotations_file;    /* --pod-annotations path used */
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
    char    *access_log;          /* "-" stdout (default), "off", or a file path */
    char    *log_level;           /* "info" default; --log-level overrides */
};

/* Where to load from; NULL fields take the defaults of SPEC §4. */
struct ebb_config_args {
    const char *file;              /* -c */
    const char *mesh_file;         /* --mesh-config, default ./etc/istio/config/mesh (missing = skipped) */
    const char *annotations_file;  /* --pod-annotations, default ./etc/istio/pod/annotations (missing = skipped) */
    const char *log_level;         /* --log-level */
    char *const *environ;          /* environment to read, NULL = the process's */
};

/* Loads every source and merges them.  On success returns 0 and *out owns
 * a new config (free with ebb_config_free).  On failure returns EBB_ECONFIG
 * and writes one line "source: key: reason" into err.  Warnings (unknown
 * fields) are logged with ebb_warn. */
int ebb_config_load(const struct ebb_config_args *args, struct ebb_config **out,
                    char *err, size_t errlen);

/* The built-in default config with every ProxyConfig value at its default. */
struct ebb_config *ebb_config_default(void);

void ebb_config_free(struct ebb_config *cfg);

/* Writes the effective config as JSON (for /config_dump and `ebb validate`):
 * {"proxy_config": {...}, "sources": {"terminationDrainDuration": "annotation", ...},
 *  "drain": {...}, "listeners": [...], "clusters": [...], "limits": {...}}.
 * Returns a malloc'd NUL-terminated string. */
char *ebb_config_to_json(const struct ebb_config *cfg);

/* Value syntax shared by every source (src/core/parse.c). */
/* Go time.ParseDuration: "300ms", "1.5h", "2h45m", "5s"; "0" alone is 0.
 * Negative durations are rejected.  Result in ms (sub-ms rounds up). */
int ebb_parse_duration_ms(const char *s, uint64_t *out_ms);
/* Go strconv.ParseBool: 1 t T TRUE true True 0 f F FALSE false False. */
int ebb_parse_bool(const char *s, bool *out);
/* Unsigned decimal within [min, max]. */
int ebb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Go-quoted string (strconv.Unquote of a "..." literal): \" \\ \n \t \r \a
 * \b \f \v \xNN \NNN(octal) \uXXXX \UXXXXXXXX.  in/inlen include the quotes.
 * Returns a malloc'd string (NUL-terminated; *outlen set) or NULL when malformed. */
char *ebb_go_unquote(const char *in, size_t inlen, size_t *outlen);

/* Parses a downward-API annotations file's contents (key="value" lines).
 * Returns 0 and sets *value to the malloc'd, unquoted value of key (NULL if
 * absent), or EBB_ECONFIG with "path:line: reason" in err. */
int ebb_annotations_get(const char *path, const char *text, size_t len, const char *key,
                        char **value, char *err, size_t errlen);

#endif

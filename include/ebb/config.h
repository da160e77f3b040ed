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

/*
 * Where a value came from.  DEFAULT..ENV are SPEC §4's ProxyConfig sources,
 * lowest precedence first.  FILE is ebb.yaml and is not ordered by its enum
 * value: ebb.yaml's `proxy_config:` map ranks just above DEFAULT (below the
 * mesh config), while ebb.yaml's own top-level `concurrency`, `admin.port`
 * and `status.port` override every ProxyConfig source (docs/config.md).
 */
enum ebb_source {
    EBB_SRC_DEFAULT = 0,
    EBB_SRC_MESH,        /* --mesh-config defaultConfig */
    EBB_SRC_PROXY_CONFIG,/* PROXY_CONFIG environment variable */
    EBB_SRC_ANNOTATION,  /* proxy.istio.io/config in the downward-API file */
    EBB_SRC_ENV,         /* process environment */
    EBB_SRC_FILE,        /* ebb.yaml (-c) */
};
/* Returns a static name: "default", "mesh config", "PROXY_CONFIG",
 * "annotation", "env", "file" ("unknown" for anything else). */
const char *ebb_source_name(enum ebb_source s);

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
    char *value;              /* may contain any byte except NUL */
    enum ebb_source source;   /* the source whose value won the merge */
};

/* The Istio ProxyConfig subset ebb honours, with each value's source. */
struct ebb_proxy_cfg {
    uint64_t termination_drain_ms;  enum ebb_source termination_drain_src;  /* 5s */
    uint64_t drain_duration_ms;     enum ebb_source drain_duration_src;     /* 45s */
    uint32_t concurrency;           enum ebb_source concurrency_src;        /* 2; 0 = nproc */
    uint16_t admin_port;            enum ebb_source admin_port_src;         /* 15000 */
    uint16_t status_port;           enum ebb_source status_port_src;        /* 15020 */
    bool     hold_app;              enum ebb_source hold_app_src;           /* holdApplicationUntilProxyStarts */
    struct ebb_kv *metadata;        /* merged proxyMetadata, sorted by key */
    size_t   nmetadata;
    /* derived from metadata/env */
    bool     exit_on_zero;          enum ebb_source exit_on_zero_src;       /* EXIT_ON_ZERO_ACTIVE_CONNECTIONS */
    uint64_t min_drain_ms;          enum ebb_source min_drain_src;          /* MINIMUM_DRAIN_DURATION, 5s */
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
    char    *access_log;          /* "-" stdout (default), "off", or a file path */
    char    *log_level;           /* "info" default; --log-level overrides (validated) */
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
 * a new config (free with ebb_config_free).  On failure returns EBB_ECONFIG,
 * leaves *out NULL and writes one line "source: key: reason" into err
 * (source is "file:line" for files).  Warnings (unknown fields) are logged
 * with ebb_warn.  Does not change the global log level. */
int ebb_config_load(const struct ebb_config_args *args, struct ebb_config **out,
                    char *err, size_t errlen);

/* The built-in default config with every ProxyConfig value at its default.
 * The caller owns it (ebb_config_free).  Exits on out-of-memory. */
struct ebb_config *ebb_config_default(void);

/* Frees cfg and everything it owns; NULL is fine. */
void ebb_config_free(struct ebb_config *cfg);

/* Writes the effective config as JSON (for /config_dump and `ebb validate`):
 * {"proxy_config": {...}, "sources": {"terminationDrainDuration": "annotation", ...},
 *  "drain": {...}, "listeners": [...], "clusters": [...], "limits": {...}}.
 * Durations are Go strings ("5s", "1m30s"); docs/config.md lists every key.
 * Returns a malloc'd NUL-terminated string (valid UTF-8: bytes that are not
 * become U+FFFD); the caller frees it. */
char *ebb_config_to_json(const struct ebb_config *cfg);

/* Parses a downward-API annotations file's contents (key="value" lines).
 * Returns 0 and sets *value to the malloc'd, unquoted value of key (NULL if
 * absent), or EBB_ECONFIG with "path:line: reason" in err.  Every line is
 * checked, not only the one asked for; blank lines are skipped and a CR
 * before the LF is tolerated.  A key given twice is an error. */
int ebb_annotations_get(const char *path, const char *text, size_t len, const char *key,
                        char **value, char *err, size_t errlen);

#ifdef EBB_CONFIG_INTERNAL
/*
 * Shared by src/control/config*.c and proxy_config.c (and the fuzz driver
 * and unit tests); not for other modules.  YAML helpers live in config.c.
 */
#include <yaml.h>

/* A YAML or JSON document being read, and how errors name its positions. */
struct ebb_ydoc {
    yaml_document_t doc;
    bool            loaded;   /* doc holds a document to delete */
    const char     *label;    /* file path or variable name */
    unsigned long   line;     /* nonzero: every error says label:line (the annotation's line) */
    bool            marks;    /* line == 0: say label:<node line> (files, multi-line text) */
    const char     *prefix;   /* put before key paths, e.g. "proxy.istio.io/config: " */
};

/* Parses text as one YAML (or JSON) document into d (label etc. set by the
 * caller).  An empty text is an empty document (root NULL).  0 or
 * EBB_ECONFIG with "label:line: invalid YAML: ..." in err.  Call
 * ebb_ydoc_free() in both cases. */
int ebb_ydoc_load(struct ebb_ydoc *d, const char *text, size_t len, char *err, size_t errlen);
void ebb_ydoc_free(struct ebb_ydoc *d);
/* Root node, or NULL for an empty document. */
yaml_node_t *ebb_ydoc_root(struct ebb_ydoc *d);
yaml_node_t *ebb_ynode(const struct ebb_ydoc *d, int id);
/* Formats "label[:line]: prefix path: reason" into err; returns EBB_ECONFIG. */
int ebb_yerr(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, char *err,
             size_t errlen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Logs the same shape at warn level. */
void ebb_ywarn(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* True when key equals snake, or is its camelCase spelling. */
bool ebb_ykey_is(const char *key, const char *snake);
/* True for a null scalar (empty plain, ~, null, Null, NULL). */
bool ebb_ynull(const yaml_node_t *n);
/* Checks n is a mapping with scalar, distinct keys (camelCase and
 * snake_case spellings folded together when fold is true). */
int ebb_ymap(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, bool fold,
             char *err, size_t errlen);
/* Writes s[0..n) double-quoted for an error message, escaped as a JSON
 * string (ebb_json_escape), cut with "..." after 60 bytes or when out is full. */
void ebb_quote(const char *s, size_t n, char *out, size_t outlen);
/* Joins a key path: "a" + "b" -> "a.b"; "" + "b" -> "b". */
void ebb_ypath(char *out, size_t outlen, const char *path, const char *key);
/* Scalar accessors: each errs with the bad value quoted. */
int ebb_ystr(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
             const char **out, char *err, size_t errlen);
int ebb_yduration(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                  uint64_t *ms, char *err, size_t errlen);
int ebb_ybool(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, bool *out,
              char *err, size_t errlen);
int ebb_yuint(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, uint64_t min,
              uint64_t max, const char *what, uint64_t *out, char *err, size_t errlen);
/* Reads a whole file (at most 16 MiB) into a malloc'd NUL-terminated
 * buffer.  Returns 0, or a negative errno (-EFBIG when too large). */
int ebb_read_file(const char *path, char **text, size_t *len);
/* The message of a duration/bool value error, shared with the environment. */
#define EBB_DURATION_HINT "is not a Go duration (e.g. 500ms, 5s, 1m30s)"
#define EBB_BOOL_HINT "is not a Go bool (1 t T TRUE true True 0 f F FALSE false False)"

/* ProxyConfig fields, as bits of struct ebb_pc_src.set. */
#define EBB_PC_TERMINATION_DRAIN 0x01u
#define EBB_PC_DRAIN_DURATION    0x02u
#define EBB_PC_CONCURRENCY       0x04u
#define EBB_PC_ADMIN_PORT        0x08u
#define EBB_PC_STATUS_PORT       0x10u
#define EBB_PC_HOLD_APP          0x20u

/* One source's ProxyConfig: the fields it sets, and its proxyMetadata. */
struct ebb_pc_src {
    enum ebb_source      source;
    unsigned             set;   /* EBB_PC_* present in this source */
    struct ebb_proxy_cfg v;     /* values of the set fields; v.metadata owned, sources = source */
};

/* Parses a ProxyConfig mapping node n (NULL or null = empty) of d into out,
 * which must be zeroed with out->source set.  Validates every value where it
 * is written, including the EXIT_ON_ZERO_ACTIVE_CONNECTIONS and
 * MINIMUM_DRAIN_DURATION metadata.  0 or EBB_ECONFIG. */
int ebb_pc_parse(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                 struct ebb_pc_src *out, char *err, size_t errlen);
/* Parses a whole text (PROXY_CONFIG or the annotation value) as ProxyConfig. */
int ebb_pc_parse_text(struct ebb_ydoc *d, const char *text, size_t len,
                      struct ebb_pc_src *out, char *err, size_t errlen);
void ebb_pc_src_free(struct ebb_pc_src *s);
/* Reads the mesh config, PROXY_CONFIG, the annotations file and the
 * environment of args, merges them over file_pc (ebb.yaml proxy_config:,
 * may be NULL) and the defaults into cfg->proxy, and sets cfg->mesh_file and
 * cfg->annotations_file.  0 or EBB_ECONFIG. */
int ebb_proxy_config_load(struct ebb_config *cfg, const struct ebb_config_args *args,
                          const struct ebb_pc_src *file_pc, char *err, size_t errlen);
/* ebb_config_load() with ebb.yaml's contents given as text[0..len) (NULL =
 * no ebb.yaml), named args->file or "ebb.yaml" in errors; the other sources
 * are read as usual.  For the fuzz driver and tests. */
int ebb_config_load_text(const struct ebb_config_args *args, const char *text, size_t len,
                         struct ebb_config **out, char *err, size_t errlen);
/* Sets every ProxyConfig value of pc to its default, source DEFAULT. */
void ebb_proxy_config_default(struct ebb_proxy_cfg *pc);
#endif

#endif

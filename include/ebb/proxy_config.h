/*
 * proxy_config.h - the Istio ProxyConfig knobs ebb honours (SPEC §3.5),
 * merged from every source of SPEC §4, each value with the source it came
 * from (src/control/proxy_config.c).  Part of the effective config
 * (config.h); loading and merging: config_sources.h.
 */
#ifndef EBB_PROXY_CONFIG_H
#define EBB_PROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* A proxyMetadata entry. */
struct ebb_kv {
    char *key;
    char *value;              /* may contain any byte except NUL */
    enum ebb_source source;   /* the source whose value won the merge */
};

/* The Istio ProxyConfig subset ebb honours, with each value's source
 * (DEFAULT = not set).  Fields and defaults: ebb_pc_section (config_table.c). */
struct ebb_proxy_cfg {
    uint64_t termination_drain_ms;  enum ebb_source termination_drain_src;  /* 5s */
    uint64_t drain_duration_ms;     enum ebb_source drain_duration_src;     /* 45s */
    uint32_t concurrency;           enum ebb_source concurrency_src;        /* 2; 0 = nproc */
    uint16_t admin_port;            enum ebb_source admin_port_src;         /* 15000 */
    uint16_t status_port;           enum ebb_source status_port_src;        /* 15020 */
    bool     hold_app;              enum ebb_source hold_app_src;           /* holdApplicationUntilProxyStarts */
    uint64_t detect_timeout_ms;     enum ebb_source detect_timeout_src;     /* protocolDetectionTimeout, 0s */
    struct ebb_kv *metadata;        /* merged proxyMetadata, sorted by key */
    size_t   nmetadata;
    /* derived from metadata/env */
    bool     exit_on_zero;          enum ebb_source exit_on_zero_src;       /* EXIT_ON_ZERO_ACTIVE_CONNECTIONS */
    uint64_t min_drain_ms;          enum ebb_source min_drain_src;          /* MINIMUM_DRAIN_DURATION, 5s */
};

/* Sets every ProxyConfig value of pc to its default, source DEFAULT, and
 * empties the metadata (without freeing it). */
void ebb_proxy_config_default(struct ebb_proxy_cfg *pc);

/* Parses a downward-API annotations file's contents (key="value" lines).
 * Returns 0 and sets *value to the malloc'd, unquoted value of key (NULL if
 * absent), or EBB_ECONFIG with "path:line: reason" in err.  Every line is
 * checked, not only the one asked for; blank lines are skipped and a CR
 * before the LF is tolerated.  A key given twice is an error. */
int ebb_annotations_get(const char *path, const char *text, size_t len, const char *key,
                        char **value, char *err, size_t errlen);

#endif

/*
 * config_load.h - loading the effective configuration (config.h) from
 * ebb.yaml and the ProxyConfig sources, and printing it.
 *
 * Loading is pure apart from reading files and the environment: it never
 * opens sockets.  Errors are written into a caller buffer as one line that
 * names the source (file:line or variable), the key path and the reason.
 */
#ifndef EBB_CONFIG_LOAD_H
#define EBB_CONFIG_LOAD_H

#include <stddef.h>

#include "ebb/config.h"

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
 * become U+FFFD); the caller frees it.  NULL when out of memory. */
char *ebb_config_to_json(const struct ebb_config *cfg);

/* docs/config.md's tables, as Markdown rendered from the directive tables
 * (config_table.h): every ebb.yaml key, or every ProxyConfig field.
 * Returns a malloc'd string; the caller frees it. */
enum ebb_docs_table { EBB_DOCS_FILE_KEYS, EBB_DOCS_PROXY_CONFIG };
char *ebb_config_docs_markdown(enum ebb_docs_table table);

/* Envoy's stat name of a listener address: "0.0.0.0_15006", and "[__]_15006" for "::"
 * (brackets, '_' for ':'): no ':' may reach a stat name, as pilot-agent splits /stats lines
 * at ':'.  A listener's default name is the same. */
void ebb_listener_addr_name(const char *address, unsigned port, char *out, size_t len);

#endif

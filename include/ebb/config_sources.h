/*
 * config_sources.h - the ProxyConfig sources and their merge
 * (src/control/proxy_config.c), and loading ebb.yaml from text
 * (src/control/config.c).  Internal to src/control/config*.c and
 * proxy_config.c, their unit tests and the fuzz driver.
 */
#ifndef EBB_CONFIG_SOURCES_H
#define EBB_CONFIG_SOURCES_H

#include "ebb/config_load.h"
#include "ebb/config_yaml.h"

/* One source's ProxyConfig: the values it sets (their *_src is the source;
 * DEFAULT = not set by it) and its proxyMetadata (owned). */
struct ebb_pc_src {
    enum ebb_source      source;
    struct ebb_proxy_cfg v;
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
 * environment of args, and merges them over the defaults and file_pc
 * (ebb.yaml proxy_config:, may be NULL) into cfg->proxy.  On entry,
 * cfg->proxy holds ebb.yaml's top-level settings (the values whose source
 * is EBB_SRC_FILE), which outrank every source.  Sets cfg->mesh_file and
 * cfg->annotations_file.  0 or EBB_ECONFIG. */
int ebb_proxy_config_load(struct ebb_config *cfg, const struct ebb_config_args *args,
                          const struct ebb_pc_src *file_pc, char *err, size_t errlen);

/* ebb_config_load() with ebb.yaml's contents given as text[0..len) (NULL =
 * no ebb.yaml), named args->file or "ebb.yaml" in errors; the other sources
 * are read as usual.  For the fuzz driver and tests. */
int ebb_config_load_text(const struct ebb_config_args *args, const char *text, size_t len,
                         struct ebb_config **out, char *err, size_t errlen);

#endif

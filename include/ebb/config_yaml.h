/*
 * config_yaml.h - reading YAML (and JSON) config documents with libyaml:
 * error locations, key folding, typed scalars (src/control/config_yaml.c).
 * Internal to src/control/config*.c and proxy_config.c, their unit tests
 * and the fuzz driver; not for other modules.
 */
#ifndef EBB_CONFIG_YAML_H
#define EBB_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
/* Iterates a checked mapping's pairs (ebb_ymap first): k is the key
 * string, v the value node. */
#define EBB_YMAP_EACH(d, n, pair, k, v)                                              \
    for (const yaml_node_pair_t *pair = (n)->data.mapping.pairs.start;               \
         pair < (n)->data.mapping.pairs.top &&                                       \
         ((k) = (const char *)ebb_ynode(d, pair->key)->data.scalar.value,            \
          (v) = ebb_ynode(d, pair->value), 1);                                       \
         pair++)
/* Items of a sequence node. */
#define EBB_YSEQ_LEN(n) ((size_t)((n)->data.sequence.items.top - (n)->data.sequence.items.start))
/* n must be a list (path: expected a list, got ...) of at most max items. */
int ebb_yseq(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, size_t max,
             char *err, size_t errlen);
/* Scalar accessors: each errs with the bad value quoted. */
/* A plain scalar "<word> *#...*" (a YAML comment Markdown turned into italics): the malloc'd
 * <word>, which the value parsers accept with a warning; NULL for any other value. */
char *ebb_ymarkdown_word(const yaml_node_t *n, const char *v);
int ebb_ystr(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
             const char **out, char *err, size_t errlen);
int ebb_yduration(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                  uint64_t *ms, char *err, size_t errlen);
int ebb_ybool(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, bool *out,
              char *err, size_t errlen);
int ebb_yuint(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, uint64_t min,
              uint64_t max, const char *what, uint64_t *out, char *err, size_t errlen);
/* A numeric IPv4 or IPv6 address ([v6] brackets dropped) into *out (malloc'd;
 * the old value freed). */
int ebb_yaddress(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, char **out,
                 char *err, size_t errlen);
/* Reads a whole file (at most 16 MiB) into a malloc'd NUL-terminated
 * buffer.  Returns 0, or a negative errno (-EFBIG when too large). */
int ebb_read_file(const char *path, char **text, size_t *len);
/* The message of a duration/bool value error, shared with the environment. */
#define EBB_DURATION_HINT "is not a Go duration (e.g. 500ms, 5s, 1m30s)"
#define EBB_BOOL_HINT "is not a Go bool (1 t T TRUE true True 0 f F FALSE false False)"

#endif

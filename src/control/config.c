/*
 * config.c - ebb.yaml: the built-in default, loading with libyaml, checks
 * of every value, and ebb_config_load(), which also merges the ProxyConfig
 * sources (proxy_config.c).  The YAML helpers shared with proxy_config.c
 * (error locations, typed scalars, key folding) are here too.
 *
 * Every error is one line "where: key.path: reason" with the bad value
 * quoted; "where" is "file:line" for files (docs/config.md).
 */
#define EBB_CONFIG_INTERNAL
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/config.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/parse.h"

#define FILE_MAX (16u << 20)            /* biggest config file we read */
#define QUOTE_MAX 60                    /* bytes of a value quoted in an error */
#define CONCURRENCY_MAX 1024
#define CONNECT_TIMEOUT_CAP_MS 10000
#define MAX_LISTENERS 1024              /* list caps keep every check cheap */
#define MAX_CLUSTERS 4096
#define MAX_ROUTES 4096                 /* per listener */
#define MAX_ENDPOINTS 1024              /* per cluster */

/* ------------------------------------------------------------------ */
/* sources                                                            */

const char *ebb_source_name(enum ebb_source s)
{
    switch (s) {
    case EBB_SRC_DEFAULT: return "default";
    case EBB_SRC_MESH: return "mesh config";
    case EBB_SRC_PROXY_CONFIG: return "PROXY_CONFIG";
    case EBB_SRC_ANNOTATION: return "annotation";
    case EBB_SRC_ENV: return "env";
    case EBB_SRC_FILE: return "file";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* YAML helpers (shared, see config.h EBB_CONFIG_INTERNAL)            */

int ebb_read_file(const char *path, char **text, size_t *len)
{
    struct stat st;
    size_t n = 0, cap = 4096;
    char *buf;
    int fd, e;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        e = S_ISDIR(st.st_mode) ? EISDIR : errno;
        close(fd);
        return -e;
    }
    buf = ebb_xmalloc(cap + 1);
    for (;;) {
        ssize_t r;
        if (n == cap) {
            if (cap >= FILE_MAX) {
                free(buf);
                close(fd);
                return -EFBIG;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = nb;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = errno;
            free(buf);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

void ebb_quote(const char *s, size_t n, char *out, size_t outlen)
{
    char esc[EBB_JSON_ESC_MAX];
    size_t o = 0, i = 0, used, k;

    if (outlen < 8) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    while (i < n && i < QUOTE_MAX) {
        k = ebb_json_escape(s + i, n - i, &used, esc);
        if (o + (k ? k : used) + 5 > outlen)   /* keep room for ..." and the NUL */
            break;
        memcpy(out + o, k ? esc : s + i, k ? k : used);
        o += k ? k : used;
        i += used;
    }
    if (i < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

void ebb_ypath(char *out, size_t outlen, const char *path, const char *key)
{
    size_t o = 0;

    if (outlen == 0)
        return;
    for (; path && *path && o + 1 < outlen; path++)
        out[o++] = *path;
    if (o && o + 1 < outlen)
        out[o++] = '.';
    for (; *key && o + 1 < outlen; key++)
        out[o++] = *key;
    out[o] = '\0';
}

/* "label:line: prefix" or "label: prefix" for node n (may be NULL). */
static size_t yloc(const struct ebb_ydoc *d, const yaml_node_t *n, char *out, size_t outlen)
{
    int r;

    if (d->line)
        r = snprintf(out, outlen, "%s:%lu: %s", d->label, d->line, d->prefix ? d->prefix : "");
    else if (d->marks && n)
        r = snprintf(out, outlen, "%s:%lu: %s", d->label, (unsigned long)n->start_mark.line + 1,
                     d->prefix ? d->prefix : "");
    else
        r = snprintf(out, outlen, "%s: %s", d->label, d->prefix ? d->prefix : "");
    if (r < 0)
        return 0;
    return (size_t)r < outlen ? (size_t)r : outlen ? outlen - 1 : 0;
}

static void yformat(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, char *out,
                    size_t outlen, const char *fmt, va_list ap)
{
    size_t o;

    if (outlen == 0)
        return;
    o = yloc(d, n, out, outlen);
    if (path && *path && o < outlen)
        o += (size_t)snprintf(out + o, outlen - o, "%s: ", path);
    if (o < outlen)
        vsnprintf(out + o, outlen - o, fmt, ap);
}

int ebb_yerr(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, char *err,
             size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    yformat(d, n, path, err, errlen, fmt, ap);
    va_end(ap);
    return EBB_ECONFIG;
}

void ebb_ywarn(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
               const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (ebb_log_level < EBB_LOG_WARN)
        return;
    va_start(ap, fmt);
    yformat(d, n, path, line, sizeof(line), fmt, ap);
    va_end(ap);
    ebb_warn("config", "%s", line);
}

int ebb_ydoc_load(struct ebb_ydoc *d, const char *text, size_t len, char *err, size_t errlen)
{
    yaml_parser_t p;
    yaml_document_t extra;
    int rc = 0;

    if (!yaml_parser_initialize(&p)) {
        snprintf(err, errlen, "%s: out of memory", d->label);
        return EBB_ECONFIG;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)(text ? text : ""), text ? len : 0);
    if (!yaml_parser_load(&p, &d->doc))
        goto syntax;
    d->loaded = true;
    if (yaml_document_get_root_node(&d->doc)) {
        /* a second document would be silently ignored: refuse it */
        if (!yaml_parser_load(&p, &extra))
            goto syntax;
        yaml_node_t *more = yaml_document_get_root_node(&extra);
        yaml_node_t at = { .start_mark = more ? more->start_mark : p.mark };
        yaml_document_delete(&extra);
        if (more) {
            rc = ebb_yerr(d, &at, NULL, err, errlen,
                          "more than one YAML document (only one is read)");
            goto out;
        }
    }
    goto out;
syntax: {
        char where[512];
        size_t o;
        yaml_node_t fake = { .start_mark = p.problem_mark };

        if (d->line || !d->marks) {
            o = yloc(d, NULL, where, sizeof(where));
            snprintf(where + o, sizeof(where) - o, "invalid YAML/JSON at line %zu column %zu",
                     p.problem_mark.line + 1, p.problem_mark.column + 1);
        } else {
            o = yloc(d, &fake, where, sizeof(where));
            snprintf(where + o, sizeof(where) - o, "invalid YAML at column %zu",
                     p.problem_mark.column + 1);
        }
        snprintf(err, errlen, "%s: %s%s%s", where, p.problem ? p.problem : "syntax error",
                 p.context ? " " : "", p.context ? p.context : "");
        rc = EBB_ECONFIG;
    }
out:
    yaml_parser_delete(&p);
    return rc;
}

void ebb_ydoc_free(struct ebb_ydoc *d)
{
    if (d->loaded)
        yaml_document_delete(&d->doc);
    d->loaded = false;
}

yaml_node_t *ebb_ydoc_root(struct ebb_ydoc *d)
{
    return d->loaded ? yaml_document_get_root_node(&d->doc) : NULL;
}

yaml_node_t *ebb_ynode(const struct ebb_ydoc *d, int id)
{
    /* yaml_document_get_node() takes a non-const document but only reads it */
    return yaml_document_get_node((yaml_document_t *)&d->doc, id);
}

bool ebb_ykey_is(const char *key, const char *snake)
{
    while (*key) {
        if (*key >= 'A' && *key <= 'Z') {
            if (snake[0] != '_' || snake[1] != *key - 'A' + 'a')
                return false;
            snake += 2;
        } else {
            if (*snake != *key)
                return false;
            snake++;
        }
        key++;
    }
    return *snake == '\0';
}

bool ebb_ynull(const yaml_node_t *n)
{
    const char *v;

    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return n == NULL;
    v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a map";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_SCALAR_NODE: return "a scalar";
    default: return "nothing";
    }
}

/* Key folded to snake_case (malloc'd) for duplicate detection. */
static char *fold_key(const char *k)
{
    char *out = ebb_xmalloc(2 * strlen(k) + 1), *o = out;

    for (; *k; k++) {
        if (*k >= 'A' && *k <= 'Z') {
            *o++ = '_';
            *o++ = (char)(*k - 'A' + 'a');
        } else {
            *o++ = *k;
        }
    }
    *o = '\0';
    return out;
}

struct folded_key {
    char  *key;     /* folded (or copied) key */
    size_t index;   /* position in the mapping */
};

static int folded_cmp(const void *a, const void *b)
{
    const struct folded_key *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c ? c : (x->index > y->index) - (x->index < y->index);
}

int ebb_ymap(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, bool fold,
             char *err, size_t errlen)
{
    const yaml_node_pair_t *start;
    struct folded_key *keys;
    size_t npairs, nkeys = 0;
    int rc = 0;

    if (n->type != YAML_MAPPING_NODE) {
        char q[96];
        if (n->type == YAML_SCALAR_NODE) {
            ebb_quote((const char *)n->data.scalar.value, n->data.scalar.length, q, sizeof(q));
            return ebb_yerr(d, n, path, err, errlen, "expected a map, got %s", q);
        }
        return ebb_yerr(d, n, path, err, errlen, "expected a map, got %s", node_kind(n));
    }
    start = n->data.mapping.pairs.start;
    npairs = (size_t)(n->data.mapping.pairs.top - start);
    keys = ebb_xcalloc(npairs ? npairs : 1, sizeof(*keys));
    for (size_t i = 0; i < npairs; i++) {
        const yaml_node_t *k = ebb_ynode(d, start[i].key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            rc = ebb_yerr(d, k ? k : n, path, err, errlen, "map keys must be strings, got %s",
                          k ? node_kind(k) : "nothing");
            goto out;
        }
        if (strlen((const char *)k->data.scalar.value) != k->data.scalar.length) {
            rc = ebb_yerr(d, k, path, err, errlen, "a key contains a NUL byte");
            goto out;
        }
        keys[i].key = fold ? fold_key((const char *)k->data.scalar.value)
                           : ebb_xstrdup((const char *)k->data.scalar.value);
        keys[i].index = i;
        nkeys++;
    }
    /* sorted, so a huge map costs n log n; report the later of two equal keys */
    qsort(keys, nkeys, sizeof(*keys), folded_cmp);
    for (size_t i = 1; i < nkeys; i++) {
        if (strcmp(keys[i - 1].key, keys[i].key) != 0)
            continue;
        const yaml_node_t *ka = ebb_ynode(d, start[keys[i - 1].index].key);
        const yaml_node_t *kb = ebb_ynode(d, start[keys[i].index].key);
        char sub[512];
        ebb_ypath(sub, sizeof(sub), path, (const char *)kb->data.scalar.value);
        if (d->marks && !d->line)
            rc = ebb_yerr(d, kb, sub, err, errlen, "given twice (also as \"%s\" at line %lu)",
                          (const char *)ka->data.scalar.value,
                          (unsigned long)ka->start_mark.line + 1);
        else
            rc = ebb_yerr(d, kb, sub, err, errlen, "given twice (also as \"%s\")",
                          (const char *)ka->data.scalar.value);
        break;
    }
out:
    for (size_t i = 0; i < npairs; i++)
        free(keys[i].key);
    free(keys);
    return rc;
}

int ebb_ystr(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
             const char **out, char *err, size_t errlen)
{
    if (n->type != YAML_SCALAR_NODE)
        return ebb_yerr(d, n, path, err, errlen, "expected a string, got %s", node_kind(n));
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        char q[96];
        ebb_quote((const char *)n->data.scalar.value, n->data.scalar.length, q, sizeof(q));
        return ebb_yerr(d, n, path, err, errlen, "%s contains a NUL byte", q);
    }
    *out = (const char *)n->data.scalar.value;
    return 0;
}

/*
 * The seed document's `terminationDrainDuration: 20s *# 默认为 5s*` is a YAML
 * comment that Markdown turned into italics: "*#" is not a comment start,
 * so YAML reads it as part of the value.  A plain scalar "<word> *#...*" is
 * read as <word> with a warning, so the snippet works verbatim.  Returns the
 * malloc'd word, or NULL when the value has no such tail.
 */
static char *markdown_comment_word(const yaml_node_t *n, const char *v)
{
    const char *sp, *star;
    size_t len = strlen(v);

    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || len < 4 || v[len - 1] != '*')
        return NULL;
    sp = strpbrk(v, " \t");
    if (!sp || sp == v)
        return NULL;
    star = sp;
    while (*star == ' ' || *star == '\t')
        star++;
    if (star[0] != '*' || star[1] != '#' || star + 1 >= v + len - 1)
        return NULL;
    return ebb_xstrndup(v, (size_t)(sp - v));
}

typedef int (*scalar_parse_fn)(const char *s, const void *arg, void *out);

/* Runs parse on the scalar; on failure retries the Markdown-comment form. */
static int yparse(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                  scalar_parse_fn parse, const void *arg, void *out, const char **bad,
                  char *err, size_t errlen)
{
    const char *v;
    char *word;
    int rc;

    rc = ebb_ystr(d, n, path, &v, err, errlen);
    if (rc)
        return rc;
    *bad = v;
    if (parse(v, arg, out) == 0)
        return 0;
    word = markdown_comment_word(n, v);
    if (word && parse(word, arg, out) == 0) {
        char q[96];
        ebb_quote(v, strlen(v), q, sizeof(q));
        ebb_ywarn(d, n, path, "read %s as \"%s\": \"*#...*\" looks like a comment mangled by "
                  "Markdown (a YAML comment is \" # ...\")", q, word);
        free(word);
        return 0;
    }
    free(word);
    return 1;
}

static int parse_dur_cb(const char *s, const void *arg, void *out)
{
    (void)arg;
    return ebb_parse_duration_ms(s, out);
}

static int parse_bool_cb(const char *s, const void *arg, void *out)
{
    (void)arg;
    return ebb_parse_bool(s, out);
}

static int parse_uint_cb(const char *s, const void *arg, void *out)
{
    const uint64_t *range = arg;
    return ebb_parse_uint(s, range[0], range[1], out);
}

int ebb_yduration(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                  uint64_t *ms, char *err, size_t errlen)
{
    const char *v = NULL;
    uint64_t tmp;
    char q[96];
    int rc = yparse(d, n, path, parse_dur_cb, NULL, ms, &v, err, errlen);

    if (rc <= 0)
        return rc;
    ebb_quote(v, strlen(v), q, sizeof(q));
    if (v[0] == '-' && ebb_parse_duration_ms(v + 1, &tmp) == 0)
        return ebb_yerr(d, n, path, err, errlen, "%s is negative (must be >= 0)", q);
    if (v[0] && strspn(v, "0123456789") == strlen(v))
        return ebb_yerr(d, n, path, err, errlen, "%s " EBB_DURATION_HINT ": a unit is required", q);
    return ebb_yerr(d, n, path, err, errlen, "%s " EBB_DURATION_HINT, q);
}

int ebb_ybool(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, bool *out,
              char *err, size_t errlen)
{
    const char *v = NULL;
    char q[96];
    int rc = yparse(d, n, path, parse_bool_cb, NULL, out, &v, err, errlen);

    if (rc <= 0)
        return rc;
    ebb_quote(v, strlen(v), q, sizeof(q));
    return ebb_yerr(d, n, path, err, errlen, "%s " EBB_BOOL_HINT, q);
}

int ebb_yuint(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, uint64_t min,
              uint64_t max, const char *what, uint64_t *out, char *err, size_t errlen)
{
    const uint64_t range[2] = { min, max };
    const char *v = NULL;
    char q[96];
    int rc = yparse(d, n, path, parse_uint_cb, range, out, &v, err, errlen);

    if (rc <= 0)
        return rc;
    ebb_quote(v, strlen(v), q, sizeof(q));
    return ebb_yerr(d, n, path, err, errlen, "%s is not %s (%" PRIu64 "-%" PRIu64 ")", q, what,
                    min, max);
}

/* ------------------------------------------------------------------ */
/* defaults and freeing                                               */

static void listener_free(struct ebb_listener_cfg *l)
{
    free(l->name);
    free(l->address);
    free(l->cluster);
    for (size_t i = 0; i < l->nroutes; i++) {
        free(l->routes[i].host);
        free(l->routes[i].cluster);
    }
    free(l->routes);
}

static void listeners_free(struct ebb_listener_cfg *ls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        listener_free(&ls[i]);
    free(ls);
}

static void cluster_free(struct ebb_cluster_cfg *c)
{
    free(c->name);
    for (size_t i = 0; i < c->nendpoints; i++)
        free(c->endpoints[i].host);
    free(c->endpoints);
}

static void clusters_free(struct ebb_cluster_cfg *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cluster_free(&cs[i]);
    free(cs);
}

void ebb_config_free(struct ebb_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->file);
    free(cfg->mesh_file);
    free(cfg->annotations_file);
    for (size_t i = 0; i < cfg->proxy.nmetadata; i++) {
        free(cfg->proxy.metadata[i].key);
        free(cfg->proxy.metadata[i].value);
    }
    free(cfg->proxy.metadata);
    free(cfg->admin_address);
    free(cfg->status_address);
    free(cfg->ready_address);
    listeners_free(cfg->listeners, cfg->nlisteners);
    clusters_free(cfg->clusters, cfg->nclusters);
    free(cfg->access_log);
    free(cfg->log_level);
    free(cfg);
}

static void cluster_defaults(struct ebb_cluster_cfg *c)
{
    c->protocol = EBB_UP_HTTP1;
    c->connect_timeout_ms = 1000;
    c->request_timeout_ms = 0;
    c->pool_max_idle = 64;
    c->pool_idle_timeout_ms = 60000;
}

static void listener_defaults(struct ebb_listener_cfg *l)
{
    l->direction = EBB_DIR_INBOUND;
    l->protocol = EBB_PROTO_HTTP;
    l->cluster_idx = EBB_NO_CLUSTER;
    l->max_connections = 10000;
}

static void default_topology(struct ebb_config *cfg)
{
    struct ebb_listener_cfg *l;
    struct ebb_cluster_cfg *c;

    cfg->clusters = ebb_xcalloc(1, sizeof(*cfg->clusters));
    cfg->nclusters = 1;
    c = &cfg->clusters[0];
    cluster_defaults(c);
    c->name = ebb_xstrdup("inbound");
    c->endpoints = ebb_xcalloc(1, sizeof(*c->endpoints));
    c->nendpoints = 1;
    c->endpoints[0].host = ebb_xstrdup("127.0.0.1");
    c->endpoints[0].port = 8080;

    cfg->listeners = ebb_xcalloc(2, sizeof(*cfg->listeners));
    cfg->nlisteners = 2;
    l = &cfg->listeners[0];
    listener_defaults(l);
    l->name = ebb_xstrdup("inbound");
    l->address = ebb_xstrdup("0.0.0.0");
    l->port = 15006;
    l->direction = EBB_DIR_INBOUND;
    l->cluster = ebb_xstrdup("inbound");
    l->cluster_idx = 0;
    l = &cfg->listeners[1];
    listener_defaults(l);
    l->name = ebb_xstrdup("outbound");
    l->address = ebb_xstrdup("127.0.0.1");
    l->port = 15001;
    l->direction = EBB_DIR_OUTBOUND;
}

struct ebb_config *ebb_config_default(void)
{
    struct ebb_config *cfg = ebb_xcalloc(1, sizeof(*cfg));

    ebb_proxy_config_default(&cfg->proxy);
    cfg->admin_address = ebb_xstrdup("127.0.0.1");
    cfg->status_address = ebb_xstrdup("0.0.0.0");
    cfg->ready_address = ebb_xstrdup("0.0.0.0");
    cfg->ready_port = 15021;
    default_topology(cfg);
    ebb_h1_limits_default(&cfg->limits.h1);
    cfg->limits.max_request_body = 0;
    cfg->limits.request_headers_timeout_ms = 10000;
    cfg->limits.idle_timeout_ms = 3600000;
    cfg->limits.h2_max_concurrent_streams = 100;
    cfg->limits.buffer_size = 64 * 1024;
    cfg->drain.idle_close_after_ms = cfg->proxy.min_drain_ms;
    cfg->drain.idle_close_after_set = false;
    cfg->drain.idle_close_spread_ms = 1000;
    cfg->drain.drain_timeout_ms = 1000;
    cfg->drain.drain_deadline_ms = 0;
    cfg->drain.linger_ms = 2000;
    cfg->access_log = ebb_xstrdup("-");
    cfg->log_level = ebb_xstrdup("info");
    return cfg;
}

/* ------------------------------------------------------------------ */
/* ebb.yaml                                                           */

/* What ebb.yaml set that outranks ProxyConfig, and node positions kept
 * for the checks made after the merge. */
struct file_ctx {
    struct ebb_ydoc    d;
    struct ebb_pc_src  pc;              /* proxy_config: */
    bool               has_concurrency, has_admin_port, has_status_port;
    uint32_t           concurrency;
    uint16_t           admin_port, status_port;
    const yaml_node_t *admin_port_node, *status_port_node, *ready_port_node;
    const yaml_node_t **lport_nodes;    /* per listener, for port collisions */
    const yaml_node_t *listeners_node;
};

/* Iterates a mapping's pairs: k is the key string, v the value node. */
#define MAP_EACH(d, n, pair, k, v)                                                   \
    for (const yaml_node_pair_t *pair = (n)->data.mapping.pairs.start;               \
         pair < (n)->data.mapping.pairs.top &&                                       \
         ((k) = (const char *)ebb_ynode(d, pair->key)->data.scalar.value,            \
          (v) = ebb_ynode(d, pair->value), 1);                                       \
         pair++)

static int yseq(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, char *err,
                size_t errlen)
{
    if (n->type == YAML_SEQUENCE_NODE)
        return 0;
    if (n->type == YAML_SCALAR_NODE) {
        char q[96];
        ebb_quote((const char *)n->data.scalar.value, n->data.scalar.length, q, sizeof(q));
        return ebb_yerr(d, n, path, err, errlen, "expected a list, got %s", q);
    }
    return ebb_yerr(d, n, path, err, errlen, "expected a list, got %s", node_kind(n));
}

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static int yseq_max(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                    size_t max, char *err, size_t errlen)
{
    int rc = yseq(d, n, path, err, errlen);

    if (rc == 0 && seq_len(n) > max)
        rc = ebb_yerr(d, n, path, err, errlen, "%zu items, more than the %zu allowed",
                      seq_len(n), max);
    return rc;
}

static int ydur_into(const struct ebb_ydoc *d, const yaml_node_t *v, const char *path,
                     uint64_t *out, bool positive, char *err, size_t errlen)
{
    uint64_t ms;
    int rc = ebb_yduration(d, v, path, &ms, err, errlen);

    if (rc)
        return rc;
    if (positive && ms == 0)
        return ebb_yerr(d, v, path, err, errlen, "\"%s\" must be more than 0",
                        (const char *)v->data.scalar.value);
    *out = ms;
    return 0;
}

static bool is_numeric_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A bind address: numeric IPv4 or IPv6, brackets around IPv6 allowed. */
static int yaddress(const struct ebb_ydoc *d, const yaml_node_t *v, const char *path,
                    char **out, char *err, size_t errlen)
{
    const char *s;
    char *a;
    int rc = ebb_ystr(d, v, path, &s, err, errlen);

    if (rc)
        return rc;
    size_t len = strlen(s);
    if (len > 2 && s[0] == '[' && s[len - 1] == ']')
        a = ebb_xstrndup(s + 1, len - 2);
    else
        a = ebb_xstrdup(s);
    if (!is_numeric_ip(a) || (s[0] == '[' && !strchr(a, ':'))) {
        char q[96];
        free(a);
        ebb_quote(s, len, q, sizeof(q));
        return ebb_yerr(d, v, path, err, errlen,
                        "%s is not a numeric IP address (e.g. 0.0.0.0, 127.0.0.1, ::)", q);
    }
    free(*out);
    *out = a;
    return 0;
}

static int yport(const struct ebb_ydoc *d, const yaml_node_t *v, const char *path,
                 uint16_t *out, char *err, size_t errlen)
{
    uint64_t p;
    int rc = ebb_yuint(d, v, path, 1, 65535, "a port", &p, err, errlen);

    if (rc == 0)
        *out = (uint16_t)p;
    return rc;
}

/* admin:, status:, readiness: { address, port } */
static int parse_endpoint_section(struct file_ctx *fc, const yaml_node_t *n, const char *path,
                                  char **address, uint16_t *port, bool *port_set,
                                  const yaml_node_t **port_node, char *err, size_t errlen)
{
    const struct ebb_ydoc *d = &fc->d;
    const char *k;
    const yaml_node_t *v;
    char sub[256];
    int rc = ebb_ymap(d, n, path, true, err, errlen);

    if (rc)
        return rc;
    MAP_EACH(d, n, pair, k, v) {
        ebb_ypath(sub, sizeof(sub), path, k);
        if (ebb_ynull(v))
            continue;
        if (ebb_ykey_is(k, "address")) {
            rc = yaddress(d, v, sub, address, err, errlen);
        } else if (ebb_ykey_is(k, "port")) {
            rc = yport(d, v, sub, port, err, errlen);
            if (port_set)
                *port_set = true;
            *port_node = v;
        } else {
            ebb_ywarn(d, v, sub, "unknown field, ignored");
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* "host:port" or "[v6]:port". */
static int parse_endpoint(const struct ebb_ydoc *d, const yaml_node_t *v, const char *path,
                          struct ebb_endpoint *ep, char *err, size_t errlen)
{
    const char *s, *host, *port_s;
    size_t hlen;
    uint64_t port;
    char q[96];
    int rc = ebb_ystr(d, v, path, &s, err, errlen);

    if (rc)
        return rc;
    ebb_quote(s, strlen(s), q, sizeof(q));
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            goto bad;
        host = s + 1;
        hlen = (size_t)(rb - host);
        port_s = rb + 2;
        char *h = ebb_xstrndup(host, hlen);
        unsigned char buf[16];
        bool ok = inet_pton(AF_INET6, h, buf) == 1;
        free(h);
        if (!ok)
            return ebb_yerr(d, v, path, err, errlen, "%s: not an IPv6 address inside []", q);
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            goto bad;
        host = s;
        hlen = (size_t)(colon - s);
        port_s = colon + 1;
        if (memchr(host, ':', hlen))
            return ebb_yerr(d, v, path, err, errlen,
                            "%s: an IPv6 address needs brackets, e.g. [::1]:8080", q);
        if (hlen == 0 || hlen > 253)
            goto bad;
        for (size_t i = 0; i < hlen; i++) {
            char c = host[i];
            if (!(isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_'))
                return ebb_yerr(d, v, path, err, errlen,
                                "%s: \"%.*s\" is not an IP address or host name", q, (int)hlen,
                                host);
        }
    }
    if (ebb_parse_uint(port_s, 1, 65535, &port) != 0)
        return ebb_yerr(d, v, path, err, errlen, "%s: \"%s\" is not a port (1-65535)", q, port_s);
    ep->host = ebb_xstrndup(host, hlen);
    ep->port = (uint16_t)port;
    return 0;
bad:
    return ebb_yerr(d, v, path, err, errlen,
                    "%s is not host:port (e.g. 127.0.0.1:8080, [::1]:8080, app.local:80)", q);
}

static int parse_pool(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                      struct ebb_cluster_cfg *c, char *err, size_t errlen)
{
    const char *k;
    const yaml_node_t *v;
    char sub[256];
    uint64_t u;
    int rc = ebb_ymap(d, n, path, true, err, errlen);

    if (rc)
        return rc;
    MAP_EACH(d, n, pair, k, v) {
        ebb_ypath(sub, sizeof(sub), path, k);
        if (ebb_ynull(v))
            continue;
        if (ebb_ykey_is(k, "max_idle")) {
            rc = ebb_yuint(d, v, sub, 0, 65535, "an integer", &u, err, errlen);
            c->pool_max_idle = (uint32_t)u;
        } else if (ebb_ykey_is(k, "idle_timeout")) {
            rc = ydur_into(d, v, sub, &c->pool_idle_timeout_ms, true, err, errlen);
        } else {
            ebb_ywarn(d, v, sub, "unknown field, ignored");
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_cluster(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                         struct ebb_cluster_cfg *c, char *err, size_t errlen)
{
    const char *k, *s;
    const yaml_node_t *v, *eps = NULL;
    char sub[256];
    int rc = ebb_ymap(d, n, path, true, err, errlen);

    if (rc)
        return rc;
    cluster_defaults(c);
    MAP_EACH(d, n, pair, k, v) {
        ebb_ypath(sub, sizeof(sub), path, k);
        if (ebb_ynull(v))
            continue;
        if (ebb_ykey_is(k, "name")) {
            rc = ebb_ystr(d, v, sub, &s, err, errlen);
            if (rc == 0 && !*s)
                rc = ebb_yerr(d, v, sub, err, errlen, "must not be empty");
            if (rc == 0) {
                free(c->name);
                c->name = ebb_xstrdup(s);
            }
        } else if (ebb_ykey_is(k, "endpoints")) {
            rc = yseq_max(d, v, sub, MAX_ENDPOINTS, err, errlen);
            if (rc)
                return rc;
            eps = v;
            size_t n_eps = seq_len(v);
            if (n_eps == 0)
                return ebb_yerr(d, v, sub, err, errlen, "must list at least one host:port");
            c->endpoints = ebb_xcalloc(n_eps, sizeof(*c->endpoints));
            for (size_t i = 0; i < n_eps; i++) {
                char esub[300];
                snprintf(esub, sizeof(esub), "%.200s[%zu]", sub, i);
                rc = parse_endpoint(d, ebb_ynode(d, v->data.sequence.items.start[i]), esub,
                                    &c->endpoints[i], err, errlen);
                if (rc)
                    return rc;
                c->nendpoints++;
            }
        } else if (ebb_ykey_is(k, "protocol")) {
            rc = ebb_ystr(d, v, sub, &s, err, errlen);
            if (rc == 0) {
                if (!strcmp(s, "http1"))
                    c->protocol = EBB_UP_HTTP1;
                else if (!strcmp(s, "h2c"))
                    c->protocol = EBB_UP_H2C;
                else
                    rc = ebb_yerr(d, v, sub, err, errlen, "\"%s\" is not http1 or h2c", s);
            }
        } else if (ebb_ykey_is(k, "connect_timeout")) {
            rc = ydur_into(d, v, sub, &c->connect_timeout_ms, true, err, errlen);
            if (rc == 0 && c->connect_timeout_ms > CONNECT_TIMEOUT_CAP_MS) {
                ebb_ywarn(d, v, sub, "\"%s\" capped at 10s", (const char *)v->data.scalar.value);
                c->connect_timeout_ms = CONNECT_TIMEOUT_CAP_MS;
            }
        } else if (ebb_ykey_is(k, "request_timeout")) {
            rc = ydur_into(d, v, sub, &c->request_timeout_ms, false, err, errlen);
        } else if (ebb_ykey_is(k, "pool")) {
            rc = parse_pool(d, v, sub, c, err, errlen);
        } else {
            ebb_ywarn(d, v, sub, "unknown field, ignored");
        }
        if (rc)
            return rc;
    }
    if (!c->name)
        return ebb_yerr(d, n, path, err, errlen, "name: missing");
    if (!eps)
        return ebb_yerr(d, n, path, err, errlen,
                        "endpoints: missing (a list of host:port, e.g. [\"127.0.0.1:8080\"])");
    return 0;
}

static int parse_clusters(struct file_ctx *fc, const yaml_node_t *n, struct ebb_config *cfg,
                          char *err, size_t errlen)
{
    const struct ebb_ydoc *d = &fc->d;
    size_t count;
    int rc = yseq_max(d, n, "clusters", MAX_CLUSTERS, err, errlen);

    if (rc)
        return rc;
    count = seq_len(n);
    clusters_free(cfg->clusters, cfg->nclusters);
    cfg->clusters = ebb_xcalloc(count ? count : 1, sizeof(*cfg->clusters));
    cfg->nclusters = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *cn = ebb_ynode(d, n->data.sequence.items.start[i]);
        char path[64];
        snprintf(path, sizeof(path), "clusters[%zu]", i);
        cfg->nclusters++;   /* counted first so a half-parsed cluster is freed */
        rc = parse_cluster(d, cn, path, &cfg->clusters[i], err, errlen);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->clusters[j].name, cfg->clusters[i].name) == 0)
                return ebb_yerr(d, cn, path, err, errlen,
                                "name: \"%s\" is already used by clusters[%zu]",
                                cfg->clusters[i].name, j);
        }
    }
    return 0;
}

static size_t find_cluster(const struct ebb_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nclusters; i++) {
        if (strcmp(cfg->clusters[i].name, name) == 0)
            return i;
    }
    return EBB_NO_CLUSTER;
}

static int parse_routes(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                        struct ebb_listener_cfg *l, const struct ebb_config *cfg, char *err,
                        size_t errlen)
{
    size_t count;
    int rc = yseq_max(d, n, path, MAX_ROUTES, err, errlen);

    if (rc)
        return rc;
    count = seq_len(n);
    l->routes = ebb_xcalloc(count ? count : 1, sizeof(*l->routes));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *rn = ebb_ynode(d, n->data.sequence.items.start[i]);
        struct ebb_route_cfg *r = &l->routes[i];
        const yaml_node_t *v, *cluster_node = NULL;
        const char *k, *s;
        char rpath[128], sub[256];

        snprintf(rpath, sizeof(rpath), "%.100s[%zu]", path, i);
        l->nroutes++;
        rc = ebb_ymap(d, rn, rpath, true, err, errlen);
        if (rc)
            return rc;
        MAP_EACH(d, rn, pair, k, v) {
            ebb_ypath(sub, sizeof(sub), rpath, k);
            if (ebb_ynull(v))
                continue;
            if (ebb_ykey_is(k, "host")) {
                rc = ebb_ystr(d, v, sub, &s, err, errlen);
                if (rc == 0 && !*s)
                    rc = ebb_yerr(d, v, sub, err, errlen, "must not be empty (\"*\" matches all)");
                if (rc == 0) {
                    free(r->host);
                    r->host = ebb_xstrdup(s);
                    for (char *p = r->host; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                }
            } else if (ebb_ykey_is(k, "cluster")) {
                rc = ebb_ystr(d, v, sub, &s, err, errlen);
                if (rc == 0) {
                    free(r->cluster);
                    r->cluster = ebb_xstrdup(s);
                    cluster_node = v;
                }
            } else {
                ebb_ywarn(d, v, sub, "unknown field, ignored");
            }
            if (rc)
                return rc;
        }
        if (!r->host)
            return ebb_yerr(d, rn, rpath, err, errlen, "host: missing (\"*\" matches all)");
        if (!r->cluster)
            return ebb_yerr(d, rn, rpath, err, errlen, "cluster: missing");
        r->cluster_idx = find_cluster(cfg, r->cluster);
        if (r->cluster_idx == EBB_NO_CLUSTER) {
            ebb_ypath(sub, sizeof(sub), rpath, "cluster");
            return ebb_yerr(d, cluster_node, sub, err, errlen,
                            "\"%s\" is not a cluster defined in clusters", r->cluster);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l->routes[j].host, "*") == 0) {
                ebb_ywarn(d, rn, rpath, "unreachable: %s[%zu] (\"*\") matches first", path, j);
                break;
            }
            if (strcmp(l->routes[j].host, r->host) == 0) {
                ebb_ywarn(d, rn, rpath, "unreachable: %s[%zu] has the same host", path, j);
                break;
            }
        }
    }
    return 0;
}

/* Direction/protocol/cluster/routes consistency of one listener. */
static int check_listener(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                          struct ebb_listener_cfg *l, const yaml_node_t *cluster_node,
                          const struct ebb_config *cfg, char *err, size_t errlen)
{
    bool outbound_http = l->direction == EBB_DIR_OUTBOUND && l->protocol == EBB_PROTO_HTTP;
    char sub[256];

    if (l->nroutes && !outbound_http)
        return ebb_yerr(d, n, path, err, errlen,
                        "routes: only outbound http listeners route by host; %s listeners use "
                        "cluster", l->direction == EBB_DIR_INBOUND ? "inbound" : "tcp");
    if (outbound_http && l->cluster)
        return ebb_yerr(d, cluster_node, path, err, errlen,
                        "cluster: outbound http listeners route by host: use routes (a \"*\" "
                        "route catches all)");
    if (!outbound_http && !l->cluster)
        return ebb_yerr(d, n, path, err, errlen, "cluster: missing (%s listeners need one)",
                        l->direction == EBB_DIR_INBOUND ? "inbound" : "outbound tcp");
    if (l->cluster) {
        l->cluster_idx = find_cluster(cfg, l->cluster);
        if (l->cluster_idx == EBB_NO_CLUSTER) {
            ebb_ypath(sub, sizeof(sub), path, "cluster");
            return ebb_yerr(d, cluster_node ? cluster_node : n, sub, err, errlen,
                            "\"%s\" is not a cluster defined in clusters", l->cluster);
        }
    }
    return 0;
}

static int parse_listener(struct file_ctx *fc, const yaml_node_t *n, const char *path,
                          struct ebb_listener_cfg *l, const struct ebb_config *cfg,
                          const yaml_node_t **port_node, char *err, size_t errlen)
{
    const struct ebb_ydoc *d = &fc->d;
    const char *k, *s;
    const yaml_node_t *v, *cluster_node = NULL, *routes = NULL;
    bool has_dir = false;
    uint64_t u;
    char sub[256];
    int rc = ebb_ymap(d, n, path, true, err, errlen);

    if (rc)
        return rc;
    listener_defaults(l);
    MAP_EACH(d, n, pair, k, v) {
        ebb_ypath(sub, sizeof(sub), path, k);
        if (ebb_ynull(v))
            continue;
        if (ebb_ykey_is(k, "name")) {
            rc = ebb_ystr(d, v, sub, &s, err, errlen);
            if (rc == 0 && !*s)
                rc = ebb_yerr(d, v, sub, err, errlen, "must not be empty");
            if (rc == 0) {
                free(l->name);
                l->name = ebb_xstrdup(s);
            }
        } else if (ebb_ykey_is(k, "address")) {
            rc = yaddress(d, v, sub, &l->address, err, errlen);
        } else if (ebb_ykey_is(k, "port")) {
            rc = yport(d, v, sub, &l->port, err, errlen);
            *port_node = v;
        } else if (ebb_ykey_is(k, "direction")) {
            rc = ebb_ystr(d, v, sub, &s, err, errlen);
            if (rc == 0 && !strcmp(s, "inbound"))
                l->direction = EBB_DIR_INBOUND;
            else if (rc == 0 && !strcmp(s, "outbound"))
                l->direction = EBB_DIR_OUTBOUND;
            else if (rc == 0)
                rc = ebb_yerr(d, v, sub, err, errlen, "\"%s\" is not inbound or outbound", s);
            has_dir = true;
        } else if (ebb_ykey_is(k, "protocol")) {
            rc = ebb_ystr(d, v, sub, &s, err, errlen);
            if (rc == 0 && !strcmp(s, "http"))
                l->protocol = EBB_PROTO_HTTP;
            else if (rc == 0 && !strcmp(s, "tcp"))
                l->protocol = EBB_PROTO_TCP;
            else if (rc == 0)
                rc = ebb_yerr(d, v, sub, err, errlen, "\"%s\" is not http or tcp", s);
        } else if (ebb_ykey_is(k, "cluster")) {
            rc = ebb_ystr(d, v, sub, &s, err, errlen);
            if (rc == 0) {
                free(l->cluster);
                l->cluster = ebb_xstrdup(s);
                cluster_node = v;
            }
        } else if (ebb_ykey_is(k, "routes")) {
            routes = v;
            rc = parse_routes(d, v, sub, l, cfg, err, errlen);
        } else if (ebb_ykey_is(k, "max_connections")) {
            rc = ebb_yuint(d, v, sub, 1, UINT32_MAX, "an integer", &u, err, errlen);
            l->max_connections = (uint32_t)u;
        } else {
            ebb_ywarn(d, v, sub, "unknown field, ignored");
        }
        if (rc)
            return rc;
    }
    (void)routes;
    if (!*port_node)
        return ebb_yerr(d, n, path, err, errlen, "port: missing");
    if (!has_dir)
        return ebb_yerr(d, n, path, err, errlen, "direction: missing (inbound or outbound)");
    if (!l->address)
        l->address = ebb_xstrdup(l->direction == EBB_DIR_INBOUND ? "0.0.0.0" : "127.0.0.1");
    if (!l->name) {
        char name[80];
        snprintf(name, sizeof(name), "%s_%u", l->address, l->port);
        l->name = ebb_xstrdup(name);
    }
    return check_listener(d, n, path, l, cluster_node, cfg, err, errlen);
}

static int parse_listeners(struct file_ctx *fc, const yaml_node_t *n, struct ebb_config *cfg,
                           char *err, size_t errlen)
{
    const struct ebb_ydoc *d = &fc->d;
    size_t count;
    int rc = yseq_max(d, n, "listeners", MAX_LISTENERS, err, errlen);

    if (rc)
        return rc;
    count = seq_len(n);
    listeners_free(cfg->listeners, cfg->nlisteners);
    cfg->listeners = ebb_xcalloc(count ? count : 1, sizeof(*cfg->listeners));
    cfg->nlisteners = 0;
    fc->lport_nodes = ebb_xcalloc(count ? count : 1, sizeof(*fc->lport_nodes));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *ln = ebb_ynode(d, n->data.sequence.items.start[i]);
        char path[64];
        snprintf(path, sizeof(path), "listeners[%zu]", i);
        cfg->nlisteners++;
        rc = parse_listener(fc, ln, path, &cfg->listeners[i], cfg, &fc->lport_nodes[i], err,
                            errlen);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->listeners[j].name, cfg->listeners[i].name) == 0)
                return ebb_yerr(d, ln, path, err, errlen,
                                "name: \"%s\" is already used by listeners[%zu]",
                                cfg->listeners[i].name, j);
        }
    }
    return 0;
}

static int parse_limits(const struct ebb_ydoc *d, const yaml_node_t *n, struct ebb_config *cfg,
                        char *err, size_t errlen)
{
    struct ebb_limits_cfg *lim = &cfg->limits;
    const char *k;
    const yaml_node_t *v;
    char sub[256];
    uint64_t u;
    int rc = ebb_ymap(d, n, "limits", true, err, errlen);

    if (rc)
        return rc;
    MAP_EACH(d, n, pair, k, v) {
        ebb_ypath(sub, sizeof(sub), "limits", k);
        if (ebb_ynull(v))
            continue;
        if (ebb_ykey_is(k, "max_request_line")) {
            rc = ebb_yuint(d, v, sub, 64, 1 << 20, "a size in bytes", &u, err, errlen);
            lim->h1.max_line = (size_t)u;
        } else if (ebb_ykey_is(k, "max_request_headers")) {
            rc = ebb_yuint(d, v, sub, 256, 1 << 20, "a size in bytes", &u, err, errlen);
            lim->h1.max_head = (size_t)u;
        } else if (ebb_ykey_is(k, "max_header_count")) {
            rc = ebb_yuint(d, v, sub, 1, EBB_H1_MAX_HEADERS_CAP, "a count", &u, err, errlen);
            lim->h1.max_headers = (size_t)u;
        } else if (ebb_ykey_is(k, "max_request_body")) {
            rc = ebb_yuint(d, v, sub, 0, UINT64_MAX, "a size in bytes", &lim->max_request_body,
                           err, errlen);
        } else if (ebb_ykey_is(k, "request_headers_timeout")) {
            rc = ydur_into(d, v, sub, &lim->request_headers_timeout_ms, true, err, errlen);
        } else if (ebb_ykey_is(k, "idle_timeout")) {
            rc = ydur_into(d, v, sub, &lim->idle_timeout_ms, true, err, errlen);
        } else if (ebb_ykey_is(k, "h2_max_concurrent_streams")) {
            rc = ebb_yuint(d, v, sub, 1, INT32_MAX, "a count", &u, err, errlen);
            lim->h2_max_concurrent_streams = (uint32_t)u;
        } else if (ebb_ykey_is(k, "buffer_size")) {
            rc = ebb_yuint(d, v, sub, 4096, 64u << 20, "a size in bytes", &u, err, errlen);
            lim->buffer_size = (size_t)u;
        } else {
            ebb_ywarn(d, v, sub, "unknown field, ignored");
        }
        if (rc)
            return rc;
    }
    /* the head limit covers the request line too: a larger line limit is moot, and the
     * read buffer is sized to hold a whole head whatever buffer_size says */
    if (lim->h1.max_line > lim->h1.max_head)
        lim->h1.max_line = lim->h1.max_head;
    return 0;
}

static int parse_drain(const struct ebb_ydoc *d, const yaml_node_t *n, struct ebb_config *cfg,
                       char *err, size_t errlen)
{
    struct ebb_drain_cfg *dr = &cfg->drain;
    const char *k;
    const yaml_node_t *v;
    char sub[256];
    int rc = ebb_ymap(d, n, "drain", true, err, errlen);

    if (rc)
        return rc;
    MAP_EACH(d, n, pair, k, v) {
        ebb_ypath(sub, sizeof(sub), "drain", k);
        if (ebb_ynull(v))
            continue;
        if (ebb_ykey_is(k, "idle_close_after")) {
            rc = ydur_into(d, v, sub, &dr->idle_close_after_ms, false, err, errlen);
            dr->idle_close_after_set = true;
        } else if (ebb_ykey_is(k, "idle_close_spread")) {
            rc = ydur_into(d, v, sub, &dr->idle_close_spread_ms, false, err, errlen);
        } else if (ebb_ykey_is(k, "drain_timeout")) {
            rc = ydur_into(d, v, sub, &dr->drain_timeout_ms, false, err, errlen);
        } else if (ebb_ykey_is(k, "drain_deadline")) {
            rc = ydur_into(d, v, sub, &dr->drain_deadline_ms, false, err, errlen);
        } else if (ebb_ykey_is(k, "linger")) {
            rc = ydur_into(d, v, sub, &dr->linger_ms, false, err, errlen);
        } else {
            ebb_ywarn(d, v, sub, "unknown field, ignored");
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_file_root(struct file_ctx *fc, struct ebb_config *cfg, char *err,
                           size_t errlen)
{
    struct ebb_ydoc *d = &fc->d;
    const yaml_node_t *root = ebb_ydoc_root(d), *v, *clusters = NULL;
    const char *k, *s;
    uint64_t u;
    int rc;

    if (!root || ebb_ynull(root))
        return 0;
    rc = ebb_ymap(d, root, "", true, err, errlen);
    if (rc)
        return rc;
    /* clusters first: listeners and routes name them */
    MAP_EACH(d, root, pair, k, v) {
        if (ebb_ykey_is(k, "clusters") && !ebb_ynull(v)) {
            clusters = v;
            rc = parse_clusters(fc, v, cfg, err, errlen);
            if (rc)
                return rc;
        }
    }
    MAP_EACH(d, root, pair, k, v) {
        if (ebb_ynull(v) || ebb_ykey_is(k, "clusters"))
            continue;
        if (ebb_ykey_is(k, "concurrency")) {
            rc = ebb_yuint(d, v, k, 0, CONCURRENCY_MAX, "an integer", &u, err, errlen);
            fc->has_concurrency = true;
            fc->concurrency = (uint32_t)u;
        } else if (ebb_ykey_is(k, "admin")) {
            rc = parse_endpoint_section(fc, v, k, &cfg->admin_address, &fc->admin_port,
                                        &fc->has_admin_port, &fc->admin_port_node, err, errlen);
        } else if (ebb_ykey_is(k, "status")) {
            rc = parse_endpoint_section(fc, v, k, &cfg->status_address, &fc->status_port,
                                        &fc->has_status_port, &fc->status_port_node, err,
                                        errlen);
        } else if (ebb_ykey_is(k, "readiness")) {
            rc = parse_endpoint_section(fc, v, k, &cfg->ready_address, &cfg->ready_port, NULL,
                                        &fc->ready_port_node, err, errlen);
        } else if (ebb_ykey_is(k, "access_log")) {
            rc = ebb_ystr(d, v, k, &s, err, errlen);
            if (rc == 0 && !*s)
                rc = ebb_yerr(d, v, k, err, errlen, "must not be empty (\"-\" = stdout, \"off\")");
            if (rc == 0) {
                free(cfg->access_log);
                cfg->access_log = ebb_xstrdup(s);
            }
        } else if (ebb_ykey_is(k, "log_level")) {
            int level;
            rc = ebb_ystr(d, v, k, &s, err, errlen);
            if (rc == 0 && ebb_log_parse_level(s, &level) != 0)
                rc = ebb_yerr(d, v, k, err, errlen,
                              "\"%s\" is not a log level (error, warn, info, debug)", s);
            if (rc == 0) {
                free(cfg->log_level);
                cfg->log_level = ebb_xstrdup(s);
            }
        } else if (ebb_ykey_is(k, "listeners")) {
            fc->listeners_node = v;
            rc = parse_listeners(fc, v, cfg, err, errlen);
        } else if (ebb_ykey_is(k, "limits")) {
            rc = parse_limits(d, v, cfg, err, errlen);
        } else if (ebb_ykey_is(k, "drain")) {
            rc = parse_drain(d, v, cfg, err, errlen);
        } else if (ebb_ykey_is(k, "proxy_config")) {
            rc = ebb_pc_parse(d, v, k, &fc->pc, err, errlen);
        } else {
            ebb_ywarn(d, v, k, "unknown field, ignored");
        }
        if (rc)
            return rc;
    }
    /* clusters: replaced but listeners: kept: the built-in listeners must still resolve */
    if (clusters && !fc->listeners_node) {
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            struct ebb_listener_cfg *l = &cfg->listeners[i];
            if (!l->cluster)
                continue;
            l->cluster_idx = find_cluster(cfg, l->cluster);
            if (l->cluster_idx == EBB_NO_CLUSTER)
                return ebb_yerr(d, clusters, "clusters", err, errlen,
                                "the built-in %s listener needs a cluster named \"%s\" "
                                "(define it, or define listeners)", l->name, l->cluster);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* checks after the merge                                             */

struct port_use {
    char               what[160]; /* "listeners[0] (inbound)", "the admin port", ... */
    char               path[64];  /* ebb.yaml key path, or the ProxyConfig field */
    uint16_t           port;
    const yaml_node_t *node;      /* ebb.yaml node, or NULL */
    enum ebb_source    src;
};

static void port_use_proxy(struct port_use *u, const char *what, const char *field,
                           const char *file_path, uint16_t port, enum ebb_source src,
                           const yaml_node_t *file_node)
{
    u->port = port;
    u->src = src;
    if (src == EBB_SRC_FILE && file_node) {
        snprintf(u->what, sizeof(u->what), "%s", what);
        snprintf(u->path, sizeof(u->path), "%s", file_path);
        u->node = file_node;
    } else {
        snprintf(u->what, sizeof(u->what), "%s (%s from %s)", what, field,
                 ebb_source_name(src));
        snprintf(u->path, sizeof(u->path), "%s", field);
    }
}

static int port_blame(const struct port_use *u, bool proxy)
{
    if (u->node)
        return 3;
    return proxy && u->src != EBB_SRC_DEFAULT ? 2 : 1;
}

/* Every listener, admin, status and readiness port must be distinct. */
static int check_ports(struct file_ctx *fc, const struct ebb_config *cfg, char *err,
                       size_t errlen)
{
    size_t n = cfg->nlisteners + 3;
    struct port_use *u = ebb_xcalloc(n, sizeof(*u));
    int rc = 0;

    port_use_proxy(&u[0], "the admin port", "proxyAdminPort", "admin.port",
                   cfg->proxy.admin_port, cfg->proxy.admin_port_src, fc->admin_port_node);
    port_use_proxy(&u[1], "the status port", "statusPort", "status.port",
                   cfg->proxy.status_port, cfg->proxy.status_port_src, fc->status_port_node);
    snprintf(u[2].what, sizeof(u[2].what), "the readiness port");
    snprintf(u[2].path, sizeof(u[2].path), "readiness.port");
    u[2].port = cfg->ready_port;
    u[2].node = fc->ready_port_node;
    u[2].src = EBB_SRC_FILE;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct port_use *p = &u[3 + i];
        snprintf(p->what, sizeof(p->what), "listeners[%zu] (%s)", i, cfg->listeners[i].name);
        snprintf(p->path, sizeof(p->path), "listeners[%zu].port", i);
        p->port = cfg->listeners[i].port;
        p->node = fc->lport_nodes ? fc->lport_nodes[i] : NULL;
        p->src = EBB_SRC_FILE;
    }
    for (size_t i = 1; i < n && rc == 0; i++) {
        for (size_t j = 0; j < i; j++) {
            if (u[i].port != u[j].port)
                continue;
            /* blame what the user wrote: an ebb.yaml line, else a ProxyConfig source */
            size_t b = port_blame(&u[i], i < 2) >= port_blame(&u[j], j < 2) ? i : j;
            size_t o = b == i ? j : i;
            rc = EBB_ECONFIG;
            if (u[b].node && fc->d.loaded)
                ebb_yerr(&fc->d, u[b].node, u[b].path, err, errlen,
                         "%u is already used by %s", u[b].port, u[o].what);
            else if (b < 2)
                snprintf(err, errlen, "%s: %s: %u is already used by %s",
                         ebb_source_name(u[b].src), u[b].path, u[b].port, u[o].what);
            else
                snprintf(err, errlen, "%s: %s: %u is already used by %s",
                         cfg->file ? cfg->file : "built-in config", u[b].path, u[b].port,
                         u[o].what);
            break;
        }
    }
    free(u);
    return rc;
}

/* ------------------------------------------------------------------ */
/* loading                                                            */

int ebb_config_load(const struct ebb_config_args *args, struct ebb_config **out, char *err,
                    size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (args && args->file) {
        rc = ebb_read_file(args->file, &text, &len);
        if (rc < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", args->file, strerror(-rc));
            return EBB_ECONFIG;
        }
    }
    rc = ebb_config_load_text(args, text, len, out, err, errlen);
    free(text);
    return rc;
}

int ebb_config_load_text(const struct ebb_config_args *args, const char *text, size_t len,
                         struct ebb_config **out, char *err, size_t errlen)
{
    static const struct ebb_config_args no_args;
    struct ebb_config *cfg = ebb_config_default();
    struct file_ctx fc;
    int rc, level;

    if (!args)
        args = &no_args;
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    memset(&fc, 0, sizeof(fc));
    fc.pc.source = EBB_SRC_FILE;
    if (text) {
        cfg->file = ebb_xstrdup(args->file ? args->file : "ebb.yaml");
        fc.d.label = cfg->file;
        fc.d.marks = true;
        rc = ebb_ydoc_load(&fc.d, text, len, err, errlen);
        if (rc == 0)
            rc = parse_file_root(&fc, cfg, err, errlen);
        if (rc)
            goto fail;
    }
    rc = ebb_proxy_config_load(cfg, args, &fc.pc, err, errlen);
    if (rc)
        goto fail;
    /* ebb.yaml's own top-level settings outrank every ProxyConfig source */
    if (fc.has_concurrency) {
        cfg->proxy.concurrency = fc.concurrency;
        cfg->proxy.concurrency_src = EBB_SRC_FILE;
    }
    if (fc.has_admin_port) {
        cfg->proxy.admin_port = fc.admin_port;
        cfg->proxy.admin_port_src = EBB_SRC_FILE;
    }
    if (fc.has_status_port) {
        cfg->proxy.status_port = fc.status_port;
        cfg->proxy.status_port_src = EBB_SRC_FILE;
    }
    if (!cfg->drain.idle_close_after_set)
        cfg->drain.idle_close_after_ms = cfg->proxy.min_drain_ms;
    rc = check_ports(&fc, cfg, err, errlen);
    if (rc)
        goto fail;
    if (args->log_level) {
        if (ebb_log_parse_level(args->log_level, &level) != 0) {
            snprintf(err, errlen, "--log-level: \"%s\" is not a log level (error, warn, info, "
                     "debug)", args->log_level);
            rc = EBB_ECONFIG;
            goto fail;
        }
        free(cfg->log_level);
        cfg->log_level = ebb_xstrdup(args->log_level);
    }
    ebb_ydoc_free(&fc.d);
    ebb_pc_src_free(&fc.pc);
    free(fc.lport_nodes);
    *out = cfg;
    return 0;
fail:
    ebb_ydoc_free(&fc.d);
    ebb_pc_src_free(&fc.pc);
    free(fc.lport_nodes);
    ebb_config_free(cfg);
    return EBB_ECONFIG;
}

/*
 * config_yaml.c - reading YAML (and JSON) config documents with libyaml:
 * loading one document, error and warning lines that name "file:line: key
 * path", camelCase/snake_case key folding with duplicate detection, and
 * typed scalars (Go durations and bools, bounded integers, addresses) whose
 * errors quote the bad value.  Shared by config.c (ebb.yaml), proxy_config.c
 * (the ProxyConfig sources) and the directive walker (config_walk.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/config_yaml.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/parse.h"

#define FILE_MAX (16u << 20)            /* biggest config file we read */
#define QUOTE_MAX 60                    /* bytes of a value quoted in an error */

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
char *ebb_ymarkdown_word(const yaml_node_t *n, const char *v)
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

/* Runs parse on the scalar; on failure retries the Markdown-comment form.
 * Returns 0, EBB_ECONFIG (not a string), or 1 with the value in *bad and
 * quoted in q[QUOTE_BUF] for the caller's error. */
#define QUOTE_BUF 96
static int yparse(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                  scalar_parse_fn parse, const void *arg, void *out, const char **bad, char *q,
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
    ebb_quote(v, strlen(v), q, QUOTE_BUF);
    word = ebb_ymarkdown_word(n, v);
    rc = word ? parse(word, arg, out) : 1;
    if (rc == 0)
        ebb_ywarn(d, n, path, "read %s as \"%s\": \"*#...*\" looks like a comment mangled by "
                  "Markdown (a YAML comment is \" # ...\")", q, word);
    free(word);
    return rc == 0 ? 0 : 1;
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
    char q[QUOTE_BUF];
    int rc = yparse(d, n, path, parse_dur_cb, NULL, ms, &v, q, err, errlen);

    if (rc <= 0)
        return rc;
    if (v[0] == '-' && ebb_parse_duration_ms(v + 1, &tmp) == 0)
        return ebb_yerr(d, n, path, err, errlen, "%s is negative (must be >= 0)", q);
    if (v[0] && strspn(v, "0123456789") == strlen(v))
        return ebb_yerr(d, n, path, err, errlen, "%s " EBB_DURATION_HINT ": a unit is required", q);
    return ebb_yerr(d, n, path, err, errlen, "%s " EBB_DURATION_HINT, q);
}

int ebb_ybool(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, bool *out,
              char *err, size_t errlen)
{
    const char *v;
    char q[QUOTE_BUF];
    int rc = yparse(d, n, path, parse_bool_cb, NULL, out, &v, q, err, errlen);

    return rc <= 0 ? rc : ebb_yerr(d, n, path, err, errlen, "%s " EBB_BOOL_HINT, q);
}

int ebb_yuint(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, uint64_t min,
              uint64_t max, const char *what, uint64_t *out, char *err, size_t errlen)
{
    const uint64_t range[2] = { min, max };
    const char *v;
    char q[QUOTE_BUF];
    int rc = yparse(d, n, path, parse_uint_cb, range, out, &v, q, err, errlen);

    return rc <= 0 ? rc : ebb_yerr(d, n, path, err, errlen, "%s is not %s (%" PRIu64 "-%" PRIu64
                                   ")", q, what, min, max);
}


int ebb_yseq(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path, size_t max,
             char *err, size_t errlen)
{
    if (n->type == YAML_SCALAR_NODE) {
        char q[96];
        ebb_quote((const char *)n->data.scalar.value, n->data.scalar.length, q, sizeof(q));
        return ebb_yerr(d, n, path, err, errlen, "expected a list, got %s", q);
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return ebb_yerr(d, n, path, err, errlen, "expected a list, got %s", node_kind(n));
    if (EBB_YSEQ_LEN(n) > max)
        return ebb_yerr(d, n, path, err, errlen, "%zu items, more than the %zu allowed",
                        EBB_YSEQ_LEN(n), max);
    return 0;
}

static bool is_numeric_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A bind address: numeric IPv4 or IPv6, brackets around IPv6 allowed. */
int ebb_yaddress(const struct ebb_ydoc *d, const yaml_node_t *v, const char *path, char **out,
                 char *err, size_t errlen)
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

/*
 * proxy_config.c - the Istio ProxyConfig knobs of SPEC §3.5 from every
 * source of SPEC §4, merged with Istio's rules and each value's source
 * recorded:
 *
 *   default < ebb.yaml proxy_config: < mesh config defaultConfig
 *           < PROXY_CONFIG < proxy.istio.io/config annotation < environment
 *           < ebb.yaml top-level concurrency, admin.port, status.port
 *
 * protocolDetectionTimeout is also a MeshConfig field (Istio's only place
 * for it): a ProxyConfig source that sets it outranks that, and ebb.yaml's
 * capture.protocol_detection_timeout outranks every source.
 *
 * The fields are the directive tables ebb_pc_section and ebb_knob_section
 * (config_table.c): each source is read with them, and a field a source
 * sets (its *_src is not DEFAULT) replaces the lower one whole;
 * proxyMetadata merges key by key; EXIT_ON_ZERO_ACTIVE_CONNECTIONS and
 * MINIMUM_DRAIN_DURATION are read from the environment first and from the
 * merged proxyMetadata otherwise (a metadata key acts as an env var).
 * Also the downward-API annotations file parser (kubelet's key="value").
 */
#include <errno.h>
#include <string.h>

#include "ebb/config_sources.h"
#include "ebb/config_table.h"
#include "ebb/config_walk.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/parse.h"

extern char **environ;

#define DEFAULT_MESH_FILE        "./etc/istio/config/mesh"
#define DEFAULT_ANNOTATIONS_FILE "./etc/istio/pod/annotations"
#define ANNOTATION_KEY           "proxy.istio.io/config"

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

void ebb_proxy_config_default(struct ebb_proxy_cfg *pc)
{
    memset(pc, 0, sizeof(*pc));   /* every *_src is EBB_SRC_DEFAULT (0) */
    ebb_ddefaults(&ebb_pc_section, pc);
    ebb_ddefaults(&ebb_knob_section, pc);
}

void ebb_pc_src_free(struct ebb_pc_src *s)
{
    ebb_dfree(&ebb_pc_section, &s->v);
}

static struct ebb_kv *md_find(const struct ebb_proxy_cfg *pc, const char *key)
{
    for (size_t i = 0; i < pc->nmetadata; i++) {
        if (strcmp(pc->metadata[i].key, key) == 0)
            return &pc->metadata[i];
    }
    return NULL;
}

/* Sets key to value (copied) in pc's metadata with source src. */
static void md_set(struct ebb_proxy_cfg *pc, const char *key, const char *value,
                   enum ebb_source src)
{
    struct ebb_kv *kv = md_find(pc, key);

    if (!kv) {
        struct ebb_kv *m = realloc(pc->metadata, (pc->nmetadata + 1) * sizeof(*m));
        if (!m) {
            fprintf(stderr, "ebb: out of memory\n");
            exit(2);
        }
        pc->metadata = m;
        kv = &m[pc->nmetadata++];
        kv->key = ebb_xstrdup(key);
        kv->value = NULL;
    }
    free(kv->value);
    kv->value = ebb_xstrdup(value);
    kv->source = src;
}

/* A proxyMetadata knob's value, checked where it is written. */
static int knob_set(const struct ebb_directive *k, const char *s, struct ebb_proxy_cfg *pc);

/* Checks a knob's value (other keys pass).  *clean: the value to keep when the check read
 * it in its Markdown-comment form ("true *# default false*", with a warning), else NULL:
 * knob_set() must see what the check saw, or the knob is silently not applied. */
static int check_knob(struct ebb_dctx *x, const yaml_node_t *v, const char *path,
                      const char *key, const char *value, char **clean)
{
    struct ebb_proxy_cfg scratch;

    *clean = NULL;
    if (!*value)
        return 0;   /* empty = unset, as for the environment */
    for (size_t i = 0; i < ebb_knob_section.n; i++) {
        const struct ebb_directive *k = &ebb_knob_section.d[i];
        if (strcmp(key, k->name) != 0)
            continue;
        int rc = ebb_dparse_value(x, k, v, path, &scratch);
        if (rc == 0 && knob_set(k, value, &scratch) != 0)
            *clean = ebb_ymarkdown_word(v, value);
        return rc;
    }
    return 0;
}

/* proxyMetadata, for the walker: keys are not folded, values are strings. */
static int parse_metadata(struct ebb_dctx *x, const struct ebb_directive *dir,
                          const yaml_node_t *n, const char *path, void *base)
{
    const struct ebb_ydoc *d = x->d;
    struct ebb_proxy_cfg *pc = base;
    const yaml_node_pair_t *pair;
    char sub[512], *err = x->err;
    size_t errlen = x->errlen;
    int rc;

    rc = ebb_ymap(d, n, path, false, err, errlen);
    if (rc)
        return rc;
    /* a source may hold proxyMetadata twice only through a duplicate key
     * of proxyMetadata itself, which ebb_ymap rejects */
    size_t npairs = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    ebb_dfree_list(dir, pc);
    pc->metadata = ebb_xcalloc(npairs ? npairs : 1, sizeof(*pc->metadata));
    for (pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
        const yaml_node_t *k = ebb_ynode(d, pair->key), *v = ebb_ynode(d, pair->value);
        const char *key = (const char *)k->data.scalar.value, *value = "";

        ebb_ypath(sub, sizeof(sub), path, key);
        if (!*key)
            return ebb_yerr(d, k, path, err, errlen, "an empty key");
        if (!ebb_ynull(v)) {
            /* any scalar is a string here: EXIT_ON_ZERO_ACTIVE_CONNECTIONS: true works */
            if (v->type != YAML_SCALAR_NODE)
                return ebb_yerr(d, v, sub, err, errlen, "expected a string value, got %s",
                                v->type == YAML_MAPPING_NODE ? "a map" : "a list");
            rc = ebb_ystr(d, v, sub, &value, err, errlen);
            if (rc)
                return rc;
        }
        char *clean;
        rc = check_knob(x, v, sub, key, value, &clean);
        if (rc)
            return rc;
        /* keys are distinct (ebb_ymap checked): append, no lookup */
        struct ebb_kv *kv = &pc->metadata[pc->nmetadata++];
        kv->key = ebb_xstrdup(key);
        kv->value = clean ? clean : ebb_xstrdup(value);
        kv->source = x->source;
    }
    return 0;
}

int ebb_pc_parse(const struct ebb_ydoc *d, const yaml_node_t *n, const char *path,
                 struct ebb_pc_src *out, char *err, size_t errlen)
{
    struct ebb_dctx x = { .d = d, .source = out->source, .hook = parse_metadata, .err = err,
                          .errlen = errlen };
    int rc;

    if (!n || ebb_ynull(n))
        return 0;
    rc = ebb_dparse(&x, n, path, &ebb_pc_section, &out->v, NULL);
    free(x.nodes);
    return rc;
}

int ebb_pc_parse_text(struct ebb_ydoc *d, const char *text, size_t len,
                      struct ebb_pc_src *out, char *err, size_t errlen)
{
    int rc = ebb_ydoc_load(d, text, len, err, errlen);

    if (rc)
        return rc;
    return ebb_pc_parse(d, ebb_ydoc_root(d), "", out, err, errlen);
}

/* ------------------------------------------------------------------ */
/* downward-API annotations file                                      */

static int ann_malformed(const char *path, unsigned long line, const char *reason,
                         const char *l, size_t llen, char *err, size_t errlen)
{
    char q[96];

    ebb_quote(l, llen, q, sizeof(q));
    snprintf(err, errlen, "%s:%lu: malformed line: %s: %s", path, line, reason, q);
    return EBB_ECONFIG;
}

/* ebb_annotations_get() that also returns the value's length and line. */
static int ann_get(const char *path, const char *text, size_t len, const char *key,
                   char **value, size_t *vlen, unsigned long *vline, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    unsigned long line = 0;
    size_t keylen = strlen(key);
    const char *reason;

    *value = NULL;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *eq;
        size_t llen, klen, n;
        char *v;

        if (!eol)
            eol = end;
        line++;
        llen = (size_t)(eol - p);
        if (llen && p[llen - 1] == '\r')
            llen--;
        if (llen == 0)
            goto next;
        eq = memchr(p, '=', llen);
        if (!eq)
            goto malformed_noeq;
        klen = (size_t)(eq - p);
        if (klen == 0) {
            reason = "empty key";
            goto malformed;
        }
        for (size_t i = 0; i < klen; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c <= ' ' || c == '"' || c >= 0x7f) {
                reason = "bad character in key";
                goto malformed;
            }
        }
        v = ebb_go_unquote(eq + 1, llen - klen - 1, &n);
        if (!v) {
            reason = "value is not a Go-quoted string";
            goto malformed;
        }
        if (klen == keylen && memcmp(p, key, klen) == 0) {
            if (*value) {
                free(v);
                snprintf(err, errlen, "%s:%lu: %s: given twice (also at line %lu)", path, line,
                         key, *vline);
                goto fail;
            }
            *value = v;
            *vlen = n;
            *vline = line;
        } else {
            free(v);
        }
next:
        p = eol + 1;
        continue;
malformed_noeq:
        reason = "no '=' (want key=\"value\")";
malformed:
        ann_malformed(path, line, reason, p, llen, err, errlen);
        goto fail;
    }
    return 0;
fail:
    free(*value);
    *value = NULL;
    return EBB_ECONFIG;
}

int ebb_annotations_get(const char *path, const char *text, size_t len, const char *key,
                        char **value, char *err, size_t errlen)
{
    size_t vlen;
    unsigned long line;

    return ann_get(path, text, len, key, value, &vlen, &line, err, errlen);
}

/* ------------------------------------------------------------------ */
/* sources                                                            */

static const char *env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);

    for (; env && *env; env++) {
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    }
    return NULL;
}

/* Reads path; a missing default file is skipped (*text NULL, returns 0). */
static int read_source(const char *given, const char *dflt, const char *what, char **used,
                       char **text, size_t *len, char *err, size_t errlen)
{
    const char *path = given ? given : dflt;
    int rc = ebb_read_file(path, text, len);

    *used = NULL;
    if (rc == -ENOENT && !given) {
        ebb_debug("config", "%s %s not found, skipped", what, path);
        *text = NULL;
        return 0;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read %s: %s", path, what, strerror(-rc));
        *text = NULL;
        return EBB_ECONFIG;
    }
    *used = ebb_xstrdup(path);
    return 0;
}

/* The two MeshConfig fields of transparent capture (SPEC §9), unless ebb.yaml's capture:
 * section set them. */
static int mesh_capture(const struct ebb_ydoc *d, const char *key, const yaml_node_t *v,
                        struct ebb_capture_cfg *cap, char *err, size_t errlen)
{
    const char *k, *mode;
    const yaml_node_t *mv;
    uint64_t ms;
    int rc;

    if (ebb_ykey_is(key, "protocol_detection_timeout")) {
        rc = ebb_yduration(d, v, key, &ms, err, errlen);
        if (rc == 0 && !cap->detect_timeout_set)
            cap->detect_timeout_ms = ms;
        return rc;
    }
    rc = ebb_ymap(d, v, key, true, err, errlen);
    if (rc)
        return rc;
    EBB_YMAP_EACH(d, v, pair, k, mv) {
        if (!ebb_ykey_is(k, "mode"))
            continue;   /* egressProxy: not used by ebb */
        char path[96];
        snprintf(path, sizeof(path), "%s.mode", key);
        rc = ebb_ystr(d, mv, path, &mode, err, errlen);
        if (rc)
            return rc;
        enum ebb_outbound_policy p;
        if (strcmp(mode, "ALLOW_ANY") == 0)
            p = EBB_ALLOW_ANY;
        else if (strcmp(mode, "REGISTRY_ONLY") == 0)
            p = EBB_REGISTRY_ONLY;
        else
            return ebb_yerr(d, mv, path, err, errlen,
                            "\"%s\" is not ALLOW_ANY or REGISTRY_ONLY", mode);
        if (!cap->outbound_policy_set)
            cap->outbound_policy = p;
    }
    return 0;
}

static int load_mesh(struct ebb_config *cfg, const struct ebb_config_args *args,
                     struct ebb_pc_src *out, char *err, size_t errlen)
{
    struct ebb_ydoc d = { .marks = true };
    const yaml_node_pair_t *pair;
    const yaml_node_t *root;
    char *text;
    size_t len;
    int rc;

    rc = read_source(args->mesh_file, DEFAULT_MESH_FILE, "mesh config", &cfg->mesh_file, &text,
                     &len, err, errlen);
    if (rc || !text)
        return rc;
    d.label = cfg->mesh_file;
    rc = ebb_ydoc_load(&d, text, len, err, errlen);
    if (rc)
        goto out;
    root = ebb_ydoc_root(&d);
    if (!root || ebb_ynull(root))
        goto out;
    rc = ebb_ymap(&d, root, "", true, err, errlen);
    if (rc)
        goto out;
    for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
        const char *key = (const char *)ebb_ynode(&d, pair->key)->data.scalar.value;
        if (ebb_ykey_is(key, "default_config")) {
            rc = ebb_pc_parse(&d, ebb_ynode(&d, pair->value), key, out, err, errlen);
            if (rc)
                goto out;
        } else if (ebb_ykey_is(key, "outbound_traffic_policy") ||
                   ebb_ykey_is(key, "protocol_detection_timeout")) {
            rc = mesh_capture(&d, key, ebb_ynode(&d, pair->value), &cfg->capture, err, errlen);
            if (rc)
                goto out;
        } else {
            ebb_debug("config", "%s: %s: MeshConfig field not used by ebb", d.label, key);
        }
    }
out:
    ebb_ydoc_free(&d);
    free(text);
    return rc;
}

static int load_proxy_config_env(char *const *env, struct ebb_pc_src *out, char *err,
                                 size_t errlen)
{
    const char *text = env_get(env, "PROXY_CONFIG");
    struct ebb_ydoc d = { .label = "PROXY_CONFIG" };
    int rc;

    if (!text || !*text)
        return 0;
    d.marks = strchr(text, '\n') != NULL;
    rc = ebb_pc_parse_text(&d, text, strlen(text), out, err, errlen);
    ebb_ydoc_free(&d);
    return rc;
}

static int load_annotation(struct ebb_config *cfg, const struct ebb_config_args *args,
                           struct ebb_pc_src *out, char *err, size_t errlen)
{
    struct ebb_ydoc d = { .prefix = ANNOTATION_KEY ": " };
    char *text, *value = NULL;
    size_t len, vlen = 0;
    unsigned long line = 0;
    int rc;

    rc = read_source(args->annotations_file, DEFAULT_ANNOTATIONS_FILE, "pod annotations",
                     &cfg->annotations_file, &text, &len, err, errlen);
    if (rc || !text)
        return rc;
    rc = ann_get(cfg->annotations_file, text, len, ANNOTATION_KEY, &value, &vlen, &line, err,
                 errlen);
    if (rc == 0 && value) {
        d.label = cfg->annotations_file;
        d.line = line;
        rc = ebb_pc_parse_text(&d, value, vlen, out, err, errlen);
        ebb_ydoc_free(&d);
    }
    free(value);
    free(text);
    return rc;
}

/* Every value s sets (its source recorded) replaces dst's; metadata merges
 * key by key. */
static void merge(struct ebb_proxy_cfg *dst, const struct ebb_proxy_cfg *s)
{
    for (size_t i = 0; i < ebb_pc_section.n; i++) {
        const struct ebb_directive *dir = &ebb_pc_section.d[i];
        const char *from = (const char *)s;
        if (!dir->src_off || *(const enum ebb_source *)(from + dir->src_off) == EBB_SRC_DEFAULT)
            continue;
        memcpy((char *)dst + dir->off, from + dir->off, dir->size);
        memcpy((char *)dst + dir->src_off, from + dir->src_off, sizeof(enum ebb_source));
    }
    for (size_t i = 0; i < s->nmetadata; i++)
        md_set(dst, s->metadata[i].key, s->metadata[i].value, s->metadata[i].source);
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ebb_kv *)a)->key, ((const struct ebb_kv *)b)->key);
}

/* Stores a knob's value s (Go bool or duration) into pc; 0 or EBB_EINVAL. */
static int knob_set(const struct ebb_directive *k, const char *s, struct ebb_proxy_cfg *pc)
{
    uint64_t ms;
    bool b;

    if (k->kind == EBB_D_BOOL) {
        if (ebb_parse_bool(s, &b) != 0)
            return EBB_EINVAL;
        *(bool *)((char *)pc + k->off) = b;
    } else {
        if (ebb_parse_duration_ms(s, &ms) != 0)
            return EBB_EINVAL;
        *(uint64_t *)((char *)pc + k->off) = ms;
    }
    return 0;
}

/* EXIT_ON_ZERO_ACTIVE_CONNECTIONS and MINIMUM_DRAIN_DURATION: the
 * environment wins, else the merged proxyMetadata, else the default. */
static int derive_knobs(struct ebb_proxy_cfg *pc, char *const *env, char *err, size_t errlen)
{
    for (size_t i = 0; i < ebb_knob_section.n; i++) {
        const struct ebb_directive *k = &ebb_knob_section.d[i];
        enum ebb_source *src = (enum ebb_source *)((char *)pc + k->src_off);
        const char *e = env_get(env, k->name);
        const struct ebb_kv *kv;
        char q[96];

        if (e && *e) {
            if (knob_set(k, e, pc) != 0) {
                ebb_quote(e, strlen(e), q, sizeof(q));
                snprintf(err, errlen, "environment: %s: %s %s", k->name, q,
                         k->kind == EBB_D_BOOL ? EBB_BOOL_HINT : e[0] == '-' ?
                         "is negative (must be >= 0)" : EBB_DURATION_HINT);
                return EBB_ECONFIG;
            }
            *src = EBB_SRC_ENV;
        } else if ((kv = md_find(pc, k->name)) && *kv->value && knob_set(k, kv->value, pc) == 0) {
            *src = kv->source;
        }
    }
    return 0;
}

int ebb_proxy_config_load(struct ebb_config *cfg, const struct ebb_config_args *args,
                          const struct ebb_pc_src *file_pc, char *err, size_t errlen)
{
    char *const *env = args->environ ? args->environ : environ;
    struct ebb_pc_src mesh = { .source = EBB_SRC_MESH };
    struct ebb_pc_src penv = { .source = EBB_SRC_PROXY_CONFIG };
    struct ebb_pc_src ann = { .source = EBB_SRC_ANNOTATION };
    struct ebb_proxy_cfg *pc = &cfg->proxy;
    struct ebb_proxy_cfg top = *pc;   /* ebb.yaml's top-level settings, no metadata */
    int rc;

    ebb_proxy_config_default(pc);
    rc = load_mesh(cfg, args, &mesh, err, errlen);
    if (rc == 0)
        rc = load_proxy_config_env(env, &penv, err, errlen);
    if (rc == 0)
        rc = load_annotation(cfg, args, &ann, err, errlen);
    if (rc == 0) {
        if (file_pc)
            merge(pc, &file_pc->v);
        merge(pc, &mesh.v);
        merge(pc, &penv.v);
        merge(pc, &ann.v);
        merge(pc, &top);
        if (pc->nmetadata > 1)
            qsort(pc->metadata, pc->nmetadata, sizeof(*pc->metadata), kv_cmp);
        rc = derive_knobs(pc, env, err, errlen);
        /* protocolDetectionTimeout set in a ProxyConfig outranks the MeshConfig field
         * (load_mesh); ebb.yaml's capture: section outranks both */
        if (!cfg->capture.detect_timeout_set && pc->detect_timeout_src != EBB_SRC_DEFAULT)
            cfg->capture.detect_timeout_ms = pc->detect_timeout_ms;
    }
    ebb_pc_src_free(&mesh);
    ebb_pc_src_free(&penv);
    ebb_pc_src_free(&ann);
    return rc;
}

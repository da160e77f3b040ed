/*
 * config_walk.c - reading a YAML map with a directive table (config_walk.h):
 * each key is looked up in the table (camelCase or snake_case), its value
 * checked by kind and stored at its offset, unknown keys warn, required
 * keys are checked at the end.  Lists and maps that need more than a table
 * go to the caller's hook.
 */
#include <string.h>

#include "ebb/config_walk.h"
#include "ebb/core.h"
#include "ebb/parse.h"

/* "\"x\" is not http or tcp", "\"x\" is not a log level (error, warn, ...)". */
static int names_err(struct ebb_dctx *x, const struct ebb_directive *dir, const yaml_node_t *v,
                     const char *path, const char *s)
{
    char list[256];
    size_t o = 0;

    list[0] = '\0';
    for (int i = 0; dir->names[i] && o < sizeof(list); i++) {
        const char *sep = i == 0 ? "" : dir->unit || dir->names[i + 1] ? ", " : " or ";
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", sep, dir->names[i]);
    }
    if (dir->unit)
        return ebb_yerr(x->d, v, path, x->err, x->errlen, "\"%s\" is not %s (%s)", s,
                        dir->unit, list);
    return ebb_yerr(x->d, v, path, x->err, x->errlen, "\"%s\" is not %s", s, list);
}

/* STRING and ENUM values. */
static int parse_named(struct ebb_dctx *x, const struct ebb_directive *dir, const yaml_node_t *v,
                       const char *path, void *base)
{
    const char *s, *hint = dir->hint;
    int rc = ebb_ystr(x->d, v, path, &s, x->err, x->errlen), idx = 0;

    if (rc)
        return rc;
    if ((dir->flags & EBB_D_F_NONEMPTY) && !*s)
        return ebb_yerr(x->d, v, path, x->err, x->errlen, "must not be empty%s%s%s",
                        hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
    for (const char *p = s; (dir->flags & EBB_D_F_STATNAME) && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return ebb_yerr(x->d, v, path, x->err, x->errlen, "holds a control character "
                            "(byte 0x%02x at offset %zu): it names stats lines", (unsigned char)*p,
                            (size_t)(p - s));
    if (dir->names && (idx = ebb_dname_index(dir->names, s)) < 0)
        return names_err(x, dir, v, path, s);
    if (dir->kind == EBB_D_ENUM) {
        ebb_dset_uint(base, dir->off, dir->size, (uint64_t)idx);
        return 0;
    }
    char **field = (char **)((char *)base + dir->off);
    free(*field);
    *field = ebb_xstrdup(s);
    for (char *p = *field; (dir->flags & EBB_D_F_LOWER) && *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    return 0;
}

static int parse_duration(struct ebb_dctx *x, const struct ebb_directive *dir,
                          const yaml_node_t *v, const char *path, void *base)
{
    const char *text = (const char *)v->data.scalar.value;
    uint64_t ms;
    int rc = ebb_yduration(x->d, v, path, &ms, x->err, x->errlen);

    if (rc)
        return rc;
    if (ms < dir->min)
        return ebb_yerr(x->d, v, path, x->err, x->errlen, "\"%s\" must be more than 0", text);
    if (dir->max && ms > dir->max) {
        char cap[32];
        ebb_format_duration_ms(dir->max, cap, sizeof(cap));
        ebb_ywarn(x->d, v, path, "\"%s\" capped at %s", text, cap);
        ms = dir->max;
    }
    ebb_dset_uint(base, dir->off, sizeof(uint64_t), ms);
    return 0;
}

int ebb_dparse_value(struct ebb_dctx *x, const struct ebb_directive *dir, const yaml_node_t *v,
                     const char *path, void *base)
{
    void *field = (char *)base + dir->off;
    uint64_t u;
    int rc;

    switch (dir->kind) {
    case EBB_D_DURATION:
        rc = parse_duration(x, dir, v, path, base);
        break;
    case EBB_D_BOOL:
        rc = ebb_ybool(x->d, v, path, field, x->err, x->errlen);
        break;
    case EBB_D_UINT:
        rc = ebb_yuint(x->d, v, path, dir->min, dir->max, dir->unit, &u, x->err, x->errlen);
        if (rc == 0)
            ebb_dset_uint(base, dir->off, dir->size, u);
        break;
    case EBB_D_ADDRESS:
        rc = ebb_yaddress(x->d, v, path, field, x->err, x->errlen);
        break;
    case EBB_D_STRING:
    case EBB_D_ENUM:
        rc = parse_named(x, dir, v, path, base);
        break;
    default:
        return x->hook(x, dir, v, path, base);
    }
    if (rc)
        return rc;
    if (dir->set_off)
        *(bool *)((char *)base + dir->set_off) = true;
    if (dir->src_off)
        *(enum ebb_source *)((char *)base + dir->src_off) = x->source;
    if (dir->flags & EBB_D_F_NODE) {
        struct ebb_dnode *nodes = realloc(x->nodes, (x->nnodes + 1) * sizeof(*nodes));
        if (!nodes) {
            fprintf(stderr, "ebb: out of memory\n");
            exit(2);
        }
        x->nodes = nodes;
        x->nodes[x->nnodes++] = (struct ebb_dnode){ field, v };
    }
    return 0;
}

const yaml_node_t *ebb_dnode_of(const struct ebb_dctx *x, const void *field)
{
    for (size_t i = x->nnodes; i > 0; i--) {
        if (x->nodes[i - 1].field == field)
            return x->nodes[i - 1].node;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* the walker                                                         */

static bool ignored(const struct ebb_dsection *sec, const char *key)
{
    for (size_t i = 0; sec->ignored && sec->ignored[i]; i++) {
        if (ebb_ykey_is(key, sec->ignored[i]))
            return true;
    }
    return false;
}

int ebb_dparse(struct ebb_dctx *x, const yaml_node_t *n, const char *path,
               const struct ebb_dsection *sec, void *base, const yaml_node_t **seen)
{
    const yaml_node_t *local[EBB_DSECTION_MAX], *v;
    const char *k;
    char sub[512];
    int rc = ebb_ymap(x->d, n, path, true, x->err, x->errlen);

    if (rc)
        return rc;
    EBB_BUG_ON(sec->n > EBB_DSECTION_MAX);
    if (!seen)
        seen = local;
    memset(seen, 0, sec->n * sizeof(*seen));
    EBB_YMAP_EACH(x->d, n, pair, k, v) {
        ebb_ypath(sub, sizeof(sub), path, k);
        if (ebb_ynull(v))
            continue;   /* null: as if absent (protobuf JSON) */
        const struct ebb_directive *dir = ebb_dfind(sec, k);
        if (!dir) {
            ebb_ywarn(x->d, v, sub, ignored(sec, k) ? "Istio ProxyConfig field not used by "
                      "ebb, ignored" : "unknown field, ignored");
            continue;
        }
        seen[dir - sec->d] = v;
        if (dir->kind == EBB_D_SECTION)
            rc = ebb_dparse(x, v, sub, dir->sub, (char *)base + dir->off, NULL);
        else
            rc = ebb_dparse_value(x, dir, v, sub, base);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < sec->n; i++) {
        const char *hint = sec->d[i].hint;
        if ((sec->d[i].flags & EBB_D_F_REQUIRED) && !seen[i])
            return ebb_yerr(x->d, n, path, x->err, x->errlen, "%s: missing%s%s%s",
                            sec->d[i].name, hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
    }
    return 0;
}

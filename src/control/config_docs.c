/*
 * config_docs.c - docs/config.md's tables of ebb.yaml keys and ProxyConfig
 * fields, rendered from the directive tables (config_table.c).  A unit test
 * (tests/unit/test_config.c) fails when docs/config.md differs, and
 * rewrites it with EBB_UPDATE_DOCS=1, so the docs cannot drift.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "ebb/buf.h"
#include "ebb/config_load.h"
#include "ebb/config_table.h"
#include "ebb/core.h"
#include "ebb/parse.h"

static void md(struct ebb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void md(struct ebb_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int rc = ebb_buf_vappendf(b, fmt, ap);
    va_end(ap);
    if (rc != 0) {
        fprintf(stderr, "ebb: out of memory\n");
        exit(2);
    }
}

/* "`a`, `b` or `c`" */
static void names(struct ebb_buf *b, const char *const *n)
{
    for (size_t i = 0; n[i]; i++)
        md(b, "%s`%s`", i == 0 ? "" : n[i + 1] ? ", " : " or ", n[i]);
}

/* The "value" column. */
static void value(struct ebb_buf *b, const struct ebb_directive *dir)
{
    char cap[32];

    switch (dir->kind) {
    case EBB_D_DURATION:
        ebb_format_duration_ms(dir->max, cap, sizeof(cap));
        md(b, "duration %s%s%s", dir->min ? "> 0" : "≥ 0", dir->max ? ", capped at " : "",
           dir->max ? cap : "");
        break;
    case EBB_D_BOOL: md(b, "bool"); break;
    case EBB_D_UINT:
        if (dir->max == UINT64_MAX)
            md(b, "%s ≥ %" PRIu64, dir->unit, dir->min);
        else
            md(b, "%s, %" PRIu64 "–%" PRIu64, dir->unit, dir->min, dir->max);
        break;
    case EBB_D_STRING:
        if (dir->names)
            names(b, dir->names);
        else
            md(b, "string%s", dir->flags & EBB_D_F_NONEMPTY ? ", not empty" : "");
        break;
    case EBB_D_ADDRESS: md(b, "IP address"); break;
    case EBB_D_ENUM: names(b, dir->names); break;
    case EBB_D_LIST: md(b, "list of at most %" PRIu64, dir->max); break;
    case EBB_D_ENDPOINTS: md(b, "list of %" PRIu64 "–%" PRIu64 " %s", dir->min, dir->max,
                             dir->unit); break;
    case EBB_D_METADATA: md(b, "map of string to string"); break;
    case EBB_D_PORTS: md(b, "list of at most %" PRIu64 " ports", dir->max); break;
    case EBB_D_PROXY_CONFIG: md(b, "ProxyConfig map"); break;
    default: break;
    }
}

static void row(struct ebb_buf *b, const char *key, const struct ebb_directive *dir)
{
    md(b, "| `%s` | ", key);
    value(b, dir);
    if (dir->flags & EBB_D_F_REQUIRED)
        md(b, " | required");
    else if (dir->dflt)
        md(b, " | `%s`", dir->dflt);
    else
        md(b, " | %s", dir->dflt_doc ? dir->dflt_doc : "");
    md(b, " | %s%s%s |\n", dir->doc ? dir->doc : "",
       dir->flags & EBB_D_F_UNIQUE ? (dir->doc ? "; unique" : "unique") : "",
       dir->flags & EBB_D_F_STATNAME ? "; no control characters" : "");
}

/* One row per key of sec, nested sections and list items flattened. */
static void rows(struct ebb_buf *b, const struct ebb_dsection *sec, const char *prefix)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct ebb_directive *dir = &sec->d[i];
        char key[160], sub[170];
        size_t o = 0;

        if (dir->flags & EBB_D_F_DUMP)
            continue;
        o = (size_t)snprintf(key, sizeof(key), "%s", prefix);
        for (const char *p = dir->name; *p && o + 1 < sizeof(key); p++)
            key[o++] = sec->camel && *p == '_' && p[1] ? (char)(*++p - 'a' + 'A') : *p;
        key[o] = '\0';
        if (dir->kind == EBB_D_SECTION) {
            snprintf(sub, sizeof(sub), "%s.", key);
            rows(b, dir->sub, sub);
            continue;
        }
        row(b, key, dir);
        if (dir->kind == EBB_D_LIST) {
            snprintf(sub, sizeof(sub), "%s[].", key);
            rows(b, dir->sub, sub);
        }
    }
}

char *ebb_config_docs_markdown(enum ebb_docs_table table)
{
    struct ebb_buf b = { .max = 1 << 20 };

    if (table == EBB_DOCS_PROXY_CONFIG) {
        md(&b, "| field | value | default | meaning |\n|---|---|---|---|\n");
        rows(&b, &ebb_pc_section, "");
        rows(&b, &ebb_knob_section, "proxyMetadata.");
    } else {
        md(&b, "| key | value | default | meaning |\n|---|---|---|---|\n");
        rows(&b, &ebb_file_section, "");
    }
    if (ebb_buf_append(&b, "", 1) != 0)   /* the NUL: the buffer is the string */
        exit(2);
    return b.data;
}

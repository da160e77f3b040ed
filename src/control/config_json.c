/*
 * config_json.c - the effective config as JSON, for /config_dump and
 * `ebb validate`, written from the directive tables (config_table.c): every
 * ebb.yaml value, every ProxyConfig value with its source, proxyMetadata
 * with each key's source, and the drain knobs.  Key list in docs/config.md.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "ebb/buf.h"
#include "ebb/config_load.h"
#include "ebb/config_table.h"
#include "ebb/core.h"
#include "ebb/parse.h"

/* A growing string.  Out of memory marks it failed (the dump is then NULL): /config_dump runs
 * while ebb serves, and one admin request must not end the process. */
struct jbuf {
    struct ebb_buf b;
    bool           comma;   /* the next member needs a ',' first */
    bool           failed;  /* an append failed: the text is incomplete */
};

static void jb_check(struct jbuf *b, int rc)
{
    if (rc)
        b->failed = true;
}

static void jb_raw(struct jbuf *b, const char *s, size_t n)
{
    jb_check(b, ebb_buf_append(&b->b, s, n));
}

static void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_printf(struct jbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        jb_raw(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string (ebb_json_escape: always valid UTF-8), or null for NULL. */
static void jb_str(struct jbuf *b, const char *s)
{
    if (!s)
        jb_raw(b, "null", 4);
    else
        jb_check(b, ebb_buf_append_json_str(&b->b, s));
}

static void jb_sep(struct jbuf *b)
{
    if (b->comma)
        jb_raw(b, ",", 1);
    b->comma = true;
}

static void jb_key(struct jbuf *b, const char *k)
{
    jb_sep(b);
    jb_str(b, k);
    jb_raw(b, ":", 1);
    b->comma = false;
}

static void jb_open(struct jbuf *b, char c)
{
    jb_raw(b, &c, 1);
    b->comma = false;
}

static void jb_close(struct jbuf *b, char c)
{
    jb_raw(b, &c, 1);
    b->comma = true;
}

/* A key: snake_case, or camelCase for the ProxyConfig section. */
static void jb_name(struct jbuf *b, const char *name, bool camel)
{
    char key[128];
    size_t o = 0;

    for (; *name && o + 1 < sizeof(key); name++) {
        if (camel && *name == '_' && name[1])
            key[o++] = (char)(*++name - 'a' + 'A');
        else
            key[o++] = *name;
    }
    key[o] = '\0';
    jb_key(b, key);
}

static void jb_dur(struct jbuf *b, uint64_t ms)
{
    char d[32];

    ebb_format_duration_ms(ms, d, sizeof(d));
    jb_str(b, d);
}

static void dump_section(struct jbuf *b, const struct ebb_dsection *sec, const void *base);

/* The items of a LIST, ENDPOINTS, PORTS or METADATA value. */
static void dump_items(struct jbuf *b, const struct ebb_directive *dir, const void *base)
{
    const char *arr = *(char *const *)((const char *)base + dir->off);
    size_t n = *(const size_t *)((const char *)base + dir->count_off);

    jb_open(b, dir->kind == EBB_D_METADATA ? '{' : '[');
    for (size_t i = 0; i < n; i++) {
        const void *item = arr + i * dir->elem_size;
        if (dir->kind == EBB_D_METADATA) {
            jb_key(b, ((const struct ebb_kv *)item)->key);
            jb_str(b, ((const struct ebb_kv *)item)->value);
            b->comma = true;
            continue;
        }
        jb_sep(b);
        if (dir->kind == EBB_D_LIST) {
            dump_section(b, dir->sub, item);
        } else if (dir->kind == EBB_D_PORTS) {
            jb_printf(b, "%u", *(const uint16_t *)item);
        } else {
            const struct ebb_endpoint *ep = item;
            char s[320];
            snprintf(s, sizeof(s), strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u", ep->host,
                     ep->port);
            jb_str(b, s);
        }
    }
    jb_close(b, dir->kind == EBB_D_METADATA ? '}' : ']');
}

/* "sources": where each ProxyConfig value, knob and metadata key came from. */
static void dump_sources(struct jbuf *b, const struct ebb_proxy_cfg *pc)
{
    const struct ebb_dsection *secs[] = { &ebb_pc_section, &ebb_knob_section };

    jb_key(b, "sources");
    jb_open(b, '{');
    for (size_t s = 0; s < EBB_ARRAY_LEN(secs); s++) {
        for (size_t i = 0; i < secs[s]->n; i++) {
            const struct ebb_directive *dir = &secs[s]->d[i];
            if (!dir->src_off)
                continue;
            jb_name(b, dir->name, secs[s]->camel);
            jb_str(b, ebb_source_name(*(const enum ebb_source *)((const char *)pc +
                                                                  dir->src_off)));
            b->comma = true;
        }
    }
    jb_key(b, "proxyMetadata");
    jb_open(b, '{');
    for (size_t i = 0; i < pc->nmetadata; i++) {
        jb_key(b, pc->metadata[i].key);
        jb_str(b, ebb_source_name(pc->metadata[i].source));
        b->comma = true;
    }
    jb_close(b, '}');
    jb_close(b, '}');
}

static void dump_value(struct jbuf *b, const struct ebb_directive *dir, const void *base)
{
    const void *field = (const char *)base + dir->off;
    uint64_t u = dir->size ? ebb_dget_uint(base, dir->off, dir->size) : 0;

    switch (dir->kind) {
    case EBB_D_DURATION: jb_dur(b, ebb_dget_uint(base, dir->off, sizeof(uint64_t))); break;
    case EBB_D_BOOL: jb_raw(b, *(const bool *)field ? "true" : "false",
                            *(const bool *)field ? 4 : 5); break;
    case EBB_D_UINT: jb_printf(b, "%" PRIu64, u); break;
    case EBB_D_ENUM: jb_str(b, dir->names[u]); break;
    case EBB_D_STRING:
    case EBB_D_ADDRESS: jb_str(b, *(char *const *)field); break;
    case EBB_D_SECTION: dump_section(b, dir->sub, field); break;
    case EBB_D_PROXY_CONFIG: dump_section(b, &ebb_pc_section, field); break;
    default: dump_items(b, dir, base); break;
    }
    b->comma = true;
}

/* An object with sec's keys, in table order. */
static void dump_section(struct jbuf *b, const struct ebb_dsection *sec, const void *base)
{
    jb_open(b, '{');
    for (size_t i = 0; i < sec->n; i++) {
        const struct ebb_directive *dir = &sec->d[i];
        jb_name(b, dir->name, sec->camel);
        dump_value(b, dir, base);
        if (dir->kind == EBB_D_PROXY_CONFIG)
            dump_sources(b, (const struct ebb_proxy_cfg *)((const char *)base + dir->off));
        if (dir->set_off) {
            char key[128];
            snprintf(key, sizeof(key), "%s_source", dir->name);
            jb_key(b, key);
            jb_str(b, *(const bool *)((const char *)base + dir->set_off) ? "file"
                                                                          : dir->unset_source);
            b->comma = true;
        }
    }
    jb_close(b, '}');
}

char *ebb_config_to_json(const struct ebb_config *cfg)
{
    struct jbuf b = { .b.max = SIZE_MAX / 2 };

    dump_section(&b, &ebb_file_section, cfg);
    jb_raw(&b, "\n", 2);   /* with the NUL: the buffer is the string */
    if (b.failed) {
        ebb_buf_free(&b.b);
        return NULL;
    }
    return b.b.data;
}

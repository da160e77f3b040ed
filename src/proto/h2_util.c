/*
 * h2_util.c - pure helpers of the HTTP/2 code: preface detection, the
 * connection-specific header set, HTTP/1.1 trailer sections as HTTP/2
 * header lists, and the rapid-reset rate counter.  No I/O, no state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ebb/core.h"
#include "ebb/h2.h"
#include "ebb/http.h"

int ebb_h2_preface_match(const char *buf, size_t len)
{
    size_t n = len < EBB_H2_PREFACE_LEN ? len : EBB_H2_PREFACE_LEN;
    if (memcmp(buf, EBB_H2_PREFACE, n) != 0)
        return -1;
    return len >= EBB_H2_PREFACE_LEN ? 1 : 0;
}

static bool name_is(const char *name, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && strncasecmp(name, lit, n) == 0;
}

static bool trailer_forbidden(const char *name, size_t len)
{
    return ebb_hdr_is_hop(name, len) || name_is(name, len, "content-length") ||
           name_is(name, len, "host") || name_is(name, len, "trailer");
}

int ebb_h2_split_trailers(char *buf, size_t len, nghttp2_nv *out, size_t max)
{
    size_t n = 0, i = 0;

    while (i < len) {
        char *line = buf + i;
        char *eol = memchr(line, '\n', len - i);
        if (!eol || eol == line || eol[-1] != '\r')
            return -1;
        size_t ll = (size_t)(eol - 1 - line);
        i = (size_t)(eol + 1 - buf);
        if (ll == 0)
            continue;   /* tolerate the final empty line */
        char *colon = memchr(line, ':', ll);
        if (!colon || colon == line)
            return -1;
        size_t nl = (size_t)(colon - line);
        for (size_t k = 0; k < nl; k++) {
            char ch = line[k];
            if (ch <= ' ' || ch >= 0x7f)
                return -1;
            if (ch >= 'A' && ch <= 'Z')
                line[k] = (char)(ch - 'A' + 'a');
        }
        char *v = colon + 1, *ve = line + ll;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (trailer_forbidden(line, nl))
            continue;
        if (n == max)
            return -1;
        out[n].name = (uint8_t *)line;
        out[n].namelen = nl;
        out[n].value = (uint8_t *)v;
        out[n].valuelen = (size_t)(ve - v);
        out[n].flags = NGHTTP2_NV_FLAG_NONE;
        n++;
    }
    return (int)n;
}

bool ebb_h2_rate_hit(struct ebb_h2_rate *r, uint64_t now_ms, uint64_t window_ms, uint32_t limit)
{
    if (r->count == 0 || now_ms - r->window_start_ms >= window_ms) {
        r->window_start_ms = now_ms;
        r->count = 0;
    }
    r->count++;
    return r->count > limit;
}

/* --- header lists --- */

/* Per-thread storage of the lists: a list is consumed (nghttp2 copies it)
 * before the next one is built, and heads fit in max_head (<= 64 KiB). */
#define NV_SCRATCH_NAMES (72 * 1024)
static __thread nghttp2_nv nv_scratch[EBB_XCH_MAX_FIELDS + 16];
static __thread char nv_scratch_names[NV_SCRATCH_NAMES];

/* Points l at the per-thread storage when names bytes and n entries fit, else
 * allocates.  Returns 0 or EBB_ENOMEM. */
int ebb_nvlist_alloc(struct ebb_nvlist *l, size_t names, size_t n)
{
    l->n = 0;
    if (names <= NV_SCRATCH_NAMES && n <= EBB_ARRAY_LEN(nv_scratch)) {
        l->nv = nv_scratch;
        l->names = nv_scratch_names;
        return 0;
    }
    l->names = malloc(names);
    l->nv = calloc(n, sizeof(*l->nv));
    if (!l->names || !l->nv) {
        ebb_nvlist_free(l);
        return EBB_ENOMEM;
    }
    return 0;
}

void ebb_nvlist_free(struct ebb_nvlist *l)
{
    if (l->nv != nv_scratch) {
        free(l->nv);
        free(l->names);
    }
    l->nv = NULL;
    l->names = NULL;
    l->n = 0;
}

void ebb_nvlist_add(struct ebb_nvlist *l, const char *name, size_t nlen, const char *value,
                   size_t vlen)
{
    l->nv[l->n++] = (nghttp2_nv){ (uint8_t *)name, (uint8_t *)value, nlen, vlen,
                                  NGHTTP2_NV_FLAG_NONE };
}

void ebb_nvlist_lower(char *dst, struct ebb_str name)
{
    for (size_t k = 0; k < name.len; k++) {   /* HTTP/2 names are lowercase */
        char ch = name.p[k];
        dst[k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
}

int ebb_resp_to_nv(const struct ebb_resp *r, struct ebb_nvlist *out)
{
    size_t names = 0;

    for (size_t i = 0; i < r->nhdrs; i++)
        names += r->hdrs[i].name.len;
    /* lowercased names, then the status and content-length digits */
    if (ebb_nvlist_alloc(out, names + 8 + 24, r->nhdrs + 2) < 0)
        return EBB_ENOMEM;
    char *st = out->names + names;
    ebb_nvlist_add(out, ":status", 7, st,
                   ebb_u64_dec(st, (uint64_t)(r->status > 0 ? r->status : 0)));
    char *p = out->names;
    for (size_t i = 0; i < r->nhdrs; i++) {
        const struct ebb_hdr *hd = &r->hdrs[i];
        if (ebb_hdr_is_hop(hd->name.p, hd->name.len))
            continue;
        ebb_nvlist_lower(p, hd->name);
        ebb_nvlist_add(out, p, hd->name.len, hd->value.p, hd->value.len);
        p += hd->name.len;
    }
    if (r->content_length >= 0) {
        char *cl = st + 8;
        ebb_nvlist_add(out, "content-length", 14, cl, ebb_u64_dec(cl, (uint64_t)r->content_length));
    }
    return 0;
}

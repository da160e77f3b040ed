/*
 * h2_util.c - pure helpers of the HTTP/2 code: preface detection, the
 * connection-specific header set, HTTP/1.1 trailer sections as HTTP/2
 * header lists, and the rapid-reset rate counter.  No I/O, no state.
 */
#include <string.h>
#include <strings.h>

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

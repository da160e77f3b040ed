/*
 * http.c - pure helpers on HTTP message heads (see http.h).
 */
#include <string.h>
#include <strings.h>

#include "ebb/buf.h"
#include "ebb/core.h"
#include "ebb/h2.h"
#include "ebb/http.h"

bool ebb_hdr_is_hop(const char *name, size_t len)
{
    const struct ebb_h1_span s = { name, len };
    return ebb_h1_is_hop_by_hop(NULL, &s);   /* the fixed set: one list, the parser's */
}

size_t ebb_trailers_parse(struct ebb_buf *raw, struct ebb_hdr *out, size_t max)
{
    nghttp2_nv nv[128];
    int n = ebb_buf_len(raw) ? ebb_h2_split_trailers(ebb_buf_start(raw), ebb_buf_len(raw), nv,
                                                      EBB_MIN(max, EBB_ARRAY_LEN(nv))) : 0;
    for (int i = 0; i < n; i++)
        out[i] = (struct ebb_hdr){ { (const char *)nv[i].name, nv[i].namelen },
                                   { (const char *)nv[i].value, nv[i].valuelen } };
    return n > 0 ? (size_t)n : 0;
}

int ebb_hdrs_write_h1(struct ebb_buf *b, const struct ebb_hdr *hdrs, size_t n)
{
    int rc = 0;
    /* memcpy, not printf: this runs for every header of every response */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct ebb_hdr *hd = &hdrs[i];
        rc = ebb_buf_reserve(b, hd->name.len + hd->value.len + 4);
        if (rc < 0)
            break;
        char *p = b->data + b->tail;
        if (hd->name.len)
            memcpy(p, hd->name.p, hd->name.len);
        p += hd->name.len;
        *p++ = ':';
        *p++ = ' ';
        if (hd->value.len)
            memcpy(p, hd->value.p, hd->value.len);
        p += hd->value.len;
        *p++ = '\r';
        *p++ = '\n';
        b->tail = (size_t)(p - b->data);
    }
    if (rc)
        return rc == EBB_ENOMEM ? EBB_ENOMEM : EBB_ETOOBIG;
    return 0;
}

size_t ebb_h1_fields(const struct ebb_h1_msg *m, struct ebb_hdr *out, bool keep_length)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *hd = &m->headers[i];
        if (ebb_h1_is_hop_by_hop(m, &hd->name))
            continue;
        if (!keep_length && hd->name.len == 14 &&
            strncasecmp(hd->name.p, "content-length", 14) == 0)
            continue;
        out[n++] = (struct ebb_hdr){ { hd->name.p, hd->name.len }, { hd->value.p, hd->value.len } };
    }
    return n;
}

int ebb_h1_put_body(struct ebb_buf *b, bool chunked, const char *data, size_t n)
{
    int rc = 0;
    if (chunked)
        rc |= ebb_buf_appendf(b, "%zx\r\n", n);
    rc |= ebb_buf_append(b, data, n);
    if (chunked)
        rc |= ebb_buf_append(b, "\r\n", 2);
    return rc;
}

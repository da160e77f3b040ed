/*
 * fuzz_h1.c - libFuzzer driver for the HTTP/1 parser.
 *
 * Feeds the input to the request and response head parsers (default and
 * small limits) and to the body decoder (chunked, length and EOF framing,
 * whole, split in two and one byte at a time), and aborts when an
 * invariant breaks: spans inside the input, consumed <= len, a prefix of
 * the input never giving a different answer than the whole, and the body
 * decoder giving the same result however the input is split.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/h1_parse.h"

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ebb_h1_msg fz_msg;

static void fz_span_in(struct ebb_h1_span s, const char *buf, size_t len)
{
    CHECK(s.p != NULL || s.len == 0);
    if (s.len)
        CHECK(s.p >= buf && s.p + s.len <= buf + len);
}

static void fz_check_msg(const struct ebb_h1_msg *m, const char *buf, int rc, bool response)
{
    static const char *names[] = { "content-length", "host", "x-foo", "connection", "upgrade" };
    size_t hl = (size_t)rc;

    CHECK(m->minor == 0 || m->minor == 1);
    CHECK(m->nheaders <= EBB_H1_MAX_HEADERS_CAP);
    CHECK(m->framing >= EBB_H1_BODY_NONE && m->framing <= EBB_H1_BODY_EOF);
    CHECK(hl >= 4 && memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0);
    if (response) {
        CHECK(m->status >= 100 && m->status <= 999);
        fz_span_in(m->reason, buf, hl);
    } else {
        fz_span_in(m->method, buf, hl);
        fz_span_in(m->target, buf, hl);
        CHECK(m->method.len > 0 && m->target.len > 0);
        if (!(m->path.len == 1 && m->path.p[0] == '/'))
            fz_span_in(m->path, buf, hl);
        fz_span_in(m->authority, buf, hl);
        if (m->minor == 1)
            CHECK(ebb_h1_find(m, "host") != NULL);
    }
    if (m->framing == EBB_H1_BODY_CHUNKED)
        CHECK(ebb_h1_find(m, "content-length") == NULL);
    if (m->framing == EBB_H1_BODY_LENGTH)
        CHECK(m->content_length <= (uint64_t)INT64_MAX);
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *h = &m->headers[i];

        fz_span_in(h->name, buf, hl);
        fz_span_in(h->value, buf, hl);
        CHECK(h->name.len > 0);
        for (size_t j = 0; j < h->value.len; j++)
            CHECK(h->value.p[j] != '\r' && h->value.p[j] != '\n' && h->value.p[j] != '\0');
        (void)ebb_h1_is_hop_by_hop(m, &h->name);
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        (void)ebb_h1_find(m, names[i]);
}

static int fz_parse(const char *buf, size_t len, const struct ebb_h1_limits *lim,
                    int response, struct ebb_h1_msg *m)
{
    static const char *methods[] = { "GET", "HEAD", "CONNECT" };

    if (response)
        return ebb_h1_parse_response(buf, len, lim, methods[response - 1],
                                     strlen(methods[response - 1]), m);
    return ebb_h1_parse_request(buf, len, lim, m);
}

/* Whole input, then prefixes: a prefix is AGAIN, the same error, or (once
 * it holds the whole head) the same success.  Returns the whole's result. */
static int fz_head(const char *buf, size_t len, const struct ebb_h1_limits *lim, int response)
{
    int rc = fz_parse(buf, len, lim, response, &fz_msg);
    size_t step = len > 256 ? len / 64 : 1;

    CHECK(rc >= EBB_H1_ENOTIMPL);
    if (rc >= 0) {
        CHECK((size_t)rc <= len);
        fz_check_msg(&fz_msg, buf, rc, response != 0);
    }
    for (size_t k = 0; k < len; k += step) {
        int prc = fz_parse(buf, k, lim, response, &fz_msg);

        if (rc >= 0 && k >= (size_t)rc)
            CHECK(prc == rc);
        else
            CHECK(prc == EBB_H1_AGAIN || (rc < 0 && prc == rc));
    }
    if (rc > 0)
        CHECK(fz_parse(buf, (size_t)rc - 1, lim, response, &fz_msg) == EBB_H1_AGAIN);
    return rc;
}

struct fz_out {
    int      rc;
    size_t   consumed;
    uint64_t nbody;
    uint64_t ntrailer;
    uint32_t hbody;       /* FNV-1a over payload bytes */
    uint32_t htrailer;
};

static uint32_t fz_hash(uint32_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static void fz_body_start(struct ebb_h1_body *b, enum ebb_h1_framing fr, uint64_t cl,
                          size_t max_trailer, struct fz_out *o)
{
    struct ebb_h1_msg *m = &fz_msg;

    m->framing = fr;
    m->content_length = cl;
    ebb_h1_body_init(b, m);
    b->max_trailer = max_trailer;
    memset(o, 0, sizeof(*o));
    o->rc = EBB_H1_AGAIN;
    o->hbody = o->htrailer = 2166136261u;
}

/* One piece, the way a caller loops.  Returns false once finished. */
static bool fz_body_feed(struct ebb_h1_body *b, const char *p, size_t n, struct fz_out *o)
{
    size_t off = 0;
    unsigned spins = 0;

    for (;;) {
        const char *d;
        size_t used, dl;
        int rc = ebb_h1_body_parse(b, p + off, n - off, &used, &d, &dl);

        CHECK(used <= n - off);
        CHECK(++spins < 100000);
        if (rc == EBB_H1_BODY_DATA || rc == EBB_H1_BODY_TRAILER) {
            CHECK(dl > 0);
            CHECK(d >= p + off && d + dl <= p + off + used);
            if (rc == EBB_H1_BODY_DATA) {
                o->nbody += dl;
                o->hbody = fz_hash(o->hbody, d, dl);
            } else {
                o->ntrailer += dl;
                o->htrailer = fz_hash(o->htrailer, d, dl);
                for (size_t i = 0; i < dl; i++)
                    CHECK(d[i] != '\0');
            }
        } else {
            CHECK(rc == EBB_H1_BODY_DONE || rc == EBB_H1_AGAIN || rc == EBB_H1_EBAD);
        }
        off += used;
        o->consumed += used;
        if (rc == EBB_H1_BODY_DONE) {
            CHECK(ebb_h1_body_done(b));
            o->rc = rc;
            return false;
        }
        if (rc == EBB_H1_EBAD) {
            o->rc = rc;
            return false;
        }
        if (rc == EBB_H1_AGAIN) {
            CHECK(off == n);
            o->rc = rc;
            return true;
        }
    }
}

static void fz_same(const struct fz_out *a, const struct fz_out *b)
{
    CHECK(a->rc == b->rc);
    CHECK(a->consumed == b->consumed);
    CHECK(a->nbody == b->nbody && a->hbody == b->hbody);
    CHECK(a->ntrailer == b->ntrailer && a->htrailer == b->htrailer);
}

/* Copies into exact-size heap pieces so ASan sees any overread. */
static void fz_body(const char *buf, size_t len, enum ebb_h1_framing fr, uint64_t cl,
                    size_t max_trailer, size_t cut)
{
    struct ebb_h1_body b;
    struct fz_out whole, split;
    char *p1, *p2;

    fz_body_start(&b, fr, cl, max_trailer, &whole);
    fz_body_feed(&b, buf, len, &whole);
    CHECK(whole.consumed <= len);
    if (fr == EBB_H1_BODY_LENGTH && whole.rc == EBB_H1_BODY_DONE)
        CHECK(whole.nbody == cl);
    if (fr == EBB_H1_BODY_EOF)
        CHECK(whole.nbody == len && whole.rc == EBB_H1_AGAIN);

    if (cut > len)
        cut = len;
    p1 = malloc(cut ? cut : 1);
    p2 = malloc(len - cut ? len - cut : 1);
    memcpy(p1, buf, cut);
    memcpy(p2, buf + cut, len - cut);
    fz_body_start(&b, fr, cl, max_trailer, &split);
    if (fz_body_feed(&b, p1, cut, &split))
        fz_body_feed(&b, p2, len - cut, &split);
    fz_same(&whole, &split);
    free(p1);
    free(p2);

    if (len <= 4096) {
        char *one = malloc(1);      /* one exact-size byte, reused */

        fz_body_start(&b, fr, cl, max_trailer, &split);
        if (len == 0)
            fz_body_feed(&b, one, 0, &split);
        for (size_t i = 0; i < len; i++) {
            *one = buf[i];
            if (!fz_body_feed(&b, one, 1, &split))
                break;
        }
        free(one);
        fz_same(&whole, &split);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct ebb_h1_limits small = { 64, 256, 8 };
    size_t cut;
    uint64_t cl = 0;
    int rc;

    /* Tighter limits can only turn a success into a limit error. */
    rc = fz_head(buf, size, NULL, 0);
    int src = fz_head(buf, size, &small, 0);
    if (src >= 0 || src == EBB_H1_EBAD || src == EBB_H1_EVERSION || src == EBB_H1_ENOTIMPL)
        CHECK(src == rc);
    for (int r = 1; r <= 3; r++)
        rc = fz_head(buf, size, NULL, r);
    src = fz_head(buf, size, &small, 1);
    if (src >= 0)
        CHECK(src == fz_parse(buf, size, NULL, 1, &fz_msg));

    /* The body decoder on the raw input, cut at a point the input picks. */
    cut = size ? (size_t)data[0] * size / 256 : 0;
    for (size_t i = 0; i < size && i < 2; i++)
        cl = (cl << 8) | data[i];
    fz_body(buf, size, EBB_H1_BODY_CHUNKED, 0, 0, cut);
    fz_body(buf, size, EBB_H1_BODY_CHUNKED, 0, 16, cut / 2);
    fz_body(buf, size, EBB_H1_BODY_LENGTH, cl, 0, cut);
    fz_body(buf, size, EBB_H1_BODY_EOF, 0, 0, cut);

    /* A request head then its body, as the proxy reads them. */
    rc = ebb_h1_parse_request(buf, size, NULL, &fz_msg);
    if (rc >= 0 && (fz_msg.framing == EBB_H1_BODY_CHUNKED ||
                    fz_msg.framing == EBB_H1_BODY_LENGTH)) {
        size_t rest = size - (size_t)rc;

        fz_body(buf + rc, rest, fz_msg.framing, fz_msg.content_length, 0, rest / 2);
    }
    rc = ebb_h1_parse_response(buf, size, NULL, "GET", 3, &fz_msg);
    if (rc >= 0 && fz_msg.framing != EBB_H1_BODY_NONE) {
        size_t rest = size - (size_t)rc;

        fz_body(buf + rc, rest, fz_msg.framing, fz_msg.content_length, 0, rest / 3);
    }
    return 0;
}

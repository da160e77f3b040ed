/*
 * fuzz_h1_response.c - libFuzzer driver for what an upstream HTTP/1 server
 * sends back: the response head parser, then the body decoder over the
 * bytes after the head, then the trailer-section splitter.
 *
 * Input: byte 0 picks the request method the response answers (GET, HEAD,
 * CONNECT, POST, or a method made of the next bytes), byte 1 seeds the
 * slice sizes, the rest is the response as read from the upstream socket.
 * The body is fed in pseudo-random slices (1 byte to 4 KiB, each copied
 * into an exact-size heap block so ASan sees any overread) and again
 * whole; both must agree.  Invariants checked: the head length never
 * exceeds the input, every span lies inside it, consumed bytes never
 * exceed a slice, data and trailer spans lie inside the slice, a length
 * body ends after exactly content-length bytes, and every trailer field
 * ebb_trailers_parse returns points into the trailer section, has a
 * lowercase token name and is not a field that must not be a trailer.
 *
 *   make build/fuzz/fuzz_h1_response
 *   build/fuzz/fuzz_h1_response -max_total_time=60 /tmp/corpus fuzz/corpus/h1_response
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/buf.h"
#include "ebb/h1_parse.h"
#include "ebb/http.h"

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ebb_h1_msg fz_msg;

struct fz_out {
    int            rc;
    size_t         consumed;
    uint64_t       nbody;
    uint32_t       hbody;      /* FNV-1a over payload bytes */
    struct ebb_buf trl;        /* trailer section bytes, as h1.c collects them */
};

static uint32_t fz_hash(uint32_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static void fz_span_in(struct ebb_h1_span s, const char *buf, size_t len)
{
    CHECK(s.p != NULL || s.len == 0);
    if (s.len)
        CHECK(s.p >= buf && s.p + s.len <= buf + len);
}

static void fz_check_head(const struct ebb_h1_msg *m, const char *buf, size_t hl,
                          const char *method, size_t mlen)
{
    CHECK(hl >= 4 && memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0);
    CHECK(m->status >= 100 && m->status <= 999);
    CHECK(m->minor == 0 || m->minor == 1);
    CHECK(m->nheaders <= EBB_H1_MAX_HEADERS_CAP);
    fz_span_in(m->reason, buf, hl);
    for (size_t i = 0; i < m->nheaders; i++) {
        fz_span_in(m->headers[i].name, buf, hl);
        fz_span_in(m->headers[i].value, buf, hl);
        CHECK(m->headers[i].name.len > 0);
    }
    /* RFC 9112 §6.3: no body for HEAD, 1xx, 204, 304; a tunnel for 101 and CONNECT 2xx. */
    if ((mlen == 4 && memcmp(method, "HEAD", 4) == 0) || m->status < 200 ||
        m->status == 204 || m->status == 304)
        CHECK(m->framing == EBB_H1_BODY_NONE);
    if (m->flags & EBB_H1_F_TUNNEL)
        CHECK(m->framing == EBB_H1_BODY_NONE);
    if (m->framing == EBB_H1_BODY_CHUNKED)
        CHECK(ebb_h1_find(m, "content-length") == NULL);
    if (m->framing == EBB_H1_BODY_EOF)
        CHECK(m->flags & EBB_H1_F_CONN_CLOSE);
    if (m->framing == EBB_H1_BODY_LENGTH)
        CHECK(m->content_length <= (uint64_t)INT64_MAX);
}

/* xorshift32: slice sizes the input picks, reproducible. */
static uint32_t fz_next(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* Feeds one slice the way h1.c's pump loops.  Returns false once finished. */
static bool fz_feed(struct ebb_h1_body *b, const char *p, size_t n, struct fz_out *o)
{
    size_t off = 0;
    unsigned spins = 0;

    for (;;) {
        const char *d = NULL;
        size_t used = 0, dl = 0;
        int rc = ebb_h1_body_parse(b, p + off, n - off, &used, &d, &dl);

        CHECK(used <= n - off);
        CHECK(++spins < 100000);
        if (rc == EBB_H1_BODY_DATA || rc == EBB_H1_BODY_TRAILER) {
            CHECK(dl > 0 && d != NULL);
            CHECK(d >= p + off && d + dl <= p + off + used);
            if (rc == EBB_H1_BODY_DATA) {
                o->nbody += dl;
                o->hbody = fz_hash(o->hbody, d, dl);
            } else {
                CHECK(ebb_buf_append(&o->trl, d, dl) == 0);
            }
        } else {
            CHECK(rc == EBB_H1_BODY_DONE || rc == EBB_H1_AGAIN || rc == EBB_H1_EBAD);
        }
        off += used;
        o->consumed += used;
        o->rc = rc;
        if (rc == EBB_H1_BODY_DONE) {
            CHECK(ebb_h1_body_done(b));
            return false;
        }
        if (rc == EBB_H1_EBAD)
            return false;
        if (rc == EBB_H1_AGAIN) {
            CHECK(off == n);
            return true;
        }
    }
}

static void fz_out_init(struct fz_out *o)
{
    memset(o, 0, sizeof(*o));
    o->rc = EBB_H1_AGAIN;
    o->hbody = 2166136261u;
    o->trl.max = 1024 * 1024;
}

/* The trailer section through ebb_trailers_parse, as h1.c hands it on. */
static void fz_trailers(struct ebb_buf *raw)
{
    struct ebb_hdr t[64];
    size_t len = ebb_buf_len(raw);
    if (len == 0) {   /* no storage yet (data NULL): nothing to split */
        CHECK(ebb_trailers_parse(raw, NULL, 0) == 0);
        return;
    }
    const char *start = ebb_buf_start(raw);
    size_t n = ebb_trailers_parse(raw, t, sizeof(t) / sizeof(t[0]));

    CHECK(n <= sizeof(t) / sizeof(t[0]));
    for (size_t i = 0; i < n; i++) {
        CHECK(t[i].name.len > 0);
        CHECK(t[i].name.p >= start && t[i].name.p + t[i].name.len <= start + len);
        CHECK(t[i].value.len == 0 ||
              (t[i].value.p >= start && t[i].value.p + t[i].value.len <= start + len));
        for (size_t k = 0; k < t[i].name.len; k++) {
            unsigned char ch = (unsigned char)t[i].name.p[k];
            CHECK(ch > ' ' && ch < 0x7f && !(ch >= 'A' && ch <= 'Z') && ch != ':');
        }
        for (size_t k = 0; k < t[i].value.len; k++)
            CHECK(t[i].value.p[k] != '\r' && t[i].value.p[k] != '\n');
        CHECK(!ebb_hdr_is_hop(t[i].name.p, t[i].name.len));
        CHECK(!(t[i].name.len == 14 && memcmp(t[i].name.p, "content-length", 14) == 0));
        CHECK(!(t[i].name.len == 4 && memcmp(t[i].name.p, "host", 4) == 0));
    }
    /* Fewer slots can only mean fewer fields, never a different first field. */
    struct ebb_hdr one[1];
    struct ebb_buf copy = { 0 };
    copy.max = 1024 * 1024;
    CHECK(ebb_buf_append(&copy, ebb_buf_start(raw), len) == 0);
    size_t n1 = ebb_trailers_parse(&copy, one, 1);
    CHECK(n1 <= 1 && (n1 == 0 || n >= 1));
    ebb_buf_free(&copy);
}

static void fz_body(const char *body, size_t len, uint32_t seed)
{
    struct ebb_h1_body b;
    struct fz_out whole, sliced;
    size_t off = 0;

    fz_out_init(&whole);
    ebb_h1_body_init(&b, &fz_msg);
    if (fz_msg.framing == EBB_H1_BODY_CHUNKED && (seed & 1))
        b.max_trailer = 64;
    uint32_t max_trailer = (uint32_t)b.max_trailer;
    fz_feed(&b, body, len, &whole);
    CHECK(whole.consumed <= len);
    if (fz_msg.framing == EBB_H1_BODY_LENGTH && whole.rc == EBB_H1_BODY_DONE)
        CHECK(whole.nbody == fz_msg.content_length);
    if (fz_msg.framing == EBB_H1_BODY_LENGTH)
        CHECK(whole.nbody <= fz_msg.content_length);
    if (fz_msg.framing == EBB_H1_BODY_EOF)
        CHECK(whole.nbody == len && whole.rc == EBB_H1_AGAIN);
    if (fz_msg.framing != EBB_H1_BODY_CHUNKED)
        CHECK(ebb_buf_len(&whole.trl) == 0);

    fz_out_init(&sliced);
    ebb_h1_body_init(&b, &fz_msg);
    b.max_trailer = max_trailer;
    bool more = true;
    do {    /* at least one call: an empty body may already be complete */
        size_t n = 1 + fz_next(&seed) % ((fz_next(&seed) & 1) ? 8 : 4096);
        if (n > len - off)
            n = len - off;
        char *p = malloc(n ? n : 1);
        memcpy(p, body + off, n);
        more = fz_feed(&b, p, n, &sliced);
        free(p);
        off += n;
    } while (more && off < len);
    CHECK(sliced.rc == whole.rc);
    CHECK(sliced.consumed == whole.consumed);
    CHECK(sliced.nbody == whole.nbody && sliced.hbody == whole.hbody);
    CHECK(ebb_buf_len(&sliced.trl) == ebb_buf_len(&whole.trl));
    if (ebb_buf_len(&whole.trl))
        CHECK(memcmp(ebb_buf_start(&sliced.trl), ebb_buf_start(&whole.trl),
                     ebb_buf_len(&whole.trl)) == 0);
    /* Last: ebb_trailers_parse lowercases names in place. */
    if (whole.rc == EBB_H1_BODY_DONE)
        fz_trailers(&whole.trl);
    ebb_buf_free(&whole.trl);
    ebb_buf_free(&sliced.trl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *methods[] = { "GET", "HEAD", "CONNECT", "POST" };
    const char *method;
    size_t mlen;

    if (size < 2)
        return 0;
    uint8_t pick = data[0];
    uint32_t seed = (uint32_t)data[1] * 2654435761u + (uint32_t)size;
    data += 2;
    size -= 2;
    if (pick % 5 < 4) {
        method = methods[pick % 5];
        mlen = strlen(method);
    } else {
        /* A method from the input: up to 8 bytes up to the first space. */
        const uint8_t *sp = memchr(data, ' ', size < 8 ? size : 8);
        mlen = sp ? (size_t)(sp - data) : 0;
        method = (const char *)data;
        data += sp ? mlen + 1 : 0;
        size -= sp ? mlen + 1 : 0;
    }

    /* The head exactly sized on the heap, so an overread shows. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    struct ebb_h1_limits small = { 64, 256, 8 };
    int rc = ebb_h1_parse_response(buf, size, NULL, method, mlen, &fz_msg);
    CHECK(rc >= EBB_H1_ENOTIMPL);
    int src = ebb_h1_parse_response(buf, size, &small, method, mlen, &fz_msg);
    if (src >= 0)
        CHECK(src == rc);
    rc = ebb_h1_parse_response(buf, size, NULL, method, mlen, &fz_msg);
    if (rc >= 0) {
        CHECK((size_t)rc <= size);
        fz_check_head(&fz_msg, buf, (size_t)rc, method, mlen);
        /* One byte less is never a complete head. */
        struct ebb_h1_msg *m2 = malloc(sizeof(*m2));
        CHECK(ebb_h1_parse_response(buf, (size_t)rc - 1, NULL, method, mlen, m2) == EBB_H1_AGAIN);
        free(m2);
        if (fz_msg.framing != EBB_H1_BODY_NONE)
            fz_body(buf + rc, size - (size_t)rc, seed);
    }
    free(buf);
    return 0;
}

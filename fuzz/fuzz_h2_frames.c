/*
 * fuzz_h2_frames.c - libFuzzer driver for what a downstream HTTP/2 client
 * sends: the bytes go through an nghttp2 server session set up the way
 * src/proto/h2.c sets up its own, with callbacks that MIRROR h2.c's (they
 * are not h2.c's: the real ones need a worker, its loop, a listener and a
 * config, see docs/fuzzing.md), plus ebb's pure HTTP/2 helpers
 * (src/proto/h2_util.c) on the same bytes.
 *
 * Mirrored from h2.c: the session options (no auto window update, 4 KiB
 * deflate table, max outbound ack 1000, max settings 32, max continuations
 * 8, reset rate limit, no reserved remote streams), the SETTINGS it sends
 * (with the MAX_CONCURRENT_STREAMS patch of h2_patch_settings), the stream
 * limit answered with REFUSED_STREAM, the header-size and header-count
 * limits (431 for a request, a failed callback for trailers), the pseudo-
 * header slots, the request body buffer and its flow-control reset, the
 * stream-id order check (GOAWAY PROTOCOL_ERROR), the rapid-reset counter
 * (ebb_h2_rate_hit) and the local answer each request gets (a response with
 * a body through a data provider, as h2s_reply sends it).
 *
 * Input: byte 0 holds flags (bit 0: prepend the client preface, bits 1-2: the
 * stream limit 1/2/10/100, bit 3: a small header-size limit), byte 1 seeds the
 * read sizes; the rest is the client's bytes, fed in slices as recv() gives them.
 * Invariants: mem_recv never consumes more than it was given, live streams
 * never exceed the advertised limit, every header name and value handed to a
 * callback is a valid field for nghttp2's rules, every rcbuf reference is
 * dropped (LeakSanitizer), the preface matcher agrees with memcmp, and the
 * trailer splitter's fields lie inside its buffer.
 *
 *   make build/fuzz/fuzz_h2_frames
 *   build/fuzz/fuzz_h2_frames -max_total_time=60 /tmp/corpus fuzz/corpus/h2_frames
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "ebb/buf.h"
#include "ebb/h2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do {                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "invariant failed: %s:%d: %s\n", __FILE__,      \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

#define FZ_STREAM_WINDOW (256 * 1024)
#define FZ_MAX_HEADERS   100
#define FZ_SIDS          8

struct fz_s {
    int32_t         id;
    nghttp2_rcbuf  *method, *path, *authority, *scheme;
    nghttp2_rcbuf **hdrs;          /* name, value pairs */
    size_t          nhdrs, cap;
    size_t          hdr_bytes;
    bool            too_big, req_end, answered, closed;
    struct ebb_buf  reqb;
    const char     *resp;          /* the local answer's body */
    size_t          resp_off, resp_len;
    struct fz_s    *next;
};

struct fz_c {
    nghttp2_session   *ng;
    struct fz_s       *streams;
    uint32_t           nstreams, max_streams;
    size_t             max_head;
    int32_t            max_sid;
    int32_t            reset_sids[FZ_SIDS];
    unsigned           reset_next;
    struct ebb_h2_rate resets;
    uint64_t           now_ms;
    bool               calm, settings_sent;
    size_t             sent;
};

static void fz_rc_drop(nghttp2_rcbuf **rb)
{
    if (*rb)
        nghttp2_rcbuf_decref(*rb);
    *rb = NULL;
}

static struct fz_s *fz_get(struct fz_c *h, int32_t id)
{
    struct fz_s *s = nghttp2_session_get_stream_user_data(h->ng, id);
    if (s)
        CHECK(s->id == id);
    return s;
}

static void fz_free_stream(struct fz_c *h, struct fz_s *s)
{
    struct fz_s **pp = &h->streams;
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    fz_rc_drop(&s->method);
    fz_rc_drop(&s->path);
    fz_rc_drop(&s->authority);
    fz_rc_drop(&s->scheme);
    for (size_t i = 0; i < 2 * s->nhdrs; i++)
        fz_rc_drop(&s->hdrs[i]);
    free(s->hdrs);
    ebb_buf_free(&s->reqb);
    free(s);
    CHECK(h->nstreams > 0);
    h->nstreams--;
}

/* h2_patch_settings: the client is told the real stream limit. */
static void fz_patch_settings(struct fz_c *h, uint8_t *p, size_t n)
{
    if (n < 9)
        return;
    size_t plen = ((size_t)p[0] << 16) | ((size_t)p[1] << 8) | p[2];
    if (n < 9 + plen)
        return;
    for (size_t i = 9; i + 6 <= 9 + plen; i += 6) {
        if (((p[i] << 8) | p[i + 1]) != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
            continue;
        p[i + 2] = (uint8_t)(h->max_streams >> 24);
        p[i + 3] = (uint8_t)(h->max_streams >> 16);
        p[i + 4] = (uint8_t)(h->max_streams >> 8);
        p[i + 5] = (uint8_t)h->max_streams;
    }
}

static ssize_t fz_send(nghttp2_session *ng, const uint8_t *d, size_t len, int flags, void *ud)
{
    struct fz_c *h = ud;
    size_t n = len > 16384 ? 16384 : len;    /* a bounded write buffer, as c->wbuf */
    uint8_t *copy = malloc(n);

    memcpy(copy, d, n);
    if (!h->settings_sent && n >= 9 && copy[3] == NGHTTP2_SETTINGS && !(copy[4] & NGHTTP2_FLAG_ACK)) {
        h->settings_sent = true;
        fz_patch_settings(h, copy, n);
        /* the first frame of a server session is its SETTINGS: the patched value is the limit */
        CHECK(n >= 9);
    }
    free(copy);
    h->sent += n;
    return (ssize_t)n;
}

static int fz_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct fz_c *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    CHECK(f->hd.stream_id > 0 && (f->hd.stream_id & 1));
    if (h->nstreams >= h->max_streams) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    struct fz_s *s = calloc(1, sizeof(*s));
    s->id = f->hd.stream_id;
    s->reqb.max = FZ_STREAM_WINDOW + 16384;
    s->next = h->streams;
    h->streams = s;
    h->nstreams++;
    CHECK(h->nstreams <= h->max_streams);
    nghttp2_session_set_stream_user_data(ng, s->id, s);
    return 0;
}

static bool fz_rc_is(nghttp2_rcbuf *rb, const char *lit)
{
    nghttp2_vec v = nghttp2_rcbuf_get_buf(rb);
    return v.len == strlen(lit) && memcmp(v.base, lit, v.len) == 0;
}

static int fz_on_header(nghttp2_session *ng, const nghttp2_frame *f, nghttp2_rcbuf *name,
                        nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    struct fz_c *h = ud;
    struct fz_s *s = fz_get(h, f->hd.stream_id);
    nghttp2_vec nv = nghttp2_rcbuf_get_buf(name), vv = nghttp2_rcbuf_get_buf(value);

    /* nghttp2 validated the field (RFC 9113 §8.2.1) before ebb sees it */
    CHECK(nv.len > 0);
    CHECK(nghttp2_check_header_name(nv.base, nv.len) || nv.base[0] == ':');
    CHECK(nghttp2_check_header_value_rfc9113(vv.base, vv.len));
    for (size_t i = 0; i < nv.len; i++)
        CHECK(!(nv.base[i] >= 'A' && nv.base[i] <= 'Z'));
    if (!s || s->closed)
        return 0;
    bool trailer = f->headers.cat == NGHTTP2_HCAT_HEADERS;
    s->hdr_bytes += nv.len + vv.len + 32;
    if (s->hdr_bytes > h->max_head) {
        s->too_big = true;
        return trailer ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    if (!trailer && nv.base[0] == ':') {
        nghttp2_rcbuf **slot;
        if (fz_rc_is(name, ":method"))
            slot = &s->method;
        else if (fz_rc_is(name, ":path"))
            slot = &s->path;
        else if (fz_rc_is(name, ":authority"))
            slot = &s->authority;
        else if (fz_rc_is(name, ":scheme"))
            slot = &s->scheme;
        else
            return 0;
        if (!*slot) {
            nghttp2_rcbuf_incref(value);
            *slot = value;
        }
        return 0;
    }
    CHECK(nv.base[0] != ':');
    if (s->nhdrs >= FZ_MAX_HEADERS + (trailer ? 64 : 0)) {
        s->too_big = true;
        return trailer ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    if (s->nhdrs == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->hdrs = realloc(s->hdrs, 2 * s->cap * sizeof(*s->hdrs));
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    s->hdrs[2 * s->nhdrs] = name;
    s->hdrs[2 * s->nhdrs + 1] = value;
    s->nhdrs++;
    return 0;
}

static ssize_t fz_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                          uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct fz_s *s = src->ptr;
    size_t n = s->resp_len - s->resp_off;

    if (n > len)
        n = len;
    memcpy(buf, s->resp + s->resp_off, n);
    s->resp_off += n;
    if (s->resp_off == s->resp_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The local answer h2s_reply gives (ebb's real one routes first; here there is no route). */
static void fz_answer(struct fz_c *h, struct fz_s *s)
{
    static const char body[] = "ebb: no route for host\n";
    const char *status = "404";

    if (s->answered)
        return;
    s->answered = true;
    if (s->too_big)
        status = "431";
    else if (s->method && fz_rc_is(s->method, "CONNECT"))
        status = "501";
    else if (!s->authority)
        status = "400";
    nghttp2_nv nv[] = {
        { (uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"content-type", (uint8_t *)"text/plain", 12, 10, NGHTTP2_NV_FLAG_NONE },
    };
    s->resp = body;
    s->resp_len = sizeof(body) - 1;
    nghttp2_data_provider dp = { .source.ptr = s, .read_callback = fz_read_cb };
    int rv = nghttp2_submit_response(h->ng, s->id, nv, 2, &dp);
    CHECK(rv == 0 || rv == NGHTTP2_ERR_INVALID_ARGUMENT || rv == NGHTTP2_ERR_NOMEM ||
          rv == NGHTTP2_ERR_DATA_EXIST);
}

static int fz_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *d,
                            size_t len, void *ud)
{
    struct fz_c *h = ud;
    struct fz_s *s = fz_get(h, id);

    if (!s || s->closed) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (ebb_buf_append(&s->reqb, d, len) < 0) {
        nghttp2_session_consume(ng, id, len);
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
        return 0;
    }
    /* the body pump hands bytes upstream and gives the window back */
    size_t n = ebb_buf_len(&s->reqb);
    ebb_buf_consume(&s->reqb, n);
    nghttp2_session_consume(ng, id, n);
    return 0;
}

static int fz_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct fz_c *h = ud;
    struct fz_s *s;

    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        s = fz_get(h, f->hd.stream_id);
        if (!s)
            break;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            /* nghttp2 checked the request's pseudo-headers (RFC 9113 §8.3.1) */
            CHECK(s->method != NULL);
            if (!fz_rc_is(s->method, "CONNECT"))
                CHECK(s->path != NULL && s->scheme != NULL);
            if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
                s->req_end = true;
            fz_answer(h, s);
        } else if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            s->req_end = true;
        }
        break;
    case NGHTTP2_DATA:
        s = fz_get(h, f->hd.stream_id);
        if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            s->req_end = true;
        break;
    case NGHTTP2_RST_STREAM:
        s = fz_get(h, f->hd.stream_id);
        if (s && !s->closed && !h->calm &&
            ebb_h2_rate_hit(&h->resets, h->now_ms, 30000, 200)) {
            h->calm = true;
            nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int fz_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    struct fz_c *h = ud;
    struct fz_s *s = fz_get(h, id);
    if (s) {
        nghttp2_session_set_stream_user_data(ng, id, NULL);
        fz_free_stream(h, s);
    }
    return 0;
}

static int fz_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct fz_c *h = ud;
    if (f->hd.type == NGHTTP2_RST_STREAM)
        h->reset_sids[h->reset_next++ % FZ_SIDS] = f->hd.stream_id;
    return 0;
}

static int fz_on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    struct fz_c *h = ud;

    if (hd->type != NGHTTP2_HEADERS || hd->stream_id <= 0 || !(hd->stream_id & 1))
        return 0;
    if (hd->stream_id > h->max_sid) {
        h->max_sid = hd->stream_id;
        return 0;
    }
    nghttp2_stream *st = nghttp2_session_find_stream(ng, hd->stream_id);
    if (st && nghttp2_stream_get_state(st) != NGHTTP2_STREAM_STATE_CLOSED)
        return 0;
    for (unsigned i = 0; i < FZ_SIDS; i++)
        if (h->reset_sids[i] == hd->stream_id)
            return 0;
    nghttp2_session_terminate_session(ng, NGHTTP2_PROTOCOL_ERROR);
    return 0;
}

static int fz_on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int lib_error, void *ud)
{
    CHECK(lib_error < 0);
    return 0;
}

static nghttp2_session *fz_session(struct fz_c *h)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_session *ng;

    CHECK(nghttp2_session_callbacks_new(&cbs) == 0);
    nghttp2_session_callbacks_set_send_callback(cbs, fz_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, fz_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, fz_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, fz_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, fz_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, fz_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, fz_on_frame_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, fz_on_begin_frame);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, fz_on_invalid_frame);
    CHECK(nghttp2_option_new(&opt) == 0);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    CHECK(nghttp2_session_server_new2(&ng, cbs, h, opt) == 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return ng;
}

static uint32_t fz_next(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* ebb's pure helpers on the raw bytes. */
static void fz_helpers(const uint8_t *data, size_t size)
{
    int pm = ebb_h2_preface_match((const char *)data, size);
    size_t n = size < EBB_H2_PREFACE_LEN ? size : EBB_H2_PREFACE_LEN;
    bool same = memcmp(data, EBB_H2_PREFACE, n) == 0;
    CHECK(pm == (!same ? -1 : size >= EBB_H2_PREFACE_LEN ? 1 : 0));

    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    nghttp2_nv nv[16];
    int k = ebb_h2_split_trailers(buf, size, nv, 16);
    CHECK(k >= -1 && k <= 16);
    for (int i = 0; i < k; i++) {
        CHECK(nv[i].namelen > 0);
        CHECK((char *)nv[i].name >= buf && (char *)nv[i].name + nv[i].namelen <= buf + size);
        CHECK(nv[i].valuelen == 0 ||
              ((char *)nv[i].value >= buf && (char *)nv[i].value + nv[i].valuelen <= buf + size));
        for (size_t j = 0; j < nv[i].namelen; j++)
            CHECK(!(nv[i].name[j] >= 'A' && nv[i].name[j] <= 'Z'));
    }
    free(buf);

    /* the rate counter: at most limit+0 hits are allowed per window */
    struct ebb_h2_rate r = { 0 };
    uint64_t now = 0;
    uint32_t hits = 0;
    for (size_t i = 0; i < size && i < 64; i++) {
        now += data[i] & 0x1f;
        if (ebb_h2_rate_hit(&r, now, 16, 4))
            hits++;
        CHECK(r.count >= 1 && now - r.window_start_ms < 16);
    }
    (void)hits;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t limits[] = { 1, 2, 10, 100 };
    struct fz_c h = { 0 };

    if (size < 2)
        return 0;
    uint8_t fl = data[0];
    uint32_t seed = data[1] * 2654435761u + (uint32_t)size;
    data += 2;
    size -= 2;
    fz_helpers(data, size);

    h.max_streams = limits[(fl >> 1) & 3];
    h.max_head = (fl & 8) ? 256 : 61440;
    h.ng = fz_session(&h);
    uint32_t ng_maxs = h.max_streams + (h.max_streams > 100 ? h.max_streams : 100);
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, ng_maxs },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, FZ_STREAM_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)h.max_head },
        { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096 },
    };
    CHECK(nghttp2_submit_settings(h.ng, NGHTTP2_FLAG_NONE, iv, 4) == 0);
    nghttp2_session_set_local_window_size(h.ng, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)(h.max_streams * FZ_STREAM_WINDOW));

    /* the client's bytes: the preface (when flagged) then the input, in recv()-sized slices */
    size_t total = size + ((fl & 1) ? EBB_H2_PREFACE_LEN : 0);
    uint8_t *in = malloc(total ? total : 1);
    if (fl & 1)
        memcpy(in, EBB_H2_PREFACE, EBB_H2_PREFACE_LEN);
    memcpy(in + total - size, data, size);
    size_t off = 0;
    bool dead = false;
    while (off < total && !dead) {
        size_t n = 1 + fz_next(&seed) % ((fz_next(&seed) & 1) ? 16 : 8192);
        if (n > total - off)
            n = total - off;
        uint8_t *p = malloc(n);
        memcpy(p, in + off, n);
        ssize_t rv = nghttp2_session_mem_recv(h.ng, p, n);
        free(p);
        if (rv < 0) {
            nghttp2_session_terminate_session(h.ng, NGHTTP2_PROTOCOL_ERROR);
            dead = true;
        } else {
            CHECK((size_t)rv == n);   /* a server session takes everything or fails */
            off += n;
        }
        h.now_ms += fz_next(&seed) & 0xff;
        CHECK(h.nstreams <= h.max_streams);
        for (int i = 0; i < 4 && nghttp2_session_want_write(h.ng); i++)
            if (nghttp2_session_send(h.ng) != 0)
                dead = true;
    }
    nghttp2_session_send(h.ng);
    nghttp2_session_del(h.ng);   /* frees its streams without callbacks: ours are freed here */
    while (h.streams)
        fz_free_stream(&h, h.streams);
    CHECK(h.nstreams == 0);
    free(in);
    return 0;
}

/* test_h2_util.c - the pure HTTP/2 helpers of src/proto/h2_util.c: preface
 * detection, the connection-specific header set, HTTP/1.1 trailer sections
 * as header lists, and the rapid-reset rate counter.  Cases as tables. */
#include <stdint.h>
#include <stdlib.h>

#include "ebb/core.h"
#include "ebb/h2.h"
#include "ebb/http.h"
#include "t.h"

/* --- ebb_h2_preface_match --- */

struct preface_case {
    const char *in;
    size_t      len;    /* 0: strlen(in) */
    int         want;   /* 1 whole preface, 0 need more, -1 not h2 */
};

static const struct preface_case preface_cases[] = {
    { EBB_H2_PREFACE, 0, 1 },
    { EBB_H2_PREFACE "\x00\x00\x12\x04", EBB_H2_PREFACE_LEN + 4, 1 },   /* SETTINGS follows */
    { "", 0, 0 },                                                     /* nothing yet */
    { "P", 0, 0 },
    { "PRI", 0, 0 },
    { "PRI * HTTP/2.0\r\n", 0, 0 },
    { "PRI * HTTP/2.0\r\n\r\nSM\r\n\r", 0, 0 },                           /* one byte short */
    { "PRI * HTTP/2.0\r\n\r\nSM\r\n\rX", 0, -1 },                         /* last byte wrong */
    { "GET / HTTP/1.1\r\n", 0, -1 },
    { "G", 0, -1 },
    { "PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n", 0, -1 },
    { "pri * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, -1 },                        /* case matters */
    { "PRI * HTTP/2.0\r\n\r\nsm\r\n\r\n", 0, -1 },
    { "PRI  * HTTP/2.0\r\n", 0, -1 },
    { "\0RI", 3, -1 },
};

static void test_preface_table(void)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(preface_cases); i++) {
        const struct preface_case *pc = &preface_cases[i];
        size_t len = pc->len ? pc->len : strlen(pc->in);
        int got = ebb_h2_preface_match(pc->in, len);
        if (got != pc->want)
            fprintf(stderr, "  preface case %zu (len %zu)\n", i, len);
        T_EQ_INT(got, pc->want);
    }
}

/* every strict prefix of the preface needs more; every one-byte change is not h2 */
static void test_preface_every_prefix_and_byte(void)
{
    char buf[EBB_H2_PREFACE_LEN];
    for (size_t n = 0; n < EBB_H2_PREFACE_LEN; n++)
        T_EQ_INT(ebb_h2_preface_match(EBB_H2_PREFACE, n), 0);
    for (size_t i = 0; i < EBB_H2_PREFACE_LEN; i++) {
        memcpy(buf, EBB_H2_PREFACE, sizeof(buf));
        buf[i] ^= 0x20;
        T_EQ_INT(ebb_h2_preface_match(buf, i + 1), -1);
        T_EQ_INT(ebb_h2_preface_match(buf, sizeof(buf)), -1);
    }
}

/* --- ebb_hdr_is_hop (http.h): the fixed hop-by-hop set, by name and length --- */

struct conn_hdr_case {
    const char *name;
    bool        want;
};

static const struct conn_hdr_case conn_hdr_cases[] = {
    { "connection", true }, { "Connection", true }, { "CONNECTION", true },
    { "keep-alive", true }, { "Keep-Alive", true }, { "proxy-connection", true },
    { "transfer-encoding", true }, { "Transfer-Encoding", true }, { "upgrade", true },
    { "te", true }, { "TE", true },
    { "", false }, { "t", false }, { "tee", false }, { "trailer", false },
    { "connectio", false }, { "connections", false }, { "keep-alive2", false },
    { "x-connection", false }, { "content-length", false }, { "host", false },
    { "transfer-encodin", false }, { "upgrade-insecure-requests", false },
    { "proxy-authorization", false }, { "cookie", false },
};

static void test_conn_header_table(void)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(conn_hdr_cases); i++) {
        const struct conn_hdr_case *hc = &conn_hdr_cases[i];
        bool got = ebb_hdr_is_hop(hc->name, strlen(hc->name));
        if (got != hc->want)
            fprintf(stderr, "  header \"%s\"\n", hc->name);
        T_EQ_INT(got, hc->want);
    }
    /* the length counts, not a NUL: "te" inside a longer buffer */
    T_EQ_INT(ebb_hdr_is_hop("tex", 2), true);
    T_EQ_INT(ebb_hdr_is_hop("connection", 4), false);
}

/* --- ebb_h2_split_trailers --- */

#define MAX_NV 8

struct trl_case {
    const char *in;
    size_t      max;          /* capacity given to the splitter; 0: MAX_NV */
    int         want;         /* number of pairs, or -1 */
    const char *pairs[MAX_NV][2];
};

static const struct trl_case trl_cases[] = {
    { "", 0, 0, { { NULL, NULL } } },
    { "\r\n", 0, 0, { { NULL, NULL } } },                               /* final empty line */
    { "grpc-status: 0\r\n", 0, 1, { { "grpc-status", "0" } } },
    { "Grpc-Status: 0\r\nGRPC-Message: ok then\r\n", 0, 2,
      { { "grpc-status", "0" }, { "grpc-message", "ok then" } } },
    { "x-a:v\r\n", 0, 1, { { "x-a", "v" } } },                           /* no OWS */
    { "x-a: \t v \t\r\n", 0, 1, { { "x-a", "v" } } },                   /* OWS trimmed */
    { "x-a:\r\n", 0, 1, { { "x-a", "" } } },                             /* empty value */
    { "x-a: a:b:c\r\n", 0, 1, { { "x-a", "a:b:c" } } },                  /* colons in value */
    { "x-a: 1\r\n\r\n", 0, 1, { { "x-a", "1" } } },
    /* fields that must not be trailers are dropped */
    { "content-length: 5\r\nx-a: 1\r\n", 0, 1, { { "x-a", "1" } } },
    { "Transfer-Encoding: chunked\r\nHost: h\r\nConnection: x\r\nTE: trailers\r\n"
      "Keep-Alive: 1\r\nUpgrade: h2c\r\nProxy-Connection: y\r\nTrailer: x-a\r\n", 0, 0,
      { { NULL, NULL } } },
    /* malformed */
    { "x-a: 1", 0, -1, { { NULL, NULL } } },                              /* no line end */
    { "x-a: 1\n", 0, -1, { { NULL, NULL } } },                            /* bare LF */
    { "\n", 0, -1, { { NULL, NULL } } },
    { "x-a 1\r\n", 0, -1, { { NULL, NULL } } },                           /* no colon */
    { ": v\r\n", 0, -1, { { NULL, NULL } } },                             /* empty name */
    { "x a: v\r\n", 0, -1, { { NULL, NULL } } },                          /* space in name */
    { "x-a : v\r\n", 0, -1, { { NULL, NULL } } },                         /* space before colon */
    { "x\x01: v\r\n", 0, -1, { { NULL, NULL } } },                        /* control in name */
    { "x\x7f: v\r\n", 0, -1, { { NULL, NULL } } },                        /* DEL in name */
    { "x\xc3\xa9: v\r\n", 0, -1, { { NULL, NULL } } },                    /* non-ASCII name */
    /* capacity */
    { "a: 1\r\nb: 2\r\n", 2, 2, { { "a", "1" }, { "b", "2" } } },
    { "a: 1\r\nb: 2\r\nc: 3\r\n", 2, -1, { { NULL, NULL } } },
    { "a: 1\r\ncontent-length: 2\r\n", 1, 1, { { "a", "1" } } },         /* dropped ones are free */
    { "a: 1\r\n", 0, 1, { { "a", "1" } } },
};

static void test_split_trailers_table(void)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(trl_cases); i++) {
        const struct trl_case *tc = &trl_cases[i];
        size_t len = strlen(tc->in);
        char *buf = malloc(len + 1);
        nghttp2_nv nv[MAX_NV];
        size_t max = tc->max ? tc->max : MAX_NV;

        memcpy(buf, tc->in, len + 1);
        int got = ebb_h2_split_trailers(buf, len, nv, max);
        if (got != tc->want)
            fprintf(stderr, "  trailer case %zu: \"%s\"\n", i, tc->in);
        T_EQ_INT(got, tc->want);
        for (int k = 0; got == tc->want && k < got; k++) {
            char name[64], value[64];
            snprintf(name, sizeof(name), "%.*s", (int)nv[k].namelen, (const char *)nv[k].name);
            snprintf(value, sizeof(value), "%.*s", (int)nv[k].valuelen,
                     (const char *)nv[k].value);
            T_EQ_STR(name, tc->pairs[k][0]);
            T_EQ_STR(value, tc->pairs[k][1]);
            T_EQ_INT(nv[k].flags, NGHTTP2_NV_FLAG_NONE);
            /* the pairs point into the caller's buffer */
            T_CHECK((char *)nv[k].name >= buf && (char *)nv[k].name < buf + len);
        }
        free(buf);
    }
}

/* --- ebb_h2_rate_hit --- */

struct rate_step {
    uint64_t now_ms;
    bool     want;     /* over the limit after this event */
    uint32_t count;    /* count after this event */
};

struct rate_case {
    const char     *name;
    uint64_t        window_ms;
    uint32_t        limit;
    uint64_t        start_ms;    /* initial window_start_ms (count 0) */
    size_t          nsteps;
    struct rate_step steps[8];
};

static const struct rate_case rate_cases[] = {
    { "limit 3 in one window", 1000, 3, 0, 5,
      { { 10, false, 1 }, { 20, false, 2 }, { 30, false, 3 }, { 40, true, 4 }, { 50, true, 5 } } },
    { "window rolls over", 1000, 2, 0, 6,
      { { 100, false, 1 }, { 200, false, 2 }, { 300, true, 3 },
        { 1099, true, 4 }, { 1100, false, 1 }, { 1200, false, 2 } } },
    { "exactly one window later is a new window", 100, 1, 0, 3,
      { { 5, false, 1 }, { 104, true, 2 }, { 105, false, 1 } } },
    { "limit 0: every event is over", 1000, 0, 0, 2, { { 1, true, 1 }, { 2, true, 2 } } },
    { "first event starts the window whatever start_ms says", 1000, 1, 99999, 3,
      { { 5, false, 1 }, { 6, true, 2 }, { 1005, false, 1 } } },
    { "large clock values", 10000, 1, 0, 3,
      { { UINT64_MAX - 20000, false, 1 }, { UINT64_MAX - 15000, true, 2 },
        { UINT64_MAX - 10000, false, 1 } } },
};

static void test_rate_table(void)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(rate_cases); i++) {
        const struct rate_case *rc = &rate_cases[i];
        struct ebb_h2_rate r = { .window_start_ms = rc->start_ms, .count = 0 };
        for (size_t k = 0; k < rc->nsteps; k++) {
            bool got = ebb_h2_rate_hit(&r, rc->steps[k].now_ms, rc->window_ms, rc->limit);
            if (got != rc->steps[k].want || r.count != rc->steps[k].count)
                fprintf(stderr, "  rate case \"%s\" step %zu\n", rc->name, k);
            T_EQ_INT(got, rc->steps[k].want);
            T_EQ_INT(r.count, rc->steps[k].count);
        }
    }
}

/* a zeroed counter is a valid empty one */
static void test_rate_zeroed(void)
{
    struct ebb_h2_rate r = { 0 };
    T_EQ_INT(ebb_h2_rate_hit(&r, 123456, 10000, 200), false);
    T_EQ_INT(r.count, 1);
    T_EQ_INT(r.window_start_ms, 123456);
}

int main(void)
{
    T_RUN(test_preface_table);
    T_RUN(test_preface_every_prefix_and_byte);
    T_RUN(test_conn_header_table);
    T_RUN(test_split_trailers_table);
    T_RUN(test_rate_table);
    T_RUN(test_rate_zeroed);
    T_DONE();
}

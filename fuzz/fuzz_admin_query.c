/*
 * fuzz_admin_query.c - libFuzzer driver for how the admin endpoints read a
 * request: the input is a request-target sent as "GET <target> HTTP/1.1"
 * (or, when byte 0 is odd, the raw bytes as a whole request head), parsed
 * by ebb_h1_parse_request as admin.c does, split into path and query by
 * ebb_admin_split_target, then every query field admin.c reads
 * (usedonly, filter, inboundonly, graceful, skip_exit) through
 * ebb_admin_query_get, and the filter through ebb_stats_render_text (the
 * POSIX ERE /stats?filter= compiles) over a server with no listeners, no
 * clusters and no workers.
 *
 * Invariants: the split gives back the path's bytes and the query right
 * after the '?'; a value is NUL-terminated within its buffer, never longer
 * than the field it came from, found iff the name is a field of the query;
 * a smaller buffer gives a prefix of the same value.
 *
 *   make build/fuzz/fuzz_admin_query
 *   build/fuzz/fuzz_admin_query -max_total_time=60 /tmp/corpus fuzz/corpus/admin_query
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/admin.h"
#include "ebb/admin_query.h"
#include "ebb/buf.h"
#include "ebb/config.h"
#include "ebb/h1_parse.h"
#include "ebb/server.h"
#include "ebb/stats.h"

#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ebb_h1_msg fz_msg;

/* True when name is one of q's '&'-separated fields, bare or with '='. */
static bool fz_has_field(const char *q, size_t qlen, const char *name)
{
    size_t nl = strlen(name), i = 0;

    while (i <= qlen) {
        size_t j = i;
        while (j < qlen && q[j] != '&')
            j++;
        if (j - i >= nl && memcmp(q + i, name, nl) == 0 && (j - i == nl || q[i + nl] == '='))
            return true;
        i = j + 1;
    }
    return false;
}

static void fz_query(const char *q, size_t qlen, const char *name)
{
    char big[256], small[8];
    const char *v = ebb_admin_query_get(q, qlen, name, big, sizeof(big));
    const char *s = ebb_admin_query_get(q, qlen, name, small, sizeof(small));

    CHECK(v == NULL || v == big);
    CHECK((v == NULL) == (s == NULL));
    CHECK((v != NULL) == fz_has_field(q, qlen, name));
    if (!v)
        return;
    CHECK(memchr(big, '\0', sizeof(big)) != NULL);
    CHECK(memchr(small, '\0', sizeof(small)) != NULL);
    size_t vl = strlen(big), sl = strlen(small);
    CHECK(vl <= qlen);
    CHECK(sl <= vl && memcmp(small, big, sl) == 0);
}

static struct ebb_server *fz_server(void)
{
    static struct ebb_config cfg;
    static struct ebb_server srv;

    if (!srv.cfg) {
        srv.cfg = &cfg;
        srv.stats = ebb_stats_new(&cfg);
        CHECK(srv.stats != NULL);
    }
    return &srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = { "usedonly", "filter", "inboundonly", "graceful", "skip_exit" };
    char *req;
    size_t rlen;

    if (size < 1)
        return 0;
    if (data[0] & 1) {
        rlen = size - 1;
        req = malloc(rlen ? rlen : 1);
        memcpy(req, data + 1, rlen);
    } else {
        rlen = (size - 1) + 4 + 30;
        req = malloc(rlen + 1);
        memcpy(req, "GET ", 4);
        memcpy(req + 4, data + 1, size - 1);
        memcpy(req + 4 + size - 1, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 30);
    }
    int rc = ebb_h1_parse_request(req, rlen, NULL, &fz_msg);
    if (rc >= 0) {
        const char *path = fz_msg.path.p, *q;
        size_t plen, qlen;

        ebb_admin_split_target(path, fz_msg.path.len, &plen, &q, &qlen);
        CHECK(plen <= fz_msg.path.len);
        CHECK(q != NULL);
        if (plen < fz_msg.path.len) {
            CHECK(path[plen] == '?' && q == path + plen + 1);
            CHECK(plen + 1 + qlen == fz_msg.path.len);
            CHECK(memchr(path, '?', plen) == NULL);
        } else {
            CHECK(qlen == 0 && *q == '\0');
        }
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            fz_query(q, qlen, names[i]);

        /* /stats?filter=REGEX: the regex the admin compiles, over the real renderer */
        char val[256];
        const char *filter = ebb_admin_query_get(q, qlen, "filter", val, sizeof(val));
        struct ebb_buf b = { .max = 4 << 20 };
        ebb_stats_render_text(fz_server(), &b, fz_has_field(q, qlen, "usedonly"), filter);
        CHECK(ebb_buf_len(&b) > 0 || (filter && *filter));
        ebb_buf_free(&b);
    }
    free(req);
    return 0;
}

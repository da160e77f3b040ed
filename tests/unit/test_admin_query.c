/*
 * test_admin_query.c - the admin endpoints' request-target split and query
 * lookup (admin_query.h), the code fuzz/fuzz_admin_query.c drives.
 */
#include <string.h>

#include "ebb/admin_query.h"
#include "t.h"

static void test_split_table(void)
{
    static const struct { const char *in; size_t plen; const char *q; } cases[] = {
        { "/stats", 6, "" },
        { "/stats?", 6, "" },
        { "/stats?usedonly&filter=a", 6, "usedonly&filter=a" },
        { "/a?b?c", 2, "b?c" },
        { "?x", 0, "x" },
        { "", 0, "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t plen = 99, qlen = 99;
        const char *q = NULL;
        ebb_admin_split_target(cases[i].in, strlen(cases[i].in), &plen, &q, &qlen);
        T_EQ_INT(plen, cases[i].plen);
        T_EQ_INT(qlen, strlen(cases[i].q));
        T_CHECK(q && memcmp(q, cases[i].q, qlen) == 0);
    }
    /* CONNECT and empty paths come as (NULL, 0) */
    size_t plen = 99, qlen = 99;
    const char *q = NULL;
    ebb_admin_split_target(NULL, 0, &plen, &q, &qlen);
    T_EQ_INT(plen, 0);
    T_EQ_INT(qlen, 0);
    T_EQ_STR(q, "");
}

static const char *get(const char *q, const char *name, char *out, size_t olen)
{
    return ebb_admin_query_get(q, strlen(q), name, out, olen);
}

static void test_query_table(void)
{
    static const struct { const char *q, *name, *want; } cases[] = {
        { "usedonly&filter=a", "usedonly", "" },
        { "usedonly&filter=a", "filter", "a" },
        { "filter=cluster+a%2Eb", "filter", "cluster a.b" },
        { "filter=%4", "filter", "%4" },           /* too short to decode: literal */
        { "&&filter&", "filter", "" },
        { "filterx=1&filter=2", "filter", "2" },    /* a longer name is another field */
        { "usedonly", "used", NULL },
        { "", "filter", NULL },
        { "a=1&", "filter", NULL },
        { "a=1&b", "b", "" },                       /* the last field, without '&' after it */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        const char *v = get(cases[i].q, cases[i].name, out, sizeof(out));
        if (!cases[i].want)
            T_CHECK(v == NULL);
        else
            T_EQ_STR(v, cases[i].want);
    }
}

static void test_query_truncates(void)
{
    char out[4];
    T_EQ_STR(get("filter=abcdef", "filter", out, sizeof(out)), "abc");
    T_EQ_STR(get("filter=%41%42%43%44", "filter", out, sizeof(out)), "ABC");
}

int main(void)
{
    T_RUN(test_split_table);
    T_RUN(test_query_table);
    T_RUN(test_query_truncates);
    T_DONE();
}

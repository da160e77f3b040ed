/* test_parse.c - Go value syntax: durations, bools, uints, strconv.Unquote. */
#include <stdint.h>
#include <stdlib.h>

#include "ebb/core.h"
#include "ebb/parse.h"
#include "t.h"

#define BAD UINT64_MAX   /* expected: rejected */

struct dur_case {
    const char *in;
    uint64_t    ms;
};

/* Mostly Go's time/time_test.go parseDurationTests, in ms (sub-ms rounds up). */
static const struct dur_case dur_cases[] = {
    { "0", 0 }, { "+0", 0 }, { "-0", 0 },
    { "5s", 5000 }, { "30s", 30000 }, { "1478s", 1478000 }, { "+5s", 5000 },
    { "5.0s", 5000 }, { "5.6s", 5600 }, { "5.s", 5000 }, { ".5s", 500 }, { "1.0s", 1000 },
    { "1.00s", 1000 }, { "1.004s", 1004 }, { "1.0040s", 1004 }, { "100.00100s", 100001 },
    { "10ns", 1 }, { "11us", 1 }, { "12\xc2\xb5s", 1 }, { "12\xce\xbcs", 1 }, { "13ms", 13 },
    { "14s", 14000 }, { "15m", 900000 }, { "16h", 57600000 }, { "3h30m", 12600000 },
    { "10.5s4m", 250500 }, { "1h2m3s4ms5us6ns", 3723005 }, { "39h9m14.425s", 140954425 },
    { "52763797000ns", 52764 }, { "0.3333333333333333333h", 1200000 },
    { "9007199254740993ns", 9007199255 }, { "9223372036854775807ns", 9223372036854 },
    { "9223372036854775.807us", 9223372036854 }, { "9223372036s854ms775us807ns", 9223372036854 },
    { "2562047h47m16.854s", 9223372036854 }, { "2562047h47m16.855s", BAD },
    { "0.100000000000000000000h", 360000 }, { "0.830103483285477580700h", 2988373 },
    { "1.5h", 5400000 }, { "1m30s", 90000 }, { "500ms", 500 }, { "20s", 20000 },
    { "0s", 0 }, { "0ms", 0 }, { "-0s", 0 }, { "000005s", 5000 }, { "1000000us", 1000 },
    /* rejected */
    { "", BAD }, { "3", BAD }, { "20", BAD }, { "-", BAD }, { "+", BAD }, { "s", BAD },
    { ".", BAD }, { "-.", BAD }, { ".s", BAD }, { "+.s", BAD }, { "1d", BAD }, { "1S", BAD },
    { "1H", BAD }, { "1.5", BAD }, { "\x85\x85", BAD }, { "\xff" "ff", BAD },
    { "hello \xff" "ff world", BAD }, { "9223372036854775810ns", BAD },
    { "9223372036854775808ns", BAD }, { "-9223372036854775808ns", BAD },
    { "9223372036854775.808us", BAD }, { "9223372036854ms775us808ns", BAD },
    { "5 s", BAD }, { "1h 30m", BAD }, { " 5s", BAD }, { "5s ", BAD }, { "-5s", BAD },
    { "-1ns", BAD }, { "-2m3.4s", BAD }, { "5s-", BAD }, { "1e3s", BAD }, { "0x10s", BAD },
    { "5sec", BAD }, { "1..5s", BAD }, { "1.5.s", BAD }, { "\xc2s", BAD }, { "--5s", BAD },
    { "+-5s", BAD }, { "99999999999999999999s", BAD }, { "5s5", BAD },
};

static void test_duration_table(void)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(dur_cases); i++) {
        uint64_t ms = 12345;
        int rc = ebb_parse_duration_ms(dur_cases[i].in, &ms);
        if (dur_cases[i].ms == BAD) {
            if (rc == 0)
                fprintf(stderr, "  accepted \"%s\" as %llu\n", dur_cases[i].in,
                        (unsigned long long)ms);
            T_EQ_INT(rc, EBB_EINVAL);
            T_EQ_INT(ms, 12345);   /* untouched on error */
        } else {
            if (rc != 0 || ms != dur_cases[i].ms)
                fprintf(stderr, "  case \"%s\"\n", dur_cases[i].in);
            T_EQ_INT(rc, 0);
            T_EQ_INT(ms, dur_cases[i].ms);
        }
    }
    T_EQ_INT(ebb_parse_duration_ms(NULL, &(uint64_t){0}), EBB_EINVAL);
}

struct fmt_case {
    uint64_t    ms;
    const char *out;
};

static void test_duration_format(void)
{
    static const struct fmt_case cases[] = {
        { 0, "0s" }, { 1, "1ms" }, { 999, "999ms" }, { 1000, "1s" }, { 1500, "1.5s" },
        { 1050, "1.05s" }, { 1001, "1.001s" }, { 45000, "45s" }, { 90000, "1m30s" },
        { 3600000, "1h0m0s" }, { 5400500, "1h30m0.5s" }, { 60000, "1m0s" },
        { 360000000, "100h0m0s" },
    };
    char buf[32];

    for (size_t i = 0; i < EBB_ARRAY_LEN(cases); i++) {
        uint64_t back = 0;
        ebb_format_duration_ms(cases[i].ms, buf, sizeof(buf));
        T_EQ_STR(buf, cases[i].out);
        /* what we print, Go (and we) parse back */
        T_EQ_INT(ebb_parse_duration_ms(buf, &back), 0);
        T_EQ_INT(back, cases[i].ms);
    }
    ebb_format_duration_ms(UINT64_MAX / 2, buf, sizeof(buf));
    T_CHECK(strlen(buf) > 0);
    /* the largest duration survives the round trip */
    uint64_t ms = 0, back = 0;
    T_EQ_INT(ebb_parse_duration_ms("9223372036854775807ns", &ms), 0);
    ebb_format_duration_ms(ms, buf, sizeof(buf));
    T_EQ_STR(buf, "2562047h47m16.854s");
    T_EQ_INT(ebb_parse_duration_ms(buf, &back), 0);
    T_EQ_INT(back, ms);
    ebb_format_duration_ms(1500, buf, 3);
    T_EQ_STR(buf, "1.");
}

static void test_bool_table(void)
{
    static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
    static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
    static const char *const bad[] = {
        "", "yes", "no", "on", "off", "y", "n", "TrUe", "fALSE", " true", "true ", "2",
        "tru", "truee", "00", "01", "-1", "\"true\"", "Yes",
    };
    bool b;

    for (size_t i = 0; i < EBB_ARRAY_LEN(yes); i++) {
        b = false;
        T_EQ_INT(ebb_parse_bool(yes[i], &b), 0);
        T_CHECK(b);
        b = true;
        T_EQ_INT(ebb_parse_bool(no[i], &b), 0);
        T_CHECK(!b);
    }
    for (size_t i = 0; i < EBB_ARRAY_LEN(bad); i++) {
        b = true;
        T_EQ_INT(ebb_parse_bool(bad[i], &b), EBB_EINVAL);
        T_CHECK(b);
    }
    T_EQ_INT(ebb_parse_bool(NULL, &b), EBB_EINVAL);
}

struct uint_case {
    const char *in;
    uint64_t    min, max;
    bool        ok;
    uint64_t    out;
};

static void test_uint_table(void)
{
    static const struct uint_case cases[] = {
        { "0", 0, 10, true, 0 }, { "10", 0, 10, true, 10 }, { "007", 0, 10, true, 7 },
        { "1", 1, 65535, true, 1 }, { "65535", 1, 65535, true, 65535 },
        { "18446744073709551615", 0, UINT64_MAX, true, UINT64_MAX },
        { "11", 0, 10, false, 0 }, { "0", 1, 65535, false, 0 }, { "65536", 1, 65535, false, 0 },
        { "", 0, 10, false, 0 }, { "-1", 0, 10, false, 0 }, { "+1", 0, 10, false, 0 },
        { " 1", 0, 10, false, 0 }, { "1 ", 0, 10, false, 0 }, { "1.0", 0, 10, false, 0 },
        { "0x1", 0, 10, false, 0 }, { "80x", 1, 65535, false, 0 },
        { "18446744073709551616", 0, UINT64_MAX, false, 0 },
        { "99999999999999999999999", 0, UINT64_MAX, false, 0 }, { "1e3", 0, 10000, false, 0 },
    };

    for (size_t i = 0; i < EBB_ARRAY_LEN(cases); i++) {
        uint64_t v = 42;
        int rc = ebb_parse_uint(cases[i].in, cases[i].min, cases[i].max, &v);
        if (!cases[i].ok) {
            T_EQ_INT(rc, EBB_EINVAL);
            T_EQ_INT(v, 42);
        } else {
            T_EQ_INT(rc, 0);
            T_CHECK(v == cases[i].out);
        }
    }
    T_EQ_INT(ebb_parse_uint(NULL, 0, 1, &(uint64_t){0}), EBB_EINVAL);
}

struct unq_case {
    const char *in;    /* Go literal, quotes included */
    const char *out;   /* NULL = rejected */
    size_t      outlen;
};

#define OK(in, out) { in, out, sizeof(out) - 1 }
#define NO(in) { in, NULL, 0 }

/* Mostly Go's strconv/quote_test.go unquotetests and misquoted. */
static const struct unq_case unq_cases[] = {
    OK("\"\"", ""), OK("\"a\"", "a"), OK("\"abc\"", "abc"), OK("\"\xe2\x98\xba\"", "\xe2\x98\xba"),
    OK("\"hello world\"", "hello world"), OK("\"\\xFF\"", "\xff"), OK("\"\\377\"", "\xff"),
    OK("\"\\u1234\"", "\xe1\x88\xb4"), OK("\"\\U00010111\"", "\xf0\x90\x84\x91"),
    OK("\"\\U0001011111\"", "\xf0\x90\x84\x91" "11"),
    OK("\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"", "\a\b\f\n\r\t\v\\\""), OK("\"'\"", "'"),
    OK("\"\\x00\"", "\0"), OK("\"\\000\"", "\0"), OK("\"a\\x41\\101\\u0041\"", "aAAA"),
    OK("\"\t\"", "\t"), OK("\"\\u00e9\"", "\xc3\xa9"), OK("\"\\U0010FFFF\"", "\xf4\x8f\xbf\xbf"),
    OK("\"\xff\"", "\xef\xbf\xbd"), OK("\"a\xc3\"", "a\xef\xbf\xbd"),
    OK("\"\xed\xa0\x80\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
    OK("\"{ \\\"proxyMetadata\\\": { \\\"EXIT_ON_ZERO_ACTIVE_CONNECTIONS\\\": \\\"true\\\" } }\"",
       "{ \"proxyMetadata\": { \"EXIT_ON_ZERO_ACTIVE_CONNECTIONS\": \"true\" } }"),
    NO(""), NO("\""), NO("\"a"), NO("\"'"), NO("a\""), NO("a"), NO("'a'"), NO("`a`"),
    NO("\"\\\""), NO("\"\\q\""), NO("\"\\'\""), NO("\"\\x\""), NO("\"\\xF\""), NO("\"\\xG0\""),
    NO("\"\\u12\""), NO("\"\\uD800\""), NO("\"\\U00110000\""), NO("\"\\UFFFFFFFF\""),
    NO("\"\\400\""), NO("\"\\9\""), NO("\"\\12\""), NO("\"\\18\""), NO("\"a\"b\""),
    NO("\"\n\""), NO("\"a\nb\""), NO("\"\\\n\""), NO("\"\\\""), NO("\"\"\""), NO("\"\\"),
    NO("\"\\u12345\" \""), NO("\"\\e\""), NO("\"\\0\""), NO("\"\\x1\""),
};

static void test_unquote_table(void)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(unq_cases); i++) {
        const struct unq_case *c = &unq_cases[i];
        size_t n = 999;
        char *got = ebb_go_unquote(c->in, strlen(c->in), &n);

        if (!c->out) {
            if (got)
                fprintf(stderr, "  accepted %s\n", c->in);
            T_CHECK(got == NULL);
        } else if (!got) {
            fprintf(stderr, "  rejected %s\n", c->in);
            T_CHECK(got != NULL);
        } else {
            T_EQ_INT(n, c->outlen);
            T_CHECK(memcmp(got, c->out, c->outlen) == 0);
            T_EQ_INT(got[n], 0);
        }
        free(got);
    }
    /* length is explicit: a NUL inside the literal is just a byte */
    size_t n = 0;
    char *got = ebb_go_unquote("\"a\0b\"", 5, &n);
    T_CHECK(got != NULL);
    T_EQ_INT(n, 3);
    free(got);
    T_CHECK(ebb_go_unquote(NULL, 0, &n) == NULL);
    got = ebb_go_unquote("\"x\"", 3, NULL);
    T_EQ_STR(got, "x");
    free(got);
}

static void test_utf8_decode(void)
{
    uint32_t r;

    T_EQ_INT(ebb_utf8_decode("a", 1, &r), 1);
    T_EQ_INT(r, 'a');
    T_EQ_INT(ebb_utf8_decode("\xc3\xa9", 2, &r), 2);
    T_EQ_INT(r, 0xe9);
    T_EQ_INT(ebb_utf8_decode("\xc3\xa9", 1, &r), 1);   /* truncated */
    T_EQ_INT(r, 0xFFFD);
    T_EQ_INT(ebb_utf8_decode("\xc0\x80", 2, &r), 1);   /* overlong */
    T_EQ_INT(r, 0xFFFD);
    T_EQ_INT(ebb_utf8_decode("\xe0\x80\x80", 3, &r), 1);
    T_EQ_INT(ebb_utf8_decode("\xed\xa0\x80", 3, &r), 1);   /* surrogate */
    T_EQ_INT(ebb_utf8_decode("\xf4\x90\x80\x80", 4, &r), 1);   /* > U+10FFFF */
    T_EQ_INT(ebb_utf8_decode("\xf0\x9f\x98\x80", 4, &r), 4);
    T_EQ_INT(r, 0x1F600);
    T_EQ_INT(ebb_utf8_decode("", 0, &r), 0);
}

int main(void)
{
    T_RUN(test_duration_table);
    T_RUN(test_duration_format);
    T_RUN(test_bool_table);
    T_RUN(test_uint_table);
    T_RUN(test_unquote_table);
    T_RUN(test_utf8_decode);
    T_DONE();
}

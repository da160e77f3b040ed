/* test_buf.c - bounded buffers and the one JSON string writer (buf.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/buf.h"
#include "ebb/core.h"
#include "ebb/parse.h"
#include "t.h"

/* in -> JSON text (with quotes); in is NUL-terminated. */
struct json_case {
    const char *in;
    const char *out;
};

static const struct json_case json_cases[] = {
    { "", "\"\"" },
    { "plain /path?x=1", "\"plain /path?x=1\"" },
    { "q\"b\\s", "\"q\\\"b\\\\s\"" },
    { "\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"" },
    { "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
    /* valid UTF-8 goes out as it is: 2, 3 and 4 bytes, U+FFFD itself, U+2028 */
    { "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"" },
    { "\xef\xbf\xbd\xe2\x80\xa8", "\"\xef\xbf\xbd\xe2\x80\xa8\"" },
    { "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"" },   /* U+10FFFF, the last rune */
    /* every byte of an invalid sequence becomes one U+FFFD (Go's json.Marshal) */
    { "\x80", "\"\\ufffd\"" },                          /* stray continuation */
    { "a\xff\xfe" "b", "\"a\\ufffd\\ufffdb\"" },        /* never valid in UTF-8 */
    { "\xc0\x80", "\"\\ufffd\\ufffd\"" },               /* overlong NUL */
    { "\xc1\xbf", "\"\\ufffd\\ufffd\"" },               /* overlong '\x7f' */
    { "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"" },    /* overlong '/' */
    { "\xf0\x80\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
    { "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },    /* surrogate U+D800 */
    { "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },   /* above U+10FFFF */
    { "\xc3", "\"\\ufffd\"" },                          /* truncated at the end */
    { "\xe2\x82" "a", "\"\\ufffd\\ufffda\"" },          /* truncated before ASCII */
    { "\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\"" },
    { "x\xc3\xa9\xc3", "\"x\xc3\xa9\\ufffd\"" },
};

static char *to_json(const char *s)
{
    struct ebb_buf b = { 0 };
    char *out;

    T_EQ_INT(ebb_buf_append_json_str(&b, s), 0);
    out = ebb_xstrndup(ebb_buf_start(&b), ebb_buf_len(&b));
    ebb_buf_free(&b);
    return out;
}

static void test_json_table(void)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(json_cases); i++) {
        char *got = to_json(json_cases[i].in);
        T_EQ_STR(got, json_cases[i].out);
        free(got);
    }
    char *null = to_json(NULL);
    T_EQ_STR(null, "\"\"");
    free(null);
}

/* The step function: what it consumes and what it writes. */
static void test_json_escape_step(void)
{
    char esc[EBB_JSON_ESC_MAX];
    size_t used;

    T_EQ_INT(ebb_json_escape("\0x", 2, &used, esc), 6);   /* NUL inside a length */
    T_EQ_INT(used, 1);
    T_CHECK(memcmp(esc, "\\u0000", 6) == 0);
    T_EQ_INT(ebb_json_escape("\xe2\x82\xac!", 4, &used, esc), 0);
    T_EQ_INT(used, 3);
    T_EQ_INT(ebb_json_escape("\xe2\x82\xac", 2, &used, esc), 6);   /* cut by n */
    T_EQ_INT(used, 1);
    T_EQ_INT(ebb_json_escape("a", 1, &used, esc), 0);
    T_EQ_INT(used, 1);
}

/* True when s[0..n) is valid UTF-8 with no raw control byte, " only at both
 * ends and every \ followed by a JSON escape: what a JSON parser accepts. */
static bool json_string_ok(const char *s, size_t n)
{
    uint32_t r;

    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        return false;
    for (size_t i = 1; i < n - 1;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = ebb_utf8_decode(s + i, n - 1 - i, &r);
        if (c < 0x20 || c == 0x7f || c == '"' || (r == 0xFFFD && k == 1))
            return false;
        if (c == '\\') {
            if (i + 1 >= n - 1 || !strchr("\"\\nrtbfu", s[i + 1]))
                return false;
            k = s[i + 1] == 'u' ? 6 : 2;
        }
        i += k;
    }
    return true;
}

/* Random bytes, biased to the interesting ones, always come out valid. */
static void test_json_random_bytes(void)
{
    static const unsigned char pick[] = { 0x00, 0x01, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xbf, 0xc0,
                                          0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff };
    uint32_t seed = 12345;
    char in[24];
    int bad = 0;

    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0, len = (size_t)(iter % 23);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned char c = (seed >> 16) & 1 ? pick[(seed >> 17) % sizeof(pick)]
                                               : (unsigned char)(seed >> 20);
            if (c)
                in[n++] = (char)c;
        }
        in[n] = '\0';
        char *out = to_json(in);
        if (!json_string_ok(out, strlen(out)))
            bad++;
        free(out);
    }
    T_EQ_INT(bad, 0);
}

/* A buffer's ceiling holds for the JSON writer too. */
static void test_json_ceiling(void)
{
    struct ebb_buf b = { .max = 8 };

    T_EQ_INT(ebb_buf_append_json_str(&b, "12345"), 0);
    T_EQ_INT(ebb_buf_append_json_str(&b, "\xff"), EBB_ETOOBIG);
    ebb_buf_free(&b);
}

/* A buffer that never held storage (data NULL) is an empty span: its start and end are no
 * pointer arithmetic on NULL (undefined behaviour, which UBSan reported from the upstream
 * HTTP/1 client's empty request tail, found by fuzz_h2), and appending nothing from it is fine. */
static void test_never_allocated(void)
{
    struct ebb_buf b = { 0 }, dst = { 0 };

    T_CHECK(ebb_buf_start(&b) == NULL);
    T_CHECK(ebb_buf_end(&b) == NULL);
    T_EQ_INT((int)ebb_buf_len(&b), 0);
    T_EQ_INT(ebb_buf_append(&dst, ebb_buf_start(&b), ebb_buf_len(&b)), 0);
    T_EQ_INT((int)ebb_buf_len(&dst), 0);
    T_EQ_INT(ebb_buf_append(&b, "ab", 2), 0);
    T_CHECK(ebb_buf_start(&b) != NULL && memcmp(ebb_buf_start(&b), "ab", 2) == 0);
    T_CHECK(ebb_buf_end(&b) == ebb_buf_start(&b) + 2);
    ebb_buf_free(&b);
    ebb_buf_free(&dst);
}

int main(void)
{
    T_RUN(test_never_allocated);
    T_RUN(test_json_table);
    T_RUN(test_json_escape_step);
    T_RUN(test_json_random_bytes);
    T_RUN(test_json_ceiling);
    T_DONE();
}

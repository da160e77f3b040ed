/*
 * parse.c - value syntax shared by every config source: Go durations
 * (time.ParseDuration), Go booleans (strconv.ParseBool), bounded unsigned
 * decimals, Go double-quoted strings (strconv.Unquote) and UTF-8 decoding.
 *
 * Each function mirrors the Go standard library it is named after, so a
 * value Istio accepts is accepted here and a value Go rejects is rejected.
 * Pure functions: no I/O, no global state.
 */
#include <inttypes.h>
#include <string.h>

#include "ebb/core.h"
#include "ebb/parse.h"

#define NS_MAX_ABS (UINT64_C(1) << 63)   /* |math.MinInt64| */

struct duration_unit {
    const char *name;
    uint64_t    ns;
};

/* time.unitMap: both micro signs, U+00B5 and U+03BC. */
static const struct duration_unit duration_units[] = {
    { "ns", 1 },
    { "us", 1000 },
    { "\xc2\xb5s", 1000 },
    { "\xce\xbcs", 1000 },
    { "ms", 1000000 },
    { "s", UINT64_C(1000000000) },
    { "m", UINT64_C(60000000000) },
    { "h", UINT64_C(3600000000000) },
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Go's leadingInt: consumes [0-9]*, fails beyond 1<<63. */
static int leading_int(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    uint64_t x = 0;

    for (; is_digit(*s); s++) {
        if (x > NS_MAX_ABS / 10)
            return -1;
        x = x * 10 + (uint64_t)(*s - '0');
        if (x > NS_MAX_ABS)
            return -1;
    }
    *sp = s;
    *out = x;
    return 0;
}

/* Go's leadingFraction: consumes [0-9]*, stops gaining precision on overflow. */
static void leading_fraction(const char **sp, uint64_t *out, double *scale)
{
    const char *s = *sp;
    uint64_t x = 0;
    bool overflow = false;

    *scale = 1;
    for (; is_digit(*s); s++) {
        if (overflow)
            continue;
        if (x > (NS_MAX_ABS - 1) / 10) {
            overflow = true;
            continue;
        }
        uint64_t y = x * 10 + (uint64_t)(*s - '0');
        if (y > NS_MAX_ABS) {
            overflow = true;
            continue;
        }
        x = y;
        *scale *= 10;
    }
    *sp = s;
    *out = x;
}

/* time.ParseDuration into nanoseconds and a sign.  0 or -1. */
static int parse_duration_ns(const char *s, uint64_t *out_ns, bool *out_neg)
{
    uint64_t d = 0;
    bool neg = false;

    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    *out_neg = neg;
    if (strcmp(s, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    if (*s == '\0')
        return -1;
    while (*s != '\0') {
        uint64_t v, f = 0, unit = 0;
        double scale = 1;
        const char *start;
        bool pre, post = false;
        size_t ulen;

        if (!(*s == '.' || is_digit(*s)))
            return -1;
        start = s;
        if (leading_int(&s, &v) < 0)
            return -1;
        pre = s != start;
        if (*s == '.') {
            s++;
            start = s;
            leading_fraction(&s, &f, &scale);
            post = s != start;
        }
        if (!pre && !post)
            return -1;
        for (ulen = 0; s[ulen] != '\0' && s[ulen] != '.' && !is_digit(s[ulen]); ulen++)
            ;
        if (ulen == 0)
            return -1;   /* missing unit */
        for (size_t i = 0; i < EBB_ARRAY_LEN(duration_units); i++) {
            if (strlen(duration_units[i].name) == ulen &&
                memcmp(duration_units[i].name, s, ulen) == 0) {
                unit = duration_units[i].ns;
                break;
            }
        }
        if (unit == 0)
            return -1;   /* unknown unit */
        s += ulen;
        if (v > NS_MAX_ABS / unit)
            return -1;
        v *= unit;
        if (f > 0) {
            /* float64 as in Go: nanosecond-accurate for fractions of hours */
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > NS_MAX_ABS)
                return -1;
        }
        d += v;
        if (d > NS_MAX_ABS)
            return -1;
    }
    if (!neg && d > NS_MAX_ABS - 1)
        return -1;
    *out_ns = d;
    return 0;
}

int ebb_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    uint64_t ns;
    bool neg;

    if (!s || parse_duration_ns(s, &ns, &neg) < 0)
        return EBB_EINVAL;
    if (neg && ns != 0)
        return EBB_EINVAL;
    *out_ms = ns / 1000000;
    /* round up, unless that would leave Go's range (what we print must parse) */
    if (ns % 1000000 != 0 && *out_ms < (NS_MAX_ABS - 1) / 1000000)
        (*out_ms)++;
    return 0;
}

int ebb_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
    static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };

    if (!s)
        return EBB_EINVAL;
    for (size_t i = 0; i < EBB_ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return EBB_EINVAL;
}

int ebb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !is_digit(*s))
        return EBB_EINVAL;
    for (; *s != '\0'; s++) {
        if (!is_digit(*s))
            return EBB_EINVAL;
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return EBB_EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v < min || v > max)
        return EBB_EINVAL;
    *out = v;
    return 0;
}

size_t ebb_utf8_decode(const char *str, size_t n, uint32_t *rune)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t v, min;
    size_t need;

    if (n == 0) {
        *rune = 0xFFFD;
        return 0;
    }
    if (s[0] < 0x80) {
        *rune = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        need = 1, v = s[0] & 0x1Fu, min = 0x80;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        need = 2, v = s[0] & 0x0Fu, min = 0x800;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        need = 3, v = s[0] & 0x07u, min = 0x10000;
    } else {
        goto bad;
    }
    if (n < need + 1)
        goto bad;
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            goto bad;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        goto bad;
    *rune = v;
    return need + 1;
bad:
    *rune = 0xFFFD;   /* utf8.RuneError, consuming one byte as Go does */
    return 1;
}

static size_t utf8_encode(uint32_t r, char *out)
{
    unsigned char *o = (unsigned char *)out;

    if (r < 0x80) {
        o[0] = (unsigned char)r;
        return 1;
    }
    if (r < 0x800) {
        o[0] = (unsigned char)(0xC0 | (r >> 6));
        o[1] = (unsigned char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (r >> 12));
        o[1] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (r & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (r >> 18));
    o[1] = (unsigned char)(0x80 | ((r >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (r & 0x3F));
    return 4;
}

static int unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * One character of a double-quoted Go literal at in[*i] (strconv.UnquoteChar
 * with quote '"'), appended to out.  Returns 0 or -1 on a syntax error.
 */
static int unquote_char(const char *in, size_t len, size_t *i, char *out, size_t *o)
{
    unsigned char c = (unsigned char)in[*i];
    uint32_t r = 0;
    size_t n;

    if (c == '"' || c == '\n')
        return -1;
    if (c >= 0x80) {
        *i += ebb_utf8_decode(in + *i, len - *i, &r);
        *o += utf8_encode(r, out + *o);   /* invalid bytes become U+FFFD */
        return 0;
    }
    if (c != '\\') {
        out[(*o)++] = (char)c;
        (*i)++;
        return 0;
    }
    if (len - *i < 2)
        return -1;
    c = (unsigned char)in[*i + 1];
    *i += 2;
    switch (c) {
    case 'a': out[(*o)++] = '\a'; return 0;
    case 'b': out[(*o)++] = '\b'; return 0;
    case 'f': out[(*o)++] = '\f'; return 0;
    case 'n': out[(*o)++] = '\n'; return 0;
    case 'r': out[(*o)++] = '\r'; return 0;
    case 't': out[(*o)++] = '\t'; return 0;
    case 'v': out[(*o)++] = '\v'; return 0;
    case '\\': out[(*o)++] = '\\'; return 0;
    case '"': out[(*o)++] = '"'; return 0;
    case 'x': case 'u': case 'U':
        n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        if (len - *i < n)
            return -1;
        for (size_t j = 0; j < n; j++) {
            int x = unhex(in[*i + j]);
            if (x < 0)
                return -1;
            r = r << 4 | (uint32_t)x;
        }
        *i += n;
        if (c == 'x') {
            out[(*o)++] = (char)r;   /* a single byte, possibly not UTF-8 */
            return 0;
        }
        if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
            return -1;
        *o += utf8_encode(r, out + *o);
        return 0;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        r = (uint32_t)(c - '0');
        if (len - *i < 2)
            return -1;
        for (size_t j = 0; j < 2; j++) {
            char d = in[*i + j];
            if (d < '0' || d > '7')
                return -1;
            r = r << 3 | (uint32_t)(d - '0');
        }
        *i += 2;
        if (r > 255)
            return -1;
        out[(*o)++] = (char)r;
        return 0;
    default:
        return -1;   /* includes \' which only single-quoted literals allow */
    }
}

char *ebb_go_unquote(const char *in, size_t inlen, size_t *outlen)
{
    size_t i = 1, o = 0;
    char *out;

    if (!in || inlen < 2 || in[0] != '"' || in[inlen - 1] != '"')
        return NULL;
    /* worst case: each invalid byte becomes a 3-byte U+FFFD */
    out = ebb_xmalloc(3 * inlen + 1);
    while (i < inlen && in[i] != '"') {
        if (unquote_char(in, inlen, &i, out, &o) < 0)
            goto fail;
    }
    if (i != inlen - 1)   /* an unescaped quote before the end */
        goto fail;
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
fail:
    free(out);
    return NULL;
}

/* Go's Duration.String() at millisecond precision: "0s", "1.5s", "1m30s", "1h0m0s". */
void ebb_format_duration_ms(uint64_t ms, char *out, size_t outlen)
{
    uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
    char secs[32];
    size_t n;

    if (ms == 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    if (ms < 1000) {
        snprintf(out, outlen, "%" PRIu64 "ms", ms);
        return;
    }
    n = (size_t)snprintf(secs, sizeof(secs), "%" PRIu64, s);
    if (frac) {
        snprintf(secs + n, sizeof(secs) - n, ".%03" PRIu64, frac);
        n = strlen(secs);
        while (secs[n - 1] == '0')
            secs[--n] = '\0';
    }
    if (h)
        snprintf(out, outlen, "%" PRIu64 "h%" PRIu64 "m%ss", h, m, secs);
    else if (m)
        snprintf(out, outlen, "%" PRIu64 "m%ss", m, secs);
    else
        snprintf(out, outlen, "%ss", secs);
}

/*
 * h1_parse.c - strict, pure HTTP/1.x head parser and resumable body decoder
 * (RFC 9112, RFC 9110).  The rules and the choices made where the RFC leaves
 * room are in docs/h1.md.
 */
#include <limits.h>
#include <string.h>

#include "ebb/h1_parse.h"

#define H1_DEF_MAX_LINE    8192
#define H1_DEF_MAX_HEAD    61440
#define H1_DEF_MAX_HEADERS 100
#define H1_MAX_CHUNK_EXT   4096        /* chunk-ext bytes per size line */
#define H1_MAX_CHUNK_DIGITS 16
#define H1_MAX_INT63       ((uint64_t)INT64_MAX)

/* Character classes, one bit each, in a 256-entry table built at compile
 * time. */
#define C_TCHAR  0x01   /* token: RFC 9110 §5.6.2 */
#define C_FVAL   0x02   /* field-vchar / SP / HTAB (obs-text included) */
#define C_TARGET 0x04   /* request-target: VCHAR */
#define C_HOST   0x08   /* reg-name subset: ALPHA DIGIT - . _ ~ */
#define C_HEX    0x10
#define C_QDTEXT 0x20   /* quoted-string qdtext */

#define H1_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define H1_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define H1_TEXTRA(c) ((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || \
                      (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || \
                      (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||  \
                      (c) == '`' || (c) == '|' || (c) == '~')
#define H1_CLS(c)                                                            \
    ((H1_ALPHA(c) || H1_DIGIT(c) || H1_TEXTRA(c) ? C_TCHAR : 0) |            \
     ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f) ? C_FVAL : 0) |            \
     ((c) > 0x20 && (c) < 0x7f ? C_TARGET : 0) |                             \
     (H1_ALPHA(c) || H1_DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || \
      (c) == '~' ? C_HOST : 0) |                                             \
     (H1_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F') \
      ? C_HEX : 0) |                                                         \
     ((c) == '\t' || (c) == ' ' || (c) == 0x21 || ((c) >= 0x23 && (c) <= 0x5b) || \
      ((c) >= 0x5d && (c) <= 0x7e) || (c) >= 0x80 ? C_QDTEXT : 0))
#define H1_R4(n)   H1_CLS(n), H1_CLS((n) + 1), H1_CLS((n) + 2), H1_CLS((n) + 3)
#define H1_R16(n)  H1_R4(n), H1_R4((n) + 4), H1_R4((n) + 8), H1_R4((n) + 12)
#define H1_R64(n)  H1_R16(n), H1_R16((n) + 16), H1_R16((n) + 32), H1_R16((n) + 48)

static const unsigned char h1_ctab[256] = {
    H1_R64(0), H1_R64(64), H1_R64(128), H1_R64(192)
};

static inline bool h1_is(unsigned char c, unsigned char cls)
{
    return (h1_ctab[c] & cls) != 0;
}

static inline bool h1_is_ows(char c) { return c == ' ' || c == '\t'; }

/* The end of a run of field-value bytes from p (VCHAR, SP, HTAB, obs-text), eight bytes at
 * a time: a word's mask flags its bytes below 0x20 and its 0x7f bytes (the "some byte < n"
 * and "some byte == 0" word tricks, n <= 0x80); the lowest flag is exact (a false flag can
 * only sit above a true one, where a borrow carried), so on a little-endian machine it
 * points at the first byte that is not VCHAR, SP or obs-text.  An HTAB there is skipped;
 * anything else ends the run (the CR of the line end, or a byte the caller rejects). */
static const char *h1_skip_fval(const char *p, const char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

    while (end - p >= 8) {
        uint64_t w, del, mask;
        memcpy(&w, p, 8);
        del = w ^ (ones * 0x7f);
        mask = ((w - ones * 0x20) & ~w & highs) | ((del - ones) & ~del & highs);
        if (!mask) {
            p += 8;
            continue;
        }
        p += __builtin_ctzll(mask) >> 3;
        if (*p != '\t')
            return p;
        p++;
    }
#endif
    while (p < end && h1_is((unsigned char)*p, C_FVAL))
        p++;
    return p;
}

static inline int h1_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static bool h1_mem_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h1_lower((unsigned char)a[i]) != h1_lower((unsigned char)b[i]))
            return false;
    return true;
}

/* lit is lower case */
static bool h1_span_ieq(const char *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (h1_lower((unsigned char)p[i]) != lit[i])
            return false;
    return true;
}

/* Fills *lim with the SPEC §7 defaults; never fails. */
void ebb_h1_limits_default(struct ebb_h1_limits *lim)
{
    lim->max_line = H1_DEF_MAX_LINE;
    lim->max_head = H1_DEF_MAX_HEAD;
    lim->max_headers = H1_DEF_MAX_HEADERS;
}

/* Maps a request-head error to the status to answer; 0 for non-errors. */
int ebb_h1_error_status(int rc)
{
    switch (rc) {
    case EBB_H1_EBAD:           return 400;
    case EBB_H1_ELINE_TOO_LONG: return 414;
    case EBB_H1_EHEAD_TOO_BIG:  return 431;
    case EBB_H1_EVERSION:       return 505;
    case EBB_H1_ENOTIMPL:       return 501;
    default:                    return 0;
    }
}

/* Zero fields (and a NULL lim) mean the defaults. */
static void h1_limits_resolve(const struct ebb_h1_limits *in, struct ebb_h1_limits *out)
{
    ebb_h1_limits_default(out);
    if (!in)
        return;
    if (in->max_line)
        out->max_line = in->max_line;
    if (in->max_head)
        out->max_head = in->max_head;
    if (in->max_headers)
        out->max_headers = in->max_headers;
    if (out->max_headers > EBB_H1_MAX_HEADERS_CAP)
        out->max_headers = EBB_H1_MAX_HEADERS_CAP;
    if (out->max_head > INT_MAX)
        out->max_head = INT_MAX;        /* the head length is returned as int */
}

/*
 * Cheap pass over the bytes so far: finds the end of the head with memchr
 * and enforces every limit, also while the head is incomplete, so a
 * byte-at-a-time client costs one memchr per line and cannot make the
 * caller buffer more than max_head.  Only the first max_head bytes are ever
 * looked at, and checks run in byte order, so a prefix of the input never
 * reports an error the whole input would not (the fuzzer checks this).
 * Returns the head length, EBB_H1_AGAIN or an error.
 */
static int h1_scan_head(const char *buf, size_t len, const struct ebb_h1_limits *lim,
                        bool is_request)
{
    size_t region = len < lim->max_head ? len : lim->max_head;
    size_t pos = 0, line_start = 0, nfields = 0;
    bool first_line = true;

    for (;;) {
        const char *lf = memchr(buf + pos, '\n', region - pos);
        size_t i, content;

        if (!lf) {
            if (first_line) {
                content = region - line_start;
                if (content && buf[region - 1] == '\r')
                    content--;
                if (content > lim->max_line)
                    return EBB_H1_ELINE_TOO_LONG;
            }
            if (len >= lim->max_head)
                return EBB_H1_EHEAD_TOO_BIG;
            return EBB_H1_AGAIN;
        }
        i = (size_t)(lf - buf);
        if (first_line) {
            content = i - line_start;
            if (content && buf[i - 1] == '\r')
                content--;
            if (content > lim->max_line)
                return EBB_H1_ELINE_TOO_LONG;
        }
        if (i == line_start || buf[i - 1] != '\r')
            return EBB_H1_EBAD;             /* bare LF: we only take CRLF */
        if (i - 1 == line_start) {
            if (!first_line)
                return (int)(i + 1);
            /* RFC 9112 §2.2: a server ignores empty lines before the
             * request-line (left over after a body by some clients). */
            if (!is_request)
                return EBB_H1_EBAD;
        } else if (first_line) {
            first_line = false;
        } else if (++nfields > lim->max_headers) {
            return EBB_H1_EHEAD_TOO_BIG;
        }
        line_start = pos = i + 1;
    }
}

/* "HTTP/x.y": returns the minor version, EBB_H1_EVERSION for a well-formed
 * other major version, EBB_H1_EBAD for anything else.  HTTP/1.2 to 1.9 are
 * understood as 1.1, the highest 1.x ebb knows (RFC 9110 §6.2). */
static int h1_parse_version(const char *p, size_t len)
{
    if (len != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
        p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return EBB_H1_EBAD;
    if (p[5] != '1')
        return EBB_H1_EVERSION;
    return p[7] == '0' ? 0 : 1;
}

/*
 * Host / authority: IPv4 or reg-name limited to ALPHA DIGIT - . _ ~ (a DNS
 * name never needs sub-delims or pct-encoding, and accepting them only
 * opens routing confusion), or an IPv6 literal in brackets; then optional
 * ":port" with at most 5 digits, <= 65535.  No userinfo.
 */
static bool h1_valid_authority(const char *p, size_t len, bool need_port)
{
    size_t i = 0, digits = 0;
    unsigned port = 0;

    if (len && p[0] == '[') {
        for (i = 1; i < len && p[i] != ']'; i++)
            if (!h1_is((unsigned char)p[i], C_HEX) && p[i] != ':' && p[i] != '.')
                return false;
        if (i >= len || i == 1)
            return false;
        i++;
    } else {
        while (i < len && h1_is((unsigned char)p[i], C_HOST))
            i++;
    }
    if (i == 0)
        return false;
    if (i == len)
        return !need_port;
    if (p[i] != ':')
        return false;
    for (i++; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || ++digits > 5)
            return false;
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    if (port > 65535)
        return false;
    return digits > 0 || !need_port;
}

/* Calls fn on each element of a comma-separated list (OWS trimmed).  Empty
 * elements are passed as zero-length spans; fn decides.  Stops at the
 * first non-zero return and returns it. */
typedef int (*h1_elem_fn)(const char *p, size_t len, void *arg);

static int h1_list_each(const char *p, size_t len, h1_elem_fn fn, void *arg)
{
    size_t i = 0;

    for (;;) {
        size_t s, e;
        int rc;

        while (i < len && h1_is_ows(p[i]))
            i++;
        s = i;
        while (i < len && p[i] != ',')
            i++;
        e = i;
        while (e > s && h1_is_ows(p[e - 1]))
            e--;
        rc = fn(p + s, e - s, arg);
        if (rc)
            return rc;
        if (i >= len)
            return 0;
        i++;
    }
}

static bool h1_is_token(const char *p, size_t len)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!h1_is((unsigned char)p[i], C_TCHAR))
            return false;
    return true;
}

struct h1_cl_state {
    bool     seen;      /* a value was parsed already */
    uint64_t value;     /* the first value */
};

/* Content-Length element: 1*DIGIT, <= 2^63-1, equal to every other one. */
static int h1_cl_elem(const char *p, size_t len, void *arg)
{
    struct h1_cl_state *st = arg;
    uint64_t v = 0;

    if (!len)
        return EBB_H1_EBAD;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)p[i] - '0';

        if (d > 9 || v > (H1_MAX_INT63 - d) / 10)
            return EBB_H1_EBAD;
        v = v * 10 + d;
    }
    if (st->seen && v != st->value)
        return EBB_H1_EBAD;
    st->seen = true;
    st->value = v;
    return 0;
}

struct h1_te_state {
    unsigned n;          /* codings seen */
    bool     last_chunked;
    bool     chunked_before_last;
    bool     other;      /* a coding other than chunked */
};

/* Transfer-Encoding element: a bare token (no parameters). */
static int h1_te_elem(const char *p, size_t len, void *arg)
{
    struct h1_te_state *st = arg;

    if (!h1_is_token(p, len))
        return EBB_H1_EBAD;
    if (st->last_chunked)
        st->chunked_before_last = true;
    st->last_chunked = h1_span_ieq(p, len, "chunked");
    if (!st->last_chunked)
        st->other = true;
    st->n++;
    return 0;
}

/* Connection element: a token; empty elements are ignored (RFC 9110 §5.6.1). */
static int h1_conn_elem(const char *p, size_t len, void *arg)
{
    unsigned *flags = arg;

    if (!len)
        return 0;
    if (!h1_is_token(p, len))
        return EBB_H1_EBAD;
    if (h1_span_ieq(p, len, "close"))
        *flags |= EBB_H1_F_CONN_CLOSE;
    else if (h1_span_ieq(p, len, "keep-alive"))
        *flags |= EBB_H1_F_CONN_KEEPALIVE;
    else if (h1_span_ieq(p, len, "upgrade"))
        *flags |= EBB_H1_F_CONN_UPGRADE;
    else
        *flags |= EBB_H1_F_CONN_OTHER;
    return 0;
}

/* TE element: "trailers" (t-codings never carry parameters on it). */
static int h1_tehdr_elem(const char *p, size_t len, void *arg)
{
    unsigned *flags = arg;

    if (h1_span_ieq(p, len, "trailers"))
        *flags |= EBB_H1_F_HAS_TE_TRAILERS;
    return 0;
}

/*
 * Header field lines from p to the empty line that ends the head (whose
 * presence h1_scan_head guaranteed).  Returns 0 or EBB_H1_EBAD.
 */
static int h1_parse_fields(const char *p, const char *end, struct ebb_h1_msg *m)
{
    while (p < end) {
        const char *name = p, *val, *vend;
        struct ebb_h1_header *h;

        if (p[0] == '\r')
            return p + 2 == end && p[1] == '\n' ? 0 : EBB_H1_EBAD;
        /* A name that does not end in ':' catches obs-fold (leading SP),
         * whitespace before the colon and invalid token chars alike. */
        while (p < end && h1_is((unsigned char)*p, C_TCHAR))
            p++;
        if (p == name || p >= end || *p != ':')
            return EBB_H1_EBAD;
        h = &m->headers[m->nheaders];
        h->name.p = name;
        h->name.len = (size_t)(p - name);
        p++;
        while (p < end && h1_is_ows(*p))
            p++;
        val = p;
        p = h1_skip_fval(p, end);
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return EBB_H1_EBAD;     /* NUL, CTL, DEL, bare CR */
        vend = p;
        while (vend > val && h1_is_ows(vend[-1]))
            vend--;
        h->value.p = val;
        h->value.len = (size_t)(vend - val);
        m->nheaders++;
        p += 2;
    }
    return EBB_H1_EBAD;
}

/* What the semantic pass learned from the fields. */
struct h1_fields {
    struct h1_cl_state cl;
    struct h1_te_state te;
    unsigned nhost;
    const struct ebb_h1_header *host;
    bool has_upgrade;
    bool expect_continue;
};

static int h1_scan_fields(struct ebb_h1_msg *m, struct h1_fields *f)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *h = &m->headers[i];
        const char *n = h->name.p, *v = h->value.p;
        size_t nl = h->name.len, vl = h->value.len;
        int rc = 0;

        if (h1_span_ieq(n, nl, "content-length")) {
            rc = h1_list_each(v, vl, h1_cl_elem, &f->cl);
        } else if (h1_span_ieq(n, nl, "transfer-encoding")) {
            rc = h1_list_each(v, vl, h1_te_elem, &f->te);
        } else if (h1_span_ieq(n, nl, "host")) {
            f->nhost++;
            f->host = h;
        } else if (h1_span_ieq(n, nl, "connection")) {
            rc = h1_list_each(v, vl, h1_conn_elem, &m->flags);
        } else if (h1_span_ieq(n, nl, "upgrade")) {
            f->has_upgrade |= vl > 0;
        } else if (h1_span_ieq(n, nl, "expect")) {
            f->expect_continue |= h1_span_ieq(v, vl, "100-continue");
        } else if (h1_span_ieq(n, nl, "te")) {
            rc = h1_list_each(v, vl, h1_tehdr_elem, &m->flags);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Transfer-Encoding verdict shared by requests and responses. */
static int h1_te_check(const struct h1_fields *f)
{
    if (!f->te.last_chunked)
        return EBB_H1_EBAD;             /* final coding is not chunked */
    if (f->te.chunked_before_last)
        return EBB_H1_EBAD;             /* chunked applied twice */
    if (f->te.other)
        return EBB_H1_ENOTIMPL;         /* gzip, chunked and the like */
    return 0;
}

static void h1_conn_flags(struct ebb_h1_msg *m)
{
    if (m->minor == 0 && !(m->flags & EBB_H1_F_CONN_KEEPALIVE))
        m->flags |= EBB_H1_F_CONN_CLOSE;
}

static void h1_msg_reset(struct ebb_h1_msg *m, const char *buf)
{
    struct ebb_h1_span empty = { buf, 0 };

    m->method = m->target = m->path = m->authority = m->reason = empty;
    m->status = 0;
    m->minor = 0;
    m->flags = 0;
    m->framing = EBB_H1_BODY_NONE;
    m->content_length = 0;
    m->nheaders = 0;
}

/* Request-target forms (RFC 9112 §3.2); fills path/authority/flags. */
static int h1_parse_target(struct ebb_h1_msg *m, const struct h1_fields *f, bool connect)
{
    const char *t = m->target.p;
    size_t tl = m->target.len, i, as;
    static const char slash[] = "/";

    if (connect) {
        if (!h1_valid_authority(t, tl, true))
            return EBB_H1_EBAD;
        m->authority = m->target;
        m->path.p = t;
        m->path.len = 0;
        return 0;
    }
    if (tl == 1 && t[0] == '*') {
        if (m->method.len != 7 || memcmp(m->method.p, "OPTIONS", 7) != 0)
            return EBB_H1_EBAD;
        m->path = m->target;
        if (f->host)
            m->authority = f->host->value;
        return 0;
    }
    if (t[0] == '/') {
        m->path = m->target;
        if (f->host)
            m->authority = f->host->value;
        return 0;
    }

    /* absolute-form: only http and https make sense to a proxy */
    if (tl > 7 && h1_span_ieq(t, 7, "http://"))
        as = 7;
    else if (tl > 8 && h1_span_ieq(t, 8, "https://"))
        as = 8;
    else
        return EBB_H1_EBAD;
    for (i = as; i < tl && t[i] != '/' && t[i] != '?' && t[i] != '#'; i++)
        ;
    if (!h1_valid_authority(t + as, i - as, false))
        return EBB_H1_EBAD;
    m->authority.p = t + as;
    m->authority.len = i - as;
    m->flags |= EBB_H1_F_ABSOLUTE_FORM;
    if (i == tl) {
        m->path.p = slash;
        m->path.len = 1;
    } else if (t[i] == '/') {
        m->path.p = t + i;
        m->path.len = tl - i;
    } else {
        /* "http://h?q": forwarding would need a "/" we cannot insert
         * without allocating; no real client sends it. */
        return EBB_H1_EBAD;
    }
    return 0;
}

/* Returns the head length, EBB_H1_AGAIN or an EBB_H1_E* code; on success
 * *m holds spans into buf (the caller keeps buf in place while using them).
 * Pure: reads buf[0..len) only, no allocation, no callbacks. */
int ebb_h1_parse_request(const char *buf, size_t len, const struct ebb_h1_limits *lim,
                         struct ebb_h1_msg *m)
{
    struct ebb_h1_limits l;
    struct h1_fields f;
    const char *p, *end, *sp;
    int hlen, rc;
    bool connect;

    h1_limits_resolve(lim, &l);
    hlen = h1_scan_head(buf, len, &l, true);
    if (hlen < 0)
        return hlen;

    h1_msg_reset(m, buf);
    p = buf;
    end = buf + hlen;
    while (p[0] == '\r' && p[1] == '\n')     /* leading empty lines */
        p += 2;

    /* method SP request-target SP HTTP-version CRLF, single spaces */
    m->method.p = p;
    while (h1_is((unsigned char)*p, C_TCHAR))
        p++;
    m->method.len = (size_t)(p - m->method.p);
    if (!m->method.len || *p != ' ')
        return EBB_H1_EBAD;
    m->target.p = ++p;
    while (h1_is((unsigned char)*p, C_TARGET))
        p++;
    m->target.len = (size_t)(p - m->target.p);
    if (!m->target.len || *p != ' ')
        return EBB_H1_EBAD;
    sp = ++p;
    while (*p != '\r')
        p++;
    rc = h1_parse_version(sp, (size_t)(p - sp));
    if (rc < 0)
        return rc;
    m->minor = rc;
    if (p[1] != '\n')
        return EBB_H1_EBAD;
    p += 2;

    rc = h1_parse_fields(p, end, m);
    if (rc)
        return rc;
    rc = h1_scan_fields(m, &f);
    if (rc)
        return rc;

    if (f.nhost > 1)
        return EBB_H1_EBAD;
    if (f.nhost == 0 && m->minor == 1)
        return EBB_H1_EBAD;
    if (f.host && !h1_valid_authority(f.host->value.p, f.host->value.len, false))
        return EBB_H1_EBAD;
    connect = m->method.len == 7 && memcmp(m->method.p, "CONNECT", 7) == 0;
    rc = h1_parse_target(m, &f, connect);
    if (rc)
        return rc;

    if (f.te.n) {
        if (m->minor == 0 || f.cl.seen)
            return EBB_H1_EBAD;
        rc = h1_te_check(&f);
        if (rc)
            return rc;
        m->framing = EBB_H1_BODY_CHUNKED;
    } else if (f.cl.seen) {
        m->framing = EBB_H1_BODY_LENGTH;
        m->content_length = f.cl.value;
    }
    /* CONNECT has no content; data after the head is the tunnel. */
    if (connect && (m->framing == EBB_H1_BODY_CHUNKED || m->content_length))
        return EBB_H1_EBAD;

    h1_conn_flags(m);
    if (m->minor == 1) {
        /* RFC 9110 §7.8 and §10.1.1: both are ignored in HTTP/1.0. */
        if (f.has_upgrade && (m->flags & EBB_H1_F_CONN_UPGRADE))
            m->flags |= EBB_H1_F_UPGRADE;
        if (f.expect_continue)
            m->flags |= EBB_H1_F_EXPECT_CONTINUE;
    }
    return hlen;
}

/* As ebb_h1_parse_request, for the response to a req_method request. */
int ebb_h1_parse_response(const char *buf, size_t len, const struct ebb_h1_limits *lim,
                          const char *req_method, size_t req_method_len,
                          struct ebb_h1_msg *m)
{
    struct ebb_h1_limits l;
    struct h1_fields f;
    const char *p, *end, *eol;
    size_t ll;
    int hlen, rc;
    bool head, connect;

    h1_limits_resolve(lim, &l);
    hlen = h1_scan_head(buf, len, &l, false);
    if (hlen < 0)
        return hlen;

    h1_msg_reset(m, buf);
    p = buf;
    end = buf + hlen;

    /* HTTP-version SP 3DIGIT [SP reason-phrase] CRLF.  The missing SP is
     * accepted: deployed servers send "HTTP/1.1 200\r\n".  The scan made
     * sure the line ends in CRLF, so memchr finds a CR inside the head. */
    eol = memchr(p, '\r', (size_t)hlen);
    ll = (size_t)(eol - p);
    if (ll < 9 || p[8] != ' ')
        return EBB_H1_EBAD;
    rc = h1_parse_version(p, 8);
    if (rc < 0)
        return rc;
    m->minor = rc;
    if (ll < 12 || (ll > 12 && p[12] != ' ') || eol[1] != '\n')
        return EBB_H1_EBAD;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return EBB_H1_EBAD;
        m->status = m->status * 10 + (p[i] - '0');
    }
    if (m->status < 100)
        return EBB_H1_EBAD;
    m->reason.p = ll > 12 ? p + 13 : p + 12;
    m->reason.len = (size_t)(eol - m->reason.p);
    for (size_t i = 0; i < m->reason.len; i++)
        if (!h1_is((unsigned char)m->reason.p[i], C_FVAL))
            return EBB_H1_EBAD;
    p = eol + 2;

    rc = h1_parse_fields(p, end, m);
    if (rc)
        return rc;
    rc = h1_scan_fields(m, &f);
    if (rc)
        return rc;

    /* Framing errors are errors even where the body length is implied:
     * a peer that gets them wrong cannot be trusted with the next one. */
    if (f.te.n) {
        if (m->minor == 0 || f.cl.seen)
            return EBB_H1_EBAD;
        rc = h1_te_check(&f);
        if (rc)
            return rc;
    }

    head = req_method && req_method_len == 4 && memcmp(req_method, "HEAD", 4) == 0;
    connect = req_method && req_method_len == 7 && memcmp(req_method, "CONNECT", 7) == 0;
    if (m->status == 101 || (connect && m->status >= 200 && m->status < 300)) {
        m->flags |= EBB_H1_F_TUNNEL;
    } else if (head || m->status < 200 || m->status == 204 || m->status == 304) {
        /* no body */
    } else if (f.te.n) {
        m->framing = EBB_H1_BODY_CHUNKED;
    } else if (f.cl.seen) {
        m->framing = EBB_H1_BODY_LENGTH;
        m->content_length = f.cl.value;
    } else {
        m->framing = EBB_H1_BODY_EOF;
    }

    h1_conn_flags(m);
    if (m->framing == EBB_H1_BODY_EOF)
        m->flags |= EBB_H1_F_CONN_CLOSE;
    if (f.has_upgrade && (m->flags & EBB_H1_F_CONN_UPGRADE) && m->minor == 1)
        m->flags |= EBB_H1_F_UPGRADE;
    return hlen;
}

/* First header of m named name (NUL-terminated, any case) or NULL; the
 * result points into m. */
const struct ebb_h1_header *ebb_h1_find(const struct ebb_h1_msg *m, const char *name)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *h = &m->headers[i];

        if (h->name.len == nl && h1_mem_ieq(h->name.p, name, nl))
            return h;
    }
    return NULL;
}

struct h1_named {
    const struct ebb_h1_span *name;
    bool found;
};

static int h1_named_elem(const char *p, size_t len, void *arg)
{
    struct h1_named *st = arg;

    if (len != st->name->len || !h1_mem_ieq(p, st->name->p, len))
        return 0;
    st->found = true;
    return 1;
}

/* The RFC 9110 §7.6.1 fields and those named by m's Connection fields; m may be NULL. */
bool ebb_h1_hop_by_hop_compare(const struct ebb_h1_msg *m, const struct ebb_h1_span *name)
{
    struct h1_named st = { name, false };

    /* by length first: one compare at most for the fixed list */
    const char *p = name->p;
    size_t n = name->len;
    bool fixed = false;
    switch (n) {
    case 2:
        fixed = h1_span_ieq(p, n, "te");
        break;
    case 7:
        fixed = h1_span_ieq(p, n, "upgrade");
        break;
    case 10:
        fixed = h1_span_ieq(p, n, "connection") || h1_span_ieq(p, n, "keep-alive");
        break;
    case 16:
        fixed = h1_span_ieq(p, n, "proxy-connection");
        break;
    case 17:
        fixed = h1_span_ieq(p, n, "transfer-encoding");
        break;
    }
    if (fixed)
        return true;
    /* the Connection tokens close, keep-alive and upgrade name nothing beyond the list above */
    if (!m || !(m->flags & EBB_H1_F_CONN_OTHER))
        return false;
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *h = &m->headers[i];

        if (!h1_span_ieq(h->name.p, h->name.len, "connection"))
            continue;
        h1_list_each(h->value.p, h->value.len, h1_named_elem, &st);
        if (st.found)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------
 * Body decoder
 */

/* Sub-states of EBB_H1_BS_CHUNK_EXT (b->ext_state). */
enum h1_ext_state {
    X_PRE_SEMI = 0,   /* BWS after the size or a value, before ';' */
    X_PRE_NAME,       /* BWS after ';' */
    X_NAME,           /* in chunk-ext-name */
    X_POST_NAME,      /* BWS after the name, before '=' or ';' */
    X_PRE_VAL,        /* BWS after '=' */
    X_TOKVAL,         /* token value */
    X_QUOTED,         /* inside a quoted-string value */
    X_QUOTED_PAIR,    /* after a backslash in a quoted-string */
    X_AFTER_QUOTE,    /* after the closing quote */
};

/* Sub-states of EBB_H1_BS_TRAILER (b->trailer_state). */
enum h1_trailer_state {
    TS_LINE_START = 0,  /* at the start of a line */
    TS_NAME,            /* in a field name */
    TS_VALUE,           /* after the colon */
    TS_LINE_LF,         /* saw CR ending a field line */
    TS_END_LF,          /* saw CR of the final empty line */
};

/* Resets every field of *b for m's framing; NONE starts out DONE. */
void ebb_h1_body_init(struct ebb_h1_body *b, const struct ebb_h1_msg *m)
{
    memset(b, 0, sizeof(*b));
    switch (m->framing) {
    case EBB_H1_BODY_LENGTH:
        b->state = m->content_length ? EBB_H1_BS_LENGTH : EBB_H1_BS_DONE;
        b->remaining = m->content_length;
        break;
    case EBB_H1_BODY_CHUNKED:
        b->state = EBB_H1_BS_CHUNK_SIZE;
        break;
    case EBB_H1_BODY_EOF:
        b->state = EBB_H1_BS_EOF;
        break;
    default:
        b->state = EBB_H1_BS_DONE;
        break;
    }
}

/* One byte of chunk extension; returns 0, or EBB_H1_EBAD. */
static int h1_chunk_ext_byte(struct ebb_h1_body *b, unsigned char c)
{
    bool ows = c == ' ' || c == '\t';

    if (++b->ext_len > H1_MAX_CHUNK_EXT)
        return EBB_H1_EBAD;
    switch ((enum h1_ext_state)b->ext_state) {
    case X_PRE_SEMI:
        if (ows)
            return 0;
        if (c == ';') { b->ext_state = X_PRE_NAME; return 0; }
        return EBB_H1_EBAD;
    case X_PRE_NAME:
        if (ows)
            return 0;
        if (h1_is(c, C_TCHAR)) { b->ext_state = X_NAME; return 0; }
        return EBB_H1_EBAD;
    case X_NAME:
        if (h1_is(c, C_TCHAR))
            return 0;
        if (ows) { b->ext_state = X_POST_NAME; return 0; }
        if (c == ';') { b->ext_state = X_PRE_NAME; return 0; }
        if (c == '=') { b->ext_state = X_PRE_VAL; return 0; }
        return EBB_H1_EBAD;
    case X_POST_NAME:
        if (ows)
            return 0;
        if (c == ';') { b->ext_state = X_PRE_NAME; return 0; }
        if (c == '=') { b->ext_state = X_PRE_VAL; return 0; }
        return EBB_H1_EBAD;
    case X_PRE_VAL:
        if (ows)
            return 0;
        if (c == '"') { b->ext_state = X_QUOTED; return 0; }
        if (h1_is(c, C_TCHAR)) { b->ext_state = X_TOKVAL; return 0; }
        return EBB_H1_EBAD;
    case X_TOKVAL:
        if (h1_is(c, C_TCHAR))
            return 0;
        if (ows) { b->ext_state = X_PRE_SEMI; return 0; }
        if (c == ';') { b->ext_state = X_PRE_NAME; return 0; }
        return EBB_H1_EBAD;
    case X_QUOTED:
        if (c == '"') { b->ext_state = X_AFTER_QUOTE; return 0; }
        if (c == '\\') { b->ext_state = X_QUOTED_PAIR; return 0; }
        if (h1_is(c, C_QDTEXT))
            return 0;
        return EBB_H1_EBAD;
    case X_QUOTED_PAIR:
        if (c == '\t' || (c >= 0x20 && c != 0x7f)) { b->ext_state = X_QUOTED; return 0; }
        return EBB_H1_EBAD;
    case X_AFTER_QUOTE:
        if (ows) { b->ext_state = X_PRE_SEMI; return 0; }
        if (c == ';') { b->ext_state = X_PRE_NAME; return 0; }
        return EBB_H1_EBAD;
    }
    return EBB_H1_EBAD;
}

/* A CR may end the size line only where a complete extension ends. */
static bool h1_chunk_ext_can_end(const struct ebb_h1_body *b)
{
    return b->ext_state == X_NAME || b->ext_state == X_TOKVAL ||
           b->ext_state == X_AFTER_QUOTE;
}

/* One byte of trailer section; returns 0, 1 when the section is complete,
 * or EBB_H1_EBAD.  Field lines follow the head's rules. */
static int h1_trailer_byte(struct ebb_h1_body *b, unsigned char c)
{
    size_t max = b->max_trailer ? b->max_trailer : H1_DEF_MAX_HEAD;

    if (++b->trailer_len > max)
        return EBB_H1_EBAD;
    switch ((enum h1_trailer_state)b->trailer_state) {
    case TS_LINE_START:
        if (c == '\r') { b->trailer_state = TS_END_LF; return 0; }
        if (h1_is(c, C_TCHAR)) { b->trailer_state = TS_NAME; return 0; }
        return EBB_H1_EBAD;     /* obs-fold, empty name, bad char */
    case TS_NAME:
        if (h1_is(c, C_TCHAR))
            return 0;
        if (c == ':') { b->trailer_state = TS_VALUE; return 0; }
        return EBB_H1_EBAD;
    case TS_VALUE:
        if (h1_is(c, C_FVAL))
            return 0;
        if (c == '\r') { b->trailer_state = TS_LINE_LF; return 0; }
        return EBB_H1_EBAD;
    case TS_LINE_LF:
        if (c == '\n') { b->trailer_state = TS_LINE_START; return 0; }
        return EBB_H1_EBAD;
    case TS_END_LF:
        if (c == '\n')
            return 1;
        return EBB_H1_EBAD;
    }
    return EBB_H1_EBAD;
}

static int h1_body_fail(struct ebb_h1_body *b, size_t *consumed, size_t at)
{
    b->state = EBB_H1_BS_ERROR;
    *consumed = at;
    return EBB_H1_EBAD;
}

/* Advances *b over buf[0..len); returns one event per call (see the header)
 * with *data pointing into buf.  Pure and resumable at any byte. */
int ebb_h1_body_parse(struct ebb_h1_body *b, const char *buf, size_t len,
                      size_t *consumed, const char **data, size_t *data_len)
{
    size_t i = 0;

    *consumed = 0;
    *data = buf;
    *data_len = 0;

    while (i < len || b->state == EBB_H1_BS_DONE || b->state == EBB_H1_BS_ERROR) {
        unsigned char c;

        switch (b->state) {
        case EBB_H1_BS_DONE:
            *consumed = i;
            return EBB_H1_BODY_DONE;
        case EBB_H1_BS_ERROR:
            *consumed = i;
            return EBB_H1_EBAD;

        case EBB_H1_BS_EOF:
            *data = buf + i;
            *data_len = len - i;
            *consumed = len;
            return EBB_H1_BODY_DATA;

        case EBB_H1_BS_LENGTH:
        case EBB_H1_BS_CHUNK_DATA: {
            size_t n = len - i;

            if (n > b->remaining)
                n = (size_t)b->remaining;
            b->remaining -= n;
            if (b->remaining == 0)
                b->state = b->state == EBB_H1_BS_LENGTH ? EBB_H1_BS_DONE
                                                        : EBB_H1_BS_CHUNK_DATA_CR;
            *data = buf + i;
            *data_len = n;
            *consumed = i + n;
            return EBB_H1_BODY_DATA;
        }

        case EBB_H1_BS_CHUNK_SIZE:
            c = (unsigned char)buf[i];
            if (h1_is(c, C_HEX)) {
                unsigned d = c <= '9' ? (unsigned)(c - '0') : (unsigned)(h1_lower(c) - 'a' + 10);

                if (++b->ndigits > H1_MAX_CHUNK_DIGITS || b->remaining > (H1_MAX_INT63 >> 4))
                    return h1_body_fail(b, consumed, i);
                b->remaining = (b->remaining << 4) | d;
            } else if (b->ndigits == 0) {
                return h1_body_fail(b, consumed, i);
            } else if (c == '\r') {
                b->state = EBB_H1_BS_CHUNK_SIZE_LF;
            } else {
                b->state = EBB_H1_BS_CHUNK_EXT;
                b->ext_state = X_PRE_SEMI;
                if (h1_chunk_ext_byte(b, c))
                    return h1_body_fail(b, consumed, i);
            }
            i++;
            break;

        case EBB_H1_BS_CHUNK_EXT:
            c = (unsigned char)buf[i];
            if (c == '\r') {
                if (!h1_chunk_ext_can_end(b))
                    return h1_body_fail(b, consumed, i);
                b->state = EBB_H1_BS_CHUNK_SIZE_LF;
            } else if (h1_chunk_ext_byte(b, c)) {
                return h1_body_fail(b, consumed, i);
            }
            i++;
            break;

        case EBB_H1_BS_CHUNK_SIZE_LF:
            if (buf[i] != '\n')
                return h1_body_fail(b, consumed, i);
            i++;
            if (b->remaining) {
                b->state = EBB_H1_BS_CHUNK_DATA;
            } else {
                b->state = EBB_H1_BS_TRAILER;
                b->trailer_state = TS_LINE_START;
            }
            break;

        case EBB_H1_BS_CHUNK_DATA_CR:
            if (buf[i] != '\r')
                return h1_body_fail(b, consumed, i);
            b->state = EBB_H1_BS_CHUNK_DATA_LF;
            i++;
            break;

        case EBB_H1_BS_CHUNK_DATA_LF:
            if (buf[i] != '\n')
                return h1_body_fail(b, consumed, i);
            b->state = EBB_H1_BS_CHUNK_SIZE;
            b->remaining = 0;
            b->ndigits = 0;
            b->ext_len = 0;
            i++;
            break;

        case EBB_H1_BS_TRAILER: {
            /* Field lines are reported as one span; the final empty line
             * is consumed silently and ends the message. */
            size_t start = i;

            while (i < len) {
                int rc;

                if (b->trailer_state == TS_LINE_START && buf[i] == '\r' && i > start)
                    break;
                rc = h1_trailer_byte(b, (unsigned char)buf[i]);
                if (rc < 0 && i > start) {
                    /* Report the good bytes first, so the result does not
                     * depend on where the input was split; the next call
                     * meets the bad byte again. */
                    b->trailer_len--;
                    break;
                }
                if (rc < 0)
                    return h1_body_fail(b, consumed, i);
                i++;
                if (rc == 1) {
                    b->state = EBB_H1_BS_DONE;
                    *consumed = i;
                    return EBB_H1_BODY_DONE;
                }
                if (b->trailer_state == TS_END_LF) {
                    start = i;      /* the CR of the final line is not reported */
                }
            }
            if (i > start) {
                *data = buf + start;
                *data_len = i - start;
                *consumed = i;
                return EBB_H1_BODY_TRAILER;
            }
            break;
        }

        default:
            return h1_body_fail(b, consumed, i);
        }
    }
    *consumed = i;
    return EBB_H1_AGAIN;
}

/*
 * h1_parse.h - strict, pure HTTP/1.x message parser (RFC 9112).
 *
 * No I/O, no allocation.  The head parser works on the bytes received so
 * far: it returns the head length once "\r\n\r\n" has arrived and the head
 * is valid, EBB_H1_AGAIN while incomplete (the caller appends more bytes
 * and calls again with the whole head so far, picohttpparser style), or a
 * negative EBB_H1_E* code with the HTTP status to answer.  Parsed spans
 * point into the caller's buffer, which must stay put while they are used.
 *
 * The body decoder is resumable: it keeps its state in struct ebb_h1_body
 * and can be fed one byte at a time.
 *
 * The rules (what is rejected and why, and the choices made where the RFC
 * leaves room) are in docs/h1.md.  Everything here is reentrant; the
 * parser keeps no state between calls.
 */
#ifndef EBB_H1_PARSE_H
#define EBB_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EBB_H1_MAX_HEADERS_CAP 256   /* hard array size; limits.max_headers <= this */

/* Return codes.  >= 0 means success (a length). */
#define EBB_H1_AGAIN         (-1)   /* need more bytes */
#define EBB_H1_EBAD          (-2)   /* malformed or ambiguous: 400 (502 for responses;
                                       every error on a response head means 502) */
#define EBB_H1_ELINE_TOO_LONG (-3)  /* request line over limit: 414 */
#define EBB_H1_EHEAD_TOO_BIG (-4)   /* head over limit or too many fields: 431 */
#define EBB_H1_EVERSION      (-5)   /* unsupported HTTP version: 505 */
#define EBB_H1_ENOTIMPL      (-6)   /* transfer-coding we do not implement: 501 */

/* A zero field means its default; a NULL limits pointer means all defaults. */
struct ebb_h1_limits {
    size_t max_line;      /* request line bytes, excluding CRLF (default 8192) */
    size_t max_head;      /* whole head bytes including the request line and the final
                             CRLF CRLF (default 61440) */
    size_t max_headers;   /* number of header fields (default 100, <= EBB_H1_MAX_HEADERS_CAP) */
};

struct ebb_h1_span {
    const char *p;
    size_t      len;
};

struct ebb_h1_header {
    struct ebb_h1_span name;   /* as sent (case preserved), no whitespace */
    struct ebb_h1_span value;  /* leading/trailing OWS stripped */
};

enum ebb_h1_framing {
    EBB_H1_BODY_NONE = 0,   /* no body (no CL/TE on a request; HEAD/1xx/204/304 responses) */
    EBB_H1_BODY_LENGTH,     /* Content-Length bytes (may be 0) */
    EBB_H1_BODY_CHUNKED,    /* Transfer-Encoding: chunked */
    EBB_H1_BODY_EOF,        /* response delimited by connection close */
};

/* Message flags derived from the head. */
#define EBB_H1_F_CONN_CLOSE     0x0001  /* Connection: close, or HTTP/1.0 without keep-alive */
#define EBB_H1_F_CONN_KEEPALIVE 0x0002  /* Connection: keep-alive token present */
#define EBB_H1_F_CONN_UPGRADE   0x0004  /* Connection: upgrade token present */
#define EBB_H1_F_UPGRADE        0x0008  /* Upgrade header present (and CONN_UPGRADE) */
#define EBB_H1_F_EXPECT_CONTINUE 0x0010 /* Expect: 100-continue */
#define EBB_H1_F_ABSOLUTE_FORM  0x0020  /* request-target in absolute-form */
#define EBB_H1_F_HAS_TE_TRAILERS 0x0040 /* TE: trailers */
#define EBB_H1_F_TUNNEL         0x0080  /* response: 101, or 2xx to CONNECT: bytes after
                                           the head belong to a tunnel (framing NONE) */
#define EBB_H1_F_CONN_OTHER     0x0100  /* Connection names a field other than close,
                                           keep-alive and upgrade (ebb_h1_is_hop_by_hop) */

struct ebb_h1_msg {
    /* request line (requests only) */
    struct ebb_h1_span method;
    struct ebb_h1_span target;      /* request-target as sent */
    struct ebb_h1_span path;        /* origin-form path+query; for absolute-form the part after the authority
                                       ("/" if empty: then p points to a static string, not into buf);
                                       "*" for asterisk-form; empty for CONNECT */
    struct ebb_h1_span authority;   /* absolute-form authority (wins over Host, RFC 9112 §3.2.2: the
                                       caller must send it as Host upstream), CONNECT target, else the
                                       Host value; empty for HTTP/1.0 without Host */
    /* status line (responses only) */
    int                status;      /* 100..999 */
    struct ebb_h1_span reason;      /* may be empty */
    /* both */
    int                minor;       /* HTTP/1.<minor>: 0 or 1 */
    unsigned           flags;       /* EBB_H1_F_* */
    enum ebb_h1_framing framing;
    uint64_t           content_length;  /* valid when framing == EBB_H1_BODY_LENGTH */
    size_t             nheaders;
    struct ebb_h1_header headers[EBB_H1_MAX_HEADERS_CAP];
};

/* Fills lim with the SPEC §7 defaults. */
void ebb_h1_limits_default(struct ebb_h1_limits *lim);

/* The HTTP status to answer a request whose head failed with rc (400, 414,
 * 431, 505, 501); 0 if rc is not an EBB_H1_E* code.  Any error on a
 * response head is a 502, whatever rc is. */
int ebb_h1_error_status(int rc);

/* Parses a request head from buf[0..len).  On success returns the head
 * length (through the final CRLF CRLF; empty lines before the request line
 * are skipped and counted in it) and fills *m, including framing:
 * TE+CL together, differing duplicate CL, TE in HTTP/1.0, final coding not
 * chunked, missing/invalid/duplicate Host in HTTP/1.1, whitespace before a
 * colon, obs-fold, bare CR or LF, NUL, invalid token chars: EBB_H1_EBAD.
 * "gzip, chunked" and other codings before chunked: EBB_H1_ENOTIMPL.
 * Limits are enforced on incomplete input too.  *m is only meaningful
 * when the return value is >= 0. */
int ebb_h1_parse_request(const char *buf, size_t len, const struct ebb_h1_limits *lim,
                         struct ebb_h1_msg *m);

/* Parses a response head.  req_method is the method of the request it
 * answers (for HEAD and CONNECT framing; NULL is taken as GET).  Framing
 * rules of RFC 9112 §6.3: 101 and CONNECT-2xx set EBB_H1_F_TUNNEL;
 * 1xx/204/304 and responses to HEAD have no body; TE chunked; CL; else EOF
 * (which also sets EBB_H1_F_CONN_CLOSE).  A Transfer-Encoding whose final
 * coding is not chunked is EBB_H1_EBAD, not EOF framing: TE is hop-by-hop,
 * so forwarding the body without it would hand the client undecoded bytes. */
int ebb_h1_parse_response(const char *buf, size_t len, const struct ebb_h1_limits *lim,
                          const char *req_method, size_t req_method_len,
                          struct ebb_h1_msg *m);

/* Case-insensitive lookup of the first header named name; NULL if absent. */
const struct ebb_h1_header *ebb_h1_find(const struct ebb_h1_msg *m, const char *name);

/* ebb_h1_is_hop_by_hop's comparisons, for a name it could not rule out by length. */
bool ebb_h1_hop_by_hop_compare(const struct ebb_h1_msg *m, const struct ebb_h1_span *name);

/* True when a header named name must not be forwarded by a proxy (m may
 * be NULL: then only the fixed list is checked):
 * Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade
 * (RFC 9110 §7.6.1), or a field named by a Connection header of m.  The
 * caller re-adds Upgrade/Connection when it tunnels.  Inline, for every field of every
 * message: a name of none of the fixed list's lengths (2, 7, 10, 16, 17) is ruled out
 * without a call unless m's Connection names other fields. */
static inline bool ebb_h1_is_hop_by_hop(const struct ebb_h1_msg *m,
                                        const struct ebb_h1_span *name)
{
    const uint32_t lens = (1u << 2) | (1u << 7) | (1u << 10) | (1u << 16) | (1u << 17);

    if (!(name->len < 32 && ((1u << name->len) & lens)) &&
        !(m && (m->flags & EBB_H1_F_CONN_OTHER)))
        return false;
    return ebb_h1_hop_by_hop_compare(m, name);
}

/* Resumable body decoder. */
enum ebb_h1_body_state {
    EBB_H1_BS_LENGTH = 0,   /* counting down remaining bytes */
    EBB_H1_BS_CHUNK_SIZE,   /* reading hex digits */
    EBB_H1_BS_CHUNK_EXT,    /* reading ";ext" up to CR */
    EBB_H1_BS_CHUNK_SIZE_LF,/* saw CR after size line, need LF */
    EBB_H1_BS_CHUNK_DATA,   /* inside chunk data */
    EBB_H1_BS_CHUNK_DATA_CR,/* need CR after chunk data */
    EBB_H1_BS_CHUNK_DATA_LF,/* need LF after chunk data */
    EBB_H1_BS_TRAILER,      /* inside the trailer section */
    EBB_H1_BS_EOF,          /* until connection close: everything is data */
    EBB_H1_BS_DONE,         /* message complete */
    EBB_H1_BS_ERROR,        /* malformed: every later call returns EBB_H1_EBAD */
};

struct ebb_h1_body {
    enum ebb_h1_body_state state;
    uint64_t remaining;      /* bytes left in the body (LENGTH) or in the chunk (CHUNK_DATA) */
    unsigned ndigits;        /* hex digits seen in the current size line */
    size_t   ext_len;        /* bytes of chunk extension seen on this size line (<= 4096) */
    unsigned ext_state;      /* internal: position in the chunk-ext grammar */
    size_t   trailer_len;    /* bytes of trailer section seen, final CRLF included (<= max_trailer) */
    unsigned trailer_state;  /* internal: position in the trailer field-line grammar */
    size_t   max_trailer;    /* ceiling for the trailer section, 0 = 61440 */
};

/* Prepares *b for a message with the given framing (every field is set;
 * set max_trailer after this call to override the default). */
void ebb_h1_body_init(struct ebb_h1_body *b, const struct ebb_h1_msg *m);

#define EBB_H1_BODY_DATA    1   /* [*data, *data+*data_len) is payload (never empty) */
#define EBB_H1_BODY_TRAILER 2   /* [*data, *data+*data_len) is raw trailer-section bytes: field lines
                                   with their CRLFs, in arrival order, excluding the final
                                   empty line; concatenated over calls they form the
                                   trailer section */
#define EBB_H1_BODY_DONE    0   /* message complete */

/* Decodes body bytes from buf[0..len).  Sets *consumed to the bytes used
 * and returns EBB_H1_BODY_DATA, EBB_H1_BODY_TRAILER, EBB_H1_BODY_DONE,
 * EBB_H1_AGAIN (everything consumed, nothing to report, need more) or
 * EBB_H1_EBAD (bare LF, bad hex, size overflow, bad extension or trailer,
 * trailer section over max_trailer).  Callers loop, advancing by *consumed,
 * until DONE, AGAIN or an error.  Bytes after DONE are not consumed (they
 * are the next pipelined message).  For EBB_H1_BODY_EOF framing every byte
 * is data; the caller ends the body at connection close.  *consumed may be
 * larger than *data_len: framing bytes before the span are consumed in the
 * same call.  On EBB_H1_EBAD, *consumed is the offset of the bad byte. */
int ebb_h1_body_parse(struct ebb_h1_body *b, const char *buf, size_t len,
                      size_t *consumed, const char **data, size_t *data_len);

static inline bool ebb_h1_body_done(const struct ebb_h1_body *b) { return b->state == EBB_H1_BS_DONE; }

#endif

/*
 * test_h1_parse.c - the HTTP/1 parser against SPEC §7 and RFC 9112.
 *
 * Protocol cases are data: one row per case, raw bytes and the expected
 * result.  Adding a smuggling case is one line in req_cases[],
 * resp_cases[] or body_cases[].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/h1_parse.h"
#include "t.h"

#define OK   1000   /* head parses; its length is the whole raw input */

/* framing expectations; 0 means "not checked" */
#define FR_NONE    (1 + EBB_H1_BODY_NONE)
#define FR_LENGTH  (1 + EBB_H1_BODY_LENGTH)
#define FR_CHUNKED (1 + EBB_H1_BODY_CHUNKED)
#define FR_EOF     (1 + EBB_H1_BODY_EOF)

#define F_CLOSE   EBB_H1_F_CONN_CLOSE
#define F_KA      EBB_H1_F_CONN_KEEPALIVE
#define F_CUPG    EBB_H1_F_CONN_UPGRADE
#define F_UPG     EBB_H1_F_UPGRADE
#define F_100     EBB_H1_F_EXPECT_CONTINUE
#define F_ABS     EBB_H1_F_ABSOLUTE_FORM
#define F_TET     EBB_H1_F_HAS_TE_TRAILERS
#define F_TUN     EBB_H1_F_TUNNEL

#define EBAD      EBB_H1_EBAD
#define EVER      EBB_H1_EVERSION
#define ENOTIMPL  EBB_H1_ENOTIMPL
#define ELINE     EBB_H1_ELINE_TOO_LONG
#define EBIG      EBB_H1_EHEAD_TOO_BIG
#define AGAIN     EBB_H1_AGAIN

struct head_case {
    const char *raw;
    size_t      len;
    int         rc;          /* OK or an EBB_H1_* code */
    const char *method;      /* responses: the request method (NULL = GET) */
    int         fr;          /* FR_* or 0 */
    unsigned    set;         /* flags that must be set */
    unsigned    clr;         /* flags that must be clear */
    const char *auth;        /* expected authority, NULL = unchecked */
    const char *path;        /* expected path, NULL = unchecked */
    unsigned long long cl1;  /* expected content_length + 1 (use CL()), 0 = unchecked */
    int         status;      /* responses: expected status, 0 = unchecked */
    int         small;       /* use the small limits below */
};

/* R(rc, raw, ...optional designated fields) */
#define R(rc_, raw_, ...) { .raw = raw_, .len = sizeof(raw_) - 1, .rc = rc_, __VA_ARGS__ }
#define CL(n_) .cl1 = (n_) + 1ULL

#define H11 " HTTP/1.1\r\nHost: a\r\n"
#define POST "POST /" H11

static const struct head_case req_cases[] = {
    /* --- basics --- */
    R(OK,   "GET / HTTP/1.1\r\nHost: a\r\n\r\n", .fr = FR_NONE, .auth = "a", .path = "/", .clr = F_CLOSE),
    R(OK,   "GET /p?q=1&r=%20 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", .auth = "example.com:8080", .path = "/p?q=1&r=%20"),
    R(OK,   "GET / HTTP/1.0\r\n\r\n", .set = F_CLOSE, .auth = ""),
    R(OK,   "GET / HTTP/1.0\r\nHost: a\r\n\r\n", .set = F_CLOSE, .auth = "a"),
    R(OK,   "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n"),                           /* extension method */
    R(OK,   "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),                          /* RFC 9112 §2.2 leading CRLF */
    R(OK,   "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),                            /* leading bare LF */
    R(EBAD, "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"),                            /* leading bare CR */
    R(EBAD, "\r\n\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "\r0\r\n\r\n"),                                                  /* fuzz: overread */
    R(OK,   "GET / HTTP/1.1\r\nHost:   a  \r\n\r\n", .auth = "a"),             /* OWS trimmed */
    R(OK,   "GET / HTTP/1.1\r\nHost:\ta\t\r\n\r\n", .auth = "a"),
    R(OK,   "GET /" H11 "X-Empty:\r\n\r\n"),
    R(OK,   "GET /" H11 "X: a \t b\r\n\r\n"),
    R(OK,   "GET /" H11 "X: caf\xc3\xa9\r\n\r\n"),                             /* obs-text in a value */
    R(OK,   "GET /a|b{c}[d]\"e HTTP/1.1\r\nHost: a\r\n\r\n"),                  /* any VCHAR in the target */
    R(AGAIN, "GET / HTTP/1.1\r\nHost: a\r\n"),
    R(AGAIN, "GET / HTTP/1.1\r\nHost: a\r\n\r"),
    R(AGAIN, ""),
    /* --- Content-Length --- */
    R(OK,   POST "Content-Length: 5\r\n\r\n", .fr = FR_LENGTH, CL(5)),
    R(OK,   POST "Content-Length: 0\r\n\r\n", .fr = FR_LENGTH, CL(0)),
    R(OK,   POST "Content-Length: 007\r\n\r\n", .fr = FR_LENGTH, CL(7)),
    R(OK,   POST "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", .fr = FR_LENGTH, CL(5)),
    R(OK,   POST "Content-Length: 5, 5\r\n\r\n", .fr = FR_LENGTH, CL(5)),
    R(OK,   POST "Content-Length: 5,5\r\n\r\n", .fr = FR_LENGTH, CL(5)),
    R(OK,   POST "content-LENGTH: 5\r\nContent-Length: 5 , 5\r\n\r\n", .fr = FR_LENGTH, CL(5)),
    R(OK,   POST "Content-Length: 9223372036854775807\r\n\r\n", CL(9223372036854775807)),
    R(EBAD, POST "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"),
    R(EBAD, POST "Content-Length: 5, 6\r\n\r\n"),
    R(EBAD, POST "Content-Length: +5\r\n\r\n"),
    R(EBAD, POST "Content-Length: -1\r\n\r\n"),
    R(EBAD, POST "Content-Length: 5a\r\n\r\n"),
    R(EBAD, POST "Content-Length: 0x5\r\n\r\n"),
    R(EBAD, POST "Content-Length: 5 5\r\n\r\n"),
    R(EBAD, POST "Content-Length: 5.0\r\n\r\n"),
    R(EBAD, POST "Content-Length:\r\n\r\n"),
    R(EBAD, POST "Content-Length: 5,\r\n\r\n"),
    R(EBAD, POST "Content-Length: ,5\r\n\r\n"),
    R(EBAD, POST "Content-Length: 5,,5\r\n\r\n"),
    R(EBAD, POST "Content-Length: 9223372036854775808\r\n\r\n"),             /* 2^63 */
    R(EBAD, POST "Content-Length: 18446744073709551616\r\n\r\n"),            /* 2^64 */
    R(EBAD, POST "Content-Length: 99999999999999999999999999\r\n\r\n"),
    /* --- Transfer-Encoding --- */
    R(OK,   POST "Transfer-Encoding: chunked\r\n\r\n", .fr = FR_CHUNKED),
    R(OK,   POST "Transfer-Encoding: Chunked\r\n\r\n", .fr = FR_CHUNKED),
    R(OK,   POST "Transfer-Encoding:  chunked \r\n\r\n", .fr = FR_CHUNKED),
    R(EBAD, POST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),   /* TE + CL */
    R(EBAD, POST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
    R(EBAD, POST "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: gzip\r\n\r\n"),                           /* final not chunked */
    R(EBAD, POST "Transfer-Encoding: chunked, gzip\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: identity\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: chunked, chunked\r\n\r\n"),               /* chunked twice */
    R(EBAD, POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
    R(ENOTIMPL, POST "Transfer-Encoding: gzip, chunked\r\n\r\n"),              /* 501 */
    R(ENOTIMPL, POST "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding:\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: chunked;q=1\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: ,chunked\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: chunked,\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: xchunked\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding: \"chunked\"\r\n\r\n"),
    R(EBAD, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),          /* TE in HTTP/1.0 */
    R(EBAD, "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
    /* --- field syntax --- */
    R(EBAD, "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),                             /* space before colon */
    R(EBAD, "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"),
    R(EBAD, POST "Transfer-Encoding : chunked\r\n\r\n"),
    R(EBAD, "GET /" H11 "X: a\r\n b\r\n\r\n"),                                 /* obs-fold */
    R(EBAD, "GET /" H11 "X: a\r\n\tb\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\n Host: a\r\n\r\n"),                             /* first field line folded */
    R(EBAD, "GET /" H11 "X: a\rb\r\n\r\n"),                                    /* bare CR in a value */
    R(EBAD, "GET /" H11 "X: a\r\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
    R(EBAD, "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"),                            /* bare CR in the request line */
    R(EBAD, "GET / HTTP/1.1\rHost: a\r\n\r\n"),
    R(EBAD, "GET /" H11 "\r\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\nHost: a\n\n"),                                    /* bare LF terminators */
    R(EBAD, "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a\r\n\n"),
    R(EBAD, "GET / HTTP/1.1\nHost: a\r\n\r\n"),
    R(EBAD, "GET /" H11 "X: a\0b\r\n\r\n"),                                    /* NUL */
    R(EBAD, "GET /" H11 "X: \0\r\n\r\n"),
    R(EBAD, "GET /" H11 "X: a\x01\r\n\r\n"),                                   /* other CTLs */
    R(EBAD, "GET /" H11 "X: a\x0b\r\n\r\n"),
    R(EBAD, "GET /" H11 "X: a\x1f\r\n\r\n"),
    R(EBAD, "GET /" H11 "X: a\x7f\r\n\r\n"),                                   /* DEL */
    R(EBAD, "GET /" H11 "X@Y: a\r\n\r\n"),                                     /* invalid name chars */
    R(EBAD, "GET /" H11 "X Y: a\r\n\r\n"),
    R(EBAD, "GET /" H11 "\"X\": a\r\n\r\n"),
    R(EBAD, "GET /" H11 "X(: a\r\n\r\n"),
    R(EBAD, "GET /" H11 "X\0: a\r\n\r\n"),
    R(EBAD, "GET /" H11 "X\x80: a\r\n\r\n"),
    R(EBAD, "GET /" H11 ": a\r\n\r\n"),                                        /* empty name */
    R(EBAD, "GET /" H11 "X a\r\n\r\n"),                                        /* no colon */
    R(EBAD, "GET /" H11 "X\r\n\r\n"),
    /* --- request line --- */
    R(EBAD, "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"),                             /* invalid method chars */
    R(EBAD, "G\0T / HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, " / HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),                             /* double SP */
    R(EBAD, "GET /  HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
    R(EBAD, "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"),                            /* NUL in the target */
    R(EBAD, "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),                   /* raw non-ASCII target */
    R(EBAD, "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET x/y HTTP/1.1\r\nHost: a\r\n\r\n"),                            /* no form matches */
    R(EBAD, "GET / \r\nHost: a\r\n\r\n"),
    R(EBAD, "GET /\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET\r\n\r\n"),
    /* --- versions --- */
    R(EVER, "GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
    R(OK,   "GET / HTTP/1.2\r\nHost: a\r\n\r\n"),                              /* served as 1.1 */
    R(EBAD, "GET / HTTP/1.2\r\n\r\n"),                                       /* ... so Host is required */
    R(EVER, "GET / HTTP/0.9\r\nHost: a\r\n\r\n"),
    R(EVER, "GET / HTTP/3.0\r\nHost: a\r\n\r\n"),
    R(EVER, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),                               /* h2 preface */
    R(EBAD, "GET / HTTP/1.10\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / HTTP/11\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / HTTP/1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / http/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / HTTP/x.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.x\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / HTTPS/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / FOO\r\nHost: a\r\n\r\n"),
    /* --- Host --- */
    R(EBAD, "GET / HTTP/1.1\r\n\r\n"),                                         /* missing in 1.1 */
    R(EBAD, "GET / HTTP/1.1\r\nX: a\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),                   /* duplicate */
    R(EBAD, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost:\r\n\r\n"),                                /* empty */
    R(EBAD, "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),                            /* invalid chars */
    R(EBAD, "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a%41\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a?b\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n"),                            /* bad ports */
    R(EBAD, "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: a:000080\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: :80\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: []\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.1\r\nHost: [g::1]\r\n\r\n"),
    R(EBAD, "GET / HTTP/1.0\r\nHost: a b\r\n\r\n"),                            /* validated in 1.0 too */
    R(OK,   "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", .auth = "[::1]:8080"),
    R(OK,   "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", .auth = "127.0.0.1"),
    R(OK,   "GET / HTTP/1.1\r\nHost: a_b.ex-1.com:65535\r\n\r\n", .auth = "a_b.ex-1.com:65535"),
    R(OK,   "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", .auth = "a:"),              /* port = *DIGIT */
    R(OK,   "GET / HTTP/1.1\r\nhOST: a\r\n\r\n", .auth = "a"),
    /* --- absolute-form (RFC 9112 §3.2.2: the URI authority wins over Host) --- */
    R(OK,   "GET http://b.example/x?y HTTP/1.1\r\nHost: b.example\r\n\r\n", .set = F_ABS, .auth = "b.example", .path = "/x?y"),
    R(OK,   "GET http://b:8080/x HTTP/1.1\r\nHost: c\r\n\r\n", .set = F_ABS, .auth = "b:8080", .path = "/x"),
    R(OK,   "GET http://b HTTP/1.1\r\nHost: b\r\n\r\n", .set = F_ABS, .auth = "b", .path = "/"),
    R(OK,   "GET https://b/ HTTP/1.1\r\nHost: b\r\n\r\n", .set = F_ABS, .auth = "b", .path = "/"),
    R(OK,   "GET HTTP://B/x HTTP/1.1\r\nHost: b\r\n\r\n", .set = F_ABS, .auth = "B"),
    R(OK,   "GET http://[::1]:80/ HTTP/1.1\r\nHost: x\r\n\r\n", .auth = "[::1]:80"),
    R(OK,   "GET http://b/x HTTP/1.0\r\n\r\n", .set = F_ABS | F_CLOSE, .auth = "b"),
    R(EBAD, "GET http://b/x HTTP/1.1\r\n\r\n"),                                /* Host still required */
    R(EBAD, "GET http://b/x HTTP/1.1\r\nHost: b\r\nHost: b\r\n\r\n"),
    R(EBAD, "GET http://b/x HTTP/1.1\r\nHost: b c\r\n\r\n"),                   /* Host still validated */
    R(EBAD, "GET http://b?x HTTP/1.1\r\nHost: b\r\n\r\n"),                     /* query, no path */
    R(EBAD, "GET http://u@b/ HTTP/1.1\r\nHost: b\r\n\r\n"),                    /* userinfo */
    R(EBAD, "GET http:///x HTTP/1.1\r\nHost: b\r\n\r\n"),                      /* empty authority */
    R(EBAD, "GET http:// HTTP/1.1\r\nHost: b\r\n\r\n"),
    R(EBAD, "GET http:/x HTTP/1.1\r\nHost: b\r\n\r\n"),
    R(EBAD, "GET ftp://b/x HTTP/1.1\r\nHost: b\r\n\r\n"),
    R(EBAD, "GET http://b:99999/ HTTP/1.1\r\nHost: b\r\n\r\n"),
    /* --- CONNECT and OPTIONS * --- */
    R(OK,   "CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n", .fr = FR_NONE, .auth = "b.example:443", .path = ""),
    R(OK,   "CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n", .auth = "[::1]:443"),
    R(OK,   "CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\nContent-Length: 0\r\n\r\n", .fr = FR_LENGTH),
    R(EBAD, "CONNECT b HTTP/1.1\r\nHost: b\r\n\r\n"),                          /* port required */
    R(EBAD, "CONNECT b: HTTP/1.1\r\nHost: b\r\n\r\n"),
    R(EBAD, "CONNECT / HTTP/1.1\r\nHost: b\r\n\r\n"),
    R(EBAD, "CONNECT http://b:443/ HTTP/1.1\r\nHost: b\r\n\r\n"),
    R(EBAD, "CONNECT b:443 HTTP/1.1\r\n\r\n"),
    R(EBAD, "CONNECT b:443 HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\n"), /* CONNECT has no content */
    R(EBAD, "CONNECT b:443 HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n"),
    R(EBAD, "GET b:443 HTTP/1.1\r\nHost: b\r\n\r\n"),                          /* authority-form needs CONNECT */
    R(OK,   "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", .path = "*", .auth = "a"),
    R(EBAD, "GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
    R(EBAD, "OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n"),
    /* --- Connection, Upgrade, Expect, TE --- */
    R(OK,   "GET /" H11 "\r\n", .clr = F_CLOSE | F_KA | F_CUPG | F_UPG),
    R(OK,   "GET /" H11 "Connection: close\r\n\r\n", .set = F_CLOSE),
    R(OK,   "GET /" H11 "Connection: CLOSE\r\n\r\n", .set = F_CLOSE),
    R(OK,   "GET /" H11 "Connection: closed\r\n\r\n", .clr = F_CLOSE),
    R(OK,   "GET /" H11 "Connection: foo, close\r\n\r\n", .set = F_CLOSE),
    R(OK,   "GET /" H11 "Connection: foo\r\nConnection: Close\r\n\r\n", .set = F_CLOSE),
    R(OK,   "GET /" H11 "Connection: , close ,\r\n\r\n", .set = F_CLOSE),       /* empty list elements */
    R(EBAD, "GET /" H11 "Connection: clo se\r\n\r\n"),
    R(EBAD, "GET /" H11 "Connection: \"close\"\r\n\r\n"),
    R(OK,   "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", .set = F_KA, .clr = F_CLOSE),
    R(OK,   "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", .set = F_KA, .clr = F_CLOSE),
    R(OK,   "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", .set = F_CLOSE),
    R(OK,   "GET / HTTP/1.0\r\nConnection: foo\r\n\r\n", .set = F_CLOSE),
    R(OK,   "GET /" H11 "Connection: keep-alive\r\n\r\n", .set = F_KA, .clr = F_CLOSE),
    R(OK,   "GET /" H11 "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", .set = F_KA | F_CUPG | F_UPG),
    R(OK,   "GET /" H11 "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n", .set = F_CUPG | F_UPG),
    R(OK,   "GET /" H11 "Upgrade: websocket\r\n\r\n", .clr = F_UPG | F_CUPG),  /* no Connection: upgrade */
    R(OK,   "GET /" H11 "Connection: upgrade\r\n\r\n", .set = F_CUPG, .clr = F_UPG),
    R(OK,   "GET /" H11 "Connection: foo\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n", .set = F_UPG),
    R(OK,   "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", .clr = F_UPG),
    R(OK,   POST "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n", .set = F_100),
    R(OK,   POST "Expect: 100-Continue\r\nContent-Length: 3\r\n\r\n", .set = F_100),
    R(OK,   POST "Expect: 100-continuex\r\nContent-Length: 3\r\n\r\n", .clr = F_100),
    R(OK,   "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", .clr = F_100),
    R(OK,   "GET /" H11 "TE: trailers\r\n\r\n", .set = F_TET),
    R(OK,   "GET /" H11 "TE: deflate;q=0.5, Trailers\r\n\r\n", .set = F_TET),
    R(OK,   "GET /" H11 "TE: deflate\r\n\r\n", .clr = F_TET),
    /* --- limits: small = line 32, head 128, 4 fields --- */
    R(ELINE, "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", .small = 1),        /* while incomplete */
    R(ELINE, "GET /aaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n", .small = 1),  /* 33 */
    R(OK,    "GET /aaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n", .small = 1),   /* 32 */
    R(AGAIN, "GET /aaaaaaaaaaaaaaaaaa HTTP/1.1\r", .small = 1),
    R(ELINE, "\r\n\r\nGET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", .small = 1),
    R(OK,    "GET / HTTP/1.1\r\nHost: a\r\nB: b\r\nC: c\r\nD: d\r\n\r\n", .small = 1),
    R(EBIG,  "GET / HTTP/1.1\r\nHost: a\r\nB: b\r\nC: c\r\nD: d\r\nE: e\r\n\r\n", .small = 1),
    R(EBIG,  "GET / HTTP/1.1\r\nHost: a\r\nB: b\r\nC: c\r\nD: d\r\nE: e\r\n", .small = 1),  /* incomplete */
    R(EBIG,  "GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", .small = 1),
    /* 128 bytes exactly, then 129 */
    R(OK,    "GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", .small = 1),
    R(EBIG,  "GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", .small = 1),
};

static const struct head_case resp_cases[] = {
    R(OK,   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", .status = 200, .fr = FR_LENGTH, CL(5), .clr = F_CLOSE),
    R(OK,   "HTTP/1.1 200 \r\n\r\n", .status = 200, .fr = FR_EOF, .set = F_CLOSE),     /* empty reason */
    R(OK,   "HTTP/1.1 200\r\n\r\n", .status = 200, .fr = FR_EOF),                     /* no SP: accepted */
    R(OK,   "HTTP/1.1 404 Not  Found\t\r\nContent-Length: 0\r\n\r\n", .status = 404, .fr = FR_LENGTH),
    R(OK,   "HTTP/1.1 200 caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n"),                  /* obs-text reason */
    R(OK,   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .fr = FR_CHUNKED),
    R(OK,   "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", .fr = FR_EOF, .set = F_CLOSE),       /* read until close */
    R(OK,   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", .method = "HEAD", .fr = FR_NONE),
    R(OK,   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .method = "HEAD", .fr = FR_NONE),
    R(OK,   "HTTP/1.1 200 OK\r\n\r\n", .method = "HEAD", .fr = FR_NONE, .clr = F_CLOSE),
    R(OK,   "HTTP/1.1 204 No Content\r\n\r\n", .status = 204, .fr = FR_NONE, .clr = F_CLOSE),
    R(OK,   "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", .fr = FR_NONE),
    R(OK,   "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", .fr = FR_NONE),
    R(OK,   "HTTP/1.1 100 Continue\r\n\r\n", .status = 100, .fr = FR_NONE, .clr = F_TUN),
    R(OK,   "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", .fr = FR_NONE),
    R(OK,   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", .fr = FR_NONE, .set = F_TUN | F_UPG),
    R(OK,   "HTTP/1.1 200 Connection established\r\n\r\n", .method = "CONNECT", .fr = FR_NONE, .set = F_TUN, .clr = F_CLOSE),
    R(OK,   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", .method = "CONNECT", .fr = FR_NONE, .set = F_TUN),
    R(OK,   "HTTP/1.1 407 Auth\r\nContent-Length: 5\r\n\r\n", .method = "CONNECT", .fr = FR_LENGTH, .clr = F_TUN),
    R(OK,   "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", .fr = FR_LENGTH, .set = F_CLOSE),
    R(OK,   "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n", .set = F_KA, .clr = F_CLOSE),
    R(OK,   "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n", .set = F_CLOSE),
    R(OK,   "HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", .status = 599),
    R(OK,   "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n", .status = 999),
    R(OK,   "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", CL(5)),
    R(EBAD, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),                   /* documented: 502, not EOF */
    R(ENOTIMPL, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
    R(EBAD, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
    R(EBAD, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
    R(EBAD, "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"),
    R(EBAD, "HTTP/1.1 304 OK\r\nContent-Length: x\r\n\r\n"),
    R(EBAD, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    R(EBAD, "HTTP/1.1 20 OK\r\n\r\n"),
    R(EBAD, "HTTP/1.1 2000 OK\r\n\r\n"),
    R(EBAD, "HTTP/1.1 abc OK\r\n\r\n"),
    R(EBAD, "HTTP/1.1 099 OK\r\n\r\n"),
    R(EBAD, "HTTP/1.1  200 OK\r\n\r\n"),
    R(EBAD, "HTTP/1.1 200OK\r\n\r\n"),
    R(EBAD, "HTTP/1.1\r\n\r\n"),
    R(EBAD, "HTTP/1.1 \r\n\r\n"),
    R(EBAD, "HTTP/1.1 200 OK\n\n"),                                              /* bare LF */
    R(EBAD, "HTTP/1.1 200 OK\r\nX: a\n\r\n"),
    R(EBAD, "HTTP/1.1 200 O\rK\r\n\r\n"),                                        /* bare CR */
    R(EBAD, "HTTP/1.1 200 O\0K\r\n\r\n"),
    R(EBAD, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),                            /* obs-fold */
    R(EBAD, "HTTP/1.1 200 OK\r\nX : a\r\n\r\n"),
    R(EBAD, "\r\nHTTP/1.1 200 OK\r\n\r\n"),                                      /* no leading CRLF here */
    R(EBAD, "ICY 200 OK\r\n\r\n"),
    R(EBAD, "HTTP/1.10 200 OK\r\n\r\n"),
    R(EVER, "HTTP/2.0 200 OK\r\n\r\n"),
    R(OK,   "HTTP/1.2 200 OK\r\n\r\n"),
    R(AGAIN, "HTTP/1.1 200 OK\r\n"),
    R(AGAIN, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r"),
};

static void small_limits(struct ebb_h1_limits *l)
{
    l->max_line = 32;
    l->max_head = 128;
    l->max_headers = 4;
}

static bool span_is(struct ebb_h1_span s, const char *want)
{
    return s.len == strlen(want) && (s.len == 0 || memcmp(s.p, want, s.len) == 0);
}

static int run_head(const struct head_case *c, bool response, const char *buf, size_t len,
                    struct ebb_h1_msg *m)
{
    struct ebb_h1_limits l;

    ebb_h1_limits_default(&l);
    if (c->small)
        small_limits(&l);
    if (response) {
        const char *meth = c->method ? c->method : "GET";
        return ebb_h1_parse_response(buf, len, &l, meth, strlen(meth), m);
    }
    return ebb_h1_parse_request(buf, len, &l, m);
}

/* Every span lies inside buf (or is the documented static "/"). */
static bool spans_inside(const struct ebb_h1_msg *m, const char *buf, int hlen)
{
    const struct ebb_h1_span *s[] = { &m->method, &m->target, &m->path, &m->authority, &m->reason };

    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        if (s[i]->len == 1 && s[i]->p[0] == '/' && s[i] == &m->path)
            continue;
        if (s[i]->p < buf || s[i]->p + s[i]->len > buf + hlen)
            return false;
    }
    for (size_t i = 0; i < m->nheaders; i++)
        if (m->headers[i].name.p < buf || m->headers[i].value.p + m->headers[i].value.len > buf + hlen)
            return false;
    return true;
}

static void check_head_table(const struct head_case *cases, size_t n, bool response)
{
    static struct ebb_h1_msg m;

    for (size_t i = 0; i < n; i++) {
        const struct head_case *c = &cases[i];
        /* a heap copy so ASan catches any read past len */
        char *buf = malloc(c->len ? c->len : 1);
        int rc, want = c->rc == OK ? (int)c->len : c->rc;

        memcpy(buf, c->raw, c->len);
        rc = run_head(c, response, buf, c->len, &m);
        if (rc != want)
            fprintf(stderr, "  %s row %zu: \"%.*s\"\n", response ? "resp" : "req", i,
                    (int)(c->len > 60 ? 60 : c->len), c->raw);
        T_EQ_INT(rc, want);
        if (rc >= 0 && rc == want) {
            T_CHECK(spans_inside(&m, buf, rc));
            if (c->fr)
                T_EQ_INT(m.framing, c->fr - 1);
            T_EQ_INT(m.flags & c->set, c->set);
            T_EQ_INT(m.flags & c->clr, 0);
            if (c->auth)
                T_CHECK(span_is(m.authority, c->auth));
            if (c->path)
                T_CHECK(span_is(m.path, c->path));
            if (c->cl1)
                T_CHECK(m.content_length == c->cl1 - 1);
            if (c->status)
                T_EQ_INT(m.status, c->status);
            if (rc != want || (c->auth && !span_is(m.authority, c->auth)))
                fprintf(stderr, "  row %zu\n", i);
        }
        /* A prefix is incomplete, or already the same error. */
        for (size_t k = 0; k < c->len; k++) {
            int prc = run_head(c, response, buf, k, &m);

            if (!(prc == EBB_H1_AGAIN || (prc == rc && rc < 0))) {
                fprintf(stderr, "  %s row %zu prefix %zu: %d (whole %d)\n",
                        response ? "resp" : "req", i, k, prc, rc);
                T_CHECK(0);
                break;
            }
        }
        free(buf);
    }
}

static void test_request_table(void)
{
    check_head_table(req_cases, sizeof(req_cases) / sizeof(req_cases[0]), false);
    printf("     %zu request rows\n", sizeof(req_cases) / sizeof(req_cases[0]));
}

static void test_response_table(void)
{
    check_head_table(resp_cases, sizeof(resp_cases) / sizeof(resp_cases[0]), true);
    printf("     %zu response rows\n", sizeof(resp_cases) / sizeof(resp_cases[0]));
}

static void test_error_status(void)
{
    T_EQ_INT(ebb_h1_error_status(EBB_H1_EBAD), 400);
    T_EQ_INT(ebb_h1_error_status(EBB_H1_ELINE_TOO_LONG), 414);
    T_EQ_INT(ebb_h1_error_status(EBB_H1_EHEAD_TOO_BIG), 431);
    T_EQ_INT(ebb_h1_error_status(EBB_H1_EVERSION), 505);
    T_EQ_INT(ebb_h1_error_status(EBB_H1_ENOTIMPL), 501);
    T_EQ_INT(ebb_h1_error_status(12), 0);
}

/* RFC 9110 §6.2: a later HTTP/1.x minor version is understood as the highest one known, 1.1
 * (its keep-alive default and its Host rule included). */
static void test_later_minor_is_1_1(void)
{
    static struct ebb_h1_msg m;
    const char req[] = "GET / HTTP/1.9\r\nHost: a\r\n\r\n";
    const char resp[] = "HTTP/1.2 204 No Content\r\n\r\n";

    T_EQ_INT(ebb_h1_parse_request(req, sizeof(req) - 1, NULL, &m), (int)sizeof(req) - 1);
    T_EQ_INT(m.minor, 1);
    T_CHECK(!(m.flags & EBB_H1_F_CONN_CLOSE));
    T_EQ_INT(ebb_h1_parse_response(resp, sizeof(resp) - 1, NULL, "GET", 3, &m),
             (int)sizeof(resp) - 1);
    T_EQ_INT(m.minor, 1);
}

/* Pipelining: the head length stops at the first message. */
static void test_pipelined_head(void)
{
    static struct ebb_h1_msg m;
    const char two[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    int rc = ebb_h1_parse_request(two, sizeof(two) - 1, NULL, &m);

    T_EQ_INT(rc, strstr(two, "abc") - two);
    T_EQ_INT(m.nheaders, 2);
    T_CHECK(span_is(m.method, "POST"));
    T_CHECK(span_is(m.target, "/"));
    T_CHECK(span_is(m.headers[1].name, "Content-Length"));
    T_CHECK(span_is(m.headers[1].value, "3"));
    rc = ebb_h1_parse_request(two + rc + 3, strlen(two + rc + 3), NULL, &m);
    T_EQ_INT(rc, (int)strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
}

/* Every byte value at every position of a 40-byte field value (the value is scanned
 * eight bytes at a time where it can be): HTAB, SP, VCHAR and obs-text are taken, every
 * other control byte and DEL are EBAD, and SP/HTAB at either end are not part of the value. */
static void test_field_value_bytes(void)
{
    static struct ebb_h1_msg m;
    char raw[128], val[40];
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX-V: ";
    size_t pl = strlen(pre);

    for (size_t at = 0; at < sizeof(val); at++) {
        for (int b = 0; b < 256; b++) {
            memset(val, 'v', sizeof(val));
            val[at] = (char)b;
            memcpy(raw, pre, pl);
            memcpy(raw + pl, val, sizeof(val));
            memcpy(raw + pl + sizeof(val), "\r\n\r\n", 4);
            size_t n = pl + sizeof(val) + 4;
            bool ok = b == '\t' || (b >= 0x20 && b != 0x7f);
            bool trimmed = (b == ' ' || b == '\t') && (at == 0 || at == sizeof(val) - 1);
            int rc = ebb_h1_parse_request(raw, n, NULL, &m);

            if (rc != (ok ? (int)n : EBAD)) {
                T_EQ_INT(rc, ok ? (int)n : EBAD);
                fprintf(stderr, "    byte 0x%02x at %zu\n", (unsigned)b, at);
                return;
            }
            if (ok) {
                T_EQ_INT(m.headers[1].value.len, trimmed ? sizeof(val) - 1 : sizeof(val));
                T_CHECK(m.headers[1].value.p == raw + pl + (trimmed && at == 0));
            }
        }
    }
    /* an HTAB inside the value, then another byte after it: the scan goes on past the tab */
    static const unsigned char after[] = { '\t', 'x', 0x80, 0xff, 0x00, 0x0b, 0x1f, 0x7f };
    for (size_t tab = 1; tab < sizeof(val) - 2; tab++) {
        for (size_t at = tab + 1; at < sizeof(val) - 1; at++) {
            for (size_t k = 0; k < sizeof(after); k++) {
                memset(val, 'v', sizeof(val));
                val[tab] = '\t';
                val[at] = (char)after[k];
                memcpy(raw, pre, pl);
                memcpy(raw + pl, val, sizeof(val));
                memcpy(raw + pl + sizeof(val), "\r\n\r\n", 4);
                size_t n = pl + sizeof(val) + 4;
                bool ok = k < 4;
                int rc = ebb_h1_parse_request(raw, n, NULL, &m);

                if (rc != (ok ? (int)n : EBAD)) {
                    T_EQ_INT(rc, ok ? (int)n : EBAD);
                    fprintf(stderr, "    tab at %zu, byte 0x%02x at %zu\n", tab,
                            (unsigned)after[k], at);
                    return;
                }
                if (ok)
                    T_EQ_INT(m.headers[1].value.len, sizeof(val));
            }
        }
    }
}

/* Limits at their defaults, with a NULL limits pointer and a zeroed one. */
static void test_default_limits(void)
{
    static struct ebb_h1_msg m;
    static char buf[70000];
    struct ebb_h1_limits zero = { 0, 0, 0 };
    size_t n;
    int rc;

    n = (size_t)snprintf(buf, sizeof(buf), "GET /");
    memset(buf + n, 'a', 8192 - n);
    T_EQ_INT(ebb_h1_parse_request(buf, 8192, NULL, &m), EBB_H1_AGAIN);
    T_EQ_INT(ebb_h1_parse_request(buf, 8193, &zero, &m), EBB_H1_ELINE_TOO_LONG);

    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 99; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
    memcpy(buf + n, "\r\n", 2);
    rc = ebb_h1_parse_request(buf, n + 2, NULL, &m);
    T_EQ_INT(rc, (int)(n + 2));
    T_EQ_INT(m.nheaders, 100);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-last: v\r\n");
    T_EQ_INT(ebb_h1_parse_request(buf, n, NULL, &m), EBB_H1_EHEAD_TOO_BIG);

    /* a slow client sending one huge field never makes us wait past the limit */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'b', sizeof(buf) - n);
    T_EQ_INT(ebb_h1_parse_request(buf, 61439, NULL, &m), EBB_H1_AGAIN);
    T_EQ_INT(ebb_h1_parse_request(buf, 61440, NULL, &m), EBB_H1_EHEAD_TOO_BIG);
    T_EQ_INT(ebb_h1_parse_request(buf, sizeof(buf), NULL, &m), EBB_H1_EHEAD_TOO_BIG);

    /* max_headers is capped at the array size */
    struct ebb_h1_limits big = { 0, 1 << 20, 100000 };
    static char hb[20000];
    n = (size_t)snprintf(hb, sizeof(hb), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < EBB_H1_MAX_HEADERS_CAP; i++)
        n += (size_t)snprintf(hb + n, sizeof(hb) - n, "X: v\r\n");
    memcpy(hb + n, "\r\n", 2);
    T_EQ_INT(ebb_h1_parse_request(hb, n + 2, &big, &m), EBB_H1_EHEAD_TOO_BIG);
}

static void test_find_and_hop_by_hop(void)
{
    static struct ebb_h1_msg m;
    const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Foo, close\r\n"
                       "connection: x-bar\r\nX-Foo: 1\r\nX-Baz: 2\r\nKeep-Alive: 5\r\n\r\n";
    struct ebb_h1_span s;
    const struct ebb_h1_header *h;

    T_EQ_INT(ebb_h1_parse_request(req, sizeof(req) - 1, NULL, &m), (int)sizeof(req) - 1);
    h = ebb_h1_find(&m, "x-foo");
    T_CHECK(h && span_is(h->value, "1"));
    h = ebb_h1_find(&m, "CONNECTION");
    T_CHECK(h && span_is(h->value, "X-Foo, close"));
    T_CHECK(ebb_h1_find(&m, "x-none") == NULL);
    T_CHECK(ebb_h1_find(&m, "x-fo") == NULL);

#define HOP(name_, want_) do {                                  \
        s.p = name_; s.len = strlen(name_);                     \
        T_EQ_INT(ebb_h1_is_hop_by_hop(&m, &s), want_);          \
    } while (0)
    HOP("Connection", 1);
    HOP("keep-alive", 1);
    HOP("Proxy-Connection", 1);
    HOP("TE", 1);
    HOP("Transfer-Encoding", 1);
    HOP("UPGRADE", 1);
    HOP("x-foo", 1);        /* named by a Connection header */
    HOP("X-Bar", 1);        /* named by the second Connection header */
    HOP("X-Baz", 0);
    HOP("Host", 0);
    HOP("Content-Length", 0);
    HOP("Trailer", 0);
    HOP("close", 1);
    HOP("X-Fo", 0);
    s.p = "Upgrade"; s.len = 7;
    T_CHECK(ebb_h1_is_hop_by_hop(NULL, &s));
    s.p = "X-Foo"; s.len = 5;
    T_CHECK(!ebb_h1_is_hop_by_hop(NULL, &s));
#undef HOP
}

/* --- body decoder --- */

struct body_case {
    int         framing;
    uint64_t    cl;
    const char *raw;
    size_t      len;
    int         rc;          /* final result: EBB_H1_BODY_DONE, EBB_H1_EBAD or EBB_H1_AGAIN */
    const char *payload;     /* NULL = unchecked */
    const char *trailer;     /* NULL = "" */
    size_t      left;        /* bytes DONE leaves unconsumed (the next message) */
    size_t      err_at;      /* EBAD: offset of the bad byte */
};

#define BC(rc_, raw_, ...) { .framing = EBB_H1_BODY_CHUNKED, .raw = raw_, .len = sizeof(raw_) - 1, .rc = rc_, __VA_ARGS__ }
#define BL(cl_, rc_, raw_, ...) { .framing = EBB_H1_BODY_LENGTH, .cl = cl_, .raw = raw_, .len = sizeof(raw_) - 1, .rc = rc_, __VA_ARGS__ }
#define DONE EBB_H1_BODY_DONE

static const struct body_case body_cases[] = {
    BC(DONE, "5\r\nhello\r\n0\r\n\r\n", .payload = "hello"),
    BC(DONE, "0\r\n\r\n", .payload = ""),
    BC(DONE, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", .payload = "hello world"),
    BC(DONE, "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", .payload = "01234567890123456789"),
    BC(DONE, "0005\r\nhello\r\n000\r\n\r\n", .payload = "hello"),
    BC(DONE, "1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", .payload = "\r\n"),            /* CR/LF inside data */
    BC(DONE, "5;a=b\r\nhello\r\n0;last\r\n\r\n", .payload = "hello"),         /* extensions */
    BC(DONE, "5;a;b=c;d=\"q \\\" ;x\"\r\nhello\r\n0\r\n\r\n", .payload = "hello"),
    BC(DONE, "5 ;a = b\t; c\r\nhello\r\n0\r\n\r\n", .payload = "hello"),      /* BWS */
    BC(DONE, "5;a=\"\"\r\nhello\r\n0\r\n\r\n", .payload = "hello"),
    BC(DONE, "0\r\nX-T: 1\r\nY:2 \r\n\r\n", .payload = "", .trailer = "X-T: 1\r\nY:2 \r\n"),
    BC(DONE, "3\r\nabc\r\n0\r\nChecksum: \xff\r\n\r\n", .payload = "abc", .trailer = "Checksum: \xff\r\n"),
    BC(DONE, "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", .payload = "hello", .left = 16),  /* pipelined */
    BC(DONE, "000000000000000A\r\n0123456789\r\n0\r\n\r\n", .payload = "0123456789"),  /* 16 digits */
    BC(AGAIN, "7fffffffffffffff\r\nabc", .payload = "abc"),                  /* 2^63-1 */
    BC(AGAIN, "5\r\nhel", .payload = "hel"),
    BC(AGAIN, "5\r\nhello\r\n0\r\nX: 1\r\n", .payload = "hello", .trailer = "X: 1\r\n"),
    BC(EBAD, "00000000000000001\r\nx\r\n0\r\n\r\n"),                         /* 17 digits */
    BC(EBAD, "8000000000000000\r\n"),                                          /* 2^63 */
    BC(EBAD, "ffffffffffffffff\r\n"),
    BC(EBAD, "1ffffffffffffffff\r\n"),
    BC(EBAD, "5\nhello\r\n0\r\n\r\n", .err_at = 1),                          /* bare LF in framing */
    BC(EBAD, "5\r\nhello\n0\r\n\r\n", .payload = "hello"),
    BC(EBAD, "5\r\nhello\r\n0\n\r\n"),
    BC(EBAD, "5\r\nhello\r\n0\r\n\n"),
    BC(EBAD, "5;a=b\nhello\r\n0\r\n\r\n"),
    BC(EBAD, "5\rhello\r\n0\r\n\r\n"),                                         /* bare CR */
    BC(EBAD, "5\r\nhello\r0\r\n\r\n"),
    BC(EBAD, "5\r\nhelloX\r\n0\r\n\r\n"),                                      /* data longer than size */
    BC(EBAD, "\r\n"),                                                          /* no digits */
    BC(EBAD, ";a\r\nhello\r\n"),
    BC(EBAD, "g\r\n"),
    BC(EBAD, "-1\r\n"),
    BC(EBAD, "+5\r\n"),
    BC(EBAD, " 5\r\n"),
    BC(EBAD, "0x5\r\n"),
    BC(EBAD, "5 \r\nhello\r\n0\r\n\r\n"),                                      /* trailing BWS, no ';' */
    BC(EBAD, "5 5\r\n"),
    BC(EBAD, "5;\r\n"),                                                        /* bad extensions */
    BC(EBAD, "5;=b\r\n"),
    BC(EBAD, "5;a=\r\n"),
    BC(EBAD, "5;a b\r\n"),
    BC(EBAD, "5;a=\"x\r\n"),
    BC(EBAD, "5;a=\"x\"y\r\n"),
    BC(EBAD, "5;a=b c\r\n"),
    BC(EBAD, "5;a=\"\0\"\r\n"),
    BC(EBAD, "5;a\0\r\n"),
    BC(EBAD, "0\r\nX: 1\r\n 2\r\n\r\n"),                                      /* trailer obs-fold */
    BC(EBAD, "0\r\nX : 1\r\n\r\n"),                                           /* trailer ws before colon */
    BC(EBAD, "0\r\nX: \0\r\n\r\n"),                                           /* trailer NUL */
    BC(EBAD, "0\r\nX: 1\rY\r\n\r\n"),                                         /* trailer bare CR */
    BC(EBAD, "0\r\nX: 1\n\r\n"),                                              /* trailer bare LF */
    BC(EBAD, "0\r\nX: 1\r\n\n"),
    BC(EBAD, "0\r\n: 1\r\n\r\n"),
    BC(EBAD, "0\r\nX(: 1\r\n\r\n"),
    BC(EBAD, "0\r\nX\r\n\r\n"),
    BL(5, DONE, "hello", .payload = "hello"),
    BL(5, DONE, "helloGET / HTTP/1.1\r\n", .payload = "hello", .left = 16),
    BL(5, AGAIN, "hel", .payload = "hel"),
    BL(0, DONE, "", .payload = ""),
    BL(0, DONE, "abc", .payload = "", .left = 3),
    { .framing = EBB_H1_BODY_EOF, .raw = "abc\r\n0\r\n\r\n", .len = 10, .rc = AGAIN, .payload = "abc\r\n0\r\n\r\n" },
    { .framing = EBB_H1_BODY_NONE, .raw = "abc", .len = 3, .rc = DONE, .payload = "", .left = 3 },
};

struct dec_out {
    int    rc;
    char   payload[4096];
    size_t plen;
    char   trailer[4096];
    size_t tlen;
    size_t consumed;
    bool   sane;          /* every call kept consumed and spans inside the input */
};

static void dec_start(struct ebb_h1_body *b, const struct body_case *c, struct dec_out *o)
{
    static struct ebb_h1_msg m;

    m.framing = (enum ebb_h1_framing)c->framing;
    m.content_length = c->cl;
    ebb_h1_body_init(b, &m);
    memset(o, 0, sizeof(*o));
    o->rc = EBB_H1_AGAIN;
    o->sane = true;
}

/* Feeds one piece the way a caller does.  Returns false once finished. */
static bool dec_feed(struct ebb_h1_body *b, const char *p, size_t n, struct dec_out *o)
{
    size_t off = 0;

    for (;;) {
        const char *d;
        size_t used, dl;
        int rc = ebb_h1_body_parse(b, p + off, n - off, &used, &d, &dl);

        if (used > n - off)
            o->sane = false;
        if (rc == EBB_H1_BODY_DATA || rc == EBB_H1_BODY_TRAILER) {
            if (d < p + off || d + dl > p + off + used)
                o->sane = false;
            if (rc == EBB_H1_BODY_DATA && o->plen + dl <= sizeof(o->payload)) {
                memcpy(o->payload + o->plen, d, dl);
                o->plen += dl;
            } else if (rc == EBB_H1_BODY_TRAILER && o->tlen + dl <= sizeof(o->trailer)) {
                memcpy(o->trailer + o->tlen, d, dl);
                o->tlen += dl;
            }
            if (used == 0 && dl == 0)
                o->sane = false;    /* no progress */
        }
        off += used;
        o->consumed += used;
        if (rc == EBB_H1_BODY_DONE || rc == EBB_H1_EBAD) {
            o->rc = rc;
            return false;
        }
        if (rc == EBB_H1_AGAIN) {
            if (off != n)
                o->sane = false;
            o->rc = rc;
            return true;
        }
    }
}

static bool dec_same(const struct dec_out *a, const struct dec_out *b)
{
    return a->rc == b->rc && a->plen == b->plen && a->tlen == b->tlen &&
           a->consumed == b->consumed && memcmp(a->payload, b->payload, a->plen) == 0 &&
           memcmp(a->trailer, b->trailer, a->tlen) == 0 && a->sane && b->sane;
}

static void test_body_table(void)
{
    size_t n = sizeof(body_cases) / sizeof(body_cases[0]);

    for (size_t i = 0; i < n; i++) {
        const struct body_case *c = &body_cases[i];
        struct ebb_h1_body b;
        struct dec_out o;
        char *buf = malloc(c->len ? c->len : 1);
        int before = t_failed_checks;

        memcpy(buf, c->raw, c->len);
        dec_start(&b, c, &o);
        dec_feed(&b, buf, c->len, &o);
        T_EQ_INT(o.rc, c->rc);
        T_CHECK(o.sane);
        if (c->payload) {
            T_EQ_INT(o.plen, strlen(c->payload));
            T_CHECK(memcmp(o.payload, c->payload, o.plen) == 0);
        }
        /* on EBAD, the good trailer lines before the bad byte may have been
         * reported already: callers hold trailers until DONE */
        if (c->trailer || c->rc != EBB_H1_EBAD) {
            T_EQ_INT(o.tlen, c->trailer ? strlen(c->trailer) : 0);
            T_CHECK(memcmp(o.trailer, c->trailer ? c->trailer : "", o.tlen) == 0);
        }
        if (c->rc == DONE || c->rc == EBB_H1_AGAIN)
            T_EQ_INT(o.consumed, c->len - c->left);
        if (c->err_at)
            T_EQ_INT(o.consumed, c->err_at);
        if (c->rc == DONE)
            T_CHECK(ebb_h1_body_done(&b));
        if (c->rc == EBB_H1_EBAD) {
            /* errors are sticky */
            size_t used;
            const char *d;
            size_t dl;
            T_EQ_INT(ebb_h1_body_parse(&b, "0\r\n\r\n", 5, &used, &d, &dl), EBB_H1_EBAD);
        }
        if (t_failed_checks != before)
            fprintf(stderr, "  body row %zu: \"%.*s\" rc %d payload \"%.*s\"\n", i,
                    (int)c->len, c->raw, o.rc, (int)o.plen, o.payload);
        free(buf);
    }
    printf("     %zu body rows\n", n);
}

/* The same input split at every position, and one byte at a time, gives
 * the same payload, trailers, result and consumed count. */
static void test_body_splits(void)
{
    size_t n = sizeof(body_cases) / sizeof(body_cases[0]);

    for (size_t i = 0; i < n; i++) {
        const struct body_case *c = &body_cases[i];
        struct ebb_h1_body b;
        struct dec_out whole, part;

        dec_start(&b, c, &whole);
        dec_feed(&b, c->raw, c->len, &whole);

        for (size_t cut = 0; cut <= c->len; cut++) {
            char *p1 = malloc(cut ? cut : 1), *p2 = malloc(c->len - cut ? c->len - cut : 1);

            memcpy(p1, c->raw, cut);
            memcpy(p2, c->raw + cut, c->len - cut);
            dec_start(&b, c, &part);
            if (dec_feed(&b, p1, cut, &part))
                dec_feed(&b, p2, c->len - cut, &part);
            if (!dec_same(&whole, &part)) {
                fprintf(stderr, "  body row %zu split at %zu differs\n", i, cut);
                T_CHECK(0);
            }
            free(p1);
            free(p2);
        }

        dec_start(&b, c, &part);
        if (c->len == 0)
            dec_feed(&b, c->raw, 0, &part);
        for (size_t k = 0; k < c->len; k++) {
            char *one = malloc(1);

            *one = c->raw[k];
            bool more = dec_feed(&b, one, 1, &part);
            free(one);
            if (!more)
                break;
        }
        if (!dec_same(&whole, &part)) {
            fprintf(stderr, "  body row %zu byte-at-a-time differs\n", i);
            T_CHECK(0);
        }
    }
}

static void test_body_limits(void)
{
    static const struct body_case ext = { .framing = EBB_H1_BODY_CHUNKED };
    static char buf[10000];
    struct ebb_h1_body b;
    struct dec_out o;
    size_t n;

    /* 4096 bytes of extension on one size line is fine, 4097 is not */
    memcpy(buf, "1;a=", 4);
    memset(buf + 4, 'x', 4096 - 3);
    n = 1 + 4096;
    memcpy(buf + n, "\r\nZ\r\n0\r\n\r\n", 10);
    dec_start(&b, &ext, &o);
    dec_feed(&b, buf, n + 10, &o);
    T_EQ_INT(o.rc, EBB_H1_BODY_DONE);
    T_EQ_INT(o.plen, 1);

    memcpy(buf, "1;a=", 4);
    memset(buf + 4, 'x', 4097 - 3);
    n = 1 + 4097;
    memcpy(buf + n, "\r\nZ\r\n0\r\n\r\n", 10);
    dec_start(&b, &ext, &o);
    dec_feed(&b, buf, n + 10, &o);
    T_EQ_INT(o.rc, EBB_H1_EBAD);

    /* the limit is per size line: many chunks with extensions are fine */
    n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "1;chunk-signature=%064d\r\nZ\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "0\r\n\r\n");
    dec_start(&b, &ext, &o);
    dec_feed(&b, buf, n, &o);
    T_EQ_INT(o.rc, EBB_H1_BODY_DONE);
    T_EQ_INT(o.plen, 100);

    /* trailer section bounded by max_trailer */
    n = (size_t)snprintf(buf, sizeof(buf), "0\r\nX: ");
    memset(buf + n, 'v', 100);
    n += 100;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n\r\n");   /* trailer section = n - 3 bytes */
    dec_start(&b, &ext, &o);
    b.max_trailer = n - 3;
    dec_feed(&b, buf, n, &o);
    T_EQ_INT(o.rc, EBB_H1_BODY_DONE);
    dec_start(&b, &ext, &o);
    b.max_trailer = n - 4;
    dec_feed(&b, buf, n, &o);
    T_EQ_INT(o.rc, EBB_H1_EBAD);

    /* default ceiling: 61440 */
    static char big[70000];
    n = (size_t)snprintf(big, sizeof(big), "0\r\n");
    while (n < 65000)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Trailer-Field: 0123456789\r\n");
    dec_start(&b, &ext, &o);
    dec_feed(&b, big, n, &o);
    T_EQ_INT(o.rc, EBB_H1_EBAD);

    /* length framing up to 2^63-1 counts down without overflow */
    static const struct body_case huge = { .framing = EBB_H1_BODY_LENGTH, .cl = 9223372036854775807ULL };
    dec_start(&b, &huge, &o);
    dec_feed(&b, "abc", 3, &o);
    T_EQ_INT(o.rc, EBB_H1_AGAIN);
    T_EQ_INT(b.remaining, 9223372036854775807ULL - 3);
}

/* A whole request, head then body, as the proxy would read it. */
static void test_head_then_body(void)
{
    static struct ebb_h1_msg m;
    const char req[] = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "4\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct ebb_h1_body b;
    struct dec_out o;
    static const struct body_case c = { .framing = EBB_H1_BODY_CHUNKED };
    int hlen = ebb_h1_parse_request(req, sizeof(req) - 1, NULL, &m);

    T_CHECK(hlen > 0);
    T_EQ_INT(m.framing, EBB_H1_BODY_CHUNKED);
    dec_start(&b, &c, &o);
    ebb_h1_body_init(&b, &m);
    dec_feed(&b, req + hlen, sizeof(req) - 1 - (size_t)hlen, &o);
    T_EQ_INT(o.rc, EBB_H1_BODY_DONE);
    T_EQ_INT(o.plen, 9);
    T_CHECK(memcmp(o.payload, "Wikipedia", 9) == 0);
    T_EQ_INT(o.tlen, strlen("Expires: never\r\n"));
    T_CHECK(strcmp(req + hlen + o.consumed, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
}

int main(void)
{
    T_RUN(test_request_table);
    T_RUN(test_response_table);
    T_RUN(test_error_status);
    T_RUN(test_later_minor_is_1_1);
    T_RUN(test_pipelined_head);
    T_RUN(test_field_value_bytes);
    T_RUN(test_default_limits);
    T_RUN(test_find_and_hop_by_hop);
    T_RUN(test_body_table);
    T_RUN(test_body_splits);
    T_RUN(test_body_limits);
    T_RUN(test_head_then_body);
    T_DONE();
}

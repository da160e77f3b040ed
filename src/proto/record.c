/*
 * record.c - an exchange's record and the other pure pieces of stream.h:
 * the request line kept for the log, the status counted, trailers kept for
 * a later writer, a local answer's text.  No I/O, no state but the record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/core.h"
#include "ebb/http.h"
#include "ebb/stats.h"
#include "ebb/stream.h"

static void str_copy(char *dst, size_t cap, struct ebb_str s)
{
    size_t n = EBB_MIN(s.len, cap - 1);
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
}

void ebb_xrec_free(struct ebb_xrec *x)
{
    free(x->strs);
    *x = EBB_XREC_INIT;
}

void ebb_xrec_begin(struct ebb_xrec *x, uint64_t now_ms, struct ebb_str method,
                    struct ebb_str path, struct ebb_str authority)
{
    size_t pl = EBB_MIN(path.len, (size_t)511), al = EBB_MIN(authority.len, (size_t)255);
    size_t fixed = EBB_XREC_METHOD + EBB_XREC_RID + EBB_XREC_ADDR;

    x->start_ms = now_ms;
    free(x->strs);
    x->strs = malloc(fixed + pl + al + 2);
    if (!x->strs) {   /* the record goes without them: the exchange does not fail for a log line */
        x->method = x->path = x->authority = "";
        x->request_id = x->up_addr = NULL;
        return;
    }
    char *p = x->strs;
    str_copy(p, EBB_XREC_METHOD, method);
    x->method = p;
    x->request_id = p += EBB_XREC_METHOD;
    x->request_id[0] = '\0';
    x->up_addr = p += EBB_XREC_RID;
    x->up_addr[0] = '\0';
    p += EBB_XREC_ADDR;
    str_copy(p, pl + 1, path);
    x->path = p;
    str_copy(p + pl + 1, al + 1, authority);
    x->authority = p + pl + 1;
}

void ebb_xrec_upstream(struct ebb_xrec *x, const char *addr)
{
    if (addr && x->up_addr)
        ebb_strcpy_trunc(x->up_addr, EBB_XREC_ADDR, addr);
}

void ebb_xrec_status(struct ebb_xrec *x, struct ebb_listener_stats *st, int status)
{
    x->status = status;
    if (status >= 100 && status < 600)
        ebb_stat_inc(st->rq_xx[status / 100]);
}

int ebb_trailers_keep(struct ebb_buf *b, const struct ebb_hdr *t, size_t n)
{
    ebb_buf_reset(b);
    b->max = 64 * 1024;
    /* too large: truncated, then dropped by the writer */
    return ebb_hdrs_write_h1(b, t, n) == EBB_ENOMEM ? EBB_ENOMEM : 0;
}

/* --- local answers --- */

size_t ebb_xch_format(char *out, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(out, cap, fmt, ap);
    if (n < 0)
        return 0;
    return (size_t)n >= cap ? cap - 1 : (size_t)n;
}

void ebb_answer(struct ebb_answer *a, int status, unsigned rf, const char *fmt, ...)
{
    va_list ap;

    a->status = status;
    a->rf = rf;
    a->close = false;
    va_start(ap, fmt);
    a->len = ebb_xch_format(a->body, sizeof(a->body), fmt, ap);
    va_end(ap);
}

/*
 * h1_client.c - the HTTP/1.1 client half of an exchange (see h1_client.h).
 */
#include <string.h>
#include <strings.h>

#include "ebb/buf.h"
#include "ebb/core.h"
#include "ebb/exchange.h"
#include "ebb/h1_client.h"
#include "ebb/upstream.h"

size_t ebb_h1_fields(const struct ebb_h1_msg *m, struct ebb_hdr *out, bool keep_length)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct ebb_h1_header *hd = &m->headers[i];
        if (ebb_h1_is_hop_by_hop(m, &hd->name))
            continue;
        if (!keep_length && hd->name.len == 14 &&
            strncasecmp(hd->name.p, "content-length", 14) == 0)
            continue;
        out[n++] = (struct ebb_hdr){ { hd->name.p, hd->name.len }, { hd->value.p, hd->value.len } };
    }
    return n;
}

void ebb_resp_of_h1(const struct ebb_h1_msg *m, struct ebb_resp *r)
{
    static __thread struct ebb_hdr hdrs[EBB_H1_MAX_HEADERS_CAP];
    /* the length of a body that follows is re-sent from content_length */
    size_t n = ebb_h1_fields(m, hdrs, m->framing == EBB_H1_BODY_NONE);

    *r = (struct ebb_resp){
        .status = m->status,
        .reason = { m->reason.p, m->reason.len },
        .hdrs = hdrs,
        .nhdrs = n,
        .content_length = m->framing == EBB_H1_BODY_LENGTH ? (int64_t)m->content_length : -1,
        .body = m->framing != EBB_H1_BODY_NONE &&
                !(m->framing == EBB_H1_BODY_LENGTH && m->content_length == 0),
    };
    if (m->status == 101) {
        const struct ebb_h1_header *up = ebb_h1_find(m, "upgrade");
        if (up)
            r->upgrade = (struct ebb_str){ up->value.p, up->value.len };
    }
}

void ebb_h1c_read(struct ebb_upconn *u)
{
    for (int i = 0; i < 4; i++) {
        ssize_t n = ebb_upstream_read(u);   /* sets eof (and reset) */
        if (n > 0 && ebb_buf_tailroom(&u->rbuf) && ebb_buf_room(&u->rbuf))
            break;   /* short read: the socket is drained, skip the EAGAIN round trip */
        if (n <= 0)
            break;
    }
}

void ebb_h1c_flush(struct ebb_upconn *u)
{
    if (ebb_upstream_flush(u) < 0) {
        u->wr_failed = true;
        ebb_buf_reset(&u->wbuf);
    }
}

int ebb_h1c_put_body(struct ebb_buf *b, bool chunked, const char *data, size_t n)
{
    int rc = 0;
    if (chunked)
        rc |= ebb_buf_appendf(b, "%zx\r\n", n);
    rc |= ebb_buf_append(b, data, n);
    if (chunked)
        rc |= ebb_buf_append(b, "\r\n", 2);
    return rc;
}

/* One decoded piece into the sink. */
static void sink_put(struct ebb_h1c_sink *k, int rc, const char *data, size_t dlen)
{
    if (rc == EBB_H1_BODY_DATA && dlen) {
        k->bytes += dlen;
        ebb_h1c_put_body(k->out, k->chunk_out, data, dlen);
    } else if (rc == EBB_H1_BODY_TRAILER) {
        if (k->chunk_out) {
            if (!k->last_chunk)
                ebb_buf_append(k->out, "0\r\n", 3);
            k->last_chunk = true;
            ebb_buf_append(k->out, data, dlen);
        } else if (k->trl) {
            k->trl->max = 64 * 1024;
            ebb_buf_append(k->trl, data, dlen);   /* too large: truncated, then dropped */
        }
    } else if (rc == EBB_H1_BODY_DONE && k->chunk_out) {
        if (!k->last_chunk)
            ebb_buf_append(k->out, "0\r\n", 3);
        ebb_buf_append(k->out, "\r\n", 2);
    }
}

int ebb_h1c_decode_body(struct ebb_h1_body *b, enum ebb_h1_framing in, struct ebb_upconn *u,
                        struct ebb_h1c_sink *k, bool *done)
{
    size_t reserve = k->chunk_out ? 32 : 0;   /* room for the chunk framing */
    int progress = 0;

    while (!*done && (ebb_buf_len(&u->rbuf) || ebb_h1_body_done(b)) &&
           ebb_buf_room(k->out) > reserve * 2) {
        size_t len = EBB_MIN(ebb_buf_len(&u->rbuf), ebb_buf_room(k->out) - reserve);
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        int rc = ebb_h1_body_parse(b, ebb_buf_start(&u->rbuf), len, &consumed, &data, &dlen);
        if (rc == EBB_H1_EBAD)
            return EBB_H1_EBAD;
        sink_put(k, rc, data, dlen);
        if (rc == EBB_H1_BODY_DONE)
            *done = true;
        ebb_buf_consume(&u->rbuf, consumed);
        progress = 1;
        if (rc == EBB_H1_AGAIN)
            break;
    }
    /* a close-delimited body ends with the upstream's FIN (a reset truncates it) */
    if (!*done && in == EBB_H1_BODY_EOF && u->eof && !u->reset && !ebb_buf_len(&u->rbuf)) {
        if (k->chunk_out)
            ebb_buf_append(k->out, "0\r\n\r\n", 5);
        *done = true;
        progress = 1;
    }
    return progress;
}

bool ebb_h1c_may_retry(const struct ebb_upconn *u, bool resp_started, bool has_body,
                       int retries, const char *method)
{
    return !resp_started && u->reused && !has_body && retries == 0 &&
           ebb_method_idempotent(method);
}

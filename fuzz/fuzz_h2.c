/*
 * fuzz_h2.c - libFuzzer driver for what a downstream HTTP/2 client sends,
 * through ebb's real codecs: the input is the client's bytes on a
 * connection of an http listener (a socketpair handed to the listener as
 * accept hands it a socket, fuzz/harness.h), so the h1 codec sees the
 * preface and gives the connection to the h2 codec (src/proto/h2.c), whose
 * streams go through the router and the HTTP/1.1 upstream client to a
 * scripted upstream on loopback that answers every request head.  The
 * worker's loop runs until idle between slices; then the client's EOF,
 * a worker-exit close of everything, and the runtime must be empty again.
 *
 * Input: byte 0 holds flags, byte 1 the slice size, the rest is the
 * client's bytes.
 *   bit 0     prepend the client connection preface; without it the bytes are
 *             what the h1 codec makes of them: HTTP/1.1 exchanges (each one's state
 *             allocated at its request and freed at its end), or the h2c takeover
 *   bit 1     the small-limits server (2 streams, 512-byte heads, 8 fields,
 *             64-byte bodies, 4 KiB buffers) instead of the defaults
 *   bits 2-4  the upstream's answer (fz_answers below)
 *   bit 5     the listener starts draining after the first half
 *   byte 1    0: all at once; 1-15: that many bytes per round; else 16x
 * Invariants: a client that sent the preface gets SETTINGS first (RFC 9113
 * §3.4); ebb goes idle (no busy loop); at the end no connection, stream or
 * upstream connection is left and every gauge is 0 (harness.h);
 * LeakSanitizer for memory.
 *
 *   make build/fuzz/fuzz_h2
 *   build/fuzz/fuzz_h2 -max_total_time=60 /tmp/corpus fuzz/corpus/h2
 */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The scripted upstream's answers, one per request head, each on its own
 * connection (connection: close, then FIN). */
static const char *const fz_answers[8] = {
    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-t\r\nconnection: close\r\n\r\n"
        "2\r\nok\r\n0\r\nx-t: 1\r\ngrpc-status: 0\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
    "HTTP/1.1 200 OK\r\nx-a: b\r\n\r\nclose-delimited body",
    "",                        /* FIN without an answer: 502/503 */
    NULL,                      /* no answer at all: the stream waits until the end */
    "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
    NULL,                      /* a 200 with a 100 KB body (flow control): fz_big */
};

#define FZ_BIG_BODY 100000
static char *fz_big;
static size_t fz_big_len;

static const char fz_yaml_default[] =
    "concurrency: 1\n"
    "access_log: /dev/null\n"
    "listeners:\n"
    "  - { name: in, address: 127.0.0.1, port: 1, direction: inbound, protocol: http, cluster: app }\n"
    "clusters:\n"
    "  - { name: app, endpoints: [\"127.0.0.1:1\"], protocol: http1 }\n";

static const char fz_yaml_small[] =
    "concurrency: 1\n"
    "access_log: /dev/null\n"
    "listeners:\n"
    "  - { name: in, address: 127.0.0.1, port: 1, direction: inbound, protocol: http, cluster: app }\n"
    "clusters:\n"
    "  - { name: app, endpoints: [\"127.0.0.1:1\"], protocol: http1 }\n"
    "limits:\n"
    "  h2_max_concurrent_streams: 2\n"
    "  max_request_headers: 512\n"
    "  max_header_count: 8\n"
    "  max_request_body: 64\n"
    "  buffer_size: 4096\n";

static struct fz *fz_env(bool small)
{
    struct fz *z = fz_env_of(small, fz_yaml_default, fz_yaml_small);

    if (!fz_big) {
        static const char head[] = "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n"
                                   "connection: close\r\n\r\n";
        fz_big_len = sizeof(head) - 1 + FZ_BIG_BODY;
        fz_big = malloc(fz_big_len);
        CHECK(fz_big != NULL);
        memcpy(fz_big, head, sizeof(head) - 1);
        memset(fz_big + sizeof(head) - 1, 'b', FZ_BIG_BODY);
    }
    return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[EBB_H2_PREFACE_LEN + 65536];

    if (size < 2 || size - 2 > 65536)
        return 0;
    uint8_t flags = data[0], sl = data[1];
    struct fz *z = fz_env(flags & 2);
    size_t n = 0;

    if (flags & 1) {
        memcpy(buf, EBB_H2_PREFACE, EBB_H2_PREFACE_LEN);
        n = EBB_H2_PREFACE_LEN;
    }
    memcpy(buf + n, data + 2, size - 2);
    n += size - 2;

    fz_begin(z);
    unsigned ans = (flags >> 2) & 7;
    if (ans == 7) {
        z->uscript.p = (const uint8_t *)fz_big;
        z->uscript.len = fz_big_len;
    } else if (fz_answers[ans]) {
        z->uscript.p = (const uint8_t *)fz_answers[ans];
        z->uscript.len = strlen(fz_answers[ans]);
    }   /* else an empty script without FIN: the upstream never answers */
    z->up_wait_head = true;
    z->up_fin = ans != 5;
    size_t slice = sl == 0 ? 0 : sl < 16 ? sl : (size_t)sl << 4;
    z->cin = (struct fz_stream){ .p = buf, .len = n, .slice = slice };
    if (flags & 0x20) {
        z->cin.len = n / 2;
        fz_settle(z);
        /* what the worker does on EBB_CMD_DRAIN_INBOUND */
        z->l->draining = true;
        struct ebb_list *pos, *tmp;
        ebb_list_for_each_safe(pos, tmp, &z->l->conns) {
            struct ebb_conn *c = ebb_list_entry(pos, struct ebb_conn, link);
            if (!(c->flags & (EBB_CONN_F_FREED | EBB_CONN_F_CLOSING)))
                c->ops->drain(c);
        }
        z->cin.len = n;
    }
    fz_settle(z);
    if ((flags & 1) && z->client_rx >= 9)
        CHECK(z->client_head[3] == NGHTTP2_SETTINGS && z->client_head[4] == 0 &&
              memcmp(z->client_head + 5, "\0\0\0\0", 4) == 0);
    fz_end(z);
    return 0;
}

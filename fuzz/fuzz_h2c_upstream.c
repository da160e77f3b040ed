/*
 * fuzz_h2c_upstream.c - libFuzzer driver for what an upstream h2c server
 * sends back, through ebb's real codecs: a client sends a valid request on
 * a connection of an http listener (a socketpair handed to the listener,
 * fuzz/harness.h) whose cluster speaks h2c, so src/proxy/h2_upstream.c
 * opens an HTTP/2 client connection to the scripted upstream on loopback;
 * once ebb's preface arrived there, the input is what the upstream writes
 * back, in slices, with the worker's loop run until idle between them.
 * Then the client's EOF, a worker-exit close of everything, and the
 * runtime must be empty again.
 *
 * Input: byte 0 holds flags, byte 1 the slice size, the rest is the
 * upstream's bytes.
 *   bits 0-1  the HTTP/1.1 request: GET, HEAD, POST with a length body,
 *             gRPC-style POST with a chunked body and trailers
 *   bit 2     the client speaks HTTP/2 instead: two GET streams at once
 *   bit 3     prepend an empty SETTINGS frame (the server preface) to the input
 *   bit 4     the upstream sends FIN after the input
 *   bit 5     the small-limits server (4 KiB buffers, 512-byte heads)
 *   bit 6     the HTTP/1.1 request twice on the keep-alive connection
 *   byte 1    0: all at once; 1-15: that many bytes per round; else 16x
 * Invariants: an HTTP/1.1 client gets an HTTP/1.1 status line first, an
 * HTTP/2 client gets SETTINGS first, whatever the upstream sent; ebb goes
 * idle (no busy loop); at the end no connection, stream or upstream
 * connection is left and every gauge is 0 (harness.h); LeakSanitizer for
 * memory.
 *
 *   make build/fuzz/fuzz_h2c_upstream
 *   build/fuzz/fuzz_h2c_upstream -max_total_time=60 /tmp/corpus fuzz/corpus/h2c_upstream
 */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fz_requests[4] = {
    "GET / HTTP/1.1\r\nhost: a\r\n\r\n",
    "HEAD / HTTP/1.1\r\nhost: a\r\n\r\n",
    "POST /p HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n0123456789",
    "POST /g.S/M HTTP/1.1\r\nhost: a\r\ncontent-type: application/grpc\r\nte: trailers\r\n"
        "transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
};

/* The preface, an empty SETTINGS, then two GETs (HPACK: :method GET, :scheme http,
 * :path /, :authority "a" indexed into the dynamic table, then reused as 62). */
static const uint8_t fz_h2_client[] =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    "\x00\x00\x06\x01\x05\x00\x00\x00\x01" "\x82\x86\x84\x41\x01" "a"
    "\x00\x00\x04\x01\x05\x00\x00\x00\x03" "\x82\x86\x84\xbe";

static const uint8_t fz_settings[9] = { 0, 0, 0, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0 };

static const char fz_yaml_default[] =
    "concurrency: 1\n"
    "access_log: /dev/null\n"
    "listeners:\n"
    "  - { name: in, address: 127.0.0.1, port: 1, direction: inbound, protocol: http, cluster: app }\n"
    "clusters:\n"
    "  - { name: app, endpoints: [\"127.0.0.1:1\"], protocol: h2c }\n";

static const char fz_yaml_small[] =
    "concurrency: 1\n"
    "access_log: /dev/null\n"
    "listeners:\n"
    "  - { name: in, address: 127.0.0.1, port: 1, direction: inbound, protocol: http, cluster: app }\n"
    "clusters:\n"
    "  - { name: app, endpoints: [\"127.0.0.1:1\"], protocol: h2c }\n"
    "limits:\n"
    "  max_request_headers: 512\n"
    "  max_header_count: 8\n"
    "  buffer_size: 4096\n";

static struct fz *fz_env(bool small)
{
    return fz_env_of(small, fz_yaml_default, fz_yaml_small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t ubuf[sizeof(fz_settings) + 65536];
    static char cbuf[1024];

    if (size < 2 || size - 2 > 65536)
        return 0;
    uint8_t flags = data[0], sl = data[1];
    struct fz *z = fz_env(flags & 0x20);
    bool h2 = flags & 4;
    size_t un = 0, cn;

    if (flags & 8) {
        memcpy(ubuf, fz_settings, sizeof(fz_settings));
        un = sizeof(fz_settings);
    }
    memcpy(ubuf + un, data + 2, size - 2);
    un += size - 2;
    if (h2) {
        cn = sizeof(fz_h2_client) - 1;
        memcpy(cbuf, fz_h2_client, cn);
    } else {
        const char *rq = fz_requests[flags & 3];
        cn = (size_t)snprintf(cbuf, sizeof(cbuf), "%s%s", rq, (flags & 0x40) ? rq : "");
    }

    fz_begin(z);
    z->cin = (struct fz_stream){ .p = (const uint8_t *)cbuf, .len = cn };
    z->uscript = (struct fz_stream){ .p = ubuf, .len = un,
                                     .slice = sl == 0 ? 0 : sl < 16 ? sl : (size_t)sl << 4 };
    z->up_wait_head = false;   /* ebb's preface is enough: the server answers at once */
    z->up_fin = flags & 0x10;
    fz_settle(z);
    if (z->client_have >= 9) {
        if (h2)
            CHECK(z->client_head[3] == NGHTTP2_SETTINGS && z->client_head[4] == 0 &&
                  memcmp(z->client_head + 5, "\0\0\0\0", 4) == 0);
        else
            CHECK(memcmp(z->client_head, "HTTP/1.1 ", 9) == 0);
    }
    fz_end(z);
    return 0;
}

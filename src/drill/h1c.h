/*
 * h1c.h - the drill's HTTP/1.1 client connection (load.c), private to
 * src/drill/: the load generator's users and the app's outbound calls.
 */
#ifndef EBB_DRILL_H1C_H
#define EBB_DRILL_H1C_H

#include "ebb/buf.h"
#include "ebb/drill_report.h"
#include "ebb/h1_parse.h"
#include "ebb/loop.h"

struct drill;

/* One HTTP/1.1 client connection, one request at a time. */

enum drill_h1c_state {
    DRILL_H1C_CLOSED = 0,  /* no socket */
    DRILL_H1C_CONNECTING,  /* connect() in progress, request queued */
    DRILL_H1C_IDLE,        /* connected, keep-alive, nothing in flight */
    DRILL_H1C_BUSY,        /* request written or being written, response pending */
};

struct drill_h1c;
/* fail is -1 for a completed request, else an enum drill_fail. */
typedef void (*drill_h1c_cb)(struct drill_h1c *c, int fail, void *data);

struct drill_h1c {
    struct drill        *d;
    struct drill_counts *counts;   /* where outcomes are counted */
    bool                 inbound;  /* part of the load (timeline, fail marks) */
    uint32_t             addr;     /* IPv4, network order (loopback unless --target) */
    uint16_t             port;
    const char          *host;     /* Host header */
    enum drill_h1c_state state;
    struct ebb_io        io;
    struct ebb_buf       rbuf, wbuf;
    struct ebb_h1_msg   *msg;      /* heap, parsed response head */
    bool                 head_done;
    struct ebb_h1_body   body;
    int                  status;
    uint64_t             got;      /* body bytes decoded */
    uint64_t             want;     /* body bytes the app sends (0 = do not check) */
    bool                 close_after; /* response said Connection: close */
    struct ebb_timer     timeout;
    drill_h1c_cb         cb;       /* completion of the current request */
    void                *cb_data;
};

void drill_h1c_init(struct drill_h1c *c, struct drill *d, uint16_t port, const char *host,
                    struct drill_counts *counts, bool inbound);
/* Sends GET path (connecting first if needed); cb runs exactly once, later,
 * never from inside this call.  c must not be busy. */
void drill_h1c_request(struct drill_h1c *c, const char *path, uint64_t want, drill_h1c_cb cb,
                       void *data);
/* Closes the connection; a request in flight is dropped without a callback. */
void drill_h1c_close(struct drill_h1c *c);
static inline bool drill_h1c_busy(const struct drill_h1c *c)
{
    return c->state == DRILL_H1C_CONNECTING || c->state == DRILL_H1C_BUSY;
}

#endif

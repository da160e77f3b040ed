/*
 * tunnel.h - raw byte relay between a downstream connection and an upstream
 * connection, with half-close: used by TCP listeners and by HTTP/1.1
 * connections after 101 Switching Protocols.
 */
#ifndef EBB_TUNNEL_H
#define EBB_TUNNEL_H

#include <stdbool.h>
#include <stdint.h>

struct ebb_conn;
struct ebb_upconn;

struct ebb_tunnel {
    bool down_eof;     /* client shut its write side */
    bool down_shut;    /* we shut the client's read side (sent FIN to it) */
    bool up_shut;      /* we sent FIN to the upstream */
    uint64_t up_bytes;   /* client -> upstream */
    uint64_t down_bytes; /* upstream -> client */
    uint64_t active_ms;  /* when a byte last moved (or the tunnel started) */
};

/* Starts t's clock (active now) and sets keep-alive probes on both sockets, so a
 * peer that vanished is found even with the idle timeout off. */
void ebb_tunnel_start(struct ebb_conn *c, struct ebb_upconn *u, struct ebb_tunnel *t);

/* For the owner's idle timer (limits.tcp_idle_timeout, idle_ms > 0): 0 when the
 * tunnel has been idle that long, else the ms left until it would be. */
uint64_t ebb_tunnel_idle_left(const struct ebb_conn *c, const struct ebb_tunnel *t,
                              uint64_t idle_ms);

/* Moves bytes both ways between the buffers, flushes, propagates EOFs as
 * shutdown(SHUT_WR) once the buffered bytes are out, and sets both
 * interests.  Returns 1 when both directions are finished, 0 to continue,
 * or a negative error (the caller closes both sides). */
int ebb_tunnel_run(struct ebb_conn *c, struct ebb_upconn *u, struct ebb_tunnel *t);

#endif

/*
 * proxy.h - what the codecs share: routing, request ids, the access log,
 * and the local error answers of SPEC §2.
 */
#ifndef EBB_PROXY_H
#define EBB_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/http.h"   /* EBB_RF_* */

struct ebb_config;
struct ebb_conn;
struct ebb_listener;
struct ebb_wctx;


/* Picks the cluster for a request on listener l with the given authority
 * (Host or absolute-form authority; the port is ignored when matching).
 * Returns the cluster index or -1 when no route matches. */
long ebb_route(const struct ebb_listener *l, const char *authority, size_t len);

/* The cluster for a request on connection c (ebb_route for an ordinary one).  A
 * connection captured by iptables (SPEC §9) goes to its original destination's
 * built-in cluster: inbound always (InboundPassthroughClusterIpv4/6); outbound
 * when no route matches (PassthroughCluster, or BlackHoleCluster under
 * REGISTRY_ONLY). */
long ebb_route_conn(const struct ebb_conn *c, const struct ebb_config *cfg,
                    const char *authority, size_t len);
/* The same for a connection relayed as TCP: the listener's cluster, or for a captured
 * one (outbound tcp listeners excepted: their cluster is a route) the built-in
 * cluster of its original destination.  -1 when none. */
long ebb_route_tcp(const struct ebb_conn *c, const struct ebb_config *cfg);
/* True when c was captured on its way to one of ebb's own listener ports: a capture
 * loop, never forwarded (SPEC §9.2). */
bool ebb_capture_loop(const struct ebb_conn *c, const struct ebb_config *cfg);

/* Writes a random RFC 4122 v4 UUID (36 chars + NUL) into out, drawing on
 * the caller's ebb_rand() state (the worker's). */
void ebb_request_id(uint32_t *rand_state, char out[37]);

/* One access-log record. */
struct ebb_access {
    const char *listener;
    const char *method;
    const char *authority;
    const char *path;
    const char *protocol;      /* "HTTP/1.1", "HTTP/2" */
    int         status;        /* 0 when no response was sent */
    uint64_t    bytes_received;
    uint64_t    bytes_sent;
    uint64_t    duration_ms;
    const char *upstream_host;
    const char *upstream_cluster;
    unsigned    flags;         /* EBB_RF_* */
    const char *request_id;
    const char *peer;
};

/* Opens the access log named in the config ("-", "off", a path) and starts
 * its writer thread.  Startup. */
int ebb_access_log_open(const char *spec, char *err, size_t errlen);
/* True when ebb_access_log writes lines (set at startup, before the workers run). */
bool ebb_access_log_on(void);
/* Adds one JSON line to the calling thread's buffer (no syscall); no-op when
 * off.  The buffer goes to the writer at 64 KiB, or by ebb_access_log_flush. */
void ebb_access_log(const struct ebb_access *a);
/* Hands the calling thread's buffered lines to the writer (each worker once a
 * second and when it stops).  Never blocks on the disk: lines the writer is
 * too far behind for are dropped and counted. */
void ebb_access_log_flush(void);
/* A thread that logged is about to end: flushes and frees its buffer. */
void ebb_access_log_thread_done(void);
/* After the workers stopped: writes everything handed over, stops the writer. */
void ebb_access_log_close(void);
/* Lines dropped so far (writer behind, or out of memory). */
unsigned long ebb_access_log_dropped(void);
/* Formats flags as "UF,DR" or "-". */
const char *ebb_rf_str(unsigned flags, char *buf, size_t len);

#endif

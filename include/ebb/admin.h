/*
 * admin.h - the admin (15000), status (15020) and readiness (15021) HTTP
 * endpoints of SPEC §5 and §6, served on the control thread's loop, and
 * the renderers behind /stats.
 *
 * Admin sits above the drain controller: its mutating endpoints call the
 * operator entry points of control.h; the controller never calls admin.
 */
#ifndef EBB_ADMIN_H
#define EBB_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "ebb/list.h"
#include "ebb/loop.h"

struct ebb_buf;
struct ebb_control;
struct ebb_server;

/* The three listener kinds; each has its own route table in admin.c. */
enum ebb_admin_kind {
    EBB_ADMIN_ADMIN = 0,   /* 15000: stats, dumps, drain and exit commands */
    EBB_ADMIN_STATUS,      /* 15020: readiness, Prometheus, /drain, /quitquitquit */
    EBB_ADMIN_READY,       /* 15021: readiness only */
    EBB_ADMIN_NKINDS
};

/* The admin servers.  Owned by whoever owns the control thread (`ebb run`);
 * owns its listening sockets and every open admin connection. */
struct ebb_admin {
    struct ebb_control *ctl;                    /* the drain controller; its loop serves us */
    struct ebb_io       ports[EBB_ADMIN_NKINDS];/* listening sockets, fd -1 when not open */
    struct ebb_list     conns;                  /* open connections (admin.c's admin_conn) */
};

/* Opens the admin, status and (when configured) readiness sockets on
 * ctl->loop.  Returns 0, or EBB_E* with a message in err; either way
 * ebb_admin_close() undoes what was done. */
int ebb_admin_init(struct ebb_admin *adm, struct ebb_control *ctl, char *err, size_t errlen);
/* Closes the sockets and every open admin connection (a pending
 * /quitquitquit no longer exits).  Safe on a zeroed or half-opened adm. */
void ebb_admin_close(struct ebb_admin *adm);

/* admin_stats.c: Envoy-style "name: value" lines, sorted by name; usedonly
 * skips zeros, filter_re (POSIX ERE, may be NULL) keeps matching names; a
 * filter glibc's regcomp would take too long or too much memory for
 * (repetition counts multiplying past 256, repetitions nested deeper than
 * 3, a back-reference) is answered "invalid regex" (admin_stats.c). */
int ebb_stats_render_text(struct ebb_server *srv, struct ebb_buf *b, bool usedonly,
                          const char *filter_re);
/* admin_stats.c: the same values in Prometheus text format 0.0.4 (label values escaped).
 * Both return 0, or EBB_ENOMEM / EBB_ETOOBIG when b could not hold every line (the
 * answer must then not be sent: it would miss lines). */
int ebb_stats_render_prometheus(struct ebb_server *srv, struct ebb_buf *b);

#endif

/*
 * admin_query.h - how the admin endpoints read a request-target: the path
 * and query split and the query-string lookup (admin.c).  Apart from
 * admin.h so fuzz/fuzz_admin_query.c reaches them without a control loop.
 * Pure: no I/O, no allocation, no state.
 */
#ifndef EBB_ADMIN_QUERY_H
#define EBB_ADMIN_QUERY_H

#include <stddef.h>

/* Splits a request path (origin-form, as ebb_h1_parse_request gives it;
 * may be empty with p NULL) at the first '?': *plen is the path's length,
 * *q the query after the '?' ("" when none), *qlen its length. */
void ebb_admin_split_target(const char *p, size_t len, size_t *plen, const char **q,
                            size_t *qlen);

/* Finds "name" or "name=value" among q's '&'-separated fields; copies the
 * value ('+' as space, %XX decoded; "" for a bare name) into out, at most
 * olen - 1 bytes and NUL-terminated (olen > 0), and returns out; NULL when
 * absent. */
const char *ebb_admin_query_get(const char *q, size_t qlen, const char *name, char *out,
                                size_t olen);

#endif

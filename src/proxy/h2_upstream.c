/* h2_upstream.c - placeholder, replaced below */
#include "ebb/h2.h"
#include "ebb/server.h"
struct ebb_h2u_stream *ebb_h2u_open(struct ebb_cluster_rt *cl, struct ebb_worker *w,
                                    const nghttp2_nv *nv, size_t n, bool end_stream,
                                    const struct ebb_h2u_cbs *cbs, void *owner)
{ return NULL; }
size_t ebb_h2u_write(struct ebb_h2u_stream *s, const void *p, size_t n) { return 0; }
void ebb_h2u_end(struct ebb_h2u_stream *s, const nghttp2_nv *t, size_t n) {}
size_t ebb_h2u_read(struct ebb_h2u_stream *s, void *out, size_t n) { return 0; }
size_t ebb_h2u_readable(const struct ebb_h2u_stream *s) { return 0; }
void ebb_h2u_close(struct ebb_h2u_stream *s) {}
void ebb_h2u_close_all(struct ebb_cluster_rt *cl) {}

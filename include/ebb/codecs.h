/*
 * codecs.h - the downstream codecs a listener can run (proto layer).  A
 * connection starts with one of these (chosen by the listener's protocol);
 * h1 hands a connection that opens with the HTTP/2 preface to ebb_h2_codec
 * (h2.h).
 */
#ifndef EBB_CODECS_H
#define EBB_CODECS_H

#include "ebb/conn.h"

extern const struct ebb_codec_ops ebb_h1_codec;    /* HTTP/1.1, h1.c */
extern const struct ebb_codec_ops ebb_tcp_codec;   /* raw TCP relay, tcp.c */
extern const struct ebb_codec_ops ebb_sniff_codec; /* a captured connection's first bytes pick
                                                      h1 or tcp (SPEC §9.2), sniff.c */

/* Frees the HTTP/1 exchange states the calling thread keeps for reuse (h1.c): a worker
 * thread calls it when its loop has ended. */
void ebb_h1_cache_drain(void);

#endif

/*
 * parse.h - value syntax shared by every config source and the command
 * line (src/core/parse.c): Go durations, bools, bounded unsigned decimals,
 * Go-quoted strings and UTF-8.  Pure functions: no I/O, no global state.
 */
#ifndef EBB_PARSE_H
#define EBB_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Go time.ParseDuration: "300ms", "1.5h", "2h45m", "5s"; "0" alone is 0.
 * Negative durations are rejected ("-0" is 0).  Result in ms; a sub-ms
 * remainder rounds up (except at Go's maximum, 2562047h47m16.854s, so what
 * ebb_format_duration_ms prints always parses back).  0 or EBB_EINVAL. */
int ebb_parse_duration_ms(const char *s, uint64_t *out_ms);
/* Formats ms like Go's Duration.String(): "0s", "500ms", "1.5s", "1m30s",
 * "1h0m0s".  Always NUL-terminates out (32 bytes are enough). */
void ebb_format_duration_ms(uint64_t ms, char *out, size_t outlen);
/* Go strconv.ParseBool: 1 t T TRUE true True 0 f F FALSE false False.
 * 0 or EBB_EINVAL. */
int ebb_parse_bool(const char *s, bool *out);
/* Unsigned decimal within [min, max].  0 or EBB_EINVAL. */
int ebb_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Go-quoted string (strconv.Unquote of a "..." literal): \" \\ \n \t \r \a
 * \b \f \v \xNN \NNN(octal) \uXXXX \UXXXXXXXX.  in/inlen include the quotes.
 * Returns a malloc'd string (NUL-terminated; *outlen set) or NULL when malformed. */
char *ebb_go_unquote(const char *in, size_t inlen, size_t *outlen);

/* Decodes one UTF-8 sequence at s[0..n) like Go's utf8.DecodeRune: returns
 * its length and sets *rune, or returns 1 with U+FFFD for an invalid byte
 * (overlong, surrogate, above U+10FFFF, truncated or stray); 0 when n is 0. */
size_t ebb_utf8_decode(const char *s, size_t n, uint32_t *rune);

#endif

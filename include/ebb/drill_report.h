/*
 * drill_report.h - what one drill scenario counted (struct drill_result)
 * and report.c, which turns results into text, JSON and SVG.  Pure: no
 * I/O but the FILE it is given; unit-tested (tests/unit/test_drill_report.c).
 */
#ifndef EBB_DRILL_REPORT_H
#define EBB_DRILL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Why a request failed.  Every request ends completed or in exactly one of these. */
enum drill_fail {
    DRILL_F_REFUSED = 0,  /* could not connect (listener closed), or an h2 stream refused
                             (REFUSED_STREAM / above the GOAWAY last-stream-id) */
    DRILL_F_RESET,        /* connection reset or closed before a complete response head */
    DRILL_F_5XX,          /* a complete response with status >= 500 */
    DRILL_F_TIMEOUT,      /* no complete response within --timeout, or still open at the end */
    DRILL_F_TRUNCATED,    /* head received, then the connection/stream ended before the body
                             was complete (or the body was shorter than the app sent) */
    DRILL_F_OTHER,        /* malformed response or an unexpected status (< 500, not 2xx) */
    DRILL_F_MAX
};

struct drill_counts {
    uint64_t sent;                   /* requests written (or whose connect was attempted) */
    uint64_t completed;              /* complete 2xx responses with the whole body */
    uint64_t failed[DRILL_F_MAX];    /* by cause */
};

/* A sample of the load generator's state, every DRILL_SAMPLE_MS. */
#define DRILL_SAMPLE_MS 50
struct drill_sample {
    uint32_t t_ms;       /* since the scenario's load started */
    uint32_t conns;      /* client connections open (h1 + h2, inbound load only) */
    uint32_t inflight;   /* requests / streams in flight (inbound load) */
    uint32_t out_inflight; /* the app's outbound calls in flight */
};

enum drill_ev_kind {
    DRILL_EV_SIGTERM = 0,  /* stop signal sent to the proxy (and SIGTERM to the app) */
    DRILL_EV_REMOVAL,      /* endpoint removal: no new requests from here */
    DRILL_EV_PHASE,        /* a drain phase parsed from the proxy's log */
    DRILL_EV_EXIT,         /* the proxy process exited */
    DRILL_EV_KILL,         /* SIGKILL after the grace period */
    DRILL_EV_APP_EXIT,     /* the app finished its shutdown */
};

struct drill_event {
    int64_t            t_ms;        /* since the load started (may be slightly negative) */
    enum drill_ev_kind kind;
    char               label[80];
};

#define DRILL_MAX_EVENTS 32
#define DRILL_MAX_FAIL_MARKS 4096

/* The outcome of one scenario against one proxy. */
struct drill_result {
    char     scenario[24];
    char     proxy[24];               /* ebb, nginx, haproxy, cmd, none */
    char     mode[16];                /* ebb: default | exit-on-zero; else "" */
    struct drill_counts in;           /* the load generator's requests (through the inbound listener) */
    struct drill_counts out;          /* the app's calls through the outbound listener */
    bool     unsupported;             /* the scenario could not run (e.g. no h2c): verdict N/A */
    char     note[200];               /* why unsupported, or a remark */
    int64_t  sigterm_ms;              /* times since the load started; -1 = did not happen */
    int64_t  removal_ms;
    int64_t  exit_ms;                 /* proxy exit (-1: no proxy, or never) */
    int64_t  last_ok_ms;              /* last completed request (inbound or outbound) */
    int64_t  end_ms;                  /* the scenario's end */
    bool     killed;                  /* the proxy was SIGKILLed at the grace period */
    uint64_t grpc_status[17];         /* grpc scenario: calls that ended with this non-zero
                                         grpc-status (counted as "other" in .in) */
    int      exit_status;             /* wait status of the proxy */
    struct drill_event  events[DRILL_MAX_EVENTS];
    size_t              nevents;
    struct drill_sample *samples;     /* heap, owned */
    size_t              nsamples, samples_cap;
    uint32_t            fail_marks[DRILL_MAX_FAIL_MARKS]; /* t_ms of failures, first N */
    uint8_t             fail_causes[DRILL_MAX_FAIL_MARKS];
    size_t              nfail_marks;
};

const char *drill_fail_name(enum drill_fail f);
uint64_t drill_counts_failed(const struct drill_counts *c);
/* in + out */
void drill_counts_sum(const struct drill_counts *a, const struct drill_counts *b,
                      struct drill_counts *sum);
/* True when the scenario passed: ran, and no request failed. */
bool drill_result_pass(const struct drill_result *r);
/* "PASS: 0 of N requests failed" / "FAIL: 3 of N requests failed (2 reset, 1 5xx)" /
 * "N/A: <note>". */
void drill_verdict(const struct drill_result *r, char *out, size_t outlen);
void drill_result_event(struct drill_result *r, int64_t t_ms, enum drill_ev_kind kind,
                        const char *label);
void drill_result_fail_mark(struct drill_result *r, int64_t t_ms, enum drill_fail f);
int  drill_result_sample(struct drill_result *r, const struct drill_sample *s);
void drill_result_free(struct drill_result *r);

void drill_report_text(FILE *f, const struct drill_result *r, size_t n);
void drill_report_json(FILE *f, const struct drill_result *r, size_t n);
void drill_report_svg(FILE *f, const struct drill_result *r, size_t n);

/* SVG scaling, exposed for the unit tests: maps t in [0, tmax] onto [x0, x0+w]
 * (clamped), v in [0, vmax] onto [y0+h, y0] (clamped, y grows downwards). */
double drill_svg_x(double t, double tmax, double x0, double w);
double drill_svg_y(double v, double vmax, double y0, double h);
/* Smallest 1, 2 or 5 times a power of ten that is >= v (>= 1). */
double drill_nice_ceil(double v);

/* Parses one line of ebb's stderr ("<sec.usec> <level> <subsys>: message").
 * When it marks a drain phase, sets *mono_us (the line's CLOCK_MONOTONIC
 * timestamp) and a short label, and returns true. */
bool drill_parse_ebb_log(const char *line, uint64_t *mono_us, char *label, size_t labellen);

#endif

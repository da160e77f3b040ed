/*
 * loop.h - the event loop: epoll readiness, timers, cross-thread wakeups,
 * and deferred frees.  One loop per thread; nothing here is thread-safe
 * except ebb_async_send().
 */
#ifndef EBB_LOOP_H
#define EBB_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct ebb_loop;
struct ebb_io;
struct ebb_timer;

typedef void (*ebb_io_cb)(struct ebb_loop *loop, struct ebb_io *io, uint32_t events);
typedef void (*ebb_timer_cb)(struct ebb_loop *loop, struct ebb_timer *t);
typedef void (*ebb_defer_cb)(void *data);

#define EBB_READ  EPOLLIN
#define EBB_WRITE EPOLLOUT

/* A watched file descriptor.  Embedded in its owner (a connection). */
struct ebb_io {
    int       fd;       /* the descriptor, -1 when unused */
    uint32_t  events;   /* interest currently registered with epoll, 0 if none */
    bool      added;    /* registered with epoll */
    ebb_io_cb cb;       /* called with the ready events (EBB_READ/EBB_WRITE/EPOLLERR/EPOLLHUP) */
    void     *data;     /* owner */
};

/* A one-shot timer.  Embedded in its owner; a zeroed timer is inactive.  The
 * loop keeps active timers in an intrusive pairing heap (the links below), so
 * arming one never allocates and cannot fail. */
struct ebb_timer {
    uint64_t          when;   /* deadline, ebb_now_ms() clock */
    uint64_t          seq;    /* arming order: equal deadlines fire first-armed first */
    struct ebb_timer *child;  /* heap links: first child, */
    struct ebb_timer *next;   /* next sibling, */
    struct ebb_timer *prev;   /* previous sibling, or the parent of a first child */
    bool              active;
    ebb_timer_cb      cb;
    void             *data;
};

/* A deferred call, embedded in the object it will free: queuing one never
 * allocates and cannot fail (see ebb_loop_defer). */
struct ebb_deferred {
    struct ebb_deferred *next;
    ebb_defer_cb         cb;
    void                *data;
};

/* Sets up an inactive timer that calls cb with t->data = data. */
static inline void ebb_timer_init(struct ebb_timer *t, ebb_timer_cb cb, void *data)
{
    *t = (struct ebb_timer){ .cb = cb, .data = data };
}

/* Monotonic clock in ms / us (CLOCK_MONOTONIC). */
uint64_t ebb_now_ms(void);
uint64_t ebb_now_us(void);

/* Creates a loop.  Returns NULL on failure (errno set). */
struct ebb_loop *ebb_loop_new(void);
/* Frees the loop; watchers still registered are forgotten, not closed. */
void ebb_loop_free(struct ebb_loop *loop);
/* Runs until ebb_loop_stop().  Returns 0. */
int ebb_loop_run(struct ebb_loop *loop);
/* One iteration that does not wait: the ready watchers, the due timers and the deferred
 * calls.  Returns how many callbacks ran (0: nothing was ready), or EBB_EIO.  For a caller
 * that drives the loop itself (the fuzz drivers run it until it is idle). */
int ebb_loop_run_once(struct ebb_loop *loop);
/* Makes ebb_loop_run() return after the current iteration. */
void ebb_loop_stop(struct ebb_loop *loop);
/* Cached time of the current iteration, ms. */
uint64_t ebb_loop_now(const struct ebb_loop *loop);
/* Opaque per-loop pointer for the owner (the worker). */
void  ebb_loop_set_data(struct ebb_loop *loop, void *data);
void *ebb_loop_data(const struct ebb_loop *loop);

/* Sets io's interest to events (0 removes it from epoll).  Cheap when the
 * interest does not change.  Returns 0 or EBB_EIO. */
int ebb_io_set(struct ebb_loop *loop, struct ebb_io *io, uint32_t events);
/* Removes io from epoll (does not close the fd). */
void ebb_io_stop(struct ebb_loop *loop, struct ebb_io *io);

/* (Re)arms t to fire after ms milliseconds. */
void ebb_timer_start(struct ebb_loop *loop, struct ebb_timer *t, uint64_t ms);
/* Disarms t; harmless when inactive. */
void ebb_timer_stop(struct ebb_loop *loop, struct ebb_timer *t);
static inline bool ebb_timer_active(const struct ebb_timer *t) { return t->active; }

/* Runs cb(data) after the current iteration's events: the place to free an
 * object whose callback is still on the stack (redis freeClientAsync), or
 * to finish work the iteration's events started (h2.c's kick).  d is the
 * object's own node, queued at most once at a time (it may be queued again
 * once its cb has started). */
void ebb_loop_defer(struct ebb_loop *loop, struct ebb_deferred *d, ebb_defer_cb cb, void *data);
/* Runs the pending deferred callbacks now (for teardown after ebb_loop_run). */
void ebb_loop_run_deferred(struct ebb_loop *loop);

/* Cross-thread wakeup: another thread calls ebb_async_send(), and the
 * loop's thread runs cb(loop, data) once per batch of sends. */
typedef void (*ebb_async_cb)(struct ebb_loop *loop, void *data);
struct ebb_async {
    struct ebb_io io;   /* eventfd */
    ebb_async_cb  cb;
    void         *data;
};
int  ebb_async_init(struct ebb_loop *loop, struct ebb_async *a, ebb_async_cb cb, void *data);
void ebb_async_send(struct ebb_async *a);   /* thread-safe, async-signal-safe */
void ebb_async_close(struct ebb_loop *loop, struct ebb_async *a);

#endif

/*
 * loop.c - epoll event loop with a binary-heap timer queue, cross-thread
 * wakeups (eventfd) and deferred callbacks.  Level-triggered: owners set
 * the interest they want and the loop calls them while it holds.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/loop.h"

#define LOOP_MAX_EVENTS 256

struct ebb_loop {
    int                 epfd;     /* epoll instance */
    bool                stop;     /* set by ebb_loop_stop() */
    uint64_t            now;      /* cached ms clock for this iteration */
    struct ebb_timer   *timers;   /* root of the pairing heap of active timers */
    uint64_t            timer_seq;/* arming counter (ties between equal deadlines) */
    struct ebb_deferred *defer;   /* callbacks to run after the iteration, FIFO */
    struct ebb_deferred **defer_tail;
    void               *data;     /* owner */
};

uint64_t ebb_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t ebb_now_ms(void)
{
    return ebb_now_us() / 1000u;
}

struct ebb_loop *ebb_loop_new(void)
{
    struct ebb_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->now = ebb_now_ms();
    loop->defer_tail = &loop->defer;
    return loop;
}

void ebb_loop_free(struct ebb_loop *loop)
{
    if (!loop)
        return;
    close(loop->epfd);
    free(loop);
}

void ebb_loop_stop(struct ebb_loop *loop) { loop->stop = true; }
uint64_t ebb_loop_now(const struct ebb_loop *loop) { return loop->now; }
void ebb_loop_set_data(struct ebb_loop *loop, void *data) { loop->data = data; }
void *ebb_loop_data(const struct ebb_loop *loop) { return loop->data; }

int ebb_io_set(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct epoll_event ev;
    int op;

    if (io->added && io->events == events)
        return 0;
    if (events == 0) {
        ebb_io_stop(loop, io);
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = io;
    op = io->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epfd, op, io->fd, &ev) < 0) {
        ebb_err("loop", "epoll_ctl(fd %d): %s", io->fd, strerror(errno));
        return EBB_EIO;
    }
    io->added = true;
    io->events = events;
    return 0;
}

void ebb_io_stop(struct ebb_loop *loop, struct ebb_io *io)
{
    if (!io->added)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->added = false;
    io->events = 0;
}

/* --- timers: a pairing heap (Fredman et al. 1986), intrusive: every link is in the timer ---
 * Roots have prev == NULL and next == NULL.  A child list hangs off child; a first child's
 * prev is its parent, any other's prev is its left sibling. */

static bool timer_before(const struct ebb_timer *a, const struct ebb_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* Two roots into one: the later becomes the first child of the earlier. */
static struct ebb_timer *heap_meld(struct ebb_timer *a, struct ebb_timer *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (timer_before(b, a)) {
        struct ebb_timer *t = a;
        a = b;
        b = t;
    }
    b->prev = a;
    b->next = a->child;
    if (a->child)
        a->child->prev = b;
    a->child = b;
    return a;
}

/* A list of siblings into one root: meld pairs left to right, then the pairs right to left
 * (the two passes that give the heap its amortised bounds). */
static struct ebb_timer *heap_merge_pairs(struct ebb_timer *first)
{
    struct ebb_timer *pairs = NULL;   /* melded pairs, in reverse order, linked by next */

    while (first) {
        struct ebb_timer *a = first, *b = first->next;
        first = b ? b->next : NULL;
        a->prev = a->next = NULL;
        if (b)
            b->prev = b->next = NULL;
        struct ebb_timer *m = heap_meld(a, b);
        m->next = pairs;
        pairs = m;
    }
    struct ebb_timer *root = NULL;
    while (pairs) {
        struct ebb_timer *m = pairs;
        pairs = pairs->next;
        m->next = NULL;
        root = heap_meld(root, m);
    }
    return root;
}

void ebb_timer_stop(struct ebb_loop *loop, struct ebb_timer *t)
{
    if (!t->active)
        return;
    t->active = false;
    if (t == loop->timers) {
        loop->timers = heap_merge_pairs(t->child);
    } else {
        /* cut t (with its subtree) out of its sibling list, then meld its children back */
        if (t->prev->child == t)
            t->prev->child = t->next;
        else
            t->prev->next = t->next;
        if (t->next)
            t->next->prev = t->prev;
        loop->timers = heap_meld(loop->timers, heap_merge_pairs(t->child));
    }
    t->child = t->next = t->prev = NULL;
}

void ebb_timer_start(struct ebb_loop *loop, struct ebb_timer *t, uint64_t ms)
{
    ebb_timer_stop(loop, t);
    t->when = ebb_now_ms() + ms;
    t->seq = ++loop->timer_seq;
    t->child = t->next = t->prev = NULL;
    t->active = true;
    loop->timers = heap_meld(loop->timers, t);
}

/* Runs the due timers; returns how many fired. */
static int run_timers(struct ebb_loop *loop)
{
    int n = 0;
    while (loop->timers && loop->timers->when <= loop->now) {
        struct ebb_timer *t = loop->timers;
        ebb_timer_stop(loop, t);
        t->cb(loop, t);
        n++;
    }
    return n;
}

void ebb_loop_defer(struct ebb_loop *loop, struct ebb_deferred *d, ebb_defer_cb cb, void *data)
{
    d->cb = cb;
    d->data = data;
    d->next = NULL;
    *loop->defer_tail = d;
    loop->defer_tail = &d->next;
}

/* Runs the pending deferred callbacks; returns how many ran. */
static int run_deferred(struct ebb_loop *loop)
{
    int n = 0;
    /* callbacks may defer more: they run in this pass too, until the queue is empty */
    while (loop->defer) {
        struct ebb_deferred *d = loop->defer;
        loop->defer = d->next;
        if (!loop->defer)
            loop->defer_tail = &loop->defer;
        d->cb(d->data);   /* may free d */
        n++;
    }
    return n;
}

void ebb_loop_run_deferred(struct ebb_loop *loop)
{
    run_deferred(loop);
}

/* One iteration: waits up to timeout ms (-1 forever) for events, then runs the ready
 * watchers, the due timers and the deferred calls.  Returns how many callbacks ran, or
 * EBB_EIO when epoll_wait failed. */
static int loop_iterate(struct ebb_loop *loop, int timeout)
{
    struct epoll_event events[LOOP_MAX_EVENTS];
    int ran = 0;

    int n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, timeout);
    if (n < 0 && errno != EINTR) {
        ebb_err("loop", "epoll_wait: %s", strerror(errno));
        return EBB_EIO;
    }
    loop->now = ebb_now_ms();
    for (int i = 0; i < n; i++) {
        struct ebb_io *io = events[i].data.ptr;
        /* an earlier callback in this batch may have stopped io */
        if (!io->added)
            continue;
        io->cb(loop, io, events[i].events);
        ran++;
    }
    ran += run_timers(loop);
    ran += run_deferred(loop);
    return ran;
}

int ebb_loop_run(struct ebb_loop *loop)
{
    loop->stop = false;
    while (!loop->stop) {
        int timeout = -1;
        loop->now = ebb_now_ms();
        if (loop->timers) {
            uint64_t when = loop->timers->when;
            timeout = when <= loop->now ? 0 : (int)EBB_MIN(when - loop->now, 60000u);
        }
        if (loop->defer)
            timeout = 0;
        if (loop_iterate(loop, timeout) == EBB_EIO)
            return EBB_EIO;
    }
    return 0;
}

int ebb_loop_run_once(struct ebb_loop *loop)
{
    loop->now = ebb_now_ms();
    return loop_iterate(loop, 0);
}

/* --- cross-thread wakeups --- */

static void async_ready(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct ebb_async *a = io->data;
    uint64_t v;
    ssize_t r = read(io->fd, &v, sizeof(v));
    (void)r;
    a->cb(loop, a->data);
}

int ebb_async_init(struct ebb_loop *loop, struct ebb_async *a, ebb_async_cb cb, void *data)
{
    memset(a, 0, sizeof(*a));
    a->io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->io.fd < 0)
        return EBB_EIO;
    a->io.cb = async_ready;
    a->io.data = a;
    a->cb = cb;
    a->data = data;
    return ebb_io_set(loop, &a->io, EBB_READ);
}

void ebb_async_send(struct ebb_async *a)
{
    uint64_t one = 1;
    ssize_t r = write(a->io.fd, &one, sizeof(one));
    (void)r;
}

void ebb_async_close(struct ebb_loop *loop, struct ebb_async *a)
{
    if (a->io.fd < 0)
        return;
    ebb_io_stop(loop, &a->io);
    close(a->io.fd);
    a->io.fd = -1;
}

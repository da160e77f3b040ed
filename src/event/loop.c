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

struct defer_item {
    ebb_defer_cb cb;
    void        *data;
};

struct ebb_loop {
    int                 epfd;     /* epoll instance */
    bool                stop;     /* set by ebb_loop_stop() */
    uint64_t            now;      /* cached ms clock for this iteration */
    struct ebb_timer  **heap;     /* min-heap of active timers by when */
    uint32_t            nheap;
    uint32_t            heapcap;
    struct defer_item  *defer;    /* callbacks to run after the iteration */
    size_t              ndefer;
    size_t              defercap;
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
    return loop;
}

void ebb_loop_free(struct ebb_loop *loop)
{
    if (!loop)
        return;
    close(loop->epfd);
    free(loop->heap);
    free(loop->defer);
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

/* --- timers: a binary min-heap; t->idx is the 1-based heap slot --- */

static void heap_set(struct ebb_loop *loop, uint32_t i, struct ebb_timer *t)
{
    loop->heap[i] = t;
    t->idx = i + 1;
}

static void heap_up(struct ebb_loop *loop, uint32_t i)
{
    struct ebb_timer *t = loop->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (loop->heap[parent]->when <= t->when)
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct ebb_loop *loop, uint32_t i)
{
    struct ebb_timer *t = loop->heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        uint64_t best = t->when;
        if (l < loop->nheap && loop->heap[l]->when < best) {
            m = l;
            best = loop->heap[l]->when;
        }
        if (r < loop->nheap && loop->heap[r]->when < best)
            m = r;
        if (m == i)
            break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

void ebb_timer_stop(struct ebb_loop *loop, struct ebb_timer *t)
{
    if (!t->idx)
        return;
    uint32_t i = t->idx - 1;
    struct ebb_timer *last = loop->heap[--loop->nheap];
    t->idx = 0;
    if (i == loop->nheap)
        return;
    heap_set(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->idx - 1);
}

void ebb_timer_start(struct ebb_loop *loop, struct ebb_timer *t, uint64_t ms)
{
    ebb_timer_stop(loop, t);
    if (loop->nheap == loop->heapcap) {
        uint32_t cap = loop->heapcap ? loop->heapcap * 2 : 64;
        struct ebb_timer **h = realloc(loop->heap, cap * sizeof(*h));
        EBB_BUG_ON(!h);   /* a timer cannot fail to arm; treat as fatal */
        loop->heap = h;
        loop->heapcap = cap;
    }
    t->when = ebb_now_ms() + ms;
    heap_set(loop, loop->nheap++, t);
    heap_up(loop, loop->nheap - 1);
}

static void run_timers(struct ebb_loop *loop)
{
    while (loop->nheap && loop->heap[0]->when <= loop->now) {
        struct ebb_timer *t = loop->heap[0];
        ebb_timer_stop(loop, t);
        t->cb(loop, t);
    }
}

int ebb_loop_defer(struct ebb_loop *loop, ebb_defer_cb cb, void *data)
{
    if (loop->ndefer == loop->defercap) {
        size_t cap = loop->defercap ? loop->defercap * 2 : 64;
        struct defer_item *d = realloc(loop->defer, cap * sizeof(*d));
        if (!d)
            return EBB_ENOMEM;
        loop->defer = d;
        loop->defercap = cap;
    }
    loop->defer[loop->ndefer].cb = cb;
    loop->defer[loop->ndefer].data = data;
    loop->ndefer++;
    return 0;
}

void ebb_loop_run_deferred(struct ebb_loop *loop)
{
    /* callbacks may defer more; run until the list stays empty */
    for (size_t i = 0; i < loop->ndefer; i++)
        loop->defer[i].cb(loop->defer[i].data);
    loop->ndefer = 0;
}

int ebb_loop_run(struct ebb_loop *loop)
{
    struct epoll_event events[LOOP_MAX_EVENTS];

    loop->stop = false;
    while (!loop->stop) {
        int timeout = -1;
        loop->now = ebb_now_ms();
        if (loop->nheap) {
            uint64_t when = loop->heap[0]->when;
            timeout = when <= loop->now ? 0 : (int)EBB_MIN(when - loop->now, 60000u);
        }
        if (loop->ndefer)
            timeout = 0;
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
        }
        run_timers(loop);
        ebb_loop_run_deferred(loop);
    }
    return 0;
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

/*
 * fault.c - allocation and syscall failure injection, linked only into the fault-injection
 * build (make FAULT=1: build/fault/ebb, ASan + UBSan objects; docs/fault-injection.md).
 *
 * The executable defines malloc, calloc, realloc, free, epoll_ctl, accept4, connect, read,
 * recv and send.  Symbols of the executable come first in the dynamic linker's search order,
 * so these definitions take every call in the process: ebb's own, and those inside glibc,
 * libnghttp2 and libyaml too.  Each forwards to the next definition (dlsym RTLD_NEXT: ASan's allocator and
 * interceptors in the sanitizer build, glibc otherwise) unless it fails the call on purpose.
 *
 *   EBB_FAULT="seed=S,every=N[,kinds=malloc+calloc+realloc+epoll_ctl+accept4+connect+read+send]"
 *
 * configures it; injection is off until SIGUSR1 (sent once ebb is ready: configuration loading
 * and startup are not what this exercises) and off again after SIGUSR2.  While on, each call of
 * an enabled kind fails with probability 1/N, decided by a hash of the seed and the call's
 * sequence number: allocations return NULL (ENOMEM), epoll_ctl fails with ENOMEM, accept4 with
 * ENOBUFS, connect with ENETUNREACH, read and recv (both kind "read") and send on a socket
 * with EAGAIN or ECONNRESET (half each; an ECONNRESET also shuts the socket down both ways, as
 * a real reset leaves it: a failed send on a socket that still works would leave the peer
 * waiting for bytes that never come; other descriptors are never failed).  At exit one line on
 * stderr gives the counts:
 *
 *   ebb-fault: seed=1 every=50 injected=1234 calls=61728 malloc=500/25000 ...
 *
 * Nothing here allocates.  Without EBB_FAULT every call is forwarded.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum fault_kind { F_MALLOC, F_CALLOC, F_REALLOC, F_EPOLL_CTL, F_ACCEPT4, F_CONNECT, F_READ, F_SEND,
                  F_NKINDS };

static const char *const fault_names[F_NKINDS] = {
    "malloc", "calloc", "realloc", "epoll_ctl", "accept4", "connect", "read", "send",
};

static struct {
    bool              configured;          /* EBB_FAULT was set and valid */
    atomic_bool       active;              /* between SIGUSR1 and SIGUSR2 */
    uint64_t          seed;
    uint64_t          every;
    unsigned          kinds;               /* bit per enum fault_kind */
    atomic_uint_fast64_t seq;              /* calls seen while active, all kinds */
    atomic_uint_fast64_t calls[F_NKINDS];  /* ... per kind */
    atomic_uint_fast64_t injected[F_NKINDS];
} fault;

/* --- the next definitions --- */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_epoll_ctl)(int, int, int, struct epoll_event *);
static int (*real_accept4)(int, __SOCKADDR_ARG, socklen_t *, int);
static int (*real_connect)(int, __CONST_SOCKADDR_ARG, socklen_t);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_send)(int, const void *, size_t, int);

/* dlsym may allocate (its error buffer, a TLS block) before the allocator is known: those
 * few early allocations come from this arena and are never freed. */
static _Alignas(16) char boot_arena[64 * 1024];
static atomic_size_t boot_used;
static __thread bool resolving;

static void *boot_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    size_t at = atomic_fetch_add(&boot_used, n);
    if (at + n > sizeof(boot_arena))
        return NULL;
    return boot_arena + at;
}

static size_t fault_min(size_t a, size_t b) { return a < b ? a : b; }

static bool in_boot_arena(const void *p)
{
    return (const char *)p >= boot_arena && (const char *)p < boot_arena + sizeof(boot_arena);
}

static void resolve(void)
{
    if (real_free || resolving)
        return;
    resolving = true;
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_epoll_ctl = (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT, "epoll_ctl");
    real_accept4 = (int (*)(int, __SOCKADDR_ARG, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    real_connect = (int (*)(int, __CONST_SOCKADDR_ARG, socklen_t))dlsym(RTLD_NEXT, "connect");
    real_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
    real_recv = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    real_send = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    resolving = false;
}

/* --- the decision --- */

static uint64_t mix64(uint64_t x)   /* splitmix64's finaliser */
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* True when this call of kind is to fail; *coin is a second random bit for the caller. */
static bool fault_hit(enum fault_kind kind, bool *coin)
{
    if (!atomic_load_explicit(&fault.active, memory_order_relaxed) || !(fault.kinds & (1u << kind)))
        return false;
    uint64_t n = atomic_fetch_add_explicit(&fault.seq, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&fault.calls[kind], 1, memory_order_relaxed);
    uint64_t h = mix64(fault.seed * 0x100000001b3ull ^ n);
    if (h % fault.every != 0)
        return false;
    if (coin)
        *coin = (h >> 63) != 0;
    return true;
}

static void fault_count(enum fault_kind kind)
{
    atomic_fetch_add_explicit(&fault.injected[kind], 1, memory_order_relaxed);
}

/* --- allocation --- */

void *malloc(size_t n)
{
    if (!real_malloc) {
        resolve();
        if (!real_malloc)
            return boot_alloc(n);
    }
    if (fault_hit(F_MALLOC, NULL)) {
        fault_count(F_MALLOC);
        errno = ENOMEM;
        return NULL;
    }
    return real_malloc(n);
}

void *calloc(size_t n, size_t sz)
{
    if (!real_calloc) {
        resolve();
        if (!real_calloc) {
            if (sz && n > SIZE_MAX / sz)
                return NULL;
            return boot_alloc(n * sz);   /* static storage: already zero */
        }
    }
    if (fault_hit(F_CALLOC, NULL)) {
        fault_count(F_CALLOC);
        errno = ENOMEM;
        return NULL;
    }
    return real_calloc(n, sz);
}

void *realloc(void *p, size_t n)
{
    if (!real_realloc)
        resolve();
    if (in_boot_arena(p) || !real_realloc) {
        void *q = real_malloc ? real_malloc(n) : boot_alloc(n);
        if (q && p)   /* the arena block's size is unknown: copy what can be there */
            memcpy(q, p, fault_min(n, (size_t)(boot_arena + sizeof(boot_arena) - (char *)p)));
        return q;
    }
    /* realloc(p, 0) frees: never failed */
    if (n && fault_hit(F_REALLOC, NULL)) {
        fault_count(F_REALLOC);
        errno = ENOMEM;
        return NULL;   /* p is untouched, as with a real failure */
    }
    return real_realloc(p, n);
}

void free(void *p)
{
    if (!p || in_boot_arena(p))
        return;
    if (!real_free)
        resolve();
    real_free(p);
}

/* --- syscalls --- */

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    resolve();
    /* removal is what the error paths do: failing it would only leak the registration */
    if (op != EPOLL_CTL_DEL && fault_hit(F_EPOLL_CTL, NULL)) {
        fault_count(F_EPOLL_CTL);
        errno = ENOMEM;
        return -1;
    }
    return real_epoll_ctl(epfd, op, fd, ev);
}

int accept4(int fd, __SOCKADDR_ARG sa, socklen_t *len, int flags)
{
    resolve();
    if (fault_hit(F_ACCEPT4, NULL)) {
        fault_count(F_ACCEPT4);
        errno = ENOBUFS;
        return -1;
    }
    return real_accept4(fd, sa, len, flags);
}

int connect(int fd, __CONST_SOCKADDR_ARG sa, socklen_t len)
{
    resolve();
    if (fault_hit(F_CONNECT, NULL)) {
        fault_count(F_CONNECT);
        errno = ENETUNREACH;
        return -1;
    }
    return real_connect(fd, sa, len);
}

static bool is_socket(int fd)
{
    int type;
    socklen_t len = sizeof(type);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

/* A socket call's turn to fail: EAGAIN, or ECONNRESET with the socket shut down both ways
 * (as after a real reset).  Counted under kind. */
static bool socket_fault(enum fault_kind kind, int fd)
{
    bool coin = false;
    if (!fault_hit(kind, &coin) || !is_socket(fd))
        return false;
    fault_count(kind);
    if (coin)
        shutdown(fd, SHUT_RDWR);
    errno = coin ? ECONNRESET : EAGAIN;
    return true;
}

ssize_t read(int fd, void *buf, size_t n)
{
    resolve();
    return socket_fault(F_READ, fd) ? -1 : real_read(fd, buf, n);
}

/* ebb reads sockets with recv(2) (buf.c): counted as "read" */
ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    resolve();
    return socket_fault(F_READ, fd) ? -1 : real_recv(fd, buf, n, flags);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    resolve();
    return socket_fault(F_SEND, fd) ? -1 : real_send(fd, buf, n, flags);
}

/* --- control --- */

static void fault_on(int sig) { atomic_store(&fault.active, true); }
static void fault_off(int sig) { atomic_store(&fault.active, false); }

static bool parse_kinds(const char *v, size_t len, unsigned *out)
{
    unsigned k = 0;
    while (len) {
        size_t n = 0;
        while (n < len && v[n] != '+')
            n++;
        int i;
        for (i = 0; i < F_NKINDS; i++)
            if (strlen(fault_names[i]) == n && strncmp(v, fault_names[i], n) == 0)
                break;
        if (i == F_NKINDS)
            return false;
        k |= 1u << i;
        v += n;
        len -= n;
        if (len) {
            v++;
            len--;
        }
    }
    *out = k;
    return k != 0;
}

/* Parses EBB_FAULT; a malformed value is an error at startup (the run would mean nothing). */
static void fault_configure(const char *s)
{
    fault.seed = 1;
    fault.every = 0;
    fault.kinds = (1u << F_NKINDS) - 1;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        bool ok = eq != NULL;
        if (ok) {
            size_t kl = (size_t)(eq - s), vl = len - kl - 1;
            char num[32];
            if (kl == 5 && strncmp(s, "kinds", 5) == 0) {
                ok = parse_kinds(eq + 1, vl, &fault.kinds);
            } else if (vl > 0 && vl < sizeof(num)) {
                char *e;
                memcpy(num, eq + 1, vl);
                num[vl] = '\0';
                unsigned long long v = strtoull(num, &e, 10);
                ok = *e == '\0';
                if (kl == 4 && strncmp(s, "seed", 4) == 0)
                    fault.seed = v;
                else if (kl == 5 && strncmp(s, "every", 5) == 0)
                    fault.every = v;
                else
                    ok = false;
            } else {
                ok = false;
            }
        }
        if (!ok) {
            fprintf(stderr, "ebb-fault: EBB_FAULT: bad item \"%.*s\" (want seed=S,every=N"
                    "[,kinds=malloc+calloc+realloc+epoll_ctl+accept4+connect+read+send])\n",
                    (int)len, s);
            _exit(2);
        }
        s += len + (end ? 1 : 0);
    }
    if (fault.every == 0) {
        fprintf(stderr, "ebb-fault: EBB_FAULT: every=N (N >= 1) is required\n");
        _exit(2);
    }
    fault.configured = true;
}

__attribute__((constructor)) static void fault_init(void)
{
    resolve();
    const char *s = getenv("EBB_FAULT");
    if (!s || !*s)
        return;
    fault_configure(s);
    struct sigaction on = { .sa_handler = fault_on, .sa_flags = SA_RESTART };
    struct sigaction off = { .sa_handler = fault_off, .sa_flags = SA_RESTART };
    sigaction(SIGUSR1, &on, NULL);
    sigaction(SIGUSR2, &off, NULL);
    fprintf(stderr, "ebb-fault: armed: seed=%llu every=%llu (SIGUSR1 starts, SIGUSR2 stops)\n",
            (unsigned long long)fault.seed, (unsigned long long)fault.every);
}

__attribute__((destructor)) static void fault_report(void)
{
    char line[1024];
    uint64_t inj = 0, calls = 0;
    int off;

    if (!fault.configured)
        return;
    atomic_store(&fault.active, false);
    for (int i = 0; i < F_NKINDS; i++) {
        inj += atomic_load(&fault.injected[i]);
        calls += atomic_load(&fault.calls[i]);
    }
    off = snprintf(line, sizeof(line), "ebb-fault: seed=%llu every=%llu injected=%llu calls=%llu",
                   (unsigned long long)fault.seed, (unsigned long long)fault.every,
                   (unsigned long long)inj, (unsigned long long)calls);
    for (int i = 0; i < F_NKINDS && off > 0 && (size_t)off < sizeof(line); i++)
        off += snprintf(line + off, sizeof(line) - (size_t)off, " %s=%llu/%llu", fault_names[i],
                        (unsigned long long)atomic_load(&fault.injected[i]),
                        (unsigned long long)atomic_load(&fault.calls[i]));
    fprintf(stderr, "%s\n", line);
}

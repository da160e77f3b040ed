/*
 * access_log.c - the access log off the hot path (issue 12): each worker
 * formats its records, without printf, into its own 64 KiB buffer; a full
 * buffer, and every worker's partial one once a second, goes to a queue that
 * one logger thread writes out.  A worker never waits for the disk: with
 * ACCESS_LOG_QUEUE_MAX buffers already queued, the buffer is dropped and its
 * records counted (access_log.records_dropped).  At exit every worker hands
 * over what it has and the logger drains the queue before the exit summary.
 * Every record is one JSON line, valid JSON whatever the bytes
 * (ebb_buf_append_json_str).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/proxy.h"

#define ACCESS_LOG_CHUNK     (64 * 1024)   /* a buffer goes out at this size */
#define ACCESS_LOG_RECORD    (16 * 1024)   /* room kept for one record above it */
#define ACCESS_LOG_QUEUE_MAX 64            /* buffers waiting for the logger: 4 MiB */

struct chunk {
    struct chunk *next;
    size_t        len;
    uint32_t      records;
    char          data[];
};

static int access_fd = -1;
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  q_cond = PTHREAD_COND_INITIALIZER;
static struct chunk   *q_head, **q_tail = &q_head;
static unsigned        q_len;
static bool            q_closing, logger_started;
static pthread_t       logger;
static atomic_ulong    dropped;

/* The calling worker's buffer and record count. */
static __thread struct ebb_buf tl_buf = { .max = ACCESS_LOG_CHUNK + ACCESS_LOG_RECORD };
static __thread uint32_t tl_records;
/* "YYYY-MM-DDTHH:MM:SS" of tl_sec, formatted once a second. */
static __thread time_t tl_sec = -1;
static __thread char tl_stamp[24];

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(access_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;   /* the sink is gone: nothing better to do with the bytes */
        p += w;
        n -= (size_t)w;
    }
}

/* The logger needs one file of the process's: it takes a table of its own and closes the
 * rest of its copy.  Threads that share an fd table make the kernel take and drop a reference
 * to the file in every recv, send and epoll_wait (fdget); without the logger in it, a
 * one-worker ebb's table has one user again, the thread that runs the loop (docs/design.md,
 * "Threads").  If unshare is refused (a seccomp profile may), the table stays shared:
 * slower, not wrong. */
static void logger_own_fds(void)
{
    if (unshare(CLONE_FILES) < 0)
        return;
    if (access_fd > 0)
        close_range(0, (unsigned)access_fd - 1, 0);
    close_range((unsigned)access_fd + 1, ~0u, 0);
}

static void *logger_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "ebb-access-log");
    logger_own_fds();
    pthread_mutex_lock(&q_lock);
    for (;;) {
        while (!q_head && !q_closing)
            pthread_cond_wait(&q_cond, &q_lock);
        struct chunk *c = q_head;
        if (!c)
            break;   /* closing and drained */
        q_head = c->next;
        if (!q_head)
            q_tail = &q_head;
        q_len--;
        pthread_mutex_unlock(&q_lock);
        write_all(c->data, c->len);
        free(c);
        pthread_mutex_lock(&q_lock);
    }
    pthread_mutex_unlock(&q_lock);
    return NULL;
}

bool ebb_access_log_on(void)
{
    return access_fd >= 0;
}

int ebb_access_log_open(const char *spec, char *err, size_t errlen)
{
    if (!spec || strcmp(spec, "-") == 0) {
        access_fd = STDOUT_FILENO;
    } else if (strcmp(spec, "off") == 0) {
        access_fd = -1;
        return 0;
    } else {
        access_fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (access_fd < 0) {
            snprintf(err, errlen, "access_log: cannot open \"%s\": %s", spec, strerror(errno));
            return EBB_EIO;
        }
    }
    if (pthread_create(&logger, NULL, logger_main, NULL) != 0) {
        snprintf(err, errlen, "access_log: cannot start the logger thread");
        return EBB_EIO;
    }
    logger_started = true;
    return 0;
}

void ebb_access_log_flush(void)
{
    size_t n = ebb_buf_len(&tl_buf);
    struct chunk *c;

    if (n == 0)
        return;
    c = malloc(sizeof(*c) + n);
    if (!c) {
        atomic_fetch_add(&dropped, tl_records);
    } else {
        memcpy(c->data, ebb_buf_start(&tl_buf), n);
        c->len = n;
        c->records = tl_records;
        c->next = NULL;
        pthread_mutex_lock(&q_lock);
        if (q_len < ACCESS_LOG_QUEUE_MAX && !q_closing) {
            *q_tail = c;
            q_tail = &c->next;
            q_len++;
            pthread_cond_signal(&q_cond);
            c = NULL;
        }
        pthread_mutex_unlock(&q_lock);
    }
    if (c) {   /* still ours: the disk is behind by ACCESS_LOG_QUEUE_MAX buffers */
        atomic_fetch_add(&dropped, c->records);
        free(c);
    }
    ebb_buf_reset(&tl_buf);
    tl_records = 0;
}

void ebb_access_log_thread_done(void)
{
    ebb_access_log_flush();
    ebb_buf_free(&tl_buf);
}

void ebb_access_log_close(void)
{
    ebb_access_log_thread_done();   /* the caller's own records, if any */
    if (!logger_started)
        return;
    pthread_mutex_lock(&q_lock);
    q_closing = true;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
    pthread_join(logger, NULL);
    logger_started = false;
}

unsigned long ebb_access_log_dropped(void) { return atomic_load(&dropped); }

const char *ebb_rf_str(unsigned flags, char *buf, size_t len)
{
    static const struct { unsigned f; const char *s; } names[] = {
        { EBB_RF_UF, "UF" }, { EBB_RF_UT, "UT" }, { EBB_RF_UC, "UC" }, { EBB_RF_URX, "URX" },
        { EBB_RF_DC, "DC" }, { EBB_RF_DR, "DR" }, { EBB_RF_NR, "NR" },
    };
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < EBB_ARRAY_LEN(names); i++) {
        if (!(flags & names[i].f))
            continue;
        size_t n = strlen(names[i].s) + (o ? 1 : 0);
        if (o + n + 1 > len)
            break;
        if (o)
            buf[o++] = ',';
        memcpy(buf + o, names[i].s, strlen(names[i].s) + 1);
        o += strlen(names[i].s);
    }
    if (o == 0)
        memcpy(buf, "-", 2);
    return buf;
}

/* --- one record, without printf --- */

static __thread bool tl_failed;   /* an append of the current record failed */

static void put(const char *s, size_t n)
{
    if (ebb_buf_append(&tl_buf, s, n) < 0)
        tl_failed = true;
}
#define PUT(lit) put(lit, sizeof(lit) - 1)

static void put_u64(uint64_t v)
{
    if (ebb_buf_append_u64(&tl_buf, v) < 0)
        tl_failed = true;
}

static void put_2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

static void put_time(void)
{
    struct timespec ts;
    char ms[5] = ".000";

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != tl_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int y = tm.tm_year + 1900;
        char *p = tl_stamp;
        put_2(p, y / 100);
        put_2(p + 2, y % 100);
        p[4] = '-';
        put_2(p + 5, tm.tm_mon + 1);
        p[7] = '-';
        put_2(p + 8, tm.tm_mday);
        p[10] = 'T';
        put_2(p + 11, tm.tm_hour);
        p[13] = ':';
        put_2(p + 14, tm.tm_min);
        p[16] = ':';
        put_2(p + 17, tm.tm_sec);
        tl_sec = ts.tv_sec;
    }
    int m = (int)(ts.tv_nsec / 1000000);
    ms[1] = (char)('0' + m / 100);
    put_2(ms + 2, m % 100);
    put(tl_stamp, 19);
    put(ms, 4);
}

static void put_str(const char *key, size_t klen, const char *v)
{
    put(key, klen);
    if (ebb_buf_append_json_str(&tl_buf, v ? v : "-") < 0)
        tl_failed = true;
}
#define PUT_STR(lit, v) put_str(lit, sizeof(lit) - 1, v)

void ebb_access_log(const struct ebb_access *a)
{
    char rf[64];

    if (access_fd < 0)
        return;
    size_t mark = tl_buf.tail;
    tl_failed = false;
    PUT("{\"start_time\":\"");
    put_time();
    PUT("Z\"");
    PUT_STR(",\"listener\":", a->listener);
    PUT_STR(",\"method\":", a->method);
    PUT_STR(",\"authority\":", a->authority);
    PUT_STR(",\"path\":", a->path);
    PUT_STR(",\"protocol\":", a->protocol);
    PUT(",\"status\":");
    put_u64((uint64_t)(a->status < 0 ? 0 : a->status));
    PUT(",\"bytes_received\":");
    put_u64(a->bytes_received);
    PUT(",\"bytes_sent\":");
    put_u64(a->bytes_sent);
    PUT(",\"duration_ms\":");
    put_u64(a->duration_ms);
    PUT_STR(",\"upstream_host\":", a->upstream_host);
    PUT_STR(",\"upstream_cluster\":", a->upstream_cluster);
    PUT_STR(",\"response_flags\":", ebb_rf_str(a->flags, rf, sizeof(rf)));
    PUT_STR(",\"x_request_id\":", a->request_id);
    PUT_STR(",\"downstream_remote_address\":", a->peer);
    PUT("}\n");
    if (tl_failed) {
        /* out of memory mid-record: take the partial record back out */
        tl_buf.tail = mark;
        atomic_fetch_add(&dropped, 1);
        return;
    }
    tl_records++;
    if (ebb_buf_len(&tl_buf) >= ACCESS_LOG_CHUNK)
        ebb_access_log_flush();
}

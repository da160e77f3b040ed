/* podapp.c - the app container of the pod test (tests/e2e/test_pod.py), built
 * statically into an image FROM scratch (no registry, no Python in the pod).
 *
 *   GET /work?ms=L   200 after L ms, body "done L\n"; anything else: 200 "ok\n"
 *   listens on 0.0.0.0:PORT (argv[1], default 8080), one thread per connection,
 *   HTTP/1.1 keep-alive, GET without a body only.
 *
 * On SIGTERM it behaves as an app with a graceful shutdown should (and as the
 * seed's long requests need): it stops accepting, finishes every request in
 * flight, and exits once none is left.  Whether the answer reaches the client
 * is then up to the sidecar, which got its SIGTERM at the same moment. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static atomic_int inflight;
static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* Reads one request head into buf; returns its length, 0 on EOF/error. */
static size_t read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            return 0;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return n;
    }
    return 0;
}

static void *serve(void *arg)
{
    int fd = (int)(long)arg;
    char req[8192], resp[256], body[64];

    for (;;) {
        if (!read_head(fd, req, sizeof(req)))
            break;
        atomic_fetch_add(&inflight, 1);
        long ms = 0;
        const char *w = strncmp(req, "GET /work?ms=", 13) == 0 ? req + 13 : NULL;
        if (w) {
            ms = strtol(w, NULL, 10);
            sleep_ms(ms);
            snprintf(body, sizeof(body), "done %ld\n", ms);
        } else {
            snprintf(body, sizeof(body), "ok\n");
        }
        int close_after = stopping || strstr(req, "Connection: close") != NULL;
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n%s\r\n%s", strlen(body),
                         close_after ? "Connection: close\r\n" : "", body);
        ssize_t wr = write(fd, resp, (size_t)n);
        atomic_fetch_sub(&inflight, 1);
        if (wr != n || close_after)
            break;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8080, one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct sigaction sa = { .sa_handler = on_term };   /* no SA_RESTART: accept() returns */
    int ls = socket(AF_INET, SOCK_STREAM, 0);

    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 128) < 0) {
        perror("podapp: bind/listen");
        return 1;
    }
    fprintf(stderr, "podapp: listening on :%d\n", port);
    while (!stopping) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(long)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
    close(ls);
    fprintf(stderr, "podapp: SIGTERM: %d request(s) in flight, finishing them\n",
            atomic_load(&inflight));
    while (atomic_load(&inflight) > 0)
        sleep_ms(10);
    fprintf(stderr, "podapp: exiting\n");
    return 0;
}

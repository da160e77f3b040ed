/* http_client.c - one blocking HTTP/1.1 exchange, for `ebb request` and `ebb wait`. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/cli.h"
#include "ebb/core.h"
#include "ebb/h1_parse.h"
#include "ebb/loop.h"

static int wait_fd(int fd, short ev, uint64_t deadline)
{
    uint64_t now = ebb_now_ms();
    if (now >= deadline)
        return EBB_ETIMEDOUT;
    struct pollfd p = { .fd = fd, .events = ev };
    int rc = poll(&p, 1, (int)(deadline - now));
    if (rc == 0)
        return EBB_ETIMEDOUT;
    return rc < 0 ? EBB_EIO : 0;
}

int ebb_http_request(const char *host, uint16_t port, const char *method, const char *path,
                     const char *req_body, uint64_t timeout_ms, int *status, struct ebb_buf *body)
{
    uint64_t deadline = ebb_now_ms() + timeout_ms;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char portstr[8];
    struct ebb_buf req = { .max = 1 << 20 }, resp = { .max = 64 << 20 };
    int fd = -1, rc;

    snprintf(portstr, sizeof(portstr), "%u", port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
        return EBB_ENOTFOUND;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return EBB_EIO;
    }
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno != EINPROGRESS) {
        rc = errno == ECONNREFUSED ? EBB_ECONNREFUSED : EBB_EIO;
        goto out;
    }
    if ((rc = wait_fd(fd, POLLOUT, deadline)) < 0)
        goto out;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) {
        rc = soerr == ECONNREFUSED ? EBB_ECONNREFUSED : EBB_EIO;
        goto out;
    }
    size_t blen = req_body ? strlen(req_body) : 0;
    ebb_buf_appendf(&req, "%s %s HTTP/1.1\r\nhost: %s:%u\r\nuser-agent: ebb/%s\r\n"
                    "content-length: %zu\r\nconnection: close\r\n\r\n", method, path, host, port,
                    EBB_VERSION, blen);
    if (blen)
        ebb_buf_append(&req, req_body, blen);
    while (ebb_buf_len(&req)) {
        ssize_t n = ebb_buf_write_fd(&req, fd);
        if (n == EBB_EAGAIN) {
            if ((rc = wait_fd(fd, POLLOUT, deadline)) < 0)
                goto out;
        } else if (n < 0) {
            rc = EBB_EIO;
            goto out;
        }
    }
    for (;;) {
        ssize_t n = ebb_buf_read_fd(&resp, fd);
        if (n == 0)
            break;
        if (n == EBB_EAGAIN) {
            if ((rc = wait_fd(fd, POLLIN, deadline)) < 0)
                goto out;
            continue;
        }
        if (n < 0) {
            rc = n == EBB_ETOOBIG ? EBB_ETOOBIG : EBB_EIO;
            goto out;
        }
    }
    {
        struct ebb_h1_limits lim;
        static struct ebb_h1_msg m;
        ebb_h1_limits_default(&lim);
        int hl = ebb_h1_parse_response(ebb_buf_start(&resp), ebb_buf_len(&resp), &lim, method,
                                       strlen(method), &m);
        if (hl < 0) {
            rc = EBB_EPROTO;
            goto out;
        }
        *status = m.status;
        const char *p = ebb_buf_start(&resp) + hl;
        size_t left = ebb_buf_len(&resp) - (size_t)hl;
        if (m.framing == EBB_H1_BODY_LENGTH && m.content_length < left)
            left = (size_t)m.content_length;
        ebb_buf_append(body, p, left);
        rc = 0;
    }
out:
    if (fd >= 0)
        close(fd);
    ebb_buf_free(&req);
    ebb_buf_free(&resp);
    return rc;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Reading and writing the receiver's pipes with deadlines: a receiver that
 * hangs must not hang the sender, and one that dies is an error, not a
 * signal.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "private.h"

int xmig__read_exact(xmig_xen *x, int fd, void *buf, size_t len, int timeout_ms,
                     const char *what)
{
    uint64_t deadline = xmig_now_ns() + (uint64_t)timeout_ms * 1000000u;
    uint8_t *p = buf;
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t now = xmig_now_ns();
        ssize_t r;
        int pr;

        if (xmig__cancelled(x)) {
            xmig__seterr(x, ECANCELED, "cancelled while waiting for %s", what);
            return -1;
        }
        if (now >= deadline) {
            xmig__seterr(x, ETIMEDOUT, "timed out waiting for %s", what);
            return -1;
        }
        /* Short slices, so that a cancel is noticed. */
        pr = poll(&pfd, 1, 200);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            xmig__seterr(x, errno, "waiting for %s: %s", what, strerror(errno));
            return -1;
        }
        if (pr == 0)
            continue;
        r = read(fd, p + got, len - got);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0) {
            xmig__seterr(x, errno, "reading %s: %s", what, strerror(errno));
            return -1;
        }
        if (r == 0) {
            xmig__seterr(x, EPIPE,
                         "the receiver closed the connection "
                         "instead of sending %s",
                         what);
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int xmig__expect(xmig_xen *x, int fd, const char *msg, size_t len,
                 int timeout_ms, const char *what)
{
    char buf[128];

    if (len > sizeof(buf)) {
        xmig__seterr(x, EINVAL, "message too long");
        return -1;
    }
    if (xmig__read_exact(x, fd, buf, len, timeout_ms, what) < 0)
        return -1;
    if (memcmp(buf, msg, len) != 0) {
        xmig__seterr(x, EPROTO, "the receiver sent something other than %s",
                     what);
        return -1;
    }
    return 0;
}

int xmig__write_all(xmig_xen *x, int fd, const void *buf, size_t len,
                    const char *what)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t r = write(fd, p, len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            xmig__seterr(x, errno, "writing %s: %s", what,
                         xmig__write_strerror(errno));
            return -1;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

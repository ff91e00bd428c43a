/* SPDX-License-Identifier: LGPL-2.1-only */
/* The copy thread in front of a save file that refuses foreign pages. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

static void *relay_main(void *arg)
{
    struct relay *rl = arg;
    char buf[1 << 16];

    for (;;) {
        struct pollfd pfd = {.fd = rl->in, .events = POLLIN};
        ssize_t n, off = 0;

        /* Wake up now and then: a cancel must not wait for the engine. */
        if (poll(&pfd, 1, 100) == 0) {
            if (xmig__cancelled(rl->x)) {
                rl->err = ECANCELED;
                break;
            }
            continue;
        }
        n = read(rl->in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                rl->err = errno;
            break;
        }
        while (off < n) {
            ssize_t w = write(rl->out, buf + off, (size_t)(n - off));

            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rl->err = errno;
                goto out;
            }
            off += w;
        }
        rl->bytes += (uint64_t)n;
    }
out:
    /* The engine sees EPIPE on its next write instead of blocking. */
    close(rl->in);
    rl->in = -1;
    return NULL;
}

int xmig__relay_start(xmig_xen *x, struct relay *rl, int out, int *wfd_r)
{
    int fds[2];

    memset(rl, 0, sizeof(*rl));
    rl->x = x;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        xmig__seterr(x, errno, "pipe: %s", strerror(errno));
        return -1;
    }
    rl->in = fds[0];
    rl->out = out;
    if (pthread_create(&rl->thread, NULL, relay_main, rl) != 0) {
        close(fds[0]);
        close(fds[1]);
        xmig__seterr(x, EAGAIN, "cannot start the copy thread");
        return -1;
    }
    *wfd_r = fds[1];
    return 0;
}
int xmig__relay_finish(xmig_xen *x, struct relay *rl, int wfd)
{
    close(wfd);
    pthread_join(rl->thread, NULL);
    if (rl->in >= 0)
        close(rl->in);
    if (rl->err) {
        xmig__seterr(x, rl->err, "writing the save file: %s",
                     strerror(rl->err));
        return -1;
    }
    return 0;
}

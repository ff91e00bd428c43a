/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The two halves of the systemd interface that xmigd needs, written out
 * instead of linking libsystemd: sd_notify(3) (one datagram to
 * $NOTIFY_SOCKET) and sd_listen_fds(3) (LISTEN_PID, LISTEN_FDS, fd 3).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify.h"
#include "log.h"

#define LISTEN_FDS_START 3

void notify_send(const char *fmt, ...)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    socklen_t slen;
    char msg[512];
    size_t plen;
    va_list ap;
    int fd, n;

    if (!path || !*path)
        return;
    plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
        log_debug("%s: unusable NOTIFY_SOCKET '%s'", __func__, path);
        return;
    }
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@')
        sun.sun_path[0] = 0; /* abstract namespace */
    slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(msg))
        n = sizeof(msg) - 1;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_warn("%s: socket", __func__);
        return;
    }
    if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sun,
               slen) < 0)
        log_warn("%s: sendto %s", __func__, path);
    close(fd);
}

static int env_number(const char *name, long *v)
{
    const char *s = getenv(name);
    char *end;

    if (!s)
        return -1;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno || end == s || *end ? -1 : 0;
}

int notify_listen_fd(char **err_r)
{
    long pid, n, i;
    int fd = LISTEN_FDS_START, type = 0, listening = 0;
    socklen_t len = sizeof(type);
    struct sockaddr_un sun;
    socklen_t slen = sizeof(sun);

    *err_r = NULL;
    if (env_number("LISTEN_PID", &pid) < 0 || pid != (long)getpid())
        return -1;
    if (env_number("LISTEN_FDS", &n) < 0 || n < 1) {
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        return -1;
    }
    /* Our children (ssh, receivers) must not see these. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    for (i = 1; i < n && i < 64; i++) {
        log_warnx("socket activation: ignoring extra fd %ld",
                  LISTEN_FDS_START + i);
        close((int)(LISTEN_FDS_START + i));
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        getsockname(fd, (struct sockaddr *)&sun, &slen) < 0) {
        if (asprintf(err_r, "socket activation: fd %d is not a socket: %s", fd,
                     strerror(errno)) < 0)
            *err_r = NULL;
        return -2;
    }
    len = sizeof(listening);
    if (sun.sun_family != AF_UNIX || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
        !listening) {
        if (asprintf(err_r,
                     "socket activation: fd %d is not a listening "
                     "UNIX stream socket (check ListenStream= in "
                     "xmigd.socket)",
                     fd) < 0)
            *err_r = NULL;
        return -2;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        if (asprintf(err_r, "socket activation: fcntl: %s", strerror(errno)) <
            0)
            *err_r = NULL;
        return -2;
    }
    return fd;
}

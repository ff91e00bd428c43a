/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Destinations: ssh://[user@]host[:port] runs `xl migrate-receive` there as
 * xl does; exec:COMMAND runs anything that speaks the receiver's side on
 * stdin/stdout; tcp://host:port reaches a receiver listening behind e.g.
 * socat.  Files are for save.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

static void transport_init(struct xmig__transport *t)
{
    t->wfd = -1;
    t->rfd = -1;
    t->pid = -1;
}

/* The child's stdin is our stream, its stdout the receiver's answers. */
static int spawn(xmig_xen *x, const char *cmd, struct xmig__transport *t)
{
    int to[2] = {-1, -1}, from[2] = {-1, -1};
    pid_t pid;

    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
        xmig__seterr(x, errno, "pipe: %s", strerror(errno));
        goto err;
    }
    pid = fork();
    if (pid < 0) {
        xmig__seterr(x, errno, "fork: %s", strerror(errno));
        goto err;
    }
    if (pid == 0) {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (dup2(to[0], 0) < 0 || dup2(from[1], 1) < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    t->wfd = to[1];
    t->rfd = from[0];
    t->pid = pid;
    return 0;
err:
    if (to[0] >= 0) {
        close(to[0]);
        close(to[1]);
    }
    if (from[0] >= 0) {
        close(from[0]);
        close(from[1]);
    }
    return -1;
}

/* Only what a host name, user or port can hold: it goes into a shell line. */
static bool plain(const char *s, size_t n)
{
    size_t i;

    if (!n)
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
              c == ':'))
            return false;
    }
    return true;
}

static int open_ssh(xmig_xen *x, const char *rest, const char *ssh_cmd,
                    struct xmig__transport *t)
{
    const char *at = strchr(rest, '@'), *host = at ? at + 1 : rest;
    const char *colon = strrchr(host, ':');
    size_t hlen = colon ? (size_t)(colon - host) : strlen(host);
    char cmd[1024];
    int n;

    if ((at && !plain(rest, (size_t)(at - rest))) || !plain(host, hlen) ||
        (colon && !plain(colon + 1, strlen(colon + 1)))) {
        xmig__seterr(x, EINVAL,
                     "bad destination 'ssh://%s': expected "
                     "ssh://[user@]host[:port]",
                     rest);
        return -1;
    }
    n = snprintf(cmd, sizeof(cmd), "exec %s%s%s %.*s%.*s xl migrate-receive",
                 ssh_cmd ? ssh_cmd : "ssh", colon ? " -p " : "",
                 colon ? colon + 1 : "", at ? (int)(at - rest + 1) : 0, rest,
                 (int)hlen, host);
    if (n < 0 || (size_t)n >= sizeof(cmd)) {
        xmig__seterr(x, E2BIG, "ssh command too long");
        return -1;
    }
    return spawn(x, cmd, t);
}

static int open_tcp(xmig_xen *x, const char *rest, struct xmig__transport *t)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
    const char *colon = strrchr(rest, ':');
    char host[256];
    int fd = -1, r, saved = 0;

    if (!colon || colon == rest || (size_t)(colon - rest) >= sizeof(host) ||
        !colon[1]) {
        xmig__seterr(x, EINVAL,
                     "bad destination 'tcp://%s': expected "
                     "tcp://host:port",
                     rest);
        return -1;
    }
    memcpy(host, rest, (size_t)(colon - rest));
    host[colon - rest] = 0;
    r = getaddrinfo(host, colon + 1, &hints, &res);
    if (r) {
        xmig__seterr(x, EHOSTUNREACH, "cannot resolve '%s': %s", rest,
                     gai_strerror(r));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        xmig__seterr(x, saved ? saved : ECONNREFUSED,
                     "cannot connect to %s: %s", rest,
                     strerror(saved ? saved : ECONNREFUSED));
        return -1;
    }
    t->wfd = fd;
    t->rfd = dup(fd);
    if (t->rfd < 0) {
        xmig__seterr(x, errno, "dup: %s", strerror(errno));
        close(fd);
        t->wfd = -1;
        return -1;
    }
    return 0;
}

int xmig__transport_open(xmig_xen *x, const char *dest, const char *ssh_cmd,
                         struct xmig__transport *t)
{
    transport_init(t);
    if (strncmp(dest, "ssh://", 6) == 0)
        return open_ssh(x, dest + 6, ssh_cmd, t);
    if (strncmp(dest, "exec:", 5) == 0 && dest[5])
        return spawn(x, dest + 5, t);
    if (strncmp(dest, "tcp://", 6) == 0)
        return open_tcp(x, dest + 6, t);
    xmig__seterr(x, EINVAL,
                 "bad destination '%s': expected ssh://[user@]host"
                 "[:port], exec:COMMAND or tcp://host:port",
                 dest);
    return -1;
}

void xmig__transport_close(struct xmig__transport *t)
{
    int i, status;

    if (t->wfd >= 0)
        close(t->wfd);
    if (t->rfd >= 0)
        close(t->rfd);
    t->wfd = t->rfd = -1;
    if (t->pid <= 0)
        return;
    /* The receiver sees EOF now; give it a moment, then insist. */
    for (i = 0; i < 100; i++) {
        struct timespec ts = {0, 50 * 1000000};

        if (waitpid(t->pid, &status, WNOHANG) != 0)
            goto reaped;
        nanosleep(&ts, NULL);
    }
    kill(t->pid, SIGTERM);
    for (i = 0; i < 40; i++) {
        struct timespec ts = {0, 50 * 1000000};

        if (waitpid(t->pid, &status, WNOHANG) != 0)
            goto reaped;
        nanosleep(&ts, NULL);
    }
    kill(t->pid, SIGKILL);
    waitpid(t->pid, &status, 0);
reaped:
    t->pid = -1;
}

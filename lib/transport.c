/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Destinations: ssh://[user@]host[:port] runs `xl migrate-receive` there as
 * xl does; exec:COMMAND runs anything that speaks the receiver's side on
 * stdin/stdout; tcp://host:port reaches a receiver listening behind e.g.
 * socat.  Files are for save.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

extern char **environ;

static void transport_init(struct xmig__transport *t)
{
    t->wfd = -1;
    t->rfd = -1;
    t->pid = -1;
}

/*
 * An AF_UNIX stream holds at most the writer's send buffer (about 208 KiB
 * by default) in flight: the command (ssh, a relay) then reads a fifth of
 * a 1 MiB record per wakeup, and each pause of ours to map or read page
 * types drains it.  4 MiB, one engine record, if we may (root may exceed
 * wmem_max); otherwise as much as wmem_max allows.  Only a hint: the
 * stream is correct at any size.
 */
static void widen(int fd)
{
    int size = 4 << 20;

    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/*
 * The child's stdin is our stream, its stdout the receiver's answers.  It
 * leads a process group of its own: whatever the command starts (a shell
 * that does not exec its last command, a pipeline) holds our pipe too, and
 * a cancel must reach all of it; nor should the terminal's Ctrl-C reach the
 * receiver behind our back.  The stream is a socket, not a pipe, so that a
 * cancel can end it from another thread (shutdown) while a write blocks
 * on a receiver that stopped reading: the receiver sees EOF, as when the
 * stream ends, and is not killed (see xmig__transport_close()).
 *
 * posix_spawn, not fork: glibc's shares our memory until the exec
 * (CLONE_VM|CLONE_VFORK).  A fork would write-protect every writable page
 * we have, and in a PV dom0 each of those writes traps into Xen: in
 * xmigd, every page of every job it runs.  The child starts with every
 * signal at its default action, none blocked: one we ignore (SIGPIPE)
 * must not stay ignored in the receiver, nor may a cancel's SIGTERM.
 */
static int spawn(xmig_xen *x, const char *cmd, struct xmig__transport *t)
{
    char sh[] = "sh", c[] = "-c";
    char *const argv[] = {sh, c, (char *)cmd, NULL};
    int to[2] = {-1, -1}, from[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t all, none;
    pid_t pid;
    int err;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to) < 0 ||
        pipe2(from, O_CLOEXEC) < 0) {
        xmig__seterr(x, errno, "socketpair/pipe: %s", strerror(errno));
        goto err;
    }
    sigfillset(&all);
    sigemptyset(&none);
    err = posix_spawn_file_actions_init(&fa);
    if (!err) {
        err = posix_spawnattr_init(&at);
        if (err)
            posix_spawn_file_actions_destroy(&fa);
    }
    if (err) {
        xmig__seterr(x, err, "posix_spawn: %s", strerror(err));
        goto err;
    }
    err = posix_spawn_file_actions_adddup2(&fa, to[1], 0);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, from[1], 1);
    if (!err)
        err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                                POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETSIGDEF);
    if (!err)
        err = posix_spawnattr_setpgroup(&at, 0);
    if (!err)
        err = posix_spawnattr_setsigmask(&at, &none);
    if (!err)
        err = posix_spawnattr_setsigdefault(&at, &all);
    if (!err)
        err = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (err) {
        xmig__seterr(x, err, "cannot run /bin/sh for '%s': %s", cmd,
                     strerror(err));
        goto err;
    }
    close(to[1]);
    close(from[1]);
    widen(to[0]);
    t->wfd = to[0];
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

/*
 * Destinations come from socket clients of a daemon that runs ssh as root:
 * nothing in them may reach ssh as an option or the shell as syntax.
 */
struct endpoint {
    char user[33];
    char host[254];
    char port[6]; /* empty: ssh's default */
};

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

static bool valid_user(const char *s)
{
    if (!*s || *s == '-')
        return false;
    for (; *s; s++) {
        if (!is_alnum(*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    }
    return true;
}

/* RFC 1123: dot-separated labels of letters, digits and inner hyphens. */
static bool valid_hostname(const char *s)
{
    size_t label = 0;

    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s == '.') {
            if (!label || s[-1] == '-')
                return false;
            label = 0;
        } else if (is_alnum(*s) || (*s == '-' && label)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label && s[-1] != '-';
}

static bool valid_ipv6(const char *s)
{
    struct in6_addr a;

    return inet_pton(AF_INET6, s, &a) == 1;
}

/* 1-65535 in decimal, nothing else (no sign, no spaces, no 0x). */
static bool valid_port(const char *s)
{
    unsigned long v = 0;
    size_t i;

    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5)
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return i && v >= 1 && v <= 65535;
}

static bool copy_part(char *dst, size_t size, const char *s, size_t n)
{
    if (n >= size)
        return false;
    memcpy(dst, s, n);
    dst[n] = 0;
    return true;
}

/*
 * [user@]host[:port], host a name, an IPv4 address, or an IPv6 address in
 * brackets (or bare, when no port follows it; tcp:// takes the port after
 * the last ':').  0, or -1 with *why saying what is wrong.
 */
static int parse_endpoint(const char *s, bool with_user, bool port_required,
                          struct endpoint *e, const char **why)
{
    const char *at = strchr(s, '@'), *host, *end, *port = NULL;
    size_t colons = 0;

    memset(e, 0, sizeof(*e));
    *why = "a user name is letters, digits, '.', '_' and '-', "
           "and does not start with '-'";
    if (at && (!with_user ||
               !copy_part(e->user, sizeof(e->user), s, (size_t)(at - s)) ||
               !valid_user(e->user)))
        return -1;
    host = at ? at + 1 : s;
    *why = "expected a host name (RFC 1123), an IPv4 address "
           "or an IPv6 address in brackets";
    if (*host == '[') {
        end = strchr(host, ']');
        if (!end ||
            !copy_part(e->host, sizeof(e->host), host + 1,
                       (size_t)(end - host - 1)) ||
            !valid_ipv6(e->host))
            return -1;
        if (end[1] && end[1] != ':')
            return -1;
        port = end[1] ? end + 2 : NULL;
    } else {
        for (end = host; *end; end++)
            colons += *end == ':';
        end = strrchr(host, ':');
        if (colons > 1 && !port_required)
            end = NULL;
        if (!copy_part(e->host, sizeof(e->host), host,
                       end ? (size_t)(end - host) : strlen(host)))
            return -1;
        port = end ? end + 1 : NULL;
        if (strchr(e->host, ':') ? !valid_ipv6(e->host)
                                 : !valid_hostname(e->host))
            return -1;
    }
    *why = "expected a port from 1 to 65535";
    if (port ? !valid_port(port) : port_required)
        return -1;
    if (port)
        snprintf(e->port, sizeof(e->port), "%s", port);
    return 0;
}

static int open_ssh(xmig_xen *x, const char *rest, const char *ssh_cmd,
                    struct xmig__transport *t)
{
    struct endpoint e;
    const char *why;
    char cmd[1024];
    int n;

    if (parse_endpoint(rest, true, false, &e, &why) < 0) {
        xmig__seterr(x, EINVAL,
                     "bad destination 'ssh://%s': %s "
                     "(ssh://[user@]host[:port])",
                     rest, why);
        return -1;
    }
    /* ssh_cmd is root's to choose (options included); the rest is not. */
    n = snprintf(cmd, sizeof(cmd), "exec %s%s%s -- %s%s%s xl migrate-receive",
                 ssh_cmd ? ssh_cmd : "ssh", e.port[0] ? " -p " : "", e.port,
                 e.user, e.user[0] ? "@" : "", e.host);
    if (n < 0 || (size_t)n >= sizeof(cmd)) {
        xmig__seterr(x, E2BIG, "ssh command too long");
        return -1;
    }
    return spawn(x, cmd, t);
}

static int open_tcp(xmig_xen *x, const char *rest, struct xmig__transport *t)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *res = NULL, *ai;
    struct endpoint e;
    const char *why;
    int fd = -1, r, saved = 0;

    if (parse_endpoint(rest, false, true, &e, &why) < 0) {
        xmig__seterr(x, EINVAL,
                     "bad destination 'tcp://%s': %s (tcp://host:port)", rest,
                     why);
        return -1;
    }
    r = getaddrinfo(e.host, e.port, &hints, &res);
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
    /* Other jobs' receivers are spawned meanwhile: none may inherit it. */
    t->rfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
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

/*
 * Whether any process of the receiver's group still runs.  Its leader stays
 * unreaped until we are done, so the group's id cannot be reused meanwhile;
 * but a zombie leader counts as a member for kill(), hence /proc.
 */
static bool group_alive(pid_t pgid)
{
    struct dirent *d;
    bool alive = false;
    siginfo_t si;
    DIR *dir;

    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pgid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
        si.si_pid == 0)
        return true;
    dir = opendir("/proc");
    if (!dir)
        return kill(-pgid, 0) == 0 || errno == EPERM;
    while (!alive && (d = readdir(dir))) {
        char path[sizeof(d->d_name) + 16], buf[512], *p, state;
        long pgrp;
        ssize_t n;
        int fd;

        if (d->d_name[0] < '1' || d->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        /* pid (comm) state ppid pgrp ...: comm may hold anything. */
        p = strrchr(buf, ')');
        if (p && sscanf(p + 1, " %c %*d %ld", &state, &pgrp) == 2 &&
            pgrp == (long)pgid && state != 'Z' && state != 'X')
            alive = true;
    }
    closedir(dir);
    return alive;
}

/*
 * Waits up to ms for the receiver to go: its whole group (a child), or
 * its end of the connection (tcp).  Meanwhile whatever it says is read
 * and dropped: an answer it could not write would end it before it has
 * cleaned up.
 */
static bool wait_gone(struct xmig__transport *t, int ms)
{
    char sink[4096];

    if (t->pid <= 0 && t->rfd < 0)
        return true; /* a file, or nothing opened */
    for (; ms > 0; ms -= 50) {
        /* Without rfd (closed at its EOF), poll only waits. */
        struct pollfd pfd = {.fd = t->rfd, .events = POLLIN};

        if (t->pid > 0 && !group_alive(t->pid))
            return true;
        if (poll(&pfd, 1, 50) > 0) {
            ssize_t n = read(t->rfd, sink, sizeof(sink));

            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                if (t->pid <= 0)
                    return true; /* tcp: it closed its end */
                close(t->rfd);   /* nothing more to drain */
                t->rfd = -1;
            }
        }
    }
    return t->pid > 0 ? !group_alive(t->pid) : false;
}

void xmig__transport_kill(const struct xmig__transport *t, int sig)
{
    if (t->pid <= 0)
        return;
    kill(-t->pid, sig);
    /* A stopped process (ssh after a read from the terminal) would keep
       the signal pending. */
    if (sig != SIGKILL)
        kill(-t->pid, SIGCONT);
}

void xmig__transport_close(struct xmig__transport *t)
{
    int grace = t->grace_ms > 0 ? t->grace_ms : XMIG__EOF_GRACE_MS;
    int status;

    /*
     * EOF is how xl's receiver learns that the migration failed: it then
     * writes its report and destroys its copy, and only then exits.  A
     * report it cannot write makes it exit at once and leave the copy
     * behind (xl 4.17, migrate_receive()), and so does a signal, to it or
     * to the ssh in between.  So: EOF (a dup of a socket keeps it open
     * without shutdown), its answers read until it has gone, and only a
     * receiver still there after the grace is killed.
     */
    if (t->wfd >= 0) {
        shutdown(t->wfd, SHUT_WR);
        close(t->wfd);
    }
    t->wfd = -1;
    if (!wait_gone(t, grace) && t->pid > 0) {
        xmig__transport_kill(t, SIGTERM);
        if (!wait_gone(t, XMIG__KILL_GRACE_MS)) {
            xmig__transport_kill(t, SIGKILL);
            wait_gone(t, XMIG__KILL_GRACE_MS);
        }
    }
    if (t->rfd >= 0)
        close(t->rfd);
    t->rfd = -1;
    if (t->pid > 0)
        waitpid(t->pid, &status, 0);
    t->pid = -1;
}

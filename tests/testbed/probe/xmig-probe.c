/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig-probe: facts about a domain that the testbed scenarios assert on and
 * that no stock tool prints.  Installed to libexec, run in the testbed.
 *
 *   xmig-probe state DOMID     running|paused|suspended|shutdown|dying
 *   xmig-probe logdirty DOMID  on|off
 *   xmig-probe downtime DOMID [TIMEOUT_S]
 *       waits for DOMID to suspend, then for a domain that was paused at
 *       that moment (the incoming copy of a local migration) to run; prints
 *       downtime_s=SECONDS.  The same clock for xl and for xmig.
 *   xmig-probe relay HOST PORT
 *       stdin -> HOST:PORT -> stdout, counting: on exit prints
 *       relay_sent_bytes=N on stderr.  The one transport every sender in a
 *       benchmark goes through, so their byte counts compare.
 *   xmig-probe sigdfl CMD [ARG...]
 *       runs CMD with every signal at its default action and unblocked.
 *       busybox's `nc -ll -e` ignores SIGCHLD, and an ignored signal stays
 *       ignored across exec: xl migrate-receive's waitpid() for its
 *       daemonizing child then fails with ECHILD now and then, and the
 *       receiver reports "Domain creation failed".
 *   xmig-probe nobody CMD [ARG...]
 *       runs CMD as uid/gid 65534 with no supplementary groups: the
 *       "no privileges" case (dom0's busybox setpriv cannot change ids).
 *
 * Xen answers "is log-dirty on?" nowhere directly; enabling it fails with
 * EINVAL exactly when it already is (paging_log_dirty_enable), so the probe
 * enables it and, if that worked, switches it straight off again.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <grp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xenctrl.h>

#define MAXDOMS 256

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(void)
{
    struct timespec ts = {0, 5 * 1000000};

    nanosleep(&ts, NULL);
}

static int downtime(xc_interface *xch, uint32_t domid, double limit)
{
    static xc_dominfo_t info[MAXDOMS];
    bool paused_at_suspend[MAXDOMS] = {false};
    double t0 = now(), ts = 0;
    int n = 0, i;

    /* Phase 1: until the source is suspended. */
    while (now() - t0 < limit) {
        n = xc_domain_getinfo(xch, 0, MAXDOMS, info);
        for (i = 0; i < n; i++) {
            if (info[i].domid == domid && info[i].shutdown &&
                info[i].shutdown_reason == 2 /* SHUTDOWN_suspend */)
                ts = now();
        }
        if (ts > 0)
            break;
        nap();
    }
    if (ts == 0) {
        fprintf(stderr, "xmig-probe: domain %u never suspended\n", domid);
        return 1;
    }
    for (i = 0; i < n; i++)
        if (info[i].domid < MAXDOMS && info[i].domid != domid &&
            info[i].paused && !info[i].shutdown)
            paused_at_suspend[info[i].domid] = true;
    /* Phase 2: until one of those runs. */
    while (now() - t0 < limit) {
        n = xc_domain_getinfo(xch, 0, MAXDOMS, info);
        for (i = 0; i < n; i++) {
            uint32_t d = info[i].domid;

            if (d < MAXDOMS && !info[i].paused && !info[i].shutdown &&
                paused_at_suspend[d]) {
                printf("downtime_s=%.3f\n", now() - ts);
                return 0;
            }
        }
        nap();
    }
    fprintf(stderr, "xmig-probe: no domain resumed after the suspend\n");
    return 1;
}

static int relay(const char *host, const char *port)
{
    static char buf[1 << 20];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    unsigned long long sent = 0;
    bool in_open = true;
    int fd, rc = 1;

    signal(SIGPIPE, SIG_IGN);
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "xmig-probe: cannot resolve %s\n", host);
        return 1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        fprintf(stderr, "xmig-probe: connect %s:%s: %s\n", host, port,
                strerror(errno));
        freeaddrinfo(ai);
        return 1;
    }
    freeaddrinfo(ai);
    for (;;) {
        struct pollfd p[2] = {{.fd = in_open ? 0 : -1, .events = POLLIN},
                              {.fd = fd, .events = POLLIN}};
        ssize_t n, w, off;

        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            n = read(0, buf, sizeof(buf));
            if (n <= 0) {
                /* The sender is done: tell the receiver, keep listening. */
                in_open = false;
                shutdown(fd, SHUT_WR);
            }
            for (off = 0; n > 0 && off < n; off += w) {
                w = write(fd, buf + off, (size_t)(n - off));
                if (w <= 0)
                    goto out;
            }
            if (n > 0)
                sent += (unsigned long long)n;
        }
        if (p[1].revents) {
            n = read(fd, buf, sizeof(buf));
            if (n <= 0) {
                rc = 0;
                break;
            }
            for (off = 0; off < n; off += w) {
                w = write(1, buf + off, (size_t)(n - off));
                if (w <= 0)
                    goto out;
            }
        }
    }
out:
    fprintf(stderr, "relay_sent_bytes=%llu\n", sent);
    close(fd);
    return rc;
}

static int sigdfl(char **argv)
{
    sigset_t none;
    int sig;

    for (sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* fails harmlessly for KILL, STOP, 32, 33 */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    fprintf(stderr, "xmig-probe: %s: %s\n", argv[0], strerror(errno));
    return 127;
}

static int nobody(char **argv)
{
    if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
        fprintf(stderr, "xmig-probe: cannot drop privileges: %s\n",
                strerror(errno));
        return 2;
    }
    execvp(argv[0], argv);
    fprintf(stderr, "xmig-probe: %s: %s\n", argv[0], strerror(errno));
    return 127;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "relay") == 0)
        return relay(argv[2], argv[3]);
    if (argc > 2 && strcmp(argv[1], "nobody") == 0)
        return nobody(argv + 2);
    if (argc > 2 && strcmp(argv[1], "sigdfl") == 0)
        return sigdfl(argv + 2);
    xc_interface *xch;
    xc_dominfo_t info;
    uint32_t domid;
    int rc = 1;

    if (argc < 3) {
        fprintf(stderr, "usage: xmig-probe state|logdirty|downtime DOMID\n");
        return 2;
    }
    domid = (uint32_t)strtoul(argv[2], NULL, 10);
    xch = xc_interface_open(NULL, NULL, 0);
    if (!xch)
        return 1;
    if (xc_domain_getinfo(xch, domid, 1, &info) != 1 || info.domid != domid) {
        fprintf(stderr, "xmig-probe: domain %u does not exist\n", domid);
        goto out;
    }
    if (strcmp(argv[1], "state") == 0) {
        const char *s = info.dying ? "dying"
                        : info.shutdown
                            ? (info.shutdown_reason == 2 /* suspend */
                                   ? "suspended"
                                   : "shutdown")
                        : info.paused ? "paused"
                                      : "running";
        printf("%s\n", s);
        rc = 0;
    } else if (strcmp(argv[1], "logdirty") == 0) {
        if (xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY,
                              NULL, 0) == 0) {
            xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
            printf("off\n");
            rc = 0;
        } else if (errno == EINVAL) {
            printf("on\n");
            rc = 0;
        } else {
            fprintf(stderr, "xmig-probe: %s\n", strerror(errno));
        }
    } else if (strcmp(argv[1], "downtime") == 0) {
        rc = downtime(xch, domid, argc > 3 ? atof(argv[3]) : 900);
    } else {
        fprintf(stderr, "xmig-probe: unknown probe '%s'\n", argv[1]);
        rc = 2;
    }
out:
    xc_interface_close(xch);
    return rc;
}

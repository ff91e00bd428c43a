/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig-probe: facts about a domain that the testbed scenarios assert on and
 * that no stock tool prints.  Installed to libexec, run in the testbed.
 *
 *   xmig-probe state DOMID     running|paused|suspended|shutdown|dying
 *   xmig-probe logdirty DOMID  on|off
 *   xmig-probe cputime DOMID   the CPU time Xen has accounted to DOMID, all
 *       its vcpus, in ns.  For dom0 (0) it includes the time Xen spent
 *       emulating dom0's trapped page-table writes, which no clock inside
 *       dom0 (/proc/stat) sees.
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
 *   xmig-probe resume DOMID
 *       suspend-cancel resume of a suspended domain, as libxl does it
 *       (xc_domain_resume, then xenstored told): what an admin's toolstack
 *       does for a guest a failed migration left suspended; xl has no
 *       command for it.
 *   xmig-probe vcpu DOMID
 *       vCPU 0's registers as Xen keeps them (xc_vcpu_getcontext), one
 *       line: what a guest that stopped early was doing (issue #15: a PVH
 *       guest halted in its early exception handler).
 *   xmig-probe peek DOMID GFN [COUNT]
 *       COUNT (1) pages of DOMID's memory from GFN on, raw, to stdout: a
 *       stopped guest's page tables, stack and variables, without xl
 *       dump-core (which took over 6 minutes for 128 MiB under TCG).
 *   xmig-probe cost FILE -- CMD [ARG...]
 *       runs CMD and writes what it cost dom0 to FILE, one line:
 *       "WALL_US SYS_S CPU_NS PTWR MMU_UPDATES HYPERCALLS": wall time,
 *       dom0's system time (/proc/stat), dom0's CPU time as Xen accounts
 *       it, and Xen's counters (reset first) of trapped page-table writes,
 *       mmu_update calls and hypercalls of every kind.  Exits as CMD did.
 *       CMD is started by posix_spawn (a vfork): a fork would write-protect
 *       every writable page of the caller, one trapped write each, and
 *       count the measurement's own cost as the command's.  A shell that
 *       reads the counters around a command forks several times in the
 *       window: about 1300 trapped writes per command in the testbed,
 *       whatever the command.
 *   xmig-probe feed MIB pipe|socket -- CMD [ARG...]
 *       writes MIB MiB to CMD's stdin and waits for CMD: what a sender
 *       costs dom0 when sending costs nothing, the floor under every
 *       sender's figure (CMD: the relay to host b's sink).  The stdin is a
 *       pipe (as xl's to its ssh) or a socket (as xmig's to an exec:
 *       receiver, with its 4 MiB send buffer), and the data not all zeros.
 *   xmig-probe sink
 *       reads stdin to its end and prints sink_bytes=N on stderr.
 *   xmig-probe writebench DIR MIB
 *       what it costs dom0 to put MIB MiB into a new file in DIR, in the
 *       ways a save could: write(2) into a fresh file, into one allocated
 *       beforehand (fallocate), memcpy into a shared mapping of it; beside
 *       a memcpy between anonymous buffers and one reading of Xen's
 *       counters.  One line per case: "writebench CASE wall_ms=W
 *       cpu_ms=C dom0_ms=D" (C: this process's user+system time; D:
 *       dom0's CPU time as Xen accounts it).
 *   xmig-probe gfns DOMID
 *       every gfn from 0 to the domain's highest, its type read from Xen
 *       1024 at a time, as a sender's first pass does: prints the runs of
 *       gfns that hold data ("data FIRST-LAST"), then "gfns_data=N
 *       tot_pages=T max_gpfn=M queries=Q sweep_ms=W dom0_ms=D" (W: wall
 *       time of the sweep, D: dom0's CPU time as Xen accounts it).
 *   xmig-probe rxproxy [OPTION...] -- CMD [ARG...]
 *       a faulty receiver in front of a real one (CMD: xl migrate-receive),
 *       relaying both ways and misbehaving as told.  CMD runs in a session
 *       of its own with default signals: a signal meant for the receiver
 *       never reaches it, it sees EOF, as a remote xl behind ssh would.
 *         cut=N         end after N bytes of the sender's stream
 *         drop-ready    pass the banner only; end once CMD says 'ready'
 *         hold=banner|in:N|ready|report
 *                       stop relaying at that point (before the banner,
 *                       after N bytes in, before 'ready', before the
 *                       report), write our pid to FLAG, and wait until
 *                       the sender goes (then end) or for SECS (then go on)
 *         flag=FILE secs=SECS (default 120)
 *         fail-go=a|b   answer the go-ahead ourselves, keeping it from CMD:
 *                       the report with status 1, then end (a: no
 *                       permission to resume) or (b) wait until CMD, left
 *                       without a go-ahead, destroyed its copy and exited,
 *                       then send the permission (the go-ahead message)
 *         count=FILE    at the end, the number of stream bytes relayed
 *                       (up to CMD's 'ready': the go-ahead is not stream)
 *       "end": ours and CMD's stdin are closed; CMD cleans up after itself
 *       and we exit when it does.
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
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

/* xc_map_foreign_range: one page at a time is all peek needs. */
#define XC_WANT_COMPAT_MAP_FOREIGN_API
#include <xenctrl.h>
#include <xenguest.h>
#include <xenstore.h>

#define MAXDOMS 256

extern char **environ;

/*
 * Domains through xc_domain_getinfolist(), in every Xen release (4.18
 * removed xc_domain_getinfo()).  As xc_domain_getinfo() had it, a crashed
 * domain is not shut down.
 */
static unsigned int shutdown_reason(const xc_domaininfo_t *i)
{
    return (i->flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask;
}

static bool is_shutdown(const xc_domaininfo_t *i)
{
    return (i->flags & XEN_DOMINF_shutdown) &&
           shutdown_reason(i) != SHUTDOWN_crash;
}

static bool is_suspended(const xc_domaininfo_t *i)
{
    return is_shutdown(i) && shutdown_reason(i) == SHUTDOWN_suspend;
}

static bool is_paused(const xc_domaininfo_t *i)
{
    return i->flags & XEN_DOMINF_paused;
}

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

/* Dying, or shut down for good: a crash too (is_shutdown leaves it out). */
static bool is_gone(const xc_domaininfo_t *i)
{
    return (i->flags & XEN_DOMINF_dying) ||
           ((i->flags & XEN_DOMINF_shutdown) &&
            shutdown_reason(i) != SHUTDOWN_suspend);
}

/*
 * Ends as soon as there is nothing left to wait for: a guest that crashed
 * (a testbed fault), or a migration that failed, would otherwise hold a
 * scenario for the whole limit.
 */
static int downtime(xc_interface *xch, uint32_t domid, double limit)
{
    static xc_domaininfo_t info[MAXDOMS];
    bool paused_at_suspend[MAXDOMS] = {false};
    double t0 = now(), ts = 0;
    int n = 0, i, left;

    /* Phase 1: until the source is suspended. */
    while (now() - t0 < limit) {
        bool there = false;

        n = xc_domain_getinfolist(xch, 0, MAXDOMS, info);
        for (i = 0; i < n; i++) {
            if (info[i].domain != domid)
                continue;
            there = true;
            if (is_suspended(&info[i]))
                ts = now();
            else if (is_gone(&info[i]))
                there = false;
        }
        if (ts > 0)
            break;
        if (n > 0 && !there) {
            fprintf(stderr, "xmig-probe: domain %u ended before it suspended\n",
                    domid);
            return 1;
        }
        nap();
    }
    if (ts == 0) {
        fprintf(stderr, "xmig-probe: domain %u never suspended\n", domid);
        return 1;
    }
    for (i = 0; i < n; i++)
        if (info[i].domain < MAXDOMS && info[i].domain != domid &&
            is_paused(&info[i]) && !is_shutdown(&info[i]))
            paused_at_suspend[info[i].domain] = true;
    /* Phase 2: until one of those runs, while any of them is left. */
    while (now() - t0 < limit) {
        n = xc_domain_getinfolist(xch, 0, MAXDOMS, info);
        for (i = 0, left = 0; i < n; i++) {
            uint32_t d = info[i].domain;

            if (d >= MAXDOMS || !paused_at_suspend[d] || is_gone(&info[i]))
                continue;
            if (!is_paused(&info[i]) && !is_shutdown(&info[i])) {
                printf("downtime_s=%.3f\n", now() - ts);
                return 0;
            }
            left++;
        }
        if (n > 0 && !left) {
            fprintf(stderr, "xmig-probe: every domain paused at the suspend "
                            "ended without running\n");
            return 1;
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

/* What xl migrate-receive says, in stream order (Xen's tools/xl/xl.h). */
#define RX_BANNER 54 /* "xl migration receiver ready, ...\n" */
#define RX_READY (RX_BANNER + 34)
#define RX_GO_LEN 44
static const char rx_go[RX_GO_LEN] =
    "domain is yours, you are cleared to unpause";
#define RX_REPORT "my copy unpause results are as follows"

struct rxproxy {
    long long cut, hold_in, in, stream;
    const char *hold, *flag, *count, *fail_go;
    bool drop_ready, released;
    int secs, to_cmd, from_cmd;
    pid_t pid;
    char out[4096];
    size_t out_got, out_sent;
};

static bool write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/*
 * The sender sees the end at once; CMD sees EOF, and we read what it says
 * until it exits: a receiver that cannot write its 'ready' might die of
 * SIGPIPE before it destroys its copy.
 */
static void rx_end(struct rxproxy *px, int rc)
{
    char buf[256];
    FILE *f;

    if (px->count && (f = fopen(px->count, "w"))) {
        fprintf(f, "%lld\n", px->stream >= 0 ? px->stream : px->in);
        fclose(f);
    }
    close(0);
    close(1);
    close(px->to_cmd);
    while (read(px->from_cmd, buf, sizeof(buf)) > 0)
        ;
    exit(rc);
}

/* Waits for the sender to go (then ends) or for secs (then returns). */
static void rx_hold(struct rxproxy *px, const char *what)
{
    /* xmig's stream is a socket: its end shows as RDHUP, a pipe's as HUP. */
    struct pollfd p[2] = {{.fd = 0, .events = POLLRDHUP}, {.fd = 1}};
    FILE *f;
    double t0 = now();

    fprintf(stderr, "rxproxy: holding %s after %lld bytes\n", what, px->in);
    if (px->flag && (f = fopen(px->flag, "w"))) {
        fprintf(f, "%d %s\n", (int)getpid(), what);
        fclose(f);
    }
    while (now() - t0 < px->secs) {
        if (poll(p, 2, 200) > 0 &&
            ((p[0].revents & (POLLHUP | POLLERR | POLLRDHUP)) ||
             p[1].revents)) {
            fprintf(stderr, "rxproxy: the sender went\n");
            rx_end(px, 0);
        }
    }
    px->released = true;
}

/* Passes on what CMD said, up to what the mode lets through. */
static void rx_output(struct rxproxy *px)
{
    size_t limit = px->out_got;

    if (px->stream < 0 && px->out_got >= RX_READY)
        px->stream = px->in;

    if (px->drop_ready) {
        if (px->out_got >= RX_READY) {
            fprintf(stderr, "rxproxy: dropping 'ready'\n");
            rx_end(px, 0);
        }
        limit = RX_BANNER;
    } else if (px->fail_go) {
        limit = RX_READY;
    } else if (px->hold && !px->released) {
        if (strcmp(px->hold, "banner") == 0)
            rx_hold(px, "the banner");
        else if (strcmp(px->hold, "ready") == 0 && px->out_got >= RX_READY)
            rx_hold(px, "'ready'");
        else if (strcmp(px->hold, "report") == 0 && px->out_got > RX_READY)
            rx_hold(px, "the report");
        if (!px->released)
            limit = strcmp(px->hold, "ready") == 0    ? RX_BANNER
                    : strcmp(px->hold, "report") == 0 ? RX_READY
                                                      : limit;
    }
    if (limit > px->out_got)
        limit = px->out_got;
    if (limit > px->out_sent) {
        if (!write_full(1, px->out + px->out_sent, limit - px->out_sent))
            rx_end(px, 0);
        px->out_sent = limit;
    }
}

static void rx_fail_go(struct rxproxy *px)
{
    char go[RX_GO_LEN];
    size_t got = 0;
    char status = 1;

    while (got < sizeof(go)) {
        ssize_t n = read(0, go + got, sizeof(go) - got);

        if (n <= 0)
            rx_end(px, 0);
        got += (size_t)n;
    }
    fprintf(stderr, "rxproxy: go-ahead kept from the receiver; failing\n");
    if (!write_full(1, RX_REPORT, sizeof(RX_REPORT)) ||
        !write_full(1, &status, 1))
        rx_end(px, 0);
    close(px->to_cmd);
    if (strcmp(px->fail_go, "b") == 0) {
        /* xl destroys its copy when the go-ahead does not come. */
        waitpid(px->pid, NULL, 0);
        fprintf(stderr, "rxproxy: receiver gone; permission to resume\n");
        write_full(1, rx_go, sizeof(rx_go));
    }
    rx_end(px, 0);
}

static int rxproxy(int argc, char **argv)
{
    static char buf[1 << 16];
    struct rxproxy px = {.cut = -1, .hold_in = -1, .stream = -1, .secs = 120};
    int in_pipe[2], out_pipe[2], i;
    bool in_open = true;

    for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *a = argv[i];

        if (strncmp(a, "cut=", 4) == 0)
            px.cut = atoll(a + 4);
        else if (strcmp(a, "drop-ready") == 0)
            px.drop_ready = true;
        else if (strncmp(a, "hold=in:", 8) == 0)
            px.hold = "in", px.hold_in = atoll(a + 8);
        else if (strncmp(a, "hold=", 5) == 0)
            px.hold = a + 5;
        else if (strncmp(a, "flag=", 5) == 0)
            px.flag = a + 5;
        else if (strncmp(a, "secs=", 5) == 0)
            px.secs = atoi(a + 5);
        else if (strncmp(a, "fail-go=", 8) == 0)
            px.fail_go = a + 8;
        else if (strncmp(a, "count=", 6) == 0)
            px.count = a + 6;
        else {
            fprintf(stderr, "xmig-probe rxproxy: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: xmig-probe rxproxy [OPTION...] -- CMD...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0)
        return 1;
    px.pid = fork();
    if (px.pid < 0)
        return 1;
    if (px.pid == 0) {
        setsid();
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        return sigdfl(argv + i + 1);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    px.to_cmd = in_pipe[1];
    px.from_cmd = out_pipe[0];
    for (;;) {
        bool want_in = in_open && !(px.fail_go && px.out_sent >= RX_READY);
        struct pollfd p[2] = {{.fd = want_in ? 0 : -1, .events = POLLIN},
                              {.fd = px.from_cmd, .events = POLLIN}};
        ssize_t n;
        size_t max = sizeof(buf);

        if (px.fail_go && px.out_sent >= RX_READY)
            rx_fail_go(&px);
        if (px.hold_in >= 0 && !px.released && px.in >= px.hold_in)
            rx_hold(&px, "the stream");
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p[1].revents) {
            n = read(px.from_cmd, px.out + px.out_got,
                     sizeof(px.out) - px.out_got);
            if (n <= 0)
                rx_end(&px, 0); /* the receiver is done, or gone */
            px.out_got += (size_t)n;
            rx_output(&px);
        }
        if (p[0].revents) {
            if (px.cut >= 0 && px.cut - px.in < (long long)max)
                max = (size_t)(px.cut - px.in);
            if (px.hold_in >= 0 && !px.released &&
                px.hold_in - px.in < (long long)max)
                max = (size_t)(px.hold_in - px.in);
            n = max ? read(0, buf, max) : 0;
            if (n <= 0) {
                in_open = false;
                close(px.to_cmd);
                continue;
            }
            if (!write_full(px.to_cmd, buf, (size_t)n))
                rx_end(&px, 0);
            px.in += n;
        }
        if (px.cut >= 0 && px.in >= px.cut) {
            fprintf(stderr, "rxproxy: cut after %lld bytes\n", px.in);
            rx_end(&px, 0);
        }
    }
}

/* Xen's counters named in names[], summed over their cpus, into v[]. */
static int perfc_read(xc_interface *xch, unsigned int n,
                      const char *const *names, unsigned long long *v)
{
    DECLARE_HYPERCALL_BUFFER(xc_perfc_desc_t, desc);
    DECLARE_HYPERCALL_BUFFER(xc_perfc_val_t, val);
    int ndesc, nval, i, j, k = 0, rc = -1;
    unsigned int m, found = 0;

    if (xc_perfc_query_number(xch, &ndesc, &nval) < 0)
        return -1;
    desc = xc_hypercall_buffer_alloc(xch, desc, sizeof(*desc) * ndesc);
    val = xc_hypercall_buffer_alloc(xch, val, sizeof(*val) * nval);
    if (!desc || !val ||
        xc_perfc_query(xch, HYPERCALL_BUFFER(desc), HYPERCALL_BUFFER(val)) < 0)
        goto out;
    for (i = 0; i < ndesc; i++) {
        for (m = 0; m < n; m++) {
            if (strncmp(desc[i].name, names[m], sizeof(desc[i].name)) != 0)
                continue;
            v[m] = 0;
            for (j = 0; j < (int)desc[i].nr_vals && k + j < nval; j++)
                v[m] += val[k + j];
            found |= 1u << m;
        }
        k += desc[i].nr_vals;
    }
    rc = found == (1u << n) - 1 ? 0 : -1;
out:
    xc_hypercall_buffer_free(xch, desc);
    xc_hypercall_buffer_free(xch, val);
    return rc;
}

static int dom0_cpu(xc_interface *xch, unsigned long long *ns)
{
    xc_domaininfo_t info;

    if (xc_domain_getinfolist(xch, 0, 1, &info) != 1 || info.domain != 0)
        return -1;
    *ns = info.cpu_time;
    return 0;
}

/* dom0's system time in ticks of USER_HZ, all cpus. */
static int sys_ticks(unsigned long long *t)
{
    FILE *f = fopen("/proc/stat", "r");
    int ok = f && fscanf(f, "cpu %*u %*u %llu", t) == 1;

    if (f)
        fclose(f);
    return ok ? 0 : -1;
}

static int cost(int argc, char **argv)
{
    static const char *const names[] = {"writable pt emulations",
                                        "calls to mmu_update", "hypercalls"};
    unsigned long long c0, c1, s0, s1, v[3];
    xc_interface *xch;
    pid_t pid;
    double t0, t1;
    int st, err;
    FILE *f;

    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: xmig-probe cost FILE -- CMD [ARG...]\n");
        return 125;
    }
    unlink(argv[2]);
    xch = xc_interface_open(NULL, NULL, 0);
    if (!xch || xc_perfc_reset(xch) < 0 || dom0_cpu(xch, &c0) < 0 ||
        sys_ticks(&s0) < 0) {
        fprintf(stderr, "xmig-probe cost: cannot read dom0's costs: %s\n",
                strerror(errno));
        return 125;
    }
    t0 = now();
    err = posix_spawnp(&pid, argv[4], NULL, NULL, argv + 4, environ);
    if (err) {
        fprintf(stderr, "xmig-probe cost: %s: %s\n", argv[4], strerror(err));
        return 127;
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    t1 = now();
    if (sys_ticks(&s1) < 0 || dom0_cpu(xch, &c1) < 0 ||
        perfc_read(xch, 3, names, v) < 0) {
        fprintf(stderr, "xmig-probe cost: cannot read dom0's costs: %s\n",
                strerror(errno));
        return 125;
    }
    xc_interface_close(xch);
    f = fopen(argv[2], "w");
    if (!f ||
        fprintf(f, "%.0f %.2f %llu %llu %llu %llu\n", (t1 - t0) * 1e6,
                (double)(s1 - s0) / 100, c1 - c0, v[0], v[1], v[2]) < 0 ||
        fclose(f) != 0) {
        fprintf(stderr, "xmig-probe cost: %s: %s\n", argv[2], strerror(errno));
        return 125;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int feed(int argc, char **argv)
{
    static uint64_t buf[(4 << 20) / sizeof(uint64_t)];
    unsigned long long left;
    posix_spawn_file_actions_t fa;
    bool sock;
    char *end;
    size_t i;
    pid_t pid;
    int fd[2], st, err;

    if (argc < 6 || strcmp(argv[4], "--") != 0 ||
        (strcmp(argv[3], "pipe") != 0 && strcmp(argv[3], "socket") != 0)) {
        fprintf(stderr, "usage: xmig-probe feed MIB pipe|socket -- CMD...\n");
        return 125;
    }
    errno = 0;
    left = strtoull(argv[2], &end, 10) << 20;
    if (errno || *end || !left) {
        fprintf(stderr, "xmig-probe feed: bad size '%s'\n", argv[2]);
        return 125;
    }
    sock = strcmp(argv[3], "socket") == 0;
    for (i = 0; i < sizeof(buf) / sizeof(buf[0]); i++)
        buf[i] = (i + 1) * 0x9e3779b97f4a7c15ULL;
    signal(SIGPIPE, SIG_IGN);
    if (sock ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) < 0
             : pipe2(fd, O_CLOEXEC) < 0) {
        perror("xmig-probe feed");
        return 125;
    }
    /* xmig's transport: a socket holding a 4 MiB record (transport.c). */
    if (sock) {
        int size = 4 << 20;

        if (setsockopt(fd[1], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) <
            0)
            setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    /* The reading end is fd[0] for a pipe; either end for a socket. */
    err = posix_spawn_file_actions_init(&fa);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, fd[0], 0);
    if (!err)
        err = posix_spawnp(&pid, argv[5], &fa, NULL, argv + 5, environ);
    if (err) {
        fprintf(stderr, "xmig-probe feed: %s: %s\n", argv[5], strerror(err));
        return 127;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fd[0]);
    while (left) {
        size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        ssize_t w = write(fd[1], buf, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "xmig-probe feed: write: %s\n", strerror(errno));
            break;
        }
        left -= (unsigned long long)w;
    }
    close(fd[1]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (left)
        return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int sink(void)
{
    static char buf[1 << 20];
    unsigned long long got = 0;
    ssize_t n;

    while ((n = read(0, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            got += (unsigned long long)n;
    fprintf(stderr, "sink_bytes=%llu\n", got);
    return n < 0;
}

struct wb_clock {
    double wall;
    double cpu;
    unsigned long long dom0;
};

static void wb_start(xc_interface *xch, struct wb_clock *c)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    c->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (dom0_cpu(xch, &c->dom0) < 0)
        c->dom0 = 0;
    c->wall = now();
}

static void wb_print(xc_interface *xch, const char *name,
                     const struct wb_clock *c0)
{
    struct wb_clock c1;

    c1.wall = now();
    wb_start(xch, &c1);
    printf("writebench %s wall_ms=%.2f cpu_ms=%.2f dom0_ms=%.2f\n", name,
           (c1.wall - c0->wall) * 1e3, (c1.cpu - c0->cpu) * 1e3,
           (double)(c1.dom0 - c0->dom0) / 1e6);
    fflush(stdout);
}

static int wb_write(int fd, const char *buf, size_t chunk, size_t total)
{
    size_t off = 0;

    while (off < total) {
        ssize_t w = write(fd, buf, chunk);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

static int writebench(const char *dir, const char *mib)
{
    static const char *const names[] = {"writable pt emulations", "hypercalls"};
    const size_t chunk = 4 << 20;
    unsigned long long v[2];
    struct wb_clock c;
    char path[4096];
    char *buf, *anon;
    size_t total, i;
    void *map;
    int fd, rc = 1;
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);

    total = (size_t)strtoul(mib, NULL, 10) << 20;
    if (!xch || !total || total % chunk) {
        fprintf(stderr, "usage: xmig-probe writebench DIR MIB (MIB: 4k)\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/writebench.img", dir);
    buf = malloc(chunk);
    anon = mmap(NULL, total, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!buf || anon == MAP_FAILED)
        goto out;
    for (i = 0; i < chunk; i++)
        buf[i] = (char)(i * 131 + 7);

    wb_start(xch, &c);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || wb_write(fd, buf, chunk, total) < 0)
        goto fail;
    close(fd);
    wb_print(xch, "write-fresh", &c);
    wb_start(xch, &c);
    unlink(path);
    wb_print(xch, "unlink", &c);

    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    wb_start(xch, &c);
    if (fd < 0 || fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)total) < 0)
        goto fail;
    wb_print(xch, "fallocate", &c);
    wb_start(xch, &c);
    if (wb_write(fd, buf, chunk, total) < 0)
        goto fail;
    wb_print(xch, "write-fallocated", &c);
    close(fd);
    unlink(path);

    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)total) < 0)
        goto fail;
    wb_start(xch, &c);
    map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    for (i = 0; i < total; i += chunk)
        memcpy((char *)map + i, buf, chunk);
    munmap(map, total);
    wb_print(xch, "mmap-memcpy", &c);
    close(fd);
    unlink(path);

    wb_start(xch, &c);
    for (i = 0; i < total; i += chunk)
        memcpy(anon + i, buf, chunk);
    wb_print(xch, "memcpy-anon-fault", &c);
    wb_start(xch, &c);
    for (i = 0; i < total; i += chunk)
        memcpy(anon + i, buf, chunk);
    wb_print(xch, "memcpy-anon", &c);

    wb_start(xch, &c);
    if (perfc_read(xch, 2, names, v) < 0)
        goto fail;
    wb_print(xch, "perfc-read", &c);
    wb_start(xch, &c);
    for (i = 0; i < 10; i++)
        dom0_cpu(xch, &v[0]);
    wb_print(xch, "dominfo-x10", &c);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "xmig-probe writebench: %s\n", strerror(errno));
    unlink(path);
out:
    free(buf);
    if (anon != MAP_FAILED && anon)
        munmap(anon, total);
    if (xch)
        xc_interface_close(xch);
    return rc;
}

/*
 * The layout of a PVH/HVM guest's gfns and what reading it costs: whether
 * the gfns holding data add up to the pages Xen counts for the domain.
 */
static int gfns(uint32_t domid)
{
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    DECLARE_HYPERCALL_BUFFER(xen_pfn_t, arr);
    struct xen_domctl d = {.cmd = XEN_DOMCTL_getpageframeinfo3,
                           .domain = (domid_t)domid};
    unsigned long long data = 0, queries = 0, c0, c1;
    xen_pfn_t max_gpfn, gfn, run = ~0UL;
    xc_domaininfo_t info;
    double t0, t1;
    int rc = 1;

    if (!xch)
        return 1;
    arr = xc_hypercall_buffer_alloc(xch, arr, 1024 * sizeof(*arr));
    if (!arr || xc_domain_maximum_gpfn(xch, domid, &max_gpfn) < 0 ||
        xc_domain_getinfolist(xch, domid, 1, &info) != 1 ||
        info.domain != domid || dom0_cpu(xch, &c0) < 0) {
        fprintf(stderr, "xmig-probe: domain %u: %s\n", domid, strerror(errno));
        goto out;
    }
    t0 = now();
    for (gfn = 0; gfn <= max_gpfn; gfn += 1024) {
        unsigned int i,
            n = max_gpfn - gfn + 1 < 1024 ? max_gpfn - gfn + 1 : 1024;

        for (i = 0; i < n; i++)
            arr[i] = gfn + i;
        d.u.getpageframeinfo3.num = n;
        set_xen_guest_handle(d.u.getpageframeinfo3.array, arr);
        if (xc_domctl(xch, &d) < 0) {
            fprintf(stderr, "xmig-probe: page types at %#lx: %s\n",
                    (unsigned long)gfn, strerror(errno));
            goto out;
        }
        queries++;
        for (i = 0; i < n; i++) {
            uint32_t t = (uint32_t)arr[i] & XEN_DOMCTL_PFINFO_LTAB_MASK;
            bool has = t != XEN_DOMCTL_PFINFO_XTAB &&
                       t != XEN_DOMCTL_PFINFO_BROKEN &&
                       t != XEN_DOMCTL_PFINFO_XALLOC;

            if (has && run == ~0UL)
                run = gfn + i;
            if (!has && run != ~0UL) {
                printf("data %#lx-%#lx\n", (unsigned long)run,
                       (unsigned long)(gfn + i - 1));
                run = ~0UL;
            }
            data += has;
        }
    }
    t1 = now();
    if (run != ~0UL)
        printf("data %#lx-%#lx\n", (unsigned long)run, (unsigned long)max_gpfn);
    if (dom0_cpu(xch, &c1) < 0)
        goto out;
    printf("gfns_data=%llu tot_pages=%llu max_gpfn=%#lx queries=%llu "
           "sweep_ms=%.1f dom0_ms=%.1f\n",
           data, (unsigned long long)info.tot_pages, (unsigned long)max_gpfn,
           queries, (t1 - t0) * 1e3, (c1 - c0) / 1e6);
    rc = 0;
out:
    xc_hypercall_buffer_free(xch, arr);
    xc_interface_close(xch);
    return rc;
}

static int resume(uint32_t domid)
{
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    struct xs_handle *xs = xs_open(0);
    int rc = 1;

    if (!xch || !xs) {
        fprintf(stderr, "xmig-probe: cannot open Xen interfaces\n");
    } else if (xc_domain_resume(xch, domid, 1) < 0) {
        fprintf(stderr, "xmig-probe: resume %u: %s\n", domid, strerror(errno));
    } else if (!xs_resume_domain(xs, domid)) {
        fprintf(stderr, "xmig-probe: xenstore resume %u: %s\n", domid,
                strerror(errno));
    } else {
        rc = 0;
    }
    if (xs)
        xs_close(xs);
    if (xch)
        xc_interface_close(xch);
    return rc;
}

static int vcpu(uint32_t domid)
{
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    vcpu_guest_context_any_t c;
    int rc = 1;

    if (!xch) {
        fprintf(stderr, "xmig-probe: cannot open Xen interfaces\n");
    } else if (xc_vcpu_getcontext(xch, domid, 0, &c) < 0) {
        fprintf(stderr, "xmig-probe: vcpu %u/0: %s\n", domid, strerror(errno));
    } else {
        const struct cpu_user_regs_x86_64 *r = &c.x64.user_regs;

        printf("rip=%#llx rsp=%#llx rflags=%#llx rax=%#llx rbx=%#llx "
               "rcx=%#llx rdx=%#llx rsi=%#llx rdi=%#llx rbp=%#llx r8=%#llx "
               "r9=%#llx r10=%#llx r11=%#llx r12=%#llx r13=%#llx r14=%#llx "
               "r15=%#llx cr0=%#llx cr2=%#llx cr3=%#llx cr4=%#llx\n",
               (unsigned long long)r->rip, (unsigned long long)r->rsp,
               (unsigned long long)r->rflags, (unsigned long long)r->rax,
               (unsigned long long)r->rbx, (unsigned long long)r->rcx,
               (unsigned long long)r->rdx, (unsigned long long)r->rsi,
               (unsigned long long)r->rdi, (unsigned long long)r->rbp,
               (unsigned long long)r->r8, (unsigned long long)r->r9,
               (unsigned long long)r->r10, (unsigned long long)r->r11,
               (unsigned long long)r->r12, (unsigned long long)r->r13,
               (unsigned long long)r->r14, (unsigned long long)r->r15,
               (unsigned long long)c.x64.ctrlreg[0],
               (unsigned long long)c.x64.ctrlreg[2],
               (unsigned long long)c.x64.ctrlreg[3],
               (unsigned long long)c.x64.ctrlreg[4]);
        rc = 0;
    }
    if (xch)
        xc_interface_close(xch);
    return rc;
}

static int peek(uint32_t domid, unsigned long gfn, unsigned long count)
{
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    int rc = 0;

    if (!xch) {
        fprintf(stderr, "xmig-probe: cannot open Xen interfaces\n");
        return 1;
    }
    for (unsigned long i = 0; i < count && rc == 0; i++) {
        void *p =
            xc_map_foreign_range(xch, domid, XC_PAGE_SIZE, PROT_READ, gfn + i);

        if (!p) {
            fprintf(stderr, "xmig-probe: map gfn %#lx of %u: %s\n", gfn + i,
                    domid, strerror(errno));
            rc = 1;
            break;
        }
        if (fwrite(p, XC_PAGE_SIZE, 1, stdout) != 1)
            rc = 1;
        munmap(p, XC_PAGE_SIZE);
    }
    if (fflush(stdout) != 0)
        rc = 1;
    xc_interface_close(xch);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "vcpu") == 0)
        return vcpu((uint32_t)strtoul(argv[2], NULL, 10));
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "peek") == 0)
        return peek((uint32_t)strtoul(argv[2], NULL, 10),
                    strtoul(argv[3], NULL, 0),
                    argc == 5 ? strtoul(argv[4], NULL, 0) : 1);
    if (argc == 4 && strcmp(argv[1], "relay") == 0)
        return relay(argv[2], argv[3]);
    if (argc > 2 && strcmp(argv[1], "nobody") == 0)
        return nobody(argv + 2);
    if (argc > 2 && strcmp(argv[1], "sigdfl") == 0)
        return sigdfl(argv + 2);
    if (argc > 2 && strcmp(argv[1], "rxproxy") == 0)
        return rxproxy(argc, argv);
    if (argc > 1 && strcmp(argv[1], "cost") == 0)
        return cost(argc, argv);
    if (argc > 1 && strcmp(argv[1], "feed") == 0)
        return feed(argc, argv);
    if (argc == 4 && strcmp(argv[1], "writebench") == 0)
        return writebench(argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "sink") == 0)
        return sink();
    if (argc == 3 && strcmp(argv[1], "gfns") == 0)
        return gfns((uint32_t)strtoul(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "resume") == 0)
        return resume((uint32_t)strtoul(argv[2], NULL, 10));
    xc_interface *xch;
    xc_domaininfo_t info;
    uint32_t domid;
    int rc = 1;

    if (argc < 3) {
        fprintf(stderr,
                "usage: xmig-probe state|logdirty|cputime|downtime DOMID\n");
        return 2;
    }
    domid = (uint32_t)strtoul(argv[2], NULL, 10);
    xch = xc_interface_open(NULL, NULL, 0);
    if (!xch)
        return 1;
    if (xc_domain_getinfolist(xch, domid, 1, &info) != 1 ||
        info.domain != domid) {
        fprintf(stderr, "xmig-probe: domain %u does not exist\n", domid);
        goto out;
    }
    if (strcmp(argv[1], "state") == 0) {
        const char *s = (info.flags & XEN_DOMINF_dying) ? "dying"
                        : is_shutdown(&info)
                            ? (is_suspended(&info) ? "suspended" : "shutdown")
                        : is_paused(&info) ? "paused"
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
        } else if (errno == EOPNOTSUPP) {
            /* A PV guest on a Xen without shadow paging: it cannot be on. */
            printf("off\n");
            rc = 0;
        } else {
            fprintf(stderr, "xmig-probe: %s\n", strerror(errno));
        }
    } else if (strcmp(argv[1], "cputime") == 0) {
        printf("%llu\n", (unsigned long long)info.cpu_time);
        rc = 0;
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

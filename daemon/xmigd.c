/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmigd: runs migrations for whoever asks on the control socket, so that
 * they outlive the terminal that started them.  This file: options,
 * configuration, the socket (ours or systemd's), signals, the lifecycle
 * (start, reload on SIGHUP, stop cleanly on SIGTERM), and the wiring of
 * the layers, from the bottom up: control.c (peers) and job.c (workers),
 * report.c (jobs as JSON), command.c (requests).  Only this file sees
 * them all; none calls into it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "command.h"
#include "conf.h"
#include "control.h"
#include "domain.h"
#include "job.h"
#include "log.h"
#include "notify.h"
#include "proto.h"
#include "report.h"

static struct config xmigd_conf;
static const char *xmigd_journal_dir = XMIG_JOURNAL_DIR;

static struct event_base *base;
static struct event *ev_term, *ev_int, *ev_hup, *ev_stop, *ev_linger;
static const char *conf_path = XMIGD_DEFAULT_CONFIG;
static bool conf_explicit;
static const char *socket_opt;
static bool debug_opt;
static char *socket_path; /* the path we bound, or NULL */
static bool socket_ours;
static int stopping; /* SIGTERMs seen */
static uint64_t t_start;
static uint64_t t_linger;
static char last_status[160];

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xmigd [-f] [-d] [-S SOCKET] [-c CONFIG] [-J DIR]\n"
            "       xmigd --version\n"
            "  -f, --foreground  stay in the foreground, log to stderr\n"
            "  -d, --debug       log debug messages\n"
            "  -S, --socket PATH control socket (default %s)\n"
            "  -c, --config PATH configuration (default %s)\n"
            "  -J, --journal-dir DIR  jobs' crash journal (default %s)\n",
            PROTO_DEFAULT_SOCKET, XMIGD_DEFAULT_CONFIG, XMIG_JOURNAL_DIR);
}

static bool xmigd_stopping(void)
{
    return stopping > 0;
}

static double xmigd_uptime(void)
{
    return (double)(xmig_now_ns() - t_start) / 1e9;
}

/* STATUS= for systemctl status; and, when stopping, maybe the end. */
static void xmigd_status_changed(void)
{
    char status[160];

    snprintf(status, sizeof(status), "%s%u running, %u queued, %u clients",
             stopping ? "stopping: " : "", job_count(JOB_RUNNING),
             job_count(JOB_QUEUED), control_clients());
    if (strcmp(status, last_status) != 0) {
        snprintf(last_status, sizeof(last_status), "%s", status);
        notify_send("STATUS=%s", status);
    }
    if (stopping && ev_stop)
        event_active(ev_stop, EV_TIMEOUT, 1);
}

/* Once stopping and idle: flush the clients (for 2 s at most), exit. */
static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    struct timeval tv = {0, 50000};

    if (control_clients() == 0 || xmig_now_ns() - t_linger > 2000000000u) {
        event_base_loopbreak(base);
        return;
    }
    evtimer_add(ev_linger, &tv);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    if (!stopping || !job_idle() || t_linger)
        return;
    log_info("no job running: exiting");
    t_linger = xmig_now_ns();
    control_flush_and_close_all();
    linger_cb(-1, 0, NULL);
}

static void term_cb(evutil_socket_t sig, short what, void *arg)
{
    struct job *j;

    if (stopping++) {
        TAILQ_FOREACH(j, job_all(), entry)
            if (j->state == JOB_RUNNING)
                log_info("still waiting for job %llu (%s, phase %s)",
                         (unsigned long long)j->id, j->name, j->phase);
        return;
    }
    log_info("%s: stopping (%u running, %u queued)", strsignal((int)sig),
             job_count(JOB_RUNNING), job_count(JOB_QUEUED));
    notify_send("STOPPING=1");
    job_stop_all();
    xmigd_status_changed();
}

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    struct config nc;
    char *err = NULL;

    notify_send("RELOADING=1");
    config_init(&nc);
    if (config_load(&nc, conf_path, !conf_explicit, &err) < 0) {
        log_warnx("reload: %s; keeping the configuration in use",
                  err ? err : "out of memory");
        free(err);
        config_dispose(&nc);
        notify_send("READY=1");
        return;
    }
    if (!socket_opt && socket_path &&
        strcmp(nc.socket ? nc.socket : PROTO_DEFAULT_SOCKET, socket_path))
        log_warnx("reload: a new socket path takes effect at restart");
    control_set_access(nc.group);
    if (socket_ours)
        control_chmod(socket_path, nc.group);
    if (!debug_opt)
        log_setlevel(nc.log_level);
    config_dispose(&xmigd_conf);
    xmigd_conf = nc;
    job_set_max(xmigd_conf.max_jobs);
    log_info("reloaded %s: max_jobs %u, group %s, log level %s", conf_path,
             xmigd_conf.max_jobs, xmigd_conf.group ? xmigd_conf.group : "-",
             log_level_name(log_getlevel()));
    job_schedule();
    notify_send("READY=1");
}

/* Under systemd, stderr may be the journal's stream: then use <N>. */
static enum log_target stderr_target(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
        fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
        return LOG_TO_JOURNAL;
    return LOG_TO_STDERR;
}

static void daemonize(void)
{
    pid_t pid;
    int fd;

    pid = fork();
    if (pid < 0)
        fatal("fork");
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        fatal("setsid");
    pid = fork();
    if (pid < 0)
        fatal("fork");
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0)
        fatal("chdir /");
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        fatal("/dev/null");
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
}

static void recover_report(void *arg, const struct xmig_recover_report *rep)
{
    bool bad =
        rep->state == XMIG_RECOVER_UNKNOWN || rep->state == XMIG_RECOVER_FAILED;

    log_msg(bad ? XMIG_LOG_WARN : XMIG_LOG_INFO, "recovery: %s", rep->message);
}

/*
 * Before any job: a job of ours that died (SIGKILL, a crash) may have left
 * its guest suspended, renamed or in log-dirty mode.
 */
static void recover(void)
{
    xmig_xen *x = domain_xen(NULL);
    int unknown;

    if (!x)
        return;
    unknown = xmig_recover(x, xmigd_journal_dir, recover_report, NULL);
    if (unknown < 0)
        log_warnx("recovery: %s", xmig_xen_error(x));
    else if (unknown > 0)
        log_warnx("recovery: %d guest(s) in an unknown state: check both "
                  "hosts, then run `xmig recover`",
                  unknown);
}

static struct event *on_signal(int sig, event_callback_fn cb)
{
    struct event *ev = evsignal_new(base, sig, cb, NULL);

    if (!ev || event_add(ev, NULL) < 0)
        fatalx("cannot handle signal %d", sig);
    return ev;
}

/* The one place where the layers meet: each gets the one above's hooks. */
static const struct control_cb control_hooks = {
    .greet = command_greet,
    .dispatch = command_dispatch,
};

static const struct job_cb job_hooks = {
    .queued = report_queued,
    .running = report_running,
    .event = report_event,
    .log = report_log,
    .ended = report_ended,
    .changed = xmigd_status_changed,
};

static const struct command_env command_env = {
    .conf = &xmigd_conf,
    .stopping = xmigd_stopping,
    .uptime = xmigd_uptime,
};

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"foreground", no_argument, NULL, 'f'},
        {"debug", no_argument, NULL, 'd'},
        {"socket", required_argument, NULL, 'S'},
        {"config", required_argument, NULL, 'c'},
        {"journal-dir", required_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    bool foreground = false;
    char *err = NULL;
    int c, fd;

    while ((c = getopt_long(argc, argv, "fdS:c:J:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            foreground = true;
            break;
        case 'd':
            debug_opt = true;
            break;
        case 'S':
            socket_opt = optarg;
            break;
        case 'c':
            conf_path = optarg;
            conf_explicit = true;
            break;
        case 'J':
            xmigd_journal_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("xmigd %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    t_start = xmig_now_ns();
    log_init(foreground ? stderr_target() : LOG_TO_STDERR,
             debug_opt ? XMIG_LOG_DEBUG : XMIG_LOG_INFO);
    config_init(&xmigd_conf);
    if (config_load(&xmigd_conf, conf_path, !conf_explicit, &err) < 0)
        fatalx("%s", err ? err : "out of memory");
    if (!debug_opt)
        log_setlevel(xmigd_conf.log_level);
    control_set_access(xmigd_conf.group);
    job_set_max(xmigd_conf.max_jobs);
    /* Receivers and ssh get SIGPIPE back (libxmig resets it for them). */
    signal(SIGPIPE, SIG_IGN);

    fd = notify_listen_fd(&err);
    if (fd == -2)
        fatalx("%s", err ? err : "out of memory");
    if (fd >= 0) {
        log_info("listening on the socket systemd passed");
    } else {
        socket_path = strdup(socket_opt          ? socket_opt
                             : xmigd_conf.socket ? xmigd_conf.socket
                                                 : PROTO_DEFAULT_SOCKET);
        if (!socket_path)
            fatalx("out of memory");
        fd = control_listen(socket_path, xmigd_conf.group, &err);
        if (fd < 0)
            fatalx("%s", err ? err : "out of memory");
        socket_ours = true;
        log_info("listening on %s", socket_path);
    }
    if (!foreground) {
        daemonize();
        log_init(LOG_TO_SYSLOG, log_getlevel());
    }

    base = event_base_new();
    if (!base)
        fatalx("cannot create the event loop");
    ev_term = on_signal(SIGTERM, term_cb);
    ev_int = on_signal(SIGINT, term_cb);
    ev_hup = on_signal(SIGHUP, hup_cb);
    ev_stop = event_new(base, -1, 0, stop_cb, NULL);
    ev_linger = evtimer_new(base, linger_cb, NULL);
    if (!ev_stop || !ev_linger)
        fatalx("out of memory");
    domain_init();
    recover();
    command_init(&command_env);
    if (job_init(base, xmigd_journal_dir, &job_hooks) < 0 ||
        control_init(base, fd, &control_hooks) < 0)
        fatalx("cannot start");
    log_info("xmigd %s ready: protocol %d, max_jobs %u, Xen %s",
             PACKAGE_VERSION, PROTO_VERSION, xmigd_conf.max_jobs,
             domain_xen_available() ? "available" : "not available");
    notify_send("READY=1\nMAINPID=%d", (int)getpid());
    xmigd_status_changed();

    event_base_dispatch(base);

    control_shutdown();
    job_shutdown();
    domain_shutdown();
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
    event_free(ev_stop);
    event_free(ev_linger);
    event_base_free(base);
    libevent_global_shutdown();
    if (socket_ours)
        unlink(socket_path);
    free(socket_path);
    free(err);
    config_dispose(&xmigd_conf);
    log_info("exited");
    return 0;
}

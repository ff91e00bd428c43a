/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig migrate / xmig save: send a domain to a stock xl receiver or to a
 * file that stock `xl restore` reads.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xmig-cli.h"

static int parse_num(const char *opt, const char *s, long min, long max,
                     long *v)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || *end || !*s || n < min || n > max) {
        cli_error("%s: expected a number from %ld to %ld, got '%s'", opt, min,
                  max, s);
        return -1;
    }
    *v = n;
    return 0;
}

int job_args_parse(const struct cmd_entry *e, int argc, char **argv,
                   enum xmig_job_kind kind, bool evacuate, struct job_args *a)
{
    static const struct option opts[] = {
        {"live", no_argument, NULL, 'l'},
        {"no-live", no_argument, NULL, 'L'},
        {"max-iters", required_argument, NULL, 'i'},
        {"target-dirty", required_argument, NULL, 't'},
        {"abort-if-busy", no_argument, NULL, 'a'},
        {"no-skip", no_argument, NULL, 'K'},
        {"engine", required_argument, NULL, 'e'},
        {"ssh-command", required_argument, NULL, 's'},
        {"keep", no_argument, NULL, 'k'},
        {"downtime-ms", required_argument, NULL, 'D'},
        {"strategy", required_argument, NULL, 'S'},
        {"batch", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {"direct", no_argument, NULL, 'd'},
        {"detach", no_argument, NULL, 'x'},
        {"parallel", required_argument, NULL, 'P'},
        {"ready-timeout", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    struct xmig_job_params *p = &a->p;
    long v;
    int c;

    memset(a, 0, sizeof(*a));
    xmig_job_params_default(p);
    p->kind = kind;
    /* xl save is not live unless asked; xl migrate is. */
    p->live = p->kind == XMIG_JOB_MIGRATE;
    a->parallel = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            p->live = true;
            a->has_live = true;
            break;
        case 'L':
            p->live = false;
            a->has_live = true;
            break;
        case 'i':
            if (parse_num("--max-iters", optarg, 1, 1000, &v) < 0)
                return EXIT_USAGE;
            p->policy.max_iters = (unsigned int)v;
            a->has_max_iters = true;
            break;
        case 't':
            if (parse_num("--target-dirty", optarg, 0, 1L << 40, &v) < 0)
                return EXIT_USAGE;
            p->policy.target_dirty = v;
            a->has_target_dirty = true;
            break;
        case 'a':
            p->policy.abort_if_busy = true;
            break;
        case 'K':
            p->policy.skip_redirtied = false;
            break;
        case 'e':
            if (strcmp(optarg, "libxc") == 0) {
                p->engine = XMIG_ENGINE_LIBXC;
            } else if (strcmp(optarg, "xmig") == 0) {
                p->engine = XMIG_ENGINE_XMIG;
            } else {
                cli_error("unknown engine '%s' (xmig, libxc)", optarg);
                return EXIT_USAGE;
            }
            a->has_engine = true;
            break;
        case 'D':
            if (parse_num("--downtime-ms", optarg, 1, 3600000, &v) < 0)
                return EXIT_USAGE;
            p->policy.downtime_ms = (unsigned int)v;
            a->has_downtime_ms = true;
            break;
        case 'S':
            if (xmig_strategy_parse(optarg, &p->arena.strategy) < 0) {
                cli_error(
                    "unknown strategy '%s' (per-batch, arena, kernel, exit)",
                    optarg);
                return EXIT_USAGE;
            }
            a->has_strategy = true;
            break;
        case 'b':
            if (parse_num("--batch", optarg, 1, XMIG_MAX_BATCH, &v) < 0)
                return EXIT_USAGE;
            p->arena.batch = (unsigned int)v;
            a->has_batch = true;
            break;
        case 'R':
            if (p->kind == XMIG_JOB_SAVE) {
                cli_error("--ready-timeout is for migrations: a save has no "
                          "receiver");
                return EXIT_USAGE;
            }
            if (parse_num("--ready-timeout", optarg, 1, XMIG_READY_TIMEOUT_MAX,
                          &v) < 0)
                return EXIT_USAGE;
            p->ready_timeout_s = (unsigned int)v;
            a->has_ready_timeout = true;
            break;
        case 's':
            p->ssh_command = optarg;
            break;
        case 'k':
            if (p->kind != XMIG_JOB_SAVE || evacuate)
                return cli_usage(e);
            p->keep = true;
            break;
        case 'j':
            a->json = true;
            break;
        case 'd':
            if (evacuate)
                return cli_usage(e);
            a->direct = true;
            break;
        case 'x':
            a->detach = true;
            break;
        case 'P':
            if (!evacuate)
                return cli_usage(e);
            if (parse_num("--parallel", optarg, 1, 64, &v) < 0)
                return EXIT_USAGE;
            a->parallel = (unsigned int)v;
            break;
        default:
            return cli_usage(e);
        }
    }
    if (a->direct && a->detach) {
        cli_error("--detach needs xmigd: it cannot go with --direct");
        return EXIT_USAGE;
    }
    if (optind + (evacuate ? 1 : 2) != argc)
        return cli_usage(e);
    if (evacuate) {
        p->dest = argv[optind];
    } else {
        p->domain = argv[optind];
        p->dest = argv[optind + 1];
    }
    return EXIT_OK;
}

void job_args_request(const struct job_args *a, struct client_req *rq)
{
    const struct xmig_job_params *p = &a->p;
    struct json_object *j = rq->o;

    if (a->has_live || p->kind == XMIG_JOB_MIGRATE)
        proto_add_bool(j, "live", p->live);
    if (a->has_max_iters)
        proto_add_uint(j, "max_iters", p->policy.max_iters);
    if (a->has_target_dirty)
        proto_add_uint(j, "target_dirty",
                       (unsigned long long)p->policy.target_dirty);
    if (p->policy.abort_if_busy)
        proto_add_bool(j, "abort_if_busy", true);
    if (!p->policy.skip_redirtied)
        proto_add_bool(j, "skip_redirtied", false);
    if (a->has_downtime_ms)
        proto_add_uint(j, "downtime_ms", p->policy.downtime_ms);
    if (a->has_engine)
        proto_add_str(j, "engine",
                      p->engine == XMIG_ENGINE_LIBXC ? "libxc" : "xmig");
    if (a->has_strategy)
        proto_add_str(j, "strategy", xmig_strategy_name(p->arena.strategy));
    if (a->has_batch)
        proto_add_uint(j, "batch", p->arena.batch);
    if (a->has_ready_timeout)
        proto_add_uint(j, "ready_timeout", p->ready_timeout_s);
    if (p->ssh_command)
        proto_add_str(j, "ssh_command", p->ssh_command);
    if (p->keep)
        proto_add_bool(j, "keep", true);
}

/*
 * --direct: the job is this process's, so SIGINT, SIGTERM and SIGHUP (a
 * dropped ssh session) cancel it instead of killing xmig halfway through,
 * which could leave the guest suspended, renamed or in log-dirty mode.  A
 * thread takes them with sigwait(), blocked everywhere else: a cancel takes
 * locks, which a handler must not.  Past the go-ahead, cancel has no effect
 * and later signals neither: the receiver's report decides where the guest
 * runs, and xmig waits for it.  Signals ignored on entry (nohup, `&` in a
 * script) stay ignored.
 */
struct direct {
    struct render rd;
    xmig_cancel *cancel;
    sigset_t sigs;
    int wake; /* one of sigs, 0 if all are ignored (no thread then) */
    atomic_bool committed;
    atomic_bool done;
    pthread_t thread;
};

static void direct_event(void *arg, const struct xmig_event *ev)
{
    struct direct *d = arg;

    if (ev->type == XMIG_EV_PHASE && strcmp(ev->phase, "committed") == 0)
        atomic_store(&d->committed, true);
    render_event(&d->rd, ev);
}

static void *direct_signals(void *arg)
{
    struct direct *d = arg;
    bool asked = false;
    int sig;

    for (;;) {
        if (sigwait(&d->sigs, &sig) != 0)
            continue;
        if (atomic_load(&d->done))
            return NULL;
        if (atomic_load(&d->committed))
            cli_error("%s: too late to cancel: the receiver has the guest; "
                      "waiting for its report",
                      strsignal(sig));
        else if (asked)
            cli_error("%s: already cancelling; waiting for the guest to "
                      "run here again",
                      strsignal(sig));
        else
            cli_error("%s: cancelling the job", strsignal(sig));
        asked = true;
        xmig_cancel_request(d->cancel);
    }
}

/* Before any other thread exists, so that all of them block the signals. */
static int direct_signals_start(struct direct *d)
{
    static const int handled[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    sigset_t block;
    size_t i;

    sigemptyset(&d->sigs);
    for (i = 0; i < sizeof(handled) / sizeof(handled[0]); i++) {
        if (sigaction(handled[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN) {
            sigaddset(&d->sigs, handled[i]);
            d->wake = handled[i];
        }
    }
    block = d->sigs;
    /* A message to a stderr whose reader went away is no reason to die. */
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    d->cancel = xmig_cancel_new();
    if (!d->cancel ||
        (d->wake && pthread_create(&d->thread, NULL, direct_signals, d))) {
        cli_error("cannot set up signal handling");
        xmig_cancel_free(d->cancel);
        return -1;
    }
    return 0;
}

/* Signals stay blocked until exit: the job's outcome is decided. */
static void direct_signals_stop(struct direct *d)
{
    if (d->wake) {
        atomic_store(&d->done, true);
        pthread_kill(d->thread, d->wake); /* for that thread alone */
        pthread_join(d->thread, NULL);
    }
    xmig_cancel_free(d->cancel);
}

/* In this process, as before xmigd existed. */
static int run_direct(struct job_args *a)
{
    struct xmig_job_params *p = &a->p;
    struct direct d = {.rd = {.tty = isatty(2) != 0, .json = a->json}};
    struct xmig_job_result r;
    xmig_xen *x;
    char *why = NULL, where[128];
    int rc;

    if (direct_signals_start(&d) < 0)
        return EXIT_FAIL;
    p->event = direct_event;
    p->event_arg = &d;
    p->cancel = d.cancel;
    p->journal_dir = XMIG_JOURNAL_DIR;
    x = xmig_xen_open(cli_log, NULL, &why);
    if (!x) {
        cli_error("%s", why);
        free(why);
        direct_signals_stop(&d);
        return EXIT_FAIL;
    }
    rc = xmig_job_run(x, p, &r);
    render_end_line(&d.rd);
    render_result(&d.rd, p, &r, rc == 0, rc == 0 ? "" : xmig_xen_error(x));
    if (rc < 0)
        cli_error("%s%s", xmig_xen_error(x),
                  render_where(&r, where, sizeof(where)));
    xmig_xen_close(x);
    direct_signals_stop(&d);
    return render_exit(&r, rc == 0);
}

/*
 * xmigd runs elsewhere, so a relative save path means nothing to it: the
 * path is made absolute against our directory.  The directory must exist;
 * the name is kept as given (save refuses a symbolic link there itself).
 * NULL once said why.
 */
static char *absolute_save_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir, *real = NULL, *abs = NULL;
    struct stat st;
    int err = 0;

    dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (!dir) {
        cli_error("out of memory");
        return NULL;
    }
    real = realpath(dir, NULL);
    if (!real)
        err = errno;
    else if (stat(real, &st) < 0)
        err = errno;
    else if (!S_ISDIR(st.st_mode))
        err = ENOTDIR;
    if (err == ENOENT)
        cli_error("cannot save to '%s': there is no directory '%s'", path, dir);
    else if (err)
        cli_error("cannot save to '%s': directory '%s': %s", path, dir,
                  strerror(err));
    else if (asprintf(&abs, "%s/%s", strcmp(real, "/") ? real : "",
                      slash ? slash + 1 : path) < 0) {
        abs = NULL;
        cli_error("out of memory");
    }
    free(real);
    free(dir);
    return abs;
}

/* Through xmigd: the job outlives this process; Ctrl-C only detaches. */
static int run_daemon(struct job_args *a)
{
    struct xmig_job_params *p = &a->p;
    struct render rd = {.tty = isatty(2) != 0, .json = a->json};
    struct json_object *resp, *job;
    struct client_req rq;
    struct client c;
    long long id;
    int rc;

    rc = client_open(&c, true);
    if (rc != EXIT_OK)
        return rc;
    client_req_begin(&rq, p->kind == XMIG_JOB_SAVE ? "save" : "migrate");
    proto_add_str(rq.o, "domain", p->domain);
    proto_add_str(rq.o, p->kind == XMIG_JOB_SAVE ? "file" : "dest", p->dest);
    job_args_request(a, &rq);
    if (!a->detach)
        proto_add_bool(rq.o, "watch", true);
    resp = client_request(&c, &rq, NULL, NULL);
    if (!resp) {
        client_close(&c);
        return EXIT_FAIL;
    }
    job = proto_get(resp, "job");
    id = proto_int(job, "id");
    if (a->detach) {
        if (a->json)
            printf("%s\n", client_line(&c));
        else
            printf("job %lld queued: %s %s to %s\n", id,
                   p->kind == XMIG_JOB_SAVE ? "save" : "migrate",
                   proto_str(job, "domain"), p->dest);
        client_close(&c);
        return EXIT_OK;
    }
    if (rd.tty && !a->json)
        fprintf(stderr,
                "job %lld: %s %s (domain %lld) to %s; Ctrl-C "
                "detaches, `xmig cancel %lld` cancels\n",
                id, p->kind == XMIG_JOB_SAVE ? "saving" : "migrating",
                proto_str(job, "domain"), proto_int(job, "domid"), p->dest, id);
    rc = watch_job(&c, id, &rd);
    client_close(&c);
    return rc;
}

static int run(const struct cmd_entry *e, enum xmig_job_kind kind, int argc,
               char **argv)
{
    struct job_args a;
    char *abs = NULL;
    int rc;

    rc = job_args_parse(e, argc, argv, kind, false, &a);
    if (rc != EXIT_OK)
        return rc;
    if (a.direct)
        return run_direct(&a);
    if (kind == XMIG_JOB_SAVE && a.p.dest[0] != '/') {
        abs = absolute_save_path(a.p.dest);
        if (!abs)
            return EXIT_FAIL;
        a.p.dest = abs;
    }
    rc = run_daemon(&a);
    free(abs);
    return rc;
}

static int cmd_migrate(int argc, char **argv)
{
    return run(&cmd_migrate_entry, XMIG_JOB_MIGRATE, argc, argv);
}

static int cmd_save(int argc, char **argv)
{
    return run(&cmd_save_entry, XMIG_JOB_SAVE, argc, argv);
}

const struct cmd_entry cmd_migrate_entry = {
    .name = "migrate",
    .usage =
        "DOMAIN DEST [--live|--no-live] [--max-iters N] [--target-dirty N] "
        "[--abort-if-busy] [--downtime-ms MS] [--no-skip] "
        "[--engine xmig|libxc] [--strategy S] [--batch N] [--ssh-command CMD] "
        "[--ready-timeout SECONDS] [--json] [--direct|--detach]",
    .help = "send DOMAIN to a stock `xl migrate-receive` at DEST: "
            "ssh://[user@]host[:port], exec:COMMAND or tcp://host:port; "
            "through xmigd unless --direct",
    .exec = cmd_migrate,
};

const struct cmd_entry cmd_save_entry = {
    .name = "save",
    .usage = "DOMAIN FILE [--live] [--keep] [--max-iters N] [--target-dirty N] "
             "[--engine xmig|libxc] [--strategy S] [--json] "
             "[--direct|--detach]",
    .help = "save DOMAIN to FILE for stock `xl restore`, then destroy it "
            "(--keep: resume it instead); through xmigd unless --direct",
    .exec = cmd_save,
};

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

/* getopt_long's value for an option: its id, and which of its spellings. */
#define CLI_ON(id) (256 + 2 * (int)(id))
#define CLI_OFF(id) (CLI_ON(id) + 1)

int job_args_parse(const struct cmd_entry *e, int argc, char **argv,
                   struct job_args *a)
{
    struct option opts[2 * OPT__COUNT + 1];
    char shorts[OPT__COUNT + 1];
    const struct opt *o;
    size_t id, n = 0, ns = 0;
    bool on;
    int c;

    memset(a, 0, sizeof(*a));
    memset(opts, 0, sizeof(opts));
    /* Every job command's options, so that another's gets the usage. */
    for (id = 0; id < OPT__COUNT; id++) {
        o = &opt_table[id];
        if (!(o->cmds & OPT_JOBS))
            continue;
        if (o->cli)
            opts[n++] = (struct option){
                o->cli, o->type == OPT_BOOL ? no_argument : required_argument,
                NULL, CLI_ON(id)};
        if (o->cli_off)
            opts[n++] =
                (struct option){o->cli_off, no_argument, NULL, CLI_OFF(id)};
        if (o->cli_short)
            shorts[ns++] = o->cli_short;
    }
    shorts[ns] = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        for (id = 0; id < OPT__COUNT; id++)
            if (c == CLI_ON(id) || c == CLI_OFF(id) ||
                (opt_table[id].cli_short && c == opt_table[id].cli_short))
                break;
        if (id == OPT__COUNT)
            return cli_usage(e);
        o = &opt_table[id];
        on = c != CLI_OFF(id);
        if (!(o->cmds & e->opts)) {
            if (!o->not_for)
                return cli_usage(e);
            cli_error("--%s is %s", on ? o->cli : o->cli_off, o->not_for);
            return EXIT_USAGE;
        }
        if (cli_opt((enum opt_id)id, on, optarg, &a->v.v[id]) < 0)
            return EXIT_USAGE;
    }
    a->json = opt_get(&a->v, OPT_JSON);
    a->direct = opt_get(&a->v, OPT_DIRECT);
    a->detach = opt_get(&a->v, OPT_DETACH);
    a->parallel = (unsigned int)opt_get(&a->v, OPT_PARALLEL);
    if (a->direct && a->detach) {
        cli_error("--detach needs xmigd: it cannot go with --direct");
        return EXIT_USAGE;
    }
    /* xmigd's jobs keep theirs where xmigd -J says. */
    a->journal_dir = a->v.v[OPT_JOURNAL_DIR].given ? a->v.v[OPT_JOURNAL_DIR].s
                                                   : XMIG_JOURNAL_DIR;
    if (a->v.v[OPT_JOURNAL_DIR].given && !a->direct) {
        cli_error("--journal-dir goes with --direct: xmigd's jobs keep "
                  "their journal where xmigd -J says");
        return EXIT_USAGE;
    }
    if (optind + (e->opts == OPT_EVACUATE ? 1 : 2) != argc)
        return cli_usage(e);
    opt_job_defaults(&a->p,
                     e->opts == OPT_SAVE ? XMIG_JOB_SAVE : XMIG_JOB_MIGRATE);
    opt_apply(&a->v, &a->p);
    a->p.ssh_command = a->v.v[OPT_SSH_COMMAND].s;
    if (e->opts == OPT_EVACUATE) {
        a->p.dest = argv[optind];
    } else {
        a->p.domain = argv[optind];
        a->p.dest = argv[optind + 1];
    }
    return EXIT_OK;
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
    p->journal_dir = a->journal_dir;
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
    request_add_opts(rq.o, &a->v);
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

static int run(const struct cmd_entry *e, int argc, char **argv)
{
    struct job_args a;
    char *abs = NULL;
    int rc;

    rc = job_args_parse(e, argc, argv, &a);
    if (rc != EXIT_OK)
        return rc;
    if (a.direct)
        return run_direct(&a);
    if (a.p.kind == XMIG_JOB_SAVE && a.p.dest[0] != '/') {
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
    return run(&cmd_migrate_entry, argc, argv);
}

static int cmd_save(int argc, char **argv)
{
    return run(&cmd_save_entry, argc, argv);
}

const struct cmd_entry cmd_migrate_entry = {
    .name = "migrate",
    .usage = "DOMAIN DEST",
    .opts = OPT_MIGRATE,
    .help = "send DOMAIN to a stock `xl migrate-receive` at DEST: "
            "ssh://[user@]host[:port], exec:COMMAND or tcp://host:port; "
            "through xmigd unless --direct",
    .exec = cmd_migrate,
};

const struct cmd_entry cmd_save_entry = {
    .name = "save",
    .usage = "DOMAIN FILE",
    .opts = OPT_SAVE,
    .help = "save DOMAIN to FILE for stock `xl restore`, then destroy it "
            "(--keep: resume it instead); through xmigd unless --direct",
    .exec = cmd_save,
};

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig status / watch / cancel / stats: xmigd's jobs and figures.  With
 * --json each prints the daemon's own lines (daemon/PROTOCOL.md).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig-cli.h"

/* [--json] [--wait] [ARG]: the common shape of these commands. */
struct opts {
    bool json;
    bool wait;
    const char *arg;
};

static int parse(const struct cmd_entry *e, int argc, char **argv, bool wait_ok,
                 int min_args, struct opts *o)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"wait", no_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    optind = 1;
    while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
        if (c == 'j')
            o->json = true;
        else if (c == 'w' && wait_ok)
            o->wait = true;
        else
            return cli_usage(e);
    }
    if (argc - optind > 1 || argc - optind < min_args)
        return cli_usage(e);
    o->arg = optind < argc ? argv[optind] : NULL;
    return EXIT_OK;
}

/*
 * Digits only, as xmig_domain_find() reads domain ids: strtoll() would
 * take " 5" and "+5" for job 5, and any longer number for the largest.
 */
static int job_id(const char *s, long long *id)
{
    unsigned long long n = 0;
    const char *p;

    for (p = s; *p >= '0' && *p <= '9'; p++)
        n = n <= LLONG_MAX / 10 ? n * 10 + (unsigned)(*p - '0') : ULLONG_MAX;
    if (p == s || *p || n < 1 || n > LLONG_MAX) {
        cli_error("expected a job number, got '%s' (digits only, from 1 to "
                  "%lld; see `xmig status`)",
                  s, LLONG_MAX);
        return -1;
    }
    *id = (long long)n;
    return 0;
}

/* Connect and send one request: the response, or NULL with *rc set. */
static struct json_object *ask(struct client *c, const char *cmd, long long id,
                               int *rc)
{
    struct json_object *resp;
    struct client_req rq;

    *rc = client_open(c, false);
    if (*rc != EXIT_OK)
        return NULL;
    client_req_begin(&rq, cmd);
    if (id > 0)
        proto_add_uint(rq.o, "job", (unsigned long long)id);
    resp = client_request(c, &rq, NULL, NULL);
    *rc = EXIT_FAIL;
    if (!resp)
        return NULL;
    *rc = EXIT_OK;
    return resp;
}

static bool is_final(struct json_object *job)
{
    const char *s = proto_str(job, "state");

    return !strcmp(s, "done") || !strcmp(s, "failed") ||
           !strcmp(s, "cancelled");
}

/* The end of a job, as render_result() prints it; the exit code. */
static int show_end(struct render *rd, struct json_object *job)
{
    struct xmig_job_params p;
    struct xmig_job_result r;
    const char *error;
    char where[128];
    bool ok;

    xmig_job_params_default(&p);
    ok = proto_job_result(job, &p, &r, &error);
    render_end_line(rd);
    render_result(rd, &p, &r, ok, error);
    if (!ok)
        cli_error("job %lld %s: %s%s", proto_int(job, "id"),
                  proto_str(job, "state"), error,
                  render_where(&r, where, sizeof(where)));
    return render_exit(&r, ok);
}

int watch_job(struct client *c, long long id, struct render *rd)
{
    struct json_object *m, *job;

    while ((m = client_next(c))) {
        const char *type = proto_str(m, "event");

        if (strcmp(type, "end") == 0) {
            job = proto_get(m, "job");
            if (proto_int(job, "id") == id)
                return show_end(rd, job);
            continue;
        }
        if (proto_int(m, "job") == id)
            render_daemon_event(rd, m);
    }
    render_end_line(rd);
    cli_error("lost xmigd while watching job %lld (is it stopping?); "
              "the job may still be running",
              id);
    return EXIT_FAIL;
}

static void progress(struct json_object *j, char *buf, size_t n)
{
    struct json_object *res = proto_get(j, "result");
    struct json_object *err = proto_get(j, "error");
    const char *state = proto_str(j, "state");

    if (!strcmp(state, "queued"))
        snprintf(buf, n, "waiting %.0f s", proto_dbl(j, "queued_s"));
    else if (!strcmp(state, "running"))
        snprintf(buf, n, "pass %lld: %lld sent, %lld to go, %.1f MiB/s%s",
                 proto_int(j, "pass"), proto_int(j, "sent"),
                 proto_int(j, "remaining"), proto_dbl(j, "mib_s"),
                 proto_bool(j, "cancel_requested") ? " (cancelling)" : "");
    else if (!strcmp(state, "done"))
        snprintf(buf, n, "%lld passes, %lld pages, %.1f s, downtime %.3f s",
                 proto_int(res, "passes"), proto_int(res, "pages_sent"),
                 proto_dbl(res, "total_s"), proto_dbl(res, "downtime_s"));
    else
        snprintf(buf, n, "%s (guest on the %s)", proto_str(err, "message"),
                 proto_str(res, "guest"));
}

static void row(struct json_object *j)
{
    char prog[300];
    const char *dest = proto_str(j, "dest");

    if (!*dest)
        dest = proto_str(j, "file");
    progress(j, prog, sizeof(prog));
    printf("%-5lld %-9s %-9s %-16s %-24s %s\n", proto_int(j, "id"),
           proto_str(j, "state"), proto_str(j, "phase"), proto_str(j, "domain"),
           dest, prog);
}

static int cmd_status(int argc, char **argv)
{
    struct json_object *resp, *j;
    size_t i;
    struct client c;
    struct opts o;
    long long id = 0;
    int rc;

    rc = parse(&cmd_status_entry, argc, argv, false, 0, &o);
    if (rc != EXIT_OK)
        return rc;
    if (o.arg && job_id(o.arg, &id) < 0)
        return EXIT_USAGE;
    resp = ask(&c, id ? "status" : "list", id, &rc);
    if (resp && o.json) {
        printf("%s\n", client_line(&c));
    } else if (resp) {
        printf("%-5s %-9s %-9s %-16s %-24s %s\n", "JOB", "STATE", "PHASE",
               "DOMAIN", "DEST", "PROGRESS");
        if (id)
            row(proto_get(resp, "job"));
        else
            for (i = 0; (j = proto_at(proto_get(resp, "jobs"), i)); i++)
                row(j);
    }
    client_close(&c);
    return rc;
}

/* Everything, as lines: `xmig watch` without a job. */
static void print_any(struct json_object *m)
{
    const char *type = proto_str(m, "event");
    struct json_object *job = proto_get(m, "job");

    if (!strcmp(type, "queued") || !strcmp(type, "end")) {
        printf("job %lld %s: %s %s\n", proto_int(job, "id"), type,
               proto_str(job, "domain"), proto_str(job, "state"));
    } else if (!strcmp(type, "phase")) {
        printf("job %lld: %.1fs %s\n", proto_int(m, "job"), proto_dbl(m, "t"),
               proto_str(m, "phase"));
    } else if (!strcmp(type, "pass")) {
        printf("job %lld: %.1fs pass %lld: %lld pages, %.1f MiB/s, %lld "
               "dirtied\n",
               proto_int(m, "job"), proto_dbl(m, "t"), proto_int(m, "pass"),
               proto_int(m, "sent"), proto_dbl(m, "mib_s"),
               proto_int(m, "dirty"));
    } else if (!strcmp(type, "state")) {
        printf("job %lld: %s\n", proto_int(m, "job"), proto_str(m, "state"));
    } else if (!strcmp(type, "log")) {
        printf("job %lld: %s: %s\n", proto_int(m, "job"), proto_str(m, "level"),
               proto_str(m, "message"));
    }
    fflush(stdout);
}

static int cmd_watch(int argc, char **argv)
{
    struct render rd = {.tty = isatty(2) != 0};
    struct json_object *resp, *job, *m;
    struct client c;
    struct opts o;
    long long id = 0;
    int rc;

    rc = parse(&cmd_watch_entry, argc, argv, false, 0, &o);
    if (rc != EXIT_OK)
        return rc;
    if (o.arg && job_id(o.arg, &id) < 0)
        return EXIT_USAGE;
    rd.json = o.json;
    resp = ask(&c, "watch", id, &rc);
    if (!resp) {
        client_close(&c);
        return rc;
    }
    if (!id) {
        while ((m = client_next(&c))) {
            if (o.json) {
                printf("%s\n", client_line(&c));
                fflush(stdout);
            } else {
                print_any(m);
            }
        }
        client_close(&c);
        return EXIT_OK;
    }
    job = proto_get(resp, "job");
    if (is_final(job))
        rc = show_end(&rd, job);
    else
        rc = watch_job(&c, id, &rd);
    client_close(&c);
    return rc;
}

struct cancel_wait {
    long long id;
    char state[16];
};

static void note_end(void *arg, struct json_object *m)
{
    struct cancel_wait *cw = arg;
    struct json_object *job = proto_get(m, "job");

    if (!strcmp(proto_str(m, "event"), "end") && proto_int(job, "id") == cw->id)
        snprintf(cw->state, sizeof(cw->state), "%s", proto_str(job, "state"));
}

static int cmd_cancel(int argc, char **argv)
{
    struct cancel_wait cw = {0};
    struct json_object *resp, *m, *job;
    struct client_req rq;
    struct client c;
    struct opts o;
    long long id;
    int rc;

    rc = parse(&cmd_cancel_entry, argc, argv, true, 1, &o);
    if (rc != EXIT_OK)
        return rc;
    if (job_id(o.arg, &id) < 0)
        return EXIT_USAGE;
    cw.id = id;
    rc = client_open(&c, false);
    if (rc != EXIT_OK)
        return rc;
    rc = EXIT_FAIL;
    if (o.wait) {
        /* Watch first, so that the end cannot slip by. */
        client_req_begin(&rq, "watch");
        proto_add_uint(rq.o, "job", (unsigned long long)id);
        resp = client_request(&c, &rq, NULL, NULL);
        if (!resp)
            goto out;
    }
    client_req_begin(&rq, "cancel");
    proto_add_uint(rq.o, "job", (unsigned long long)id);
    resp = client_request(&c, &rq, note_end, &cw);
    if (!resp)
        goto out;
    job = proto_get(resp, "job");
    if (o.json)
        printf("%s\n", client_line(&c));
    if (!strcmp(proto_str(job, "state"), "cancelled"))
        snprintf(cw.state, sizeof(cw.state), "cancelled");
    if (!o.wait) {
        if (!o.json)
            printf("job %lld: %s\n", id,
                   cw.state[0] ? "cancelled" : "cancel requested");
        rc = EXIT_OK;
        goto out;
    }
    while (!cw.state[0] && (m = client_next(&c))) {
        if (o.json && proto_get(m, "event")) {
            printf("%s\n", client_line(&c));
            fflush(stdout);
        }
        note_end(&cw, m);
    }
    if (!cw.state[0]) {
        cli_error("lost xmigd while waiting for job %lld", id);
    } else if (strcmp(cw.state, "cancelled") != 0) {
        cli_error("job %lld was not cancelled: it ended %s", id, cw.state);
    } else {
        if (!o.json)
            printf("job %lld: cancelled\n", id);
        rc = EXIT_OK;
    }
out:
    client_close(&c);
    return rc;
}

static int cmd_stats(int argc, char **argv)
{
    struct json_object *resp, *s, *jobs, *dt;
    struct client c;
    struct opts o;
    int rc;

    rc = parse(&cmd_stats_entry, argc, argv, false, 0, &o);
    if (rc != EXIT_OK)
        return rc;
    if (o.arg)
        return cli_usage(&cmd_stats_entry);
    resp = ask(&c, "stats", 0, &rc);
    if (resp && o.json) {
        printf("%s\n", client_line(&c));
    } else if (resp) {
        s = proto_get(resp, "stats");
        jobs = proto_get(s, "jobs");
        dt = proto_get(s, "downtime_s");
        printf("xmigd: up %.0f s, protocol %lld, Xen %s\n",
               proto_dbl(s, "uptime_s"), proto_int(s, "protocol"),
               proto_bool(s, "xen") ? "available" : "not available");
        printf("jobs: %lld running, %lld queued (max %lld at once); %lld "
               "submitted, %lld done, %lld failed, %lld cancelled\n",
               proto_int(s, "running"), proto_int(s, "queued"),
               proto_int(s, "max_jobs"), proto_int(jobs, "submitted"),
               proto_int(jobs, "done"), proto_int(jobs, "failed"),
               proto_int(jobs, "cancelled"));
        printf("sent: %lld pages (%.1f MiB), %.1f s of successful jobs\n",
               proto_int(s, "pages_sent"), proto_dbl(s, "bytes_sent") / 1048576,
               proto_dbl(s, "migrate_s"));
        if (json_object_is_type(dt, json_type_object))
            printf("downtime: min %.3f s, avg %.3f s, max %.3f s\n",
                   proto_dbl(dt, "min"), proto_dbl(dt, "avg"),
                   proto_dbl(dt, "max"));
        printf("clients: %lld connected, %lld requests (%lld bad), %lld "
               "refused\n",
               proto_int(s, "clients"), proto_int(s, "requests"),
               proto_int(s, "bad_requests"), proto_int(s, "clients_refused"));
    }
    client_close(&c);
    return rc;
}

const struct cmd_entry cmd_status_entry = {
    .name = "status",
    .usage = "[JOB] [--json]",
    .help = "list xmigd's jobs (queued, running, recently ended), or one",
    .exec = cmd_status,
};

const struct cmd_entry cmd_watch_entry = {
    .name = "watch",
    .usage = "[JOB] [--json]",
    .help = "follow JOB until it ends (exit 0 if it succeeded); without JOB, "
            "every job's events until interrupted",
    .exec = cmd_watch,
};

const struct cmd_entry cmd_cancel_entry = {
    .name = "cancel",
    .usage = "JOB [--wait] [--json]",
    .help = "cancel JOB: the guest keeps running here (--wait: until it "
            "has ended)",
    .exec = cmd_cancel,
};

const struct cmd_entry cmd_stats_entry = {
    .name = "stats",
    .usage = "[--json]",
    .help = "xmigd's statistics: jobs, pages sent, downtime, clients",
    .exec = cmd_stats,
};

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig evacuate DEST: every guest off this host, N at a time.  xmigd owns
 * the evacuation (a group of jobs), so it goes on if this process dies;
 * here we only follow it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig-cli.h"

struct evac {
    long long *ids;
    char (*names)[64];
    char (*state)[16];
    size_t n;
    size_t ended;
    size_t failed;
    size_t unknown; /* failed after the go-ahead: check both hosts */
    bool tty;
    bool json;
    bool line_open;
};

static long long index_of(const struct evac *ev, long long id)
{
    size_t i;

    for (i = 0; i < ev->n; i++)
        if (ev->ids[i] == id)
            return (long long)i;
    return -1;
}

static void end_line(struct evac *ev)
{
    if (ev->line_open) {
        fputc('\n', stderr);
        ev->line_open = false;
    }
}

/* On a TTY: one line that sums up the jobs that run. */
static void status_line(struct evac *ev, struct json_object *m)
{
    long long i = index_of(ev, proto_int(m, "job"));

    if (!ev->tty || i < 0)
        return;
    fprintf(stderr,
            "\r%zu/%zu done; %s: pass %lld, %lld sent, %lld to go, "
            "%.1f MiB/s      ",
            ev->ended, ev->n, ev->names[i], proto_int(m, "pass"),
            proto_int(m, "sent"), proto_int(m, "remaining"),
            proto_dbl(m, "mib_s"));
    ev->line_open = true;
}

static void on_end(struct evac *ev, struct json_object *job)
{
    long long i = index_of(ev, proto_int(job, "id"));
    struct json_object *res = proto_get(job, "result");
    struct json_object *err = proto_get(job, "error");
    const char *state = proto_str(job, "state");

    if (i < 0 || ev->state[i][0])
        return;
    snprintf(ev->state[i], sizeof(ev->state[i]), "%s", state);
    ev->ended++;
    if (strcmp(state, "done") != 0)
        ev->failed++;
    if (!strcmp(proto_str(res, "guest"), "unknown"))
        ev->unknown++;
    if (ev->json)
        return;
    end_line(ev);
    if (!strcmp(state, "done"))
        printf("job %lld %s: migrated, %lld passes, %.1f s, downtime %.3f s\n",
               proto_int(job, "id"), ev->names[i], proto_int(res, "passes"),
               proto_dbl(res, "total_s"), proto_dbl(res, "downtime_s"));
    else
        printf("job %lld %s: %s: %s (guest on the %s)\n", proto_int(job, "id"),
               ev->names[i], state, proto_str(err, "message"),
               proto_str(res, "guest"));
    fflush(stdout);
}

static int follow(struct client *c, struct evac *ev)
{
    struct json_object *m;

    while (ev->ended < ev->n && (m = client_next(c))) {
        const char *type = proto_str(m, "event");

        if (ev->json) {
            printf("%s\n", client_line(c));
            fflush(stdout);
        }
        if (!strcmp(type, "end"))
            on_end(ev, proto_get(m, "job"));
        else if (!strcmp(type, "progress"))
            status_line(ev, m);
        else if (!strcmp(type, "state") && ev->tty && !ev->json) {
            long long i = index_of(ev, proto_int(m, "job"));

            end_line(ev);
            if (i >= 0)
                fprintf(stderr, "job %lld %s: started\n", proto_int(m, "job"),
                        ev->names[i]);
        }
    }
    end_line(ev);
    if (ev->ended < ev->n) {
        cli_error("lost xmigd with %zu of %zu jobs still going",
                  ev->n - ev->ended, ev->n);
        return EXIT_FAIL;
    }
    if (!ev->json)
        printf("evacuated %zu of %zu domains\n", ev->n - ev->failed, ev->n);
    return ev->unknown ? EXIT_UNKNOWN : ev->failed ? EXIT_FAIL : EXIT_OK;
}

static int cmd_evacuate(int argc, char **argv)
{
    struct evac ev = {.tty = isatty(2) != 0};
    struct json_object *resp, *j, *jobs;
    struct job_args a;
    struct client_req rq;
    struct client c;
    size_t i;
    int rc;

    rc = job_args_parse(&cmd_evacuate_entry, argc, argv, &a);
    if (rc != EXIT_OK)
        return rc;
    ev.json = a.json;
    rc = client_open(&c, false);
    if (rc != EXIT_OK)
        return rc;
    client_req_begin(&rq, "evacuate");
    proto_add_str(rq.o, "dest", a.p.dest);
    request_add_opts(rq.o, &a.v);
    if (!a.detach)
        proto_add_bool(rq.o, "watch", true);
    rc = EXIT_FAIL;
    resp = client_request(&c, &rq, NULL, NULL);
    if (!resp)
        goto out;
    if (a.json) {
        printf("%s\n", client_line(&c));
        fflush(stdout);
    } else {
        jobs = proto_get(resp, "skipped");
        for (i = 0; (j = proto_at(jobs, i)); i++)
            printf("skipping domain %lld (%s): %s\n", proto_int(j, "domid"),
                   proto_str(j, "name"), proto_str(j, "reason"));
    }
    jobs = proto_get(resp, "jobs");
    ev.n = proto_len(jobs);
    if (!ev.n) {
        if (!a.json)
            printf("nothing to evacuate\n");
        rc = EXIT_OK;
        goto out;
    }
    ev.ids = calloc(ev.n, sizeof(*ev.ids));
    ev.names = calloc(ev.n, sizeof(*ev.names));
    ev.state = calloc(ev.n, sizeof(*ev.state));
    if (!ev.ids || !ev.names || !ev.state) {
        cli_error("out of memory");
        goto out;
    }
    for (i = 0; (j = proto_at(jobs, i)); i++) {
        ev.ids[i] = proto_int(j, "id");
        snprintf(ev.names[i], sizeof(ev.names[i]), "%s",
                 proto_str(j, "domain"));
        if (!a.json)
            printf("job %lld: %s (domain %lld) to %s\n", ev.ids[i], ev.names[i],
                   proto_int(j, "domid"), a.p.dest);
    }
    fflush(stdout);
    if (a.detach) {
        rc = EXIT_OK;
        goto out;
    }
    rc = follow(&c, &ev);
out:
    free(ev.ids);
    free(ev.names);
    free(ev.state);
    client_close(&c);
    return rc;
}

const struct cmd_entry cmd_evacuate_entry = {
    .name = "evacuate",
    .usage = "DEST",
    .opts = OPT_EVACUATE,
    .help = "migrate every guest (all domains but 0) to DEST through xmigd, "
            "N at a time (default 1)",
    .exec = cmd_evacuate,
};

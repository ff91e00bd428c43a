/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * One handler per request of PROTOCOL.md §3.  Each answers exactly once:
 * a reply built with reply_begin()/reply_end(), or control_reply_error().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "command.h"
#include "conf.h"
#include "control.h"
#include "domain.h"
#include "job.h"
#include "log.h"
#include "proto.h"
#include "report.h"

static struct command_env env;

void command_init(const struct command_env *e)
{
    env = *e;
}

/* A job that has ended has nothing more to say. */
static void watch(struct peer *p, const struct job *j)
{
    if (!j)
        control_watch_all(p);
    else if (!job_final(j))
        control_watch(p, j->id);
}

static struct json_object *reply_begin(const struct request *rq)
{
    struct json_object *w = json_object_new_object();

    if (rq->id)
        proto_add(w, "id", json_object_get(rq->id));
    proto_add_bool(w, "ok", true);
    return w;
}

static void reply_end(struct peer *p, struct json_object *w,
                      const struct request *rq)
{
    if (w)
        control_send(p, w);
    else
        control_reply_error(p, rq->id, "internal", "out of memory");
    json_object_put(w);
}

static void process_hello(struct peer *p, struct request *rq)
{
    char server[64];
    struct json_object *w;

    snprintf(server, sizeof(server), "xmigd %s", PACKAGE_VERSION);
    w = reply_begin(rq);
    proto_add_int(w, "protocol", PROTO_VERSION);
    proto_add_text(w, "server", server);
    reply_end(p, w, rq);
}

/* Checks shared by every request that creates jobs; false once answered. */
static bool may_start_jobs(struct peer *p, struct request *rq)
{
    bool root = control_peer_uid(p) == 0;

    if (env.stopping()) {
        control_reply_error(p, rq->id, "shutting_down",
                            "xmigd is stopping and takes no new jobs");
        return false;
    }
    if (!root && rq->cmd == REQ_SAVE) {
        control_reply_error(p, rq->id, "permission_denied",
                            "save writes files as root: root only");
        return false;
    }
    if (!root && strncmp(rq->dest, "exec:", 5) == 0) {
        control_reply_error(p, rq->id, "permission_denied",
                            "exec: destinations run commands as root: "
                            "root only");
        return false;
    }
    if (!root && rq->opts.v[OPT_SSH_COMMAND].given) {
        control_reply_error(p, rq->id, "permission_denied",
                            "ssh_command runs a command as root: root only");
        return false;
    }
    if (job_count(JOB_QUEUED) >= XMIGD_MAX_QUEUED) {
        control_reply_error(p, rq->id, "queue_full",
                            "%d jobs are queued already", XMIGD_MAX_QUEUED);
        return false;
    }
    return true;
}

/* The request's settings over the configuration's. */
static void apply_params(struct job *j, const struct request *rq,
                         const struct peer *p)
{
    opt_apply(&env.conf->jobs, &j->params);
    opt_apply(&rq->opts, &j->params);
    j->uid = control_peer_uid(p);
    j->pid = control_peer_pid(p);
}

static void process_job(struct peer *p, struct request *rq)
{
    enum xmig_job_kind kind =
        rq->cmd == REQ_SAVE ? XMIG_JOB_SAVE : XMIG_JOB_MIGRATE;
    struct xmig_dominfo info;
    const char *why;
    struct job *j, *other;
    struct json_object *w;
    uint32_t domid;
    xmig_xen *x;

    if (!may_start_jobs(p, rq))
        return;
    x = domain_xen(&why);
    if (!x) {
        control_reply_error(p, rq->id, "no_xen", "%s", why);
        return;
    }
    if (xmig_domain_find(x, rq->domain, &domid) < 0) {
        control_reply_error(p, rq->id, "unknown_domain", "%s",
                            xmig_xen_error(x));
        return;
    }
    if (domid == 0) {
        control_reply_error(p, rq->id, "bad_request",
                            "domain 0 cannot be migrated");
        return;
    }
    if (xmig_domain_info(x, domid, &info) < 0)
        info.name[0] = 0;
    other = job_find_domain(domid);
    if (other) {
        control_reply_error(p, rq->id, "busy",
                            "domain %u (%s) already has job %llu (%s)", domid,
                            other->name, (unsigned long long)other->id,
                            job_state_name(other->state));
        return;
    }
    j = job_new(kind, rq->domain, info.name, domid, rq->dest,
                rq->opts.v[OPT_SSH_COMMAND].s);
    if (!j) {
        control_reply_error(p, rq->id, "internal", "out of memory");
        return;
    }
    apply_params(j, rq, p);
    job_submit(j);
    w = reply_begin(rq);
    proto_add(w, "job", report_job(j));
    reply_end(p, w, rq);
    if (opt_get(&rq->opts, OPT_WATCH))
        watch(p, j);
    job_schedule();
}

static bool transient(const char *name)
{
    static const char *const suffixes[] = {"--incoming", "--migratedaway"};
    size_t n = strlen(name), i, l;

    for (i = 0; i < 2; i++) {
        l = strlen(suffixes[i]);
        if (n > l && strcmp(name + n - l, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static void process_evacuate(struct peer *p, struct request *rq)
{
    struct domain_entry *doms = NULL;
    struct job **jobs = NULL, *other;
    char(*reason)[64] = NULL, id[12];
    size_t n, i, nstarted = 0;
    unsigned int group;
    unsigned int parallel = (unsigned int)opt_get(&rq->opts, OPT_PARALLEL);
    const char *why;
    struct json_object *w, *a, *o;

    if (!may_start_jobs(p, rq))
        return;
    if (domain_list(&doms, &n, &why) < 0) {
        control_reply_error(p, rq->id, "no_xen", "%s", why);
        return;
    }
    /* Per domain: its job, or why it has none. */
    jobs = calloc(n ? n : 1, sizeof(*jobs));
    reason = calloc(n ? n : 1, sizeof(*reason));
    if (!jobs || !reason) {
        control_reply_error(p, rq->id, "internal", "out of memory");
        goto out;
    }
    group = job_new_group();
    for (i = 0; i < n; i++) {
        const struct domain_entry *d = &doms[i];

        other = job_find_domain(d->domid);
        if (d->dying)
            snprintf(reason[i], sizeof(reason[i]), "shutting down");
        else if (transient(d->name))
            snprintf(reason[i], sizeof(reason[i]),
                     "the transient copy of a migration");
        else if (other)
            snprintf(reason[i], sizeof(reason[i]), "busy: job %llu",
                     (unsigned long long)other->id);
        else if (job_count(JOB_QUEUED) >= XMIGD_MAX_QUEUED)
            snprintf(reason[i], sizeof(reason[i]), "queue full");
        if (reason[i][0])
            continue;
        snprintf(id, sizeof(id), "%u", d->domid);
        jobs[i] = job_new(XMIG_JOB_MIGRATE, d->name[0] ? d->name : id, d->name,
                          d->domid, rq->dest, rq->opts.v[OPT_SSH_COMMAND].s);
        if (!jobs[i]) {
            snprintf(reason[i], sizeof(reason[i]), "out of memory");
            continue;
        }
        apply_params(jobs[i], rq, p);
        jobs[i]->group = group;
        jobs[i]->group_parallel = parallel;
        job_submit(jobs[i]);
        nstarted++;
    }
    log_info("evacuate (group %u) to %s, %u at a time: %zu jobs", group,
             rq->dest, parallel, nstarted);
    w = reply_begin(rq);
    proto_add_uint(w, "group", group);
    proto_add(w, "jobs", a = json_object_new_array());
    for (i = 0; i < n; i++)
        if (jobs[i])
            proto_append(a, report_job(jobs[i]));
    proto_add(w, "skipped", a = json_object_new_array());
    for (i = 0; i < n; i++) {
        if (jobs[i])
            continue;
        proto_append(a, o = json_object_new_object());
        proto_add_uint(o, "domid", doms[i].domid);
        proto_add_text(o, "name", doms[i].name);
        proto_add_text(o, "reason", reason[i]);
    }
    reply_end(p, w, rq);
    if (opt_get(&rq->opts, OPT_WATCH))
        for (i = 0; i < n; i++)
            if (jobs[i])
                watch(p, jobs[i]);
    job_schedule();
out:
    free(reason);
    free(jobs);
    free(doms);
}

static void process_list(struct peer *p, struct request *rq)
{
    struct json_object *w, *a;
    struct job *j;

    w = reply_begin(rq);
    proto_add(w, "jobs", a = json_object_new_array());
    TAILQ_FOREACH(j, job_all(), entry)
        proto_append(a, report_job(j));
    reply_end(p, w, rq);
}

static struct job *find(struct peer *p, struct request *rq)
{
    struct job *j = job_find(rq->job);

    if (!j)
        control_reply_error(p, rq->id, "unknown_job", "no job %llu",
                            (unsigned long long)rq->job);
    return j;
}

static void process_status(struct peer *p, struct request *rq)
{
    struct json_object *w;
    struct job *j = find(p, rq);

    if (!j)
        return;
    w = reply_begin(rq);
    proto_add(w, "job", report_job(j));
    reply_end(p, w, rq);
}

static void process_watch(struct peer *p, struct request *rq)
{
    struct json_object *w;
    struct job *j = NULL;

    if (rq->has_job) {
        j = find(p, rq);
        if (!j)
            return;
    }
    w = reply_begin(rq);
    if (j)
        proto_add(w, "job", report_job(j));
    reply_end(p, w, rq);
    watch(p, j);
}

static void process_cancel(struct peer *p, struct request *rq)
{
    struct job *j = find(p, rq);
    const char *code;
    char why[200];
    struct json_object *w;

    if (!j)
        return;
    if (job_cancel(j, &code, why, sizeof(why)) < 0) {
        control_reply_error(p, rq->id, code, "%s", why);
        return;
    }
    w = reply_begin(rq);
    proto_add(w, "job", report_job(j));
    reply_end(p, w, rq);
    job_schedule();
}

static void process_stats(struct peer *p, struct request *rq)
{
    const struct job_totals *t = job_totals();
    const struct control_counters *c = control_counters();
    struct json_object *w, *st, *o;

    w = reply_begin(rq);
    proto_add(w, "stats", st = json_object_new_object());
    proto_add_fixed(st, "uptime_s", env.uptime(), 6);
    proto_add_int(st, "protocol", PROTO_VERSION);
    proto_add_bool(st, "xen", domain_xen_available());
    proto_add_uint(st, "max_jobs", env.conf->max_jobs);
    proto_add_uint(st, "running", job_count(JOB_RUNNING));
    proto_add_uint(st, "queued", job_count(JOB_QUEUED));
    proto_add_uint(st, "clients", control_clients());
    proto_add(st, "jobs", o = json_object_new_object());
    proto_add_uint(o, "submitted", t->submitted);
    proto_add_uint(o, "done", t->done);
    proto_add_uint(o, "failed", t->failed);
    proto_add_uint(o, "cancelled", t->cancelled);
    proto_add_uint(st, "pages_sent", t->pages_sent);
    proto_add_uint(st, "bytes_sent", t->pages_sent * XMIG_PAGE_SIZE);
    proto_add_fixed(st, "migrate_s", t->migrate_s, 6);
    if (t->done) {
        proto_add(st, "downtime_s", o = json_object_new_object());
        proto_add_fixed(o, "min", t->downtime_min, 6);
        proto_add_fixed(o, "avg", t->downtime_sum / (double)t->done, 6);
        proto_add_fixed(o, "max", t->downtime_max, 6);
    } else {
        proto_add_null(st, "downtime_s");
    }
    proto_add_uint(st, "requests", c->requests);
    proto_add_uint(st, "bad_requests", c->bad_requests);
    proto_add_uint(st, "clients_refused", c->refused);
    reply_end(p, w, rq);
}

static void process_domains(struct peer *p, struct request *rq)
{
    struct domain_entry *doms;
    struct job *j;
    const char *why;
    struct json_object *w, *a, *o;
    size_t n, i;

    if (domain_list(&doms, &n, &why) < 0) {
        control_reply_error(p, rq->id, "no_xen", "%s", why);
        return;
    }
    w = reply_begin(rq);
    proto_add(w, "domains", a = json_object_new_array());
    for (i = 0; i < n; i++) {
        proto_append(a, o = json_object_new_object());
        proto_add_uint(o, "domid", doms[i].domid);
        proto_add_text(o, "name", doms[i].name);
        proto_add_text(o, "type", xmig_domtype_name(doms[i].type));
        j = job_find_domain(doms[i].domid);
        if (j)
            proto_add_uint(o, "job", j->id);
        else
            proto_add_null(o, "job");
    }
    reply_end(p, w, rq);
    free(doms);
}

void command_greet(struct peer *p)
{
    struct json_object *w;
    char server[64];

    snprintf(server, sizeof(server), "xmigd %s", PACKAGE_VERSION);
    w = json_object_new_object();
    proto_add_str(w, "event", "hello");
    proto_add_int(w, "protocol", PROTO_VERSION);
    proto_add_text(w, "server", server);
    proto_add_bool(w, "xen", domain_xen_available());
    control_send(p, w);
    json_object_put(w);
}

void command_dispatch(struct peer *p, struct request *rq)
{
    switch (rq->cmd) {
    case REQ_HELLO:
        process_hello(p, rq);
        break;
    case REQ_MIGRATE:
    case REQ_SAVE:
        process_job(p, rq);
        break;
    case REQ_EVACUATE:
        process_evacuate(p, rq);
        break;
    case REQ_LIST:
        process_list(p, rq);
        break;
    case REQ_STATUS:
        process_status(p, rq);
        break;
    case REQ_WATCH:
        process_watch(p, rq);
        break;
    case REQ_CANCEL:
        process_cancel(p, rq);
        break;
    case REQ_STATS:
        process_stats(p, rq);
        break;
    case REQ_DOMAINS:
        process_domains(p, rq);
        break;
    }
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * One handler per request of PROTOCOL.md §3.  Each answers exactly once:
 * a reply built with reply_begin()/reply_end(), or control_reply_error().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmigd.h"

static void reply_begin(struct jsonw *w, const struct request *rq)
{
    jsonw_init(w);
    jsonw_open(w, NULL, '{');
    if (rq->id)
        jsonw_value(w, "id", rq->id);
    jsonw_bool(w, "ok", true);
}

static void reply_end(struct peer *p, struct jsonw *w, const struct request *rq)
{
    jsonw_close(w, '}');
    if (jsonw_end(w))
        control_send(p, w);
    else
        control_reply_error(p, rq->id, "internal", "out of memory");
    jsonw_dispose(w);
}

static void process_hello(struct peer *p, struct request *rq)
{
    char server[64];
    struct jsonw w;

    snprintf(server, sizeof(server), "xmigd %s", PACKAGE_VERSION);
    reply_begin(&w, rq);
    jsonw_int(&w, "protocol", XMIGD_PROTOCOL);
    jsonw_str(&w, "server", server);
    reply_end(p, &w, rq);
}

static bool strategy_ok(struct peer *p, struct request *rq);

/* Checks shared by every request that creates jobs; false once answered. */
static bool may_start_jobs(struct peer *p, struct request *rq)
{
    bool root = control_peer_uid(p) == 0;

    if (xmigd_stopping()) {
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
    if (!root && rq->ssh_command) {
        control_reply_error(p, rq->id, "permission_denied",
                            "ssh_command runs a command as root: root only");
        return false;
    }
    if (job_count(JOB_QUEUED) >= XMIGD_MAX_QUEUED) {
        control_reply_error(p, rq->id, "queue_full",
                            "%d jobs are queued already", XMIGD_MAX_QUEUED);
        return false;
    }
    return strategy_ok(p, rq);
}

/* A strategy name the library knows; false once answered. */
static bool strategy_ok(struct peer *p, struct request *rq)
{
    enum xmig_strategy s;

    if (rq->strategy && xmig_strategy_parse(rq->strategy, &s) < 0) {
        control_reply_error(p, rq->id, "bad_request",
                            "unknown strategy '%s' (per-batch, arena, "
                            "kernel, exit)",
                            rq->strategy);
        return false;
    }
    return true;
}

/* The request's settings over the configuration's. */
static void apply_params(struct job *j, const struct request *rq,
                         const struct peer *p)
{
    struct xmig_job_params *jp = &j->params;

    jp->live = rq->has_live ? rq->live : j->kind == XMIG_JOB_MIGRATE;
    jp->keep = rq->keep;
    jp->engine = xmigd_conf.engine;
    if (rq->engine)
        jp->engine = strcmp(rq->engine, "libxc") == 0 ? XMIG_ENGINE_LIBXC
                                                      : XMIG_ENGINE_XMIG;
    jp->arena = xmigd_conf.arena;
    if (rq->strategy)
        xmig_strategy_parse(rq->strategy, &jp->arena.strategy);
    if (rq->has_batch)
        jp->arena.batch = rq->batch;
    jp->policy = xmigd_conf.policy;
    if (rq->has_downtime_ms)
        jp->policy.downtime_ms = rq->downtime_ms;
    if (rq->has_max_iters)
        jp->policy.max_iters = rq->max_iters;
    if (rq->has_target_dirty)
        jp->policy.target_dirty = rq->target_dirty;
    if (rq->has_abort_if_busy)
        jp->policy.abort_if_busy = rq->abort_if_busy;
    if (rq->has_skip_redirtied)
        jp->policy.skip_redirtied = rq->skip_redirtied;
    jp->ready_timeout_s =
        rq->has_ready_timeout ? rq->ready_timeout : xmigd_conf.ready_timeout_s;
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
    struct jsonw w;
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
    j = job_new(kind, rq->domain, info.name, domid, rq->dest, rq->ssh_command);
    if (!j) {
        control_reply_error(p, rq->id, "internal", "out of memory");
        return;
    }
    apply_params(j, rq, p);
    job_submit(j);
    reply_begin(&w, rq);
    job_describe(&w, "job", j);
    reply_end(p, &w, rq);
    if (rq->watch)
        control_watch(p, j);
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
    const char *why;
    struct jsonw w;

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
                          d->domid, rq->dest, rq->ssh_command);
        if (!jobs[i]) {
            snprintf(reason[i], sizeof(reason[i]), "out of memory");
            continue;
        }
        apply_params(jobs[i], rq, p);
        jobs[i]->group = group;
        jobs[i]->group_parallel = rq->parallel;
        job_submit(jobs[i]);
        nstarted++;
    }
    log_info("evacuate (group %u) to %s, %u at a time: %zu jobs", group,
             rq->dest, rq->parallel, nstarted);
    reply_begin(&w, rq);
    jsonw_uint(&w, "group", group);
    jsonw_open(&w, "jobs", '[');
    for (i = 0; i < n; i++)
        if (jobs[i])
            job_describe(&w, NULL, jobs[i]);
    jsonw_close(&w, ']');
    jsonw_open(&w, "skipped", '[');
    for (i = 0; i < n; i++) {
        if (jobs[i])
            continue;
        jsonw_open(&w, NULL, '{');
        jsonw_uint(&w, "domid", doms[i].domid);
        jsonw_str(&w, "name", doms[i].name);
        jsonw_str(&w, "reason", reason[i]);
        jsonw_close(&w, '}');
    }
    jsonw_close(&w, ']');
    reply_end(p, &w, rq);
    if (rq->watch)
        for (i = 0; i < n; i++)
            if (jobs[i])
                control_watch(p, jobs[i]);
    job_schedule();
out:
    free(reason);
    free(jobs);
    free(doms);
}

static void process_list(struct peer *p, struct request *rq)
{
    struct jsonw w;
    struct job *j;

    reply_begin(&w, rq);
    jsonw_open(&w, "jobs", '[');
    TAILQ_FOREACH(j, job_all(), entry)
        job_describe(&w, NULL, j);
    jsonw_close(&w, ']');
    reply_end(p, &w, rq);
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
    struct jsonw w;
    struct job *j = find(p, rq);

    if (!j)
        return;
    reply_begin(&w, rq);
    job_describe(&w, "job", j);
    reply_end(p, &w, rq);
}

static void process_watch(struct peer *p, struct request *rq)
{
    struct jsonw w;
    struct job *j = NULL;

    if (rq->has_job) {
        j = find(p, rq);
        if (!j)
            return;
    }
    reply_begin(&w, rq);
    if (j)
        job_describe(&w, "job", j);
    reply_end(p, &w, rq);
    control_watch(p, j);
}

static void process_cancel(struct peer *p, struct request *rq)
{
    struct job *j = find(p, rq);
    const char *code;
    char why[200];
    struct jsonw w;

    if (!j)
        return;
    if (job_cancel(j, &code, why, sizeof(why)) < 0) {
        control_reply_error(p, rq->id, code, "%s", why);
        return;
    }
    reply_begin(&w, rq);
    job_describe(&w, "job", j);
    reply_end(p, &w, rq);
    job_schedule();
}

static void process_stats(struct peer *p, struct request *rq)
{
    const struct job_totals *t = job_totals();
    const struct control_counters *c = control_counters();
    struct jsonw w;

    reply_begin(&w, rq);
    jsonw_open(&w, "stats", '{');
    jsonw_fixed(&w, "uptime_s", xmigd_uptime(), 6);
    jsonw_int(&w, "protocol", XMIGD_PROTOCOL);
    jsonw_bool(&w, "xen", domain_xen_available());
    jsonw_uint(&w, "max_jobs", xmigd_conf.max_jobs);
    jsonw_uint(&w, "running", job_count(JOB_RUNNING));
    jsonw_uint(&w, "queued", job_count(JOB_QUEUED));
    jsonw_uint(&w, "clients", control_clients());
    jsonw_open(&w, "jobs", '{');
    jsonw_uint(&w, "submitted", t->submitted);
    jsonw_uint(&w, "done", t->done);
    jsonw_uint(&w, "failed", t->failed);
    jsonw_uint(&w, "cancelled", t->cancelled);
    jsonw_close(&w, '}');
    jsonw_uint(&w, "pages_sent", t->pages_sent);
    jsonw_uint(&w, "bytes_sent", t->pages_sent * XMIG_PAGE_SIZE);
    jsonw_fixed(&w, "migrate_s", t->migrate_s, 6);
    if (t->done) {
        jsonw_open(&w, "downtime_s", '{');
        jsonw_fixed(&w, "min", t->downtime_min, 6);
        jsonw_fixed(&w, "avg", t->downtime_sum / (double)t->done, 6);
        jsonw_fixed(&w, "max", t->downtime_max, 6);
        jsonw_close(&w, '}');
    } else {
        jsonw_null(&w, "downtime_s");
    }
    jsonw_uint(&w, "requests", c->requests);
    jsonw_uint(&w, "bad_requests", c->bad_requests);
    jsonw_uint(&w, "clients_refused", c->refused);
    jsonw_close(&w, '}');
    reply_end(p, &w, rq);
}

static void process_domains(struct peer *p, struct request *rq)
{
    struct domain_entry *doms;
    struct job *j;
    const char *why;
    struct jsonw w;
    size_t n, i;

    if (domain_list(&doms, &n, &why) < 0) {
        control_reply_error(p, rq->id, "no_xen", "%s", why);
        return;
    }
    reply_begin(&w, rq);
    jsonw_open(&w, "domains", '[');
    for (i = 0; i < n; i++) {
        jsonw_open(&w, NULL, '{');
        jsonw_uint(&w, "domid", doms[i].domid);
        jsonw_str(&w, "name", doms[i].name);
        jsonw_str(&w, "type", xmig_domtype_name(doms[i].type));
        j = job_find_domain(doms[i].domid);
        if (j)
            jsonw_uint(&w, "job", j->id);
        else
            jsonw_null(&w, "job");
        jsonw_close(&w, '}');
    }
    jsonw_close(&w, ']');
    reply_end(p, &w, rq);
    free(doms);
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

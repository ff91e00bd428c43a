/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Jobs: a FIFO queue in front of max_jobs worker threads.  Each worker
 * opens its own Xen handle and runs xmig_job_run() with the job's own
 * cancel token.  Whatever a worker has to say (events, log lines, the end)
 * goes into one locked queue, and a byte down a pipe wakes the event loop,
 * which alone touches the job list and the counters, and tells the layer
 * above through struct job_cb: this file speaks neither JSON nor to peers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "job.h"
#include "log.h"
#include "options.h"

/* glibc's <sys/queue.h> lacks the BSD _SAFE variant. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                             \
    for ((var) = TAILQ_FIRST(head);                                            \
         (var) && ((tvar) = TAILQ_NEXT(var, field), 1); (var) = (tvar))
#endif

struct job_msg {
    STAILQ_ENTRY(job_msg) entry;
    struct job *job;
    enum { MSG_EVENT, MSG_LOG, MSG_DONE } type;
    struct xmig_event ev;
    char phase[24];
    enum xmig_log_level level;
    char text[300];
};

STAILQ_HEAD(job_msg_queue, job_msg);

static struct job_list jobs = TAILQ_HEAD_INITIALIZER(jobs);
static uint64_t next_id = 1;
static unsigned int next_group = 1;
static struct job_totals totals;
static bool stopping;
static unsigned int max_jobs;
static const char *journal_dir;
static struct job_cb cb;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job_msg_queue q = STAILQ_HEAD_INITIALIZER(q);
static int wake_fd[2] = {-1, -1};
static struct event *wake_ev;

static void finish(struct job *j);

/* ------------------------------------------------------------------ */
/* The worker thread. */

static void post(struct job_msg *m)
{
    bool was_empty;
    char c = 0;

    pthread_mutex_lock(&q_lock);
    was_empty = STAILQ_EMPTY(&q);
    STAILQ_INSERT_TAIL(&q, m, entry);
    pthread_mutex_unlock(&q_lock);
    /* A full pipe already holds a wake-up. */
    if (was_empty)
        while (write(wake_fd[1], &c, 1) < 0 && errno == EINTR)
            ;
}

static void worker_event(void *arg, const struct xmig_event *ev)
{
    struct job *j = arg;
    struct job_msg *m;

    if (ev->type == XMIG_EV_PHASE && ev->phase &&
        strcmp(ev->phase, "committed") == 0) {
        /* The go-ahead is written: the guest is the receiver's. */
        pthread_mutex_lock(&j->lock);
        j->past_return = true;
        pthread_mutex_unlock(&j->lock);
    }
    m = calloc(1, sizeof(*m));
    if (!m)
        return; /* an event lost; the job goes on */
    m->job = j;
    m->type = MSG_EVENT;
    m->ev = *ev;
    snprintf(m->phase, sizeof(m->phase), "%s", ev->phase ? ev->phase : "");
    m->ev.phase = NULL;
    post(m);
}

static void worker_log(void *arg, enum xmig_log_level level, const char *msg)
{
    struct job *j = arg;
    struct job_msg *m;

    log_msg(level, "job %llu: %s", (unsigned long long)j->id, msg);
    if (level > XMIG_LOG_INFO)
        return;
    m = calloc(1, sizeof(*m));
    if (!m)
        return;
    m->job = j;
    m->type = MSG_LOG;
    m->level = level;
    snprintf(m->text, sizeof(m->text), "%s", msg);
    post(m);
}

static void *worker(void *arg)
{
    struct job *j = arg;
    char *err = NULL;
    xmig_xen *x;

    x = xmig_xen_open(worker_log, j, &err);
    if (!x) {
        j->rc = -1;
        j->result.guest = XMIG_GUEST_SOURCE;
        snprintf(j->error, sizeof(j->error), "%s",
                 err ? err : "cannot open Xen: out of memory");
        free(err);
    } else {
        j->rc = xmig_job_run(x, &j->params, &j->result);
        if (j->rc < 0) {
            j->error_cancelled = errno == ECANCELED;
            snprintf(j->error, sizeof(j->error), "%s", xmig_xen_error(x));
        }
        xmig_xen_close(x);
    }
    pthread_mutex_lock(&j->lock);
    j->worker_returned = true;
    pthread_mutex_unlock(&j->lock);
    post(j->done_msg);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The loop thread. */

const char *job_state_name(enum job_state s)
{
    static const char *const names[] = {"queued", "running", "done", "failed",
                                        "cancelled"};

    return s <= JOB_CANCELLED ? names[s] : "?";
}

bool job_final(const struct job *j)
{
    return j->state >= JOB_DONE;
}

struct job *job_new(enum xmig_job_kind kind, const char *domain,
                    const char *name, uint32_t domid, const char *dest,
                    const char *ssh_command)
{
    struct job *j = calloc(1, sizeof(*j));

    if (!j)
        return NULL;
    pthread_mutex_init(&j->lock, NULL);
    j->kind = kind;
    j->domid = domid;
    j->dirty = -1;
    snprintf(j->domid_s, sizeof(j->domid_s), "%u", domid);
    snprintf(j->phase, sizeof(j->phase), "queued");
    j->domain = strdup(domain);
    j->name = strdup(name && *name ? name : domain);
    j->dest = strdup(dest);
    j->ssh_command = ssh_command ? strdup(ssh_command) : NULL;
    j->cancel = xmig_cancel_new();
    if (!j->domain || !j->name || !j->dest || !j->cancel ||
        (ssh_command && !j->ssh_command)) {
        job_free(j);
        return NULL;
    }
    opt_job_defaults(&j->params, kind);
    j->params.domain = j->domid_s;
    j->params.dest = j->dest;
    j->params.ssh_command = j->ssh_command;
    j->params.event = worker_event;
    j->params.event_arg = j;
    j->params.cancel = j->cancel;
    j->params.journal_dir = journal_dir;
    return j;
}

void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->domain);
    free(j->name);
    free(j->dest);
    free(j->ssh_command);
    free(j->done_msg);
    xmig_cancel_free(j->cancel);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* The job has ended (the worker is joined, or never started). */
static void finish(struct job *j)
{
    const struct xmig_job_result *r = &j->result;

    j->t_ended = xmig_now_ns();
    if (j->rc == 0)
        j->state = JOB_DONE;
    else if (j->error_cancelled)
        j->state = JOB_CANCELLED;
    else
        j->state = JOB_FAILED;
    snprintf(j->phase, sizeof(j->phase), "%s",
             j->state == JOB_DONE ? "done" : "failed");
    totals.pages_sent += r->pages_sent;
    switch (j->state) {
    case JOB_DONE:
        totals.done++;
        totals.migrate_s += r->total_s;
        if (totals.done == 1 || r->downtime_s < totals.downtime_min)
            totals.downtime_min = r->downtime_s;
        if (r->downtime_s > totals.downtime_max)
            totals.downtime_max = r->downtime_s;
        totals.downtime_sum += r->downtime_s;
        log_info("job %llu: done: %u passes, %llu pages, %.1f s, downtime "
                 "%.3f s",
                 (unsigned long long)j->id, r->passes,
                 (unsigned long long)r->pages_sent, r->total_s, r->downtime_s);
        break;
    case JOB_CANCELLED:
        totals.cancelled++;
        log_info("job %llu: cancelled (%s; guest on the %s)",
                 (unsigned long long)j->id, j->error,
                 xmig_guest_where(r->guest));
        break;
    default:
        totals.failed++;
        log_warnx("job %llu: failed: %s (guest on the %s)",
                  (unsigned long long)j->id, j->error,
                  xmig_guest_where(r->guest));
        break;
    }
    cb.ended(j);
    cb.changed();
}

static void handle(struct job_msg *m)
{
    struct job *j = m->job;
    const struct xmig_event *ev = &m->ev;

    if (m->type == MSG_DONE) {
        pthread_join(j->thread, NULL);
        j->thread_started = false;
        /* It was j->done_msg: the caller frees m. */
        j->done_msg = NULL;
        finish(j);
        return;
    }
    if (m->type == MSG_LOG) {
        cb.log(j, m->level, m->text);
    } else {
        m->ev.phase = m->phase;
        j->elapsed_s = ev->elapsed_s;
        if (ev->type == XMIG_EV_PHASE) {
            snprintf(j->phase, sizeof(j->phase), "%s", m->phase);
            log_debug("job %llu: phase %s", (unsigned long long)j->id,
                      m->phase);
        } else {
            j->pass = ev->pass;
            j->sent = ev->sent;
            j->mib_s = ev->mib_s;
            j->remaining = ev->type == XMIG_EV_PROGRESS ? ev->remaining : 0;
            if (ev->type == XMIG_EV_PASS)
                j->dirty = ev->dirty;
        }
        cb.event(j, ev);
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct job_msg_queue mine = STAILQ_HEAD_INITIALIZER(mine);
    struct job_msg *m;
    char buf[64];

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&q_lock);
    STAILQ_CONCAT(&mine, &q);
    pthread_mutex_unlock(&q_lock);
    while ((m = STAILQ_FIRST(&mine))) {
        STAILQ_REMOVE_HEAD(&mine, entry);
        handle(m);
        free(m);
    }
    job_schedule();
}

static unsigned int group_running(unsigned int group)
{
    struct job *j;
    unsigned int n = 0;

    TAILQ_FOREACH(j, &jobs, entry)
        if (j->group == group && j->state == JOB_RUNNING)
            n++;
    return n;
}

/* 0 once the worker runs; -1 if it could not start (j has then ended). */
static int start(struct job *j)
{
    sigset_t all, old;
    int r;

    j->done_msg = calloc(1, sizeof(*j->done_msg));
    if (!j->done_msg) {
        r = ENOMEM;
        goto fail;
    }
    j->done_msg->job = j;
    j->done_msg->type = MSG_DONE;
    j->state = JOB_RUNNING;
    j->t_started = xmig_now_ns();
    snprintf(j->phase, sizeof(j->phase), "starting");
    /* Signals are the loop's business; workers never see one. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&j->thread, NULL, worker, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        goto fail;
    j->thread_started = true;
    log_info("job %llu: started", (unsigned long long)j->id);
    cb.running(j);
    return 0;
fail:
    free(j->done_msg);
    j->done_msg = NULL;
    j->rc = -1;
    j->result.guest = XMIG_GUEST_SOURCE;
    snprintf(j->error, sizeof(j->error), "cannot start a worker thread: %s",
             strerror(r));
    finish(j);
    return -1;
}

/* Finished jobs beyond the history go, oldest first. */
static void prune(void)
{
    struct job *j, *tmp;
    unsigned int final = 0;

    TAILQ_FOREACH(j, &jobs, entry)
        if (job_final(j))
            final++;
    TAILQ_FOREACH_SAFE(j, &jobs, entry, tmp) {
        if (final <= XMIGD_HISTORY)
            break;
        if (!job_final(j))
            continue;
        TAILQ_REMOVE(&jobs, j, entry);
        job_free(j);
        final--;
    }
}

void job_schedule(void)
{
    unsigned int running = job_count(JOB_RUNNING);
    struct job *j;

    prune();
    if (stopping)
        return;
    TAILQ_FOREACH(j, &jobs, entry) {
        if (running >= max_jobs)
            break;
        if (j->state != JOB_QUEUED)
            continue;
        if (j->group && group_running(j->group) >= j->group_parallel)
            continue;
        if (start(j) == 0)
            running++;
    }
    cb.changed();
}

void job_set_max(unsigned int n)
{
    max_jobs = n;
}

void job_submit(struct job *j)
{
    j->id = next_id++;
    j->state = JOB_QUEUED;
    j->t_queued = xmig_now_ns();
    TAILQ_INSERT_TAIL(&jobs, j, entry);
    totals.submitted++;
    log_info("job %llu: %s %s (domain %u) %s %s, for uid %u (pid %d)",
             (unsigned long long)j->id,
             j->kind == XMIG_JOB_SAVE ? "save" : "migrate", j->name, j->domid,
             j->kind == XMIG_JOB_SAVE ? "to file" : "to", j->dest,
             (unsigned int)j->uid, (int)j->pid);
    cb.queued(j);
}

struct job *job_find(uint64_t id)
{
    struct job *j;

    TAILQ_FOREACH(j, &jobs, entry)
        if (j->id == id)
            return j;
    return NULL;
}

struct job *job_find_domain(uint32_t domid)
{
    struct job *j;

    TAILQ_FOREACH(j, &jobs, entry)
        if (j->domid == domid && !job_final(j))
            return j;
    return NULL;
}

struct job_list *job_all(void)
{
    return &jobs;
}

unsigned int job_count(enum job_state state)
{
    struct job *j;
    unsigned int n = 0;

    TAILQ_FOREACH(j, &jobs, entry)
        if (j->state == state)
            n++;
    return n;
}

unsigned int job_new_group(void)
{
    return next_group++;
}

const struct job_totals *job_totals(void)
{
    return &totals;
}

/* A job that never ran: it ends here, the guest untouched. */
static void cancel_queued(struct job *j, const char *why)
{
    j->rc = -1;
    j->error_cancelled = true;
    j->cancel_requested = true;
    j->result.guest = XMIG_GUEST_SOURCE;
    snprintf(j->error, sizeof(j->error), "%s", why);
    finish(j);
}

int job_cancel(struct job *j, const char **code_r, char *why, size_t n)
{
    int rc = 0;

    if (job_final(j)) {
        *code_r = "finished";
        snprintf(why, n, "job %llu has already ended (%s)",
                 (unsigned long long)j->id, job_state_name(j->state));
        return -1;
    }
    if (j->state == JOB_QUEUED) {
        log_info("job %llu: cancelled while queued", (unsigned long long)j->id);
        cancel_queued(j, "cancelled before it started");
        return 0;
    }
    pthread_mutex_lock(&j->lock);
    if (j->past_return) {
        *code_r = "too_late";
        snprintf(why, n,
                 "job %llu has sent the go-ahead (phase committed): the "
                 "receiver is taking the guest over, so the job finishes",
                 (unsigned long long)j->id);
        rc = -1;
    } else if (j->worker_returned) {
        *code_r = "finished";
        snprintf(why, n, "job %llu is ending", (unsigned long long)j->id);
        rc = -1;
    } else if (!j->cancel_requested) {
        /*
         * The library checks for a cancel once more just before the
         * go-ahead; one that comes later is too late, and the end event
         * says how the job ended.
         */
        xmig_cancel_request(j->cancel);
        j->cancel_requested = true;
    }
    pthread_mutex_unlock(&j->lock);
    if (rc == 0)
        log_info("job %llu: cancel requested", (unsigned long long)j->id);
    return rc;
}

void job_stop_all(void)
{
    struct job *j, *tmp;
    const char *code;
    char why[200];

    stopping = true;
    TAILQ_FOREACH_SAFE(j, &jobs, entry, tmp) {
        if (j->state == JOB_QUEUED) {
            cancel_queued(j, "cancelled: xmigd is stopping");
        } else if (j->state == JOB_RUNNING) {
            if (job_cancel(j, &code, why, sizeof(why)) < 0)
                log_info("stopping: waiting for job %llu: %s",
                         (unsigned long long)j->id, why);
        }
    }
}

bool job_idle(void)
{
    return job_count(JOB_RUNNING) == 0;
}

int job_init(struct event_base *base, const char *dir, const struct job_cb *c)
{
    journal_dir = dir;
    cb = *c;
    if (pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_warn("%s: pipe", __func__);
        return -1;
    }
    wake_ev = event_new(base, wake_fd[0], EV_READ | EV_PERSIST, wake_cb, NULL);
    if (!wake_ev || event_add(wake_ev, NULL) < 0) {
        log_warnx("%s: cannot watch the workers' pipe", __func__);
        return -1;
    }
    return 0;
}

/* Only when no worker runs (job_idle()). */
void job_shutdown(void)
{
    struct job *j;
    struct job_msg *m;

    while ((m = STAILQ_FIRST(&q))) {
        STAILQ_REMOVE_HEAD(&q, entry);
        if (m->type != MSG_DONE)
            free(m);
    }
    while ((j = TAILQ_FIRST(&jobs))) {
        TAILQ_REMOVE(&jobs, j, entry);
        if (j->thread_started)
            pthread_join(j->thread, NULL);
        job_free(j);
    }
    if (wake_ev)
        event_free(wake_ev);
    wake_ev = NULL;
    if (wake_fd[0] >= 0) {
        close(wake_fd[0]);
        close(wake_fd[1]);
    }
    wake_fd[0] = wake_fd[1] = -1;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * One job: send one domain to a stock receiver or to a file.  Ties the
 * framing, the engine, suspend and the xl handshake together, and makes
 * sure that a failure leaves the guest running on the source.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "private.h"
#include "relay.h"
#include "stream.h"

/* A receiver may spend a long time creating the domain (devices, qemu). */
#define BANNER_TIMEOUT_MS (120 * 1000)
#define REPORT_TIMEOUT_MS (120 * 1000)
/* The receiver destroys its copy before it grants permission to resume. */
#define PERMISSION_TIMEOUT_MS (300 * 1000)

struct job {
    xmig_xen *x;
    const struct xmig_job_params *p;
    struct xmig_job_result *r;
    struct xmig_dominfo info;
    uint64_t t0;
    uint64_t t_suspend;
    bool suspended;

    /* The pass being sent, as the engine's policy calls reveal it. */
    unsigned int pass;
    uint64_t pass_pages;
    uint64_t pass_t0;
    double pass_s;
    uint64_t last_progress;
    bool policy_said_abort;
    long last_dirty;

    /* Own engine, PV: the kept mappings, unmapped while the receiver works. */
    struct xmig__tail *tail;

    struct xmig_cost cost0; /* when the stream began */
    bool costing;           /* ... and its cost is not in r->cost yet */

    struct xmig__journal *jn; /* NULL without p->journal_dir */
};

void xmig_policy_default(struct xmig_policy *p)
{
    /* Stock libxenguest's simple policy. */
    p->max_iters = 5;
    p->target_dirty = 50;
    p->abort_if_busy = false;
    p->skip_redirtied = true;
}

void xmig_job_params_default(struct xmig_job_params *p)
{
    memset(p, 0, sizeof(*p));
    p->live = true;
    p->engine = XMIG_ENGINE_XMIG;
    xmig_arena_params_default(&p->arena);
    xmig_policy_default(&p->policy);
    p->ready_timeout_s = XMIG_READY_TIMEOUT_DEFAULT;
}

static unsigned int ready_timeout_s(const struct xmig_job_params *p)
{
    return p->ready_timeout_s ? p->ready_timeout_s : XMIG_READY_TIMEOUT_DEFAULT;
}

const char *xmig_guest_where(enum xmig_guest g)
{
    switch (g) {
    case XMIG_GUEST_SOURCE:
        return "source";
    case XMIG_GUEST_DESTINATION:
        return "destination";
    case XMIG_GUEST_UNKNOWN:
        break;
    }
    return "unknown";
}

static double since(uint64_t t)
{
    return (double)(xmig_now_ns() - t) / 1e9;
}

static void emit(struct job *j, struct xmig_event *ev)
{
    ev->elapsed_s = since(j->t0);
    if (j->p->event)
        j->p->event(j->p->event_arg, ev);
}

static void phase(struct job *j, const char *name)
{
    struct xmig_event ev = {.type = XMIG_EV_PHASE, .phase = name, .dirty = -1};

    xmig__journal_set(j->jn, "phase", name);
    emit(j, &ev);
}

/* The pass that just ended, with the dirty pages it left behind. */
static void end_pass(struct job *j, long dirty_after)
{
    struct xmig_event ev = {.type = XMIG_EV_PASS, .pass = j->pass};
    double s = since(j->pass_t0);

    ev.sent = j->pass_pages;
    ev.dirty = dirty_after;
    ev.mib_s = s > 0 ? (double)j->pass_pages * XMIG_PAGE_SIZE / s / 1048576 : 0;
    ev.dirty_rate = s > 0 && dirty_after >= 0 ? (double)dirty_after / s : 0;
    j->r->pages_sent += j->pass_pages;
    j->r->passes = j->pass + 1;
    emit(j, &ev);
}

static int hook_policy(void *arg, unsigned int iteration,
                       unsigned long total_written, long dirty_count)
{
    struct job *j = arg;
    const struct xmig_policy *pol = &j->p->policy;

    if (xmig__cancelled(j->x))
        return XMIG_POLICY_ABORT;
    if (dirty_count < 0) {
        /* Pass iteration-1 is on the wire: should there be another? */
        j->pass_s = since(j->pass_t0);
        if (iteration < pol->max_iters)
            return XMIG_POLICY_CONTINUE;
        if (pol->abort_if_busy && j->last_dirty > pol->target_dirty) {
            end_pass(j, -1);
            j->policy_said_abort = true;
            return XMIG_POLICY_ABORT;
        }
        return XMIG_POLICY_STOP_AND_COPY;
    }
    /* A pass of dirty_count pages is about to be sent. */
    if (iteration > 0 && pol->downtime_ms && j->pass_s > 0 && j->pass_pages) {
        /* At the last pass's rate, would the rest fit in the downtime? */
        double rate = (double)j->pass_pages / j->pass_s;

        if ((double)dirty_count / rate * 1000 <= pol->downtime_ms) {
            end_pass(j, dirty_count);
            j->pass = iteration;
            j->pass_pages = 0;
            j->pass_t0 = xmig_now_ns();
            j->last_dirty = dirty_count;
            return XMIG_POLICY_STOP_AND_COPY;
        }
    }
    if (iteration > 0)
        end_pass(j, dirty_count);
    j->pass = iteration;
    j->pass_pages = (uint64_t)dirty_count;
    j->pass_t0 = xmig_now_ns();
    j->last_dirty = dirty_count;
    if (iteration > 0 && dirty_count <= pol->target_dirty)
        return XMIG_POLICY_STOP_AND_COPY;
    return XMIG_POLICY_CONTINUE;
}

static void hook_progress(void *arg, unsigned long done, unsigned long total)
{
    struct job *j = arg;
    struct xmig_event ev = {.type = XMIG_EV_PROGRESS, .pass = j->pass};
    uint64_t now = xmig_now_ns();
    double s = since(j->pass_t0);

    j->pass_pages = total;
    /* Progress lines twice a second are plenty; the last one always. */
    if (done != total && now - j->last_progress < 500000000u)
        return;
    j->last_progress = now;
    ev.sent = done;
    ev.remaining = total > done ? total - done : 0;
    ev.dirty = -1;
    ev.mib_s = s > 0 ? (double)done * XMIG_PAGE_SIZE / s / 1048576 : 0;
    emit(j, &ev);
}

static int hook_suspend(void *arg)
{
    struct job *j = arg;

    if (xmig__cancelled(j->x))
        return -1;
    if (j->p->live && j->pass_pages)
        end_pass(j, -1);
    phase(j, "suspend");
    j->t_suspend = xmig_now_ns();
    if (j->x->ops->suspend(j->x, j->info.domid) < 0)
        return -1;
    j->suspended = true;
    /* Stop-and-copy: whatever the final CLEAN finds, sent while paused. */
    j->pass = j->p->live ? j->pass + 1 : 0;
    j->pass_pages = 0;
    j->pass_t0 = xmig_now_ns();
    return 0;
}

static int write_framing(struct job *j, int fd)
{
    struct xmig_buf b;
    char *json = NULL;
    int rc = -1;

    xmig_buf_init(&b);
    if (j->x->ops->config_json(j->x, j->info.domid, &json) < 0)
        goto out;
    if (xmig_stream_xl_header(&b, json) < 0 ||
        xmig_stream_libxl_header(&b) < 0 ||
        xmig_stream_libxl_record(&b, LIBXL_REC_LIBXC_CONTEXT, NULL, 0) < 0) {
        xmig__seterr(j->x, ENOMEM, "out of memory");
        goto out;
    }
    rc = xmig__write_all(j->x, fd, b.p, b.len, "the stream header");
out:
    free(json);
    xmig_buf_dispose(&b);
    return rc;
}

static int write_end(struct job *j, int fd)
{
    struct xmig_buf b;
    int rc;

    xmig_buf_init(&b);
    if (xmig_stream_libxl_record(&b, LIBXL_REC_END, NULL, 0) < 0) {
        xmig__seterr(j->x, ENOMEM, "out of memory");
        return -1;
    }
    rc = xmig__write_all(j->x, fd, b.p, b.len, "the end of the stream");
    xmig_buf_dispose(&b);
    return rc;
}

static int run_engine(struct job *j, int fd)
{
    const struct xmig__save_hooks hooks = {
        .suspend = hook_suspend,
        .policy = hook_policy,
        .progress = hook_progress,
        .arg = j,
        .skip_redirtied = j->p->policy.skip_redirtied,
    };
    int rc;

    phase(j, "stream");
    j->pass_t0 = xmig_now_ns();
    if (j->p->engine == XMIG_ENGINE_XMIG)
        rc = xmig__engine_save(j->x, &j->info, fd, j->p->live, &j->p->arena,
                               &hooks, &j->r->engine, &j->tail);
    else
        rc = j->x->ops->libxc_save(j->x, j->info.domid, fd, j->p->live, &hooks);
    if (rc < 0 && xmig__cancelled(j->x))
        xmig__seterr(j->x, ECANCELED, "cancelled");
    else if (rc < 0 && j->policy_said_abort)
        xmig__seterr(j->x, EBUSY,
                     "domain %u did not converge in %u passes (%ld pages "
                     "dirty, target %ld): migration abandoned",
                     j->info.domid, j->p->policy.max_iters, j->last_dirty,
                     j->p->policy.target_dirty);
    else if (rc == 0)
        end_pass(j, 0);
    /*
     * Passes count every pfn they visit, holes included, which is all
     * libxenguest tells us; our own engine knows the pages with data.
     */
    if (rc == 0 && j->p->engine == XMIG_ENGINE_XMIG)
        j->r->pages_sent = j->r->engine.pages;
    return rc;
}

/*
 * What the stream costs dom0 and Xen: from its first byte until nothing
 * mapped for it is left, the unmapping being a good part of the cost.
 */
static void cost_begin(struct job *j)
{
    xmig_cost_read(j->x, &j->cost0);
    j->costing = true;
}

static void cost_end(struct job *j)
{
    struct xmig_cost now;

    if (!j->costing)
        return;
    j->costing = false;
    xmig_cost_read(j->x, &now);
    xmig_cost_diff(&j->cost0, &now, &j->r->cost);
}

/* Waits for the kept mappings to be gone; keeps the first error message. */
static void finish_tail(struct job *j)
{
    char err[sizeof(j->x->err)];

    if (!j->tail)
        return;
    memcpy(err, j->x->err, sizeof(err));
    if (xmig__engine_tail_close(j->tail, &j->r->engine) < 0)
        xmig__log(j->x, XMIG_LOG_ERROR, "%s", j->x->err);
    j->tail = NULL;
    memcpy(j->x->err, err, sizeof(err));
    cost_end(j);
}

/* Undo whatever was done to the source; keeps the first error message. */
static void give_back(struct job *j)
{
    char err[sizeof(j->x->err)];
    int saved = errno;

    memcpy(err, j->x->err, sizeof(err));
    if (j->suspended) {
        phase(j, "resume");
        if (j->x->ops->resume(j->x, j->info.domid) == 0)
            j->suspended = false;
        else
            xmig__log(j->x, XMIG_LOG_ERROR, "%s", j->x->err);
    }
    memcpy(j->x->err, err, sizeof(err));
    errno = saved;
}

/* The handle's error, cut to fit inside a longer message. */
static void clip_err(const xmig_xen *x, char *buf, size_t n)
{
    size_t len = strnlen(x->err, n - 1);

    memcpy(buf, x->err, len);
    buf[len] = 0;
}

/*
 * Takes the source's name back from the away name.  A failure leaves the
 * guest under the away name, which the result and the error must say.
 */
static void rename_back(struct job *j, const char *away)
{
    xmig_xen *x = j->x;
    char err[sizeof(x->err)], why[160];

    int saved;

    memcpy(err, x->err, sizeof(err));
    if (x->ops->rename(x, j->info.domid, away, j->info.name) == 0) {
        j->r->away_name[0] = 0;
        memcpy(x->err, err, sizeof(err));
        return;
    }
    saved = errno ? errno : EIO;
    clip_err(x, why, sizeof(why));
    snprintf(j->r->away_name, sizeof(j->r->away_name), "%s", away);
    xmig__log(x, XMIG_LOG_ERROR, "domain %u keeps the name '%s': %s",
              j->info.domid, away, why);
    memcpy(x->err, err, sizeof(err));
    xmig__seterr(x, saved,
                 "%s; renaming domain %u back to '%s' failed (%s): it runs "
                 "as '%s'",
                 err, j->info.domid, j->info.name, why, away);
}

/*
 * After the go-ahead, without a verdict from the receiver that it does not
 * run the guest: xl 4.17's "failed badly".  Ours stays suspended under the
 * away name; resuming it could run the guest twice.
 */
static int state_unknown(struct job *j, const char *away, const char *what)
{
    xmig_xen *x = j->x;
    char cause[160];

    clip_err(x, cause, sizeof(cause));
    j->suspended = false; /* give_back must not resume it */
    j->r->guest = XMIG_GUEST_UNKNOWN;
    snprintf(j->r->away_name, sizeof(j->r->away_name), "%s", away);
    xmig__seterr(x, EPROTO,
                 "%s (%s): the guest's state is unknown; domain %u stays "
                 "suspended here as '%s', the receiver may run it as '%s': "
                 "check both hosts before resuming at most one",
                 what, cause, j->info.domid, away, j->info.name);
    return -1;
}

/*
 * No 'ready' in time.  The go-ahead has not gone out, and xl's receiver
 * never runs a domain without it: the guest is ours to resume.
 */
static int no_ready(struct job *j, unsigned int secs)
{
    xmig_xen *x = j->x;

    give_back(j);
    if (j->suspended)
        xmig__seterr(x, ETIMEDOUT,
                     "the receiver did not say 'ready' within %u s, and "
                     "domain %u could not be resumed: it stays suspended here",
                     secs, j->info.domid);
    else
        xmig__seterr(x, ETIMEDOUT,
                     "the receiver did not say 'ready' within %u s: "
                     "migration abandoned before the go-ahead, domain %u "
                     "runs here again",
                     secs, j->info.domid);
    return -1;
}

/* The xl handshake after the stream, as xl 4.17's migrate_domain(). */
static int handshake(struct job *j, struct xmig__transport *t)
{
    char away[sizeof(j->info.name) + 16];
    unsigned int ready_s = ready_timeout_s(j->p);
    uint8_t status;
    xmig_xen *x = j->x;

    phase(j, "handshake");
    if (xmig__expect(x, t->rfd, XL_MIG_READY, XL_MIG_READY_LEN,
                     (int)(ready_s * 1000),
                     "the receiver's 'ready' message") < 0)
        return errno == ETIMEDOUT ? no_ready(j, ready_s) : -1;
    if (xmig__cancelled(x)) {
        xmig__seterr(x, ECANCELED, "cancelled");
        return -1;
    }
    /* Before the go-ahead: the receiver takes the name next. */
    snprintf(away, sizeof(away), "%s--migratedaway", j->info.name);
    if (x->ops->rename(x, j->info.domid, j->info.name, away) < 0)
        return -1;
    /*
     * From the go-ahead on, the guest is the receiver's: a cancel must not
     * break the connection that carries its report any more.
     */
    xmig__cancel_detach(j->p->cancel);
    if (xmig__cancelled(x)) {
        xmig__seterr(x, ECANCELED, "cancelled");
        rename_back(j, away);
        return -1;
    }
    /* From here on, waits ignore cancel: the guest may be the receiver's. */
    x->cancel = NULL;
    /* Journaled first: a crash after the write must not resume ours. */
    if (xmig__journal_set(j->jn, "go_sent", "1") < 0) {
        rename_back(j, away);
        return -1;
    }
    if (xmig__write_all(x, t->wfd, XL_MIG_GO, XL_MIG_GO_LEN, "the go-ahead") <
        0) {
        /*
         * Unlike xl, take the guest back: the go-ahead is one write of 44
         * bytes, and a write that failed delivered at most a prefix of it,
         * on which no receiver unpauses its copy.
         */
        rename_back(j, away);
        return -1;
    }
    phase(j, "committed");
    if (xmig__expect(x, t->rfd, XL_MIG_REPORT, XL_MIG_REPORT_LEN,
                     REPORT_TIMEOUT_MS, "the receiver's report") < 0 ||
        xmig__read_exact(x, t->rfd, &status, 1, REPORT_TIMEOUT_MS,
                         "the receiver's status") < 0)
        return state_unknown(j, away, "no report after the go-ahead");
    xmig__journal_set(j->jn, "report", status == 0 ? "ok" : "failed");
    j->r->downtime_s = since(j->t_suspend);
    if (status != 0) {
        /*
         * xl's receiver destroys its copy and only then grants permission
         * to resume; until that message its copy may still exist.
         */
        char what[80];

        snprintf(what, sizeof(what),
                 "the receiver failed (status %u) and granted no "
                 "permission to resume",
                 status);
        phase(j, "permission");
        if (xmig__expect(x, t->rfd, XL_MIG_GO, XL_MIG_GO_LEN,
                         PERMISSION_TIMEOUT_MS,
                         "the receiver's permission to resume") < 0)
            return state_unknown(j, away, what);
        xmig__journal_set(j->jn, "permission", "1");
        finish_tail(j);
        xmig__seterr(x, EREMOTEIO,
                     "the receiver could not unpause the domain (status %u); "
                     "it destroyed its copy",
                     status);
        rename_back(j, away);
        return -1; /* give_back resumes it */
    }
    /* The guest is out of our hands: no mapping may outlive it. */
    finish_tail(j);
    j->suspended = false;
    j->r->guest = XMIG_GUEST_DESTINATION;
    if (x->ops->destroy(x, j->info.domid) < 0) {
        snprintf(j->r->away_name, sizeof(j->r->away_name), "%s", away);
        xmig__log(x, XMIG_LOG_WARN,
                  "migrated, but the source copy stays, suspended, as "
                  "domain %u '%s': %s",
                  j->info.domid, away, x->err);
    }
    return 0;
}

static int check_domain(struct job *j)
{
    xmig_xen *x = j->x;
    uint32_t domid;

    if (xmig_domain_find(x, j->p->domain, &domid) < 0 ||
        xmig_domain_info(x, domid, &j->info) < 0)
        return -1;
    j->r->domid = domid;
    if (domid == 0) {
        xmig__seterr(x, EINVAL, "domain 0 cannot be migrated");
        return -1;
    }
    if (j->info.dying || j->info.shutdown) {
        xmig__seterr(x, EINVAL, "domain %u is shutting down", domid);
        return -1;
    }
    if (j->info.type == XMIG_DOM_HVM) {
        xmig__seterr(x, EOPNOTSUPP,
                     "domain %u is HVM: its device model state "
                     "is not supported yet",
                     domid);
        return -1;
    }
    if (!j->info.name[0]) {
        xmig__seterr(x, EINVAL, "domain %u has no name in xenstore", domid);
        return -1;
    }
    return 0;
}

/* The image is complete and in place: the guest is in it now. */
static int save_done(struct job *j, struct xmig__savefile *sf)
{
    xmig_xen *x = j->x;

    j->r->downtime_s = since(j->t_suspend);
    finish_tail(j);
    if (xmig__save_commit(x, sf) < 0)
        return -1;
    xmig__journal_set(j->jn, "saved", "1");
    if (j->p->keep)
        return 0; /* give_back resumes it */
    if (x->ops->destroy(x, j->info.domid) < 0) {
        /* Resumed by give_back: the image stays, as a checkpoint. */
        char why[160];

        clip_err(x, why, sizeof(why));
        xmig__seterr(x, errno ? errno : EIO,
                     "saved to '%s', but destroying domain %u failed (%s): "
                     "it runs here again, and the image stays",
                     sf->path, j->info.domid, why);
        return -1;
    }
    j->suspended = false;
    j->r->guest = XMIG_GUEST_DESTINATION;
    return 0;
}

static int run(struct job *j)
{
    const struct xmig_job_params *p = j->p;
    struct xmig__transport t = {.wfd = -1, .rfd = -1, .pid = -1};
    struct xmig__savefile sf = {.fd = -1};
    bool save = p->kind == XMIG_JOB_SAVE;
    xmig_xen *x = j->x;
    struct relay rl;
    bool relaying = false;
    int fd, rc = -1;

    if (p->ready_timeout_s > XMIG_READY_TIMEOUT_MAX) {
        xmig__seterr(x, EINVAL,
                     "the 'ready' timeout must be from 1 to %d s, not %u",
                     XMIG_READY_TIMEOUT_MAX, p->ready_timeout_s);
        return -1;
    }
    if (check_domain(j) < 0 || xmig__journal_open(x, p, &j->info, &j->jn) < 0)
        return -1;
    if (xmig__cancelled(x)) {
        xmig__seterr(x, ECANCELED, "cancelled");
        return -1;
    }
    phase(j, "connect");
    if (save) {
        if (xmig__save_open(x, p->dest, &sf) < 0)
            return -1;
        if (sf.tmp)
            xmig__journal_set(j->jn, "tmp", sf.tmp);
        fd = sf.fd;
    } else {
        if (xmig__transport_open(x, p->dest, p->ssh_command, &t) < 0)
            return -1;
        t.grace_ms = (int)(p->receiver_grace_ms < INT_MAX ? p->receiver_grace_ms
                                                          : INT_MAX);
        xmig__cancel_attach(p->cancel, &t);
        if (xmig__expect(x, t.rfd, XL_MIG_BANNER, XL_MIG_BANNER_LEN,
                         BANNER_TIMEOUT_MS, "the receiver's banner") < 0)
            goto out;
        fd = t.wfd;
    }
    if (save && !sf.copies && p->engine == XMIG_ENGINE_LIBXC) {
        if (xmig__relay_start(x, &rl, sf.fd, &fd) < 0)
            goto out;
        relaying = true;
    }
    cost_begin(j);
    if (write_framing(j, fd) < 0 || run_engine(j, fd) < 0 ||
        write_end(j, fd) < 0)
        goto out;
    if (relaying) {
        relaying = false;
        if (xmig__relay_finish(x, &rl, fd) < 0)
            goto out;
    }
    if (!j->tail)
        cost_end(j); /* nothing is left mapped */
    rc = save ? save_done(j, &sf) : handshake(j, &t);
out:
    if (relaying)
        xmig__relay_finish(x, &rl, fd);
    give_back(j);
    finish_tail(j);
    cost_end(j);
    if (rc == 0 && j->suspended) {
        rc = -1; /* --keep, but the guest would not resume */
        j->r->guest = XMIG_GUEST_SOURCE;
    }
    /* The transport lives on this stack: no cancel may reach it later. */
    xmig__cancel_detach(p->cancel);
    xmig__transport_close(&t);
    xmig__save_close(&sf);
    return rc;
}

int xmig_job_run(xmig_xen *x, const struct xmig_job_params *p,
                 struct xmig_job_result *r)
{
    struct job j = {.x = x, .p = p, .r = r, .last_dirty = -1};
    sigset_t pipe_set, old;
    struct timespec zero = {0, 0};
    int rc, saved;

    memset(r, 0, sizeof(*r));
    r->cost.dom0_cpu_ns = r->cost.traps = r->cost.hypercalls = -1;
    x->err[0] = 0;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    j.t0 = xmig_now_ns();
    x->cancel = p->cancel;
    rc = run(&j);
    /* Kept if the guest may be the receiver's or would not resume. */
    xmig__journal_close(j.jn, r->guest != XMIG_GUEST_UNKNOWN && !j.suspended &&
                                  !r->away_name[0]);
    j.jn = NULL;
    /* Whatever broke first, a cancelled job says so. */
    if (rc < 0 && xmig__cancelled(x) && r->guest == XMIG_GUEST_SOURCE &&
        !r->away_name[0])
        xmig__seterr(x, ECANCELED, "cancelled");
    x->cancel = NULL;
    saved = errno;
    r->total_s = since(j.t0);
    /* Swallow the SIGPIPEs a dead receiver raised, then unblock. */
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
        ;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    phase(&j, rc == 0 ? "done"
              : saved == ECANCELED && r->guest == XMIG_GUEST_SOURCE
                  ? "cancelled"
                  : "failed");
    errno = saved;
    return rc;
}

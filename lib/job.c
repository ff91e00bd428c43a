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

#include "job-core.h"
#include "relay.h"
#include "stream.h"

/* A receiver may spend a long time creating the domain (devices, qemu). */
#define BANNER_TIMEOUT_MS (120 * 1000)

void xmig_job_params_default(struct xmig_job_params *p)
{
    memset(p, 0, sizeof(*p));
    p->live = true;
    p->engine = XMIG_ENGINE_XMIG;
    xmig_arena_params_default(&p->arena);
    xmig_policy_default(&p->policy);
    p->ready_timeout_s = XMIG_READY_TIMEOUT_DEFAULT;
}

const char *xmig_guest_where(enum xmig_guest g)
{
    switch (g) {
    case XMIG_GUEST_SOURCE:
        return "source";
    case XMIG_GUEST_DESTINATION:
        return "destination";
    case XMIG_GUEST_GONE:
        return "gone";
    case XMIG_GUEST_UNKNOWN:
        break;
    }
    return "unknown";
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
    if (j->info.type == XMIG_DOM_HVM && x->ops->dm_check(x, domid) < 0)
        return -1;
    if (!j->info.name[0]) {
        xmig__seterr(x, EINVAL, "domain %u has no name in xenstore", domid);
        return -1;
    }
    return 0;
}

/*
 * The image is complete and in place: the guest is in it now.  The exit
 * worker, told to go, unmaps the guest's pages meanwhile; waiting for it
 * comes last (run()): a domain is destroyed whoever still maps its pages,
 * which go when the last mapping does.
 */
static int save_done(struct job *j, struct xmig__savefile *sf)
{
    xmig_xen *x = j->x;

    j->r->downtime_s = xmig__job_since(j->t_suspend);
    if (xmig__save_commit(x, sf) < 0)
        return -1;
    xmig__journal_set(j->jn, "saved", "1");
    if (j->p->keep)
        return 0; /* give_back resumes it */
    if (x->ops->destroy(x, j->info.domid) < 0) {
        /* Resumed by give_back: the image stays, as a checkpoint. */
        char why[160];

        xmig__job_clip_err(x, why, sizeof(why));
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
    xmig__job_phase(j, "connect");
    if (save) {
        if (xmig__save_open(x, p->dest, &sf) < 0)
            return -1;
        if (sf.tmp)
            xmig__journal_set(j->jn, "tmp", sf.tmp);
        /* Each page with data: its 4 KiB and its pfn in a PAGE_DATA record. */
        xmig__save_reserve(&sf, j->info.nr_pages * (XMIG_PAGE_SIZE + 8));
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
    xmig__job_cost_begin(j);
    if (xmig__job_stream(j, fd) < 0)
        goto out;
    if (relaying) {
        relaying = false;
        if (xmig__relay_finish(x, &rl, fd) < 0)
            goto out;
    }
    if (!j->tail)
        xmig__job_cost_end(j); /* nothing is left mapped */
    rc = save ? save_done(j, &sf) : xmig__job_handshake(j, &t);
out:
    if (relaying)
        xmig__relay_finish(x, &rl, fd);
    xmig__job_give_back(j);
    xmig__job_finish_tail(j);
    xmig__job_cost_end(j);
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

/*
 * A failed job that left the guest here says so ("source"): true only if
 * its domain still runs.  One that crashed, shut down or was destroyed
 * meanwhile runs nowhere, and an admin told "still running here" would
 * not go looking for it.  The job's own error stays first.
 */
static void check_gone(struct job *j)
{
    struct xmig_dominfo now;
    struct xmig__errkeep k;
    bool gone;

    if (j->r->guest != XMIG_GUEST_SOURCE || j->r->away_name[0] ||
        !j->info.domid)
        return;
    xmig__err_keep(j->x, &k);
    if (xmig_domain_info(j->x, j->info.domid, &now) < 0)
        gone = errno == ESRCH;
    else
        gone = now.dying || (now.shutdown && !now.suspended) ||
               memcmp(now.uuid, j->info.uuid, sizeof(now.uuid)) != 0;
    xmig__err_back(j->x, &k);
    if (gone) {
        j->r->guest = XMIG_GUEST_GONE;
        xmig__seterr(j->x, k.errnum,
                     "%s; domain %u ended here during the job (it crashed, "
                     "shut down or was destroyed): nothing runs the guest",
                     k.err, j->info.domid);
    }
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
    if (rc < 0)
        check_gone(&j);
    /*
     * Kept if the guest may be the receiver's or would not resume; not
     * for a guest whose domain ended here: left, it would stay until
     * xmigd starts again, with nothing of the guest's to recover.
     */
    xmig__journal_close(j.jn, r->guest == XMIG_GUEST_GONE ||
                                  (r->guest != XMIG_GUEST_UNKNOWN &&
                                   !j.suspended && !r->away_name[0]));
    j.jn = NULL;
    /* Whatever broke first, a cancelled job says so. */
    if (rc < 0 && xmig__cancelled(x) && r->guest == XMIG_GUEST_SOURCE &&
        !r->away_name[0])
        xmig__seterr(x, ECANCELED, "cancelled");
    x->cancel = NULL;
    saved = errno;
    r->total_s = xmig__job_since(j.t0);
    /* Swallow the SIGPIPEs a dead receiver raised, then unblock. */
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
        ;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    xmig__job_phase(&j, rc == 0 ? "done"
                        : saved == ECANCELED && r->guest == XMIG_GUEST_SOURCE
                            ? "cancelled"
                            : "failed");
    errno = saved;
    return rc;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xl's migrate handshake after the stream, as xl 4.17's migrate_domain():
 * 'ready', the go-ahead, the receiver's report, and what each failure
 * leaves of the guest.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "job-core.h"
#include "stream.h"

/* A receiver may spend a long time creating the domain (devices, qemu). */
#define REPORT_TIMEOUT_MS (120 * 1000)
/* The receiver destroys its copy before it grants permission to resume. */
#define PERMISSION_TIMEOUT_MS (300 * 1000)

static unsigned int ready_timeout_s(const struct xmig_job_params *p)
{
    return p->ready_timeout_s ? p->ready_timeout_s : XMIG_READY_TIMEOUT_DEFAULT;
}

/*
 * Takes the source's name back from the away name.  A failure leaves the
 * guest under the away name, which the result and the error must say.
 */
static void rename_back(struct job *j, const char *away)
{
    xmig_xen *x = j->x;
    struct xmig__errkeep k;
    char why[160];
    int saved;

    xmig__err_keep(x, &k);
    if (x->ops->rename(x, j->info.domid, away, j->info.name) == 0) {
        j->r->away_name[0] = 0;
        xmig__err_back(x, &k);
        return;
    }
    saved = errno ? errno : EIO;
    xmig__job_clip_err(x, why, sizeof(why));
    snprintf(j->r->away_name, sizeof(j->r->away_name), "%s", away);
    xmig__log(x, XMIG_LOG_ERROR, "domain %u keeps the name '%s': %s",
              j->info.domid, away, why);
    xmig__seterr(x, saved,
                 "%s; renaming domain %u back to '%s' failed (%s): it runs "
                 "as '%s'",
                 k.err, j->info.domid, j->info.name, why, away);
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

    xmig__job_clip_err(x, cause, sizeof(cause));
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

    xmig__job_give_back(j);
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
int xmig__job_handshake(struct job *j, struct xmig__transport *t)
{
    char away[sizeof(j->info.name) + 16];
    unsigned int ready_s = ready_timeout_s(j->p);
    uint8_t status;
    xmig_xen *x = j->x;

    xmig__job_phase(j, "handshake");
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
    xmig__job_phase(j, "committed");
    if (xmig__expect(x, t->rfd, XL_MIG_REPORT, XL_MIG_REPORT_LEN,
                     REPORT_TIMEOUT_MS, "the receiver's report") < 0 ||
        xmig__read_exact(x, t->rfd, &status, 1, REPORT_TIMEOUT_MS,
                         "the receiver's status") < 0)
        return state_unknown(j, away, "no report after the go-ahead");
    xmig__journal_set(j->jn, "report", status == 0 ? "ok" : "failed");
    j->r->downtime_s = xmig__job_since(j->t_suspend);
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
        xmig__job_phase(j, "permission");
        if (xmig__expect(x, t->rfd, XL_MIG_GO, XL_MIG_GO_LEN,
                         PERMISSION_TIMEOUT_MS,
                         "the receiver's permission to resume") < 0)
            return state_unknown(j, away, what);
        xmig__journal_set(j->jn, "permission", "1");
        xmig__job_finish_tail(j);
        xmig__seterr(x, EREMOTEIO,
                     "the receiver could not unpause the domain (status %u); "
                     "it destroyed its copy",
                     status);
        rename_back(j, away);
        return -1; /* give_back resumes it */
    }
    /* The guest is out of our hands: no mapping may outlive it. */
    xmig__job_finish_tail(j);
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

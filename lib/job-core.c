/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * What every part of a job does with its state: events and phases, the
 * cost of the stream, and undoing what was done to the source.
 */
#include <errno.h>
#include <string.h>

#include "job-core.h"

double xmig__job_since(uint64_t t)
{
    return (double)(xmig_now_ns() - t) / 1e9;
}

void xmig__job_emit(struct job *j, struct xmig_event *ev)
{
    ev->elapsed_s = xmig__job_since(j->t0);
    if (j->p->event)
        j->p->event(j->p->event_arg, ev);
}

void xmig__job_phase(struct job *j, const char *name)
{
    struct xmig_event ev = {.type = XMIG_EV_PHASE, .phase = name, .dirty = -1};

    xmig__journal_set(j->jn, "phase", name);
    xmig__job_emit(j, &ev);
}

/*
 * What the stream costs dom0 and Xen: from its first byte until nothing
 * mapped for it is left, the unmapping being a good part of the cost.
 */
void xmig__job_cost_begin(struct job *j)
{
    xmig_cost_read(j->x, &j->cost0);
    j->costing = true;
}

void xmig__job_cost_end(struct job *j)
{
    struct xmig_cost now;

    if (!j->costing)
        return;
    j->costing = false;
    xmig_cost_read(j->x, &now);
    xmig_cost_diff(&j->cost0, &now, &j->r->cost);
}

/* Waits for the kept mappings to be gone; keeps the first error message. */
void xmig__job_finish_tail(struct job *j)
{
    struct xmig__errkeep k;

    if (!j->tail)
        return;
    xmig__err_keep(j->x, &k);
    if (xmig__engine_tail_close(j->tail, &j->r->engine) < 0)
        xmig__log(j->x, XMIG_LOG_ERROR, "%s", j->x->err);
    j->tail = NULL;
    xmig__err_back(j->x, &k);
    xmig__job_cost_end(j);
}

/*
 * Undo whatever was done to the source; keeps the first error message.  A
 * job that had none (save --keep) fails with the resume's.
 */
void xmig__job_give_back(struct job *j)
{
    struct xmig__errkeep k;

    xmig__err_keep(j->x, &k);
    if (j->suspended) {
        xmig__job_phase(j, "resume");
        if (j->x->ops->resume(j->x, j->info.domid) == 0)
            j->suspended = false;
        else
            xmig__log(j->x, XMIG_LOG_ERROR, "%s", j->x->err);
        /* QEMU's saved state, if the suspend got that far: stale now. */
        if (j->info.type == XMIG_DOM_HVM)
            j->x->ops->dm_discard(j->x, j->info.domid);
    }
    xmig__err_first(j->x, &k);
}

/* The handle's error, cut to fit inside a longer message. */
void xmig__job_clip_err(const xmig_xen *x, char *buf, size_t n)
{
    size_t len = strnlen(x->err, n - 1);

    memcpy(buf, x->err, len);
    buf[len] = 0;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A job's stream: libxl's framing around the libxc stream, and the engine
 * that writes it, under the pre-copy policy, with the events of each pass.
 */
#include <errno.h>
#include <stdlib.h>

#include "job-core.h"
#include "stream.h"

void xmig_policy_default(struct xmig_policy *p)
{
    /* Stock libxenguest's simple policy. */
    p->max_iters = 5;
    p->target_dirty = 50;
    p->abort_if_busy = false;
    p->skip_redirtied = true;
}

/* The pass that just ended, with the dirty pages it left behind. */
static void end_pass(struct job *j, long dirty_after)
{
    struct xmig_event ev = {.type = XMIG_EV_PASS, .pass = j->pass};
    double s = xmig__job_since(j->pass_t0);

    ev.sent = j->pass_pages;
    ev.dirty = dirty_after;
    ev.mib_s = s > 0 ? (double)j->pass_pages * XMIG_PAGE_SIZE / s / 1048576 : 0;
    ev.dirty_rate = s > 0 && dirty_after >= 0 ? (double)dirty_after / s : 0;
    j->r->pages_sent += j->pass_pages;
    j->r->passes = j->pass + 1;
    xmig__job_emit(j, &ev);
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
        j->pass_s = xmig__job_since(j->pass_t0);
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
    double s = xmig__job_since(j->pass_t0);

    j->pass_pages = total;
    /* Progress lines twice a second are plenty; the last one always. */
    if (done != total && now - j->last_progress < 500000000u)
        return;
    j->last_progress = now;
    ev.sent = done;
    ev.remaining = total > done ? total - done : 0;
    ev.dirty = -1;
    ev.mib_s = s > 0 ? (double)done * XMIG_PAGE_SIZE / s / 1048576 : 0;
    xmig__job_emit(j, &ev);
}

static int hook_suspend(void *arg)
{
    struct job *j = arg;

    if (xmig__cancelled(j->x))
        return -1;
    if (j->p->live && j->pass_pages)
        end_pass(j, -1);
    xmig__job_phase(j, "suspend");
    j->t_suspend = xmig_now_ns();
    /*
     * libxl has QEMU write its state into this file without truncating
     * it: a longer one left by an earlier save would leave its tail there.
     */
    if (j->info.type == XMIG_DOM_HVM)
        j->x->ops->dm_discard(j->x, j->info.domid);
    if (j->x->ops->suspend(j->x, j->info.domid) < 0)
        return -1;
    j->suspended = true;
    /* As xl migrate has it; xl save keeps the snapshot's state. */
    if (j->info.type == XMIG_DOM_HVM && j->p->kind == XMIG_JOB_MIGRATE &&
        j->x->ops->dm_release(j->x, j->info.domid) < 0)
        return -1;
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
/*
 * After the libxc stream, as libxl writes them: an HVM guest's device
 * model (its xenstore keys, if any, then its state), then END.
 */
static int write_end(struct job *j, int fd)
{
    struct xmig_buf b, xs;
    void *state = NULL;
    size_t len = 0;
    int rc = -1;

    xmig_buf_init(&b);
    xmig_buf_init(&xs);
    if (j->info.type == XMIG_DOM_HVM) {
        if (j->x->ops->dm_state(j->x, j->info.domid, &xs, &state, &len) < 0)
            goto out;
        if (len > UINT32_MAX - 8 || xs.len > UINT32_MAX - 8) {
            xmig__seterr(j->x, EFBIG, "domain %u: device model state too big",
                         j->info.domid);
            goto out;
        }
        if ((xs.len &&
             xmig_stream_libxl_emulator(&b, LIBXL_REC_EMULATOR_XENSTORE_DATA,
                                        xs.p, (uint32_t)xs.len) < 0) ||
            xmig_stream_libxl_emulator(&b, LIBXL_REC_EMULATOR_CONTEXT, state,
                                       (uint32_t)len) < 0)
            goto nomem;
    }
    if (xmig_stream_libxl_record(&b, LIBXL_REC_END, NULL, 0) < 0)
        goto nomem;
    rc = xmig__write_all(j->x, fd, b.p, b.len, "the end of the stream");
    goto out;
nomem:
    xmig__seterr(j->x, ENOMEM, "out of memory");
out:
    free(state);
    xmig_buf_dispose(&xs);
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
        .dm = j->info.type == XMIG_DOM_HVM,
        .x = j->x,
    };
    int rc;

    xmig__job_phase(j, "stream");
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

int xmig__job_stream(struct job *j, int fd)
{
    if (write_framing(j, fd) < 0 || run_engine(j, fd) < 0 ||
        write_end(j, fd) < 0)
        return -1;
    return 0;
}

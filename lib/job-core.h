/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A job's state and what every part of a job does with it: events,
 * phases, the cost, and undoing what was done to the source.  job.c runs
 * a job; job-stream.c sends its stream, handshake.c does xl's handshake
 * after it; all three stand on job-core.c.
 */
#ifndef XMIG_JOB_CORE_H
#define XMIG_JOB_CORE_H

#include "private.h"

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

/* job-core.c */
double xmig__job_since(uint64_t t);
void xmig__job_emit(struct job *j, struct xmig_event *ev);
void xmig__job_phase(struct job *j, const char *name);
void xmig__job_cost_begin(struct job *j);
void xmig__job_cost_end(struct job *j);
void xmig__job_finish_tail(struct job *j);
void xmig__job_give_back(struct job *j);
void xmig__job_clip_err(const xmig_xen *x, char *buf, size_t n);

/* job-stream.c: libxl's framing, and the engine's stream in it. */
int xmig__job_stream(struct job *j, int fd);

/* handshake.c: xl's handshake after the stream, with the receiver on t. */
int xmig__job_handshake(struct job *j, struct xmig__transport *t);

#endif

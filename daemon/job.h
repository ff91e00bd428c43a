/* SPDX-License-Identifier: LGPL-2.1-only */
/* job.c: jobs, the queue in front of max_jobs, worker threads. */
#ifndef XMIGD_JOB_H
#define XMIGD_JOB_H

#include <sys/queue.h>
#include <sys/types.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "xmig.h"

/* PROTOCOL.md §1 and §3 (list). */
#define XMIGD_HISTORY 64     /* ended jobs kept */
#define XMIGD_MAX_QUEUED 256 /* queued jobs at most */

struct event_base;

enum job_state {
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_DONE,
    JOB_FAILED,
    JOB_CANCELLED,
};

struct job_msg;

struct job {
    TAILQ_ENTRY(job) entry;
    uint64_t id;
    enum xmig_job_kind kind;
    enum job_state state;
    char *domain; /* as the client named it */
    char *name;   /* as Xen names it, when known */
    uint32_t domid;
    char *dest;
    char *ssh_command;
    char domid_s[12]; /* what the worker asks for: exactly this domain */
    struct xmig_job_params params;
    uid_t uid;
    pid_t pid;
    unsigned int group;
    unsigned int group_parallel;

    /* Between the loop and the worker: guarded by lock. */
    pthread_mutex_t lock;
    xmig_cancel *cancel;
    bool cancel_requested;
    bool past_return; /* go-ahead sent (phase committed): too late */
    bool worker_returned;

    pthread_t thread;
    bool thread_started;
    struct job_msg *done_msg; /* allocated before the worker starts */

    /* Latest progress, as the loop thread saw it. */
    char phase[24];
    unsigned int pass;
    uint64_t sent;
    uint64_t remaining;
    long dirty;
    double mib_s;
    double elapsed_s;
    uint64_t t_queued;
    uint64_t t_started;
    uint64_t t_ended;

    /* Written by the worker, read by the loop after the join. */
    int rc;
    struct xmig_job_result result;
    char error[512];
    bool error_cancelled;
};

TAILQ_HEAD(job_list, job);

struct job_totals {
    uint64_t submitted;
    uint64_t done;
    uint64_t failed;
    uint64_t cancelled;
    uint64_t pages_sent;
    double migrate_s;
    double downtime_min;
    double downtime_max;
    double downtime_sum;
};

/*
 * What the layer above hears of jobs, on the loop thread: job.c itself
 * speaks neither JSON nor to peers.
 */
struct job_cb {
    void (*queued)(const struct job *j);  /* submitted */
    void (*running)(const struct job *j); /* its worker has started */
    void (*event)(const struct job *j, const struct xmig_event *ev);
    void (*log)(const struct job *j, enum xmig_log_level level,
                const char *text);
    void (*ended)(const struct job *j); /* done, failed or cancelled */
    void (*changed)(void); /* what runs or waits may have changed */
};

/* journal_dir: the jobs' crash journal (kept, not copied). */
int job_init(struct event_base *base, const char *journal_dir,
             const struct job_cb *cb);
/* How many jobs may run at once (the configuration's max_jobs). */
void job_set_max(unsigned int max_jobs);
void job_shutdown(void);
struct job *job_new(enum xmig_job_kind kind, const char *domain,
                    const char *name, uint32_t domid, const char *dest,
                    const char *ssh_command);
void job_free(struct job *j);
/* Takes j: queues and announces it; job_schedule() starts it. */
void job_submit(struct job *j);
struct job *job_find(uint64_t id);
struct job *job_find_domain(uint32_t domid); /* queued or running */
struct job_list *job_all(void);
unsigned int job_count(enum job_state state);
unsigned int job_new_group(void);
bool job_final(const struct job *j);
const char *job_state_name(enum job_state s);
/* 0; or -1 with an error code and why, when it cannot be cancelled. */
int job_cancel(struct job *j, const char **code_r, char *why, size_t n);
void job_schedule(void);
/* SIGTERM: cancel what can be cancelled; job_idle() says when done. */
void job_stop_all(void);
bool job_idle(void);
const struct job_totals *job_totals(void);

#endif

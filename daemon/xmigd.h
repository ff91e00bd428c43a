/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmigd's internal interfaces, one section per file.  The wire protocol is
 * daemon/PROTOCOL.md; proto/proto.h has its constants, the limits of a
 * connection are defined here.
 */
#ifndef XMIGD_H
#define XMIGD_H

#include <sys/queue.h>
#include <sys/types.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"
#include "xmig.h"

/* glibc's <sys/queue.h> lacks the BSD _SAFE variant. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                             \
    for ((var) = TAILQ_FIRST(head);                                            \
         (var) && ((tvar) = TAILQ_NEXT(var, field), 1); (var) = (tvar))
#endif

#define XMIGD_DEFAULT_CONFIG "/etc/xmig/xmigd.conf"

/* PROTOCOL.md §1 and §4. */
#define XMIGD_PARTIAL_TIMEOUT_S 30
#define XMIGD_MAX_CLIENTS 128
#define XMIGD_MAX_CLIENTS_UID 16 /* per uid but root */
#define XMIGD_ROOT_CLIENTS 16    /* of XMIGD_MAX_CLIENTS: root's alone */
#define XMIGD_OUT_SOFT (64 * 1024)
#define XMIGD_OUT_HARD (1024 * 1024)
#define XMIGD_HISTORY 64
#define XMIGD_MAX_QUEUED 256

struct event_base;

/* log.c: relayd's vocabulary; thread-safe, errno preserved. */
enum log_target {
    LOG_TO_STDERR,  /* -f on a terminal: "xmigd: warning: ..." */
    LOG_TO_JOURNAL, /* stderr is journald's: "<4>..." prefixes */
    LOG_TO_SYSLOG,
};
void log_init(enum log_target target, enum xmig_log_level level);
void log_setlevel(enum xmig_log_level level);
enum xmig_log_level log_getlevel(void);
const char *log_level_name(enum xmig_log_level level);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_msg(enum xmig_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* config.c: /etc/xmig/xmigd.conf, key=value. */
struct config {
    char *socket;
    char *group; /* NULL: root only */
    unsigned int max_jobs;
    enum xmig_log_level log_level;
    /* The job settings the file gives: under each request's own. */
    struct opt_values jobs;
};
void config_init(struct config *c);
void config_dispose(struct config *c);
/* 0, or -1 with a malloc'd one-line reason in *err_r. */
int config_load(struct config *c, const char *path, bool missing_ok,
                char **err_r);

/* notify.c: the sd_notify datagram, without libsystemd. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The socket systemd passed (LISTEN_FDS/LISTEN_PID), or -1. */
int notify_listen_fd(char **err_r);

/* domain.c: the event loop's own Xen handle (name -> domid). */
void domain_init(void);
void domain_shutdown(void);
bool domain_xen_available(void);
/* NULL if Xen cannot be opened; *why_r says why (static storage). */
xmig_xen *domain_xen(const char **why_r);
struct domain_entry {
    uint32_t domid;
    enum xmig_domtype type;
    bool dying;
    char name[64];
};
/* Every domain but 0; *list_r is malloc'd.  -1 when Xen is unavailable. */
int domain_list(struct domain_entry **list_r, size_t *n_r, const char **why_r);

/* job.c: jobs, the queue in front of max_jobs, worker threads. */
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

int job_init(struct event_base *base);
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
/* The job object of PROTOCOL.md §3 (NULL when out of memory). */
struct json_object *job_describe(const struct job *j);
const struct job_totals *job_totals(void);

/* control.c: the socket, its peers, and sending to them. */
enum watch_kind {
    WATCH_NONE,
    WATCH_JOBS,
    WATCH_ALL,
};

struct peer;
int control_init(struct event_base *base, int listen_fd);
void control_shutdown(void);
/* Open and bind the socket at path (mode by group), or -1. */
int control_listen(const char *path, const char *group, char **err_r);
/* Who may connect; peers that no longer may are disconnected. */
void control_set_access(const char *group);
/* Re-applies mode and group to a socket xmigd created itself. */
void control_chmod(const char *path, const char *group);
/* w as one line (NULL: nothing, memory ran out building it). */
void control_send(struct peer *p, struct json_object *w);
void control_reply_error(struct peer *p, struct json_object *id,
                         const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* To every peer watching job (or everything); progress may be dropped. */
void control_broadcast(const struct job *j, struct json_object *w, bool lossy);
void control_broadcast_all(struct json_object *w);
void control_watch(struct peer *p, const struct job *j);
void control_unwatch_job(uint64_t id);
uid_t control_peer_uid(const struct peer *p);
pid_t control_peer_pid(const struct peer *p);
unsigned int control_clients(void);
void control_flush_and_close_all(void);
struct control_counters {
    uint64_t requests;
    uint64_t bad_requests;
    uint64_t refused;
};
const struct control_counters *control_counters(void);

/* command.c: one handler per request. */
void command_dispatch(struct peer *p, struct request *rq);

/* xmigd.c */
extern struct config xmigd_conf;
extern const char *xmigd_journal_dir; /* -J, else XMIG_JOURNAL_DIR */
bool xmigd_stopping(void);
double xmigd_uptime(void);
void xmigd_status_changed(void);

#endif

/* SPDX-License-Identifier: LGPL-2.1-only */
/* Internal interfaces of the xmig command-line tool. */
#ifndef XMIG_CLI_H
#define XMIG_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "proto.h"
#include "xmig.h"

struct client;
struct client_req;
struct render;

/* Exit codes, documented in xmig(1). */
#define EXIT_OK 0
#define EXIT_FAIL 1      /* the operation failed */
#define EXIT_USAGE 2     /* bad command line */
#define EXIT_NO_DAEMON 3 /* xmigd is not running */
#define EXIT_UNKNOWN 4   /* failed after the go-ahead: check both hosts */

struct cmd_entry {
    const char *name;
    const char *usage; /* the options of the table for opts follow */
    unsigned int opts; /* OPT_MIGRATE ... (options.h); 0: none */
    const char *help;
    int (*exec)(int argc, char **argv);
};

/* xmig.c */
extern bool cli_verbose;
void cli_log(void *arg, enum xmig_log_level level, const char *msg);
int cli_usage(const struct cmd_entry *e);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An option of the table and its argument: 0, or -1 once said why. */
int cli_opt(enum opt_id id, bool on, const char *s, struct opt_value *v);

/* cmd-bench.c */
extern const struct cmd_entry cmd_bench_entry;

/* cmd-migrate.c: migrate, save, and the options evacuate shares. */
extern const struct cmd_entry cmd_migrate_entry;
extern const struct cmd_entry cmd_save_entry;
struct job_args {
    struct xmig_job_params p; /* the defaults, under the options given */
    struct opt_values v;      /* the options given */
    bool json;
    bool direct;
    bool detach;
    const char *journal_dir; /* --direct: the crash journal's */
    unsigned int parallel;   /* evacuate */
};
/*
 * The options of e's command (e->opts) and its arguments: 0, or the exit
 * code (EXIT_USAGE) after saying what is wrong.
 */
int job_args_parse(const struct cmd_entry *e, int argc, char **argv,
                   struct job_args *a);

/* cmd-recover.c */
extern const struct cmd_entry cmd_recover_entry;

/* cmd-evacuate.c */
extern const struct cmd_entry cmd_evacuate_entry;

/* cmd-jobs.c */
extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_watch_entry;
extern const struct cmd_entry cmd_cancel_entry;
extern const struct cmd_entry cmd_stats_entry;
/* Follow one job to its end; the exit code its outcome deserves. */
int watch_job(struct client *c, long long id, struct render *rd);

/* render.c: a job's progress and result, in-process or from xmigd. */
struct render {
    bool json;
    bool tty;
    bool line_open;
};
void render_end_line(struct render *rd);
void render_event(void *arg, const struct xmig_event *ev);
void render_result(const struct render *rd, const struct xmig_job_params *p,
                   const struct xmig_job_result *r, bool ok, const char *error);
void render_daemon_event(struct render *rd, struct json_object *m);
/* o as one line on stdout, flushed; takes o. */
void render_json(struct json_object *o);
/* A job's exit status: EXIT_UNKNOWN when nobody knows where the guest runs. */
int render_exit(const struct xmig_job_result *r, bool ok);
/* What a failed job's error line adds about where the guest is. */
const char *render_where(const struct xmig_job_result *r, char *buf, size_t n);

/* client.c: xmigd's client (daemon/PROTOCOL.md). */
extern const char *cli_socket; /* -S, else $XMIG_SOCKET, else the default */
struct client {
    int fd;
    char *buf;
    size_t len;
    size_t cap;
    char *line;
    struct json_object *msg;
    bool xen;
};
struct client_req {
    struct json_object *o; /* NULL: out of memory */
};
typedef void client_event_fn(void *arg, struct json_object *ev);
const char *client_socket_path(void);
void client_init(struct client *c);
/* EXIT_OK, or an exit code (EXIT_NO_DAEMON...) after saying why. */
int client_open(struct client *c, bool direct_hint);
void client_close(struct client *c);
int client_send(struct client *c, const char *line, size_t len);
/* The next line (valid until the next call); NULL at EOF or error. */
struct json_object *client_next(struct client *c);
const char *client_line(const struct client *c);
void client_req_begin(struct client_req *rq, const char *cmd);
/*
 * Sends rq; events before the response go to ev.  NULL, the reason printed,
 * if the daemon left or refused the request.
 */
struct json_object *client_request(struct client *c, struct client_req *rq,
                                   client_event_fn *ev, void *arg);

#endif

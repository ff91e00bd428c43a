/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Every setting of a job, and xmigd's own, in one table (options.c): its
 * spelling on xmig's command line, in a request (PROTOCOL.md) and in
 * xmigd.conf, its type, range or values, default, meaning, and the
 * commands it is for.  xmig's option parser, usage and completion, the
 * request decoder and xmigd's configuration are all derived from it, and
 * a test compares the man pages and PROTOCOL.md with it
 * (proto/options-dump), so that none of them can disagree.
 */
#ifndef XMIG_OPTIONS_H
#define XMIG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "xmig.h"

enum opt_id {
    OPT_LIVE,
    OPT_KEEP,
    OPT_MAX_ITERS,
    OPT_TARGET_DIRTY,
    OPT_ABORT_IF_BUSY,
    OPT_SKIP_REDIRTIED,
    OPT_DOWNTIME_MS,
    OPT_ENGINE,
    OPT_STRATEGY,
    OPT_BATCH,
    OPT_READY_TIMEOUT,
    OPT_SSH_COMMAND,
    OPT_PARALLEL,
    OPT_WATCH,
    OPT_JSON,
    OPT_DIRECT,
    OPT_DETACH,
    OPT_JOURNAL_DIR,
    OPT_SOCKET,
    OPT_GROUP,
    OPT_MAX_JOBS,
    OPT_LOG_LEVEL,
    OPT__COUNT,
};

enum opt_type {
    OPT_BOOL,
    OPT_UINT,
    OPT_ENUM, /* one of a list of names, each standing for a C value */
    OPT_STRING,
};

/* What an option is for: bits of struct opt's cmds. */
#define OPT_MIGRATE (1u << 0)
#define OPT_SAVE (1u << 1)
#define OPT_EVACUATE (1u << 2)
#define OPT_JOBS (OPT_MIGRATE | OPT_SAVE | OPT_EVACUATE)
#define OPT_DAEMON (1u << 3) /* xmigd itself (xmigd.conf only) */

/* The job commands' bits and names. */
struct opt_cmd {
    unsigned int bit;
    const char *name;
};
#define OPT_NCMDS 3
extern const struct opt_cmd opt_cmds[OPT_NCMDS];

struct opt {
    /* xmig's --CLI (for a bool: sets it); NULL: not on the command line. */
    const char *cli;
    const char *cli_off; /* a bool's --CLI_OFF, which clears it */
    char cli_short;      /* -C as well; 0: none */
    const char *arg;     /* what xmig's usage calls the value */
    const char *key;     /* in requests; NULL: none */
    const char *conf;    /* in xmigd.conf; NULL: none */
    enum opt_type type;
    unsigned long long min, max; /* uint */
    size_t len;                  /* string, enum: bytes at most in a request */
    /* enum: the i-th name (in the order messages list them) and its C
     * value; NULL past the last. */
    const char *(*value)(unsigned int i, int *v_r);
    const char *unit; /* uint: what xmigd.conf's complaint calls it */
    unsigned int cmds;
    /*
     * The job commands that are not in cmds refuse the option, saying
     * "is <not_for>"; NULL: a request ignores it, xmig prints the usage.
     */
    const char *not_for;
    /* The member of struct xmig_job_params it sets; size 0: none. */
    size_t offset, size;
    /* The default where size is 0; else xmig_job_params_default()'s. */
    unsigned long long def;
    const char *help;
};

extern const struct opt opt_table[OPT__COUNT];

struct opt_value {
    bool given;
    unsigned long long n; /* bool (0 or 1), uint, enum (the C value) */
    const char *s;        /* string: the caller's (argv, a request) */
};

struct opt_values {
    struct opt_value v[OPT__COUNT];
};

/* The option's name in messages: its request key, else its config key. */
const char *opt_name(enum opt_id id);
/* "migrate, evacuate": the job commands among cmds. */
void opt_cmds_list(unsigned int cmds, char *buf, size_t size);
/* The value given, else the default (not for job parameters). */
unsigned long long opt_get(const struct opt_values *v, enum opt_id id);

/* An enum's name for the C value v ("?" if none); -1 if s is none. */
const char *opt_value_name(enum opt_id id, int v);
int opt_value_parse(enum opt_id id, const char *s, int *v_r);
/* "a<sep>b<last>c": the enum's names, for messages. */
void opt_value_list(enum opt_id id, const char *sep, const char *last,
                    char *buf, size_t size);

/*
 * xmig's --CLI or --CLI_OFF (on: which), with its argument s (NULL for a
 * bool): 0, or -1 with the complaint (the option named) in err.
 */
int opt_parse_arg(enum opt_id id, bool on, const char *s, struct opt_value *v,
                  char *err, size_t errlen);
/* A value in xmigd.conf: 0, or -1 with the complaint in err. */
int opt_parse_conf(enum opt_id id, const char *s, struct opt_value *v,
                   char *err, size_t errlen);

/* The defaults of a job: the library's, but xl save is not live. */
void opt_job_defaults(struct xmig_job_params *p, enum xmig_job_kind kind);
/* The values given in v over p (the job parameters among them). */
void opt_apply(const struct opt_values *v, struct xmig_job_params *p);
/* A job parameter's value in p. */
unsigned long long opt_param(const struct xmig_job_params *p, enum opt_id id);

#endif

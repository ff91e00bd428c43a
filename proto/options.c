/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The table of options (options.h) and what reads values for it: xmig's
 * arguments and xmigd.conf's text here, requests in request.c.  A range,
 * a list of names or a spelling is written here and nowhere else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const char *engine_value(unsigned int i, int *v_r)
{
    /* The default first. */
    static const struct {
        const char *name;
        enum xmig_engine v;
    } names[] = {{"xmig", XMIG_ENGINE_XMIG}, {"libxc", XMIG_ENGINE_LIBXC}};

    if (i >= sizeof(names) / sizeof(names[0]))
        return NULL;
    *v_r = (int)names[i].v;
    return names[i].name;
}

/* The library's names, in its order. */
static const char *strategy_value(unsigned int i, int *v_r)
{
    if (i >= XMIG_STRATEGY__COUNT)
        return NULL;
    *v_r = (int)i;
    return xmig_strategy_name((enum xmig_strategy)i);
}

static const char *log_level_value(unsigned int i, int *v_r)
{
    static const char *const names[] = {
        [XMIG_LOG_ERROR] = "error",
        [XMIG_LOG_WARN] = "warning",
        [XMIG_LOG_INFO] = "info",
        [XMIG_LOG_DEBUG] = "debug",
    };

    if (i >= sizeof(names) / sizeof(names[0]))
        return NULL;
    *v_r = (int)i;
    return names[i];
}

#define PARAM(m)                                                               \
    .offset = offsetof(struct xmig_job_params, m),                             \
    .size = sizeof(((struct xmig_job_params *)0)->m)

const struct opt opt_table[OPT__COUNT] = {
    [OPT_LIVE] = {.cli = "live",
                  .cli_off = "no-live",
                  .key = "live",
                  .type = OPT_BOOL,
                  .cmds = OPT_JOBS,
                  PARAM(live),
                  .help = "send memory while the guest runs, then stop it "
                          "and copy the rest (the default of migrate and "
                          "evacuate, not of save)"},
    [OPT_KEEP] = {.cli = "keep",
                  .key = "keep",
                  .type = OPT_BOOL,
                  .cmds = OPT_SAVE,
                  PARAM(keep),
                  .help = "resume the guest after the save instead of "
                          "destroying it"},
    [OPT_MAX_ITERS] = {.cli = "max-iters",
                       .arg = "N",
                       .key = "max_iters",
                       .conf = "max_iters",
                       .type = OPT_UINT,
                       .min = 1,
                       .max = 1000,
                       .cmds = OPT_JOBS,
                       PARAM(policy.max_iters),
                       .help = "live passes before stop-and-copy"},
    [OPT_TARGET_DIRTY] = {.cli = "target-dirty",
                          .arg = "N",
                          .key = "target_dirty",
                          .conf = "target_dirty",
                          .type = OPT_UINT,
                          .min = 0,
                          .max = 1ULL << 40,
                          .unit = "a number of pages",
                          .cmds = OPT_JOBS,
                          PARAM(policy.target_dirty),
                          .help = "stop the live passes once one leaves "
                                  "fewer dirty pages"},
    [OPT_ABORT_IF_BUSY] = {.cli = "abort-if-busy",
                           .key = "abort_if_busy",
                           .conf = "abort_if_busy",
                           .type = OPT_BOOL,
                           .cmds = OPT_JOBS,
                           PARAM(policy.abort_if_busy),
                           .help = "at max_iters, give up instead of "
                                   "stopping the guest"},
    [OPT_SKIP_REDIRTIED] = {.cli_off = "no-skip",
                            .key = "skip_redirtied",
                            .conf = "skip_redirtied",
                            .type = OPT_BOOL,
                            .cmds = OPT_JOBS,
                            PARAM(policy.skip_redirtied),
                            .help = "xmig engine: whether a live pass leaves "
                                    "out the pages the guest dirtied again "
                                    "since it began (the default) or sends "
                                    "them anyway"},
    /*
     * 0 is the library's "off", and the default: it must be sayable
     * wherever a non-zero value can be set, or a job could not turn off
     * what xmigd.conf turned on.
     */
    [OPT_DOWNTIME_MS] = {.cli = "downtime-ms",
                         .arg = "MS",
                         .key = "downtime_ms",
                         .conf = "downtime_ms",
                         .type = OPT_UINT,
                         .min = 0,
                         .max = 3600000,
                         .unit = "milliseconds",
                         .cmds = OPT_JOBS,
                         PARAM(policy.downtime_ms),
                         .help = "stop the live passes once the rest would "
                                 "be sent within this many milliseconds, or "
                                 "never (0, the default)"},
    [OPT_ENGINE] = {.cli = "engine",
                    .key = "engine",
                    .conf = "engine",
                    .type = OPT_ENUM,
                    .len = 32,
                    .value = engine_value,
                    .cmds = OPT_JOBS,
                    PARAM(engine),
                    .help = "xmig (libxmig's own) or libxc (libxenguest's)"},
    [OPT_STRATEGY] = {.cli = "strategy",
                      .key = "strategy",
                      .conf = "strategy",
                      .type = OPT_ENUM,
                      .len = 32,
                      .value = strategy_value,
                      .cmds = OPT_JOBS,
                      PARAM(arena.strategy),
                      .help = "the xmig engine's mapping strategy"},
    [OPT_BATCH] = {.cli = "batch",
                   .arg = "N",
                   .key = "batch",
                   .type = OPT_UINT,
                   .min = 1,
                   .max = XMIG_MAX_BATCH,
                   .cmds = OPT_JOBS,
                   PARAM(arena.batch),
                   .help = "the xmig engine's pages per mapping"},
    [OPT_READY_TIMEOUT] = {.cli = "ready-timeout",
                           .arg = "SECONDS",
                           .key = "ready_timeout",
                           .conf = "ready_timeout",
                           .type = OPT_UINT,
                           .min = 1,
                           .max = XMIG_READY_TIMEOUT_MAX,
                           .unit = "seconds",
                           .cmds = OPT_MIGRATE | OPT_EVACUATE,
                           .not_for = "for migrations: a save has no receiver",
                           PARAM(ready_timeout_s),
                           .help = "how long the suspended guest waits for "
                                   "the receiver's 'ready' after the stream; "
                                   "then it runs here again"},
    /* Not a member: the caller owns the string (xmigd copies it). */
    [OPT_SSH_COMMAND] = {.cli = "ssh-command",
                         .arg = "CMD",
                         .key = "ssh_command",
                         .type = OPT_STRING,
                         .len = 1024,
                         .cmds = OPT_JOBS,
                         .help = "replaces ssh for ssh:// destinations "
                                 "(through xmigd: root only)"},
    [OPT_PARALLEL] = {.cli = "parallel",
                      .arg = "N",
                      .key = "parallel",
                      .type = OPT_UINT,
                      .min = 1,
                      .max = PROTO_MAX_PARALLEL,
                      .cmds = OPT_EVACUATE,
                      .def = 1,
                      .help = "jobs of the evacuation that run at once"},
    [OPT_WATCH] = {.key = "watch",
                   .type = OPT_BOOL,
                   .cmds = OPT_JOBS,
                   .help = "also send this connection the job's events"},
    [OPT_JSON] = {.cli = "json",
                  .cli_short = 'j',
                  .type = OPT_BOOL,
                  .cmds = OPT_JOBS,
                  .help = "one JSON object per line on standard output"},
    [OPT_DIRECT] = {.cli = "direct",
                    .type = OPT_BOOL,
                    .cmds = OPT_MIGRATE | OPT_SAVE,
                    .help = "run the job in xmig's own process, without "
                            "xmigd"},
    [OPT_DETACH] = {.cli = "detach",
                    .type = OPT_BOOL,
                    .cmds = OPT_JOBS,
                    .help = "queue the job, print its number and return"},
    [OPT_JOURNAL_DIR] = {.cli = "journal-dir",
                         .arg = "DIR",
                         .type = OPT_STRING,
                         .cmds = OPT_MIGRATE | OPT_SAVE,
                         .help =
                             "with --direct: where the job keeps its "
                             "crash journal (default " XMIG_JOURNAL_DIR ")"},
    [OPT_SOCKET] = {.conf = "socket",
                    .type = OPT_STRING,
                    .cmds = OPT_DAEMON,
                    .help = "the control socket when xmigd is not "
                            "socket-activated"},
    [OPT_GROUP] = {.conf = "group",
                   .type = OPT_STRING,
                   .cmds = OPT_DAEMON,
                   .help = "a group whose members may use xmigd besides "
                           "root (empty: root only)"},
    [OPT_MAX_JOBS] = {.conf = "max_jobs",
                      .type = OPT_UINT,
                      .min = 1,
                      .max = 64,
                      .cmds = OPT_DAEMON,
                      .def = 4,
                      .help = "jobs that run at once; the others wait"},
    [OPT_LOG_LEVEL] = {.conf = "log_level",
                       .type = OPT_ENUM,
                       .value = log_level_value,
                       .cmds = OPT_DAEMON,
                       .def = XMIG_LOG_INFO,
                       .help = "the least important messages xmigd logs"},
};

const char *opt_name(enum opt_id id)
{
    const struct opt *o = &opt_table[id];

    return o->key ? o->key : o->conf ? o->conf : o->cli;
}

const struct opt_cmd opt_cmds[OPT_NCMDS] = {
    {OPT_MIGRATE, "migrate"},
    {OPT_SAVE, "save"},
    {OPT_EVACUATE, "evacuate"},
};

void opt_cmds_list(unsigned int cmds, char *buf, size_t size)
{
    size_t i, len = 0;

    buf[0] = 0;
    for (i = 0; i < OPT_NCMDS && len < size; i++)
        if (cmds & opt_cmds[i].bit)
            len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                    len ? ", " : "", opt_cmds[i].name);
}

unsigned long long opt_get(const struct opt_values *v, enum opt_id id)
{
    return v->v[id].given ? v->v[id].n : opt_table[id].def;
}

const char *opt_value_name(enum opt_id id, int v)
{
    const char *name;
    unsigned int i;
    int x;

    for (i = 0; (name = opt_table[id].value(i, &x)); i++)
        if (x == v)
            return name;
    return "?";
}

int opt_value_parse(enum opt_id id, const char *s, int *v_r)
{
    const char *name;
    unsigned int i;

    for (i = 0; (name = opt_table[id].value(i, v_r)); i++)
        if (strcmp(name, s) == 0)
            return 0;
    return -1;
}

void opt_value_list(enum opt_id id, const char *sep, const char *last,
                    char *buf, size_t size)
{
    const char *name, *next;
    size_t len = 0;
    unsigned int i;
    int x;

    buf[0] = 0;
    for (i = 0; (name = opt_table[id].value(i, &x)) && len < size; i++) {
        next = opt_table[id].value(i + 1, &x);
        len += (size_t)snprintf(buf + len, size - len, "%s%s", name,
                                !next                            ? ""
                                : opt_table[id].value(i + 2, &x) ? sep
                                                                 : last);
    }
}

/* As strtol reads it, within the option's range. */
static int text_uint(const struct opt *o, const char *s, unsigned long long *n)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || (unsigned long long)v < o->min ||
        (unsigned long long)v > o->max)
        return -1;
    *n = (unsigned long long)v;
    return 0;
}

int opt_parse_arg(enum opt_id id, bool on, const char *s, struct opt_value *v,
                  char *err, size_t errlen)
{
    const struct opt *o = &opt_table[id];
    char names[128];
    int x;

    switch (o->type) {
    case OPT_BOOL:
        v->n = on;
        break;
    case OPT_UINT:
        if (text_uint(o, s, &v->n) < 0) {
            snprintf(err, errlen,
                     "--%s: expected a number from %llu to %llu, got '%s'",
                     o->cli, o->min, o->max, s);
            return -1;
        }
        break;
    case OPT_ENUM:
        if (opt_value_parse(id, s, &x) < 0) {
            opt_value_list(id, ", ", ", ", names, sizeof(names));
            snprintf(err, errlen, "unknown %s '%s' (%s)", opt_name(id), s,
                     names);
            return -1;
        }
        v->n = (unsigned long long)x;
        break;
    case OPT_STRING:
        v->s = s;
        break;
    }
    v->given = true;
    return 0;
}

int opt_parse_conf(enum opt_id id, const char *s, struct opt_value *v,
                   char *err, size_t errlen)
{
    const struct opt *o = &opt_table[id];
    char names[128];
    int x;

    switch (o->type) {
    case OPT_BOOL:
        if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1")) {
            v->n = 1;
        } else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0")) {
            v->n = 0;
        } else {
            snprintf(err, errlen, "expected yes or no");
            return -1;
        }
        break;
    case OPT_UINT:
        if (text_uint(o, s, &v->n) < 0) {
            snprintf(err, errlen, "expected %s from %llu to %llu",
                     o->unit ? o->unit : "a number", o->min, o->max);
            return -1;
        }
        break;
    case OPT_ENUM:
        if (opt_value_parse(id, s, &x) < 0) {
            opt_value_list(id, ", ", " or ", names, sizeof(names));
            snprintf(err, errlen, "expected %s", names);
            return -1;
        }
        v->n = (unsigned long long)x;
        break;
    case OPT_STRING:
        v->s = s;
        break;
    }
    v->given = true;
    return 0;
}

void opt_job_defaults(struct xmig_job_params *p, enum xmig_job_kind kind)
{
    xmig_job_params_default(p);
    p->kind = kind;
    p->live = kind == XMIG_JOB_MIGRATE;
}

/*
 * Members are read and written through memcpy at their size: an enum is
 * an int, a uint member an unsigned int or a long (options-dump checks
 * that the table's sizes are these).
 */
void opt_apply(const struct opt_values *v, struct xmig_job_params *p)
{
    const struct opt *o;
    unsigned long long n;
    unsigned int u;
    size_t id;
    bool b;
    long l;
    int i;

    for (id = 0; id < OPT__COUNT; id++) {
        o = &opt_table[id];
        if (!o->size || !v->v[id].given)
            continue;
        n = v->v[id].n;
        b = n != 0;
        u = (unsigned int)n;
        l = (long)n;
        i = (int)n;
        memcpy((char *)p + o->offset,
               o->type == OPT_BOOL    ? (const void *)&b
               : o->type == OPT_ENUM  ? (const void *)&i
               : o->size == sizeof(u) ? (const void *)&u
                                      : (const void *)&l,
               o->size);
    }
}

unsigned long long opt_param(const struct xmig_job_params *p, enum opt_id id)
{
    const struct opt *o = &opt_table[id];
    const char *f = (const char *)p + o->offset;
    unsigned int u;
    bool b;
    long l;
    int i;

    if (o->type == OPT_BOOL) {
        memcpy(&b, f, sizeof(b));
        return b;
    }
    if (o->type == OPT_ENUM) {
        memcpy(&i, f, sizeof(i));
        return (unsigned long long)i;
    }
    if (o->size == sizeof(u)) {
        memcpy(&u, f, sizeof(u));
        return u;
    }
    memcpy(&l, f, sizeof(l));
    return (unsigned long long)l;
}

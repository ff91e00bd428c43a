/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * options-dump WHAT: the table of options (options.h) as the build and the
 * tests need it, one line each.
 *   check     the table's own consistency (exit 1 if it has a flaw)
 *   cli       xmig's spellings: --NAME <TAB> RANGE <TAB> VALUES
 *   conf      xmigd.conf's keys: KEY <TAB> RANGE <TAB> VALUES
 *   request   the requests' keys: KEY <TAB> TYPE <TAB> COMMANDS <TAB> VALUES
 *   bash      the definitions that cli/xmig.bash-completion.in takes
 *   list      everything, for people
 * RANGE is "MIN to MAX" for a number, VALUES an enum's names, "-" if none.
 * tests/unit/test-options-docs.sh compares the man pages and PROTOCOL.md
 * with these lists.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"

static unsigned int pass, fail;

static void check(bool ok, const char *what, const struct opt *o)
{
    const char *name = o ? opt_name((enum opt_id)(o - opt_table)) : "";

    if (ok)
        pass++;
    else
        printf("FAIL %s%s%s\n", name, o ? ": " : "", what);
    fail += !ok;
}

static void range(const struct opt *o, char *buf, size_t size)
{
    if (o->type == OPT_UINT)
        snprintf(buf, size, "%llu to %llu", o->min, o->max);
    else
        snprintf(buf, size, "-");
}

static void values(enum opt_id id, const char *sep, char *buf, size_t size)
{
    if (opt_table[id].type == OPT_ENUM)
        opt_value_list(id, sep, sep, buf, size);
    else
        snprintf(buf, size, "-");
}

/* As PROTOCOL.md's table of job options writes it. */
static void type(const struct opt *o, char *buf, size_t size)
{
    static const char *const names[] = {
        [OPT_BOOL] = "bool", [OPT_ENUM] = "string", [OPT_STRING] = "string"};

    if (o->type == OPT_UINT)
        snprintf(buf, size, "int %llu..%llu", o->min, o->max);
    else
        snprintf(buf, size, "%s", names[o->type]);
}

/* The default as the docs write it. */
static void deflt(enum opt_id id, char *buf, size_t size)
{
    const struct opt *o = &opt_table[id];
    struct xmig_job_params p;
    unsigned long long n = o->def;

    if (o->size) {
        opt_job_defaults(&p, XMIG_JOB_MIGRATE);
        n = opt_param(&p, id);
    }
    if (o->type == OPT_STRING)
        snprintf(buf, size, "-");
    else if (o->type == OPT_BOOL)
        snprintf(buf, size, "%s", n ? "yes" : "no");
    else if (o->type == OPT_ENUM)
        snprintf(buf, size, "%s", opt_value_name(id, (int)n));
    else
        snprintf(buf, size, "%llu", n);
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* A value of o other than its default. */
static unsigned long long other_value(enum opt_id id)
{
    const struct opt *o = &opt_table[id];
    int v = 0;
    unsigned int i;

    if (o->type == OPT_UINT)
        return o->max;
    if (o->type == OPT_BOOL)
        return 1;
    if (o->type == OPT_ENUM) /* the last */
        for (i = 0; o->value(i, &v); i++)
            ;
    return o->type == OPT_ENUM ? (unsigned long long)(o->value(i - 1, &v), v)
                               : 0;
}

/* A request line of a job command with what v holds; 0 or -1. */
static int encode(const struct opt_cmd *c, const struct opt_values *v,
                  char *line, size_t size)
{
    struct json_object *o = json_object_new_object();
    const char *s;
    size_t len;

    proto_add_str(o, "cmd", c->name);
    if (c->bit != OPT_EVACUATE)
        proto_add_str(o, "domain", "web");
    proto_add_str(o, c->bit == OPT_SAVE ? "file" : "dest", "/x");
    request_add_opts(o, v);
    s = proto_to_string(o, &len);
    if (!s || len >= size) {
        json_object_put(o);
        return -1;
    }
    memcpy(line, s, len + 1);
    json_object_put(o);
    return 0;
}

/*
 * What xmig writes into a request (request_add_opts()), the decoder reads
 * back, for each job command; out of range, it says so as PROTOCOL.md has
 * it.  xmig's own reading of an argument refuses the same values.
 */
static void check_readers(void)
{
    char line[4096], msg[256], arg[32];
    struct request_error e;
    struct opt_values v;
    struct opt_value x;
    struct request rq;
    const struct opt *o;
    size_t c, id;
    int rc;

    request_init(&rq);
    for (c = 0; c < OPT_NCMDS; c++) {
        memset(&v, 0, sizeof(v));
        for (id = 0; id < OPT__COUNT; id++) {
            if (!opt_table[id].key || !(opt_table[id].cmds & opt_cmds[c].bit))
                continue;
            v.v[id].given = true;
            v.v[id].n = other_value((enum opt_id)id);
            if (opt_table[id].type == OPT_STRING)
                v.v[id].s = "ssh -p 2222";
            else if (opt_table[id].type == OPT_ENUM)
                v.v[id].s = opt_value_name((enum opt_id)id, (int)v.v[id].n);
        }
        rc = encode(&opt_cmds[c], &v, line, sizeof(line));
        check(rc == 0, "a request is written", NULL);
        rc = rc ? -1 : request_decode(&rq, line, strlen(line), &e);
        check(rc == 0, "xmig's request is decoded", NULL);
        if (rc < 0)
            printf("     %s: %s: %s\n", opt_cmds[c].name, line, e.message);
        for (id = 0; rc == 0 && id < OPT__COUNT; id++) {
            o = &opt_table[id];
            check(rq.opts.v[id].given == v.v[id].given &&
                      rq.opts.v[id].n == v.v[id].n &&
                      (!v.v[id].s || same(rq.opts.v[id].s, v.v[id].s)),
                  "read back as written", o);
        }
    }
    /* Out of range: refused in a request, and on xmig's command line. */
    for (id = 0; id < OPT__COUNT; id++) {
        o = &opt_table[id];
        if (o->type != OPT_UINT)
            continue;
        memset(&v, 0, sizeof(v));
        v.v[id].given = true;
        v.v[id].n = o->max + 1;
        snprintf(msg, sizeof(msg), "'%s' must be from %llu to %llu", o->key,
                 o->min, o->max);
        for (c = 0; o->key && c < OPT_NCMDS; c++) {
            if (!(o->cmds & opt_cmds[c].bit))
                continue;
            rc = encode(&opt_cmds[c], &v, line, sizeof(line)) ||
                 request_decode(&rq, line, strlen(line), &e) == 0;
            check(!rc && !strcmp(e.code, "bad_request") &&
                      !strcmp(e.message, msg),
                  "max + 1 is refused in a request", o);
        }
        if (!o->cli)
            continue;
        snprintf(arg, sizeof(arg), "%llu", o->max + 1);
        check(opt_parse_arg((enum opt_id)id, true, arg, &x, msg, sizeof(msg)) <
                  0,
              "max + 1 is refused on the command line", o);
        snprintf(arg, sizeof(arg), "%llu", o->max);
        check(opt_parse_arg((enum opt_id)id, true, arg, &x, msg, sizeof(msg)) ==
                      0 &&
                  x.n == o->max,
              "max is taken on the command line", o);
        snprintf(arg, sizeof(arg), "%lld", (long long)o->min - 1);
        check(opt_parse_arg((enum opt_id)id, true, arg, &x, msg, sizeof(msg)) <
                  0,
              "min - 1 is refused on the command line", o);
    }
    request_dispose(&rq);
}

static int self_check(void)
{
    struct xmig_job_params p;
    const struct opt *o, *q;
    unsigned long long d;
    const char *name;
    size_t id, j;
    unsigned int i;
    int v, w;

    opt_job_defaults(&p, XMIG_JOB_MIGRATE);
    for (id = 0; id < OPT__COUNT; id++) {
        o = &opt_table[id];
        check(o->cmds && (o->cmds & ~(OPT_JOBS | OPT_DAEMON)) == 0 &&
                  !((o->cmds & OPT_JOBS) && (o->cmds & OPT_DAEMON)),
              "is for jobs or for xmigd", o);
        check(o->cli || o->cli_off || o->key || o->conf, "has a spelling", o);
        check(!o->help || !*o->help || o->help[strlen(o->help) - 1] != '.',
              "help without a full stop", o);
        check(o->help && *o->help, "has a help text", o);
        check(!o->cli_off || o->type == OPT_BOOL, "only a bool has --no-", o);
        check(o->type == OPT_BOOL || o->type == OPT_ENUM || !o->cli ||
                  (o->arg && *o->arg),
              "a value on the command line has a name in the usage", o);
        check(!(o->cmds & OPT_DAEMON) || (!o->cli && !o->cli_off && !o->key),
              "xmigd's own settings are in xmigd.conf only", o);
        check(!o->not_for || (o->cmds & OPT_JOBS) != OPT_JOBS,
              "refused only where it is not for", o);
        check(o->type != OPT_UINT || o->min <= o->max, "min <= max", o);
        check(o->type != OPT_UINT || o->max <= INT64_MAX,
              "max fits a JSON integer", o);
        check(!o->key || (o->type != OPT_STRING && o->type != OPT_ENUM) ||
                  (o->len > 0 && o->len <= PROTO_MAX_STRING),
              "a string in a request has a length limit", o);
        check((o->type == OPT_ENUM) == (o->value != NULL),
              "an enum, and only an enum, has values", o);
        if (o->type == OPT_ENUM) {
            check(o->value(0, &v) != NULL, "has values", o);
            for (i = 0; (name = o->value(i, &v)); i++) {
                check(opt_value_parse((enum opt_id)id, name, &w) == 0 && w == v,
                      "each value reads back", o);
                check(same(opt_value_name((enum opt_id)id, v), name),
                      "each value's name is its own", o);
                check(!o->key || strlen(name) <= o->len,
                      "each value fits its length limit", o);
            }
        }
        /* A member, at the size opt_apply() writes it. */
        if (o->size) {
            check(o->cmds & OPT_JOBS, "a job parameter is for jobs", o);
            check(o->offset + o->size <= sizeof(p), "a member", o);
            check(o->type == OPT_BOOL   ? o->size == sizeof(bool)
                  : o->type == OPT_ENUM ? o->size == sizeof(int)
                  : o->type == OPT_UINT ? o->size == sizeof(unsigned int) ||
                                              o->size == sizeof(long)
                                        : false,
                  "a member of the size of its type", o);
        } else {
            check(!o->conf || (o->cmds & OPT_DAEMON),
                  "a job's setting in xmigd.conf is a member", o);
        }
        /* The default, the library's or the table's, is a valid value. */
        d = o->size ? opt_param(&p, (enum opt_id)id) : o->def;
        if (o->type == OPT_UINT)
            check(d >= o->min && d <= o->max, "the default is in range", o);
        if (o->type == OPT_ENUM)
            check(strcmp(opt_value_name((enum opt_id)id, (int)d), "?") != 0,
                  "the default is one of the values", o);
        /* Every spelling once, wherever it is read. */
        for (j = 0; j < id; j++) {
            q = &opt_table[j];
            check(!same(o->cli, q->cli) && !same(o->cli, q->cli_off) &&
                      !same(o->cli_off, q->cli) &&
                      !same(o->cli_off, q->cli_off),
                  "a command-line spelling of its own", o);
            check(!o->cli_short || o->cli_short != q->cli_short,
                  "a short option of its own", o);
            check(!same(o->key, q->key), "a request key of its own", o);
            check(!same(o->conf, q->conf), "a config key of its own", o);
        }
    }
    /* Set and read back: every member at its own place. */
    for (id = 0; id < OPT__COUNT; id++) {
        struct opt_values ov = {0};
        struct xmig_job_params a, b;

        o = &opt_table[id];
        if (!o->size)
            continue;
        opt_job_defaults(&a, XMIG_JOB_MIGRATE);
        b = a;
        ov.v[id].given = true;
        ov.v[id].n =
            o->type == OPT_BOOL ? !opt_param(&a, (enum opt_id)id)
            : o->type == OPT_UINT
                ? (opt_param(&a, (enum opt_id)id) == o->max ? o->min : o->max)
                : 1 - (opt_param(&a, (enum opt_id)id) & 1);
        opt_apply(&ov, &b);
        check(opt_param(&b, (enum opt_id)id) == ov.v[id].n,
              "opt_apply() sets the member", o);
        for (j = 0; j < OPT__COUNT; j++)
            if (j != id && opt_table[j].size)
                check(opt_param(&b, (enum opt_id)j) ==
                          opt_param(&a, (enum opt_id)j),
                      "opt_apply() sets no other member", o);
    }
    check_readers();
    printf("%u passed, %u failed\n", pass, fail);
    return fail ? 1 : 0;
}

static void list_cli(void)
{
    char r[64], vs[128];
    size_t id;

    for (id = 0; id < OPT__COUNT; id++) {
        const struct opt *o = &opt_table[id];

        range(o, r, sizeof(r));
        values((enum opt_id)id, " ", vs, sizeof(vs));
        if (o->cli)
            printf("--%s\t%s\t%s\n", o->cli, r, vs);
        if (o->cli_off)
            printf("--%s\t-\t-\n", o->cli_off);
    }
}

static void list_conf(void)
{
    char r[64], vs[128];
    size_t id;

    for (id = 0; id < OPT__COUNT; id++) {
        if (!opt_table[id].conf)
            continue;
        range(&opt_table[id], r, sizeof(r));
        values((enum opt_id)id, " ", vs, sizeof(vs));
        printf("%s\t%s\t%s\n", opt_table[id].conf, r, vs);
    }
}

static void list_request(void)
{
    char t[64], cmds[64], vs[128];
    size_t id;

    for (id = 0; id < OPT__COUNT; id++) {
        if (!opt_table[id].key)
            continue;
        type(&opt_table[id], t, sizeof(t));
        opt_cmds_list(opt_table[id].cmds, cmds, sizeof(cmds));
        values((enum opt_id)id, " ", vs, sizeof(vs));
        printf("%s\t%s\t%s\t%s\n", opt_table[id].key, t, cmds, vs);
    }
}

/* The completion's words: per command, those that take a value, values. */
static void list_bash(void)
{
    char vs[128];
    size_t c, id;

    for (c = 0; c < OPT_NCMDS; c++) {
        printf("_xmig_opts_%s='", opt_cmds[c].name);
        for (id = 0; id < OPT__COUNT; id++) {
            const struct opt *o = &opt_table[id];

            if (!(o->cmds & opt_cmds[c].bit))
                continue;
            if (o->cli)
                printf(" --%s", o->cli);
            if (o->cli_off)
                printf(" --%s", o->cli_off);
        }
        printf(" '\n");
    }
    printf("_xmig_opts_arg='");
    for (id = 0; id < OPT__COUNT; id++)
        if (opt_table[id].cli && opt_table[id].type != OPT_BOOL &&
            (opt_table[id].cmds & OPT_JOBS))
            printf(" --%s", opt_table[id].cli);
    printf(" '\n_xmig_opt_values()\n{\n    case $1 in\n");
    for (id = 0; id < OPT__COUNT; id++) {
        if (!opt_table[id].cli || opt_table[id].type != OPT_ENUM)
            continue;
        values((enum opt_id)id, " ", vs, sizeof(vs));
        printf("    --%s) echo '%s' ;;\n", opt_table[id].cli, vs);
    }
    printf("    esac\n}\n");
}

static void list_all(void)
{
    char t[64], cmds[64], d[64];
    size_t id;

    for (id = 0; id < OPT__COUNT; id++) {
        const struct opt *o = &opt_table[id];

        type(o, t, sizeof(t));
        if (o->type == OPT_ENUM) {
            strcpy(t, "one of ");
            opt_value_list((enum opt_id)id, ", ", ", ", t + 7, sizeof(t) - 7);
        }
        opt_cmds_list(o->cmds, cmds, sizeof(cmds));
        deflt((enum opt_id)id, d, sizeof(d));
        printf("%s\n  xmig: %s%s%s%s%s%s\n  request: %s\n  xmigd.conf: %s\n"
               "  %s, default %s; %s\n  %s\n",
               opt_name((enum opt_id)id), o->cli || o->cli_off ? "" : "-",
               o->cli ? "--" : "", o->cli ? o->cli : "",
               o->cli && o->cli_off ? ", " : "", o->cli_off ? "--" : "",
               o->cli_off ? o->cli_off : "", o->key ? o->key : "-",
               o->conf ? o->conf : "-", t, d,
               o->cmds & OPT_DAEMON ? "xmigd" : cmds, o->help);
    }
}

int main(int argc, char **argv)
{
    const char *what = argc == 2 ? argv[1] : "";

    if (!strcmp(what, "check"))
        return self_check();
    if (!strcmp(what, "cli"))
        list_cli();
    else if (!strcmp(what, "conf"))
        list_conf();
    else if (!strcmp(what, "request"))
        list_request();
    else if (!strcmp(what, "bash"))
        list_bash();
    else if (!strcmp(what, "list"))
        list_all();
    else {
        fprintf(stderr,
                "usage: options-dump check|cli|conf|request|bash|list\n");
        return 2;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A request line -> struct request: JSON, then the command and the type
 * and range of each argument (PROTOCOL.md §3).  Pure: no I/O, no global
 * state, so that tests/fuzz/ can drive it directly.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

static const struct {
    const char *name;
    enum request_cmd cmd;
} commands[] = {
    {"hello", REQ_HELLO}, {"migrate", REQ_MIGRATE},
    {"save", REQ_SAVE},   {"evacuate", REQ_EVACUATE},
    {"list", REQ_LIST},   {"status", REQ_STATUS},
    {"watch", REQ_WATCH}, {"cancel", REQ_CANCEL},
    {"stats", REQ_STATS}, {"domains", REQ_DOMAINS},
};

void request_init(struct request *rq)
{
    memset(rq, 0, sizeof(*rq));
}

void request_dispose(struct request *rq)
{
    if (!rq)
        return;
    json_object_put(rq->root);
    request_init(rq);
}

const char *request_cmd_name(enum request_cmd cmd)
{
    size_t i;

    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].cmd == cmd)
            return commands[i].name;
    return "?";
}

static int bad(struct request_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct request_error *e, const char *code, const char *fmt, ...)
{
    va_list ap;

    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

static int want(struct request_error *e, const char *key, const char *what,
                struct json_object *v)
{
    return bad(e, "bad_request", "'%s' must be %s, not %s", key, what,
               proto_type_name(v));
}

/*
 * Arguments end up in logs, command lines and other clients' terminals:
 * no control characters (the parser has made sure of valid UTF-8).
 */
static int control_char(struct json_object *v, struct request_error *e,
                        const char *key)
{
    const unsigned char *s = (const unsigned char *)json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v), i = 0, n;

    while (i < len) {
        n = proto_utf8_len(s + i, len - i);
        if (!n)
            return bad(e, "bad_request", "'%s' is not valid UTF-8", key);
        if (proto_utf8_control(s + i, n))
            return bad(e, "bad_request",
                       "'%s' contains a control character (U+%04X at byte "
                       "%zu): not allowed",
                       key, n == 2 ? s[i + 1] : s[i], i);
        i += n;
    }
    return 0;
}

static int get_str(struct json_object *root, const char *key, bool required,
                   size_t max, const char **s_r, struct request_error *e)
{
    struct json_object *v;
    size_t len;

    if (!proto_has(root, key, &v)) {
        if (required)
            return bad(e, "bad_request", "'%s' is required", key);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return want(e, key, "a string", v);
    len = (size_t)json_object_get_string_len(v);
    if (!len)
        return bad(e, "bad_request", "'%s' must not be empty", key);
    if (len > max)
        return bad(e, "bad_request", "'%s' is longer than %zu bytes", key, max);
    if (control_char(v, e, key) < 0)
        return -1;
    *s_r = json_object_get_string(v);
    return 0;
}

static int get_int(struct json_object *root, const char *key, long long min,
                   long long max, bool *has_r, long long *i_r,
                   struct request_error *e)
{
    struct json_object *v;
    long long i;

    if (!proto_has(root, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return want(e, key, "an integer", v);
    /* The parser refuses integers beyond 64 bits: no uint64 here. */
    i = (long long)json_object_get_int64(v);
    if (i < min || i > max)
        return bad(e, "bad_request", "'%s' must be from %lld to %lld", key, min,
                   max);
    *has_r = true;
    *i_r = i;
    return 0;
}

/* One option of the table, if the request has it. */
static int get_opt(struct json_object *root, enum opt_id id,
                   struct opt_value *ov, struct request_error *e)
{
    const struct opt *o = &opt_table[id];
    const char *key = o->key, *s = NULL;
    struct json_object *v;
    char names[128];
    long long n;
    int x;

    switch (o->type) {
    case OPT_BOOL:
        if (!proto_has(root, key, &v))
            return 0;
        if (!json_object_is_type(v, json_type_boolean))
            return want(e, key, "true or false", v);
        ov->given = true;
        ov->n = json_object_get_boolean(v);
        return 0;
    case OPT_UINT:
        if (get_int(root, key, (long long)o->min, (long long)o->max, &ov->given,
                    &n, e) < 0)
            return -1;
        ov->n = (unsigned long long)n;
        return 0;
    case OPT_ENUM:
    case OPT_STRING:
        if (get_str(root, key, false, o->len, &s, e) < 0)
            return -1;
        if (!s)
            return 0;
        if (o->type == OPT_ENUM) {
            if (opt_value_parse(id, s, &x) < 0) {
                opt_value_list(id, ", ", ", ", names, sizeof(names));
                return bad(e, "bad_request", "unknown %s '%s' (%s)", key, s,
                           names);
            }
            ov->n = (unsigned long long)x;
        }
        ov->given = true;
        ov->s = s;
        return 0;
    }
    return bad(e, "internal", "unhandled option type");
}

/* The options of a job command (cmd: OPT_MIGRATE ...) in the table. */
static int get_opts(struct json_object *root, unsigned int cmd,
                    struct request *rq, struct request_error *e)
{
    const struct opt *o;
    size_t id;

    for (id = 0; id < OPT__COUNT; id++) {
        o = &opt_table[id];
        if (!o->key)
            continue;
        if (o->cmds & cmd) {
            if (get_opt(root, (enum opt_id)id, &rq->opts.v[id], e) < 0)
                return -1;
        } else if (o->not_for && (o->cmds & OPT_JOBS) &&
                   proto_has(root, o->key, NULL)) {
            return bad(e, "bad_request", "'%s' is %s", o->key, o->not_for);
        }
    }
    return 0;
}

void request_add_opts(struct json_object *o, const struct opt_values *v)
{
    const struct opt *t;
    size_t id;

    for (id = 0; id < OPT__COUNT; id++) {
        t = &opt_table[id];
        if (!t->key || !v->v[id].given)
            continue;
        switch (t->type) {
        case OPT_BOOL:
            proto_add_bool(o, t->key, v->v[id].n != 0);
            break;
        case OPT_UINT:
            proto_add_uint(o, t->key, v->v[id].n);
            break;
        case OPT_ENUM:
            proto_add_str(o, t->key,
                          opt_value_name((enum opt_id)id, (int)v->v[id].n));
            break;
        case OPT_STRING:
            proto_add_str(o, t->key, v->v[id].s);
            break;
        }
    }
}

static int args(struct json_object *root, struct request *rq,
                struct request_error *e)
{
    long long n;

    switch (rq->cmd) {
    case REQ_HELLO:
    case REQ_LIST:
    case REQ_STATS:
    case REQ_DOMAINS:
        return 0;
    case REQ_MIGRATE:
        if (get_str(root, "domain", true, 256, &rq->domain, e) < 0 ||
            get_str(root, "dest", true, 4096, &rq->dest, e) < 0)
            return -1;
        return get_opts(root, OPT_MIGRATE, rq, e);
    case REQ_SAVE:
        if (get_str(root, "domain", true, 256, &rq->domain, e) < 0 ||
            get_str(root, "file", true, 4096, &rq->dest, e) < 0)
            return -1;
        if (rq->dest[0] != '/')
            return bad(e, "bad_request", "'file' must be an absolute path");
        return get_opts(root, OPT_SAVE, rq, e);
    case REQ_EVACUATE:
        if (get_str(root, "dest", true, 4096, &rq->dest, e) < 0)
            return -1;
        return get_opts(root, OPT_EVACUATE, rq, e);
    case REQ_STATUS:
    case REQ_WATCH:
    case REQ_CANCEL:
        if (get_int(root, "job", 1, INT64_MAX, &rq->has_job, &n, e) < 0)
            return -1;
        if (rq->has_job)
            rq->job = (uint64_t)n;
        else if (rq->cmd != REQ_WATCH)
            return bad(e, "bad_request", "'job' is required");
        return 0;
    }
    return bad(e, "internal", "unhandled command");
}

int request_decode(struct request *rq, const char *line, size_t len,
                   struct request_error *e)
{
    char why[128];
    struct json_object *root, *v;
    const char *cmd;
    size_t i;

    request_dispose(rq);
    if (proto_parse_request(line, len, &rq->root, why, sizeof(why)) < 0)
        return bad(e, "bad_json", "malformed JSON: %s", why);
    root = rq->root;
    if (!json_object_is_type(root, json_type_object))
        return bad(e, "bad_request",
                   "a request must be a JSON object, "
                   "not %s",
                   proto_type_name(root));
    if (proto_has(root, "id", &v)) {
        if (!json_object_is_type(v, json_type_int) &&
            !json_object_is_type(v, json_type_string))
            return want(e, "id", "an integer or a string", v);
        if (json_object_is_type(v, json_type_string) &&
            json_object_get_string_len(v) > PROTO_ID_MAX)
            return bad(e, "bad_request", "'id' is longer than %d bytes",
                       PROTO_ID_MAX);
        rq->id = v;
    }
    if (proto_has(root, "protocol", &v) &&
        (!json_object_is_type(v, json_type_int) ||
         json_object_get_int64(v) != PROTO_VERSION))
        return bad(e, "unsupported_protocol",
                   "this daemon speaks protocol %d only", PROTO_VERSION);
    if (!proto_has(root, "cmd", &v))
        return bad(e, "bad_request", "'cmd' is required");
    if (!json_object_is_type(v, json_type_string))
        return want(e, "cmd", "a string", v);
    cmd = json_object_get_string(v);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            break;
    if (i == sizeof(commands) / sizeof(commands[0]))
        return bad(e, "unknown_command", "unknown command '%.64s'", cmd);
    rq->cmd = commands[i].cmd;
    return args(root, rq, e);
}

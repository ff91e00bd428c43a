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

static int get_bool(struct json_object *root, const char *key, bool *has_r,
                    bool *b_r, struct request_error *e)
{
    struct json_object *v;

    if (!proto_has(root, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return want(e, key, "true or false", v);
    if (has_r)
        *has_r = true;
    *b_r = json_object_get_boolean(v);
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

/* The arguments shared by migrate, save and evacuate. */
static int job_args(struct json_object *root, struct request *rq,
                    struct request_error *e)
{
    long long n;

    if (get_bool(root, "live", &rq->has_live, &rq->live, e) < 0 ||
        get_bool(root, "watch", NULL, &rq->watch, e) < 0 ||
        get_bool(root, "abort_if_busy", &rq->has_abort_if_busy,
                 &rq->abort_if_busy, e) < 0 ||
        get_bool(root, "skip_redirtied", &rq->has_skip_redirtied,
                 &rq->skip_redirtied, e) < 0 ||
        get_str(root, "engine", false, 32, &rq->engine, e) < 0 ||
        get_str(root, "strategy", false, 32, &rq->strategy, e) < 0 ||
        get_str(root, "ssh_command", false, 1024, &rq->ssh_command, e) < 0)
        return -1;
    if (get_int(root, "max_iters", 1, 1000, &rq->has_max_iters, &n, e) < 0)
        return -1;
    if (rq->has_max_iters)
        rq->max_iters = (unsigned int)n;
    if (get_int(root, "target_dirty", 0, 1LL << 40, &rq->has_target_dirty, &n,
                e) < 0)
        return -1;
    if (rq->has_target_dirty)
        rq->target_dirty = (long)n;
    if (get_int(root, "downtime_ms", 0, 3600000, &rq->has_downtime_ms, &n, e) <
        0)
        return -1;
    if (rq->has_downtime_ms)
        rq->downtime_ms = (unsigned int)n;
    if (get_int(root, "batch", 1, XMIG_MAX_BATCH, &rq->has_batch, &n, e) < 0)
        return -1;
    if (rq->has_batch)
        rq->batch = (unsigned int)n;
    if (get_int(root, "ready_timeout", 1, XMIG_READY_TIMEOUT_MAX,
                &rq->has_ready_timeout, &n, e) < 0)
        return -1;
    if (rq->has_ready_timeout)
        rq->ready_timeout = (unsigned int)n;
    if (rq->engine && strcmp(rq->engine, "xmig") != 0 &&
        strcmp(rq->engine, "libxc") != 0)
        return bad(e, "bad_request", "unknown engine '%s' (xmig, libxc)",
                   rq->engine);
    return 0;
}

static int args(struct json_object *root, struct request *rq,
                struct request_error *e)
{
    bool has = false;
    long long n;

    switch (rq->cmd) {
    case REQ_HELLO:
    case REQ_LIST:
    case REQ_STATS:
    case REQ_DOMAINS:
        return 0;
    case REQ_MIGRATE:
    case REQ_SAVE:
        if (get_str(root, "domain", true, 256, &rq->domain, e) < 0 ||
            get_str(root, rq->cmd == REQ_SAVE ? "file" : "dest", true, 4096,
                    &rq->dest, e) < 0 ||
            job_args(root, rq, e) < 0)
            return -1;
        if (rq->cmd == REQ_SAVE) {
            if (rq->dest[0] != '/')
                return bad(e, "bad_request", "'file' must be an absolute path");
            if (rq->has_ready_timeout)
                return bad(e, "bad_request",
                           "'ready_timeout' is for migrations: a save has "
                           "no receiver");
            if (get_bool(root, "keep", NULL, &rq->keep, e) < 0)
                return -1;
        }
        return 0;
    case REQ_EVACUATE:
        rq->parallel = 1;
        if (get_str(root, "dest", true, 4096, &rq->dest, e) < 0 ||
            job_args(root, rq, e) < 0 ||
            get_int(root, "parallel", 1, PROTO_MAX_PARALLEL, &has, &n, e) < 0)
            return -1;
        if (has)
            rq->parallel = (unsigned int)n;
        return 0;
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

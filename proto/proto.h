/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The control protocol of xmigd (daemon/PROTOCOL.md), for both ends: its
 * constants, JSON through json-c (strict for requests, unbounded for
 * replies), a job's result and events as JSON and back, and the request
 * decoder.  xmigd, xmig and tests/fuzz/ link it; lib/ knows nothing of it.
 */
#ifndef XMIG_PROTO_H
#define XMIG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "options.h"
#include "xmig.h"

#define PROTO_VERSION 1
#define PROTO_DEFAULT_SOCKET "/run/xmig/xmigd.sock"

/* What a request may be and hold (PROTOCOL.md §1). */
#define PROTO_LINE_MAX 16384 /* bytes, the newline included */
#define PROTO_MAX_DEPTH 8
#define PROTO_MAX_STRING 4096 /* bytes, unescaped */
#define PROTO_MAX_MEMBERS 64  /* of one object or array */
#define PROTO_MAX_VALUES 256  /* in the whole request */
#define PROTO_ID_MAX 64       /* bytes of a string id */
#define PROTO_MAX_PARALLEL 64 /* evacuate's parallel */
/*
 * What a client reads at most in one line: far above the longest line
 * xmigd sends (every job it keeps, 256 queued, 64 running, 64 ended, with
 * 4 KiB destinations, is < 8 MiB).  Nothing else bounds a reply.
 */
#define PROTO_REPLY_MAX (64 << 20)

/* json.c: parsing, writing, UTF-8. */
/*
 * One request line, within the limits above and strictly RFC 8259: no
 * duplicate member names, no NUL, no lone surrogate, no raw control
 * character, valid UTF-8, no number json-c would take but RFC 8259 not,
 * integers within 64 bits.  0 with the value in *o_r (NULL for a JSON
 * null, as json-c has it), or -1 with a one-line reason in err.
 */
int proto_parse_request(const char *text, size_t len, struct json_object **o_r,
                        char *err, size_t errlen);
/* One line from xmigd: any size, any number of values. */
int proto_parse_reply(const char *text, size_t len, struct json_object **o_r,
                      char *err, size_t errlen);
/* o as one line, without the newline (the string belongs to o). */
const char *proto_to_string(struct json_object *o, size_t *len_r);
/* "a string", "an integer" ... for messages that name a wrong type. */
const char *proto_type_name(struct json_object *v);

/*
 * Adding a member.  Running out of memory leaves it out; a reply or event
 * that comes out short is still a valid line.
 */
void proto_add(struct json_object *o, const char *key, struct json_object *v);
/* s as it is (valid UTF-8, e.g. from a request); NULL: null. */
void proto_add_str(struct json_object *o, const char *key, const char *s);
/*
 * The daemon's own text, which may carry what a receiver or Xen said:
 * control characters and invalid UTF-8 become the visible text \xNN.
 */
void proto_add_text(struct json_object *o, const char *key, const char *s);
void proto_add_int(struct json_object *o, const char *key, int64_t v);
void proto_add_uint(struct json_object *o, const char *key, uint64_t v);
void proto_add_bool(struct json_object *o, const char *key, bool v);
void proto_add_null(struct json_object *o, const char *key);
/*
 * A number rounded to so many decimals, written as short as it reads
 * back exactly (json-c's own "%.17g" would print 0.1 as 0.1000...01);
 * null when it is not finite.
 */
void proto_add_fixed(struct json_object *o, const char *key, double v,
                     unsigned int decimals);
/* A number with so many significant digits ("%.*g"); null if not finite. */
void proto_add_sig(struct json_object *o, const char *key, double v,
                   int digits);
/* A figure that may be unknown: null when v < 0. */
void proto_add_known(struct json_object *o, const char *key, double v,
                     unsigned int decimals);
void proto_add_count(struct json_object *o, const char *key, int64_t v);
/* Appending to an array. */
void proto_append(struct json_object *a, struct json_object *v);

/*
 * Whether o is an object with a member key (*v_r: its value, NULL for a
 * JSON null, which json-c represents so).
 */
bool proto_has(struct json_object *o, const char *key,
               struct json_object **v_r);
/* Reading a member: NULL-safe, a wrong type reads as absent. */
struct json_object *proto_get(struct json_object *o, const char *key);
const char *proto_str(struct json_object *o, const char *key); /* or "" */
long long proto_int(struct json_object *o, const char *key);   /* or -1 */
double proto_dbl(struct json_object *o, const char *key);      /* or 0 */
bool proto_bool(struct json_object *o, const char *key);       /* or false */
/* An array's length (0 for anything else) and its member i. */
size_t proto_len(struct json_object *a);
struct json_object *proto_at(struct json_object *a, size_t i);

/*
 * The length of the UTF-8 sequence at s[0..avail): 1 to 4, or 0 if it is
 * not valid UTF-8 (truncated, overlong, a surrogate, beyond U+10FFFF).
 */
size_t proto_utf8_len(const unsigned char *s, size_t avail);
/* The valid n-byte sequence at s is a control character: C0, DEL or C1. */
bool proto_utf8_control(const unsigned char *s, size_t n);

/*
 * in into out[0..size), cut to fit: control characters and invalid UTF-8
 * become the text \xNN, so that text from clients, receivers and Xen
 * stays one line and prints nothing raw (logs, replies).
 */
void proto_escape(char *out, size_t size, const char *in);

/* job.c: a job's events and result as JSON, and back. */
/*
 * {"event":"phase"|"pass"|"progress","job":job,"t":...}; no "job" when
 * job is 0 (a job that xmig runs itself).
 */
struct json_object *proto_event(const struct xmig_event *ev, uint64_t job);
/* The reverse; ev->phase points into m.  -1: not one of these events. */
int proto_event_parse(struct json_object *m, struct xmig_event *ev);
/* The members of a job's "result" (PROTOCOL.md §3, the job object). */
void proto_result(struct json_object *o, enum xmig_engine engine,
                  const struct xmig_job_result *r);
/*
 * A final job object from xmigd -> params and result; the error message
 * (or "") in *error_r, pointing into job.  True if the job succeeded.
 */
bool proto_job_result(struct json_object *job, struct xmig_job_params *p,
                      struct xmig_job_result *r, const char **error_r);

/* request.c: a request line, decoded and checked (no side effects). */
enum request_cmd {
    REQ_HELLO,
    REQ_MIGRATE,
    REQ_SAVE,
    REQ_EVACUATE,
    REQ_LIST,
    REQ_STATUS,
    REQ_WATCH,
    REQ_CANCEL,
    REQ_STATS,
    REQ_DOMAINS,
};

struct request {
    struct json_object *root;
    struct json_object *id; /* echoed back; NULL if none */
    enum request_cmd cmd;
    const char *domain;
    const char *dest; /* migrate, evacuate: dest; save: file */
    /* migrate, save, evacuate: the options given (strings point into root) */
    struct opt_values opts;
    bool has_job;
    uint64_t job;
};

struct request_error {
    const char *code;
    char message[256];
};

void request_init(struct request *rq);
void request_dispose(struct request *rq); /* NULL-safe */
/* 0, or -1 with e filled (rq->id is set whenever the line had one). */
int request_decode(struct request *rq, const char *line, size_t len,
                   struct request_error *e);
const char *request_cmd_name(enum request_cmd cmd);
/*
 * The options in v that a request has a key for, as its members: what
 * request_decode() reads back.
 */
void request_add_opts(struct json_object *o, const struct opt_values *v);

#endif

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libFuzzer harness for xmigd's request parser (proto/): whatever a
 * client sends must be decoded or refused with an error code, never
 * crash, never leak, and respect the limits of daemon/PROTOCOL.md §1.
 * Values that parse are written back as xmigd writes and must parse again
 * to the same thing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool valid_string(const char *s, size_t len)
{
    size_t i = 0, n;

    if (strlen(s) != len || len > PROTO_MAX_STRING)
        return false;
    for (; i < len; i += n)
        if (!(n = proto_utf8_len((const unsigned char *)s + i, len - i)))
            return false;
    return true;
}

/* The limits, checked on the tree the parser accepted. */
static size_t count(struct json_object *v, int depth, int *max_depth)
{
    enum json_type t = json_object_get_type(v);
    size_t n = 1, members = 0, i;

    if (depth > *max_depth)
        *max_depth = depth;
    if (t == json_type_string &&
        !valid_string(json_object_get_string(v),
                      (size_t)json_object_get_string_len(v)))
        abort();
    if (t == json_type_array) {
        members = json_object_array_length(v);
        for (i = 0; i < members; i++)
            n += count(json_object_array_get_idx(v, i), depth + 1, max_depth);
    } else if (t == json_type_object) {
        json_object_object_foreach(v, key, m)
        {
            if (!valid_string(key, strlen(key)))
                abort();
            n += count(m, depth + 1, max_depth);
            members++;
        }
    }
    if (members > PROTO_MAX_MEMBERS)
        abort();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request rq;
    struct request_error e;
    struct json_object *d, *again;
    const char *w;
    char err[128];
    int depth = 0;
    size_t n;

    if (size > PROTO_LINE_MAX)
        return 0; /* the daemon never parses longer lines */

    /* 1. The request decoder: decoded, or refused with a known code. */
    request_init(&rq);
    if (request_decode(&rq, (const char *)data, size, &e) < 0) {
        if (!e.code || !*e.code || !memchr(e.message, 0, sizeof(e.message)))
            abort();
    } else if (rq.cmd > REQ_DOMAINS) {
        abort();
    }
    request_dispose(&rq);

    /* 2. The parser's limits and a round trip through the writer. */
    if (proto_parse_request((const char *)data, size, &d, err, sizeof(err)) <
        0) {
        if (!err[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    /* A container at depth PROTO_MAX_DEPTH - 1 holds values one deeper. */
    if (count(d, 0, &depth) > PROTO_MAX_VALUES || depth > PROTO_MAX_DEPTH)
        abort();
    w = proto_to_string(d, &n); /* a JSON null is "null" */
    if (!w)
        abort();
    if (proto_parse_request(w, n, &again, err, sizeof(err)) < 0) {
        fprintf(stderr, "written back, does not parse (%s): %s\n", err, w);
        abort();
    }
    if (!json_object_equal(d, again)) {
        fprintf(stderr, "written back differently: %s\n", w);
        abort();
    }
    json_object_put(again);
    json_object_put(d);
    return 0;
}

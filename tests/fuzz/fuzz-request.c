/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libFuzzer harness for xmigd's request parser: whatever a client sends
 * must be decoded or refused with an error code, never crash, never leak,
 * and respect the limits of daemon/PROTOCOL.md §1.  Values that parse
 * are written back with the daemon's own writer and must parse again to
 * the same thing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmigd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(const struct json_value *v, int depth, int *max_depth)
{
    const struct json_value *m;
    size_t n = 1, members = 0;

    if (depth > *max_depth)
        *max_depth = depth;
    if (v->type == JSON_STRING &&
        (v->len > JSON_MAX_STRING || strlen(v->s) != v->len))
        abort();
    for (m = v->first; m; m = m->next) {
        n += count(m, depth + 1, max_depth);
        members++;
    }
    if (members != v->n || members > JSON_MAX_MEMBERS)
        abort();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request rq;
    struct request_error e;
    struct json_doc *d, *again;
    struct jsonw w;
    char err[128];
    int depth = 0;

    if (size > XMIGD_LINE_MAX)
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
    d = json_parse((const char *)data, size, err, sizeof(err));
    if (!d) {
        if (!err[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    if (count(json_root(d), 0, &depth) > JSON_MAX_VALUES ||
        depth > JSON_MAX_DEPTH)
        abort();
    jsonw_init(&w);
    jsonw_value(&w, NULL, json_root(d));
    if (!jsonw_end(&w))
        abort();
    again = json_parse(w.p, w.len, err, sizeof(err));
    if (!again) {
        fprintf(stderr, "written back, does not parse (%s): %s", err, w.p);
        abort();
    }
    if (!json_equal(json_root(d), json_root(again))) {
        fprintf(stderr, "written back differently: %s", w.p);
        abort();
    }
    json_doc_free(again);
    jsonw_dispose(&w);
    json_doc_free(d);
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Writing one JSON line into memory: responses and events are built once
 * and then queued to one or many peers.  Running out of memory is sticky
 * (w->oom) and reported by jsonw_end(), so callers check once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmigd.h"

void jsonw_init(struct jsonw *w)
{
    w->p = NULL;
    w->len = 0;
    w->cap = 0;
    w->first = true;
    w->oom = false;
}

void jsonw_dispose(struct jsonw *w)
{
    if (!w)
        return;
    free(w->p);
    jsonw_init(w);
}

static void put(struct jsonw *w, const char *s, size_t n)
{
    char *p;
    size_t cap;

    if (w->oom)
        return;
    if (w->len + n + 2 > w->cap) {
        cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 2)
            cap *= 2;
        p = realloc(w->p, cap);
        if (!p) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = 0;
}

static void putc_(struct jsonw *w, char c)
{
    put(w, &c, 1);
}

/*
 * A JSON string.  exact: s is valid UTF-8 (it was parsed) and goes back
 * as it came.  Otherwise s is the daemon's text, which may carry what a
 * receiver or Xen said: control characters and invalid UTF-8 become the
 * visible text \xNN, so that no client prints them raw.
 */
static void put_string(struct jsonw *w, const char *s, bool exact)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s), i = 0, run, n;
    char esc[8];

    putc_(w, '"');
    while (i < len) {
        /* Copy what needs no escape in one go. */
        for (run = i; run < len; run += n) {
            n = json_utf8_len(u + run, len - run);
            if (!n || json_utf8_control(u + run, n) || u[run] == '"' ||
                u[run] == '\\')
                break;
        }
        put(w, s + i, run - i);
        i = run;
        if (i == len)
            break;
        n = json_utf8_len(u + i, len - i);
        if (n == 1 && (u[i] == '"' || u[i] == '\\')) {
            snprintf(esc, sizeof(esc), "\\%c", u[i]);
        } else if (exact) {
            /* A C0 or DEL, or a C1 (its second byte is the code point). */
            snprintf(esc, sizeof(esc), "\\u%04x",
                     n == 2 ? u[i + 1]
                     : n    ? u[i]
                            : 0xfffd);
        } else {
            n = 1; /* byte by byte */
            snprintf(esc, sizeof(esc), "\\\\x%02x", u[i]);
        }
        put(w, esc, strlen(esc));
        i += n ? n : 1;
    }
    putc_(w, '"');
}

static void key(struct jsonw *w, const char *k)
{
    if (!w->first)
        putc_(w, ',');
    w->first = false;
    if (k) {
        put_string(w, k, true);
        putc_(w, ':');
    }
}

void jsonw_open(struct jsonw *w, const char *k, char bracket)
{
    key(w, k);
    putc_(w, bracket);
    w->first = true;
}

void jsonw_close(struct jsonw *w, char bracket)
{
    putc_(w, bracket);
    w->first = false;
}

void jsonw_str(struct jsonw *w, const char *k, const char *val)
{
    key(w, k);
    if (val)
        put_string(w, val, false);
    else
        put(w, "null", 4);
}

void jsonw_int(struct jsonw *w, const char *k, long long val)
{
    char buf[32];

    key(w, k);
    snprintf(buf, sizeof(buf), "%lld", val);
    put(w, buf, strlen(buf));
}

void jsonw_uint(struct jsonw *w, const char *k, unsigned long long val)
{
    char buf[32];

    key(w, k);
    snprintf(buf, sizeof(buf), "%llu", val);
    put(w, buf, strlen(buf));
}

void jsonw_dbl(struct jsonw *w, const char *k, double val)
{
    static const int digits[] = {6, 9, 12, 15, 17};
    char buf[40];
    size_t i;

    key(w, k);
    if (!isfinite(val)) {
        put(w, "null", 4);
        return;
    }
    /* As short as it can be while it still reads back exactly. */
    for (i = 0; i < sizeof(digits) / sizeof(digits[0]); i++) {
        snprintf(buf, sizeof(buf), "%.*g", digits[i], val);
        if (strtod(buf, NULL) == val)
            break;
    }
    put(w, buf, strlen(buf));
}

void jsonw_fixed(struct jsonw *w, const char *k, double val,
                 unsigned int decimals)
{
    double scale = pow(10, decimals);

    jsonw_dbl(w, k, isfinite(val) ? round(val * scale) / scale : val);
}

void jsonw_bool(struct jsonw *w, const char *k, bool val)
{
    key(w, k);
    put(w, val ? "true" : "false", val ? 4 : 5);
}

void jsonw_null(struct jsonw *w, const char *k)
{
    key(w, k);
    put(w, "null", 4);
}

void jsonw_value(struct jsonw *w, const char *k, const struct json_value *v)
{
    const struct json_value *m;

    switch (v->type) {
    case JSON_NULL:
        jsonw_null(w, k);
        break;
    case JSON_BOOL:
        jsonw_bool(w, k, v->b);
        break;
    case JSON_INT:
        jsonw_int(w, k, v->i);
        break;
    case JSON_NUMBER:
        jsonw_dbl(w, k, v->d);
        break;
    case JSON_STRING:
        key(w, k);
        put_string(w, v->s, true);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        jsonw_open(w, k, v->type == JSON_ARRAY ? '[' : '{');
        for (m = v->first; m; m = m->next)
            jsonw_value(w, v->type == JSON_OBJECT ? m->key : NULL, m);
        jsonw_close(w, v->type == JSON_ARRAY ? ']' : '}');
        break;
    }
}

bool jsonw_end(struct jsonw *w)
{
    putc_(w, '\n');
    return !w->oom;
}

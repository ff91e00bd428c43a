/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The strict JSON parser.  Recursive descent, at most lim->depth deep.
 * Every string lives in a pool as long as the input (unescaping never
 * makes a string longer), in the document's own allocation; values live
 * in chunks that are added as the document needs them, each twice the
 * last, so that a value never moves once made.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

const struct json_limits json_request_limits = {
    .depth = JSON_MAX_DEPTH,
    .string = JSON_MAX_STRING,
    .members = JSON_MAX_MEMBERS,
    .values = JSON_MAX_VALUES,
};

const struct json_limits json_reply_limits = {
    .depth = 64,
    .string = SIZE_MAX,
    .members = SIZE_MAX,
    .values = SIZE_MAX,
};

struct json_chunk {
    struct json_chunk *next;
    size_t n;
    size_t used;
    struct json_value v[];
};

struct json_doc {
    const struct json_limits *lim;
    struct json_chunk *chunks; /* the newest first */
    size_t used;               /* values in all chunks */
    struct json_value *root;
    char *pool; /* points into the same allocation, after the struct */
    size_t pool_used;
};

struct parser {
    const unsigned char *p;
    const unsigned char *start;
    const unsigned char *end;
    struct json_doc *d;
    char *err;
    size_t errlen;
};

static int fail(struct parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct parser *ps, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!ps->err || !ps->errlen)
        return -1;
    n = snprintf(ps->err, ps->errlen,
                 "at byte %zu: ", (size_t)(ps->p - ps->start));
    if (n < 0 || (size_t)n >= ps->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void skip_blank(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static struct json_value *node(struct parser *ps)
{
    struct json_doc *d = ps->d;
    struct json_chunk *c = d->chunks;
    struct json_value *v;
    size_t n;

    if (d->used == d->lim->values) {
        fail(ps, "more than %zu values", d->lim->values);
        return NULL;
    }
    if (!c || c->used == c->n) {
        n = c ? c->n * 2 : 64;
        if (n > d->lim->values - d->used)
            n = d->lim->values - d->used;
        /* Each value takes a byte of input at least. */
        if (n > (size_t)(ps->end - ps->p) + 1)
            n = (size_t)(ps->end - ps->p) + 1;
        c = malloc(sizeof(*c) + n * sizeof(c->v[0]));
        if (!c) {
            fail(ps, "out of memory");
            return NULL;
        }
        c->n = n;
        c->used = 0;
        c->next = d->chunks;
        d->chunks = c;
    }
    v = &c->v[c->used++];
    d->used++;
    memset(v, 0, sizeof(*v));
    return v;
}

static int literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected character");
    ps->p += n;
    return 0;
}

static int hex4(struct parser *ps, unsigned int *v)
{
    unsigned int i, c;

    *v = 0;
    if (ps->end - ps->p < 4)
        return fail(ps, "truncated \\u escape");
    for (i = 0; i < 4; i++) {
        c = ps->p[i];
        if (c >= '0' && c <= '9')
            c -= '0';
        else if (c >= 'a' && c <= 'f')
            c = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            c = c - 'A' + 10;
        else
            return fail(ps, "bad \\u escape");
        *v = *v << 4 | c;
    }
    ps->p += 4;
    return 0;
}

static size_t put_utf8(char *out, unsigned int cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t json_utf8_len(const unsigned char *s, size_t avail)
{
    size_t n, i;
    unsigned int cp;

    if (!avail)
        return 0;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (avail < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, UTF-16 surrogates, beyond U+10FFFF. */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

bool json_utf8_control(const unsigned char *s, size_t n)
{
    if (n == 1)
        return s[0] < 0x20 || s[0] == 0x7f;
    return n == 2 && s[0] == 0xc2 && s[1] < 0xa0; /* U+0080..U+009F */
}

static int string(struct parser *ps, const char **s_r, size_t *len_r)
{
    char *out = ps->d->pool + ps->d->pool_used, *o = out;
    unsigned int cp, lo;
    size_t n;

    ps->p++; /* the opening quote */
    for (;;) {
        if (ps->p >= ps->end)
            return fail(ps, "unterminated string");
        if ((size_t)(o - out) > ps->d->lim->string)
            return fail(ps, "string longer than %zu bytes", ps->d->lim->string);
        if (*ps->p == '"')
            break;
        if (*ps->p < 0x20)
            return fail(ps, "control character in a string");
        if (*ps->p != '\\') {
            n = json_utf8_len(ps->p, (size_t)(ps->end - ps->p));
            if (!n)
                return fail(ps, "invalid UTF-8 in a string");
            memcpy(o, ps->p, n);
            o += n;
            ps->p += n;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end)
            return fail(ps, "unterminated string");
        switch (*ps->p++) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '/':
            *o++ = '/';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u':
            if (hex4(ps, &cp) < 0)
                return -1;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(ps, "lone low surrogate");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
                    return fail(ps, "lone high surrogate");
                ps->p += 2;
                if (hex4(ps, &lo) < 0)
                    return -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return fail(ps, "bad surrogate pair");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0)
                return fail(ps, "\\u0000 in a string");
            /* \uXXXX is 6 bytes of input and at most 4 of output. */
            o += put_utf8(o, cp);
            break;
        default:
            ps->p--;
            return fail(ps, "bad escape");
        }
    }
    ps->p++; /* the closing quote */
    if ((size_t)(o - out) > ps->d->lim->string)
        return fail(ps, "string longer than %zu bytes", ps->d->lim->string);
    *o++ = 0;
    ps->d->pool_used += (size_t)(o - out);
    *s_r = out;
    *len_r = (size_t)(o - out) - 1;
    return 0;
}

static int number(struct parser *ps, struct json_value *v)
{
    const unsigned char *s = ps->p;
    bool integral = true;
    char buf[64];
    size_t n;
    char *end;

    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return fail(ps, "bad number");
    if (*ps->p == '0')
        ps->p++;
    else
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        integral = false;
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail(ps, "bad number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integral = false;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return fail(ps, "bad number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    n = (size_t)(ps->p - s);
    if (n >= sizeof(buf))
        return fail(ps, "number longer than %zu characters", sizeof(buf) - 1);
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    if (integral) {
        v->i = strtoll(buf, &end, 10);
        if (errno == 0) {
            v->type = JSON_INT;
            v->d = (double)v->i;
            return 0;
        }
        errno = 0;
    }
    v->type = JSON_NUMBER;
    v->d = strtod(buf, &end);
    if (errno == ERANGE && (v->d > 1 || v->d < -1))
        return fail(ps, "number out of range");
    return 0;
}

static struct json_value *value(struct parser *ps, int depth);

/* Arrays and objects: members separated by commas, closed by close. */
static int members(struct parser *ps, struct json_value *v, int depth,
                   char close)
{
    struct json_value **tail = &v->first, *m, *o;
    const char *key = NULL;
    size_t keylen;

    ps->p++;
    skip_blank(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        if (v->n == ps->d->lim->members)
            return fail(ps, "more than %zu members", ps->d->lim->members);
        if (close == '}') {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected a member name");
            if (string(ps, &key, &keylen) < 0)
                return -1;
            if (strlen(key) != keylen)
                return fail(ps, "NUL in a member name");
            for (o = v->first; o; o = o->next)
                if (strcmp(o->key, key) == 0)
                    return fail(ps, "duplicate member \"%.64s\"", key);
            skip_blank(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "expected ':'");
            ps->p++;
        }
        m = value(ps, depth + 1);
        if (!m)
            return -1;
        m->key = key;
        *tail = m;
        tail = &m->next;
        v->n++;
        skip_blank(ps);
        if (ps->p >= ps->end)
            return fail(ps, "expected ',' or '%c'", close);
        if (*ps->p == close) {
            ps->p++;
            return 0;
        }
        if (*ps->p != ',')
            return fail(ps, "expected ',' or '%c'", close);
        ps->p++;
        skip_blank(ps);
    }
}

static struct json_value *value(struct parser *ps, int depth)
{
    struct json_value *v;
    int rc;

    skip_blank(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of input");
        return NULL;
    }
    v = node(ps);
    if (!v)
        return NULL;
    switch (*ps->p) {
    case '{':
    case '[':
        if ((unsigned int)depth >= ps->d->lim->depth) {
            fail(ps, "nested deeper than %u", ps->d->lim->depth);
            return NULL;
        }
        v->type = *ps->p == '{' ? JSON_OBJECT : JSON_ARRAY;
        rc = members(ps, v, depth, *ps->p == '{' ? '}' : ']');
        break;
    case '"':
        v->type = JSON_STRING;
        rc = string(ps, &v->s, &v->len);
        break;
    case 't':
        v->type = JSON_BOOL;
        v->b = true;
        rc = literal(ps, "true");
        break;
    case 'f':
        v->type = JSON_BOOL;
        rc = literal(ps, "false");
        break;
    case 'n':
        v->type = JSON_NULL;
        rc = literal(ps, "null");
        break;
    default:
        rc = number(ps, v);
        break;
    }
    return rc < 0 ? NULL : v;
}

struct json_doc *json_parse_limits(const char *text, size_t len,
                                   const struct json_limits *lim, char *err,
                                   size_t errlen)
{
    struct parser ps = {.err = err, .errlen = errlen};
    struct json_doc *d;

    if (err && errlen)
        err[0] = 0;
    /* Each string's NUL fits in the room of its quotes. */
    d = malloc(sizeof(*d) + len + 1);
    if (!d) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->lim = lim;
    d->chunks = NULL;
    d->used = 0;
    d->pool = (char *)(d + 1);
    d->pool_used = 0;
    ps.d = d;
    ps.p = ps.start = (const unsigned char *)text;
    ps.end = ps.p + len;
    d->root = value(&ps, 0);
    if (d->root) {
        skip_blank(&ps);
        if (ps.p != ps.end) {
            fail(&ps, "trailing characters after the value");
            d->root = NULL;
        }
    }
    if (!d->root) {
        json_doc_free(d);
        return NULL;
    }
    return d;
}

struct json_doc *json_parse(const char *text, size_t len, char *err,
                            size_t errlen)
{
    return json_parse_limits(text, len, &json_request_limits, err, errlen);
}

void json_doc_free(struct json_doc *d)
{
    struct json_chunk *c;

    if (!d)
        return;
    while ((c = d->chunks)) {
        d->chunks = c->next;
        free(c);
    }
    free(d);
}

const struct json_value *json_root(const struct json_doc *d)
{
    return d->root;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
    const struct json_value *m;

    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    for (m = obj->first; m; m = m->next)
        if (strcmp(m->key, key) == 0)
            return m;
    return NULL;
}

const char *json_type_name(enum json_type t)
{
    switch (t) {
    case JSON_NULL:
        return "null";
    case JSON_BOOL:
        return "a boolean";
    case JSON_INT:
        return "an integer";
    case JSON_NUMBER:
        return "a number";
    case JSON_STRING:
        return "a string";
    case JSON_ARRAY:
        return "an array";
    case JSON_OBJECT:
        return "an object";
    }
    return "?";
}

bool json_equal(const struct json_value *a, const struct json_value *b)
{
    const struct json_value *x, *y;

    if ((a->type == JSON_INT || a->type == JSON_NUMBER) &&
        (b->type == JSON_INT || b->type == JSON_NUMBER)) {
        if (a->type == JSON_INT && b->type == JSON_INT)
            return a->i == b->i;
        return a->d == b->d;
    }
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case JSON_NULL:
        return true;
    case JSON_BOOL:
        return a->b == b->b;
    case JSON_STRING:
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (a->n != b->n)
            return false;
        for (x = a->first, y = b->first; x && y; x = x->next, y = y->next) {
            if (a->type == JSON_OBJECT && strcmp(x->key, y->key) != 0)
                return false;
            if (!json_equal(x, y))
                return false;
        }
        return !x && !y;
    default:
        return false;
    }
}

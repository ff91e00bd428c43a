/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * JSON for the protocol, through json-c.  json-c parses; what RFC 8259 and
 * PROTOCOL.md §1 forbid but json-c lets through (duplicate member names,
 * lone surrogates, which it replaces with U+FFFD, raw control characters,
 * overlong UTF-8, numbers like "01" or "1.", integers beyond 64 bits, and
 * what json-c's JSON_TOKENER_STRICT would refuse: comments, single quotes,
 * trailing commas, words in any case) is refused by a lexical pass over
 * the raw line before json-c sees it, and the limits by a walk over the
 * tree after.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static int fail(char *err, size_t errlen, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, size_t at, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!err || !errlen)
        return -1;
    n = snprintf(err, errlen, "at byte %zu: ", at);
    if (n < 0 || (size_t)n >= errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

size_t proto_utf8_len(const unsigned char *s, size_t avail)
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

bool proto_utf8_control(const unsigned char *s, size_t n)
{
    if (n == 1)
        return s[0] < 0x20 || s[0] == 0x7f;
    return n == 2 && s[0] == 0xc2 && s[1] < 0xa0; /* U+0080..U+009F */
}

void proto_escape(char *out, size_t size, const char *in)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t len = strlen(in), i = 0, o = 0, n;

    while (i < len) {
        n = proto_utf8_len(s + i, len - i);
        if (n && !proto_utf8_control(s + i, n)) {
            if (o + n >= size)
                break;
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
            continue;
        }
        /* Byte by byte: a C1 control's two bytes are both shown. */
        if (o + 4 >= size)
            break;
        snprintf(out + o, 5, "\\x%02x", s[i]);
        o += 4;
        i++;
    }
    out[o] = 0;
}

/* ------------------------------------------------------------------ */
/* The lexical pass. */

struct lex {
    const unsigned char *s;
    size_t len;
    size_t i;
    size_t colons;      /* outside strings: one per object member */
    unsigned char prev; /* the last punctuation, or 'v' after a value */
    char *err;
    size_t errlen;
};

static bool digit(const struct lex *lx)
{
    return lx->i < lx->len && lx->s[lx->i] >= '0' && lx->s[lx->i] <= '9';
}

static void digits(struct lex *lx)
{
    while (digit(lx))
        lx->i++;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and nothing json-c adds. */
static int number(struct lex *lx)
{
    size_t start = lx->i;
    bool integral = true;
    char buf[64];
    double d;

    if (lx->s[lx->i] == '-')
        lx->i++;
    if (!digit(lx))
        return fail(lx->err, lx->errlen, lx->i, "bad number");
    if (lx->s[lx->i] == '0')
        lx->i++;
    else
        digits(lx);
    if (lx->i < lx->len && lx->s[lx->i] == '.') {
        integral = false;
        lx->i++;
        if (!digit(lx))
            return fail(lx->err, lx->errlen, lx->i, "bad number");
        digits(lx);
    }
    if (lx->i < lx->len && (lx->s[lx->i] == 'e' || lx->s[lx->i] == 'E')) {
        integral = false;
        lx->i++;
        if (lx->i < lx->len && (lx->s[lx->i] == '+' || lx->s[lx->i] == '-'))
            lx->i++;
        if (!digit(lx))
            return fail(lx->err, lx->errlen, lx->i, "bad number");
        digits(lx);
    }
    if (digit(lx) ||
        (lx->i < lx->len && strchr(".eE+-", lx->s[lx->i]) && lx->s[lx->i]))
        return fail(lx->err, lx->errlen, lx->i, "bad number");
    if (lx->i - start >= sizeof(buf))
        return fail(lx->err, lx->errlen, start,
                    "number longer than %zu characters", sizeof(buf) - 1);
    memcpy(buf, lx->s + start, lx->i - start);
    buf[lx->i - start] = 0;
    errno = 0;
    if (integral) {
        (void)strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return fail(lx->err, lx->errlen, start,
                        "integer out of the 64-bit range");
        return 0;
    }
    d = strtod(buf, NULL);
    if (errno == ERANGE && (d > 1 || d < -1))
        return fail(lx->err, lx->errlen, start, "number out of range");
    return 0;
}

static int hex4(const struct lex *lx, size_t at, unsigned int *v)
{
    unsigned int k, c;

    *v = 0;
    if (lx->len - at < 4)
        return -1;
    for (k = 0; k < 4; k++) {
        c = lx->s[at + k];
        if (c >= '0' && c <= '9')
            c -= '0';
        else if (c >= 'a' && c <= 'f')
            c = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            c = c - 'A' + 10;
        else
            return -1;
        *v = *v << 4 | c;
    }
    return 0;
}

/* The escape at lx->i; a malformed one is left to json-c to refuse. */
static int escape(struct lex *lx)
{
    size_t at = lx->i;
    unsigned int cp, lo;

    lx->i += 2;
    if (at + 1 >= lx->len || lx->s[at + 1] != 'u' || hex4(lx, at + 2, &cp) < 0)
        return 0;
    lx->i += 4;
    if (cp == 0)
        return fail(lx->err, lx->errlen, at, "\\u0000 in a string");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return fail(lx->err, lx->errlen, at, "lone low surrogate");
    if (cp < 0xd800 || cp > 0xdbff)
        return 0;
    if (lx->len - lx->i < 2 || lx->s[lx->i] != '\\' ||
        lx->s[lx->i + 1] != 'u' || hex4(lx, lx->i + 2, &lo) < 0 ||
        lo < 0xdc00 || lo > 0xdfff)
        return fail(lx->err, lx->errlen, at, "lone high surrogate");
    lx->i += 6;
    return 0;
}

static int string(struct lex *lx)
{
    size_t n;

    for (lx->i++; lx->i < lx->len && lx->s[lx->i] != '"'; lx->i += n) {
        n = 0;
        if (lx->s[lx->i] < 0x20)
            return fail(lx->err, lx->errlen, lx->i,
                        "control character in a string");
        if (lx->s[lx->i] == '\\') {
            if (escape(lx) < 0)
                return -1;
            continue;
        }
        n = proto_utf8_len(lx->s + lx->i, lx->len - lx->i);
        if (!n)
            return fail(lx->err, lx->errlen, lx->i,
                        "invalid UTF-8 in a string");
    }
    lx->i++;
    return 0;
}

/*
 * A bare word: JSON has three.  json-c also takes NaN and Infinity, even
 * when strict, and a NaN is not equal to itself once written back.
 */
static bool letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int word(struct lex *lx)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t start = lx->i, n, k;

    while (lx->i < lx->len && letter(lx->s[lx->i]))
        lx->i++;
    n = lx->i - start;
    for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
        if (n == strlen(words[k]) && !memcmp(lx->s + start, words[k], n))
            return 0;
    return fail(lx->err, lx->errlen, start,
                "not a JSON value (only true, false and null are words)");
}

/* Between values: RFC 8259's whitespace and punctuation, nothing else. */
static int punctuation(struct lex *lx)
{
    unsigned char c = lx->s[lx->i];

    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        lx->i++;
        return 0;
    }
    if (!c || !strchr("{}[],:", c))
        return fail(lx->err, lx->errlen, lx->i,
                    c > ' ' && c < 0x7f ? "unexpected '%c'"
                                        : "unexpected byte 0x%02x",
                    c);
    if ((c == ']' || c == '}') && lx->prev == ',')
        return fail(lx->err, lx->errlen, lx->i, "trailing comma");
    lx->colons += c == ':';
    lx->prev = c;
    lx->i++;
    return 0;
}

static int lex(struct lex *lx)
{
    unsigned char c;
    int rc;

    while (lx->i < lx->len) {
        c = lx->s[lx->i];
        if (c == '"') {
            rc = string(lx);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            rc = number(lx);
        } else if (letter(c)) {
            rc = word(lx);
        } else {
            if (punctuation(lx) < 0)
                return -1;
            continue;
        }
        if (rc < 0)
            return -1;
        lx->prev = 'v';
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The limits. */

struct walk {
    size_t values;
    size_t members; /* of all objects */
    char *err;
    size_t errlen;
};

static int limits(struct json_object *v, unsigned int depth, struct walk *w)
{
    enum json_type t = json_object_get_type(v);
    size_t i, n;

    if (++w->values > PROTO_MAX_VALUES)
        return fail(w->err, w->errlen, 0, "more than %d values",
                    PROTO_MAX_VALUES);
    if (t == json_type_string &&
        (size_t)json_object_get_string_len(v) > PROTO_MAX_STRING)
        return fail(w->err, w->errlen, 0, "string longer than %d bytes",
                    PROTO_MAX_STRING);
    if (t != json_type_object && t != json_type_array)
        return 0;
    if (depth >= PROTO_MAX_DEPTH)
        return fail(w->err, w->errlen, 0, "nested deeper than %d",
                    PROTO_MAX_DEPTH);
    n = t == json_type_object ? (size_t)json_object_object_length(v)
                              : json_object_array_length(v);
    if (n > PROTO_MAX_MEMBERS)
        return fail(w->err, w->errlen, 0, "more than %d members",
                    PROTO_MAX_MEMBERS);
    if (t == json_type_array) {
        for (i = 0; i < n; i++)
            if (limits(json_object_array_get_idx(v, i), depth + 1, w) < 0)
                return -1;
        return 0;
    }
    w->members += n;
    json_object_object_foreach(v, key, m)
    {
        if (strlen(key) > PROTO_MAX_STRING)
            return fail(w->err, w->errlen, 0, "string longer than %d bytes",
                        PROTO_MAX_STRING);
        if (limits(m, depth + 1, w) < 0)
            return -1;
    }
    return 0;
}

/* json-c proper: the grammar; the whole text is one value. */
static int tokenize(const char *text, size_t len, int depth,
                    struct json_object **o_r, char *err, size_t errlen)
{
    struct json_tokener *tok;
    struct json_object *o;
    enum json_tokener_error je;
    size_t end;

    *o_r = NULL;
    if (len > (size_t)INT32_MAX)
        return fail(err, errlen, 0, "longer than json-c reads");
    tok = json_tokener_new_ex(depth);
    if (!tok)
        return fail(err, errlen, 0, "out of memory");
    /*
     * Not JSON_TOKENER_STRICT: json-c 0.18 (Debian 13) refuses every byte
     * above 0x7f in a string when strict (json-c issue #875, fixed in
     * 0.19).  The lexical pass refuses what strict mode would; replies
     * come from xmigd.
     */
    json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, text, (int)len);
    je = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (je == json_tokener_continue && end == len) {
        /* A bare number may go on: the end of the text says it does not. */
        o = json_tokener_parse_ex(tok, "", 1);
        je = json_tokener_get_error(tok);
    }
    json_tokener_free(tok);
    if (je == json_tokener_continue)
        return fail(err, errlen, end, "unexpected end of input");
    if (je != json_tokener_success)
        return fail(err, errlen, end, "%s", json_tokener_error_desc(je));
    if (end != len) { /* a NUL byte ends json-c's input */
        json_object_put(o);
        return fail(err, errlen, end, "trailing characters after the value");
    }
    *o_r = o;
    return 0;
}

int proto_parse_request(const char *text, size_t len, struct json_object **o_r,
                        char *err, size_t errlen)
{
    struct lex lx = {.s = (const unsigned char *)text,
                     .len = len,
                     .err = err,
                     .errlen = errlen};
    struct walk w = {.err = err, .errlen = errlen};
    struct json_object *o;

    *o_r = NULL;
    if (err && errlen)
        err[0] = 0;
    /* One level more than ours: json-c counts the innermost scalar. */
    if (lex(&lx) < 0 ||
        tokenize(text, len, PROTO_MAX_DEPTH + 1, &o, err, errlen) < 0)
        return -1;
    if (limits(o, 0, &w) < 0) {
        json_object_put(o);
        return -1;
    }
    /* json-c keeps the last of two members of the same name. */
    if (w.members != lx.colons) {
        json_object_put(o);
        return fail(err, errlen, 0, "duplicate member name in an object");
    }
    *o_r = o;
    return 0;
}

int proto_parse_reply(const char *text, size_t len, struct json_object **o_r,
                      char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    /* Replies nest 4 deep; only the stack of json-c is bounded. */
    return tokenize(text, len, 64, o_r, err, errlen);
}

const char *proto_to_string(struct json_object *o, size_t *len_r)
{
    return json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len_r);
}

const char *proto_type_name(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_int:
        return "an integer";
    case json_type_double:
        return "a number";
    case json_type_string:
        return "a string";
    case json_type_array:
        return "an array";
    case json_type_object:
        return "an object";
    }
    return "?";
}

/* ------------------------------------------------------------------ */
/* Writing. */

void proto_add(struct json_object *o, const char *key, struct json_object *v)
{
    /* o is NULL when memory ran out making it: json-c would assert. */
    if (!o || json_object_object_add(o, key, v) < 0)
        json_object_put(v);
}

void proto_add_str(struct json_object *o, const char *key, const char *s)
{
    proto_add(o, key, s ? json_object_new_string(s) : NULL);
}

void proto_add_text(struct json_object *o, const char *key, const char *s)
{
    size_t size;
    char *out;

    if (!s) {
        proto_add(o, key, NULL);
        return;
    }
    size = 4 * strlen(s) + 1; /* a byte becomes at most \xNN */
    out = malloc(size);
    if (!out)
        return;
    proto_escape(out, size, s);
    proto_add_str(o, key, out);
    free(out);
}

void proto_add_int(struct json_object *o, const char *key, int64_t v)
{
    proto_add(o, key, json_object_new_int64(v));
}

void proto_add_uint(struct json_object *o, const char *key, uint64_t v)
{
    proto_add(o, key, json_object_new_uint64(v));
}

void proto_add_bool(struct json_object *o, const char *key, bool v)
{
    proto_add(o, key, json_object_new_boolean(v));
}

void proto_add_null(struct json_object *o, const char *key)
{
    proto_add(o, key, NULL);
}

void proto_add_fixed(struct json_object *o, const char *key, double v,
                     unsigned int decimals)
{
    static const int digits_[] = {6, 9, 12, 15, 17};
    double scale = pow(10, decimals);
    char buf[40];
    size_t i;

    if (!isfinite(v)) {
        proto_add(o, key, NULL);
        return;
    }
    v = round(v * scale) / scale;
    for (i = 0; i < sizeof(digits_) / sizeof(digits_[0]); i++) {
        snprintf(buf, sizeof(buf), "%.*g", digits_[i], v);
        if (strtod(buf, NULL) == v)
            break;
    }
    proto_add(o, key, json_object_new_double_s(v, buf));
}

void proto_add_sig(struct json_object *o, const char *key, double v, int digits)
{
    char buf[40];

    if (!isfinite(v)) {
        proto_add(o, key, NULL);
        return;
    }
    snprintf(buf, sizeof(buf), "%.*g", digits, v);
    proto_add(o, key, json_object_new_double_s(v, buf));
}

void proto_add_known(struct json_object *o, const char *key, double v,
                     unsigned int decimals)
{
    if (v < 0)
        proto_add(o, key, NULL);
    else
        proto_add_fixed(o, key, v, decimals);
}

void proto_add_count(struct json_object *o, const char *key, int64_t v)
{
    if (v < 0)
        proto_add(o, key, NULL);
    else
        proto_add_uint(o, key, (uint64_t)v);
}

void proto_append(struct json_object *a, struct json_object *v)
{
    if (!a || json_object_array_add(a, v) < 0)
        json_object_put(v);
}

/* ------------------------------------------------------------------ */
/* Reading. */

bool proto_has(struct json_object *o, const char *key, struct json_object **v_r)
{
    struct json_object *v = NULL;
    bool has = json_object_is_type(o, json_type_object) &&
               json_object_object_get_ex(o, key, &v);

    if (v_r)
        *v_r = v;
    return has;
}

struct json_object *proto_get(struct json_object *o, const char *key)
{
    struct json_object *v;

    return proto_has(o, key, &v) ? v : NULL;
}

const char *proto_str(struct json_object *o, const char *key)
{
    struct json_object *v = proto_get(o, key);

    return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                    : "";
}

long long proto_int(struct json_object *o, const char *key)
{
    struct json_object *v = proto_get(o, key);

    if (json_object_is_type(v, json_type_int))
        return (long long)json_object_get_int64(v);
    if (json_object_is_type(v, json_type_double))
        return (long long)json_object_get_double(v);
    return -1;
}

double proto_dbl(struct json_object *o, const char *key)
{
    struct json_object *v = proto_get(o, key);

    if (json_object_is_type(v, json_type_int) ||
        json_object_is_type(v, json_type_double))
        return json_object_get_double(v);
    return 0;
}

bool proto_bool(struct json_object *o, const char *key)
{
    struct json_object *v = proto_get(o, key);

    return json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v);
}

size_t proto_len(struct json_object *a)
{
    return json_object_is_type(a, json_type_array) ? json_object_array_length(a)
                                                   : 0;
}

struct json_object *proto_at(struct json_object *a, size_t i)
{
    return i < proto_len(a) ? json_object_array_get_idx(a, i) : NULL;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A small, strict JSON parser (RFC 8259) for the control protocol
 * (daemon/PROTOCOL.md §1).  xmigd parses requests with it under hard
 * limits, xmig parses the daemon's answers with it under none but the
 * line's length, and tests/fuzz/ fuzzes it.
 *
 * A document is parsed in one go; json_doc_free() releases every value
 * and every unescaped string of it.
 */
#ifndef XMIG_JSON_H
#define XMIG_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* What a request may hold (PROTOCOL.md §1). */
#define JSON_MAX_DEPTH 8
#define JSON_MAX_STRING 4096
#define JSON_MAX_MEMBERS 64
#define JSON_MAX_VALUES 256

struct json_limits {
    unsigned int depth;
    size_t string;  /* bytes, unescaped */
    size_t members; /* of one object or array */
    size_t values;  /* in the whole document */
};
/* The JSON_MAX_* above: for what clients send. */
extern const struct json_limits json_request_limits;
/*
 * For what xmigd sends: a reply may list hundreds of jobs or domains, so
 * only nesting is bounded (the stack); the rest is bounded by the line.
 */
extern const struct json_limits json_reply_limits;

enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_INT,    /* no fraction, no exponent, fits in long long */
    JSON_NUMBER, /* any other number; d holds it */
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

struct json_value {
    enum json_type type;
    bool b;
    long long i;
    double d;      /* JSON_INT and JSON_NUMBER */
    const char *s; /* JSON_STRING: NUL-terminated, no NUL inside */
    size_t len;
    const char *key; /* a member of an object: its name */
    size_t n;        /* JSON_ARRAY, JSON_OBJECT: members */
    struct json_value *first;
    struct json_value *next;
};

struct json_doc;

/*
 * Parses exactly one value (surrounding blanks allowed) from text[0..len)
 * within lim.  On failure returns NULL and writes a one-line reason to
 * err (if not NULL), e.g. "at byte 12: expected ':'".
 */
struct json_doc *json_parse_limits(const char *text, size_t len,
                                   const struct json_limits *lim, char *err,
                                   size_t errlen);
/* json_parse_limits() with json_request_limits. */
struct json_doc *json_parse(const char *text, size_t len, char *err,
                            size_t errlen);
void json_doc_free(struct json_doc *d); /* NULL-safe */
const struct json_value *json_root(const struct json_doc *d);
/* The member called key of an object; NULL if none or not an object. */
const struct json_value *json_get(const struct json_value *obj,
                                  const char *key);
const char *json_type_name(enum json_type t);
/*
 * The length of the UTF-8 sequence at s[0..avail): 1 to 4, or 0 if it is
 * not valid UTF-8 (truncated, overlong, a surrogate, beyond U+10FFFF).
 */
size_t json_utf8_len(const unsigned char *s, size_t avail);
/* The valid n-byte sequence at s is a control character: C0, DEL or C1. */
bool json_utf8_control(const unsigned char *s, size_t n);
/* Two values are equal (numbers by value, objects in member order). */
bool json_equal(const struct json_value *a, const struct json_value *b);

#endif

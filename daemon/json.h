/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A small, strict JSON parser (RFC 8259) with hard limits, for the control
 * protocol (daemon/PROTOCOL.md §1).  xmigd parses requests with it, xmig
 * parses the daemon's answers, and tests/fuzz/ fuzzes it.
 *
 * A document is parsed in one go into one allocation that holds every
 * value and every unescaped string; json_doc_free() releases it all.
 */
#ifndef XMIG_JSON_H
#define XMIG_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 8
#define JSON_MAX_STRING 4096
#define JSON_MAX_MEMBERS 64
#define JSON_MAX_VALUES 256

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
 * Parses exactly one value (surrounding blanks allowed) from text[0..len).
 * On failure returns NULL and writes a one-line reason to err (if not
 * NULL), e.g. "at byte 12: expected ':'".
 */
struct json_doc *json_parse(const char *text, size_t len, char *err,
                            size_t errlen);
void json_doc_free(struct json_doc *d); /* NULL-safe */
const struct json_value *json_root(const struct json_doc *d);
/* The member called key of an object; NULL if none or not an object. */
const struct json_value *json_get(const struct json_value *obj,
                                  const char *key);
const char *json_type_name(enum json_type t);
/* Two values are equal (numbers by value, objects in member order). */
bool json_equal(const struct json_value *a, const struct json_value *b);

#endif

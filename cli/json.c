/* SPDX-License-Identifier: LGPL-2.1-only */
/* A streaming JSON writer: one document per line, for scripts. */
#include <math.h>
#include <stdio.h>

#include "xmig-cli.h"

void json_begin(struct json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    j->first = true;
}

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void key(struct json *j, const char *k)
{
    if (!j->first)
        fputc(',', j->f);
    j->first = false;
    if (k) {
        put_string(j->f, k);
        fputc(':', j->f);
    }
}

void json_open(struct json *j, const char *k, char bracket)
{
    key(j, k);
    fputc(bracket, j->f);
    j->depth++;
    j->first = true;
}

void json_close(struct json *j, char bracket)
{
    fputc(bracket, j->f);
    j->depth--;
    j->first = false;
}

void json_str(struct json *j, const char *k, const char *val)
{
    key(j, k);
    put_string(j->f, val);
}

void json_u64(struct json *j, const char *k, unsigned long long val)
{
    key(j, k);
    fprintf(j->f, "%llu", val);
}

void json_dbl(struct json *j, const char *k, double val)
{
    key(j, k);
    if (isfinite(val))
        fprintf(j->f, "%.6g", val);
    else
        fputs("null", j->f);
}

void json_bool(struct json *j, const char *k, bool val)
{
    key(j, k);
    fputs(val ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *k)
{
    key(j, k);
    fputs("null", j->f);
}

void json_end(struct json *j)
{
    fputc('\n', j->f);
    fflush(j->f);
}

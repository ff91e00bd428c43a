/* SPDX-License-Identifier: LGPL-2.1-only */
/* Internal interfaces of the xmig command-line tool. */
#ifndef XMIG_CLI_H
#define XMIG_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "xmig.h"

/* Exit codes, documented in xmig(1). */
#define EXIT_OK 0
#define EXIT_FAIL 1  /* the operation failed */
#define EXIT_USAGE 2 /* bad command line */

struct cmd_entry {
    const char *name;
    const char *usage;
    const char *help;
    int (*exec)(int argc, char **argv);
};

/* xmig.c */
extern bool cli_verbose;
void cli_log(void *arg, enum xmig_log_level level, const char *msg);
int cli_usage(const struct cmd_entry *e);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cmd-bench.c */
extern const struct cmd_entry cmd_bench_entry;

/* cmd-migrate.c */
extern const struct cmd_entry cmd_migrate_entry;
extern const struct cmd_entry cmd_save_entry;

/* json.c: just enough JSON to print results. */
struct json {
    FILE *f;
    int depth;
    bool first;
};
void json_begin(struct json *j, FILE *f);
void json_open(struct json *j, const char *key, char bracket);
void json_close(struct json *j, char bracket);
void json_str(struct json *j, const char *key, const char *val);
void json_u64(struct json *j, const char *key, unsigned long long val);
void json_dbl(struct json *j, const char *key, double val);
void json_null(struct json *j, const char *key);
void json_end(struct json *j);

#endif

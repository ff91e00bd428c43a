/* SPDX-License-Identifier: LGPL-2.1-only */
/* log.c: relayd's vocabulary; thread-safe, errno preserved. */
#ifndef XMIGD_LOG_H
#define XMIGD_LOG_H

#include "xmig.h"

enum log_target {
    LOG_TO_STDERR,  /* -f on a terminal: "xmigd: warning: ..." */
    LOG_TO_JOURNAL, /* stderr is journald's: "<4>..." prefixes */
    LOG_TO_SYSLOG,
};
void log_init(enum log_target target, enum xmig_log_level level);
void log_setlevel(enum xmig_log_level level);
enum xmig_log_level log_getlevel(void);
const char *log_level_name(enum xmig_log_level level);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_msg(enum xmig_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif

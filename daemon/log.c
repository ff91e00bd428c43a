/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Logging, in relayd's vocabulary: log_warn (with errno), log_warnx,
 * log_info, log_debug, fatal, fatalx.  Worker threads log too, so a line
 * is formatted first and written with a single call; errno survives.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"

static enum log_target target = LOG_TO_STDERR;
static enum xmig_log_level level = XMIG_LOG_INFO;

void log_init(enum log_target t, enum xmig_log_level l)
{
    target = t;
    level = l;
    if (t == LOG_TO_SYSLOG)
        openlog("xmigd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_setlevel(enum xmig_log_level l)
{
    level = l;
}

enum xmig_log_level log_getlevel(void)
{
    return level;
}

const char *log_level_name(enum xmig_log_level l)
{
    return opt_value_name(OPT_LOG_LEVEL, (int)l);
}

static void vlog(enum xmig_log_level l, const char *fmt, va_list ap,
                 const char *suffix)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char raw[1024], msg[1024], line[1100];
    int saved = errno, n;
    ssize_t r;

    if (l > level)
        return;
    vsnprintf(raw, sizeof(raw), fmt, ap);
    proto_escape(msg, sizeof(msg), raw);
    switch (target) {
    case LOG_TO_SYSLOG:
        syslog(prio[l], "%s%s", msg, suffix ? suffix : "");
        break;
    case LOG_TO_JOURNAL:
        n = snprintf(line, sizeof(line), "<%d>%s%s\n", prio[l], msg,
                     suffix ? suffix : "");
        goto write;
    case LOG_TO_STDERR:
        n = snprintf(line, sizeof(line), "xmigd: %s: %s%s\n", log_level_name(l),
                     msg, suffix ? suffix : "");
    write:
        if (n < 0)
            break;
        if ((size_t)n >= sizeof(line)) {
            n = sizeof(line) - 1;
            line[n - 1] = '\n';
        }
        r = write(STDERR_FILENO, line, (size_t)n);
        (void)r;
        break;
    }
    errno = saved;
}

void log_msg(enum xmig_log_level l, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(l, fmt, ap, NULL);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    char suffix[160];
    va_list ap;

    snprintf(suffix, sizeof(suffix), ": %s", strerror(errno));
    va_start(ap, fmt);
    vlog(XMIG_LOG_WARN, fmt, ap, suffix);
    va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(XMIG_LOG_WARN, fmt, ap, NULL);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(XMIG_LOG_INFO, fmt, ap, NULL);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(XMIG_LOG_DEBUG, fmt, ap, NULL);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    char suffix[160];
    va_list ap;

    snprintf(suffix, sizeof(suffix), ": %s", strerror(errno));
    va_start(ap, fmt);
    vlog(XMIG_LOG_ERROR, fmt, ap, suffix);
    va_end(ap);
    exit(1);
}

void fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(XMIG_LOG_ERROR, fmt, ap, NULL);
    va_end(ap);
    exit(1);
}

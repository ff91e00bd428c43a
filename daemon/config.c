/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * /etc/xmig/xmigd.conf: "key = value" lines, '#' comments; see
 * xmigd.conf(5).  A file that does not parse changes nothing: at start
 * xmigd refuses to run, on SIGHUP it keeps the configuration it has.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmigd.h"

void config_init(struct config *c)
{
    struct xmig_job_params d;

    /* The library's defaults, unless the file says otherwise. */
    xmig_job_params_default(&d);
    c->socket = NULL;
    c->group = NULL;
    c->max_jobs = 4;
    c->log_level = XMIG_LOG_INFO;
    c->engine = d.engine;
    c->arena = d.arena;
    c->policy = d.policy;
    c->ready_timeout_s = d.ready_timeout_s;
}

void config_dispose(struct config *c)
{
    if (!c)
        return;
    free(c->socket);
    free(c->group);
    config_init(c);
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s &&
           (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

static int number(const char *s, long min, long max, long *v)
{
    char *end;

    errno = 0;
    *v = strtol(s, &end, 10);
    return errno || end == s || *end || *v < min || *v > max ? -1 : 0;
}

static int boolean(const char *s, bool *v)
{
    if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1"))
        *v = true;
    else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0"))
        *v = false;
    else
        return -1;
    return 0;
}

/* One setting; NULL or the complaint. */
static const char *set(struct config *c, const char *k, const char *v)
{
    long n;

    if (!strcmp(k, "socket")) {
        if (v[0] != '/')
            return "expected an absolute path";
        free(c->socket);
        c->socket = strdup(v);
        return c->socket ? NULL : "out of memory";
    }
    if (!strcmp(k, "group")) {
        free(c->group);
        c->group = NULL;
        if (!*v)
            return NULL; /* root only */
        if (!getgrnam(v))
            return "no such group";
        c->group = strdup(v);
        return c->group ? NULL : "out of memory";
    }
    if (!strcmp(k, "max_jobs")) {
        if (number(v, 1, 64, &n) < 0)
            return "expected a number from 1 to 64";
        c->max_jobs = (unsigned int)n;
        return NULL;
    }
    if (!strcmp(k, "log_level"))
        return log_level_parse(v, &c->log_level) < 0
                   ? "expected error, warning, info or debug"
                   : NULL;
    if (!strcmp(k, "engine")) {
        if (!strcmp(v, "xmig"))
            c->engine = XMIG_ENGINE_XMIG;
        else if (!strcmp(v, "libxc"))
            c->engine = XMIG_ENGINE_LIBXC;
        else
            return "expected xmig or libxc";
        return NULL;
    }
    if (!strcmp(k, "strategy"))
        return xmig_strategy_parse(v, &c->arena.strategy) < 0
                   ? "expected per-batch, arena, kernel or exit"
                   : NULL;
    if (!strcmp(k, "downtime_ms")) {
        if (number(v, 0, 3600000, &n) < 0)
            return "expected milliseconds (0: off)";
        c->policy.downtime_ms = (unsigned int)n;
        return NULL;
    }
    if (!strcmp(k, "max_iters")) {
        if (number(v, 1, 1000, &n) < 0)
            return "expected a number from 1 to 1000";
        c->policy.max_iters = (unsigned int)n;
        return NULL;
    }
    if (!strcmp(k, "ready_timeout")) {
        if (number(v, 1, XMIG_READY_TIMEOUT_MAX, &n) < 0)
            return "expected seconds from 1 to 86400";
        c->ready_timeout_s = (unsigned int)n;
        return NULL;
    }
    if (!strcmp(k, "target_dirty")) {
        if (number(v, 0, 1L << 40, &n) < 0)
            return "expected a number of pages";
        c->policy.target_dirty = n;
        return NULL;
    }
    if (!strcmp(k, "abort_if_busy"))
        return boolean(v, &c->policy.abort_if_busy) < 0 ? "expected yes or no"
                                                        : NULL;
    if (!strcmp(k, "skip_redirtied"))
        return boolean(v, &c->policy.skip_redirtied) < 0 ? "expected yes or no"
                                                         : NULL;
    return "unknown setting";
}

int config_load(struct config *c, const char *path, bool missing_ok,
                char **err_r)
{
    struct config nc;
    char line[1024], *k, *v, *eq;
    const char *why;
    unsigned int lineno = 0;
    FILE *f;
    int rc = -1;

    *err_r = NULL;
    config_init(&nc);
    f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT && missing_ok) {
            rc = 0;
            goto done;
        }
        if (asprintf(err_r, "%s: %s", path, strerror(errno)) < 0)
            *err_r = NULL;
        goto out;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            if (asprintf(err_r, "%s:%u: line too long", path, lineno) < 0)
                *err_r = NULL;
            goto out;
        }
        k = trim(line);
        if (!*k || *k == '#')
            continue;
        eq = strchr(k, '=');
        if (!eq) {
            if (asprintf(err_r, "%s:%u: expected key = value", path, lineno) <
                0)
                *err_r = NULL;
            goto out;
        }
        *eq = 0;
        k = trim(k);
        v = trim(eq + 1);
        why = set(&nc, k, v);
        if (why) {
            if (asprintf(err_r, "%s:%u: %s: %s", path, lineno, k, why) < 0)
                *err_r = NULL;
            goto out;
        }
    }
    if (ferror(f)) {
        if (asprintf(err_r, "%s: read error", path) < 0)
            *err_r = NULL;
        goto out;
    }
    rc = 0;
done:
    config_dispose(c);
    *c = nc;
    config_init(&nc);
out:
    if (f)
        fclose(f);
    config_dispose(&nc);
    return rc;
}

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

#include "conf.h"

void config_init(struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_jobs = (unsigned int)opt_table[OPT_MAX_JOBS].def;
    c->log_level = (enum xmig_log_level)opt_table[OPT_LOG_LEVEL].def;
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

/* The option whose key k is, or OPT__COUNT. */
static enum opt_id find(const char *k)
{
    size_t id;

    for (id = 0; id < OPT__COUNT; id++)
        if (opt_table[id].conf && strcmp(opt_table[id].conf, k) == 0)
            break;
    return (enum opt_id)id;
}

/* One setting; NULL or the complaint (in why). */
static const char *set(struct config *c, const char *k, const char *v,
                       char *why, size_t size)
{
    enum opt_id id = find(k);
    struct opt_value val = {0};

    if (id == OPT__COUNT)
        return "unknown setting";
    if (opt_parse_conf(id, v, &val, why, size) < 0)
        return why;
    switch (id) {
    case OPT_SOCKET:
        if (v[0] != '/')
            return "expected an absolute path";
        free(c->socket);
        c->socket = strdup(v);
        return c->socket ? NULL : "out of memory";
    case OPT_GROUP:
        free(c->group);
        c->group = NULL;
        if (!*v)
            return NULL; /* root only */
        if (!getgrnam(v))
            return "no such group";
        c->group = strdup(v);
        return c->group ? NULL : "out of memory";
    case OPT_MAX_JOBS:
        c->max_jobs = (unsigned int)val.n;
        return NULL;
    case OPT_LOG_LEVEL:
        c->log_level = (enum xmig_log_level)val.n;
        return NULL;
    default:
        /* A job's setting (options-dump checks that it is a member). */
        c->jobs.v[id] = val;
        return NULL;
    }
}

int config_load(struct config *c, const char *path, bool missing_ok,
                char **err_r)
{
    struct config nc;
    char line[1024], *k, *v, *eq, reason[160];
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
        why = set(&nc, k, v, reason, sizeof(reason));
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

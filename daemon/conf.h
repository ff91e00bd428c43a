/* SPDX-License-Identifier: LGPL-2.1-only */
/* conf.c: /etc/xmig/xmigd.conf, key=value. */
#ifndef XMIGD_CONF_H
#define XMIGD_CONF_H

#include <stdbool.h>

#include "options.h"
#include "xmig.h"

#define XMIGD_DEFAULT_CONFIG "/etc/xmig/xmigd.conf"

struct config {
    char *socket;
    char *group; /* NULL: root only */
    unsigned int max_jobs;
    enum xmig_log_level log_level;
    /* The job settings the file gives: under each request's own. */
    struct opt_values jobs;
};
void config_init(struct config *c);
void config_dispose(struct config *c);
/* 0, or -1 with a malloc'd one-line reason in *err_r. */
int config_load(struct config *c, const char *path, bool missing_ok,
                char **err_r);

#endif

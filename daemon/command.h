/* SPDX-License-Identifier: LGPL-2.1-only */
/* command.c: one handler per request. */
#ifndef XMIGD_COMMAND_H
#define XMIGD_COMMAND_H

#include <stdbool.h>

struct config;
struct peer;
struct request;

/* What the handlers need of the daemon around them; set by xmigd.c. */
struct command_env {
    const struct config *conf; /* the configuration in use */
    bool (*stopping)(void);    /* SIGTERM seen: no new jobs */
    double (*uptime)(void);    /* seconds */
};

void command_init(const struct command_env *env);

/* The hello event of PROTOCOL.md §1, to a peer that has just connected. */
void command_greet(struct peer *p);
void command_dispatch(struct peer *p, struct request *rq);

#endif

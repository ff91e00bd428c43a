/* SPDX-License-Identifier: LGPL-2.1-only */
/* command.c: one handler per request. */
#ifndef XMIGD_COMMAND_H
#define XMIGD_COMMAND_H

struct peer;
struct request;

void command_dispatch(struct peer *p, struct request *rq);

#endif

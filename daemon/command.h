/* SPDX-License-Identifier: LGPL-2.1-only */
/* command.c: one handler per request. */
#ifndef XMIGD_COMMAND_H
#define XMIGD_COMMAND_H

struct peer;
struct request;

/* The hello event of PROTOCOL.md §1, to a peer that has just connected. */
void command_greet(struct peer *p);
void command_dispatch(struct peer *p, struct request *rq);

#endif

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmigd.c: the top, which wires the layers together.  The wire protocol is
 * daemon/PROTOCOL.md; proto/proto.h has its constants, each layer's header
 * the limits it enforces.
 */
#ifndef XMIGD_H
#define XMIGD_H

#include <stdbool.h>

#include "conf.h"

extern struct config xmigd_conf;
extern const char *xmigd_journal_dir; /* -J, else XMIG_JOURNAL_DIR */
bool xmigd_stopping(void);
double xmigd_uptime(void);
void xmigd_status_changed(void);

#endif

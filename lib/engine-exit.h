/* SPDX-License-Identifier: LGPL-2.1-only */
/* Strategy exit's worker, as the save loop sees it. */
#ifndef XMIG_ENGINE_EXIT_H
#define XMIG_ENGINE_EXIT_H

#include "engine-core.h"

/*
 * engine-exit.c: strategy exit.  open: the memory shared with the worker
 * (forked at the first batch).  send: one PAGE_DATA record of n pfns, the
 * nd with data at idx[] (types[] may turn XTAB: a PV page table deferred),
 * which the worker may still be writing when it returns.  settle: waits
 * for that record and reports how it went; the job calls it before it
 * writes to the stream itself and at the end of each pass.
 * quit: the worker starts exiting, unmapping everything.  close: waits
 * for that, frees, adds its counters to sum; NULL-safe; -1 if the worker
 * had died by itself.
 */
int xmig__wk_open(struct engine *e);
int xmig__wk_send(struct engine *e, const xmig_pfn_t *pfns, unsigned int n,
                  const xmig_pfn_t *frames, xmig_pfn_t *types,
                  const unsigned int *idx, unsigned int nd,
                  const uint64_t *zero, bool whole);
int xmig__wk_settle(struct engine *e);
void xmig__wk_quit(struct wk *w);
int xmig__wk_close(struct wk *w, struct xmig_arena_stats *sum);

#endif

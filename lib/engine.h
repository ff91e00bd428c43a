/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig's own page engine: the libxc migration stream v3 that a stock Xen
 * 4.17 receiver reads, with every page going through the mapping arena.
 * engine.c has the save loop; what the guest types differ in is in
 * engine-pv.c and engine-hvm.c, behind struct engine_ops; strategy exit's
 * worker in engine-exit.c; what they all share in engine-core.c.
 */
#ifndef XMIG_ENGINE_H
#define XMIG_ENGINE_H

#include "engine-core.h"
#include "engine-exit.h"
#include "stream.h"

/* How stale the picture of pages dirtied again during a pass may get. */
#define ENGINE_PEEK_NS (200 * 1000000ULL)

/* pfns of a 2 MiB superpage, which receivers since Xen 4.21 rebuild. */
#define ENGINE_SUPERPAGE 512

/* engine.c */
/*
 * The process's budget of windows kept across passes (a VMA each):
 * reserve returns how many of want it grants, possibly 0.
 */
unsigned int xmig__kept_reserve(size_t want);
void xmig__kept_release(unsigned int n);

#endif

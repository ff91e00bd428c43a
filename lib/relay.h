/* SPDX-License-Identifier: LGPL-2.1-only */
#ifndef XMIG_RELAY_H
#define XMIG_RELAY_H

#include <pthread.h>

#include "private.h"

/*
 * Sinks that pin user pages (9p, FUSE direct I/O) refuse writes straight
 * from foreign mappings with EFAULT.  libxenguest cannot recover from
 * that, so for it such files go through a pipe and this thread, which
 * copies.  xmig's own engine falls back to copying by itself, and on a
 * filesystem that copies anyway the relay would only add two copies and a
 * context switch per 64 KiB (save took 1.4x as long through it).
 */
struct relay {
    xmig_xen *x;
    int in;
    int out;
    int err;
    uint64_t bytes;
    pthread_t thread;
};

int xmig__relay_start(xmig_xen *x, struct relay *rl, int out, int *wfd_r);
/* Closes the engine's end and waits: 0 if everything reached the file. */
int xmig__relay_finish(xmig_xen *x, struct relay *rl, int wfd);

#endif

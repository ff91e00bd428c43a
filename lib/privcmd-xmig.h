/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * The privcmd batched unmap added by kernel-patch/ (see its uapi header,
 * from which this copy is taken).  A stock kernel answers ENOTTY.
 */
#ifndef XMIG_PRIVCMD_XMIG_H
#define XMIG_PRIVCMD_XMIG_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct privcmd_unmap_range {
    __u64 addr; /* page aligned, inside one privcmd mapping */
    __u64 num;  /* pages; 0 probes for the ioctl */
};

/* Far from upstream's numbers ('P' 0..11 are used or proposed). */
#define IOCTL_PRIVCMD_UNMAP_RANGE                                              \
    _IOC(_IOC_NONE, 'P', 0xe0, sizeof(struct privcmd_unmap_range))

#endif

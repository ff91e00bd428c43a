/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * The privcmd batched unmap added by kernel-patch/ (patch 0004 adds the same
 * definitions to include/uapi/xen/privcmd.h).  lib/xen.c uses this file.
 *
 * IOCTL_PRIVCMD_UNMAP_RANGE clears every PTE of [addr, addr + num pages),
 * which must lie inside one privcmd mapping, with batched hypercalls and one
 * TLB flush, and keeps the mapping: IOCTL_PRIVCMD_MMAPBATCH_V2 can then fill
 * any sub-range again.  Returns 0; num == 0 only probes.  Errors: EINVAL (not
 * page aligned, not inside one privcmd mapping), EFAULT, EINTR (fatal signal
 * while waiting for the mmap lock), EOPNOTSUPP (auto-translated dom0, e.g.
 * PVH: munmap instead).  A kernel without the patch answers ENOTTY.
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
#define IOCTL_PRIVCMD_UNMAP_RANGE \
	_IOC(_IOC_NONE, 'P', 0xe0, sizeof(struct privcmd_unmap_range))

#endif

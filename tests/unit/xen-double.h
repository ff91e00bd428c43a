/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A test double of Xen behind libxmig's ops table: guests whose frames hold
 * known contents, holes, PV p2m trees, injectable failures, and an exact
 * account of what is mapped.  Unit tests only: it proves nothing about Xen.
 */
#ifndef XMIG_XEN_DOUBLE_H
#define XMIG_XEN_DOUBLE_H

#include "private.h"

#define DBL_XTAB (0xfU << 28)
#define DBL_L4PIN (0xcU << 28) /* L4TAB | LPINTAB */

struct dbl_config {
    enum xmig_domtype type;
    uint32_t domid;
    size_t nr_pfns;      /* guest pfns 0 .. nr_pfns-1 */
    const size_t *holes; /* pfns with no memory */
    size_t nr_holes;
    bool zap;           /* kernel has the batched unmap */
    bool pagetables;    /* PV: pfn 1 is a pinned L4 */
    uint64_t max_pages; /* xl's maxmem; 0: nr_pfns */
    uint64_t max_pfn;   /* PV: what shared info claims; 0: nr_pfns */
    bool perfc;         /* Xen has software counters */
    /* Pages the domain owns that no pfn maps (Xen counts them all the
       same: an HVM guest's ioreq pages while a server is active). */
    uint64_t extra_pages;
};

/*
 * The double's dom0 CPU clock, as Xen would account it: every frame
 * mapped costs DBL_CPU_NS_PER_MAP, every trapped PTE write when a page is
 * unmapped DBL_CPU_NS_PER_TRAP.  Nothing else moves it.
 */
#define DBL_CPU_NS_PER_MAP 1000
#define DBL_CPU_NS_PER_TRAP 300

struct dbl_stats {
    size_t live_pages; /* mapped now */
    uint64_t map_calls, map_at_calls, refill_calls, unmap_calls, reclaim_calls,
        zap_calls, type_calls, peek_calls;
    uint64_t hole_maps;    /* frames mapped that had no memory */
    uint64_t worker_pages; /* frames mapped by other processes */
    uint64_t worker_maps;  /* their map calls */
    int worker_fds;        /* most descriptors above 2 one of them held */
    size_t max_vmas;       /* most mappings alive at once */
    uint64_t vma_refusals;
    uint64_t hbuf_allocs; /* hypercall buffers allocated, any size */
    size_t hbuf_pages;    /* ... and their pages alive now */
    /*
     * What the double's Xen counts (perfc_reset zeroes traps and
     * hypercalls): a trap per page unmapped other than by zap; a
     * hypercall per map, page type query, zap, CLEAN and PEEK.
     */
    uint64_t dom0_cpu_ns, traps, hypercalls;
};

/* What toolstack operations did to the guest. */
struct dbl_guest {
    char name[64];
    bool suspended;
    bool destroyed;
    bool logdirty;
    bool paused;
    bool refuse_suspend;
    bool refuse_rename_back; /* from NAME--migratedaway */
    bool refuse_destroy;
    bool refuse_resume;
    uint8_t uuid[16];
    unsigned int suspends;
    unsigned int resumes;
    unsigned int cleans;
    /* HVM: its device model (QEMU), as libxl and QMP would see it */
    bool dm_stubdom;      /* dm_check refuses it */
    bool dm_refuse_state; /* dm_state fails */
    bool dm_no_physmap;   /* QEMU keeps no physmap keys in xenstore */
    bool dm_logdirty;     /* QEMU logs its writes now */
    bool dm_logdirty_at_suspend;
    unsigned int dm_logdirty_calls;
    bool dm_saved; /* the suspend left QEMU's state in its file */
    unsigned int dm_states, dm_discards;
    unsigned int dm_releases; /* QEMU let go of its disks (migration) */
};

/* What dm_state hands out: QEMU's state and its physmap keys. */
#define DBL_DM_STATE "QEVM\0\0\0\3 device state"
#define DBL_DM_XS "physmap/f0000000/start_addr\0f0000000\0"

xmig_xen *dbl_open(const struct dbl_config *c);
struct dbl_guest *dbl_guest(xmig_xen *x);
/* The byte a frame's pages are filled with, besides its number. */
uint64_t dbl_frame_word(xmig_pfn_t frame);
/* Frame that a pfn lives in (PV: a scrambled mfn; else the pfn). */
xmig_pfn_t dbl_pfn_to_frame(xmig_xen *x, xmig_pfn_t pfn);
void dbl_fail_frame(xmig_xen *x, xmig_pfn_t frame, int errnum);
void dbl_fail_next_map(xmig_xen *x, int errnum);
/* The call-th page type query (counting from 1) fails with EIO. */
void dbl_fail_types_at(xmig_xen *x, uint64_t call);
/* The domain dies (as a crash would end it) at that page type query. */
void dbl_kill_types_at(xmig_xen *x, uint64_t call);
/* At most n mappings alive at once (vm.max_map_count); 0: no limit. */
void dbl_set_vma_limit(xmig_xen *x, size_t n);
/* After n more new mappings, the next one fails once with ENOMEM. */
void dbl_fail_map_after(xmig_xen *x, unsigned int n);
void dbl_set_reclaim_delay_us(xmig_xen *x, unsigned int us);
/*
 * The next map made in a process other than the test's kills it (SIGKILL),
 * as the OOM killer might kill an exit strategy's worker.  heir_ms > 0:
 * it first forks a child that holds its descriptors for that long.
 */
void dbl_kill_mapper(xmig_xen *x, unsigned int heir_ms);
/* The same, for the map after the next skip ones in other processes. */
void dbl_kill_mapper_after(xmig_xen *x, unsigned int heir_ms,
                           unsigned int skip);
void dbl_kill_domain(xmig_xen *x);
/*
 * The toolstack starts destroying the domain: every map fails with EBUSY
 * (its memory is being relinquished) while it still looks alive.  Its
 * xenstore entries are gone unless keep_name; Xen says it is dying after
 * polls more domain_info calls (0: not before the test ends).
 */
void dbl_destroy_begin(xmig_xen *x, bool keep_name, unsigned int polls);
/* The guest balloons pfn out (it becomes a hole) at the first CLEAN. */
void dbl_balloon_at_clean(xmig_xen *x, xmig_pfn_t pfn);
/* A hole gets a page at the first CLEAN, which does not mark it dirty. */
void dbl_populate_at_clean(xmig_xen *x, xmig_pfn_t pfn);
void dbl_get_stats(xmig_xen *x, struct dbl_stats *s);
/* How often the guest wrote pfn (word 1 of its page says the same). */
uint32_t dbl_pfn_gen(xmig_xen *x, xmig_pfn_t pfn);

#endif

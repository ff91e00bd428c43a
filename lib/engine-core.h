/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * What every part of xmig's engine shares: the stream's record format,
 * the state of a job (struct engine), the guest type's ops, the bitmaps
 * and writing records.  engine.c, the save loop, stands on it, and so do
 * the parts it calls: engine-pv.c, engine-hvm.c and engine-exit.c.
 */
#ifndef XMIG_ENGINE_CORE_H
#define XMIG_ENGINE_CORE_H

#include <string.h>
#include <sys/uio.h>

#include "private.h"

/* The copying fallback's buffer: one write per 64 pages, not per page. */
#define ENGINE_BOUNCE (64 * XMIG_PAGE_SIZE)

/* libxc stream v3 record types (xg_sr_stream_format.h). */
#define REC_END 0x00
#define REC_PAGE_DATA 0x01
#define REC_X86_PV_INFO 0x02
#define REC_X86_PV_P2M_FRAMES 0x03
#define REC_X86_PV_VCPU_BASIC 0x04
#define REC_X86_PV_VCPU_EXTENDED 0x05
#define REC_X86_PV_VCPU_XSAVE 0x06
#define REC_SHARED_INFO 0x07
#define REC_X86_TSC_INFO 0x08
#define REC_HVM_CONTEXT 0x09
#define REC_HVM_PARAMS 0x0a
#define REC_X86_PV_VCPU_MSRS 0x0c
#define REC_STATIC_DATA_END 0x10
#define REC_X86_CPUID_POLICY 0x11
#define REC_X86_MSR_POLICY 0x12

#define DHDR_TYPE_X86_PV 1
#define DHDR_TYPE_X86_HVM 2

/* XEN_DOMCTL_PFINFO_* */
#define PFINFO_NOTAB 0U
#define PFINFO_LTAB_MASK (0xfU << 28)
#define PFINFO_LTABTYPE_MASK (0x7U << 28)
#define PFINFO_L1TAB (0x1U << 28)
#define PFINFO_L4TAB (0x4U << 28)
#define PFINFO_BROKEN (0xdU << 28)
#define PFINFO_XALLOC (0xeU << 28)
#define PFINFO_XTAB (0xfU << 28)

/* A PV mapping kept from an earlier pass, valid while p2m[pfn] == mfn. */
struct reuse {
    const void *page;
    xmig_pfn_t mfn;
};

/* The same in the exit worker's address space: page off of worker gen. */
struct wk_reuse {
    xmig_pfn_t mfn;
    uint32_t off;
    uint32_t gen; /* 0: none */
};

struct wk; /* strategy exit: the worker that maps and writes (engine-exit.c) */
struct engine;

/*
 * What differs between PV and HVM/PVH, as libxenguest's struct
 * xc_sr_save_ops (xg_sr_common.h): the generic loop of engine.c calls
 * these at the same points stock calls its own.
 */
struct engine_ops {
    uint32_t dhdr_type; /* DHDR_TYPE_* of the domain header */
    /*
     * Mappings may be kept across passes: a pfn keeps its frame until the
     * p2m says otherwise (engine.c, send_batch, says why only PV).
     */
    bool keep_maps;
    /*
     * The pfn space is mostly holes (PVH/HVM: the specials sit below
     * 4 GiB, whatever the memory): the first pass looks for pages from
     * both ends and stops once it has found all Xen counts (engine.c,
     * sweep_ends).
     */
    bool sparse;
    /* Fills in p2m_size, and whatever else the guest type keeps. */
    int (*setup)(struct engine *e);
    /* Records before the CPU policy and STATIC_DATA_END. */
    int (*static_data)(struct engine *e);
    /* Records after STATIC_DATA_END, before the first PAGE_DATA. */
    int (*start_of_stream)(struct engine *e);
    /* Before each pass: the guest's layout may have changed since. */
    int (*check_vm_state)(struct engine *e);
    /* The frame to map for pfn; XMIG_INVALID_FRAME: none. */
    xmig_pfn_t (*pfn_to_frame)(const struct engine *e, xmig_pfn_t pfn);
    /*
     * A page table, with frames rewritten as pfns; NULL: the guest's pages
     * go as they are.  -1 with EAGAIN: caught mid-update, try again later.
     */
    int (*normalise_page)(struct engine *e, const void *src, void *dst,
                          uint32_t type);
    /* The records after the last PAGE_DATA, before END. */
    int (*end_of_checkpoint)(struct engine *e);
    /* NULL-safe on an engine whose setup failed or never ran. */
    void (*cleanup)(struct engine *e);
};

extern const struct engine_ops xmig__engine_ops_pv;
extern const struct engine_ops xmig__engine_ops_hvm;

struct engine {
    const struct engine_ops *ops;
    xmig_xen *x;
    uint32_t domid;
    struct xmig_dominfo info;
    int fd;
    bool live;
    const struct xmig__save_hooks *hooks;
    struct xmig_engine_stats *st;
    struct xmig_arena_params ap;

    xmig_arena *arena; /* batches used once */
    xmig_arena *keep;  /* PV: windows kept across passes */
    struct wk *wk;     /* strategy exit: instead of both */
    size_t p2m_size;   /* pfns the dirty bitmap covers */
    uint64_t *dirty;
    uint64_t *deferred;
    size_t nr_deferred;
    uint64_t *redirtied; /* live passes: dirty again since the last CLEAN */
    uint64_t peek_ns;    /* when redirtied was read */
    uint64_t hcall0;     /* the handle's hcall_buffers when the job began */
    /* Sent as XALLOC (allocated, no data) and not sent with data since. */
    uint64_t *owed;
    bool suspended;
    bool logdirty;
    bool dm_logdirty; /* QEMU told to log its writes */
    bool copy_writes; /* the sink refused writes from foreign pages */
    /* Strategy exit: the worker is writing a record the job has not seen
       the end of (engine-exit.c, "Overlap"); the stream is its alone. */
    bool wk_busy;
    uint8_t *bounce;

    /* ops->sparse: gfns found holding data, in any pass, and how many. */
    uint64_t *seen;
    uint64_t nseen;
    uint64_t final_data;   /* ... of those asked about once suspended */
    size_t gap_lo, gap_hi; /* the first pass left these out */

    /* PV */
    xmig_pfn_t *p2m;
    size_t p2m_nr;
    xmig_pfn_t *p2m_leaves;
    uint64_t p2m_gen;
    /* Kept mapped from setup to cleanup: engine-pv.c, p2m_keep. */
    const struct shared_info *shinfo;
    void **p2m_maps; /* the leaves, XMIG_MAX_BATCH to a mapping */
    size_t p2m_nmaps;
    const uint64_t *m2p;
    uint64_t m2p_nr;
    struct reuse *cache;
    struct wk_reuse *wcache; /* strategy exit, PV live */
    xmig_window **kept;      /* windows of keep, given back at the end */
    size_t nkept;
    bool cache_full; /* keeping has ended: map the rest per batch */
    uint8_t (*ptbuf)[XMIG_PAGE_SIZE]; /* normalised page tables of a batch */
};

static inline bool bit_test(const uint64_t *bm, size_t i)
{
    return (bm[i / 64] >> (i % 64)) & 1;
}

static inline void bit_set(uint64_t *bm, size_t i)
{
    bm[i / 64] |= 1ULL << (i % 64);
}

static inline void bit_clear(uint64_t *bm, size_t i)
{
    bm[i / 64] &= ~(1ULL << (i % 64));
}

static inline bool is_pagetable(uint32_t t)
{
    t &= PFINFO_LTABTYPE_MASK;
    return t >= PFINFO_L1TAB && t <= PFINFO_L4TAB;
}

/* Copy the head of iov into bounce (ENGINE_BOUNCE bytes), as much as fits. */
static inline size_t engine_gather(uint8_t *bounce, const struct iovec *iov,
                                   int cnt)
{
    size_t len = 0;

    for (; cnt > 0 && len < ENGINE_BOUNCE; iov++, cnt--) {
        size_t n = iov->iov_len;

        if (n > ENGINE_BOUNCE - len)
            n = ENGINE_BOUNCE - len;
        memcpy(bounce + len, iov->iov_base, n);
        len += n;
    }
    return len;
}

/* Step over r bytes written from the head of *iov, and empty entries. */
static inline void engine_advance(struct iovec **iov, int *cnt, size_t r)
{
    while (r > 0 && *cnt > 0) {
        if (r >= (*iov)[0].iov_len) {
            r -= (*iov)[0].iov_len;
            (*iov)++;
            (*cnt)--;
        } else {
            (*iov)[0].iov_base = (uint8_t *)(*iov)[0].iov_base + r;
            (*iov)[0].iov_len -= r;
            r = 0;
        }
    }
    while (*cnt > 0 && (*iov)[0].iov_len == 0) {
        (*iov)++;
        (*cnt)--;
    }
}

/* engine-core.c */
int xmig__engine_write(struct engine *e, struct iovec *iov, int cnt);
uint32_t xmig__engine_defer(struct engine *e, xmig_pfn_t pfn, bool whole);
int xmig__engine_record(struct engine *e, uint32_t type, const void *body,
                        size_t len);
int xmig__engine_record2(struct engine *e, uint32_t type, const void *hdr,
                         size_t hlen, const void *body, size_t blen);

#endif

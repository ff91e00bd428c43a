/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The PV half of xmig's engine: X86_PV_INFO, X86_PV_P2M_FRAMES, page
 * tables with pfns instead of mfns, SHARED_INFO and the vCPU records.
 * Only 64-bit PV guests: 32-bit ones are refused at setup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>
#include <xen/xen.h>

#include "engine-core.h"

#define ENTRIES (XMIG_PAGE_SIZE / 8)
#define PTE_PRESENT 0x1ULL
#define PTE_PSE 0x80ULL
#define PTE_FRAME_MASK 0x000ffffffffff000ULL
/* L4 slots Xen owns in a 64-bit PV guest (0xffff800000000000 ...). */
#define XEN_L4_FIRST 256
#define XEN_L4_LAST 271

_Static_assert(sizeof(struct vcpu_guest_context) == 5168,
               "64-bit PV vcpu context is 5168 bytes in the stream");

static bool in_pseudophysmap(const struct engine *e, xmig_pfn_t mfn)
{
    xmig_pfn_t pfn;

    if (mfn >= e->m2p_nr)
        return false;
    pfn = e->m2p[mfn];
    return pfn < e->p2m_nr && e->p2m[pfn] == mfn;
}

static int bad_mfn(struct engine *e, const char *what, xmig_pfn_t mfn)
{
    xmig__seterr(e->x, ERANGE,
                 "domain %u: %s refers to machine frame %#llx, "
                 "which is not the guest's",
                 e->domid, what, (unsigned long long)mfn);
    return -1;
}

static int p2m_keep(struct engine *e);

static int pv_setup(struct engine *e)
{
    xmig_pfn_t *p2m;

    if (e->info.guest_width != 8) {
        xmig__seterr(e->x, EOPNOTSUPP,
                     "domain %u is a 32-bit PV guest: not supported", e->domid);
        return -1;
    }
    if (e->x->ops->m2p_map(e->x, &e->m2p, &e->m2p_nr) < 0)
        return -1;
    if (xmig__p2m_read(e->x, &e->info, &e->p2m, &e->p2m_nr, &e->p2m_leaves,
                       &e->p2m_gen) < 0)
        return -1;
    e->p2m_size = e->p2m_nr;
    /* Rewritten every pass while an exit worker lives: core.c says why. */
    p2m = xmig__nofork_alloc(e->p2m_nr * sizeof(*p2m));
    if (!p2m) {
        free(e->p2m);
        e->p2m = NULL; /* cleanup frees what nofork_alloc gave */
        xmig__seterr(e->x, ENOMEM, "out of memory for a p2m of %zu entries",
                     e->p2m_nr);
        return -1;
    }
    memcpy(p2m, e->p2m, e->p2m_nr * sizeof(*p2m));
    free(e->p2m);
    e->p2m = p2m;
    return p2m_keep(e);
}

/*
 * The p2m's leaves and the shared info page stay mapped from setup to
 * cleanup.  Reading the p2m afresh before each pass mapped and unmapped
 * them again (65 pages of a 128 MiB guest, 4 more for the walk), a trapped
 * PTE write a page in a PV dom0, every pass.  A kept mapping shows what a
 * new one would: the guest moves its leaves only together with a new
 * p2m_generation, which fails the refresh as before; and the leaves are
 * what our X86_PV_P2M_FRAMES record told the receiver, which a move would
 * make wrong anyway.  A leaf the guest gave back stays referenced by the
 * mapping, never reused under us.
 */
static int p2m_keep(struct engine *e)
{
    size_t nleaves = (e->p2m_nr - 1) / ENTRIES + 1, done, i;
    xmig_xen *x = e->x;
    int err[XMIG_MAX_BATCH];
    xmig_pfn_t sif = e->info.shared_info_frame;

    e->shinfo = x->ops->map(x, e->domid, 1, &sif, err);
    if (!e->shinfo || err[0]) {
        xmig__seterr(x, e->shinfo ? err[0] : errno,
                     "cannot map the shared info of domain %u", e->domid);
        return -1;
    }
    e->p2m_maps = calloc((nleaves - 1) / XMIG_MAX_BATCH + 1, sizeof(void *));
    if (!e->p2m_maps) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return -1;
    }
    for (done = 0; done < nleaves; done += XMIG_MAX_BATCH) {
        unsigned int n = nleaves - done > XMIG_MAX_BATCH
                             ? XMIG_MAX_BATCH
                             : (unsigned int)(nleaves - done);
        void *p = x->ops->map(x, e->domid, n, e->p2m_leaves + done, err);

        if (!p) {
            xmig__seterr(x, errno, "cannot map the p2m of domain %u", e->domid);
            return -1;
        }
        e->p2m_maps[e->p2m_nmaps++] = p;
        for (i = 0; i < n; i++) {
            if (err[i]) {
                xmig__seterr(
                    x, err[i], "cannot map p2m frame %#llx of domain %u",
                    (unsigned long long)e->p2m_leaves[done + i], e->domid);
                return -1;
            }
        }
    }
    return 0;
}

/* The p2m again, before each pass: pfns may have moved to other mfns. */
static int pv_refresh(struct engine *e)
{
    const volatile struct arch_shared_info *arch = &e->shinfo->arch;
    size_t per = (size_t)XMIG_MAX_BATCH * ENTRIES, i;

    if (arch->max_pfn != e->p2m_nr ||
        (arch->p2m_cr3 ? arch->p2m_generation : 0) != e->p2m_gen) {
        /* Our X86_PV_P2M_FRAMES would no longer describe it. */
        xmig__seterr(e->x, EAGAIN,
                     "domain %u changed its p2m during the "
                     "migration: aborted",
                     e->domid);
        return -1;
    }
    for (i = 0; i < e->p2m_nmaps; i++) {
        size_t first = i * per,
               n = e->p2m_nr - first < per ? e->p2m_nr - first : per;

        memcpy(e->p2m + first, e->p2m_maps[i], n * sizeof(*e->p2m));
    }
    return 0;
}

static int pv_static(struct engine *e)
{
    const uint8_t info[8] = {8 /* guest width */, 4 /* levels */};

    return xmig__engine_record(e, REC_X86_PV_INFO, info, sizeof(info));
}

/* Which pfns hold the p2m itself: the receiver rewrites them. */
static int pv_start(struct engine *e)
{
    size_t n = (e->p2m_nr - 1) / ENTRIES + 1, i;
    uint32_t hdr[2] = {0, (uint32_t)(e->p2m_nr - 1)};
    uint64_t *pfns = malloc(n * sizeof(*pfns));
    int rc = -1;

    if (!pfns) {
        xmig__seterr(e->x, ENOMEM, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!in_pseudophysmap(e, e->p2m_leaves[i])) {
            bad_mfn(e, "the p2m", e->p2m_leaves[i]);
            goto out;
        }
        pfns[i] = e->m2p[e->p2m_leaves[i]];
    }
    rc = xmig__engine_record2(e, REC_X86_PV_P2M_FRAMES, hdr, sizeof(hdr), pfns,
                              n * sizeof(*pfns));
out:
    free(pfns);
    return rc;
}

static xmig_pfn_t pv_frame(const struct engine *e, xmig_pfn_t pfn)
{
    xmig_pfn_t f = pfn < e->p2m_nr ? e->p2m[pfn] : XMIG_INVALID_FRAME;

    /* Ballooned out, or Linux's identity/foreign markers. */
    if (f >> 62)
        f = XMIG_INVALID_FRAME;
    return f;
}

static int pv_normalise(struct engine *e, const void *src, void *dst,
                        uint32_t type)
{
    const uint64_t *s = src;
    uint64_t *d = dst;
    unsigned int i;

    type &= PFINFO_LTABTYPE_MASK;
    for (i = 0; i < ENTRIES; i++) {
        uint64_t pte = s[i];
        xmig_pfn_t mfn;

        /* Xen's own slots: the receiver's Xen fills them in again. */
        if (type == PFINFO_L4TAB && i >= XEN_L4_FIRST && i <= XEN_L4_LAST)
            pte = 0;
        if (pte & PTE_PRESENT) {
            if (type > PFINFO_L1TAB && (pte & PTE_PSE)) {
                xmig__seterr(e->x, E2BIG,
                             "domain %u uses a superpage: PV "
                             "superpages cannot be migrated",
                             e->domid);
                return -1;
            }
            mfn = (pte & PTE_FRAME_MASK) >> XMIG_PAGE_SHIFT;
            if (!in_pseudophysmap(e, mfn)) {
                /* Live, a page table may be mid-update: try again later. */
                if (!e->suspended) {
                    errno = EAGAIN;
                    return -1;
                }
                return bad_mfn(e, "a page table", mfn);
            }
            pte = (pte & ~PTE_FRAME_MASK) | (e->m2p[mfn] << XMIG_PAGE_SHIFT);
        }
        d[i] = pte;
    }
    return 0;
}

static int to_pfn(struct engine *e, uint64_t *mfn, const char *what)
{
    if (!in_pseudophysmap(e, *mfn))
        return bad_mfn(e, what, *mfn);
    *mfn = e->m2p[*mfn];
    return 0;
}

static int write_vcpu(struct engine *e, unsigned int id)
{
    static const unsigned int blobs[] = {
        REC_X86_PV_VCPU_EXTENDED,
        REC_X86_PV_VCPU_XSAVE,
        REC_X86_PV_VCPU_MSRS,
    };
    struct vcpu_guest_context c;
    uint32_t hdr[2] = {id, 0};
    unsigned int i, gdt;
    uint64_t mfn;

    if (e->x->ops->pv_vcpu_context(e->x, e->domid, id, &c, sizeof(c)) < 0)
        return -1;
    /* vcpu0's edx: the start_info frame the suspend hypercall passed. */
    if (id == 0 && to_pfn(e, &c.user_regs.rdx, "the start_info") < 0)
        return -1;
    if (c.gdt_ents > FIRST_RESERVED_GDT_ENTRY) {
        xmig__seterr(e->x, ERANGE, "vcpu%u: GDT of %lu entries", id,
                     (unsigned long)c.gdt_ents);
        return -1;
    }
    gdt = (unsigned int)((c.gdt_ents + 511) / 512);
    for (i = 0; i < gdt; i++)
        if (to_pfn(e, (uint64_t *)&c.gdt_frames[i], "a GDT frame") < 0)
            return -1;
    mfn = c.ctrlreg[3] >> XMIG_PAGE_SHIFT;
    if (to_pfn(e, &mfn, "cr3") < 0)
        return -1;
    c.ctrlreg[3] = mfn << XMIG_PAGE_SHIFT;
    /* The user page table; bit 0 says it is present. */
    if (c.ctrlreg[1]) {
        mfn = c.ctrlreg[1] >> XMIG_PAGE_SHIFT;
        if (to_pfn(e, &mfn, "cr1") < 0)
            return -1;
        c.ctrlreg[1] = 1 | (mfn << XMIG_PAGE_SHIFT);
    }
    if (xmig__engine_record2(e, REC_X86_PV_VCPU_BASIC, hdr, sizeof(hdr), &c,
                             sizeof(c)) < 0)
        return -1;
    for (i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++) {
        void *blob = NULL;
        size_t len = 0;
        int rc;

        if (e->x->ops->pv_vcpu_blob(e->x, e->domid, id, blobs[i], &blob, &len) <
            0)
            return -1;
        /* Empty state: no record, as libxenguest does. */
        rc =
            len ? xmig__engine_record2(e, blobs[i], hdr, sizeof(hdr), blob, len)
                : 0;
        free(blob);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int pv_end(struct engine *e)
{
    uint8_t tsc[24];
    xmig_pfn_t f = e->info.shared_info_frame;
    int err = 0;
    const void *shinfo;
    unsigned int i;
    bool online;
    int rc;

    if (e->x->ops->tsc_info(e->x, e->domid, tsc) < 0 ||
        xmig__engine_record(e, REC_X86_TSC_INFO, tsc, sizeof(tsc)) < 0)
        return -1;
    shinfo = e->x->ops->map(e->x, e->domid, 1, &f, &err);
    if (!shinfo || err) {
        xmig__seterr(e->x, err ? err : errno,
                     "cannot map domain %u's shared "
                     "info",
                     e->domid);
        if (shinfo)
            e->x->ops->unmap(e->x, (void *)shinfo, 1);
        return -1;
    }
    rc = xmig__engine_record(e, REC_SHARED_INFO, shinfo, XMIG_PAGE_SIZE);
    e->x->ops->unmap(e->x, (void *)shinfo, 1);
    if (rc < 0)
        return -1;
    for (i = 0; i <= e->info.max_vcpu_id; i++) {
        if (e->x->ops->vcpu_online(e->x, e->domid, i, &online) < 0)
            return -1;
        if (online && write_vcpu(e, i) < 0)
            return -1;
    }
    return 0;
}

static void pv_cleanup(struct engine *e)
{
    size_t i, nleaves = e->p2m_nr ? (e->p2m_nr - 1) / ENTRIES + 1 : 0;

    for (i = 0; i < e->p2m_nmaps; i++) {
        size_t n = nleaves - i * XMIG_MAX_BATCH;

        e->x->ops->unmap(e->x, e->p2m_maps[i],
                         n > XMIG_MAX_BATCH ? XMIG_MAX_BATCH : (unsigned int)n);
    }
    free(e->p2m_maps);
    if (e->shinfo)
        e->x->ops->unmap(e->x, (void *)e->shinfo, 1);
    if (e->m2p)
        e->x->ops->m2p_unmap(e->x, e->m2p, e->m2p_nr);
    xmig__nofork_free(e->p2m);
    free(e->p2m_leaves);
}

const struct engine_ops xmig__engine_ops_pv = {
    .dhdr_type = DHDR_TYPE_X86_PV,
    .keep_maps = true,
    .setup = pv_setup,
    .static_data = pv_static,
    .start_of_stream = pv_start,
    .check_vm_state = pv_refresh,
    .pfn_to_frame = pv_frame,
    .normalise_page = pv_normalise,
    .end_of_checkpoint = pv_end,
    .cleanup = pv_cleanup,
};

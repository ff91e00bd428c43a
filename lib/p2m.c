/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The PV guest's p2m (pfn -> mfn), copied out of guest memory the way
 * libxenguest finds it: the linear list under p2m_cr3 when the guest
 * publishes one, otherwise the three-level frame list tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>
#include <xen/xen.h>

#include "private.h"

#define ENTRIES_PER_PAGE (XMIG_PAGE_SIZE / sizeof(uint64_t))
#define PTE_PRESENT 0x1ULL
#define PTE_PSE 0x80ULL
#define PTE_MFN_MASK 0x000ffffffffff000ULL

/* 4 GiB worth of pfns, and the most any PV guest may claim. */
#define P2M_FLOOR (1ULL << (32 - XMIG_PAGE_SHIFT))
#define P2M_CEILING (1ULL << 40)

/*
 * The guest writes max_pfn itself, and we size our copy of its p2m and
 * our bitmaps by it: a hostile guest must not make dom0 allocate at will.
 * Linux sizes its p2m to its maximum reservation plus the holes of its
 * e820 that it remaps or maps 1:1 (arch/x86/xen/setup.c), so an honest
 * guest fits in four times its maximum (xl's maxmem; ballooning up to it
 * needs the room), and at least 4 GiB worth of pfns, for small guests
 * with a hole below 4 GiB.
 */
static uint64_t p2m_limit(const struct xmig_dominfo *info)
{
    uint64_t lim =
        info->max_pages < P2M_CEILING / 4 ? 4 * info->max_pages : P2M_CEILING;

    return lim < P2M_FLOOR ? P2M_FLOOR : lim;
}

/* Copy one guest frame; used for the few control pages on the way. */
static int read_frame(xmig_xen *x, uint32_t domid, xmig_pfn_t mfn, void *buf)
{
    int err = 0;
    void *p = x->ops->map(x, domid, 1, &mfn, &err);

    if (!p) {
        xmig__seterr(x, errno, "cannot map frame %#llx of domain %u",
                     (unsigned long long)mfn, domid);
        return -1;
    }
    if (err) {
        x->ops->unmap(x, p, 1);
        xmig__seterr(x, err, "cannot map frame %#llx of domain %u",
                     (unsigned long long)mfn, domid);
        return -1;
    }
    memcpy(buf, p, XMIG_PAGE_SIZE);
    x->ops->unmap(x, p, 1);
    return 0;
}

/* Map the leaves listed in mfns[] and copy nr entries out of them. */
static int copy_leaves(xmig_xen *x, uint32_t domid, const xmig_pfn_t *mfns,
                       size_t nleaves, size_t nr, xmig_pfn_t *out)
{
    size_t done = 0;

    while (done < nleaves) {
        unsigned int n = nleaves - done > XMIG_MAX_BATCH
                             ? XMIG_MAX_BATCH
                             : (unsigned int)(nleaves - done);
        int err[XMIG_MAX_BATCH];
        size_t ents = n * ENTRIES_PER_PAGE, first = done * ENTRIES_PER_PAGE;
        unsigned int i;
        void *p;

        p = x->ops->map(x, domid, n, mfns + done, err);
        if (!p) {
            xmig__seterr(x, errno, "cannot map the p2m of domain %u", domid);
            return -1;
        }
        for (i = 0; i < n; i++) {
            if (err[i]) {
                x->ops->unmap(x, p, n);
                xmig__seterr(x, err[i],
                             "cannot map p2m frame %#llx of domain %u",
                             (unsigned long long)mfns[done + i], domid);
                return -1;
            }
        }
        if (first + ents > nr)
            ents = nr - first;
        memcpy(out + first, p, ents * sizeof(*out));
        x->ops->unmap(x, p, n);
        done += n;
    }
    return 0;
}

/*
 * The frames of the p2m's leaves (malloc'd; nleaves of them), through the
 * frame list list of a guest without a linear p2m list; NULL on error.
 */
static xmig_pfn_t *p2m_tree(xmig_xen *x, uint32_t domid, xmig_pfn_t fll_mfn,
                            size_t nleaves)
{
    size_t nfl = (nleaves + ENTRIES_PER_PAGE - 1) / ENTRIES_PER_PAGE, i;
    uint64_t fll[ENTRIES_PER_PAGE], fl[ENTRIES_PER_PAGE];
    xmig_pfn_t *leaves;

    if (nfl > ENTRIES_PER_PAGE) {
        xmig__seterr(x, E2BIG, "p2m of domain %u too large for the frame tree",
                     domid);
        return NULL;
    }
    if (read_frame(x, domid, fll_mfn, fll) < 0)
        return NULL;
    leaves = calloc(nfl * ENTRIES_PER_PAGE, sizeof(*leaves));
    if (!leaves) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return NULL;
    }
    for (i = 0; i < nfl; i++) {
        if (read_frame(x, domid, fll[i], fl) < 0) {
            free(leaves);
            return NULL;
        }
        memcpy(leaves + i * ENTRIES_PER_PAGE, fl, sizeof(fl));
    }
    return leaves;
}

/*
 * The same through the guest's linear p2m list: a walk of its 4-level page
 * tables from p2m_cr3 to each leaf.
 */
static xmig_pfn_t *p2m_list(xmig_xen *x, uint32_t domid, uint64_t cr3,
                            uint64_t vaddr, size_t nleaves)
{
    size_t i;
    xmig_pfn_t cached[4] = {XMIG_INVALID_FRAME, XMIG_INVALID_FRAME,
                            XMIG_INVALID_FRAME, XMIG_INVALID_FRAME};
    uint64_t tables[4][ENTRIES_PER_PAGE];
    xmig_pfn_t *leaves;

    if (vaddr & (XMIG_PAGE_SIZE - 1)) {
        xmig__seterr(x, EINVAL, "p2m list of domain %u is not page aligned",
                     domid);
        return NULL;
    }
    leaves = calloc(nleaves, sizeof(*leaves));
    if (!leaves) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return NULL;
    }
    for (i = 0; i < nleaves; i++) {
        uint64_t va = vaddr + i * XMIG_PAGE_SIZE;
        xmig_pfn_t mfn = cr3 >> XMIG_PAGE_SHIFT;
        int level;

        for (level = 3; level >= 0; level--) {
            unsigned int idx = (va >> (XMIG_PAGE_SHIFT + 9 * level)) & 511;
            uint64_t pte;

            /* Neighbouring leaves share their upper tables. */
            if (cached[level] != mfn) {
                if (read_frame(x, domid, mfn, tables[level]) < 0)
                    goto out;
                cached[level] = mfn;
            }
            pte = tables[level][idx];
            if (!(pte & PTE_PRESENT)) {
                xmig__seterr(x, EFAULT,
                             "p2m list of domain %u not mapped at %#llx", domid,
                             (unsigned long long)va);
                goto out;
            }
            if (level && (pte & PTE_PSE)) {
                xmig__seterr(x, EOPNOTSUPP,
                             "p2m list of domain %u uses superpages", domid);
                goto out;
            }
            mfn = (pte & PTE_MFN_MASK) >> XMIG_PAGE_SHIFT;
        }
        leaves[i] = mfn;
    }
    return leaves;
out:
    free(leaves);
    return NULL;
}

int xmig__p2m_read(xmig_xen *x, const struct xmig_dominfo *info,
                   xmig_pfn_t **p2m_r, size_t *nr_r, xmig_pfn_t **leaves_r,
                   uint64_t *generation_r)
{
    struct shared_info *shinfo;
    struct arch_shared_info arch;
    xmig_pfn_t *p2m, *leaves;
    size_t nr, nleaves;
    int rc;

    if (info->guest_width != 8) {
        xmig__seterr(x, EOPNOTSUPP,
                     "domain %u is a 32-bit PV guest: not supported",
                     info->domid);
        return -1;
    }
    shinfo = malloc(XMIG_PAGE_SIZE);
    if (!shinfo) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return -1;
    }
    rc = read_frame(x, info->domid, info->shared_info_frame, shinfo);
    arch = shinfo->arch;
    free(shinfo);
    if (rc < 0)
        return -1;

    nr = arch.max_pfn;
    if (nr == 0) {
        xmig__seterr(x, EINVAL, "domain %u publishes no p2m (max_pfn 0)",
                     info->domid);
        return -1;
    }
    if (arch.max_pfn > p2m_limit(info)) {
        xmig__seterr(x, E2BIG,
                     "domain %u claims a p2m of %lu pfns (max_pfn), more "
                     "than it can use: at most %llu (4 x its maximum of %llu "
                     "pages, at least 4 GiB worth): refused",
                     info->domid, arch.max_pfn,
                     (unsigned long long)p2m_limit(info),
                     (unsigned long long)info->max_pages);
        return -1;
    }
    nleaves = (nr + ENTRIES_PER_PAGE - 1) / ENTRIES_PER_PAGE;
    if (arch.p2m_cr3)
        leaves =
            p2m_list(x, info->domid, arch.p2m_cr3, arch.p2m_vaddr, nleaves);
    else
        leaves =
            p2m_tree(x, info->domid, arch.pfn_to_mfn_frame_list_list, nleaves);
    if (!leaves)
        return -1;
    p2m = malloc(nr * sizeof(*p2m));
    if (!p2m) {
        free(leaves);
        xmig__seterr(x, ENOMEM, "out of memory for a p2m of %zu entries", nr);
        return -1;
    }
    if (copy_leaves(x, info->domid, leaves, nleaves, nr, p2m) < 0) {
        free(leaves);
        free(p2m);
        return -1;
    }
    if (leaves_r)
        *leaves_r = leaves;
    else
        free(leaves);
    if (generation_r)
        *generation_r = arch.p2m_cr3 ? arch.p2m_generation : 0;
    *p2m_r = p2m;
    *nr_r = nr;
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/* Frame discovery: holes, the PV p2m, batches of page types. */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "xen-double.h"

static bool is_hole(const size_t *holes, size_t nh, size_t pfn)
{
    size_t i;

    for (i = 0; i < nh; i++)
        if (holes[i] == pfn)
            return true;
    return false;
}

static void check_scan(enum xmig_domtype type, size_t nr, const size_t *holes,
                       size_t nh)
{
    struct dbl_config c = {
        .type = type,
        .domid = 7,
        .nr_pfns = nr,
        .holes = holes,
        .nr_holes = nh,
    };
    xmig_xen *x = dbl_open(&c);
    struct xmig_dominfo info;
    struct xmig_frames f;
    struct dbl_stats ds;
    size_t i, bad = 0;

    xmig_frames_init(&f);
    ASSERT_INT_EQ(xmig_domain_info(x, 7, &info), 0);
    ASSERT_INT_EQ(xmig_frames_scan(x, &info, &f), 0);
    ASSERT_U64_EQ(f.n, nr - nh);
    ASSERT_U64_EQ(f.nr_holes, nh);
    ASSERT_U64_EQ(f.nr_scanned, nr);
    for (i = 0; i < f.n; i++) {
        if (is_hole(holes, nh, f.pfn[i]) || (i && f.pfn[i] <= f.pfn[i - 1]) ||
            f.frame[i] != dbl_pfn_to_frame(x, f.pfn[i]))
            bad++;
    }
    ASSERT_INT_EQ(bad, 0);
    dbl_get_stats(x, &ds);
    /* HVM holes are found by type; PV ballooned pfns by the p2m. */
    if (type == XMIG_DOM_HVM)
        ASSERT_U64_EQ(ds.type_calls, (nr + 1023) / 1024);
    else
        ASSERT_U64_EQ(ds.type_calls, (nr - nh + 1023) / 1024);
    /* The p2m walk maps control pages only, and gives them back. */
    ASSERT_U64_EQ(ds.live_pages, 0);
    ASSERT_U64_EQ(ds.hole_maps, 0);
    xmig_frames_dispose(&f);
    xmig_frames_dispose(&f); /* idempotent */
    xmig_xen_close(x);
}

/* Scan, then map everything through the arena: what bench map does. */
static void check_end_to_end(enum xmig_domtype type)
{
    static const size_t holes[] = {5, 6, 7, 1000, 2040};
    struct dbl_config c = {
        .type = type,
        .domid = 7,
        .nr_pfns = 2048,
        .holes = holes,
        .nr_holes = 5,
    };
    xmig_xen *x = dbl_open(&c);
    struct xmig_arena_params p;
    struct xmig_dominfo info;
    struct xmig_frames f;
    struct dbl_stats ds;
    xmig_arena *a;
    size_t off, bad = 0;

    xmig_frames_init(&f);
    xmig_domain_info(x, 7, &info);
    ASSERT_INT_EQ(xmig_frames_scan(x, &info, &f), 0);
    xmig_arena_params_default(&p);
    a = xmig_arena_open(x, 7, &p);
    for (off = 0; off < f.n; off += p.batch) {
        unsigned int n = f.n - off < p.batch ? (unsigned)(f.n - off) : p.batch,
                     i;
        xmig_window *w = xmig_arena_map(a, f.frame + off, n, NULL);

        for (i = 0; w && i < n; i++) {
            const uint64_t *pg = xmig_window_page(w, i);

            /* The last pfns of a PV guest hold its p2m, not a pattern. */
            if (type == XMIG_DOM_PV && f.pfn[off + i] >= 2048 - 4)
                continue;
            if (pg[0] != f.frame[off + i])
                bad++;
        }
        if (!w)
            bad++;
        xmig_arena_release(a, w);
    }
    ASSERT_INT_EQ(bad, 0);
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0);
    ASSERT_U64_EQ(ds.hole_maps, 0);
    xmig_frames_dispose(&f);
    xmig_xen_close(x);
}

static void check_vanished(enum xmig_domtype type)
{
    struct dbl_config c = {.type = type, .domid = 7, .nr_pfns = 4096};
    xmig_xen *x = dbl_open(&c);
    struct xmig_dominfo info;
    struct xmig_frames f;
    uint32_t id;

    xmig_frames_init(&f);
    ASSERT_INT_EQ(xmig_domain_find(x, "guest", &id), 0);
    ASSERT_INT_EQ(id, 7);
    ASSERT_INT_EQ(xmig_domain_find(x, "7", &id), 0);
    ASSERT_INT_EQ(xmig_domain_find(x, "8", &id), -1);
    ASSERT_INT_EQ(errno, ESRCH);
    ASSERT_INT_EQ(xmig_domain_find(x, "nosuch", &id), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "'nosuch' not found") != NULL);
    /* Ids are digits only; anything else is a name, and strict. */
    ASSERT_INT_EQ(xmig_domain_find(x, "007", &id), 0);
    ASSERT_INT_EQ(id, 7);
    ASSERT_INT_EQ(xmig_domain_find(x, " 7", &id), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    ASSERT_INT_EQ(xmig_domain_find(x, "7 ", &id), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    ASSERT_INT_EQ(xmig_domain_find(x, "7\n", &id), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    ASSERT_INT_EQ(xmig_domain_find(x, "+7", &id), -1);
    ASSERT_INT_EQ(errno, ESRCH); /* a name, and none has it */
    ASSERT_INT_EQ(xmig_domain_find(x, "0x7", &id), -1);
    ASSERT_INT_EQ(errno, ESRCH);
    ASSERT_INT_EQ(xmig_domain_find(x, "-18446744073709551609", &id), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "do not start with '-'") != NULL);
    ASSERT_INT_EQ(xmig_domain_find(x, "18446744073709551623", &id), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "out of range") != NULL);
    ASSERT_INT_EQ(xmig_domain_find(x, "32752", &id), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    ASSERT_INT_EQ(xmig_domain_find(x, "gu\test", &id), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    ASSERT_INT_EQ(xmig_domain_find(x, "", &id), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    xmig_domain_info(x, 7, &info);
    dbl_kill_domain(x);
    ASSERT_INT_EQ(xmig_frames_scan(x, &info, &f), -1);
    ASSERT_U64_EQ(f.n, 0);
    ASSERT_PTR_NULL(f.pfn);
    xmig_xen_close(x);
}

int main(void)
{
    static const size_t holes[] = {0, 1023, 1024, 2500, 2501, 2502, 4980};
    static const size_t none[] = {0};

    TEST_START("hvm: holes are never listed");
    check_scan(XMIG_DOM_HVM, 5000, holes, 7);
    TEST_DONE();
    TEST_START("pvh: exact batch multiple");
    check_scan(XMIG_DOM_PVH, 2048, none, 0);
    TEST_DONE();
    TEST_START("pv: p2m tree, ballooned pfns skipped, frames are mfns");
    check_scan(XMIG_DOM_PV, 5000, holes, 7);
    TEST_DONE();
    TEST_START("pv: p2m needing two frame-list pages");
    check_scan(XMIG_DOM_PV, 300000, holes, 7);
    TEST_DONE();
    TEST_START("pv: scan then map everything, contents match");
    check_end_to_end(XMIG_DOM_PV);
    TEST_DONE();
    TEST_START("hvm: scan then map everything, contents match");
    check_end_to_end(XMIG_DOM_HVM);
    TEST_DONE();
    TEST_START("pv: lookup by name and id; a vanished domain fails cleanly");
    check_vanished(XMIG_DOM_PV);
    TEST_DONE();
    TEST_START("hvm: a vanished domain fails cleanly");
    check_vanished(XMIG_DOM_HVM);
    TEST_DONE();
    return TEST_EXIT();
}

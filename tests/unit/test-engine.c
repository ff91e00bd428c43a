/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig's own engine against the test double: the stream it writes is
 * walked record by record here, and handed to Xen's own checker,
 * verify-stream-v2.  The double proves the encoding, not that Xen agrees:
 * the testbed does that.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "test.h"
#include "xen-double.h"

/* The checker of the Xen release built against: its receivers' view. */
#define VERIFY "/usr/lib/xen-" XMIG_XEN_RELEASE "/bin/verify-stream-v2"
#define VERIFY_PATH "/usr/lib/xen-" XMIG_XEN_RELEASE "/lib/python"

/* The most pfns a guest of these tests has: a sparse PVH guest's. */
#define WALK_PFNS 33000

struct walk {
    unsigned int types[64]; /* order of the first record types */
    unsigned int ntypes;
    unsigned int page_data; /* PAGE_DATA records */
    uint64_t pages;         /* their data pages */
    bool l4_ok;             /* pfn 1's L4 arrived normalised */
    bool saw_l4;
    unsigned int vcpus;
    /* libxl's EMULATOR_XENSTORE_DATA and _CONTEXT records, which last */
    unsigned int emu_xs, emu_ctx, emu_last;
    uint32_t emu_ctx_len;
    bool seen[WALK_PFNS];         /* pfns sent with data */
    uint32_t last_gen[WALK_PFNS]; /* word 1 of the last copy sent */
    bool last_zero[WALK_PFNS];    /* the last copy was a NOTAB page of zeros */
    uint64_t xalloc;              /* XALLOC entries, all passes */
    /*
     * The first pass: the PAGE_DATA records from the first on that go on
     * where the one before ended, from pfn 0, pfn after pfn.
     */
    struct {
        bool open;
        uint64_t next;             /* the pfn an entry of it would have next */
        unsigned int records;      /* in it */
        unsigned int max;          /* most entries in one record */
        unsigned int out_of_order; /* entries not next in line */
        unsigned int unaligned;    /* records not starting 512-aligned */
        unsigned int short_runs;   /* records not a multiple of 512 long */
        bool short_last;           /* ... the last being one of them */
        uint64_t xalloc;           /* XALLOC entries in it */
        bool xalloc_pfn[4096];
    } fp;
};

/* A PAGE_DATA record's entries, as far as the first pass goes. */
static void walk_first_pass(struct walk *w, const uint8_t *body, uint32_t count)
{
    uint64_t e;
    uint32_t i;

    memcpy(&e, body + 8, 8);
    if (!w->fp.open || (e & 0xfffffffffffffULL) != w->fp.next) {
        w->fp.open = false;
        return;
    }
    w->fp.records++;
    if (count > w->fp.max)
        w->fp.max = count;
    if (w->fp.next % 512)
        w->fp.unaligned++;
    w->fp.short_last = count % 512 != 0;
    if (w->fp.short_last)
        w->fp.short_runs++;
    for (i = 0; i < count; i++) {
        uint64_t pfn;

        memcpy(&e, body + 8 + 8 * i, 8);
        pfn = e & 0xfffffffffffffULL;
        if (pfn != w->fp.next)
            w->fp.out_of_order++;
        w->fp.next = pfn + 1;
        if ((e >> 60) == 0xe) {
            w->fp.xalloc++;
            if (pfn < 4096)
                w->fp.xalloc_pfn[pfn] = true;
        }
    }
}

static uint8_t *slurp(const char *path, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    uint8_t *p;

    if (!f || fstat(fileno(f), &st) < 0)
        return NULL;
    p = malloc((size_t)st.st_size);
    if (p && fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)st.st_size;
    return p;
}

static uint32_t le32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

/*
 * The libxl records after the libxc END, from off: an HVM guest's device
 * model (QEMU upstream, index 0), then END.  EMULATOR_XENSTORE_DATA is
 * NUL-terminated keys and values, an even number of them: Xen 4.17's
 * verify-stream-v2 cannot check that under Python 3 (it compares a byte
 * of bytes with a str, and rejects every such record).
 */
static bool walk_libxl_tail(const uint8_t *p, size_t len, size_t off,
                            struct walk *w)
{
    while (off + 8 <= len && le32(p + off) != 0) {
        uint32_t type = le32(p + off), rlen = le32(p + off + 4), i, nul = 0;

        if ((type != 2 && type != 3) || rlen < 8 || off + 8 + rlen > len ||
            le32(p + off + 8) != 2 || le32(p + off + 12) != 0)
            return false;
        if (type == 2) {
            for (i = 16; i < 8 + rlen; i++)
                nul += p[off + i] == 0;
            if (rlen == 8 || p[off + 8 + rlen - 1] != 0 || nul % 2)
                return false;
            w->emu_xs++;
        } else {
            w->emu_ctx++;
            w->emu_ctx_len = rlen - 8;
        }
        w->emu_last = type;
        off += 8 + ((rlen + 7) & ~7u);
    }
    return off + 8 == len && le32(p + off) == 0;
}

/* xl header, libxl header, LIBXC_CONTEXT, then the libxc records. */
static bool walk(const uint8_t *p, size_t len, xmig_xen *x, struct walk *w)
{
    size_t off = 48 + le32(p + 44) + 16 + 8 + 24 + 16;

    memset(w, 0, sizeof(*w));
    w->fp.open = true;
    while (off + 8 <= len) {
        uint32_t type = le32(p + off), rlen = le32(p + off + 4);
        const uint8_t *body = p + off + 8;

        if (w->ntypes < 64)
            w->types[w->ntypes++] = type;
        if (type == 0x01) {
            uint32_t count = le32(body), i, data = 0;

            w->page_data++;
            walk_first_pass(w, body, count);
            for (i = 0; i < count; i++) {
                uint64_t e;
                const uint64_t *pg;

                memcpy(&e, body + 8 + 8 * i, 8);
                if ((e >> 60) == 0xe)
                    w->xalloc++;
                if ((e >> 60) == 0xf || (e >> 60) == 0xe || (e >> 60) == 0xd)
                    continue;
                pg = (const uint64_t *)(body + 8 + 8 * count + 4096 * data);
                if ((e & 0xfffffffffffffULL) < WALK_PFNS) {
                    static const uint8_t zeros[4096];
                    size_t pfn = (size_t)(e & 0xfffffffffffffULL);

                    w->seen[pfn] = true;
                    w->last_gen[pfn] = (uint32_t)pg[1];
                    w->last_zero[pfn] =
                        (e >> 60) == 0 && !memcmp(pg, zeros, 4096);
                }
                if ((e & 0xfffffffffffffULL) == 1 && (e >> 60) == 0xc) {
                    w->saw_l4 = true;
                    w->l4_ok = pg[0] == ((2ULL << 12) | 0x67) && pg[256] == 0;
                }
                data++;
            }
            w->pages += data;
        }
        if (type == 0x04)
            w->vcpus++;
        off += 8 + ((rlen + 7) & ~7u);
        if (type == 0x00)
            break;
    }
    (void)x;
    return walk_libxl_tail(p, len, off, w);
}

static int verify_stream(const char *path)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "PYTHONPATH=%s %s -f xl -i %s >%s.verify 2>&1",
             VERIFY_PATH, VERIFY, path, path);
    return system(cmd);
}

struct run_opts {
    enum xmig_domtype type;
    bool live;
    enum xmig_strategy strategy;
    bool skip;
    unsigned int batch;      /* 0: the default */
    size_t vma_limit;        /* the double's vm.max_map_count; 0: none */
    unsigned int fail_after; /* 0, or new mappings before one ENOMEM */
    enum { REUSE_USUAL, REUSE_ANY, REUSE_NONE } reuse;
    xmig_pfn_t balloon;          /* 0, or ballooned out at the first CLEAN */
    struct walk *walk_r;         /* NULL, or where the walk goes */
    struct xmig_job_result *r_r; /* NULL, or where the result goes */
};

/* No child process is left, running or unreaped. */
static bool no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

/* image_r: NULL, or where the stream goes, malloc'd. */
static void run_image(const struct run_opts *o, uint8_t **image_r,
                      size_t *len_r)
{
    enum xmig_domtype type = o->type;
    bool live = o->live, skip = o->skip;
    enum xmig_strategy strategy = o->strategy;
    static const size_t holes[] = {3, 700, 701};
    struct dbl_config c = {
        .type = type,
        .domid = 4,
        .nr_pfns = 3000,
        .holes = holes,
        .nr_holes = 3,
        .pagetables = type == XMIG_DOM_PV,
    };
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    struct xmig_job_params p;
    struct xmig_job_result r;
    struct dbl_stats ds;
    struct walk w;
    xmig_xen *x = dbl_open(&c);
    uint8_t *buf;
    size_t len;
    int fd = mkstemp(path), vr;
    /* Open across the job: a worker must not hold it. */
    int stray = open("/dev/null", O_RDONLY | O_CLOEXEC);

    close(fd);
    dbl_set_vma_limit(x, o->vma_limit);
    if (o->fail_after)
        dbl_fail_map_after(x, o->fail_after);
    if (o->balloon)
        dbl_balloon_at_clean(x, o->balloon);
    xmig_job_params_default(&p);
    p.kind = XMIG_JOB_SAVE;
    p.engine = XMIG_ENGINE_XMIG;
    p.arena.strategy = strategy;
    if (o->batch)
        p.arena.batch = o->batch;
    p.domain = "guest";
    p.dest = path;
    p.live = live;
    p.policy.skip_redirtied = skip;
    p.keep = true;
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), 0);
    if (test_cur_failed)
        printf("  error: %s\n", xmig_xen_error(x));
    close(stray);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0); /* every mapping is gone */
    ASSERT_U64_EQ(ds.hole_maps, 0);  /* no hole was ever mapped */
    /* PV: the p2m is mapped once a job, not once a pass (29 map calls
       for these 6 passes when it was). */
    if (type == XMIG_DOM_PV && r.passes >= 3)
        ASSERT_TRUE(ds.map_calls <= 10);
    ASSERT_TRUE(no_children());
    if (strategy == XMIG_STRATEGY_EXIT || strategy == XMIG_STRATEGY_KERNEL) {
        /* The worker mapped every page, the job none (but PV's p2m). */
        ASSERT_TRUE(ds.worker_pages >= 3000 - 3 - (o->balloon ? 1 : 0));
        ASSERT_U64_EQ(ds.map_at_calls, ds.worker_maps);
        /* It kept its socket and the stream, nothing else. */
        ASSERT_INT_EQ(ds.worker_fds, 2);
        ASSERT_U64_EQ(r.engine.arena.frames_mapped, ds.worker_pages);
        ASSERT_TRUE(r.engine.arena.unmap_calls >= 1);
    } else {
        ASSERT_U64_EQ(ds.worker_pages, 0);
    }
    ASSERT_TRUE(!dbl_guest(x)->logdirty);
    ASSERT_INT_EQ(dbl_guest(x)->resumes, 1);

    buf = slurp(path, &len);
    ASSERT_PTR_NONNULL(buf);
    if (buf) {
        ASSERT_TRUE(walk(buf, len, x, &w));
        /* Order: policy, STATIC_DATA_END, [P2M_FRAMES] before any page. */
        if (type == XMIG_DOM_PV) {
            ASSERT_INT_EQ(w.types[0], 0x02); /* X86_PV_INFO */
            ASSERT_INT_EQ(w.types[1], 0x11);
            ASSERT_INT_EQ(w.types[2], 0x12);
            ASSERT_INT_EQ(w.types[3], 0x10);
            ASSERT_INT_EQ(w.types[4], 0x03); /* X86_PV_P2M_FRAMES */
            ASSERT_TRUE(w.saw_l4 && w.l4_ok);
            ASSERT_INT_EQ(w.vcpus, 1);
        } else {
            ASSERT_INT_EQ(w.types[0], 0x11);
            ASSERT_INT_EQ(w.types[1], 0x12);
            ASSERT_INT_EQ(w.types[2], 0x10);
            ASSERT_INT_EQ(w.types[3], 0x01);
        }
        /* Every populated page, at least once. */
        ASSERT_TRUE(w.pages >= 3000 - 3);
        ASSERT_U64_EQ(w.pages, r.engine.pages);
        {
            size_t i, missing = 0, stale = 0;

            for (i = 0; i < 3000; i++) {
                if (i == 3 || i == 700 || i == 701 || i == o->balloon)
                    continue;
                if (!w.seen[i])
                    missing++;
                /*
                 * The last copy must hold the guest's last write.  Not for
                 * PV: the double's kept mappings are snapshots, where
                 * Xen's show the page as it is now.
                 */
                else if (type != XMIG_DOM_PV &&
                         w.last_gen[i] != dbl_pfn_gen(x, i))
                    stale++;
            }
            ASSERT_U64_EQ(missing, 0);
            ASSERT_U64_EQ(stale, 0);
        }
        if (o->walk_r)
            *o->walk_r = w;
        if (image_r) {
            *image_r = buf;
            *len_r = len;
        } else {
            free(buf);
        }
    }
    /* The result names the strategy used: no ioctl in the double, so
       kernel means exit. */
    ASSERT_INT_EQ(r.engine.strategy, strategy == XMIG_STRATEGY_KERNEL
                                         ? XMIG_STRATEGY_EXIT
                                         : strategy);
    /*
     * Live passes leave out what the guest wrote again meanwhile; the
     * stop-and-copy pass (and a save that is not live) leaves out nothing.
     */
    if (live && skip) {
        ASSERT_TRUE(r.engine.skipped > 0);
        ASSERT_TRUE(ds.peek_calls > 0);
    } else {
        ASSERT_U64_EQ(r.engine.skipped, 0);
        ASSERT_U64_EQ(ds.peek_calls, 0);
    }
    /* Without skipping, the hot set goes again in every pass. */
    if (live && !skip)
        ASSERT_TRUE(r.engine.pages > 3000 - 3);
    /*
     * Reuse across passes: PV live only, never PVH/HVM.  With skipping,
     * the double's PEEK is exact, so no page is sent twice to reuse.
     */
    if (o->reuse == REUSE_NONE)
        ASSERT_U64_EQ(r.engine.reused, 0);
    else if (o->reuse == REUSE_ANY)
        ;
    else if (type == XMIG_DOM_PV && live && !skip)
        ASSERT_TRUE(r.engine.reused > 0);
    else if (type != XMIG_DOM_PV)
        ASSERT_U64_EQ(r.engine.reused, 0);
    if (o->vma_limit) {
        /* It was reached, and never passed. */
        ASSERT_TRUE(ds.vma_refusals > 0);
        ASSERT_TRUE(ds.max_vmas <= o->vma_limit);
    }
    if (o->fail_after)
        ASSERT_U64_EQ(ds.vma_refusals, 1);
    vr = verify_stream(path);
    if (vr != 0) {
        char cmd[600];

        TEST_FAIL("verify-stream-v2 rejected the stream (status %d):", vr);
        snprintf(cmd, sizeof(cmd), "sed 's/^/    /' %s.verify | tail -5", path);
        if (system(cmd) != 0)
            TEST_FAIL("%s", "cannot show its output");
    }
    unlink(path);
    {
        char vpath[sizeof(path) + 8];

        snprintf(vpath, sizeof(vpath), "%s.verify", path);
        unlink(vpath);
    }
    if (o->r_r)
        *o->r_r = r;
    xmig_xen_close(x);
}

static void run_with(const struct run_opts *o)
{
    run_image(o, NULL, NULL);
}

static void run(enum xmig_domtype type, bool live, enum xmig_strategy strategy,
                bool skip)
{
    struct run_opts o = {
        .type = type, .live = live, .strategy = strategy, .skip = skip};

    run_with(&o);
}

/*
 * exit writes from the worker's mappings what arena writes from the job's:
 * the same stream, byte for byte (the double's guest is deterministic).
 */
static void same_as_arena(enum xmig_domtype type, bool live, unsigned batch)
{
    struct run_opts o = {.type = type,
                         .live = live,
                         .strategy = XMIG_STRATEGY_ARENA,
                         .batch = batch};
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0, i;

    run_image(&o, &a, &alen);
    o.strategy = XMIG_STRATEGY_EXIT;
    run_image(&o, &b, &blen);
    ASSERT_TRUE(a && b);
    ASSERT_U64_EQ(alen, blen);
    if (a && b && alen == blen && memcmp(a, b, alen) != 0) {
        for (i = 0; i < alen && a[i] == b[i]; i++)
            ;
        TEST_FAIL("the streams differ from byte %zu of %zu", i, alen);
    }
    free(a);
    free(b);
}

/* Every batch size the CLI accepts, PV (kept windows too) and PVH. */
static void batches(enum xmig_strategy strategy)
{
    static const unsigned int sizes[] = {1, 7, 512, 1023, 1024};
    static const enum xmig_domtype types[] = {XMIG_DOM_PV, XMIG_DOM_PVH};
    size_t i, t;

    for (t = 0; t < 2; t++) {
        for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            struct run_opts o = {.type = types[t],
                                 .live = true,
                                 .strategy = strategy,
                                 .batch = sizes[i]};
            int before = test_cur_failed;

            run_with(&o);
            if (test_cur_failed != before)
                printf("  (%s, batch %u)\n", xmig_domtype_name(types[t]),
                       sizes[i]);
        }
    }
}

/*
 * The first pass in whole 512-pfn runs (Xen >= 4.21 receivers make
 * superpages of them): records start 512-aligned, hold a multiple of 512
 * ascending pfns (the last may hold the rest), and the pages dirtied again
 * (the double's hot set, pfns 16 to 271) go in them as XALLOC, their data
 * in a later pass; run_with() checks that every page arrives, current.
 */
static void first_pass_runs(enum xmig_strategy strategy)
{
    static const unsigned int sizes[] = {1024, 512, 1023, 256};
    static const enum xmig_domtype types[] = {XMIG_DOM_PV, XMIG_DOM_PVH};
    size_t i, t, pfn;

    for (t = 0; t < 2; t++) {
        for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            static struct walk w;
            struct run_opts o = {.type = types[t],
                                 .live = true,
                                 .strategy = strategy,
                                 .skip = true,
                                 .batch = sizes[i],
                                 .walk_r = &w};
            unsigned int run = sizes[i] - sizes[i] % 512;
            int before = test_cur_failed;
            size_t missing = 0;

            memset(&w, 0, sizeof(w));
            run_with(&o);
            if (sizes[i] < 512) {
                /* No run fits: pages dirtied again are left out. */
                ASSERT_U64_EQ(w.xalloc, 0);
                goto next;
            }
            ASSERT_TRUE(w.fp.next >= 3000); /* every pfn, in one go */
            ASSERT_INT_EQ(w.fp.out_of_order, 0);
            ASSERT_INT_EQ(w.fp.unaligned, 0);
            ASSERT_TRUE(w.fp.short_runs == 0 ||
                        (w.fp.short_runs == 1 && w.fp.short_last));
            ASSERT_INT_EQ(w.fp.max, run);
            ASSERT_INT_EQ(w.fp.records, (3000 + run - 1) / run);
            ASSERT_U64_EQ(w.fp.xalloc, 256);
            for (pfn = 16; pfn < 16 + 256; pfn++)
                if (!w.fp.xalloc_pfn[pfn])
                    missing++;
            ASSERT_U64_EQ(missing, 0);
        next:
            if (test_cur_failed != before)
                printf("  (%s, %s, batch %u)\n", xmig_domtype_name(types[t]),
                       xmig_strategy_name(strategy), sizes[i]);
        }
    }
}

/* Not live: no XALLOC, the runs all the same. */
static void first_pass_runs_not_live(void)
{
    static struct walk w;
    struct run_opts o = {.type = XMIG_DOM_PVH,
                         .strategy = XMIG_STRATEGY_ARENA,
                         .skip = true,
                         .batch = 1023,
                         .walk_r = &w};

    run_with(&o);
    ASSERT_TRUE(w.fp.next >= 3000);
    ASSERT_INT_EQ(w.fp.out_of_order + w.fp.unaligned, 0);
    ASSERT_INT_EQ(w.fp.max, 512);
    ASSERT_U64_EQ(w.xalloc, 0);
}

/*
 * A page that went as XALLOC and is ballooned out before its data went:
 * the receiver has a page there all the same, with whatever its Xen left
 * in it.  It gets zeros, as NOTAB.
 */
static void xalloc_then_ballooned(enum xmig_domtype type,
                                  enum xmig_strategy strategy)
{
    static struct walk w;
    struct xmig_job_result r;
    struct run_opts o = {.type = type,
                         .live = true,
                         .strategy = strategy,
                         .skip = true,
                         .batch = 1024,
                         .balloon = 20,
                         .walk_r = &w,
                         .r_r = &r};

    run_with(&o);
    ASSERT_TRUE(w.fp.xalloc_pfn[20]);
    ASSERT_TRUE(w.seen[20] && w.last_zero[20]);
    ASSERT_TRUE(w.seen[21] && !w.last_zero[21]);
    /* The zeros count as a page sent. */
    ASSERT_U64_EQ(r.engine.pages, w.pages);
}

/* A save that keeps the guest; batch 0: the default. */
static int save_job_with(xmig_xen *x, unsigned int batch, bool live,
                         enum xmig_strategy strategy, const char *path,
                         struct xmig_job_result *r)
{
    struct xmig_job_params p;
    int rc;

    xmig_job_params_default(&p);
    p.kind = XMIG_JOB_SAVE;
    p.engine = XMIG_ENGINE_XMIG;
    if (batch)
        p.arena.batch = batch;
    p.arena.strategy = strategy;
    p.domain = "guest";
    p.dest = path;
    p.live = live;
    p.keep = true;
    rc = xmig_job_run(x, &p, r);
    if (rc < 0)
        printf("  error: %s\n", xmig_xen_error(x));
    return rc;
}

static int save_job(xmig_xen *x, unsigned int batch, const char *path,
                    struct xmig_job_result *r)
{
    struct xmig_job_params p;

    xmig_job_params_default(&p);
    return save_job_with(x, batch, p.live, p.arena.strategy, path, r);
}

/*
 * A PVH guest that is mostly holes: 33000 pfns, pages in 0 to 2999 only.
 * extra: pages it owns that no pfn maps.
 */
static xmig_xen *sparse_pvh(uint64_t extra)
{
    static size_t holes[30000];
    struct dbl_config c = {.type = XMIG_DOM_PVH,
                           .domid = 4,
                           .nr_pfns = 33000,
                           .holes = holes,
                           .nr_holes = 30000,
                           .extra_pages = extra};
    size_t i;

    for (i = 0; i < 30000; i++)
        holes[i] = 3000 + i;
    return dbl_open(&c);
}

/* As Xen lays out a PVH guest: memory from pfn 0, special pages on top. */
static xmig_xen *pvh_layout(void)
{
    static size_t holes[29990];
    struct dbl_config c = {.type = XMIG_DOM_PVH,
                           .domid = 4,
                           .nr_pfns = 33000,
                           .holes = holes,
                           .nr_holes = 29990};
    size_t i;

    for (i = 0; i < 29990; i++)
        holes[i] = 3000 + i; /* pages: 0 to 2999, 32990 to 32999 */
    return dbl_open(&c);
}

/* Every page of pvh_layout() arrived, and its last copy is current. */
static void pvh_layout_arrived(xmig_xen *x, const char *path, xmig_pfn_t also)
{
    static struct walk w;
    size_t len, pfn, missing = 0, stale = 0;
    uint8_t *buf = slurp(path, &len);

    ASSERT_PTR_NONNULL(buf);
    if (!buf)
        return;
    ASSERT_TRUE(walk(buf, len, x, &w));
    for (pfn = 0; pfn < 33000; pfn++) {
        if (pfn >= 3000 && pfn < 32990 && pfn != also)
            continue;
        if (!w.seen[pfn])
            missing++;
        else if (w.last_gen[pfn] != dbl_pfn_gen(x, pfn))
            stale++;
    }
    ASSERT_U64_EQ(missing, 0);
    ASSERT_U64_EQ(stale, 0);
    free(buf);
}

/*
 * The first pass of a PVH guest goes up through its memory, then takes
 * the top and the bottom in turns, and stops once it has found every page
 * Xen counts: here 5 type queries (blocks 0-2, 32, 3) where stock asks 33
 * times.  The job shows at the end that the gfns it left out, 4096 to
 * 32767, hold no page, and says so (unswept).  With a page the domain
 * owns outside its p2m the count never adds up: every gfn is asked about.
 */
static void sweep_ends(bool live, enum xmig_strategy strategy, bool extra)
{
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    xmig_xen *x = extra ? sparse_pvh(1) : pvh_layout();
    struct xmig_job_result r;
    struct dbl_stats ds;
    int fd = mkstemp(path);

    close(fd);
    ASSERT_INT_EQ(save_job_with(x, 0, live, strategy, path, &r), 0);
    dbl_get_stats(x, &ds);
    if (extra) {
        ASSERT_U64_EQ(r.engine.unswept, 0);
        if (!live)
            ASSERT_U64_EQ(ds.type_calls, 33);
    } else {
        ASSERT_U64_EQ(r.engine.unswept, 32768 - 4096);
        if (!live)
            ASSERT_U64_EQ(ds.type_calls, 5);
        pvh_layout_arrived(x, path, XMIG_INVALID_FRAME);
    }
    ASSERT_U64_EQ(ds.live_pages, 0);
    ASSERT_INT_EQ(dbl_guest(x)->resumes, 1);
    if (test_cur_failed)
        printf("  (%s, %s%s)\n", live ? "live" : "not live",
               xmig_strategy_name(strategy), extra ? ", a page outside" : "");
    xmig_xen_close(x);
    unlink(path);
}

/*
 * A page ballooned into the gap after the first pass, which Xen 4.17 does
 * not mark dirty: the count at the end does not add up, so the gap is
 * swept while the guest is suspended, and the page goes out.
 */
static void sweep_ends_populated(enum xmig_strategy strategy)
{
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    xmig_xen *x = pvh_layout();
    struct xmig_job_result r;
    int fd = mkstemp(path);

    close(fd);
    dbl_populate_at_clean(x, 20000);
    ASSERT_INT_EQ(save_job_with(x, 0, true, strategy, path, &r), 0);
    ASSERT_U64_EQ(r.engine.unswept, 0);
    pvh_layout_arrived(x, path, 20000);
    if (test_cur_failed)
        printf("  (%s)\n", xmig_strategy_name(strategy));
    xmig_xen_close(x);
    unlink(path);
}

/*
 * Hypercall buffers: the page types' and the dirty bitmap's (a guest of
 * 33000 pfns: 2 pages) are allocated once per handle, however many batches
 * and passes; a second job on the handle allocates none.
 */
static void hcall_buffers(void)
{
    static const unsigned int sizes[] = {1024, 32};
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    uint64_t type_calls[2] = {0, 0};
    size_t i;
    int fd = mkstemp(path);

    close(fd);
    for (i = 0; i < 2; i++) {
        xmig_xen *x = sparse_pvh(0);
        struct xmig_job_result r;
        struct dbl_stats ds;

        ASSERT_INT_EQ(save_job(x, sizes[i], path, &r), 0);
        dbl_get_stats(x, &ds);
        ASSERT_U64_EQ(r.engine.hcall_buffers, 2);
        ASSERT_U64_EQ(ds.hbuf_allocs, 2);
        type_calls[i] = ds.type_calls;
        ASSERT_INT_EQ(save_job(x, sizes[i], path, &r), 0);
        dbl_get_stats(x, &ds);
        ASSERT_U64_EQ(r.engine.hcall_buffers, 0);
        ASSERT_U64_EQ(ds.hbuf_allocs, 2);
        /* The double aborts if any is left at close. */
        xmig_xen_close(x);
    }
    /* Batches of 32: many more calls, the same buffers. */
    ASSERT_TRUE(type_calls[1] > 20 * type_calls[0]);
    unlink(path);
}

/*
 * A PVH guest is mostly holes (its pfns run past the MMIO hole), and
 * where the first pass looks at them (a page outside its p2m keeps the
 * pass from stopping early), records of holes alone are written by the
 * job, not by a round trip to the exit worker, and the stream is the
 * arena's.
 */
static void exit_holes(void)
{
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    struct xmig_job_params p;
    struct xmig_job_result r;
    uint8_t *img[2] = {NULL, NULL};
    size_t len[2] = {0, 0}, i;
    int fd = mkstemp(path);

    close(fd);
    for (i = 0; i < 2; i++) {
        xmig_xen *x = sparse_pvh(1);

        xmig_job_params_default(&p);
        p.kind = XMIG_JOB_SAVE;
        p.engine = XMIG_ENGINE_XMIG;
        p.arena.strategy = i ? XMIG_STRATEGY_EXIT : XMIG_STRATEGY_ARENA;
        p.domain = "guest";
        p.dest = path;
        ASSERT_INT_EQ(xmig_job_run(x, &p, &r), 0);
        if (test_cur_failed)
            printf("  error: %s\n", xmig_xen_error(x));
        img[i] = slurp(path, &len[i]);
        if (i) {
            /* One request a record with pages (8 of them, in 512-pfn
               runs); the 30 records of holes alone went without. */
            ASSERT_U64_EQ(r.engine.arena.requests, r.engine.arena.map_calls);
            ASSERT_TRUE(r.engine.arena.requests <= 8);
        } else {
            ASSERT_U64_EQ(r.engine.arena.requests, 0);
        }
        xmig_xen_close(x);
    }
    ASSERT_TRUE(img[0] && img[1] && len[0] == len[1] &&
                memcmp(img[0], img[1], len[0]) == 0);
    free(img[0]);
    free(img[1]);
    unlink(path);
}

struct overlap_job {
    xmig_xen *x;
    const char *path;
    struct xmig_job_result r;
    int rc;
};

static void *overlap_run(void *arg)
{
    struct overlap_job *o = arg;
    struct xmig_job_params p;

    xmig_job_params_default(&p);
    p.kind = XMIG_JOB_SAVE;
    p.engine = XMIG_ENGINE_XMIG;
    p.arena.strategy = XMIG_STRATEGY_EXIT;
    p.domain = "guest";
    p.dest = o->path;
    p.keep = true;
    __atomic_store_n(&o->rc, xmig_job_run(o->x, &p, &o->r), __ATOMIC_RELEASE);
    return NULL;
}

/*
 * Strategy exit overlaps: while the worker writes a batch, the job reads
 * the next batch's page types.  The sink is a FIFO nobody reads yet, so
 * the worker stays inside its write of the first 4 MiB record; the job
 * must reach the second batch's type query all the same.  A job that
 * waited for each answer would wait here until the reader starts.
 * fail: that second query fails.  The job must then end at once, the
 * worker stuck in its write killed, not waited for (a receiver that
 * stopped reading would hold the job for ever), and the guest run here.
 */
static void exit_overlap(bool fail)
{
    struct dbl_config c = {.type = XMIG_DOM_PVH, .domid = 4, .nr_pfns = 4096};
    struct overlap_job o = {.rc = -2};
    char dir[] = "/tmp/xmig-test-engine-XXXXXX", path[64];
    struct dbl_stats ds = {0};
    struct timespec t0, t;
    pthread_t th;
    bool early = false;
    uint8_t buf[65536];
    uint64_t total = 0;
    ssize_t got;
    int fd;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/fifo", dir);
    ASSERT_INT_EQ(mkfifo(path, 0600), 0);
    o.x = dbl_open(&c);
    o.path = path;
    if (fail)
        dbl_fail_types_at(o.x, 2);
    /* Open before the job: a FIFO without a reader is refused (ENXIO). */
    fd = open(path, O_RDONLY | O_NONBLOCK);
    ASSERT_TRUE(fd >= 0);
    ASSERT_INT_EQ(pthread_create(&th, NULL, overlap_run, &o), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        dbl_get_stats(o.x, &ds);
        if (fail ? __atomic_load_n(&o.rc, __ATOMIC_ACQUIRE) != -2
                 : ds.type_calls >= 2) {
            early = true;
            break;
        }
        usleep(10000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 60);
    /* Read it all (before the job opens the FIFO, read says 0 too). */
    for (;;) {
        bool done = __atomic_load_n(&o.rc, __ATOMIC_ACQUIRE) != -2;

        while ((got = read(fd, buf, sizeof(buf))) > 0)
            total += (uint64_t)got;
        if (done)
            break;
        usleep(1000);
    }
    close(fd);
    pthread_join(th, NULL);
    /* fail: the job ended while the first record was unread; else the
       second type query came then. */
    ASSERT_TRUE(early);
    if (fail) {
        ASSERT_INT_EQ(o.rc, -1);
        ASSERT_TRUE(strstr(xmig_xen_error(o.x), "page types") != NULL);
        ASSERT_INT_EQ(o.r.guest, XMIG_GUEST_SOURCE);
        ASSERT_TRUE(!dbl_guest(o.x)->suspended);
        ASSERT_TRUE(total < 4096ULL * XMIG_PAGE_SIZE);
    } else {
        ASSERT_INT_EQ(o.rc, 0);
        if (test_cur_failed)
            printf("  error: %s\n", xmig_xen_error(o.x));
        /* The worker had mapped the first batch, or not even that yet
           (a loaded machine schedules the job first): never more. */
        ASSERT_TRUE(ds.worker_maps <= 1);
        ASSERT_TRUE(total > 4096ULL * XMIG_PAGE_SIZE);
        ASSERT_TRUE(o.r.engine.arena.requests >= 4);
    }
    xmig_xen_close(o.x);
    unlink(path);
    rmdir(dir);
}

/*
 * The guest crashes (its domain ends) in the middle of a live save: the
 * job fails with its own error, not with the clean-up's (log-dirty off
 * fails on a domain that is gone), and says the guest runs nowhere, not
 * "still running here".
 */
static void guest_crashes(enum xmig_domtype type)
{
    struct dbl_config c = {.type = type, .domid = 7, .nr_pfns = 8192};
    char dir[] = "/tmp/xmig-test-engine-XXXXXX", path[64];
    struct xmig_job_params p;
    struct xmig_job_result r;
    xmig_xen *x = dbl_open(&c);

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/image", dir);
    dbl_kill_types_at(x, 3);
    xmig_job_params_default(&p);
    p.kind = XMIG_JOB_SAVE;
    p.engine = XMIG_ENGINE_XMIG;
    p.domain = "guest";
    p.dest = path;
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_GONE);
    ASSERT_TRUE(strcmp(xmig_guest_where(r.guest), "gone") == 0);
    /* The job's error first, then what became of the guest. */
    ASSERT_TRUE(strstr(xmig_xen_error(x), "cannot read page types") != NULL);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "cannot read page types") <
                strstr(xmig_xen_error(x), "; domain 7 ended here during the "
                                          "job"));
    ASSERT_TRUE(strstr(xmig_xen_error(x), "log-dirty") == NULL);
    if (test_cur_failed)
        printf("  error: %s\n", xmig_xen_error(x));
    /* No partial image is left, and nothing else in the directory. */
    ASSERT_TRUE(access(path, F_OK) < 0);
    ASSERT_INT_EQ(rmdir(dir), 0);
    xmig_xen_close(x);
}

/*
 * PV windows kept across passes are a VMA each.  At vm.max_map_count
 * (ENOMEM) the job gives them back and goes on per batch; a window that
 * cannot be kept once is mapped per batch, and the kept ones still serve.
 */
static void vma_exhausted(void)
{
    struct run_opts o = {.type = XMIG_DOM_PV,
                         .live = true,
                         .strategy = XMIG_STRATEGY_ARENA,
                         .batch = 64,
                         .vma_limit = 20,
                         .reuse = REUSE_ANY};

    run_with(&o);
}

static void keep_fails_once(void)
{
    struct run_opts o = {.type = XMIG_DOM_PV,
                         .live = true,
                         .strategy = XMIG_STRATEGY_ARENA,
                         .batch = 64,
                         .fail_after = 10};

    run_with(&o);
}

/* Jobs of one process share the budget of kept windows. */
static void keep_budget(void)
{
    struct run_opts o = {.type = XMIG_DOM_PV,
                         .live = true,
                         .strategy = XMIG_STRATEGY_ARENA,
                         .batch = 64,
                         .reuse = REUSE_NONE};
    unsigned int all = xmig__kept_reserve(SIZE_MAX), again;

    ASSERT_TRUE(all > 0);
    run_with(&o); /* another job holds every window: nothing kept */
    xmig__kept_release(all);
    o.reuse = REUSE_USUAL;
    run_with(&o);
    /* Both jobs gave back what they took. */
    again = xmig__kept_reserve(SIZE_MAX);
    ASSERT_INT_EQ(again, all);
    xmig__kept_release(again);
}

/*
 * A PV guest sizes our copy of its p2m and our bitmaps with the max_pfn
 * it writes itself: beyond what its maximum memory explains, refused
 * before anything is read or allocated by it.
 */
static void huge_max_pfn(bool live)
{
    struct dbl_config c = {.type = XMIG_DOM_PV,
                           .domid = 4,
                           .nr_pfns = 3000,
                           .max_pfn = 1ULL << 27};
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    struct xmig_job_params p;
    struct xmig_job_result r;
    struct dbl_stats ds;
    xmig_xen *x = dbl_open(&c);
    int fd = mkstemp(path);

    close(fd);
    xmig_job_params_default(&p);
    p.kind = XMIG_JOB_SAVE;
    p.engine = XMIG_ENGINE_XMIG;
    p.domain = "guest";
    p.dest = path;
    p.live = live;
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "domain 4 claims a p2m of 134217728 "
                                          "pfns") != NULL);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "at most 1048576") != NULL);
    if (test_cur_failed)
        printf("  error: %s\n", xmig_xen_error(x));
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.map_calls, 1); /* the shared info page, no more */
    ASSERT_U64_EQ(ds.live_pages, 0);
    ASSERT_INT_EQ(dbl_guest(x)->suspends, 0);
    ASSERT_TRUE(!dbl_guest(x)->logdirty);
    unlink(path);
    xmig_xen_close(x);
}

/* A save of the double's HVM guest to path, a name no file holds yet. */
static void hvm_params(struct xmig_job_params *p, char *path,
                       enum xmig_engine engine, bool live)
{
    int fd = mkstemp(path);

    if (fd >= 0)
        close(fd);
    unlink(path);
    xmig_job_params_default(p);
    p->kind = XMIG_JOB_SAVE;
    p->engine = engine;
    p->domain = "guest";
    p->dest = path;
    p->live = live;
}

/* A device model xmig cannot save (in a stub domain): refused up front. */
static void hvm_stubdom_refused(void)
{
    struct dbl_config c = {.type = XMIG_DOM_HVM, .domid = 4, .nr_pfns = 64};
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    struct xmig_job_params p;
    struct xmig_job_result r;
    struct dbl_stats ds;
    xmig_xen *x = dbl_open(&c);
    struct stat st;

    dbl_guest(x)->dm_stubdom = true;
    hvm_params(&p, path, XMIG_ENGINE_XMIG, false);
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "stub domain") != NULL);
    /* No stream, so nothing it cost. */
    ASSERT_INT_EQ(r.cost.dom0_cpu_ns, -1);
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_SOURCE);
    ASSERT_INT_EQ(dbl_guest(x)->suspends, 0);
    ASSERT_INT_EQ(dbl_guest(x)->dm_logdirty_calls, 0);
    ASSERT_TRUE(!dbl_guest(x)->logdirty);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.map_calls, 0);
    ASSERT_TRUE(stat(path, &st) != 0); /* no file: nothing was written */
    unlink(path);
    xmig_xen_close(x);
}

/*
 * HVM: QEMU logs its own writes from before the first pass until the
 * stream is out (it still did when the guest suspended), and its state and
 * xenstore keys follow the libxc stream as libxl writes them.
 */
static void hvm_save(enum xmig_engine engine, bool live, bool physmap)
{
    static const size_t holes[] = {5, 6};
    struct dbl_config c = {.type = XMIG_DOM_HVM,
                           .domid = 4,
                           .nr_pfns = 2048,
                           .holes = holes,
                           .nr_holes = 2};
    char path[] = "/tmp/xmig-test-engine-XXXXXX", vpath[64];
    struct xmig_job_params p;
    struct xmig_job_result r;
    struct walk *w = calloc(1, sizeof(*w));
    xmig_xen *x = dbl_open(&c);
    struct dbl_guest *g = dbl_guest(x);
    uint8_t *img;
    size_t len = 0;
    int vr;

    g->dm_no_physmap = !physmap;
    hvm_params(&p, path, engine, live);
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), 0);
    if (test_cur_failed)
        printf("  error: %s\n", xmig_xen_error(x));
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_DESTINATION);
    ASSERT_TRUE(g->dm_logdirty_at_suspend);
    ASSERT_TRUE(!g->dm_logdirty);
    ASSERT_INT_EQ(g->dm_logdirty_calls, 2);
    ASSERT_INT_EQ(g->dm_states, 1);
    ASSERT_TRUE(!g->dm_saved);        /* the state's file is gone */
    ASSERT_INT_EQ(g->dm_releases, 0); /* a snapshot's state, as xl save */
    img = slurp(path, &len);
    ASSERT_TRUE(img != NULL && w != NULL);
    if (img && w) {
        /* The double's libxenguest writes a libxc END and nothing else. */
        if (engine == XMIG_ENGINE_XMIG)
            ASSERT_TRUE(walk(img, len, x, w));
        else
            ASSERT_TRUE(
                walk_libxl_tail(img, len, 48 + le32(img + 44) + 16 + 8 + 8, w));
        ASSERT_INT_EQ(w->emu_xs, physmap ? 1 : 0);
        ASSERT_INT_EQ(w->emu_ctx, 1);
        ASSERT_INT_EQ(w->emu_last, 3); /* the state comes last */
        ASSERT_INT_EQ(w->emu_ctx_len, sizeof(DBL_DM_STATE) - 1);
        if (engine == XMIG_ENGINE_XMIG)
            ASSERT_U64_EQ(w->pages, 2046);
    }
    /* Without the physmap keys (see walk_libxl_tail), Xen's checker. */
    if (engine == XMIG_ENGINE_XMIG && !physmap) {
        vr = verify_stream(path);
        if (vr != 0)
            TEST_FAIL("verify-stream-v2 rejected the stream (status %d)", vr);
    }
    free(img);
    free(w);
    unlink(path);
    snprintf(vpath, sizeof(vpath), "%s.verify", path);
    unlink(vpath);
    xmig_xen_close(x);
}

/* QEMU's state cannot be read: the guest runs on, QEMU no longer logs. */
static void hvm_state_fails(void)
{
    struct dbl_config c = {.type = XMIG_DOM_HVM, .domid = 4, .nr_pfns = 256};
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    struct xmig_job_params p;
    struct xmig_job_result r;
    struct dbl_stats ds;
    xmig_xen *x = dbl_open(&c);
    struct dbl_guest *g = dbl_guest(x);
    struct stat st;

    g->dm_refuse_state = true;
    hvm_params(&p, path, XMIG_ENGINE_XMIG, false);
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "QEMU's saved state") != NULL);
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_SOURCE);
    ASSERT_INT_EQ(g->suspends, 1);
    ASSERT_INT_EQ(g->resumes, 1);
    ASSERT_TRUE(!g->suspended && !g->destroyed);
    ASSERT_TRUE(!g->dm_logdirty && !g->logdirty);
    ASSERT_TRUE(g->dm_discards >= 1);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0);
    ASSERT_TRUE(stat(path, &st) != 0); /* no image left */
    unlink(path);
    xmig_xen_close(x);
}

/* ---- what a job costs dom0 and Xen (struct xmig_cost) ---- */

struct cost_case {
    enum xmig_domtype type;
    enum xmig_engine engine;
    enum xmig_strategy strategy;
    bool zap;       /* the kernel's batched unmap */
    bool perfc;     /* Xen's counters */
    bool reset_mid; /* someone resets the counters during the job */
    struct xmig_job_result r;
    struct dbl_stats before, after;
};

static void reset_at_suspend(void *arg, const struct xmig_event *ev)
{
    if (ev->type == XMIG_EV_PHASE && strcmp(ev->phase, "suspend") == 0 &&
        xmig_perfc_reset(arg) < 0)
        TEST_FAIL("%s", "cannot reset the double's counters");
}

static void cost_job(struct cost_case *k)
{
    struct dbl_config c = {
        .type = k->type,
        .domid = 4,
        .nr_pfns = 3000,
        .pagetables = k->type == XMIG_DOM_PV,
        .zap = k->zap,
        .perfc = k->perfc,
    };
    char path[] = "/tmp/xmig-test-engine-XXXXXX";
    struct xmig_job_params p;
    xmig_xen *x = dbl_open(&c);
    int fd = mkstemp(path);

    close(fd);
    xmig_job_params_default(&p);
    p.kind = XMIG_JOB_SAVE;
    p.engine = k->engine;
    p.arena.strategy = k->strategy;
    p.domain = "guest";
    p.dest = path;
    p.keep = true;
    if (k->reset_mid) {
        p.event = reset_at_suspend;
        p.event_arg = x;
    }
    /*
     * Counters that did not start at zero, and that are past what the
     * job adds after a reset: only differences count.
     */
    if (k->perfc) {
        xmig_pfn_t f[16];
        int err[16];
        unsigned int i, b;
        void *m;

        for (b = 0; b < 64; b++) {
            for (i = 0; i < 16; i++)
                f[i] = dbl_pfn_to_frame(x, b * 16 + i);
            m = x->ops->map(x, 4, 16, f, err);
            ASSERT_PTR_NONNULL(m);
            if (m)
                x->ops->unmap(x, m, 16);
        }
    }
    dbl_get_stats(x, &k->before);
    ASSERT_INT_EQ(xmig_job_run(x, &p, &k->r), 0);
    if (test_cur_failed)
        printf("  error: %s\n", xmig_xen_error(x));
    dbl_get_stats(x, &k->after);
    ASSERT_U64_EQ(k->after.live_pages, 0);
    unlink(path);
    xmig_xen_close(x);
}

/*
 * The window spans every mapping and unmapping of the job, the kept PV
 * windows that go after the stream included: nothing the double counted
 * during the job is missing from the result.
 */
static void cost_covers_job(struct cost_case *k)
{
    int64_t cpu, traps, calls;

    cost_job(k);
    cpu = (int64_t)(k->after.dom0_cpu_ns - k->before.dom0_cpu_ns);
    traps = (int64_t)(k->after.traps - k->before.traps);
    calls = (int64_t)(k->after.hypercalls - k->before.hypercalls);
    ASSERT_TRUE(cpu > 0);
    ASSERT_INT_EQ(k->r.cost.dom0_cpu_ns, cpu);
    if (k->perfc) {
        ASSERT_INT_EQ(k->r.cost.traps, traps);
        ASSERT_INT_EQ(k->r.cost.hypercalls, calls);
        ASSERT_TRUE(calls > 0);
    } else {
        ASSERT_INT_EQ(k->r.cost.traps, -1);
        ASSERT_INT_EQ(k->r.cost.hypercalls, -1);
    }
}

static void cost_pv_kept(void)
{
    struct cost_case k = {.type = XMIG_DOM_PV,
                          .engine = XMIG_ENGINE_XMIG,
                          .strategy = XMIG_STRATEGY_ARENA,
                          .perfc = true};

    cost_covers_job(&k);
    /* Stock kernel: every page the arena mapped was unmapped, trapping. */
    ASSERT_TRUE(k.r.engine.arena.frames_mapped > 0);
    ASSERT_TRUE(k.r.cost.traps >= (int64_t)k.r.engine.arena.frames_mapped);
    ASSERT_TRUE(k.r.engine.reused > 0 || k.r.engine.skipped > 0);
    /* Mapping and trapping, at the double's price: no more, no less. */
    ASSERT_TRUE(k.r.cost.dom0_cpu_ns >=
                (int64_t)(k.r.engine.arena.frames_mapped *
                          (DBL_CPU_NS_PER_MAP + DBL_CPU_NS_PER_TRAP)));
    ASSERT_INT_EQ(
        (k.r.cost.dom0_cpu_ns - k.r.cost.traps * DBL_CPU_NS_PER_TRAP) %
            DBL_CPU_NS_PER_MAP,
        0);
}

/*
 * The default, kernel: the batched unmap where the kernel has it, and on a
 * stock kernel exit (a worker maps and writes), never the trapping arena.
 */
static void default_strategy(void)
{
    static const enum xmig_domtype types[] = {XMIG_DOM_PV, XMIG_DOM_PVH};
    size_t t;
    int zap;

    for (t = 0; t < 2; t++) {
        for (zap = 0; zap < 2; zap++) {
            struct xmig_job_params d;
            struct cost_case k = {.type = types[t],
                                  .engine = XMIG_ENGINE_XMIG,
                                  .zap = zap,
                                  .perfc = true};

            xmig_job_params_default(&d);
            k.strategy = d.arena.strategy;
            cost_job(&k);
            ASSERT_INT_EQ(k.r.engine.strategy,
                          zap ? XMIG_STRATEGY_KERNEL : XMIG_STRATEGY_EXIT);
            if (!zap) {
                /* The worker mapped every page. */
                ASSERT_TRUE(k.after.worker_pages - k.before.worker_pages >=
                            2990);
                ASSERT_TRUE(k.r.engine.arena.requests > 0);
            }
        }
    }
}

/* The batched unmap: no trapped write at all, hypercalls instead. */
static void cost_pvh_zap(void)
{
    struct cost_case k = {.type = XMIG_DOM_PVH,
                          .engine = XMIG_ENGINE_XMIG,
                          .strategy = XMIG_STRATEGY_KERNEL,
                          .zap = true,
                          .perfc = true};
    struct cost_case pb = {.type = XMIG_DOM_PVH,
                           .engine = XMIG_ENGINE_XMIG,
                           .strategy = XMIG_STRATEGY_PER_BATCH,
                           .perfc = true};

    cost_covers_job(&k);
    ASSERT_INT_EQ(k.r.engine.strategy, XMIG_STRATEGY_KERNEL);
    ASSERT_INT_EQ(k.r.cost.traps, 0);
    ASSERT_TRUE(k.r.cost.hypercalls >
                (int64_t)(k.after.type_calls - k.before.type_calls));
    /* Per batch, as stock: one per page. */
    cost_covers_job(&pb);
    ASSERT_INT_EQ(pb.r.cost.traps, (int64_t)pb.r.engine.arena.frames_mapped);
    ASSERT_INT_EQ(pb.r.cost.dom0_cpu_ns,
                  (int64_t)pb.r.engine.arena.frames_mapped *
                      (DBL_CPU_NS_PER_MAP + DBL_CPU_NS_PER_TRAP));
}

static void cost_no_perfc(void)
{
    struct cost_case k = {.type = XMIG_DOM_PV,
                          .engine = XMIG_ENGINE_XMIG,
                          .strategy = XMIG_STRATEGY_ARENA};

    cost_covers_job(&k);
}

/* The libxc engine is measured as well: the double's pretends per batch. */
static void cost_libxc(void)
{
    struct cost_case k = {
        .type = XMIG_DOM_PV, .engine = XMIG_ENGINE_LIBXC, .perfc = true};

    cost_covers_job(&k);
    ASSERT_INT_EQ(k.r.cost.traps, 3000 + 1000 + 300 + 40);
}

/* Counters reset meanwhile: unknown, not a wrapped-around number. */
static void cost_reset_mid(void)
{
    struct cost_case k = {.type = XMIG_DOM_PVH,
                          .engine = XMIG_ENGINE_XMIG,
                          .strategy = XMIG_STRATEGY_PER_BATCH,
                          .perfc = true,
                          .reset_mid = true};

    cost_job(&k);
    /* It counted on after the reset, less than before the job. */
    ASSERT_TRUE(k.after.traps > 0 && k.after.traps < k.before.traps);
    ASSERT_TRUE(k.after.hypercalls > 0 &&
                k.after.hypercalls < k.before.hypercalls);
    ASSERT_INT_EQ(k.r.cost.traps, -1);
    ASSERT_INT_EQ(k.r.cost.hypercalls, -1);
    /* dom0's CPU time is Xen's own account: no reset touches it. */
    ASSERT_INT_EQ(k.r.cost.dom0_cpu_ns,
                  (int64_t)(k.after.dom0_cpu_ns - k.before.dom0_cpu_ns));
}

static void cost_arithmetic(void)
{
    struct xmig_cost a = {100, 5, 7}, b = {350, 4, 9}, d;
    struct dbl_config c = {.type = XMIG_DOM_PVH, .domid = 4, .nr_pfns = 8};
    xmig_xen *x = dbl_open(&c);
    struct xmig_cost now;

    xmig_cost_diff(&a, &b, &d);
    ASSERT_INT_EQ(d.dom0_cpu_ns, 250);
    ASSERT_INT_EQ(d.traps, -1); /* went back */
    ASSERT_INT_EQ(d.hypercalls, 2);
    a.hypercalls = -1;
    xmig_cost_diff(&a, &b, &d);
    ASSERT_INT_EQ(d.hypercalls, -1);
    ASSERT_TRUE(xmig_cost_per_gib(3000000000LL, 1ULL << 31) == 1.5e9);
    ASSERT_TRUE(xmig_cost_per_gib(-1, 1ULL << 30) < 0);
    ASSERT_TRUE(xmig_cost_per_gib(5, 0) < 0);
    ASSERT_TRUE(xmig_cost_per_page(3, 4) == 0.75);
    ASSERT_TRUE(xmig_cost_per_page(-1, 4) < 0);
    ASSERT_TRUE(xmig_cost_per_page(3, 0) < 0);
    /* Reading what is not there leaves a job's error message alone. */
    xmig__seterr(x, EIO, "the job's own failure");
    errno = EIO;
    xmig_cost_read(x, &now);
    ASSERT_TRUE(strcmp(xmig_xen_error(x), "the job's own failure") == 0);
    ASSERT_INT_EQ(errno, EIO);
    ASSERT_INT_EQ(now.dom0_cpu_ns, 0);
    ASSERT_INT_EQ(now.traps, -1);
    ASSERT_INT_EQ(now.hypercalls, -1);
    xmig_xen_close(x);
}

int main(void)
{
    if (access(VERIFY, X_OK) != 0) {
        /* Not a skip: the check is part of the test. */
        printf("%s is missing: install xen-utils-%s\n", VERIFY,
               XMIG_XEN_RELEASE);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    TEST_START("pvh, live, arena: verify-stream-v2 accepts it, redirtied "
               "pages skipped, last copies current");
    run(XMIG_DOM_PVH, true, XMIG_STRATEGY_ARENA, true);
    TEST_DONE();
    TEST_START("pvh, live, --no-skip: the hot set again every pass");
    run(XMIG_DOM_PVH, true, XMIG_STRATEGY_ARENA, false);
    TEST_DONE();
    TEST_START("pvh, not live, per-batch");
    run(XMIG_DOM_PVH, false, XMIG_STRATEGY_PER_BATCH, true);
    TEST_DONE();
    TEST_START("pv, live, arena: page tables normalised, redirtied skipped");
    run(XMIG_DOM_PV, true, XMIG_STRATEGY_ARENA, true);
    TEST_DONE();
    TEST_START("pv, live, --no-skip: mappings reused across passes");
    run(XMIG_DOM_PV, true, XMIG_STRATEGY_ARENA, false);
    TEST_DONE();
    TEST_START("pv, not live, per-batch");
    run(XMIG_DOM_PV, false, XMIG_STRATEGY_PER_BATCH, true);
    TEST_DONE();
    TEST_START("pv, live, kernel strategy: exit without the ioctl");
    run(XMIG_DOM_PV, true, XMIG_STRATEGY_KERNEL, false);
    TEST_DONE();
    TEST_START("pv and pvh, live: every batch from 1 to 1024 pages");
    batches(XMIG_STRATEGY_ARENA);
    TEST_DONE();
    TEST_START("pvh, live, exit: the worker writes the pages, verify-stream-v2 "
               "accepts it, last copies current");
    run(XMIG_DOM_PVH, true, XMIG_STRATEGY_EXIT, true);
    TEST_DONE();
    TEST_START("pv, live, exit, --no-skip: page tables normalised, the "
               "worker's mappings reused across passes");
    run(XMIG_DOM_PV, true, XMIG_STRATEGY_EXIT, false);
    TEST_DONE();
    TEST_START("pv and pvh, not live, exit");
    run(XMIG_DOM_PV, false, XMIG_STRATEGY_EXIT, true);
    run(XMIG_DOM_PVH, false, XMIG_STRATEGY_EXIT, true);
    TEST_DONE();
    TEST_START("exit: records of holes alone need no worker");
    exit_holes();
    TEST_DONE();
    TEST_START("PVH: the first pass stops once it has found every page");
    {
        static const enum xmig_strategy st[] = {XMIG_STRATEGY_ARENA,
                                                XMIG_STRATEGY_EXIT};
        size_t i;

        for (i = 0; i < 2; i++) {
            sweep_ends(false, st[i], false);
            sweep_ends(true, st[i], false);
            sweep_ends(false, st[i], true);
            sweep_ends(true, st[i], true);
        }
    }
    TEST_DONE();
    TEST_START("PVH: a page ballooned into the gap meanwhile goes out");
    sweep_ends_populated(XMIG_STRATEGY_ARENA);
    sweep_ends_populated(XMIG_STRATEGY_EXIT);
    TEST_DONE();
    TEST_START("exit: the next batch's types read while the worker writes");
    exit_overlap(false);
    TEST_DONE();
    TEST_START("exit: a failure meanwhile kills the writing worker, no wait");
    exit_overlap(true);
    TEST_DONE();
    TEST_START("pv and pvh: the guest crashes during a live save: its "
               "error, and 'gone'");
    guest_crashes(XMIG_DOM_PV);
    guest_crashes(XMIG_DOM_PVH);
    TEST_DONE();
    TEST_START("exit: every batch from 1 to 1024 pages");
    batches(XMIG_STRATEGY_EXIT);
    TEST_DONE();
    TEST_START("exit: byte for byte the stream of arena (pv, pvh; live, not)");
    same_as_arena(XMIG_DOM_PV, true, 0);
    same_as_arena(XMIG_DOM_PV, false, 0);
    same_as_arena(XMIG_DOM_PVH, true, 0);
    same_as_arena(XMIG_DOM_PVH, false, 0);
    same_as_arena(XMIG_DOM_PV, true, 7);
    TEST_DONE();
    TEST_START("pv and pvh: first pass in ascending 512-aligned runs, "
               "pages dirtied again as XALLOC, their data later");
    first_pass_runs(XMIG_STRATEGY_ARENA);
    first_pass_runs(XMIG_STRATEGY_EXIT);
    first_pass_runs_not_live();
    TEST_DONE();
    TEST_START("pv and pvh: a page sent as XALLOC, then ballooned out, "
               "goes as zeros");
    xalloc_then_ballooned(XMIG_DOM_PVH, XMIG_STRATEGY_ARENA);
    xalloc_then_ballooned(XMIG_DOM_PV, XMIG_STRATEGY_ARENA);
    xalloc_then_ballooned(XMIG_DOM_PVH, XMIG_STRATEGY_EXIT);
    xalloc_then_ballooned(XMIG_DOM_PV, XMIG_STRATEGY_EXIT);
    TEST_DONE();
    TEST_START("hypercall buffers: once per handle, however many batches");
    hcall_buffers();
    TEST_DONE();
    TEST_START("pv, live: at vm.max_map_count the kept windows are given "
               "back and the save completes");
    vma_exhausted();
    TEST_DONE();
    TEST_START("pv, live: a window that cannot be kept is mapped per batch");
    keep_fails_once();
    TEST_DONE();
    TEST_START("pv, live: jobs share the budget of kept windows");
    keep_budget();
    TEST_DONE();
    TEST_START("pv: a max_pfn beyond 4 x maxmem is refused, live or not");
    huge_max_pfn(true);
    huge_max_pfn(false);
    TEST_DONE();
    TEST_START("hvm: a device model in a stub domain is refused, guest "
               "untouched");
    hvm_stubdom_refused();
    TEST_DONE();
    TEST_START("hvm save: QEMU logs meanwhile; its keys and state follow "
               "the libxc stream");
    hvm_save(XMIG_ENGINE_XMIG, false, true);
    TEST_DONE();
    TEST_START("hvm save without physmap keys: verify-stream-v2 accepts it");
    hvm_save(XMIG_ENGINE_XMIG, false, false);
    TEST_DONE();
    TEST_START("hvm, live: QEMU logs from the first pass to the end");
    hvm_save(XMIG_ENGINE_XMIG, true, true);
    TEST_DONE();
    TEST_START("hvm, libxc engine: the same device model records");
    hvm_save(XMIG_ENGINE_LIBXC, false, true);
    TEST_DONE();
    TEST_START("hvm, libxc engine, live: QEMU logs while libxenguest runs");
    hvm_save(XMIG_ENGINE_LIBXC, true, true);
    TEST_DONE();
    TEST_START("hvm: QEMU's state unreadable: the guest runs on, nothing "
               "left behind");
    hvm_state_fails();
    TEST_DONE();
    TEST_START("cost: pv, kept windows: dom0 CPU, traps and hypercalls of "
               "the whole job, the unmapping after the stream included");
    cost_pv_kept();
    TEST_DONE();
    TEST_START("default strategy: kernel where the kernel has the batched "
               "unmap, exit elsewhere");
    default_strategy();
    TEST_DONE();
    TEST_START("cost: pvh, batched unmap: no trapped writes; per batch: one "
               "a page");
    cost_pvh_zap();
    TEST_DONE();
    TEST_START("cost: no hypervisor counters: traps and hypercalls unknown, "
               "dom0 CPU still measured");
    cost_no_perfc();
    TEST_DONE();
    TEST_START("cost: the libxc engine's job is measured too");
    cost_libxc();
    TEST_DONE();
    TEST_START("cost: counters reset during the job: unknown");
    cost_reset_mid();
    TEST_DONE();
    TEST_START("cost: differences, per GiB and per page; reading keeps the "
               "job's error");
    cost_arithmetic();
    TEST_DONE();
    return TEST_EXIT();
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/* The mapping arena against the test double. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "test.h"
#include "xen-double.h"

static xmig_pfn_t frames[8192];

static xmig_xen *guest(size_t nr, bool zap)
{
    struct dbl_config c = {
        .type = XMIG_DOM_HVM,
        .domid = 3,
        .nr_pfns = nr,
        .zap = zap,
    };
    size_t i;

    for (i = 0; i < nr && i < 8192; i++)
        frames[i] = i;
    return dbl_open(&c);
}

static struct xmig_arena_params params(enum xmig_strategy s, unsigned batch,
                                       bool bg)
{
    struct xmig_arena_params p;

    xmig_arena_params_default(&p);
    p.strategy = s;
    p.batch = batch;
    p.background = bg;
    return p;
}

/* No child process is left, running or unreaped. */
static bool no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int c;

    if (!f)
        return 0;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static size_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;

    if (!d)
        return 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Every page of the window holds the frame it claims to. */
static bool window_ok(const xmig_window *w, const xmig_pfn_t *f, unsigned n)
{
    unsigned int i;

    for (i = 0; i < n; i++) {
        const uint64_t *p = xmig_window_page(w, i);

        if (!p || p[0] != f[i] || p[511] != dbl_frame_word(f[i]))
            return false;
    }
    return xmig_window_page(w, n) == NULL;
}

static void test_batches(enum xmig_strategy s, bool zap, bool bg)
{
    static const unsigned int batches[] = {1, 7, 64, 1024};
    size_t b;

    for (b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        const size_t nr = 3000;
        unsigned int batch = batches[b];
        struct xmig_arena_params p = params(s, batch, bg);
        xmig_xen *x = guest(nr, zap);
        struct xmig_arena_stats st;
        struct dbl_stats ds;
        xmig_arena *a = xmig_arena_open(x, 3, &p);
        size_t off, bad = 0;

        for (off = 0; off < nr; off += batch) {
            unsigned int n = nr - off < batch ? (unsigned)(nr - off) : batch;
            xmig_window *w = xmig_arena_map(a, frames + off, n, NULL);

            if (!w || xmig_window_count(w) != n ||
                !window_ok(w, frames + off, n))
                bad++;
            xmig_arena_release(a, w);
        }
        ASSERT_INT_EQ(bad, 0);
        ASSERT_INT_EQ(xmig_arena_drain(a), 0);
        xmig_arena_get_stats(a, &st);
        ASSERT_U64_EQ(st.frames_mapped, nr);
        ASSERT_U64_EQ(st.map_calls, (nr + batch - 1) / batch);
        if (s == XMIG_STRATEGY_PER_BATCH)
            ASSERT_U64_EQ(st.unmap_calls, st.map_calls);
        dbl_get_stats(x, &ds);
        ASSERT_U64_EQ(ds.live_pages, 0);
        ASSERT_U64_EQ(ds.hole_maps, 0);
        if (s == XMIG_STRATEGY_KERNEL && zap && nr / batch > p.slots)
            ASSERT_TRUE(ds.refill_calls > 0 && ds.zap_calls > 0);
        if (s == XMIG_STRATEGY_EXIT) {
            /* All mapped by the worker; nothing unmapped but by its exit. */
            ASSERT_U64_EQ(ds.worker_pages, nr);
            ASSERT_U64_EQ(ds.unmap_calls + ds.reclaim_calls + ds.zap_calls, 0);
            ASSERT_U64_EQ(st.unmap_calls, 1);
            ASSERT_TRUE(no_children());
        }
        /* Over-sized and empty batches are refused. */
        ASSERT_PTR_NULL(xmig_arena_map(a, frames, batch + 1, NULL));
        ASSERT_INT_EQ(errno, EINVAL);
        ASSERT_PTR_NULL(xmig_arena_map(a, frames, 0, NULL));
        ASSERT_INT_EQ(xmig_arena_close(a), 0);
        xmig_xen_close(x);
    }
}

static void test_frame_error(enum xmig_strategy s, bool zap)
{
    struct xmig_arena_params p = params(s, 256, false);
    xmig_xen *x = guest(1024, zap);
    xmig_arena *a = xmig_arena_open(x, 3, &p);
    struct dbl_stats ds;
    int err[256];
    xmig_window *w;
    unsigned int i, nbad = 0;

    /* Let the kernel strategy keep a mapping first, then fail a refill. */
    w = xmig_arena_map(a, frames + 512, 256, NULL);
    xmig_arena_release(a, w);
    xmig_arena_drain(a);

    dbl_fail_frame(x, 300, EFAULT);
    w = xmig_arena_map(a, frames + 256, 256, err);
    ASSERT_PTR_NULL(w);
    ASSERT_INT_EQ(errno, EFAULT);
    ASSERT_INT_EQ(err[300 - 256], EFAULT);
    for (i = 0; i < 256; i++)
        nbad += err[i] != 0;
    ASSERT_INT_EQ(nbad, 1);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0);
    /* The worker holding the failed batch is gone before map returns. */
    ASSERT_TRUE(no_children());

    /* The arena recovers: the next batch maps fine. */
    dbl_fail_frame(x, XMIG_INVALID_FRAME, 0);
    w = xmig_arena_map(a, frames, 256, err);
    ASSERT_PTR_NONNULL(w);
    if (w)
        ASSERT_TRUE(window_ok(w, frames, 256));
    xmig_arena_release(a, w);
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0);
    xmig_xen_close(x);
}

static void test_call_fails(enum xmig_strategy s)
{
    struct xmig_arena_params p = params(s, 128, true);
    xmig_xen *x = guest(1024, true);
    xmig_arena *a = xmig_arena_open(x, 3, &p);
    struct dbl_stats ds;

    dbl_fail_next_map(x, ENOMEM);
    ASSERT_PTR_NULL(xmig_arena_map(a, frames, 128, NULL));
    ASSERT_INT_EQ(errno, ENOMEM);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0);
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
    xmig_xen_close(x);
}

static void test_drain_on_close(enum xmig_strategy s, bool zap)
{
    struct xmig_arena_params p = params(s, 64, true);
    xmig_xen *x = guest(4096, zap);
    xmig_arena *a;
    struct dbl_stats ds;
    xmig_window *kept[2];
    unsigned int i;

    p.slots = 16;
    p.reclaim = 8;
    a = xmig_arena_open(x, 3, &p);
    dbl_set_reclaim_delay_us(x, 2000);
    for (i = 0; i < 40; i++) {
        xmig_window *w = xmig_arena_map(a, frames + i * 64, 64, NULL);

        ASSERT_PTR_NONNULL(w);
        xmig_arena_release(a, w);
    }
    /* Two windows are never given back: close must unmap them too. */
    kept[0] = xmig_arena_map(a, frames + 40 * 64, 64, NULL);
    kept[1] = xmig_arena_map(a, frames + 41 * 64, 64, NULL);
    ASSERT_TRUE(kept[0] && kept[1]);
    dbl_get_stats(x, &ds);
    if (s == XMIG_STRATEGY_EXIT)
        ASSERT_U64_EQ(ds.worker_pages, 42 * 64);
    else
        ASSERT_TRUE(ds.live_pages >= 2 * 64);
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0);
    if (s == XMIG_STRATEGY_EXIT)
        ASSERT_TRUE(no_children());
    else
        ASSERT_TRUE(ds.reclaim_calls + ds.zap_calls + ds.unmap_calls > 0);
    xmig_xen_close(x);
}

/*
 * The worker dies in the middle of a map (the OOM killer, say): the map
 * fails with an error, promptly, even when the worker's socket outlives
 * it in another process; the dead worker is reaped, and the next map
 * works with a new one.
 */
static void test_exit_worker_dies(unsigned int heir_ms)
{
    struct xmig_arena_params p = params(XMIG_STRATEGY_EXIT, 64, false);
    xmig_xen *x = guest(1024, false);
    xmig_arena *a = xmig_arena_open(x, 3, &p);
    struct timespec t0, t1;
    xmig_window *w;
    double secs;
    int err;

    w = xmig_arena_map(a, frames, 64, NULL);
    ASSERT_PTR_NONNULL(w);
    xmig_arena_release(a, w);
    dbl_kill_mapper(x, heir_ms);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    w = xmig_arena_map(a, frames + 64, 64, NULL);
    err = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    ASSERT_PTR_NULL(w);
    ASSERT_INT_EQ(err, EPIPE);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "killed by signal 9") != NULL);
    ASSERT_TRUE(secs < (heir_ms ? 2.5 : 0.5));
    ASSERT_TRUE(no_children());

    w = xmig_arena_map(a, frames + 64, 64, NULL);
    ASSERT_PTR_NONNULL(w);
    if (w)
        ASSERT_TRUE(window_ok(w, frames + 64, 64));
    xmig_arena_release(a, w);
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
    ASSERT_TRUE(no_children());
    xmig_xen_close(x);
}

/*
 * A worker retires after 8192 mappings (its VMAs stay well under
 * vm.max_map_count): the next map starts another, and no page is lost.
 */
static void test_exit_retires(void)
{
    struct xmig_arena_params p = params(XMIG_STRATEGY_EXIT, 1, false);
    xmig_xen *x = guest(8192, false);
    xmig_arena *a = xmig_arena_open(x, 3, &p);
    struct xmig_arena_stats st;
    struct dbl_stats ds;
    size_t i, bad = 0;
    const size_t n = 8192 + 100;

    for (i = 0; i < n; i++) {
        xmig_window *w = xmig_arena_map(a, frames + i % 8192, 1, NULL);

        if (!w || !window_ok(w, frames + i % 8192, 1))
            bad++;
        xmig_arena_release(a, w);
    }
    ASSERT_INT_EQ(bad, 0);
    ASSERT_INT_EQ(xmig_arena_drain(a), 0);
    xmig_arena_get_stats(a, &st);
    ASSERT_U64_EQ(st.unmap_calls, 2); /* one retired, one drained */
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.worker_pages, n);
    ASSERT_TRUE(no_children());
    xmig_xen_close(x);
}

static void exit_cycle(xmig_xen *x)
{
    struct xmig_arena_params p = params(XMIG_STRATEGY_EXIT, 64, false);
    xmig_arena *a = xmig_arena_open(x, 3, &p);
    unsigned int i;

    for (i = 0; i < 8; i++) {
        xmig_window *w = xmig_arena_map(a, frames + i * 64, 64, NULL);

        ASSERT_PTR_NONNULL(w);
        xmig_arena_release(a, w);
    }
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
}

/* An arena's life leaves no descriptor, mapping or process behind. */
static void test_exit_no_leaks(void)
{
    xmig_xen *x = guest(1024, false);
    size_t fds, maps;

    /* The first one leaves the shared region to the next (see arena.c). */
    exit_cycle(x);
    fds = count_fds();
    maps = count_lines("/proc/self/maps");
    exit_cycle(x);
    exit_cycle(x);
    ASSERT_INT_EQ(count_fds(), fds);
    ASSERT_INT_EQ(count_lines("/proc/self/maps"), maps);
    ASSERT_TRUE(no_children());
    xmig_xen_close(x);
}

/* Jobs take it too (engine-exit.c): the job leaves no worker behind. */
static void test_exit_for_jobs(void)
{
    struct xmig_job_params jp;
    struct xmig_job_result r;
    struct dbl_config c = {
        .type = XMIG_DOM_PVH,
        .domid = 3,
        .nr_pfns = 64,
    };
    xmig_xen *x = dbl_open(&c);

    xmig_job_params_default(&jp);
    jp.kind = XMIG_JOB_SAVE;
    jp.domain = "3";
    jp.dest = "/dev/null";
    jp.engine = XMIG_ENGINE_XMIG;
    jp.arena.strategy = XMIG_STRATEGY_EXIT;
    jp.keep = true;
    ASSERT_INT_EQ(xmig_job_run(x, &jp, &r), 0);
    ASSERT_INT_EQ(r.engine.strategy, XMIG_STRATEGY_EXIT);
    ASSERT_U64_EQ(r.engine.pages, 64);
    ASSERT_TRUE(!dbl_guest(x)->suspended);
    ASSERT_TRUE(no_children());
    xmig_xen_close(x);
}

static void test_bulk_run(void)
{
    struct xmig_arena_params p = params(XMIG_STRATEGY_ARENA, 32, false);
    xmig_xen *x = guest(1024, false);
    xmig_window *w[8];
    struct dbl_stats ds;
    xmig_arena *a;
    unsigned int i;

    p.slots = 8;
    p.reclaim = 8;
    a = xmig_arena_open(x, 3, &p);
    for (i = 0; i < 8; i++)
        w[i] = xmig_arena_map(a, frames + i * 32, 32, NULL);
    for (i = 0; i < 8; i++)
        xmig_arena_release(a, w[i]);
    /* Eight adjacent windows, one call to unmap them all. */
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.reclaim_calls, 1);
    ASSERT_U64_EQ(ds.live_pages, 0);
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
    xmig_xen_close(x);
}

static void test_exhausted(void)
{
    struct xmig_arena_params p = params(XMIG_STRATEGY_ARENA, 16, false);
    xmig_xen *x = guest(1024, false);
    xmig_window *a1, *a2, *a3;
    xmig_arena *a;

    p.slots = 2;
    a = xmig_arena_open(x, 3, &p);
    a1 = xmig_arena_map(a, frames, 16, NULL);
    a2 = xmig_arena_map(a, frames + 16, 16, NULL);
    a3 = xmig_arena_map(a, frames + 32, 16, NULL);
    ASSERT_TRUE(a1 && a2);
    ASSERT_PTR_NULL(a3);
    ASSERT_INT_EQ(errno, ENOSPC);
    xmig_arena_release(a, a1);
    a3 = xmig_arena_map(a, frames + 32, 16, NULL);
    ASSERT_PTR_NONNULL(a3);
    if (a3)
        ASSERT_TRUE(window_ok(a3, frames + 32, 16));
    xmig_arena_release(a, a2);
    xmig_arena_release(a, a3);
    ASSERT_INT_EQ(xmig_arena_close(a), 0);
    xmig_xen_close(x);
}

static void test_kernel_fallback(void)
{
    struct xmig_arena_params p = params(XMIG_STRATEGY_KERNEL, 64, false);
    xmig_xen *x = guest(64, false);
    xmig_arena *a = xmig_arena_open(x, 3, &p);

    ASSERT_INT_EQ(xmig_arena_strategy(a), XMIG_STRATEGY_ARENA);
    xmig_arena_close(a);
    xmig_xen_close(x);

    x = guest(64, true);
    a = xmig_arena_open(x, 3, &p);
    ASSERT_INT_EQ(xmig_arena_strategy(a), XMIG_STRATEGY_KERNEL);
    xmig_arena_close(a);
    xmig_xen_close(x);
}

enum teardown {
    ALIVE_EBUSY, /* a live domain whose frame fails with EBUSY */
    ALIVE_EPERM, /* ... with an errno no teardown gives */
    XL_DESTROY,  /* xl destroy: xenstore entries gone, memory going */
    DYING_LATER, /* no xenstore change; Xen says dying after a while */
    GONE,        /* no such domain any more */
};

/*
 * A map that fails while the domain is destroyed fails with the errno of
 * whichever stage the teardown is at: the domain must count as vanished
 * all the same, and a live one must not.
 */
static void test_vanished(enum teardown how, enum xmig_strategy s)
{
    xmig_xen *x = guest(64, false);
    struct xmig_arena_params p = params(s, 16, false);
    struct xmig_dominfo info;
    struct dbl_stats ds;
    struct timespec t0, t1;
    xmig_arena *a = xmig_arena_open(x, 3, &p);
    xmig_window *w;
    char msg[256];
    double secs;
    bool gone;
    int err;

    ASSERT_INT_EQ(xmig_domain_info(x, 3, &info), 0);
    switch (how) {
    case ALIVE_EBUSY:
        dbl_fail_frame(x, 5, EBUSY);
        break;
    case ALIVE_EPERM:
        dbl_fail_frame(x, 5, EPERM);
        break;
    case XL_DESTROY:
        dbl_destroy_begin(x, false, 0);
        break;
    case DYING_LATER:
        dbl_destroy_begin(x, true, 4);
        break;
    case GONE:
        dbl_kill_domain(x);
        break;
    }
    w = xmig_arena_map(a, frames, 16, NULL);
    err = errno;
    ASSERT_PTR_NULL(w);
    ASSERT_INT_EQ(err, how == GONE          ? ESRCH
                       : how == ALIVE_EPERM ? EPERM
                                            : EBUSY);
    snprintf(msg, sizeof(msg), "%s", xmig_xen_error(x));
    ASSERT_TRUE(strstr(msg, "cannot map frame") != NULL);
    ASSERT_INT_EQ(xmig_arena_close(a), 0);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    gone = xmig_domain_vanished(x, &info, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    ASSERT_INT_EQ(gone, how != ALIVE_EBUSY && how != ALIVE_EPERM);
    /* The error stays the map's. */
    ASSERT_TRUE(strcmp(xmig_xen_error(x), msg) == 0);
    /* Only a teardown's errno on a live-looking domain is waited for. */
    ASSERT_TRUE(secs < (how == ALIVE_EBUSY ? 5.0 : 0.5));
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0);
    xmig_xen_close(x);
}

/*
 * What a job writes while its exit worker lives is not in the worker: a
 * fork would write-protect it (a trapped PTE write a page in a PV dom0)
 * and the job's next write would take a copy-on-write fault.
 */
static void test_nofork(void)
{
    size_t len = 3 * 4096 + 5, i;
    uint8_t *p = xmig__nofork_alloc(len);
    pid_t pid;
    int st = -1;

    ASSERT_PTR_NONNULL(p);
    if (!p)
        return;
    for (i = 0; i < len; i++)
        ASSERT_INT_EQ(p[i], 0);
    memset(p, 0xa5, len);
    pid = fork();
    if (pid == 0) {
        /* msync on an address with no mapping: ENOMEM. */
        void *page = (void *)((uintptr_t)p & ~(uintptr_t)4095);

        _exit(msync(page, 4096, MS_ASYNC) < 0 && errno == ENOMEM ? 0 : 1);
    }
    ASSERT_TRUE(pid > 0);
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_INT_EQ(p[len - 1], 0xa5);
    xmig__nofork_free(p);
    xmig__nofork_free(NULL);
}

int main(void)
{
    static const struct {
        enum xmig_strategy s;
        bool zap;
        const char *name;
    } cfg[] = {
        {XMIG_STRATEGY_PER_BATCH, false, "per-batch"},
        {XMIG_STRATEGY_ARENA, false, "arena"},
        {XMIG_STRATEGY_KERNEL, true, "kernel"},
        {XMIG_STRATEGY_EXIT, false, "exit"},
    };
    char name[96];
    size_t i;

    xmig_arena_close(NULL); /* NULL-safe */
    TEST_START("nofork: zeroed, and absent from a forked worker");
    test_nofork();
    TEST_DONE();
    for (i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++) {
        snprintf(name, sizeof(name), "%s: batch boundaries", cfg[i].name);
        TEST_START(name);
        test_batches(cfg[i].s, cfg[i].zap, false);
        TEST_DONE();
        snprintf(name, sizeof(name), "%s: batch boundaries, background",
                 cfg[i].name);
        TEST_START(name);
        test_batches(cfg[i].s, cfg[i].zap, true);
        TEST_DONE();
        snprintf(name, sizeof(name),
                 "%s: per-frame error leaves nothing mapped", cfg[i].name);
        TEST_START(name);
        test_frame_error(cfg[i].s, cfg[i].zap);
        TEST_DONE();
        snprintf(name, sizeof(name),
                 "%s: failed map call leaves nothing mapped", cfg[i].name);
        TEST_START(name);
        test_call_fails(cfg[i].s);
        TEST_DONE();
        snprintf(name, sizeof(name), "%s: close drains background unmap",
                 cfg[i].name);
        TEST_START(name);
        test_drain_on_close(cfg[i].s, cfg[i].zap);
        TEST_DONE();
    }
    TEST_START("arena: adjacent windows reclaimed in one call");
    test_bulk_run();
    TEST_DONE();
    TEST_START("arena: all windows in use, then one comes back");
    test_exhausted();
    TEST_DONE();
    TEST_START("kernel: falls back to arena without the ioctl");
    test_kernel_fallback();
    TEST_DONE();
    TEST_START("vanished: EBUSY while xl destroys the domain");
    test_vanished(XL_DESTROY, XMIG_STRATEGY_ARENA);
    TEST_DONE();
    TEST_START("vanished: EBUSY until Xen flags the domain dying");
    test_vanished(DYING_LATER, XMIG_STRATEGY_ARENA);
    TEST_DONE();
    TEST_START("vanished: ESRCH, the domain is gone");
    test_vanished(GONE, XMIG_STRATEGY_ARENA);
    TEST_DONE();
    TEST_START("vanished: not a live domain's EBUSY");
    test_vanished(ALIVE_EBUSY, XMIG_STRATEGY_ARENA);
    TEST_DONE();
    TEST_START("vanished: not a live domain's EPERM, and no waiting");
    test_vanished(ALIVE_EPERM, XMIG_STRATEGY_ARENA);
    TEST_DONE();
    TEST_START("exit: vanished, EBUSY while xl destroys the domain");
    test_vanished(XL_DESTROY, XMIG_STRATEGY_EXIT);
    TEST_DONE();
    TEST_START("exit: vanished, ESRCH, the domain is gone");
    test_vanished(GONE, XMIG_STRATEGY_EXIT);
    TEST_DONE();
    TEST_START("exit: the worker killed mid-map is an error");
    test_exit_worker_dies(0);
    TEST_DONE();
    TEST_START("exit: ... also while another process holds its socket");
    test_exit_worker_dies(3000);
    TEST_DONE();
    TEST_START("exit: a worker retires after 8192 mappings");
    test_exit_retires();
    TEST_DONE();
    TEST_START("exit: no descriptor, mapping or process left behind");
    test_exit_no_leaks();
    TEST_DONE();
    TEST_START("exit: taken by jobs, no worker left");
    test_exit_for_jobs();
    TEST_DONE();
    return TEST_EXIT();
}

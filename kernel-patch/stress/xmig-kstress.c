// SPDX-License-Identifier: GPL-2.0-only
/*
 * xmig-kstress DOMID PAGES SECONDS [WORKERS]
 *
 * Stress for kernel-patch/ in a PV dom0: many threads map frames of a
 * (paused) guest through /dev/xen/privcmd, read and checksum them, and drop
 * them again both ways -- munmap(), and IOCTL_PRIVCMD_UNMAP_RANGE followed by
 * a refill of the same VMA with IOCTL_PRIVCMD_MMAPBATCH_V2 -- while other
 * threads fault on ranges being cleared, munmap and recreate a mapping that
 * is being cleared, and fork children that map, clear and exit with
 * mappings still in place.  Every page read through a mapping must match
 * the checksum of the frame that should be there: a stale TLB entry after a
 * clear, or a clear that hit the wrong PTE, shows up as a mismatch.  The
 * kernel's own checks (CONFIG_DEBUG_VM, CONFIG_PAGE_TABLE_CHECK) watch the
 * rest; the caller looks for warnings in the kernel log.
 *
 * The guest must stay paused, so that its frames do not change.  GFNs
 * 0..PAGES-1 are probed; those that do not map are skipped.  On a kernel
 * without the ioctl (ENOTTY) only the munmap paths run.
 *
 * Prints one "kstress: ..." summary line; exit 0 when every check passed,
 * 1 on a mismatch or an unexpected error, 2 on bad usage or setup.
 * Built static (no Xen libraries) so that it runs in the testbed's dom0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../uapi/privcmd-xmig.h"

#define PAGE 4096UL

/* From include/uapi/xen/privcmd.h, to need no Xen headers. */
struct mmapbatch_v2 {
    unsigned int num;
    uint16_t dom;
    uint64_t addr;
    const uint64_t *arr;
    int *err;
};
#define IOCTL_MMAPBATCH_V2 _IOC(_IOC_NONE, 'P', 4, sizeof(struct mmapbatch_v2))

static int fd = -1;
static uint16_t domid;
static uint64_t *valid;       /* gfns that map */
static unsigned int nvalid;
static uint64_t *sums;        /* per probed gfn */
static int have_zap;
static double deadline;

static atomic_ulong n_map, n_zap, n_munmap, n_pages_ok, n_fork, n_faults,
    n_skipped, n_race_einval;
static atomic_int failed;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("kstress: FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    atomic_store(&failed, 1);
}

static uint64_t sum_page(const volatile uint64_t *p)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    unsigned int i;

    for (i = 0; i < PAGE / 8; i++)
        s = (s ^ p[i]) * 0x100000001b3ULL + i;
    return s;
}

static uint64_t rnd(volatile uint64_t *st)
{
    *st ^= *st << 13;
    *st ^= *st >> 7;
    *st ^= *st << 17;
    return *st;
}

/* MMAPBATCH_V2 of n gfns at addr; returns 0, or -errno; per-frame errors fail. */
static int map_batch(void *addr, const uint64_t *gfns, unsigned int n, int strict)
{
    int err[1024];
    struct mmapbatch_v2 m = {
        .num = n, .dom = domid, .addr = (uintptr_t)addr, .arr = gfns, .err = err,
    };
    unsigned int i;

    if (ioctl(fd, IOCTL_MMAPBATCH_V2, &m) < 0)
        return -errno;
    for (i = 0; i < n; i++)
        if (err[i] && strict)
            fail("frame %#llx: error %d from MMAPBATCH_V2", (unsigned long long)gfns[i], err[i]);
    atomic_fetch_add(&n_map, 1);
    return 0;
}

static int zap(void *addr, unsigned long n)
{
    struct privcmd_unmap_range r = { .addr = (uintptr_t)addr, .num = n };

    if (ioctl(fd, IOCTL_PRIVCMD_UNMAP_RANGE, &r) < 0)
        return -errno;
    atomic_fetch_add(&n_zap, 1);
    return 0;
}

static void verify(const uint8_t *addr, const uint64_t *gfns, unsigned int n, const char *who)
{
    unsigned int i;

    for (i = 0; i < n; i++) {
        if (sum_page((const volatile uint64_t *)(addr + i * PAGE)) != sums[gfns[i]]) {
            fail("%s: page %u of %p should hold gfn %#llx but does not", who, i,
                 (void *)addr, (unsigned long long)gfns[i]);
            return;
        }
    }
    atomic_fetch_add(&n_pages_ok, n);
}

static void pick(volatile uint64_t *st, uint64_t *gfns, unsigned int n)
{
    unsigned int i;

    for (i = 0; i < n; i++)
        gfns[i] = valid[rnd(st) % nvalid];
}

/* ---- faults on purpose: SIGBUS/SIGSEGV while reading a range being cleared */

static __thread sigjmp_buf jb;
static __thread volatile sig_atomic_t in_probe;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    (void)uc;
    if (in_probe)
        siglongjmp(jb, 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- workers: private mappings, both ways of unmapping ---- */

static void *worker(void *arg)
{
    static const unsigned int sizes[] = { 1, 7, 64, 256, 1024 };
    uint64_t st = 0x1234567ULL * ((uintptr_t)arg + 1), gfns[1024];
    char who[32];

    snprintf(who, sizeof(who), "worker %lu", (unsigned long)(uintptr_t)arg);
    while (now() < deadline && !atomic_load(&failed)) {
        unsigned int n = sizes[rnd(&st) % 5], rounds, r;
        uint8_t *a;

        if (n > nvalid)
            n = nvalid;
        a = mmap(NULL, n * PAGE, PROT_READ, MAP_SHARED, fd, 0);
        if (a == MAP_FAILED) {
            fail("%s: mmap: %s", who, strerror(errno));
            break;
        }
        pick(&st, gfns, n);
        if (map_batch(a, gfns, n, 1) < 0)
            fail("%s: MMAPBATCH_V2: %s", who, strerror(errno));
        verify(a, gfns, n, who);
        rounds = have_zap ? rnd(&st) % 4 : 0;
        for (r = 0; r < rounds && !atomic_load(&failed); r++) {
            /* A random sub-range, or all of it. */
            unsigned int lo = (r & 1) ? rnd(&st) % n : 0;
            unsigned int hi = (r & 1) ? lo + 1 + rnd(&st) % (n - lo) : n;
            int e = zap(a + lo * PAGE, hi - lo);

            if (e < 0) {
                fail("%s: UNMAP_RANGE: %s", who, strerror(-e));
                break;
            }
            pick(&st, gfns + lo, hi - lo);
            e = map_batch(a + lo * PAGE, gfns + lo, hi - lo, 1);
            if (e < 0) {
                fail("%s: refill with MMAPBATCH_V2: %s", who, strerror(-e));
                break;
            }
            verify(a, gfns, n, who);
        }
        /* Sometimes clear first, so that munmap finds some PTEs none. */
        if (have_zap && rnd(&st) % 4 == 0 && zap(a, n / 2) < 0)
            fail("%s: UNMAP_RANGE before munmap: %s", who, strerror(errno));
        if (munmap(a, n * PAGE) < 0)
            fail("%s: munmap: %s", who, strerror(errno));
        atomic_fetch_add(&n_munmap, 1);
    }
    return NULL;
}

/* ---- a shared mapping: one thread clears and refills, one reads ---- */

#define SHARED 512
static uint8_t *shared;
static _Atomic uint64_t shared_gfn[SHARED];
static atomic_uint shared_seq[SHARED]; /* odd while a page is being replaced */

static void *zapper(void *arg)
{
    uint64_t st = 0xfeedULL, gfns[SHARED];
    unsigned int i;

    (void)arg;
    while (now() < deadline && !atomic_load(&failed)) {
        unsigned int lo = rnd(&st) % SHARED, hi = lo + 1 + rnd(&st) % (SHARED - lo);
        int e;

        for (i = lo; i < hi; i++)
            atomic_fetch_add(&shared_seq[i], 1);
        e = zap(shared + lo * PAGE, hi - lo);
        if (e < 0) {
            fail("zapper: UNMAP_RANGE: %s", strerror(-e));
            break;
        }
        pick(&st, gfns + lo, hi - lo);
        e = map_batch(shared + lo * PAGE, gfns + lo, hi - lo, 1);
        if (e < 0) {
            fail("zapper: refill: %s", strerror(-e));
            break;
        }
        for (i = lo; i < hi; i++) {
            atomic_store(&shared_gfn[i], gfns[i]);
            atomic_fetch_add(&shared_seq[i], 1);
        }
    }
    return NULL;
}

static void *reader(void *arg)
{
    volatile uint64_t st = 0xabcdefULL + (uintptr_t)arg;

    while (now() < deadline && !atomic_load(&failed)) {
        unsigned int i = rnd(&st) % SHARED, s1, s2;
        uint64_t g, sum = 0;

        s1 = atomic_load(&shared_seq[i]);
        g = atomic_load(&shared_gfn[i]);
        if (s1 & 1) { /* being replaced: don't fault on purpose too often */
            atomic_fetch_add(&n_skipped, 1);
            continue;
        }
        in_probe = 1;
        if (sigsetjmp(jb, 1)) {
            in_probe = 0;
            atomic_fetch_add(&n_faults, 1); /* read a cleared page: SIGBUS */
            continue;
        }
        sum = sum_page((const volatile uint64_t *)(shared + i * PAGE));
        in_probe = 0;
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load(&shared_seq[i]);
        if (s1 != s2) {
            atomic_fetch_add(&n_skipped, 1);
            continue;
        }
        if (sum != sums[g])
            fail("reader: shared page %u should hold gfn %#llx (seq %u): stale mapping?", i,
                 (unsigned long long)g, s1);
        else
            atomic_fetch_add(&n_pages_ok, 1);
    }
    return NULL;
}

/* ---- a victim: munmap'd and recreated while being cleared and read ---- */

#define VICTIM 256
static uint8_t *victim;

static void *chaos(void *arg)
{
    uint64_t st = 0x777ULL, gfns[VICTIM];

    (void)arg;
    while (now() < deadline && !atomic_load(&failed)) {
        /*
         * MAP_FIXED over the old mapping munmaps it and creates a new one
         * under one mmap lock: no other thread's mmap can take the range.
         */
        if (mmap(victim, VICTIM * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
            fail("chaos: mmap: %s", strerror(errno));
            break;
        }
        pick(&st, gfns, VICTIM);
        if (map_batch(victim, gfns, VICTIM, 1) < 0)
            fail("chaos: MMAPBATCH_V2: %s", strerror(errno));
        usleep(rnd(&st) % 20000);
    }
    return NULL;
}

static void *victim_zapper(void *arg)
{
    uint64_t st = 0x999ULL, gfns[VICTIM];

    (void)arg;
    while (now() < deadline && !atomic_load(&failed)) {
        unsigned int lo = rnd(&st) % VICTIM, hi = lo + 1 + rnd(&st) % (VICTIM - lo);
        int e = zap(victim + lo * PAGE, hi - lo);

        /* The mapping may be gone or new (chaos): EINVAL is the answer then. */
        if (e == -EINVAL) {
            atomic_fetch_add(&n_race_einval, 1);
            continue;
        }
        if (e < 0) {
            fail("victim zapper: UNMAP_RANGE: %s", strerror(-e));
            break;
        }
        pick(&st, gfns, hi - lo);
        e = map_batch(victim + lo * PAGE, gfns, hi - lo, 1);
        if (e == -EINVAL)
            atomic_fetch_add(&n_race_einval, 1);
        else if (e < 0)
            fail("victim zapper: refill: %s", strerror(-e));
    }
    return NULL;
}

static void *victim_reader(void *arg)
{
    volatile uint64_t st = 0x31337ULL;
    volatile uint64_t sink = 0;

    (void)arg;
    while (now() < deadline && !atomic_load(&failed)) {
        unsigned int i = rnd(&st) % VICTIM;

        in_probe = 1;
        if (sigsetjmp(jb, 1)) {
            in_probe = 0;
            atomic_fetch_add(&n_faults, 1);
            continue;
        }
        sink += sum_page((const volatile uint64_t *)(victim + i * PAGE));
        in_probe = 0;
        usleep(500); /* each SIGBUS is a privcmd_fault line in the kernel log */
    }
    return NULL;
}

/* ---- fork: children map, clear, and exit with mappings in place ---- */

static void child(uint64_t seed)
{
    volatile uint64_t st = seed | 1;
    uint64_t gfns[64];
    unsigned int n = 1 + rnd(&st) % 64, i;
    uint8_t *a;

    /* The parent's privcmd VMAs are VM_DONTCOPY: they must not be here. */
    in_probe = 1;
    if (!sigsetjmp(jb, 1)) {
        (void)*(volatile uint8_t *)shared;
        _exit(9);
    }
    in_probe = 0;
    a = mmap(NULL, n * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (a == MAP_FAILED)
        _exit(3);
    for (i = 0; i < n; i++)
        gfns[i] = valid[rnd(&st) % nvalid];
    if (map_batch(a, gfns, n, 0) < 0)
        _exit(4);
    for (i = 0; i < n; i++)
        if (sum_page((const volatile uint64_t *)(a + i * PAGE)) != sums[gfns[i]])
            _exit(5);
    if (have_zap && (st & 2)) {
        struct privcmd_unmap_range r = { .addr = (uintptr_t)a, .num = n };

        if (ioctl(fd, IOCTL_PRIVCMD_UNMAP_RANGE, &r) < 0)
            _exit(6);
        if (map_batch(a, gfns, n, 0) < 0)
            _exit(7);
        for (i = 0; i < n; i++)
            if (sum_page((const volatile uint64_t *)(a + i * PAGE)) != sums[gfns[i]])
                _exit(8);
    }
    _exit(0); /* with the mapping still in place: exit_mmap clears it */
}

static void *forker(void *arg)
{
    uint64_t st = 0x4242ULL;

    (void)arg;
    while (now() < deadline && !atomic_load(&failed)) {
        int status;
        pid_t pid = fork();

        if (pid < 0) {
            fail("fork: %s", strerror(errno));
            break;
        }
        if (pid == 0)
            child(rnd(&st));
        if (waitpid(pid, &status, 0) < 0)
            fail("waitpid: %s", strerror(errno));
        else if (!WIFEXITED(status) || WEXITSTATUS(status))
            fail("child %d: %s %d (3 mmap, 4 map, 5/8 mismatch, 6 unmap_range, 7 refill, "
                 "9 inherited a DONTCOPY mapping)",
                 pid, WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        atomic_fetch_add(&n_fork, 1);
        rnd(&st);
    }
    return NULL;
}

/* ---- setup ---- */

static void probe(unsigned long pages)
{
    uint64_t gfns[1024];
    int err[1024];
    unsigned long base;
    unsigned int i, n;

    valid = calloc(pages, sizeof(*valid));
    sums = calloc(pages, sizeof(*sums));
    if (!valid || !sums) {
        fprintf(stderr, "kstress: out of memory\n");
        exit(2);
    }
    for (base = 0; base < pages; base += n) {
        struct mmapbatch_v2 m;
        uint8_t *a;

        n = pages - base < 1024 ? pages - base : 1024;
        a = mmap(NULL, n * PAGE, PROT_READ, MAP_SHARED, fd, 0);
        if (a == MAP_FAILED) {
            perror("kstress: mmap");
            exit(2);
        }
        for (i = 0; i < n; i++)
            gfns[i] = base + i;
        m = (struct mmapbatch_v2){ .num = n, .dom = domid, .addr = (uintptr_t)a,
                                   .arr = gfns, .err = err };
        if (ioctl(fd, IOCTL_MMAPBATCH_V2, &m) < 0 && errno != ENOENT) {
            perror("kstress: MMAPBATCH_V2");
            exit(2);
        }
        for (i = 0; i < n; i++) {
            if (err[i])
                continue;
            sums[base + i] = sum_page((const volatile uint64_t *)(a + i * PAGE));
            valid[nvalid++] = base + i;
        }
        munmap(a, n * PAGE);
    }
    if (nvalid < VICTIM + SHARED) {
        fprintf(stderr, "kstress: only %u of %lu gfns map\n", nvalid, pages);
        exit(2);
    }
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(t, NULL, fn, arg);

    if (e) {
        fprintf(stderr, "kstress: pthread_create: %s\n", strerror(e));
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct privcmd_unmap_range probe_arg = { 0, 0 };
    unsigned long pages, workers = 4, i;
    pthread_t th[64];
    unsigned int nth = 0;
    struct sigaction sa;
    uint64_t st = 0x5eedULL;
    double secs, t0;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s DOMID PAGES SECONDS [WORKERS]\n", argv[0]);
        return 2;
    }
    domid = (uint16_t)strtoul(argv[1], NULL, 0);
    pages = strtoul(argv[2], NULL, 0);
    secs = strtod(argv[3], NULL);
    if (argc == 5)
        workers = strtoul(argv[4], NULL, 0);
    if (!pages || secs <= 0 || !workers || workers > 48) {
        fprintf(stderr, "kstress: bad arguments\n");
        return 2;
    }
    fd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        perror("kstress: /dev/xen/privcmd");
        return 2;
    }
    have_zap = ioctl(fd, IOCTL_PRIVCMD_UNMAP_RANGE, &probe_arg) == 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);

    t0 = now();
    probe(pages);
    fprintf(stderr, "kstress: %u of %lu gfns of domain %u map; ioctl: %s; %.1f s to probe\n",
            nvalid, pages, domid, have_zap ? "yes" : "no (ENOTTY: munmap only)", now() - t0);

    shared = mmap(NULL, SHARED * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    victim = mmap(NULL, VICTIM * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (shared == MAP_FAILED || victim == MAP_FAILED) {
        perror("kstress: mmap");
        return 2;
    }
    {
        uint64_t g[SHARED];

        pick(&st, g, SHARED);
        if (map_batch(shared, g, SHARED, 1) < 0)
            return 2;
        for (i = 0; i < SHARED; i++)
            atomic_store(&shared_gfn[i], g[i]);
        pick(&st, g, VICTIM);
        if (map_batch(victim, g, VICTIM, 1) < 0)
            return 2;
    }

    deadline = now() + secs;
    for (i = 0; i < workers; i++)
        start(&th[nth++], worker, (void *)(uintptr_t)i);
    start(&th[nth++], forker, NULL);
    if (have_zap) {
        start(&th[nth++], zapper, NULL);
        start(&th[nth++], reader, (void *)1);
        start(&th[nth++], reader, (void *)2);
        start(&th[nth++], victim_zapper, NULL);
    }
    start(&th[nth++], chaos, NULL);
    start(&th[nth++], victim_reader, NULL);
    for (i = 0; i < nth; i++)
        pthread_join(th[i], NULL);

    printf("kstress: %s: %.0f s, %lu workers: maps=%lu unmap_range=%lu munmap=%lu forks=%lu "
           "pages_verified=%lu faults=%lu skipped=%lu raced_einval=%lu\n",
           atomic_load(&failed) ? "FAILED" : "OK", secs, workers, atomic_load(&n_map),
           atomic_load(&n_zap), atomic_load(&n_munmap), atomic_load(&n_fork),
           atomic_load(&n_pages_ok), atomic_load(&n_faults), atomic_load(&n_skipped),
           atomic_load(&n_race_einval));
    /* Exit with shared and victim still mapped: exit_mmap clears them. */
    return atomic_load(&failed) ? 1 : 0;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/* The test double of Xen; see xen-double.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <stdint.h>
#include <xen/xen.h>

#include "stream.h"
#include "xen-double.h"

#define PAGE XMIG_PAGE_SIZE
#define EPP (PAGE / 8)
#define MFN_BASE 0x1000
#define SHINFO_MFN 0x800000
#define FLL_MFN 0x800001
#define FL_MFN0 0x800010
#define SET_SIZE (1u << 18)

struct dbl {
    struct dbl_config c;
    bool *hole;
    uint32_t *gen; /* how often the guest wrote each pfn; shared, as the
                      guest's memory is with every process that maps it */
    pthread_mutex_t lock;
    uintptr_t *set; /* open addressing, 0 = empty, 1 = deleted */
    struct dbl_stats st;
    uint64_t mmu_updates; /* Xen's "calls to mmu_update" */
    xmig_pfn_t fail_frame;
    int fail_errno;
    int fail_next;
    uint64_t fail_types_at; /* that page type query fails (EIO) */
    uint64_t kill_types_at; /* the domain dies at that query (a crash) */
    unsigned int reclaim_delay_us;
    /* Mappings (VMAs) alive now, and what bounds them. */
    struct {
        uintptr_t addr, end;
    } * vma;
    size_t nvma, vma_cap;
    size_t vma_limit;    /* 0: none; else ENOMEM beyond it */
    long vma_fail_after; /* -1: never; else new mappings before one ENOMEM */
    bool dead;
    bool kill_mapper;       /* the next map in another process kills it */
    unsigned int kill_skip; /* ... after this many more maps there */
    unsigned int heir_ms;   /* ... after forking a child this long lived */
    pid_t pid;              /* the process that opened the double */
    bool destroying;        /* the toolstack is tearing it down */
    bool destroying_name;   /* ... and left its xenstore entries */
    unsigned int dying_in;  /* domain_info calls until Xen says dying */
    xmig_pfn_t balloon;     /* becomes a hole at the first CLEAN, or ~0 */
    xmig_pfn_t populate;    /* a hole that gets a page then, or ~0 */
    struct dbl_guest g;
};

static struct dbl *D(xmig_xen *x)
{
    return x->priv;
}

/*
 * Worker processes share the lock, and the engine SIGKILLs a worker of a
 * failed job wherever it is: the lock is robust, or a worker killed
 * inside it would hang the test.  What it counted there may be half
 * done; the counters are for assertions about whole jobs.
 */
static void dbl_lock(struct dbl *d)
{
    if (pthread_mutex_lock(&d->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&d->lock);
}

static size_t slot_of(uintptr_t a)
{
    return (size_t)((a >> 12) * 0x9e3779b97f4a7c15ULL >> 46) & (SET_SIZE - 1);
}

/* Called with the lock held. */
static void set_add(struct dbl *d, uintptr_t a)
{
    size_t i = slot_of(a);

    while (d->set[i] > 1 && d->set[i] != a)
        i = (i + 1) & (SET_SIZE - 1);
    if (d->set[i] != a) {
        d->set[i] = a;
        d->st.live_pages++;
    }
}

/* Whether a was mapped. */
static bool set_del(struct dbl *d, uintptr_t a)
{
    size_t i = slot_of(a);

    while (d->set[i]) {
        if (d->set[i] == a) {
            d->set[i] = 1;
            d->st.live_pages--;
            return true;
        }
        i = (i + 1) & (SET_SIZE - 1);
    }
    return false;
}

/*
 * A mapping made by another process (a worker forked from the test) is
 * that process's: the kernel drops it at its exit.  Only counted, in
 * st.worker_pages: the records (set, vma) live in the test's heap.
 */
static bool foreign_process(struct dbl *d)
{
    return getpid() != d->pid;
}

/*
 * Account for a new mapping as the kernel does for vm.max_map_count: each
 * foreign mapping is a VMA of its own.  Fails with ENOMEM past the limit.
 */
static int vma_add(struct dbl *d, void *addr, unsigned int n)
{
    int rc = -1;

    if (foreign_process(d))
        return 0;
    dbl_lock(d);
    if ((d->vma_limit && d->nvma >= d->vma_limit) || d->vma_fail_after == 0) {
        if (d->vma_fail_after == 0)
            d->vma_fail_after = -1;
        d->st.vma_refusals++;
        errno = ENOMEM;
        goto out;
    }
    if (d->nvma == d->vma_cap) {
        size_t cap = d->vma_cap ? d->vma_cap * 2 : 64;
        void *v = realloc(d->vma, cap * sizeof(*d->vma));

        if (!v)
            abort();
        d->vma = v;
        d->vma_cap = cap;
    }
    d->vma[d->nvma].addr = (uintptr_t)addr;
    d->vma[d->nvma].end = (uintptr_t)addr + (size_t)n * PAGE;
    d->nvma++;
    if (d->nvma > d->st.max_vmas)
        d->st.max_vmas = d->nvma;
    if (d->vma_fail_after > 0)
        d->vma_fail_after--;
    rc = 0;
out:
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* Mappings inside [addr, +n pages) are gone. */
static void vma_del(struct dbl *d, void *addr, unsigned int n)
{
    uintptr_t a = (uintptr_t)addr, end = a + (size_t)n * PAGE;
    size_t i = 0;

    dbl_lock(d);
    while (i < d->nvma) {
        if (d->vma[i].addr >= a && d->vma[i].end <= end)
            d->vma[i] = d->vma[--d->nvma];
        else
            i++;
    }
    pthread_mutex_unlock(&d->lock);
}

uint64_t dbl_frame_word(xmig_pfn_t frame)
{
    return frame * 0x9e3779b97f4a7c15ULL + 0x5555;
}

xmig_pfn_t dbl_pfn_to_frame(xmig_xen *x, xmig_pfn_t pfn)
{
    struct dbl *d = D(x);

    if (pfn >= d->c.nr_pfns || d->hole[pfn])
        return d->c.type == XMIG_DOM_PV ? XMIG_INVALID_FRAME : pfn;
    /* Scrambled so that a pfn used where an mfn belongs shows up. */
    return d->c.type == XMIG_DOM_PV ? MFN_BASE + pfn * 7 : pfn;
}

/* Which pfn a data frame holds, or -1 if none. */
static long frame_to_pfn(struct dbl *d, xmig_pfn_t f)
{
    xmig_pfn_t pfn = f;

    if (d->c.type == XMIG_DOM_PV) {
        if (f < MFN_BASE || (f - MFN_BASE) % 7)
            return -1;
        pfn = (f - MFN_BASE) / 7;
    }
    if (pfn >= d->c.nr_pfns || d->hole[pfn])
        return -1;
    return (long)pfn;
}

static size_t nleaves_of(const struct dbl *d)
{
    return (d->c.nr_pfns + EPP - 1) / EPP;
}

/* PV: the p2m's leaf pages are the guest's last pfns, as in a real guest. */
static xmig_pfn_t leaf_mfn(xmig_xen *x, size_t leaf)
{
    return dbl_pfn_to_frame(x, D(x)->c.nr_pfns - 1 - leaf);
}

static bool fill_frame(xmig_xen *x, xmig_pfn_t f, uint64_t *w)
{
    struct dbl *d = D(x);
    size_t i, nleaves = nleaves_of(d);
    long pfn;

    memset(w, 0, PAGE);
    if (d->c.type == XMIG_DOM_PV && f == SHINFO_MFN) {
        struct shared_info *s = (struct shared_info *)w;

        s->arch.max_pfn = d->c.max_pfn ? d->c.max_pfn : d->c.nr_pfns;
        s->arch.pfn_to_mfn_frame_list_list = FLL_MFN;
        return true;
    }
    if (d->c.type == XMIG_DOM_PV && f == FLL_MFN) {
        for (i = 0; i < (nleaves + EPP - 1) / EPP; i++)
            w[i] = FL_MFN0 + i;
        return true;
    }
    if (d->c.type == XMIG_DOM_PV && f >= FL_MFN0 && f < FL_MFN0 + 16) {
        for (i = 0; i < EPP; i++) {
            size_t leaf = (f - FL_MFN0) * EPP + i;

            if (leaf < nleaves)
                w[i] = leaf_mfn(x, leaf);
        }
        return true;
    }
    pfn = frame_to_pfn(d, f);
    if (pfn < 0)
        return false;
    if (d->c.type == XMIG_DOM_PV && (size_t)pfn >= d->c.nr_pfns - nleaves) {
        size_t leaf = d->c.nr_pfns - 1 - (size_t)pfn;

        for (i = 0; i < EPP; i++)
            w[i] = dbl_pfn_to_frame(x, leaf * EPP + i);
        return true;
    }
    if (d->c.pagetables && pfn == 1) {
        /* An L4: one guest entry, one of Xen's slots to be scrubbed. */
        w[0] = (dbl_pfn_to_frame(x, 2) << 12) | 0x67;
        w[256] = 0xdead000ULL | 0x63;
        return true;
    }
    w[0] = f;
    for (i = 1; i < EPP; i++)
        w[i] = dbl_frame_word(f);
    w[1] = d->gen[pfn];
    return true;
}

static size_t gen_len(size_t nr_pfns)
{
    return (nr_pfns ? nr_pfns : 1) * sizeof(uint32_t);
}

static void dbl_close(xmig_xen *x)
{
    struct dbl *d = D(x);

    /* xmig_xen_close() gives back the hypercall buffers first. */
    if (d->st.hbuf_pages)
        abort();
    pthread_mutex_destroy(&d->lock);
    free(d->vma);
    free(d->set);
    munmap(d->hole, d->c.nr_pfns ? d->c.nr_pfns : 1);
    munmap(d->gen, gen_len(d->c.nr_pfns));
    munmap(d, sizeof(*d));
}

static int dbl_domain_ids(xmig_xen *x, uint32_t **ids_r, size_t *n_r)
{
    *ids_r = malloc(sizeof(**ids_r));
    if (!*ids_r)
        return -1;
    **ids_r = D(x)->c.domid;
    *n_r = D(x)->dead ? 0 : 1;
    return 0;
}

static int dbl_domain_by_name(xmig_xen *x, const char *name, uint32_t *domid_r)
{
    if (strcmp(name, D(x)->g.name) == 0 && !D(x)->dead) {
        *domid_r = D(x)->c.domid;
        return 0;
    }
    xmig__seterr(x, ESRCH, "domain '%s' not found", name);
    return -1;
}

static int dbl_domain_info(xmig_xen *x, uint32_t domid,
                           struct xmig_dominfo *info_r)
{
    struct dbl *d = D(x);
    size_t i;

    if (domid != d->c.domid || d->dead) {
        xmig__seterr(x, ESRCH, "domain %u does not exist", domid);
        return -1;
    }
    if (d->destroying && (!d->dying_in || --d->dying_in == 0))
        info_r->dying = true;
    info_r->domid = domid;
    info_r->type = d->c.type;
    info_r->guest_width = 8;
    /* As Xen's tot_pages: what the guest has now, and owned elsewhere. */
    info_r->nr_pages = d->c.extra_pages;
    for (i = 0; i < d->c.nr_pfns; i++)
        info_r->nr_pages += !d->hole[i];
    info_r->max_pages = d->c.max_pages ? d->c.max_pages : d->c.nr_pfns;
    info_r->nr_shared = 0;
    info_r->max_gpfn = d->c.nr_pfns - 1;
    info_r->shared_info_frame = SHINFO_MFN;
    if (!d->destroying || d->destroying_name)
        snprintf(info_r->name, sizeof(info_r->name), "%s", d->g.name);
    info_r->paused = d->g.paused;
    info_r->shutdown = d->g.suspended;
    info_r->suspended = d->g.suspended;
    memcpy(info_r->uuid, d->g.uuid, sizeof(info_r->uuid));
    return 0;
}

/*
 * As the real backend: the query goes through the handle's hypercall
 * buffer, and Xen writes only the type back (XEN_DOMCTL_getpageframeinfo3).
 */
static int dbl_page_types(xmig_xen *x, uint32_t domid, unsigned int n,
                          xmig_pfn_t *frames)
{
    struct dbl *d = D(x);
    xmig_pfn_t *arr;
    unsigned int i;

    if (n > XMIG_MAX_BATCH) {
        errno = E2BIG;
        return -1;
    }
    dbl_lock(d);
    d->st.type_calls++;
    d->st.hypercalls++;
    pthread_mutex_unlock(&d->lock);
    if (d->st.type_calls == d->kill_types_at)
        d->dead = true;
    if (d->st.type_calls == d->fail_types_at) {
        xmig__seterr(x, EIO, "domain %u: cannot read page types", domid);
        return -1;
    }
    if (d->dead) {
        xmig__seterr(x, ESRCH, "domain %u: cannot read page types", domid);
        return -1;
    }
    arr = xmig__hbuf(x, XMIG__HBUF_TYPES, n * sizeof(*arr));
    if (!arr)
        return -1;
    memcpy(arr, frames, n * sizeof(*arr));
    for (i = 0; i < n; i++) {
        long pfn = frame_to_pfn(d, arr[i]);

        if (pfn < 0)
            arr[i] = DBL_XTAB;
        else if (d->c.pagetables && pfn == 1)
            arr[i] = DBL_L4PIN;
        else
            arr[i] = 0;
    }
    memcpy(frames, arr, n * sizeof(*arr));
    return 0;
}

/* Fill [addr, +n pages) as the hypervisor would; errors per frame. */
static void populate(xmig_xen *x, uint8_t *addr, unsigned int n,
                     const xmig_pfn_t *frames, int *err)
{
    struct dbl *d = D(x);
    unsigned int i;

    dbl_lock(d);
    if (foreign_process(d)) {
        int fd, nfds = 0;

        /* What a worker holds: 0-2 aside, every descriptor it kept. */
        for (fd = 3; fd < 1024; fd++)
            nfds += fcntl(fd, F_GETFD) >= 0;
        if (nfds > d->st.worker_fds)
            d->st.worker_fds = nfds;
        d->st.worker_maps++;
    }
    if (d->kill_mapper && foreign_process(d) && d->kill_skip) {
        d->kill_skip--;
    } else if (d->kill_mapper && foreign_process(d)) {
        d->kill_mapper = false;
        pthread_mutex_unlock(&d->lock);
        /* The heir keeps the dead process's descriptors open a while. */
        if (d->heir_ms && fork() == 0) {
            usleep(d->heir_ms * 1000);
            _exit(0);
        }
        raise(SIGKILL);
    }
    /* A worker process is dom0's too. */
    d->st.hypercalls++;
    d->mmu_updates++;
    d->st.dom0_cpu_ns += (uint64_t)n * DBL_CPU_NS_PER_MAP;
    for (i = 0; i < n; i++) {
        uint64_t *w = (uint64_t *)(addr + (size_t)i * PAGE);

        if (d->dead) {
            err[i] = ESRCH;
        } else if (d->destroying) {
            err[i] = EBUSY; /* its memory is being relinquished */
        } else if (frames[i] == d->fail_frame && d->fail_errno) {
            err[i] = d->fail_errno;
        } else if (!fill_frame(x, frames[i], w)) {
            d->st.hole_maps++;
            err[i] = EINVAL;
        } else if (foreign_process(d)) {
            err[i] = 0;
            d->st.worker_pages++;
        } else {
            err[i] = 0;
            set_add(d, (uintptr_t)w);
        }
    }
    pthread_mutex_unlock(&d->lock);
}

static bool fail_call(struct dbl *d)
{
    bool fail;

    dbl_lock(d);
    fail = d->fail_next != 0;
    if (fail) {
        errno = d->fail_next;
        d->fail_next = 0;
    }
    pthread_mutex_unlock(&d->lock);
    return fail;
}

static void *dbl_map(xmig_xen *x, uint32_t domid, unsigned int n,
                     const xmig_pfn_t *frames, int *err)
{
    struct dbl *d = D(x);
    void *p;

    dbl_lock(d);
    d->st.map_calls++;
    pthread_mutex_unlock(&d->lock);
    if (fail_call(d))
        return NULL;
    p = mmap(NULL, (size_t)n * PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (vma_add(d, p, n) < 0) {
        munmap(p, (size_t)n * PAGE);
        errno = ENOMEM;
        return NULL;
    }
    populate(x, p, n, frames, err);
    mprotect(p, (size_t)n * PAGE, PROT_READ);
    return p;
}

/*
 * The pages in [addr, +n pages) are no longer mapped.  trap: cleared one
 * PTE at a time, as munmap does in a stock PV dom0, each write trapped
 * and emulated by Xen (a zap clears them in one hypercall).
 */
static void forget(xmig_xen *x, void *addr, unsigned int n, bool trap)
{
    struct dbl *d = D(x);
    unsigned int i;

    dbl_lock(d);
    for (i = 0; i < n; i++) {
        if (set_del(d, (uintptr_t)addr + (size_t)i * PAGE) && trap) {
            d->st.traps++;
            d->st.dom0_cpu_ns += DBL_CPU_NS_PER_TRAP;
        }
    }
    if (!trap)
        d->st.hypercalls++;
    pthread_mutex_unlock(&d->lock);
}

static int dbl_unmap(xmig_xen *x, void *addr, unsigned int n)
{
    struct dbl *d = D(x);

    dbl_lock(d);
    d->st.unmap_calls++;
    pthread_mutex_unlock(&d->lock);
    forget(x, addr, n, true);
    vma_del(d, addr, n);
    return munmap(addr, (size_t)n * PAGE);
}

static int dbl_map_at(xmig_xen *x, uint32_t domid, void *addr, unsigned int n,
                      const xmig_pfn_t *frames, int *err, bool refill)
{
    struct dbl *d = D(x);
    void *p;

    dbl_lock(d);
    d->st.map_at_calls++;
    if (refill)
        d->st.refill_calls++;
    pthread_mutex_unlock(&d->lock);
    if (refill && !d->c.zap) {
        errno = EINVAL;
        return -1;
    }
    if (fail_call(d))
        return -1;
    /* A refill goes into the mapping that zap left. */
    if (!refill && vma_add(d, addr, n) < 0)
        return -1;
    p = mmap(addr, (size_t)n * PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    populate(x, p, n, frames, err);
    mprotect(p, (size_t)n * PAGE, PROT_READ);
    return 0;
}

static int dbl_reclaim(xmig_xen *x, void *addr, unsigned int n)
{
    struct dbl *d = D(x);
    void *p;

    dbl_lock(d);
    d->st.reclaim_calls++;
    pthread_mutex_unlock(&d->lock);
    if (d->reclaim_delay_us)
        usleep(d->reclaim_delay_us);
    forget(x, addr, n, true);
    vma_del(d, addr, n);
    p = mmap(addr, (size_t)n * PAGE, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    return p == MAP_FAILED ? -1 : 0;
}

static int dbl_zap(xmig_xen *x, void *addr, unsigned int n)
{
    struct dbl *d = D(x);

    if (!d->c.zap) {
        errno = ENOTTY;
        return -1;
    }
    dbl_lock(d);
    d->st.zap_calls++;
    pthread_mutex_unlock(&d->lock);
    if (d->reclaim_delay_us)
        usleep(d->reclaim_delay_us);
    forget(x, addr, n, false);
    /* The mapping stays; its pages are gone. */
    return mprotect(addr, (size_t)n * PAGE, PROT_NONE);
}

/* The double maps with no descriptor at all. */
static unsigned int dbl_mapper_fds(xmig_xen *x, int *fds, unsigned int max)
{
    return 0;
}

static void *dbl_hbuf_alloc(xmig_xen *x, size_t pages)
{
    struct dbl *d = D(x);
    void *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return NULL;
    dbl_lock(d);
    d->st.hbuf_allocs++;
    d->st.hbuf_pages += pages;
    pthread_mutex_unlock(&d->lock);
    return p;
}

static void dbl_hbuf_free(xmig_xen *x, void *p, size_t pages)
{
    struct dbl *d = D(x);

    dbl_lock(d);
    if (d->st.hbuf_pages < pages)
        abort(); /* freed what was never allocated */
    d->st.hbuf_pages -= pages;
    pthread_mutex_unlock(&d->lock);
    munmap(p, pages * PAGE);
}

static int no_perfc(xmig_xen *x)
{
    xmig__seterr(x, ENOSYS, "hypervisor counters: function not implemented");
    return -1;
}

static int dbl_perfc_reset(xmig_xen *x)
{
    struct dbl *d = D(x);

    if (!d->c.perfc)
        return no_perfc(x);
    dbl_lock(d);
    d->st.traps = d->st.hypercalls = d->mmu_updates = 0;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static int dbl_perfc_read(xmig_xen *x, unsigned int n, const char *const *names,
                          uint64_t *vals)
{
    struct dbl *d = D(x);
    unsigned int i;
    int rc = 0;

    if (!d->c.perfc)
        return no_perfc(x);
    dbl_lock(d);
    for (i = 0; i < n && rc == 0; i++) {
        if (strcmp(names[i], XMIG_PERFC_PTWR) == 0)
            vals[i] = d->st.traps;
        else if (strcmp(names[i], XMIG_PERFC_HYPERCALLS) == 0)
            vals[i] = d->st.hypercalls;
        else if (strcmp(names[i], XMIG_PERFC_MMU_UPDATE) == 0)
            vals[i] = d->mmu_updates;
        else
            rc = -1;
    }
    pthread_mutex_unlock(&d->lock);
    if (rc < 0)
        xmig__seterr(x, ENOENT, "hypervisor counter '%s' not found",
                     names[i - 1]);
    return rc;
}

static int dbl_cpu_ns(xmig_xen *x, uint32_t domid, uint64_t *ns_r)
{
    struct dbl *d = D(x);

    if (domid != 0) {
        xmig__seterr(x, ESRCH, "domain %u: no CPU time in the double", domid);
        return -1;
    }
    dbl_lock(d);
    *ns_r = d->st.dom0_cpu_ns;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static int dbl_config_json(xmig_xen *x, uint32_t domid, char **json_r)
{
    *json_r = strdup("{\"c_info\":{\"name\":\"guest\"}}");
    return *json_r ? 0 : -1;
}

static int dbl_rename(xmig_xen *x, uint32_t domid, const char *old_name,
                      const char *new_name)
{
    struct dbl_guest *g = &D(x)->g;

    if (strcmp(old_name, g->name) != 0) {
        xmig__seterr(x, EINVAL, "rename: domain is not called '%s'", old_name);
        return -1;
    }
    if (g->refuse_rename_back && strstr(old_name, "--migratedaway")) {
        errno = EEXIST;
        xmig__seterr(x, EEXIST, "rename: '%s' is taken", new_name);
        return -1;
    }
    snprintf(g->name, sizeof(g->name), "%s", new_name);
    return 0;
}

static int dbl_destroy(xmig_xen *x, uint32_t domid)
{
    if (D(x)->g.refuse_destroy) {
        errno = EBUSY;
        xmig__seterr(x, EBUSY, "destroy: domain %u is busy", domid);
        return -1;
    }
    D(x)->g.destroyed = true;
    D(x)->dead = true;
    return 0;
}

static int dbl_suspend(xmig_xen *x, uint32_t domid)
{
    struct dbl_guest *g = &D(x)->g;

    if (g->refuse_suspend) {
        xmig__seterr(x, ETIMEDOUT, "domain %u did not suspend", domid);
        return -1;
    }
    g->suspended = true;
    g->suspends++;
    /* libxl_domain_suspend_only() has QEMU save its state. */
    if (D(x)->c.type == XMIG_DOM_HVM) {
        g->dm_saved = true;
        g->dm_logdirty_at_suspend = g->dm_logdirty;
    }
    return 0;
}

static int dbl_resume(xmig_xen *x, uint32_t domid)
{
    struct dbl_guest *g = &D(x)->g;

    if (D(x)->dead) {
        xmig__seterr(x, ESRCH, "domain %u does not exist", domid);
        return -1;
    }
    if (!g->suspended) {
        xmig__seterr(x, EINVAL, "resume of a running domain");
        return -1;
    }
    if (g->refuse_resume) {
        xmig__seterr(x, EIO, "domain %u: resume refused", domid);
        return -1;
    }
    g->suspended = false;
    g->resumes++;
    return 0;
}

static int dbl_unpause(xmig_xen *x, uint32_t domid)
{
    D(x)->g.paused = false;
    return 0;
}

/*
 * Not libxenguest: three passes of made-up numbers, a suspend, and a
 * libxc END record as the whole "stream", so that tests can check the
 * framing around it and what a job does when things fail.
 */
static int dbl_libxc_stream(xmig_xen *x, uint32_t domid, int fd, bool live,
                            const struct xmig__save_hooks *h)
{
    static const uint8_t libxc_end[8];
    struct dbl_guest *g = &D(x)->g;
    long dirty[] = {1000, 300, 40};
    unsigned int i;
    unsigned long written = 0;

    g->logdirty = live;
    for (i = 0; live && i < 3; i++) {
        int d = h->policy(h->arg, i, written, dirty[i]);

        if (h->progress)
            h->progress(h->arg, (unsigned long)dirty[i],
                        (unsigned long)dirty[i]);
        written += (unsigned long)dirty[i];
        if (d != XMIG_POLICY_CONTINUE)
            break;
        d = h->policy(h->arg, i + 1, written, -1);
        if (d == XMIG_POLICY_ABORT) {
            g->logdirty = false;
            errno = EBUSY;
            return -1;
        }
        if (d != XMIG_POLICY_CONTINUE)
            break;
    }
    if (h->suspend(h->arg) < 0) {
        g->logdirty = false;
        errno = ETIMEDOUT;
        return -1;
    }
    g->logdirty = false;
    /* A full pass and what the live ones sent, mapped and unmapped per batch.
     */
    written += D(x)->c.nr_pfns - D(x)->c.nr_holes;
    dbl_lock(D(x));
    D(x)->st.dom0_cpu_ns +=
        written * (DBL_CPU_NS_PER_MAP + DBL_CPU_NS_PER_TRAP);
    D(x)->st.traps += written;
    D(x)->st.hypercalls += (written + XMIG_MAX_BATCH - 1) / XMIG_MAX_BATCH;
    pthread_mutex_unlock(&D(x)->lock);
    if (write(fd, libxc_end, sizeof(libxc_end)) != sizeof(libxc_end))
        return -1;
    return 0;
}

/* ---- what xmig's own engine reads ---- */

static int dbl_xen_version(xmig_xen *x, uint32_t *major_r, uint32_t *minor_r)
{
    *major_r = 4;
    *minor_r = 17;
    return 0;
}

static int dbl_cpu_policy(xmig_xen *x, uint32_t domid, void **leaves_r,
                          uint32_t *nr_leaves_r, void **msrs_r,
                          uint32_t *nr_msrs_r)
{
    *leaves_r = calloc(2, 24);
    *msrs_r = calloc(1, 16);
    *nr_leaves_r = 2;
    *nr_msrs_r = 1;
    return 0;
}

static int dbl_logdirty_enable(xmig_xen *x, uint32_t domid)
{
    D(x)->g.logdirty = true;
    D(x)->g.cleans = 0;
    return 0;
}

static int dbl_logdirty_off(xmig_xen *x, uint32_t domid)
{
    if (D(x)->dead) {
        xmig__seterr(x, ESRCH, "switching log-dirty mode off: %s",
                     strerror(ESRCH));
        return -1;
    }
    D(x)->g.logdirty = false;
    return 0;
}

/*
 * A hot set that halves each pass: the guest writes pfns 16 .. 16 +
 * (256 >> pass) while a pass runs.  The write lands (gen++) when CLEAN
 * reports it, so a copy sent in that pass is stale: only a later pass can
 * send the final contents.
 */
static size_t hot_set(const struct dbl *d)
{
    return 256u >> (d->g.cleans < 8 ? d->g.cleans : 8);
}

static int hot_bitmap(struct dbl *d, uint64_t *bitmap, size_t nr, bool write)
{
    size_t i, n = hot_set(d), count = 0;

    if (!d->g.logdirty) {
        errno = EINVAL;
        return -1;
    }
    memset(bitmap, 0, (nr + 63) / 64 * 8);
    for (i = 16; i < 16 + n && i < nr; i++) {
        bitmap[i / 64] |= 1ULL << (i % 64);
        if (write && i < d->c.nr_pfns)
            d->gen[i]++;
        count++;
    }
    return (int)count;
}

/* Through the handle's hypercall buffer, as the real backend reads it. */
static int logdirty_read(xmig_xen *x, uint64_t *bitmap, size_t nr, bool write)
{
    size_t bytes = (nr + 63) / 64 * 8;
    uint64_t *bm = xmig__hbuf(x, XMIG__HBUF_DIRTY, bytes);
    int n;

    if (!bm)
        return -1;
    n = hot_bitmap(D(x), bm, nr, write);
    if (n >= 0)
        memcpy(bitmap, bm, bytes);
    return n;
}

static int dbl_logdirty_clean(xmig_xen *x, uint32_t domid, uint64_t *bitmap,
                              size_t nr, bool final, uint64_t *dirty_r)
{
    struct dbl *d = D(x);
    int n = logdirty_read(x, bitmap, nr, true);

    if (n < 0)
        return -1;
    d->st.hypercalls++;
    if (d->g.cleans++ == 0) {
        dbl_lock(d);
        if (d->balloon < d->c.nr_pfns)
            d->hole[d->balloon] = true;
        /* Not marked dirty, as Xen 4.17 does not mark a gfn populated. */
        if (d->populate < d->c.nr_pfns)
            d->hole[d->populate] = false;
        pthread_mutex_unlock(&d->lock);
    }
    *dirty_r = (uint64_t)n;
    return 0;
}

/* What the next CLEAN will return, as Xen's PEEK does. */
static int dbl_logdirty_peek(xmig_xen *x, uint32_t domid, uint64_t *bitmap,
                             size_t nr)
{
    struct dbl *d = D(x);

    d->st.peek_calls++;
    d->st.hypercalls++;
    return logdirty_read(x, bitmap, nr, false) < 0 ? -1 : 0;
}

uint32_t dbl_pfn_gen(xmig_xen *x, xmig_pfn_t pfn)
{
    return D(x)->gen[pfn];
}

static int dbl_tsc_info(xmig_xen *x, uint32_t domid, void *rec24)
{
    memset(rec24, 0, 24);
    return 0;
}

static int dbl_vcpu_online(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                           bool *online_r)
{
    *online_r = vcpu == 0;
    return 0;
}

/* vcpu0 with start_info in pfn 5, its page tables rooted at pfn 1. */
static int dbl_pv_vcpu_context(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                               void *ctx, size_t len)
{
    struct vcpu_guest_context *c = ctx;

    memset(ctx, 0, len);
    c->user_regs.rdx = dbl_pfn_to_frame(x, 5);
    c->ctrlreg[3] = dbl_pfn_to_frame(x, 1) << 12;
    return 0;
}

static int dbl_pv_vcpu_blob(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                            unsigned int rec_type, void **blob_r, size_t *len_r)
{
    *blob_r = NULL;
    *len_r = 0;
    return 0;
}

static int dbl_hvm_context(xmig_xen *x, uint32_t domid, void **blob_r,
                           size_t *len_r)
{
    *blob_r = calloc(1, 64);
    *len_r = 64;
    return *blob_r ? 0 : -1;
}

static int dbl_hvm_param(xmig_xen *x, uint32_t domid, unsigned int index,
                         uint64_t *val_r)
{
    *val_r = index == 1 /* STORE_PFN */ ? 0xfeffc : 0;
    return 0;
}

static int dbl_dm_check(xmig_xen *x, uint32_t domid)
{
    if (D(x)->g.dm_stubdom) {
        xmig__seterr(x, EOPNOTSUPP,
                     "domain %u is HVM with its device model in a stub "
                     "domain, which xmig does not save",
                     domid);
        return -1;
    }
    return 0;
}

static int dbl_dm_logdirty(xmig_xen *x, uint32_t domid, bool enable)
{
    struct dbl_guest *g = &D(x)->g;

    if (D(x)->c.type != XMIG_DOM_HVM) {
        xmig__seterr(x, ENOENT, "domain %u has no device model", domid);
        return -1;
    }
    g->dm_logdirty = enable;
    g->dm_logdirty_calls++;
    return 0;
}

/* With QEMU told to log, as x86_hvm_setup and x86_hvm_cleanup do. */
static int dbl_libxc_save(xmig_xen *x, uint32_t domid, int fd, bool live,
                          const struct xmig__save_hooks *h)
{
    int rc;

    if (h->dm && dbl_dm_logdirty(x, domid, true) < 0)
        return -1;
    rc = dbl_libxc_stream(x, domid, fd, live, h);
    if (h->dm)
        (void)dbl_dm_logdirty(x, domid, false);
    return rc;
}

static int dbl_dm_state(xmig_xen *x, uint32_t domid, struct xmig_buf *xs,
                        void **state_r, size_t *len_r)
{
    struct dbl_guest *g = &D(x)->g;
    bool saved = g->dm_saved;

    g->dm_saved = false;
    g->dm_states++;
    if (!saved || g->dm_refuse_state) {
        xmig__seterr(x, ENOENT, "domain %u: QEMU's saved state: %s", domid,
                     saved ? "refused" : "not there");
        return -1;
    }
    *state_r = malloc(sizeof(DBL_DM_STATE) - 1);
    if (!*state_r || (!g->dm_no_physmap &&
                      xmig_buf_put(xs, DBL_DM_XS, sizeof(DBL_DM_XS) - 1) < 0)) {
        free(*state_r);
        return -1;
    }
    memcpy(*state_r, DBL_DM_STATE, sizeof(DBL_DM_STATE) - 1);
    *len_r = sizeof(DBL_DM_STATE) - 1;
    return 0;
}

static int dbl_dm_release(xmig_xen *x, uint32_t domid)
{
    if (!D(x)->g.dm_saved || !D(x)->g.suspended) {
        xmig__seterr(x, EINVAL, "domain %u: QEMU is still running", domid);
        return -1;
    }
    D(x)->g.dm_releases++;
    return 0;
}

static void dbl_dm_discard(xmig_xen *x, uint32_t domid)
{
    D(x)->g.dm_saved = false;
    D(x)->g.dm_discards++;
}

/* The double's M2P: every data frame back to its pfn, the rest unknown. */
static int dbl_m2p_map(xmig_xen *x, const uint64_t **m2p_r, uint64_t *nr_r)
{
    struct dbl *d = D(x);
    uint64_t nr = MFN_BASE + d->c.nr_pfns * 7 + 1, *m2p, i;

    m2p = malloc(nr * sizeof(*m2p));
    if (!m2p)
        return -1;
    for (i = 0; i < nr; i++)
        m2p[i] = ~0ULL;
    for (i = 0; i < d->c.nr_pfns; i++)
        if (!d->hole[i])
            m2p[dbl_pfn_to_frame(x, i)] = i;
    *m2p_r = m2p;
    *nr_r = nr;
    return 0;
}

static void dbl_m2p_unmap(xmig_xen *x, const uint64_t *m2p, uint64_t nr)
{
    free((void *)m2p);
}

static const struct xmig_xen_ops dbl_ops = {
    .name = "double",
    .close = dbl_close,
    .domain_ids = dbl_domain_ids,
    .domain_by_name = dbl_domain_by_name,
    .domain_info = dbl_domain_info,
    .page_types = dbl_page_types,
    .map = dbl_map,
    .unmap = dbl_unmap,
    .map_at = dbl_map_at,
    .reclaim = dbl_reclaim,
    .zap = dbl_zap,
    .mapper_fds = dbl_mapper_fds,
    .perfc_reset = dbl_perfc_reset,
    .perfc_read = dbl_perfc_read,
    .hbuf_alloc = dbl_hbuf_alloc,
    .hbuf_free = dbl_hbuf_free,
    .cpu_ns = dbl_cpu_ns,
    .config_json = dbl_config_json,
    .rename = dbl_rename,
    .destroy = dbl_destroy,
    .suspend = dbl_suspend,
    .resume = dbl_resume,
    .unpause = dbl_unpause,
    .libxc_save = dbl_libxc_save,
    .dm_check = dbl_dm_check,
    .dm_logdirty = dbl_dm_logdirty,
    .dm_state = dbl_dm_state,
    .dm_discard = dbl_dm_discard,
    .dm_release = dbl_dm_release,
    .xen_version = dbl_xen_version,
    .cpu_policy = dbl_cpu_policy,
    .logdirty_enable = dbl_logdirty_enable,
    .logdirty_off = dbl_logdirty_off,
    .logdirty_clean = dbl_logdirty_clean,
    .logdirty_peek = dbl_logdirty_peek,
    .tsc_info = dbl_tsc_info,
    .vcpu_online = dbl_vcpu_online,
    .pv_vcpu_context = dbl_pv_vcpu_context,
    .pv_vcpu_blob = dbl_pv_vcpu_blob,
    .hvm_context = dbl_hvm_context,
    .hvm_param = dbl_hvm_param,
    .m2p_map = dbl_m2p_map,
    .m2p_unmap = dbl_m2p_unmap,
};

xmig_xen *dbl_open(const struct dbl_config *c)
{
    /* Shared: a forked child's job changes the guest its parent sees. */
    struct dbl *d = mmap(NULL, sizeof(*d), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t ma;
    xmig_xen *x;
    size_t i;

    if (d == MAP_FAILED)
        return NULL;
    d->c = *c;
    d->pid = getpid();
    /* Shared too: the guest balloons while an exit worker maps it. */
    d->hole = mmap(NULL, c->nr_pfns ? c->nr_pfns : 1, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (d->hole == MAP_FAILED)
        d->hole = NULL;
    d->gen = mmap(NULL, gen_len(c->nr_pfns), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (d->gen == MAP_FAILED)
        d->gen = NULL;
    d->set = calloc(SET_SIZE, sizeof(*d->set));
    d->fail_frame = XMIG_INVALID_FRAME;
    d->balloon = XMIG_INVALID_FRAME;
    d->populate = XMIG_INVALID_FRAME;
    d->vma_fail_after = -1;
    strcpy(d->g.name, "guest");
    for (i = 0; i < sizeof(d->g.uuid); i++)
        d->g.uuid[i] = (uint8_t)(0xa0 + i);
    /* A worker process of the exit strategy takes it too. */
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&d->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    for (i = 0; i < c->nr_holes; i++)
        if (c->holes[i] < c->nr_pfns)
            d->hole[c->holes[i]] = true;
    x = xmig__xen_new(&dbl_ops, d, NULL, NULL);
    if (!x || !d->hole || !d->gen || !d->set)
        abort();
    if (c->zap)
        x->caps |= XMIG_CAP_ZAP;
    return x;
}

void dbl_fail_frame(xmig_xen *x, xmig_pfn_t frame, int errnum)
{
    D(x)->fail_frame = frame;
    D(x)->fail_errno = errnum;
}

void dbl_fail_next_map(xmig_xen *x, int errnum)
{
    D(x)->fail_next = errnum;
}

void dbl_kill_types_at(xmig_xen *x, uint64_t call)
{
    D(x)->kill_types_at = call;
}

void dbl_fail_types_at(xmig_xen *x, uint64_t call)
{
    D(x)->fail_types_at = call;
}

void dbl_set_vma_limit(xmig_xen *x, size_t n)
{
    D(x)->vma_limit = n;
}

void dbl_fail_map_after(xmig_xen *x, unsigned int n)
{
    D(x)->vma_fail_after = n;
}

void dbl_kill_mapper(xmig_xen *x, unsigned int heir_ms)
{
    dbl_kill_mapper_after(x, heir_ms, 0);
}

void dbl_kill_mapper_after(xmig_xen *x, unsigned int heir_ms, unsigned int skip)
{
    dbl_lock(D(x));
    D(x)->kill_mapper = true;
    D(x)->kill_skip = skip;
    D(x)->heir_ms = heir_ms;
    pthread_mutex_unlock(&D(x)->lock);
}

void dbl_set_reclaim_delay_us(xmig_xen *x, unsigned int us)
{
    D(x)->reclaim_delay_us = us;
}

void dbl_kill_domain(xmig_xen *x)
{
    dbl_lock(D(x));
    D(x)->dead = true;
    pthread_mutex_unlock(&D(x)->lock);
}

struct dbl_guest *dbl_guest(xmig_xen *x)
{
    return &D(x)->g;
}

void dbl_destroy_begin(xmig_xen *x, bool keep_name, unsigned int polls)
{
    struct dbl *d = D(x);

    dbl_lock(d);
    d->destroying = true;
    d->destroying_name = keep_name;
    d->dying_in = polls ? polls : UINT_MAX;
    pthread_mutex_unlock(&d->lock);
}

void dbl_balloon_at_clean(xmig_xen *x, xmig_pfn_t pfn)
{
    D(x)->balloon = pfn;
}

void dbl_populate_at_clean(xmig_xen *x, xmig_pfn_t pfn)
{
    D(x)->populate = pfn;
}

void dbl_get_stats(xmig_xen *x, struct dbl_stats *s)
{
    dbl_lock(D(x));
    *s = D(x)->st;
    pthread_mutex_unlock(&D(x)->lock);
}

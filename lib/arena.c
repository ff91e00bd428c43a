/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The mapping arena: every foreign mapping of a job is made and dropped
 * here, so that how much an unmap costs is decided in one place.  When a
 * map fails, xmig_domain_vanished() tells whether the domain went away.
 *
 * per-batch  map, use and munmap every batch, exactly as libxenguest does.
 *            In a PV dom0 each munmap'd page is a trapped, emulated PTE write.
 * arena      windows are slots of one reserved region.  Released slots are
 *            reclaimed together, a contiguous run in one call that replaces
 *            the mappings with reserved address space (one TLB flush, one
 *            mmap_lock round trip per run), optionally on a thread of their
 *            own so that the caller's I/O overlaps the unmapping.
 * kernel     as arena, but a slot's privcmd mapping is kept and only its
 *            PTEs are cleared, with batched hypercalls, by the privcmd ioctl
 *            of kernel-patch/; the next batch refills the same mapping.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "private.h"

enum slot_state {
    SLOT_FREE,       /* reserved address space or an emptied mapping */
    SLOT_BUSY,       /* handed to the caller */
    SLOT_RELEASED,   /* given back, still mapped */
    SLOT_RECLAIMING, /* being unmapped */
};

struct xmig_window {
    xmig_arena *arena;
    uint8_t *addr;
    unsigned int n;
    int slot;                 /* -1: a per-batch mapping */
    struct xmig_window *next; /* per-batch windows still out */
    struct xmig_window **pprev;
};

struct slot {
    enum slot_state state;
    unsigned int vma; /* kernel: pages of the privcmd mapping kept here */
    struct xmig_window win;
};

struct xmig_arena {
    xmig_xen *x;
    uint32_t domid;
    struct xmig_arena_params p;
    enum xmig_strategy strategy;

    uint8_t *region;
    size_t region_len;
    struct slot *slots;
    unsigned int cursor;
    unsigned int nreleased;
    unsigned int nreclaiming;
    struct xmig_window *outstanding;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool have_thread;
    bool stop;
    unsigned int waiters; /* mappers or drainers waiting for the thread */
    int reclaim_errno;    /* first reclaim failure, 0 if none */

    struct xmig_arena_stats st;
};

static const char *const strategy_names[XMIG_STRATEGY__COUNT] = {
    [XMIG_STRATEGY_PER_BATCH] = "per-batch",
    [XMIG_STRATEGY_ARENA] = "arena",
    [XMIG_STRATEGY_KERNEL] = "kernel",
};

const char *xmig_strategy_name(enum xmig_strategy s)
{
    return s < XMIG_STRATEGY__COUNT ? strategy_names[s] : "?";
}

int xmig_strategy_parse(const char *name, enum xmig_strategy *s_r)
{
    int i;

    for (i = 0; i < XMIG_STRATEGY__COUNT; i++) {
        if (strcmp(name, strategy_names[i]) == 0) {
            *s_r = (enum xmig_strategy)i;
            return 0;
        }
    }
    errno = EINVAL;
    return -1;
}

void xmig_arena_params_default(struct xmig_arena_params *p)
{
    /* The kernel's batched unmap where it exists, `arena' elsewhere. */
    p->strategy = XMIG_STRATEGY_KERNEL;
    p->batch = XMIG_MAX_BATCH;
    p->slots = 16;
    p->reclaim = 8;
    /*
     * Off by default: in a PV dom0 the reclaiming thread's zap holds the
     * mmap lock the next map needs, and a second thread makes every TLB
     * flush a cross-CPU one.  bench map --background measures it.
     */
    p->background = false;
}

static uint8_t *slot_addr(const xmig_arena *a, unsigned int i)
{
    return a->region + (size_t)i * a->p.batch * XMIG_PAGE_SIZE;
}

/* Unmap a run of slots [first, first + count).  Called without the lock. */
static int reclaim_run(xmig_arena *a, unsigned int first, unsigned int count)
{
    xmig_xen *x = a->x;
    uint64_t t0 = xmig_now_ns();
    unsigned int i, calls = 0;
    int rc = 0;

    if (a->strategy == XMIG_STRATEGY_KERNEL) {
        for (i = first; i < first + count; i++) {
            calls++;
            if (x->ops->zap(x, slot_addr(a, i), a->slots[i].vma) == 0)
                continue;
            /* Never leave a mapping behind: fall back to replacing it. */
            calls++;
            if (x->ops->reclaim(x, slot_addr(a, i), a->p.batch) < 0)
                rc = -1;
            a->slots[i].vma = 0;
        }
    } else {
        calls = 1;
        rc = x->ops->reclaim(x, slot_addr(a, first), count * a->p.batch);
    }

    pthread_mutex_lock(&a->lock);
    if (rc < 0 && !a->reclaim_errno)
        a->reclaim_errno = errno ? errno : EIO;
    a->st.unmap_calls += calls;
    a->st.unmap_ns += xmig_now_ns() - t0;
    for (i = first; i < first + count; i++)
        a->slots[i].state = SLOT_FREE;
    a->nreclaiming -= count;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* Take the first run of released slots.  Called with the lock held. */
static bool pick_run(xmig_arena *a, unsigned int *first_r,
                     unsigned int *count_r)
{
    unsigned int i = 0, n = 0;

    if (!a->slots)
        return false;
    while (i < a->p.slots && a->slots[i].state != SLOT_RELEASED)
        i++;
    if (i == a->p.slots)
        return false;
    while (i + n < a->p.slots && a->slots[i + n].state == SLOT_RELEASED) {
        a->slots[i + n].state = SLOT_RECLAIMING;
        n++;
    }
    a->nreleased -= n;
    a->nreclaiming += n;
    *first_r = i;
    *count_r = n;
    return true;
}

/* Reclaim everything released.  Called with the lock held; drops it. */
static void reclaim_all_locked(xmig_arena *a)
{
    unsigned int first, count;

    while (pick_run(a, &first, &count)) {
        pthread_mutex_unlock(&a->lock);
        reclaim_run(a, first, count);
        pthread_mutex_lock(&a->lock);
    }
}

static void *reclaim_thread(void *arg)
{
    xmig_arena *a = arg;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        if (a->nreleased &&
            (a->nreleased >= a->p.reclaim || a->waiters || a->stop)) {
            reclaim_all_locked(a);
            continue;
        }
        if (a->stop)
            break;
        pthread_cond_wait(&a->cond, &a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

xmig_arena *xmig_arena_open(xmig_xen *x, uint32_t domid,
                            const struct xmig_arena_params *p)
{
    xmig_arena *a;
    unsigned int i;

    if (p->batch == 0 || p->batch > XMIG_MAX_BATCH || p->slots == 0 ||
        p->strategy >= XMIG_STRATEGY__COUNT) {
        xmig__seterr(x, EINVAL, "bad arena parameters (batch %u, slots %u)",
                     p->batch, p->slots);
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return NULL;
    }
    a->x = x;
    a->domid = domid;
    a->p = *p;
    if (a->p.reclaim == 0 || a->p.reclaim > a->p.slots)
        a->p.reclaim = a->p.slots;
    a->strategy = p->strategy;
    a->region = MAP_FAILED;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);

    if (a->strategy == XMIG_STRATEGY_KERNEL && !(x->caps & XMIG_CAP_ZAP)) {
        xmig__log(x, XMIG_LOG_INFO,
                  "kernel has no privcmd batched unmap: using 'arena'");
        a->strategy = XMIG_STRATEGY_ARENA;
    }
    if (a->strategy == XMIG_STRATEGY_PER_BATCH)
        return a;

    a->slots = calloc(a->p.slots, sizeof(*a->slots));
    a->region_len = (size_t)a->p.slots * a->p.batch * XMIG_PAGE_SIZE;
    a->region = mmap(NULL, a->region_len, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!a->slots || a->region == MAP_FAILED) {
        xmig__seterr(x, errno ? errno : ENOMEM,
                     "cannot reserve %zu MiB of address space for the arena",
                     a->region_len >> 20);
        goto err;
    }
    for (i = 0; i < a->p.slots; i++) {
        a->slots[i].win.arena = a;
        a->slots[i].win.slot = (int)i;
        a->slots[i].win.addr = slot_addr(a, i);
    }
    if (a->p.background) {
        int r = pthread_create(&a->thread, NULL, reclaim_thread, a);

        if (r) {
            xmig__seterr(x, r, "cannot start the unmap thread");
            goto err;
        }
        a->have_thread = true;
    }
    return a;

err:
    xmig_arena_close(a);
    return NULL;
}

enum xmig_strategy xmig_arena_strategy(const xmig_arena *a)
{
    return a->strategy;
}

unsigned int xmig__arena_slots(const xmig_arena *a)
{
    return a->p.slots;
}

static int check_err(xmig_arena *a, const xmig_pfn_t *frames, unsigned int n,
                     const int *err)
{
    unsigned int i;

    for (i = 0; i < n; i++) {
        if (err[i]) {
            xmig__seterr(
                a->x, err[i], "cannot map frame %#llx of domain %u: %s",
                (unsigned long long)frames[i], a->domid, strerror(err[i]));
            return -1;
        }
    }
    return 0;
}

static xmig_window *map_per_batch(xmig_arena *a, const xmig_pfn_t *frames,
                                  unsigned int n, int *err)
{
    xmig_xen *x = a->x;
    xmig_window *w = calloc(1, sizeof(*w));
    uint64_t t0 = xmig_now_ns();
    void *addr;

    if (!w) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return NULL;
    }
    addr = x->ops->map(x, a->domid, n, frames, err);
    pthread_mutex_lock(&a->lock);
    a->st.map_calls++;
    a->st.map_ns += xmig_now_ns() - t0;
    pthread_mutex_unlock(&a->lock);
    if (!addr) {
        xmig__seterr(x, errno, "cannot map %u frames of domain %u: %s", n,
                     a->domid, strerror(errno));
        free(w);
        return NULL;
    }
    if (check_err(a, frames, n, err) < 0) {
        int saved = errno;

        x->ops->unmap(x, addr, n);
        free(w);
        errno = saved;
        return NULL;
    }
    w->arena = a;
    w->addr = addr;
    w->n = n;
    w->slot = -1;
    pthread_mutex_lock(&a->lock);
    w->next = a->outstanding;
    if (w->next)
        w->next->pprev = &w->next;
    w->pprev = &a->outstanding;
    a->outstanding = w;
    a->st.frames_mapped += n;
    a->st.windows++;
    pthread_mutex_unlock(&a->lock);
    return w;
}

/* A free slot, waiting for (or doing) reclaim when none is. */
static struct slot *get_slot(xmig_arena *a)
{
    unsigned int i, idx;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        for (i = 0; i < a->p.slots; i++) {
            idx = (a->cursor + i) % a->p.slots;
            if (a->slots[idx].state == SLOT_FREE) {
                a->slots[idx].state = SLOT_BUSY;
                a->cursor = idx + 1;
                pthread_mutex_unlock(&a->lock);
                return &a->slots[idx];
            }
        }
        if (!a->nreleased && !a->nreclaiming) {
            pthread_mutex_unlock(&a->lock);
            xmig__seterr(a->x, ENOSPC, "all %u arena windows are in use",
                         a->p.slots);
            return NULL;
        }
        if (a->have_thread) {
            a->waiters++;
            pthread_cond_broadcast(&a->cond);
            pthread_cond_wait(&a->cond, &a->lock);
            a->waiters--;
        } else if (a->nreleased) {
            reclaim_all_locked(a);
        } else {
            pthread_cond_wait(&a->cond, &a->lock);
        }
    }
}

static xmig_window *map_slot(xmig_arena *a, const xmig_pfn_t *frames,
                             unsigned int n, int *err)
{
    xmig_xen *x = a->x;
    struct slot *s = get_slot(a);
    uint64_t t0;
    bool refill;
    int r, saved;

    if (!s)
        return NULL;
    refill = a->strategy == XMIG_STRATEGY_KERNEL && s->vma >= n;
    if (a->strategy == XMIG_STRATEGY_KERNEL && s->vma && !refill) {
        /* The kept mapping is too small for this batch: start afresh. */
        x->ops->reclaim(x, s->win.addr, a->p.batch);
        s->vma = 0;
    }
    t0 = xmig_now_ns();
    r = x->ops->map_at(x, a->domid, s->win.addr, n, frames, err, refill);
    pthread_mutex_lock(&a->lock);
    a->st.map_calls++;
    a->st.map_ns += xmig_now_ns() - t0;
    pthread_mutex_unlock(&a->lock);
    if (r < 0) {
        saved = errno;
        xmig__seterr(x, saved, "cannot map %u frames of domain %u: %s", n,
                     a->domid, strerror(saved));
        goto fail;
    }
    if (a->strategy == XMIG_STRATEGY_KERNEL && !refill)
        s->vma = n;
    if (check_err(a, frames, n, err) < 0) {
        saved = errno;
        goto fail;
    }
    s->win.n = n;
    pthread_mutex_lock(&a->lock);
    a->st.frames_mapped += n;
    a->st.windows++;
    pthread_mutex_unlock(&a->lock);
    return &s->win;

fail:
    /* Whatever part of the batch did map goes away before we return. */
    if (a->strategy != XMIG_STRATEGY_KERNEL || !s->vma ||
        x->ops->zap(x, s->win.addr, s->vma) < 0) {
        x->ops->reclaim(x, s->win.addr, a->p.batch);
        s->vma = 0;
    }
    pthread_mutex_lock(&a->lock);
    s->state = SLOT_FREE;
    pthread_mutex_unlock(&a->lock);
    errno = saved;
    return NULL;
}

xmig_window *xmig_arena_map(xmig_arena *a, const xmig_pfn_t *frames,
                            unsigned int n, int *err)
{
    int local_err[XMIG_MAX_BATCH];

    if (n == 0 || n > a->p.batch) {
        xmig__seterr(a->x, EINVAL, "batch of %u pages (limit %u)", n,
                     a->p.batch);
        return NULL;
    }
    if (!err)
        err = local_err;
    memset(err, 0, n * sizeof(*err));
    if (a->strategy == XMIG_STRATEGY_PER_BATCH)
        return map_per_batch(a, frames, n, err);
    return map_slot(a, frames, n, err);
}

const void *xmig_window_page(const xmig_window *w, unsigned int i)
{
    return i < w->n ? w->addr + (size_t)i * XMIG_PAGE_SIZE : NULL;
}

unsigned int xmig_window_count(const xmig_window *w)
{
    return w->n;
}

static void unmap_per_batch(xmig_arena *a, xmig_window *w)
{
    uint64_t t0 = xmig_now_ns();
    int r = a->x->ops->unmap(a->x, w->addr, w->n);

    pthread_mutex_lock(&a->lock);
    if (r < 0 && !a->reclaim_errno)
        a->reclaim_errno = errno;
    a->st.unmap_calls++;
    a->st.unmap_ns += xmig_now_ns() - t0;
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    pthread_mutex_unlock(&a->lock);
    free(w);
}

void xmig_arena_release(xmig_arena *a, xmig_window *w)
{
    struct slot *s;

    if (!w)
        return;
    if (w->slot < 0) {
        unmap_per_batch(a, w);
        return;
    }
    s = &a->slots[w->slot];
    pthread_mutex_lock(&a->lock);
    s->state = SLOT_RELEASED;
    a->nreleased++;
    if (a->nreleased >= a->p.reclaim) {
        if (a->have_thread)
            pthread_cond_broadcast(&a->cond);
        else
            reclaim_all_locked(a);
    }
    pthread_mutex_unlock(&a->lock);
}

int xmig_arena_drain(xmig_arena *a)
{
    int rc;

    pthread_mutex_lock(&a->lock);
    if (a->have_thread) {
        a->waiters++;
        while (a->nreleased || a->nreclaiming) {
            pthread_cond_broadcast(&a->cond);
            pthread_cond_wait(&a->cond, &a->lock);
        }
        a->waiters--;
    } else {
        reclaim_all_locked(a);
    }
    rc = a->reclaim_errno ? -1 : 0;
    if (rc < 0)
        xmig__seterr(a->x, a->reclaim_errno,
                     "unmapping guest memory failed: %s",
                     strerror(a->reclaim_errno));
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void xmig_arena_get_stats(const xmig_arena *a, struct xmig_arena_stats *s)
{
    pthread_mutex_lock((pthread_mutex_t *)&a->lock);
    *s = a->st;
    pthread_mutex_unlock((pthread_mutex_t *)&a->lock);
}

int xmig_arena_close(xmig_arena *a)
{
    unsigned int i;
    int rc = 0;

    if (!a)
        return 0;
    if (a->slots) {
        pthread_mutex_lock(&a->lock);
        /* Windows the caller never gave back are unmapped all the same. */
        for (i = 0; i < a->p.slots; i++) {
            if (a->slots[i].state == SLOT_BUSY) {
                a->slots[i].state = SLOT_RELEASED;
                a->nreleased++;
            }
        }
        pthread_mutex_unlock(&a->lock);
    }
    while (a->outstanding)
        unmap_per_batch(a, a->outstanding);
    if (a->slots && xmig_arena_drain(a) < 0)
        rc = -1;
    else if (a->reclaim_errno)
        rc = -1;
    if (a->have_thread) {
        pthread_mutex_lock(&a->lock);
        a->stop = true;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
    }
    if (a->region != MAP_FAILED) {
        /* Kept kernel mappings hold no PTEs any more: this is cheap. */
        if (munmap(a->region, a->region_len) < 0)
            rc = -1;
    }
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a->slots);
    free(a);
    return rc;
}

/* How long a domain that is being destroyed may still look alive. */
#define VANISH_WAIT_MS 2000
#define VANISH_POLL_MS 50

static bool gone_now(xmig_xen *x, const struct xmig_dominfo *before)
{
    struct xmig_dominfo now;

    if (xmig_domain_info(x, before->domid, &now) < 0)
        return true;
    /* xl removes the domain from xenstore before it destroys it. */
    return now.dying || now.shutdown || (before->name[0] && !now.name[0]);
}

/*
 * While Xen relinquishes a destroyed domain's memory, which takes a while
 * for a large one, maps of its frames fail (EBUSY for a page already
 * freed, ESRCH, EINVAL), yet the domain is not flagged dying until all
 * of it is done (XEN_DOMINF_dying means DOMDYING_dead).  Such an errno on
 * a domain that still looks alive gets a little time to tell.
 */
bool xmig_domain_vanished(xmig_xen *x, const struct xmig_dominfo *before,
                          int errnum)
{
    const struct timespec poll = {0, VANISH_POLL_MS * 1000000L};
    bool teardown = errnum == EBUSY || errnum == ESRCH || errnum == EINVAL ||
                    errnum == ENOENT;
    char err[sizeof(x->err)];
    int waited = 0, saved = errno;
    bool gone;

    memcpy(err, x->err, sizeof(err));
    while (!(gone = gone_now(x, before)) && teardown &&
           waited < VANISH_WAIT_MS) {
        nanosleep(&poll, NULL);
        waited += VANISH_POLL_MS;
    }
    memcpy(x->err, err, sizeof(err));
    errno = saved;
    return gone;
}

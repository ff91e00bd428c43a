/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig's own page engine, the save loop: headers, CPU policy, log-dirty
 * and the pre-copy passes, PAGE_DATA batches through the arena.  What the
 * guest type decides it asks of e->ops (engine-pv.c, engine-hvm.c), as
 * stock asks its save ops.  The record order is the one stock libxenguest
 * writes (Xen 4.17, save() in tools/libs/guest/xg_sr_save.c).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/*
 * Kept windows are a VMA each (privcmd mappings never merge), and
 * vm.max_map_count bounds the VMAs of the whole process: every job of
 * xmigd, its per-batch mappings, libraries, heap and thread stacks.  All
 * jobs together keep at most half of it; what does not fit is mapped per
 * batch, as stock does.
 */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static long kept_left = -1; /* windows; -1: not read yet */

static long kept_budget(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    long n = 0;

    if (f) {
        if (fscanf(f, "%ld", &n) != 1)
            n = 0;
        fclose(f);
    }
    if (n <= 0 || n > INT_MAX)
        n = 65530; /* Linux's default */
    return n / 2;
}

unsigned int xmig__kept_reserve(size_t want)
{
    unsigned int n;

    pthread_mutex_lock(&kept_lock);
    if (kept_left < 0)
        kept_left = kept_budget();
    n = want < (size_t)kept_left ? (unsigned int)want : (unsigned int)kept_left;
    kept_left -= n;
    pthread_mutex_unlock(&kept_lock);
    return n;
}

void xmig__kept_release(unsigned int n)
{
    pthread_mutex_lock(&kept_lock);
    kept_left += n;
    pthread_mutex_unlock(&kept_lock);
}

/* Close the arena of kept windows and return its share of the budget. */
static int close_keep(xmig_arena *keep)
{
    unsigned int slots;
    int rc;

    if (!keep)
        return 0;
    slots = xmig__arena_slots(keep);
    rc = xmig_arena_close(keep);
    xmig__kept_release(slots);
    return rc;
}

static int write_headers(struct engine *e)
{
    struct xmig_buf b;
    uint32_t major, minor;
    int rc = -1;

    if (e->x->ops->xen_version(e->x, &major, &minor) < 0)
        return -1;
    xmig_buf_init(&b);
    /* Image header: big-endian; domain header: little-endian. */
    if (xmig_buf_put_be64(&b, ~0ULL) < 0 ||
        xmig_buf_put_be32(&b, 0x58454e46) < 0 || /* "XENF" */
        xmig_buf_put_be32(&b, 3) < 0 || xmig_buf_put_be32(&b, 0) < 0 ||
        xmig_buf_put_be32(&b, 0) < 0 ||
        xmig_buf_put_le32(&b, e->ops->dhdr_type) < 0 ||
        xmig_buf_put_le32(&b, XMIG_PAGE_SHIFT) < 0 ||
        xmig_buf_put_le32(&b, major) < 0 || xmig_buf_put_le32(&b, minor) < 0) {
        xmig__seterr(e->x, ENOMEM, "out of memory");
        goto out;
    }
    {
        struct iovec iov = {b.p, b.len};

        rc = xmig__engine_write(e, &iov, 1);
    }
out:
    xmig_buf_dispose(&b);
    return rc;
}

/* CPUID and MSR policy go before STATIC_DATA_END, or they are ignored. */
static int write_cpu_policy(struct engine *e)
{
    void *leaves = NULL, *msrs = NULL;
    uint32_t nl = 0, nm = 0;
    int rc = -1;

    if (e->x->ops->cpu_policy(e->x, e->domid, &leaves, &nl, &msrs, &nm) < 0)
        return -1;
    if (nl && xmig__engine_record(e, REC_X86_CPUID_POLICY, leaves,
                                  (size_t)nl * 24) < 0)
        goto out;
    if (nm &&
        xmig__engine_record(e, REC_X86_MSR_POLICY, msrs, (size_t)nm * 16) < 0)
        goto out;
    rc = 0;
out:
    free(leaves);
    free(msrs);
    return rc;
}

static bool type_has_data(uint32_t t)
{
    t &= PFINFO_LTAB_MASK;
    return t != PFINFO_XTAB && t != PFINFO_XALLOC && t != PFINFO_BROKEN;
}

static void add_stats(struct xmig_arena_stats *sum, const xmig_arena *a)
{
    struct xmig_arena_stats s;

    if (!a)
        return;
    xmig_arena_get_stats(a, &s);
    sum->frames_mapped += s.frames_mapped;
    sum->map_calls += s.map_calls;
    sum->unmap_calls += s.unmap_calls;
    sum->map_ns += s.map_ns;
    sum->unmap_ns += s.unmap_ns;
    sum->windows += s.windows;
}

/*
 * A window that cannot be kept ends keeping for this job: all slots are
 * taken, or the mapping failed (vm.max_map_count, a domain error).  The
 * rest is mapped per batch, as stock does, and a real error shows there.
 */
static void stop_keeping(struct engine *e)
{
    if (errno != ENOSPC)
        xmig__log(e->x, XMIG_LOG_INFO,
                  "domain %u: keeping no more mappings across passes (%s)",
                  e->domid, e->x->err);
    e->cache_full = true;
}

/*
 * The kept windows hold the VMAs that a batch needs (ENOMEM: the process
 * is at vm.max_map_count): give every one back, and wait until they are
 * unmapped, rather than fail the job.
 */
static int shed_kept(struct engine *e)
{
    xmig__log(e->x, XMIG_LOG_INFO,
              "domain %u: out of mappings (%s): giving back the %zu kept "
              "across passes",
              e->domid, e->x->err, e->nkept);
    while (e->nkept)
        xmig_arena_release(e->keep, e->kept[--e->nkept]);
    memset(e->cache, 0, e->p2m_size * sizeof(*e->cache));
    e->cache_full = true;
    return xmig_arena_drain(e->keep);
}

/* What goes out for a pfn sent as XALLOC that has no data by the end. */
static const uint8_t zero_page[XMIG_PAGE_SIZE];

/*
 * One PAGE_DATA record for up to XMIG_MAX_BATCH pfns.  Types are read at
 * the time of sending, as the receiver expects; pages are written straight
 * from their mappings.  whole: a record of the first pass, where pages
 * dirtied again and page tables to send again go as XALLOC (send_pages).
 */
static int send_batch(struct engine *e, const xmig_pfn_t *pfns, unsigned int n,
                      bool whole)
{
    xmig_pfn_t frames[XMIG_MAX_BATCH], types[XMIG_MAX_BATCH];
    xmig_pfn_t want[XMIG_MAX_BATCH];
    uint64_t words[XMIG_MAX_BATCH + 1];
    uint64_t zero[XMIG_MAX_BATCH / 64] = {0}; /* entries sent as zeros */
    const uint64_t *hollow = whole && !e->suspended ? e->redirtied : NULL;
    const void *page[XMIG_MAX_BATCH];
    unsigned int idx[XMIG_MAX_BATCH];
    struct iovec iov[XMIG_MAX_BATCH + 2];
    uint32_t rh[2];
    xmig_window *w = NULL, *wk = NULL;
    unsigned int i, nd = 0, nmap, reused, npt = 0, niov;
    uint64_t t0;
    int rc = -1;

    for (i = 0; i < n; i++)
        frames[i] = types[i] = e->ops->pfn_to_frame(e, pfns[i]);
    t0 = xmig_now_ns();
    if (e->x->ops->page_types(e->x, e->domid, n, types) < 0)
        return -1;
    e->st->types_ns += xmig_now_ns() - t0;

    for (i = 0; i < n; i++) {
        uint32_t t = (uint32_t)(types[i] & PFINFO_LTAB_MASK);

        if (frames[i] == XMIG_INVALID_FRAME)
            t = PFINFO_XTAB;
        if (e->seen && type_has_data(t)) {
            if (!bit_test(e->seen, pfns[i])) {
                bit_set(e->seen, pfns[i]);
                e->nseen++;
            }
            e->final_data += e->suspended;
        }
        if (hollow && type_has_data(t) && bit_test(hollow, pfns[i])) {
            t = PFINFO_XALLOC;
            bit_set(e->owed, pfns[i]);
        } else if (!type_has_data(t) && e->owed && bit_test(e->owed, pfns[i])) {
            /*
             * Gone (ballooned out) since it went as XALLOC.  The receiver
             * keeps the page it allocated then, holding whatever Xen left
             * in it (Xen scrubs only a dying domain's pages): another
             * guest's data, maybe.  Zeros replace that; stock would have
             * left the guest's old contents there.
             */
            t = PFINFO_NOTAB;
            bit_set(zero, i);
        }
        types[i] = t;
        if (type_has_data(t))
            idx[nd++] = i;
    }
    /*
     * A record without pages (PVH's holes: most of its pfns) is written
     * here: a round trip to the worker costs two process switches, which
     * a PV dom0 pays in hypercalls.
     */
    if (e->wk && nd)
        return xmig__wk_send(e, pfns, n, frames, types, idx, nd, zero, whole);
    if (xmig__wk_settle(e) < 0)
        return -1;

again:
    for (i = 0, nmap = 0, reused = 0; i < nd; i++) {
        unsigned int k = idx[i];

        page[i] = NULL;
        if (bit_test(zero, k)) {
            page[i] = zero_page;
            continue;
        }
        /* PV: a mapping kept from an earlier pass, if the p2m agrees. */
        if (e->cache && e->cache[pfns[k]].page &&
            e->cache[pfns[k]].mfn == frames[k]) {
            page[i] = e->cache[pfns[k]].page;
            reused++;
        } else {
            want[nmap++] = frames[k];
        }
    }

    /*
     * Reuse across passes is for PV only: a PV pfn keeps its mfn until the
     * p2m says otherwise, and we re-read the p2m every pass.  PVH/HVM
     * mappings are never kept: Xen 4.17 does not mark a gfn dirty when it
     * is remapped (p2m_add_page() gained that in Xen commit 98fccdf0ac,
     * not backported to 4.17), so a kept mapping would hold a reference
     * to the old frame and send it instead of the new one.
     */
    if (nmap) {
        /*
         * Also after suspend: kept windows are unmapped in the background
         * once END is out, the per-batch ones inside the downtime.
         */
        if (e->keep && !e->cache_full) {
            wk = xmig_arena_map(e->keep, want, nmap, NULL);
            if (wk)
                e->kept[e->nkept++] = wk;
            else
                stop_keeping(e);
        }
        if (!wk) {
            w = xmig_arena_map(e->arena, want, nmap, NULL);
            if (!w && errno == ENOMEM && e->nkept) {
                if (shed_kept(e) < 0)
                    goto out;
                goto again;
            }
            if (!w)
                goto out;
        }
    }
    e->st->reused += reused;
    for (i = 0, nmap = 0; i < nd; i++) {
        unsigned int k = idx[i];

        if (page[i])
            continue;
        page[i] = xmig_window_page(wk ? wk : w, nmap++);
        if (wk) {
            e->cache[pfns[k]].page = page[i];
            e->cache[pfns[k]].mfn = frames[k];
        }
    }

    /* PV page tables go out with pfns in their PTEs. */
    for (i = 0; e->ops->normalise_page && i < nd; i++) {
        unsigned int k = idx[i];
        int r;

        if (!is_pagetable((uint32_t)types[k]))
            continue;
        r = e->ops->normalise_page(e, page[i], e->ptbuf[npt],
                                   (uint32_t)types[k]);
        if (r == 0) {
            page[i] = e->ptbuf[npt++];
        } else if (errno == EAGAIN && !e->suspended) {
            types[k] = xmig__engine_defer(e, pfns[k], whole);
            page[i] = NULL;
        } else {
            goto out;
        }
    }

    words[0] = n; /* count, reserved */
    for (i = 0; i < n; i++)
        words[i + 1] = (types[i] << 32) | pfns[i];
    niov = 0;
    iov[niov++] = (struct iovec){rh, sizeof(rh)};
    iov[niov++] = (struct iovec){words, 8 * (n + 1)};
    for (i = 0; i < nd; i++) {
        if (!page[i])
            continue;
        iov[niov++] = (struct iovec){(void *)page[i], XMIG_PAGE_SIZE};
        if (e->owed)
            bit_clear(e->owed, pfns[idx[i]]);
    }
    rh[0] = REC_PAGE_DATA;
    rh[1] = (uint32_t)(8 * (n + 1) + XMIG_PAGE_SIZE * (niov - 2));
    t0 = xmig_now_ns();
    if (xmig__engine_write(e, iov, (int)niov) < 0)
        goto out;
    e->st->write_ns += xmig_now_ns() - t0;
    e->st->pages += niov - 2;
    rc = 0;
out:
    /* Kept windows stay mapped until the job ends. */
    xmig_arena_release(e->arena, w);
    return rc;
}

/*
 * Live passes leave out pages the guest has dirtied again since the pass
 * began: Xen's log (PEEK reads it without clearing) already holds them,
 * so the next CLEAN returns them and a later pass, at the latest the one
 * after suspend, sends their final contents.  Sending them now would be
 * wasted on the link and the receiver.  Xen's own sender did this until
 * migration v2 dropped it (xc_domain_save's to_skip).
 */
static int peek(struct engine *e)
{
    uint64_t now = xmig_now_ns();

    if (!e->redirtied || e->suspended || now - e->peek_ns < ENGINE_PEEK_NS)
        return 0;
    e->peek_ns = now;
    return e->x->ops->logdirty_peek(e->x, e->domid, e->redirtied, e->p2m_size);
}

/* One pass's walk over the pfns: the batch it is filling. */
struct walk {
    xmig_pfn_t batch[XMIG_MAX_BATCH];
    unsigned int nb, max;
    const uint64_t *bm;   /* the pfns to send; NULL: all */
    const uint64_t *skip; /* pfns dirtied again since the pass began */
    bool whole;           /* see send_pages */
    uint64_t done, total;
};

static int walk_flush(struct engine *e, struct walk *w)
{
    if (!w->nb)
        return 0;
    if (send_batch(e, w->batch, w->nb, w->whole) < 0 || peek(e) < 0)
        return -1;
    w->done += w->nb;
    w->nb = 0;
    if (e->hooks->progress)
        e->hooks->progress(e->hooks->arg, w->done, w->total);
    return 0;
}

static int walk_range(struct engine *e, struct walk *w, size_t from, size_t to)
{
    size_t pfn;

    for (pfn = from; pfn < to; pfn++) {
        if (w->bm && !(w->bm[pfn / 64] >> (pfn % 64) & 1)) {
            if (!w->bm[pfn / 64])
                pfn |= 63; /* skip an empty word */
            continue;
        }
        if (w->skip && bit_test(w->skip, pfn)) {
            e->st->skipped++;
            if (!w->whole) {
                w->done++;
                continue;
            }
        }
        w->batch[w->nb++] = pfn;
        if (w->nb == w->max && walk_flush(e, w) < 0)
            return -1;
    }
    return 0;
}

/*
 * Looking for pages from both ends.  A PVH or HVM guest's gfns run from 0
 * to its special pages below 4 GiB (the console and store rings, ACPI
 * tables): a 128 MiB PVH guest has 32784 pages among 1044480 gfns.  Stock
 * asks Xen the type of every one, 1020 queries, and writes 8 MiB of
 * records that say "hole".  This first pass goes up from gfn 0 while the
 * blocks hold pages (the guest's memory starts there), then takes blocks
 * from the top and the bottom in turns, and stops once it has found as
 * many pages as Xen counts for the domain: [gap_lo, gap_hi), between, it
 * never looks at.  A guest whose memory fills its gfns is swept whole, in
 * stock's order.
 *
 * That is safe because of what check_gap proves once the guest is
 * suspended: a gfn reads as data (getpageframeinfo3 says neither XTAB nor
 * BROKEN) only when it maps a page the domain owns and that is not Xen's
 * (shared info, grant frames), or one shared by mem_sharing; Xen maps a
 * page at one gfn at most (p2m_add_page() unmaps it from the old one);
 * and owned pages are what Xen counts in tot_pages, shared ones in
 * shr_pages.  So if the gfns known to hold data still do and add up to
 * tot_pages + shr_pages, no other gfn holds any.  A domU has no foreign
 * mappings in its p2m: those are for a domain privileged over another
 * (dom0, a device model's stub domain), which is not migrated by itself.
 * Whatever does not add up (a page ballooned into the gap meanwhile, or
 * pages the domain owns outside its p2m) is not left to reasoning: the gap
 * is swept then, as stock would have in the first pass.
 */
static int sweep_ends(struct engine *e, struct walk *w)
{
    size_t blk = w->max, lo = 0, hi = (e->p2m_size + blk - 1) / blk;
    struct xmig_dominfo now;
    uint64_t want;
    bool up = true, top = false;

    if (e->x->ops->domain_info(e->x, e->domid, &now) < 0)
        return -1;
    want = now.nr_pages + now.nr_shared;

    while (lo < hi) {
        size_t b = top ? --hi : lo++;
        size_t end = (b + 1) * blk < e->p2m_size ? (b + 1) * blk : e->p2m_size;
        uint64_t had = e->nseen;

        if (walk_range(e, w, b * blk, end) < 0 || walk_flush(e, w) < 0)
            return -1;
        if (up && e->nseen == had)
            up = false;
        top = !up && !top;
        if (e->nseen >= want && lo < hi) {
            /* The count moves while the guest balloons. */
            if (e->x->ops->domain_info(e->x, e->domid, &now) < 0)
                return -1;
            want = now.nr_pages + now.nr_shared;
            if (e->nseen >= want)
                break;
        }
    }
    /* Blocks lo to hi - 1 are left; none if lo == hi. */
    e->gap_lo = lo * blk;
    e->gap_hi = hi * blk < e->p2m_size ? hi * blk : e->p2m_size;
    if (e->gap_hi < e->gap_lo)
        e->gap_hi = e->gap_lo;
    return 0;
}

/*
 * Send every pfn set in bm (or all when bm is NULL), in batches of the
 * arena's size: it maps no more than that at once.
 *
 * The first pass (bm NULL) goes out in whole runs of 512 pfns, 512-aligned
 * and ascending, one or more to a record, as stock's 1024-pfn batches do:
 * a receiver since Xen 4.21 (50baf2d9f7) allocates a run as a 2 MiB
 * superpage when one record asks to populate all of it.  So there a page
 * dirtied again is not left out of its record but sent as XALLOC, and so
 * is a page table to send again: the receiver allocates the page, with no
 * data (4.17's process_page_data(): populate, then copy only the pages of
 * types with data); the later PAGE_DATA of that pfn finds it populated and
 * fills it.  Such pfns are owed until then; the last pass sends every one
 * left, so none keeps what the receiver's Xen had in it.  Batches under
 * 512 hold no run: there those pages are left out.
 */
static int send_pages(struct engine *e, const uint64_t *bm, uint64_t total)
{
    struct walk w = {
        .max = e->ap.batch,
        .bm = bm,
        .skip = e->suspended ? NULL : e->redirtied,
        .whole = !bm && e->ap.batch >= ENGINE_SUPERPAGE,
        .total = total,
    };
    int rc;

    if (w.whole)
        w.max -= w.max % ENGINE_SUPERPAGE;
    e->peek_ns = 0;
    if (peek(e) < 0)
        return -1;
    if (!bm && e->seen)
        rc = sweep_ends(e, &w);
    else
        rc = walk_range(e, &w, 0, e->p2m_size);
    if (rc < 0 || walk_flush(e, &w) < 0)
        return -1;
    /* Stopped early: the pass was what it looked at. */
    if (w.done < w.total && !bm && e->seen && e->hooks->progress)
        e->hooks->progress(e->hooks->arg, w.done, w.done);
    /* The pass is out only once the worker has written its last batch. */
    return xmig__wk_settle(e);
}

/*
 * Once suspended, after the last pass: the proof that the gap of the first
 * pass holds no page (sweep_ends), or else the gap sent.  final: the pfns
 * that pass sent, whose types were read then (NULL: every gfn looked at,
 * as in a save, whose one pass runs suspended).  The gfns known to hold
 * data that it did not send are asked about now.
 */
static int count_data(struct engine *e, xmig_pfn_t *t, unsigned int n,
                      uint64_t *have)
{
    uint64_t t0 = xmig_now_ns();
    unsigned int i;

    if (e->x->ops->page_types(e->x, e->domid, n, t) < 0)
        return -1;
    e->st->types_ns += xmig_now_ns() - t0;
    for (i = 0; i < n; i++)
        *have += type_has_data((uint32_t)t[i]);
    return 0;
}

static int check_gap(struct engine *e, uint64_t *final)
{
    xmig_pfn_t t[XMIG_MAX_BATCH];
    uint64_t have = e->final_data, want;
    struct xmig_dominfo now;
    size_t pfn, lo = e->gap_lo, hi = e->gap_hi;
    unsigned int n = 0;

    if (!e->seen || lo >= hi)
        return 0;
    for (pfn = 0; final && pfn < e->p2m_size; pfn++) {
        uint64_t left = e->seen[pfn / 64] & ~final[pfn / 64];

        if (!(left >> (pfn % 64))) {
            pfn |= 63; /* none left in this word */
            continue;
        }
        if (!(left >> (pfn % 64) & 1))
            continue;
        t[n++] = pfn;
        if (n == XMIG_MAX_BATCH) {
            if (count_data(e, t, n, &have) < 0)
                return -1;
            n = 0;
        }
    }
    if (n && count_data(e, t, n, &have) < 0)
        return -1;
    if (e->x->ops->domain_info(e->x, e->domid, &now) < 0)
        return -1;
    want = now.nr_pages + now.nr_shared;
    if (have == want) {
        e->st->unswept = hi - lo;
        return 0;
    }
    xmig__log(e->x, XMIG_LOG_INFO,
              "domain %u: %llu gfns hold data, Xen counts %llu pages: "
              "sending gfns %#zx-%#zx, which the first pass left out",
              e->domid, (unsigned long long)have, (unsigned long long)want, lo,
              hi - 1);
    memset(e->dirty, 0, (e->p2m_size + 63) / 64 * 8);
    for (pfn = lo; pfn < hi; pfn++)
        bit_set(e->dirty, pfn);
    e->gap_lo = e->gap_hi = 0;
    return send_pages(e, e->dirty, hi - lo);
}

static int refresh(struct engine *e)
{
    if (xmig__cancelled(e->x)) {
        xmig__seterr(e->x, ECANCELED, "cancelled");
        return -1;
    }
    return e->ops->check_vm_state(e);
}

static int clean(struct engine *e, bool final, uint64_t *dirty_r)
{
    return e->x->ops->logdirty_clean(e->x, e->domid, e->dirty, e->p2m_size,
                                     final, dirty_r);
}

static int suspend(struct engine *e)
{
    if (e->hooks->suspend(e->hooks->arg) < 0)
        return -1;
    e->suspended = true;
    return 0;
}

/* The pre-copy loop, with the policy calls libxenguest makes. */
static int send_live(struct engine *e)
{
    unsigned int iteration = 0;
    unsigned long written = 0;
    long dirty = (long)e->p2m_size;
    uint64_t count;
    size_t i, words = (e->p2m_size + 63) / 64;
    int d;

    if (e->x->ops->logdirty_enable(e->x, e->domid) < 0)
        return -1;
    e->logdirty = true;
    for (;;) {
        d = e->hooks->policy(e->hooks->arg, iteration, written, dirty);
        if (d == XMIG_POLICY_ABORT)
            goto abort;
        if (dirty > 0) {
            if (refresh(e) < 0 ||
                send_pages(e, iteration ? e->dirty : NULL, (uint64_t)dirty) < 0)
                return -1;
        }
        if (d != XMIG_POLICY_CONTINUE)
            break;
        written += (unsigned long)dirty;
        iteration++;
        d = e->hooks->policy(e->hooks->arg, iteration, written, -1);
        if (d == XMIG_POLICY_ABORT)
            goto abort;
        if (d != XMIG_POLICY_CONTINUE)
            break;
        if (clean(e, false, &count) < 0)
            return -1;
        dirty = (long)count;
    }
    if (suspend(e) < 0)
        return -1;
    if (clean(e, true, &count) < 0 || refresh(e) < 0)
        return -1;
    /*
     * Owed pfns too: the log should hold every one, but their data must
     * arrive whatever cleared it meanwhile.
     */
    for (i = 0; i < words; i++)
        e->dirty[i] |= e->deferred[i] | (e->owed ? e->owed[i] : 0);
    e->st->deferred = e->nr_deferred;
    if (send_pages(e, e->dirty, count + e->nr_deferred) < 0)
        return -1;
    return check_gap(e, e->dirty);

abort:
    xmig__seterr(e->x, EBUSY, "the pre-copy policy gave up");
    return -1;
}

/* What the stream leaves to unmap, being unmapped meanwhile. */
struct xmig__tail {
    xmig_arena *keep; /* its own thread is unmapping it */
    struct wk *wk;    /* exiting */
};

/* tail_r: NULL, or where the kept mappings go, still being unmapped. */
static void cleanup(struct engine *e, struct xmig__tail **tail_r)
{
    struct xmig__tail *tail = NULL;

    /* QEMU first, as libxenguest does: its log goes into Xen's. */
    if (e->dm_logdirty) {
        struct xmig__errkeep k;

        xmig__err_keep(e->x, &k);
        if (e->x->ops->dm_logdirty(e->x, e->domid, false) < 0)
            xmig__log(e->x, XMIG_LOG_ERROR, "%s", e->x->err);
        xmig__err_first(e->x, &k);
    }
    /* Always: a PV guest left in log-dirty mode stays in shadow mode.  A
       failure here is logged; the job's own error, if any, stays its
       error (a guest that crashed fails this too, and that is not news). */
    if (e->logdirty) {
        struct xmig__errkeep k;

        xmig__err_keep(e->x, &k);
        if (e->x->ops->logdirty_off(e->x, e->domid) < 0)
            xmig__log(e->x, XMIG_LOG_ERROR, "%s", e->x->err);
        xmig__err_first(e->x, &k);
    }
    /* Every mapping goes, counted, before the arenas are freed. */
    while (e->nkept)
        xmig_arena_release(e->keep, e->kept[--e->nkept]);
    if (tail_r && (e->keep || e->wk))
        tail = calloc(1, sizeof(*tail));
    if (tail) {
        /* keep's own thread is unmapping them now; the caller waits. */
        tail->keep = e->keep;
        e->keep = NULL;
        /* And the worker exits, unmapping its own, while the job goes on. */
        xmig__wk_quit(e->wk);
        tail->wk = e->wk;
        e->wk = NULL;
        *tail_r = tail;
    }
    if ((e->arena && xmig_arena_drain(e->arena) < 0) ||
        (e->keep && xmig_arena_drain(e->keep) < 0))
        xmig__log(e->x, XMIG_LOG_ERROR, "unmapping guest memory failed");
    if (e->wk) {
        struct xmig__errkeep k;

        /* A failed job leaves no worker: it is reaped here.  The job's
           error stays: a dead worker has said so already. */
        xmig__err_keep(e->x, &k);
        if (xmig__wk_close(e->wk, &e->st->arena) < 0 && tail_r)
            xmig__log(e->x, XMIG_LOG_ERROR, "%s", e->x->err);
        xmig__err_back(e->x, &k);
    }
    add_stats(&e->st->arena, e->arena);
    add_stats(&e->st->arena, e->keep);
    e->st->hcall_buffers = e->x->hcall_buffers - e->hcall0;
    xmig_arena_close(e->arena);
    close_keep(e->keep);
    e->ops->cleanup(e);
    free(e->kept);
    xmig__nofork_free(e->dirty);
    xmig__nofork_free(e->deferred);
    xmig__nofork_free(e->redirtied);
    xmig__nofork_free(e->owed);
    xmig__nofork_free(e->seen);
    xmig__nofork_free(e->bounce);
    free(e->cache);
    xmig__nofork_free(e->wcache);
    xmig__nofork_free(e->ptbuf);
}

/*
 * PV, live: room for the whole guest, mapped once and read every pass, as
 * far as the budget goes.  Without it the job maps per batch.
 */
static void open_keep(struct engine *e)
{
    struct xmig_arena_params kp = e->ap;

    kp.slots = xmig__kept_reserve((e->p2m_size + kp.batch - 1) / kp.batch + 1);
    if (!kp.slots) {
        xmig__log(e->x, XMIG_LOG_INFO,
                  "domain %u: every mapping that may be kept is in use: "
                  "mapping per batch",
                  e->domid);
        return;
    }
    /*
     * Its thread only works once the stream is over (see cleanup), so it
     * never contends with the mapping of a pass for the mmap lock.
     */
    kp.background = true;
    kp.reclaim = 1;
    e->keep = xmig_arena_open(e->x, e->domid, &kp);
    if (!e->keep)
        xmig__kept_release(kp.slots);
    e->cache = calloc(e->p2m_size, sizeof(*e->cache));
    e->kept = calloc(kp.slots, sizeof(*e->kept));
    if (!e->keep || !e->cache || !e->kept) {
        xmig__log(e->x, XMIG_LOG_INFO,
                  "domain %u: cannot keep mappings across passes (%s): "
                  "mapping per batch",
                  e->domid, e->keep ? "out of memory" : e->x->err);
        close_keep(e->keep);
        e->keep = NULL;
        free(e->cache);
        e->cache = NULL;
        free(e->kept);
        e->kept = NULL;
    }
}

int xmig__engine_save(xmig_xen *x, const struct xmig_dominfo *info, int fd,
                      bool live, const struct xmig_arena_params *ap,
                      const struct xmig__save_hooks *hooks,
                      struct xmig_engine_stats *st, struct xmig__tail **tail_r)
{
    struct engine e = {
        .ops = info->type == XMIG_DOM_PV ? &xmig__engine_ops_pv
                                         : &xmig__engine_ops_hvm,
        .x = x,
        .domid = info->domid,
        .info = *info,
        .fd = fd,
        .live = live,
        .hooks = hooks,
        .st = st,
        .ap = *ap,
        .hcall0 = x->hcall_buffers,
    };
    /*
     * kernel, the default, on a kernel without the batched unmap: exit,
     * which unmaps without a trap too (engine-exit.c); the arena's
     * fallback, arena, traps once a page.
     */
    bool exit =
        ap->strategy == XMIG_STRATEGY_EXIT ||
        (ap->strategy == XMIG_STRATEGY_KERNEL && !(x->caps & XMIG_CAP_ZAP));
    size_t words;
    int rc = -1;

    memset(st, 0, sizeof(*st));
    if (tail_r)
        *tail_r = NULL;
    if (e.ops->setup(&e) < 0)
        goto out;
    /* Live or not, from the start, as libxenguest's x86_hvm_setup. */
    if (hooks->dm) {
        if (x->ops->dm_logdirty(x, e.domid, true) < 0)
            goto out;
        e.dm_logdirty = true;
    }
    words = (e.p2m_size + 63) / 64;
    e.dirty = xmig__nofork_alloc(words * 8);
    e.deferred = xmig__nofork_alloc(words * 8);
    e.bounce = xmig__nofork_alloc(ENGINE_BOUNCE);
    e.ptbuf = xmig__nofork_alloc(sizeof(*e.ptbuf) * XMIG_MAX_BATCH);
    if (e.ops->sparse)
        e.seen = xmig__nofork_alloc(words * 8);
    if (!e.dirty || !e.deferred || !e.bounce || !e.ptbuf ||
        (e.ops->sparse && !e.seen)) {
        xmig__seterr(x, ENOMEM, "out of memory");
        goto out;
    }
    /*
     * exit: a worker maps and writes the pages (engine-exit.c), and keeps
     * PV mappings across passes itself; no arena.
     */
    if (exit) {
        if (ap->strategy == XMIG_STRATEGY_KERNEL)
            xmig__log(x, XMIG_LOG_INFO,
                      "kernel has no privcmd batched unmap: using 'exit'");
        if (xmig__wk_open(&e) < 0)
            goto out;
        st->strategy = XMIG_STRATEGY_EXIT;
        if (e.ops->keep_maps && live &&
            !(e.wcache = xmig__nofork_alloc(e.p2m_size * sizeof(*e.wcache)))) {
            xmig__seterr(x, ENOMEM, "out of memory");
            goto out;
        }
    } else {
        e.arena = xmig_arena_open(x, e.domid, &e.ap);
        if (!e.arena)
            goto out;
        st->strategy = xmig_arena_strategy(e.arena);
    }
    if (live) {
        e.owed = xmig__nofork_alloc(words * 8);
        if (hooks->skip_redirtied)
            e.redirtied = xmig__nofork_alloc(words * 8);
        if (!e.owed || (hooks->skip_redirtied && !e.redirtied)) {
            xmig__seterr(x, ENOMEM, "out of memory");
            goto out;
        }
    }
    if (e.ops->keep_maps && live && !exit)
        open_keep(&e);

    if (write_headers(&e) < 0 || e.ops->static_data(&e) < 0 ||
        write_cpu_policy(&e) < 0 ||
        xmig__engine_record(&e, REC_STATIC_DATA_END, NULL, 0) < 0 ||
        e.ops->start_of_stream(&e) < 0)
        goto out;
    if (live) {
        if (send_live(&e) < 0)
            goto out;
    } else {
        if (suspend(&e) < 0 || refresh(&e) < 0 ||
            send_pages(&e, NULL, e.p2m_size) < 0 || check_gap(&e, NULL) < 0)
            goto out;
    }
    if (e.ops->end_of_checkpoint(&e) < 0 ||
        xmig__engine_record(&e, REC_END, NULL, 0) < 0)
        goto out;
    rc = 0;
out:
    cleanup(&e, rc == 0 ? tail_r : NULL);
    return rc;
}

int xmig__engine_tail_close(struct xmig__tail *tail,
                            struct xmig_engine_stats *st)
{
    int rc = 0;

    if (!tail)
        return 0;
    if (tail->keep) {
        rc = xmig_arena_drain(tail->keep);
        add_stats(&st->arena, tail->keep);
        close_keep(tail->keep);
    }
    if (xmig__wk_close(tail->wk, &st->arena) < 0)
        rc = -1;
    free(tail);
    return rc;
}

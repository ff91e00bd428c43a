/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Strategy exit in the engine: a worker process maps the guest's pages
 * and writes PAGE_DATA records from its own mappings straight onto the
 * stream, and never unmaps; its exit does, without a trapped PTE write
 * per page (arena.c, "exit", says why).  Unlike the arena's exit worker
 * it copies no page bodies: it inherits the stream's descriptor across
 * fork and writes them itself.
 *
 * Order in the stream.  The job writes every other record itself.  It
 * hands one batch at a time to the worker and reads its answer before it
 * hands over the next or writes anything else, so the two never write at
 * the same time and the records stay in the order the job decides.  A
 * stream (socket, pipe or file) is one open file description shared by
 * both processes: the same file offset, the same shutdown() by a cancel.
 *
 * Overlap.  The job does not wait for that answer at once: while the
 * worker maps and writes a batch, the job reads the next batch's page
 * types (for PVH/HVM the slowest call of the loop: Xen looks each gfn up)
 * and frames, on another CPU where dom0 has one.  xmig__wk_settle() reads
 * the answer: before the next request, before any record the job writes
 * (xmig__engine_write refuses one while e->wk_busy), and at the end of
 * each pass, so that a failed batch stops the job before it suspends the
 * guest or starts another pass.  Nothing the job decides depends on the
 * answer but whether the job goes on: a batch that failed fails the job.
 *
 * What the job sees.  It reads no guest page itself but PV page tables:
 * they are rewritten with pfns, which needs the m2p, and privcmd mappings
 * (VM_DONTCOPY, VM_IO|VM_PFNMAP) cannot be reached from another process.
 * So the worker copies those pages into memory shared with the job, the
 * job normalises them in place, and the worker writes them from there in
 * the record: two round trips for a batch that holds page tables, one
 * for the rest.  The shared memory holds the request too: the worker
 * never calls the allocator, and only async-signal-safe functions.
 *
 * Kept across passes (PV, live).  The worker's mappings stay until it
 * exits, so a pfn whose mfn has not changed is written again from the
 * mapping of an earlier pass, as the keep arena does: the job keeps, per
 * pfn, which worker (a generation number) holds it at which page.
 * PVH/HVM never reuse: engine.c, send_batch, says why.
 *
 * Lifetime.  The job starts a worker at its first batch and replaces it
 * when its reserved address space (WK_LIFE_PAGES) or its mappings
 * (WK_LIFE_WINDOWS VMAs) run out.  A job that fails stops and reaps its
 * worker before it returns: nothing stays mapped, and a domain being
 * destroyed is not held back.  A job that succeeds asks it to quit once
 * the stream is out and reaps it in xmig__engine_tail_close(), so that
 * its teardown does not lengthen the downtime.  The worker keeps no
 * descriptor but its socket, the stream and privcmd, dies with the
 * thread that forked it (PR_SET_PDEATHSIG), and exits when its socket
 * closes.  If it dies, SIGKILL included, the kernel unmaps everything by
 * the same exit path; the job sees its socket close (or, should another
 * process hold the worker's end, the worker reaped at the next poll) and
 * fails with an error that says so, never hangs.  A record it had begun
 * is cut short: the stream is broken anyway, and the job fails.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine-exit.h"

#define WK_LIFE_WINDOWS 8192u
/* 32 GiB: 64 MiB of the worker's page tables at most. */
#define WK_LIFE_PAGES (1u << 23)
#define WK_POLL_MS 1000
#define WK_BUF 0x80000000u  /* src: page of the shared buffer */
#define WK_NONE 0xffffffffu /* src: not sent after all */
#define WK_ZERO 0xfffffffeu /* src: a page of zeros (engine.c's send_batch) */

static const uint8_t wk_zero_page[XMIG_PAGE_SIZE];

struct wk_ctl {
    /* The request. */
    uint64_t at;     /* map frames[] at this page of the worker's space */
    uint32_t nmap;   /* 0: nothing to map */
    uint32_t ncopy;  /* copy[] (pages of space) into the shared buffer */
    uint32_t hlen;   /* 0: no record; else hdr[] then src[] goes out */
    uint32_t npages; /* entries of src[]: pages of space, or WK_BUF | i */
    uint32_t copied; /* the sink refuses foreign pages: copy them first */
    uint32_t pad;
    xmig_pfn_t frames[XMIG_MAX_BATCH];
    uint32_t copy[XMIG_MAX_BATCH];
    uint32_t src[XMIG_MAX_BATCH];
    uint8_t hdr[8 + 8 * (XMIG_MAX_BATCH + 1)];
    /* The answer. */
    int32_t map_errno; /* the map call's; err[] has each frame's */
    int32_t write_errno;
    uint64_t written; /* bytes onto the stream */
    uint64_t map_ns, write_ns;
    int err[XMIG_MAX_BATCH];
};

#define WK_CTL_LEN                                                             \
    ((sizeof(struct wk_ctl) + XMIG_PAGE_SIZE - 1) & ~(XMIG_PAGE_SIZE - 1))

struct wk {
    xmig_xen *x;
    uint32_t domid;
    int fd; /* the stream */
    struct wk_ctl *ctl;
    uint8_t *buf; /* PV: the batch's page tables, shared */
    unsigned int nbuf;
    uint8_t *region;
    size_t region_len;
    size_t life; /* pages of the worker's space */
    pid_t pid;   /* 0: none running */
    int sock;
    uint32_t gen; /* of the running worker, or of the last one */
    size_t used;  /* pages of its space taken */
    unsigned int windows;
    bool quitting; /* asked to quit, not reaped yet */
    bool pending;  /* a request posted, its answer not read */
    unsigned int pend_nmap;
    bool died;     /* one died or failed by itself */
    char why[128]; /* ... how */
    struct xmig_arena_stats st;
};

static bool wk_send1(int fd, char c)
{
    ssize_t r;

    do
        r = send(fd, &c, 1, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r == 1;
}

static uint64_t wk_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* Every byte of iov onto fd; 0 or an errno.  Async-signal-safe. */
static int wk_write(struct wk_ctl *c, int fd, struct iovec *iov, int cnt,
                    uint8_t *bounce)
{
    while (cnt > 0) {
        int n = cnt > IOV_MAX ? IOV_MAX : cnt;
        ssize_t r;

        if (c->copied)
            r = write(fd, bounce, engine_gather(bounce, iov, cnt));
        else
            r = writev(fd, iov, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EFAULT && !c->copied) {
            c->copied = 1; /* see xmig__engine_write */
            continue;
        }
        if (r < 0)
            return errno;
        c->written += (uint64_t)r;
        engine_advance(&iov, &cnt, (size_t)r);
    }
    return 0;
}

static void wk_serve(struct wk *w, struct wk_ctl *c, uint8_t *space,
                     uint8_t *bounce, struct iovec *iov)
{
    uint64_t t0 = wk_now();
    unsigned int i;

    c->map_errno = 0;
    c->write_errno = 0;
    c->written = 0;
    c->map_ns = c->write_ns = 0;
    if (c->nmap > XMIG_MAX_BATCH || c->at > w->life ||
        c->nmap > w->life - c->at || c->ncopy > w->nbuf ||
        c->npages > XMIG_MAX_BATCH || c->hlen > sizeof(c->hdr)) {
        c->map_errno = EINVAL;
        return;
    }
    if (c->nmap) {
        if (w->x->ops->map_at(w->x, w->domid, space + c->at * XMIG_PAGE_SIZE,
                              c->nmap, c->frames, c->err, false) < 0)
            c->map_errno = errno ? errno : EIO;
        c->map_ns = wk_now() - t0;
        if (c->map_errno)
            return;
        for (i = 0; i < c->nmap; i++)
            if (c->err[i])
                return;
    }
    for (i = 0; i < c->ncopy; i++) {
        if (c->copy[i] >= w->life) {
            c->map_errno = EINVAL;
            return;
        }
        memcpy(w->buf + (size_t)i * XMIG_PAGE_SIZE,
               space + (size_t)c->copy[i] * XMIG_PAGE_SIZE, XMIG_PAGE_SIZE);
    }
    if (!c->hlen)
        return;
    iov[0] = (struct iovec){c->hdr, c->hlen};
    for (i = 0; i < c->npages; i++) {
        uint32_t s = c->src[i];

        if (s == WK_ZERO) {
            iov[i + 1].iov_base = (void *)wk_zero_page;
        } else if (s & WK_BUF) {
            if ((s & ~WK_BUF) >= w->nbuf) {
                c->write_errno = EINVAL;
                return;
            }
            iov[i + 1].iov_base =
                w->buf + (size_t)(s & ~WK_BUF) * XMIG_PAGE_SIZE;
        } else {
            if (s >= w->life) {
                c->write_errno = EINVAL;
                return;
            }
            iov[i + 1].iov_base = space + (size_t)s * XMIG_PAGE_SIZE;
        }
        iov[i + 1].iov_len = XMIG_PAGE_SIZE;
    }
    t0 = wk_now();
    c->write_errno = wk_write(c, w->fd, iov, (int)c->npages + 1, bounce);
    c->write_ns = wk_now() - t0;
}

static void wk_main(struct wk *w, int sock, pid_t parent)
    __attribute__((noreturn));

/* One byte either way: B(atch) and Q(uit) from the job; R(eady), E(rror)
 * and D(one) from the worker. */
static void wk_main(struct wk *w, int sock, pid_t parent)
{
    struct wk_ctl *c = w->ctl;
    const int keep[2] = {sock, w->fd};
    uint8_t *space, *bounce;
    struct iovec *iov;
    size_t aux = ENGINE_BOUNCE + (XMIG_MAX_BATCH + 1) * sizeof(*iov);

    if (xmig__worker_init(w->x, parent, keep, 2) < 0)
        _exit(1);
    space = mmap(NULL, w->life * XMIG_PAGE_SIZE, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    bounce = mmap(NULL, aux, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (space == MAP_FAILED || bounce == MAP_FAILED) {
        c->map_errno = errno;
        wk_send1(sock, 'E');
        _exit(1);
    }
    iov = (struct iovec *)(bounce + ENGINE_BOUNCE);
    if (!wk_send1(sock, 'R'))
        _exit(1);
    for (;;) {
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        char ch;
        ssize_t r = poll(&pfd, 1, WK_POLL_MS);

        if (r == 0 && getppid() != parent)
            _exit(1);
        if (r <= 0)
            continue;
        r = recv(sock, &ch, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != 1 || ch != 'B')
            _exit(r == 1 && ch == 'Q' ? 0 : 1);
        wk_serve(w, c, space, bounce, iov);
        if (!wk_send1(sock, 'D'))
            _exit(1);
    }
}

/* Reap the worker; -1 unless it quit when asked.  why: what became of it. */
static int wk_reap(struct wk *w, char *why, size_t len)
{
    pid_t pid = w->pid;

    w->pid = 0;
    w->quitting = false;
    return xmig__worker_reap(pid, why, len);
}

static int wk_wait(struct wk *w, char *c_r)
{
    return xmig__worker_wait(w->pid, w->sock, c_r);
}

/* Ask the worker to quit: it starts unmapping everything, now. */
void xmig__wk_quit(struct wk *w)
{
    if (!w || !w->pid || w->quitting)
        return;
    wk_send1(w->sock, 'Q');
    close(w->sock);
    w->sock = -1;
    w->quitting = true;
}

/*
 * Quit and wait until its mappings are gone.  -1 if it had died.  A
 * request still unanswered belongs to a job that has failed (a job that
 * goes on reads every answer before it writes or ends the stream): the
 * worker is killed rather than waited for, since a receiver that stopped
 * reading would hold its write, and the job's end, for ever.  Its exit
 * unmaps by the same path; the record it was writing is cut short in a
 * stream that is broken anyway.
 */
static int wk_stop(struct wk *w)
{
    char why[128] = "";
    bool killed = w->pid && w->pending;
    /* What the job waits for: a worker told to go long ago costs nothing. */
    uint64_t t0 = xmig_now_ns();
    int rc;

    if (!w->pid)
        return 0;
    if (killed)
        kill(w->pid, SIGKILL);
    w->pending = false;
    xmig__wk_quit(w);
    rc = wk_reap(w, why, sizeof(why));
    w->st.unmap_calls++;
    w->st.unmap_ns += xmig_now_ns() - t0;
    if (rc < 0 && !killed) {
        w->died = true;
        memcpy(w->why, why, sizeof(why));
        xmig__log(w->x, XMIG_LOG_WARN, "the mapping worker %s", why);
    }
    return killed ? 0 : rc;
}

/* The worker failed to answer: say why, reap it; errno is EPIPE. */
static int wk_fail(struct wk *w, const char *what)
{
    char why[128] = "died";

    if (w->sock >= 0)
        close(w->sock);
    w->sock = -1;
    if (w->pid)
        wk_reap(w, why, sizeof(why));
    w->died = true;
    memcpy(w->why, why, sizeof(why));
    xmig__seterr(w->x, EPIPE, "%s of domain %u: the mapping worker %s", what,
                 w->domid, why);
    errno = EPIPE;
    return -1;
}

static void wk_main_fn(void *arg, int sock, pid_t parent)
{
    wk_main(arg, sock, parent);
}

static int wk_start(struct wk *w)
{
    char c = 0;

    /* Before the fork: the worker starts from these. */
    w->gen++;
    w->used = 0;
    w->windows = 0;
    if (xmig__worker_spawn(w->x, wk_main_fn, w, &w->pid, &w->sock) < 0)
        return -1;
    if (wk_wait(w, &c) < 0 || c != 'R') {
        if (c == 'E' && w->ctl->map_errno) {
            int saved = w->ctl->map_errno;

            wk_stop(w);
            xmig__seterr(w->x, saved, "cannot start the mapping worker: %s",
                         strerror(saved));
            return -1;
        }
        return wk_fail(w, "starting to send the pages");
    }
    return 0;
}

int xmig__wk_open(struct engine *e)
{
    struct wk *w = calloc(1, sizeof(*w));
    size_t life = (size_t)WK_LIFE_WINDOWS * e->ap.batch;

    if (!w) {
        xmig__seterr(e->x, ENOMEM, "out of memory");
        return -1;
    }
    w->x = e->x;
    w->domid = e->domid;
    w->fd = e->fd;
    w->sock = -1;
    w->life = life < WK_LIFE_PAGES ? life : WK_LIFE_PAGES;
    w->nbuf = e->ops->normalise_page ? e->ap.batch : 0;
    w->region_len = WK_CTL_LEN + (size_t)w->nbuf * XMIG_PAGE_SIZE;
    w->region = xmig__exit_region_get(w->region_len);
    if (w->region == MAP_FAILED) {
        xmig__seterr(e->x, errno,
                     "cannot share memory with the mapping "
                     "worker: %s",
                     strerror(errno));
        free(w);
        return -1;
    }
    w->ctl = (struct wk_ctl *)w->region;
    w->buf = w->region + WK_CTL_LEN;
    e->wk = w;
    return 0;
}

/*
 * Hand the request in ctl to the worker.  Its answer is read by
 * wk_complete(), at once (wk_call) or once the job has readied its next
 * batch (xmig__wk_settle).  The space it maps is taken now: the next
 * batch maps after it.
 */
static int wk_post(struct engine *e, unsigned int nmap)
{
    struct wk *w = e->wk;

    w->ctl->copied = e->copy_writes;
    w->st.requests++;
    w->pend_nmap = nmap;
    if (nmap) {
        w->used += nmap;
        w->windows++;
    }
    if (!wk_send1(w->sock, 'B'))
        return wk_fail(w, "sending the pages");
    w->pending = true;
    e->wk_busy = true;
    return 0;
}

/* The answer to the request posted last.  A batch that did not map stops
   the worker: what it did map goes now. */
static int wk_complete(struct engine *e)
{
    struct wk *w = e->wk;
    struct wk_ctl *c = w->ctl;
    unsigned int i, nmap = w->pend_nmap;
    char ch;

    w->pending = false;
    e->wk_busy = false;
    if (wk_wait(w, &ch) < 0 || ch != 'D')
        return wk_fail(w, "sending the pages");
    if (c->copied && !e->copy_writes) {
        xmig__log(e->x, XMIG_LOG_INFO,
                  "the sink refuses foreign pages: copying them");
        e->copy_writes = true;
    }
    e->st->bytes += c->written;
    e->st->write_ns += c->write_ns;
    if (nmap) {
        w->st.map_calls++;
        w->st.map_ns += c->map_ns;
    }
    if (c->map_errno) {
        int saved = c->map_errno;

        wk_stop(w);
        xmig__seterr(e->x, saved, "cannot map %u frames of domain %u: %s", nmap,
                     e->domid, strerror(saved));
        return -1;
    }
    for (i = 0; i < nmap; i++) {
        if (c->err[i]) {
            int saved = c->err[i];

            wk_stop(w);
            xmig__seterr(e->x, saved, "cannot map frame %#llx of domain %u: %s",
                         (unsigned long long)c->frames[i], e->domid,
                         strerror(saved));
            return -1;
        }
    }
    if (nmap) {
        w->st.frames_mapped += nmap;
        w->st.windows++;
    }
    if (c->write_errno) {
        xmig__seterr(e->x, c->write_errno, "writing the stream: %s",
                     xmig__write_strerror(c->write_errno));
        return -1;
    }
    return 0;
}

static int wk_call(struct engine *e, unsigned int nmap)
{
    return wk_post(e, nmap) < 0 ? -1 : wk_complete(e);
}

int xmig__wk_settle(struct engine *e)
{
    if (!e->wk || !e->wk->pending)
        return 0;
    return wk_complete(e);
}

/* The record's header and page list into ctl; the pages it sends. */
static unsigned int wk_record(struct engine *e, const xmig_pfn_t *pfns,
                              unsigned int n, const xmig_pfn_t *types,
                              const uint32_t *src, unsigned int nd)
{
    struct wk_ctl *c = e->wk->ctl;
    uint64_t words[XMIG_MAX_BATCH + 1];
    uint32_t rh[2];
    unsigned int i, np = 0;

    for (i = 0; i < nd; i++)
        if (src[i] != WK_NONE)
            c->src[np++] = src[i];
    words[0] = n; /* count, reserved */
    for (i = 0; i < n; i++)
        words[i + 1] = (types[i] << 32) | pfns[i];
    rh[0] = REC_PAGE_DATA;
    rh[1] = (uint32_t)(8 * (n + 1) + XMIG_PAGE_SIZE * np);
    memcpy(c->hdr, rh, sizeof(rh));
    memcpy(c->hdr + sizeof(rh), words, 8 * (n + 1));
    c->hlen = (uint32_t)(sizeof(rh) + 8 * (n + 1));
    c->npages = np;
    return np;
}

int xmig__wk_send(struct engine *e, const xmig_pfn_t *pfns, unsigned int n,
                  const xmig_pfn_t *frames, xmig_pfn_t *types,
                  const unsigned int *idx, unsigned int nd,
                  const uint64_t *zero, bool whole)
{
    struct wk *w = e->wk;
    struct wk_ctl *c = w->ctl;
    uint32_t src[XMIG_MAX_BATCH];
    unsigned int pt[XMIG_MAX_BATCH];
    unsigned int i, j, nmap = 0, npt = 0, reused = 0, np;
    bool tables = e->ops->normalise_page != NULL;

    /* The request area is the worker's until it has answered. */
    if (xmig__wk_settle(e) < 0)
        return -1;
    /* A full worker goes (and what it kept with it) before this batch. */
    if (w->pid && (w->used + nd > w->life || w->windows >= WK_LIFE_WINDOWS) &&
        wk_stop(w) < 0) {
        xmig__seterr(e->x, EPIPE, "the mapping worker of domain %u died",
                     e->domid);
        return -1;
    }
    if (!w->pid && wk_start(w) < 0)
        return -1;

    for (i = 0; i < nd; i++) {
        unsigned int k = idx[i];
        struct wk_reuse *r = e->wcache ? &e->wcache[pfns[k]] : NULL;

        if (bit_test(zero, k)) {
            src[i] = WK_ZERO;
            continue;
        }
        if (r && r->gen == w->gen && r->mfn == frames[k]) {
            src[i] = r->off;
            reused++;
        } else {
            c->frames[nmap] = frames[k];
            src[i] = (uint32_t)(w->used + nmap);
            nmap++;
        }
        /* PV page tables: copied out, normalised here, sent from here. */
        if (tables && is_pagetable((uint32_t)types[k])) {
            c->copy[npt] = src[i];
            pt[npt++] = i;
        }
    }
    c->at = w->used;
    c->nmap = nmap;
    c->ncopy = npt;
    c->hlen = 0;
    /* Page tables: a round trip first, to map and copy them out. */
    if (npt && wk_call(e, nmap) < 0)
        return -1;
    /*
     * Without page tables the batch is mapped and written by one request,
     * answered later: these entries are taken before that answer.  A
     * batch that fails fails the job, and the cache with it.
     */
    for (i = 0; e->wcache && i < nd; i++) {
        if (src[i] >= c->at && src[i] < c->at + nmap) {
            struct wk_reuse *r = &e->wcache[pfns[idx[i]]];

            r->mfn = frames[idx[i]];
            r->off = src[i];
            r->gen = w->gen;
        }
    }
    e->st->reused += reused;
    for (j = 0; j < npt; j++) {
        unsigned int k = idx[pt[j]];
        uint8_t *p = w->buf + (size_t)j * XMIG_PAGE_SIZE;

        /* In place: each entry is read before it is written. */
        if (e->ops->normalise_page(e, p, p, (uint32_t)types[k]) == 0) {
            src[pt[j]] = WK_BUF | j;
        } else if (errno == EAGAIN && !e->suspended) {
            types[k] = xmig__engine_defer(e, pfns[k], whole);
            src[pt[j]] = WK_NONE;
        } else {
            return -1;
        }
    }
    np = wk_record(e, pfns, n, types, src, nd);
    if (npt) {
        c->nmap = 0;
        c->ncopy = 0;
    }
    for (i = 0; e->owed && i < nd; i++)
        if (src[i] != WK_NONE)
            bit_clear(e->owed, pfns[idx[i]]);
    e->st->pages += np;
    return wk_post(e, npt ? 0 : nmap);
}

int xmig__wk_close(struct wk *w, struct xmig_arena_stats *sum)
{
    int rc;

    if (!w)
        return 0;
    rc = wk_stop(w) < 0 || w->died ? -1 : 0;
    if (rc < 0)
        xmig__seterr(w->x, EPIPE,
                     "unmapping guest memory of domain %u: the mapping "
                     "worker %s",
                     w->domid, w->why);
    sum->frames_mapped += w->st.frames_mapped;
    sum->map_calls += w->st.map_calls;
    sum->unmap_calls += w->st.unmap_calls;
    sum->map_ns += w->st.map_ns;
    sum->unmap_ns += w->st.unmap_ns;
    sum->windows += w->st.windows;
    sum->requests += w->st.requests;
    if (xmig__exit_region_put(w->region, w->region_len) < 0)
        rc = -1;
    free(w);
    return rc;
}

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
 * exit       a worker process maps, copies each page into memory it shares
 *            with the caller, and keeps its mappings until it exits; its
 *            exit unmaps them all without a trap (see the section below).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

    /* exit: the worker, the request it works on, how much it holds. */
    pthread_mutex_t exit_lock; /* one request at a time */
    struct exit_ctl *ctl;      /* at the end of region, shared */
    pid_t worker;              /* 0: none running */
    int sock;                  /* to the worker, -1 if none */
    unsigned int wk_windows;
    size_t wk_pages;
};

static const char *const strategy_names[XMIG_STRATEGY__COUNT] = {
    [XMIG_STRATEGY_PER_BATCH] = "per-batch",
    [XMIG_STRATEGY_ARENA] = "arena",
    [XMIG_STRATEGY_KERNEL] = "kernel",
    [XMIG_STRATEGY_EXIT] = "exit",
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

/*
 * exit: unmapping at process exit.
 *
 * In a PV dom0 the page tables of a live process are pinned and read-only,
 * and munmap clears each foreign PTE with an xchg that traps into Xen: one
 * emulated write per page.  exit_mmap() is different: arch_exit_mmap(),
 * xen_exit_mmap() in a PV dom0, unpins the page tables first (a batch of
 * hypercalls per page-table page; Xen drops the foreign references in the
 * unpin), and the zap that follows writes ordinary memory.
 *
 * So a worker process, forked from the caller, maps each batch into a
 * fresh privcmd mapping of its own, copies the pages into memory it shares
 * with the caller (the slot of the window), answers, and never unmaps.  It
 * exits when the arena is drained or closed, after a map failed, and when
 * it holds EXIT_LIFE_PAGES pages or EXIT_LIFE_WINDOWS mappings: that
 * bounds its page tables (2 MiB per GiB mapped), its VMAs (one per window,
 * well under vm.max_map_count), and how long a destroyed domain's pages
 * stay referenced.
 *
 * Why fork and copy.  privcmd mappings are VM_DONTCOPY and cannot be
 * reached from another process (no GUP on VM_IO|VM_PFNMAP), so the worker
 * maps for itself and the caller gets a copy; its windows never point into
 * guest memory.  The privcmd file descriptor is inherited and works: it
 * holds no per-process state.  The fork costs one trapped write per
 * writable private page the caller has resident (they become copy-on-write)
 * and one per such page either side writes while the worker lives; the
 * region shared with the worker is not copy-on-write.  A worker lives for
 * many batches, so that is paid rarely.  The copy costs a 4 KiB memcpy per
 * page, far less than a trap and its emulation.
 *
 * Safety.  The caller reads only its own shared memory, which stays valid
 * whatever the worker does: no page is read through a mapping after it
 * is gone.  The window's contents are written before the worker answers
 * and never again until the caller has released the slot and asked for a
 * new batch in it.  If the worker dies, SIGKILL included, the kernel tears
 * its mappings down by the same exit path; the caller sees the socket close
 * (or, should another process hold the worker's end, the worker reaped on
 * the next poll) and the map fails with EPIPE, never hangs.  A worker whose
 * parent is gone notices within a poll interval and exits.  A failed map
 * stops the worker and waits for it before returning, so that nothing of
 * the batch stays mapped and a domain being destroyed is not held back.
 *
 * The worker calls only async-signal-safe functions (the caller may have
 * threads) and never the allocator: the request is in shared memory.  It
 * keeps no descriptor but its socket and privcmd (xmig__worker_init): one
 * forked by a job of xmigd would otherwise hold other jobs' streams open
 * after they end.  The engine's worker (engine-exit.c) works the same way.
 */

#define EXIT_LIFE_PAGES (1u << 18) /* 1 GiB of guest memory */
#define EXIT_LIFE_WINDOWS 8192u
#define EXIT_POLL_MS 1000

struct exit_ctl {
    uint32_t slot;
    uint32_t n;
    int32_t errnum; /* the map call's errno; 0: err[] says it all */
    uint32_t pad;
    xmig_pfn_t frames[XMIG_MAX_BATCH];
    int err[XMIG_MAX_BATCH];
};

#define EXIT_CTL_LEN                                                           \
    ((sizeof(struct exit_ctl) + XMIG_PAGE_SIZE - 1) & ~(XMIG_PAGE_SIZE - 1))

/*
 * Regions shared with workers outlive their arenas.  Unmapping one is a
 * zap in a live process: one trapped write per page the caller touched,
 * the cost this strategy is for.  Kept here, they go at the process's
 * exit, without a trap, and the next arena of that size takes one again.
 */
#define EXIT_POOL 4

static struct {
    pthread_mutex_t lock;
    void *addr[EXIT_POOL];
    size_t len[EXIT_POOL];
} exit_pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

void *xmig__exit_region_get(size_t len)
{
    void *p = NULL;
    unsigned int i;

    pthread_mutex_lock(&exit_pool.lock);
    for (i = 0; i < EXIT_POOL && !p; i++) {
        if (exit_pool.addr[i] && exit_pool.len[i] == len) {
            p = exit_pool.addr[i];
            exit_pool.addr[i] = NULL;
        }
    }
    pthread_mutex_unlock(&exit_pool.lock);
    if (p)
        return p;
    return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
}

int xmig__exit_region_put(void *p, size_t len)
{
    unsigned int i;

    pthread_mutex_lock(&exit_pool.lock);
    for (i = 0; i < EXIT_POOL; i++) {
        if (!exit_pool.addr[i]) {
            exit_pool.addr[i] = p;
            exit_pool.len[i] = len;
            pthread_mutex_unlock(&exit_pool.lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&exit_pool.lock);
    return munmap(p, len);
}

/* Close [lo, hi]; close_range where the kernel has it. */
static void close_from(unsigned int lo, unsigned int hi)
{
    struct rlimit rl;
    unsigned int fd;

#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
#endif
    /* Descriptors beyond the soft limit are rare enough to leave. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur <= hi)
        hi = rl.rlim_cur ? (unsigned int)rl.rlim_cur - 1 : 0;
    if (hi > (1u << 20))
        hi = 1u << 20;
    for (fd = lo; fd <= hi && fd >= lo; fd++)
        close((int)fd);
}

int xmig__worker_init(xmig_xen *x, pid_t parent, const int *keep,
                      unsigned int nkeep)
{
    struct sigaction sa;
    sigset_t none;
    int fds[16], sig, t;
    unsigned int n = 0, i, j, lo = 3;

    /* If the job's thread goes, so does the worker, at once. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        return -1;
    /* The caller's handlers are the caller's business, not ours. */
    memset(&sa, 0, sizeof(sa));
    for (sig = 1; sig < 32; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        sa.sa_handler = sig == SIGPIPE ? SIG_IGN : SIG_DFL;
        sigaction(sig, &sa, NULL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    for (i = 0; i < nkeep && n < 8; i++)
        fds[n++] = keep[i];
    n += x->ops->mapper_fds(x, fds + n, 16 - n);
    for (i = 1; i < n; i++) /* sort, to close what lies between */
        for (j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    for (i = 0; i < n; i++) {
        if (fds[i] < 0 || (unsigned int)fds[i] < lo)
            continue;
        if ((unsigned int)fds[i] > lo)
            close_from(lo, (unsigned int)fds[i] - 1);
        lo = (unsigned int)fds[i] + 1;
    }
    close_from(lo, ~0u);
    return 0;
}

int xmig__worker_spawn(xmig_xen *x,
                       void (*fn)(void *arg, int sock, pid_t parent), void *arg,
                       pid_t *pid_r, int *sock_r)
{
    pid_t parent = getpid(), pid;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        goto fail;
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        fn(arg, sv[1], parent);
        _exit(127); /* fn does not return */
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        goto fail;
    }
    *pid_r = pid;
    *sock_r = sv[0];
    return 0;
fail:
    xmig__seterr(x, errno, "cannot start the mapping worker: %s",
                 strerror(errno));
    return -1;
}

/* One byte either way: M(ap) and Q(uit) from the caller, R(eady),
 * E(rror) and D(one) from the worker. */
static bool exit_send(int fd, char c)
{
    ssize_t r;

    do
        r = send(fd, &c, 1, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r == 1;
}

static size_t exit_life_pages(const xmig_arena *a)
{
    size_t by_windows = (size_t)EXIT_LIFE_WINDOWS * a->p.batch;

    return by_windows < EXIT_LIFE_PAGES ? by_windows : EXIT_LIFE_PAGES;
}

static void exit_worker(xmig_arena *a, int sock, pid_t parent)
    __attribute__((noreturn));

static void exit_worker(xmig_arena *a, int sock, pid_t parent)
{
    struct exit_ctl *ctl = a->ctl;
    size_t life = exit_life_pages(a), used = 0;
    uint8_t *space;

    if (xmig__worker_init(a->x, parent, &sock, 1) < 0)
        _exit(1);
    space = mmap(NULL, life * XMIG_PAGE_SIZE, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (space == MAP_FAILED) {
        ctl->errnum = errno;
        exit_send(sock, 'E');
        _exit(1);
    }
    if (!exit_send(sock, 'R'))
        _exit(1);
    for (;;) {
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        unsigned int i, n;
        uint8_t *addr, *dst;
        char c;
        ssize_t r;

        r = poll(&pfd, 1, EXIT_POLL_MS);
        if (r == 0 && getppid() != parent)
            _exit(1);
        if (r <= 0)
            continue;
        r = recv(sock, &c, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != 1 || c != 'M')
            _exit(r == 1 && c == 'Q' ? 0 : 1);
        n = ctl->n;
        if (n == 0 || n > a->p.batch || ctl->slot >= a->p.slots ||
            used + n > life) {
            ctl->errnum = EINVAL;
        } else {
            /* Never reused, even after a failure: it may be partly mapped. */
            addr = space + used * XMIG_PAGE_SIZE;
            used += n;
            dst = slot_addr(a, ctl->slot);
            if (a->x->ops->map_at(a->x, a->domid, addr, n, ctl->frames,
                                  ctl->err, false) < 0) {
                ctl->errnum = errno ? errno : EIO;
            } else {
                ctl->errnum = 0;
                for (i = 0; i < n; i++)
                    if (!ctl->err[i])
                        memcpy(dst + (size_t)i * XMIG_PAGE_SIZE,
                               addr + (size_t)i * XMIG_PAGE_SIZE,
                               XMIG_PAGE_SIZE);
            }
        }
        if (!exit_send(sock, 'D'))
            _exit(1);
    }
}

/* Reap the worker (waiting for it); -1 unless it quit when asked. */
/*
 * Reaps a worker: 0 if it exited with status 0 (or someone else reaped it,
 * SIGCHLD ignored), else -1 with why it ended in why.
 */
int xmig__worker_reap(pid_t pid, char *why, size_t len)
{
    int status = 0;
    pid_t r;

    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        snprintf(why, len, "could not be waited for: %s", strerror(errno));
        return errno == ECHILD ? 0 : -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        snprintf(why, len, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(why, len, "exited with status %d", WEXITSTATUS(status));
    return -1;
}

static int exit_reap(xmig_arena *a, char *why, size_t len)
{
    pid_t pid = a->worker;

    a->worker = 0;
    return xmig__worker_reap(pid, why, len);
}

/*
 * Stop the worker and wait until its mappings are gone: the unmap of this
 * strategy.  Called with exit_lock held.  -1 if it had died on its own.
 */
static int exit_stop(xmig_arena *a)
{
    uint64_t t0 = xmig_now_ns();
    char why[128] = "";
    int rc;

    if (!a->worker)
        return 0;
    exit_send(a->sock, 'Q');
    close(a->sock);
    a->sock = -1;
    rc = exit_reap(a, why, sizeof(why));
    pthread_mutex_lock(&a->lock);
    a->st.unmap_calls++;
    a->st.unmap_ns += xmig_now_ns() - t0;
    if (rc < 0 && !a->reclaim_errno)
        a->reclaim_errno = EPIPE;
    pthread_mutex_unlock(&a->lock);
    if (rc < 0)
        xmig__log(a->x, XMIG_LOG_WARN, "the mapping worker %s", why);
    a->wk_pages = 0;
    a->wk_windows = 0;
    return rc;
}

/*
 * A worker's one-byte answer on sock, or -1 (EPIPE) once it is seen to have
 * died (its socket may be held elsewhere: the caller reaps it).
 */
int xmig__worker_wait(pid_t pid, int sock, char *c_r)
{
    for (;;) {
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        ssize_t r = poll(&pfd, 1, EXIT_POLL_MS);

        if (r > 0) {
            r = recv(sock, c_r, 1, 0);
            if (r == 1)
                return 0;
            if (r == 0 || errno != EINTR)
                break;
        } else if (r == 0) {
            siginfo_t si = {.si_pid = 0};

            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) <
                    0 ||
                si.si_pid)
                break;
        } else if (errno != EINTR) {
            break;
        }
    }
    errno = EPIPE;
    return -1;
}

static int exit_wait(xmig_arena *a, char *c_r)
{
    return xmig__worker_wait(a->worker, a->sock, c_r);
}

/* Report why the worker could not serve, stop it; errno is saved. */
static void exit_fail(xmig_arena *a, const char *what)
{
    char why[128] = "died";
    int saved = errno;

    if (a->sock >= 0)
        close(a->sock);
    a->sock = -1;
    if (a->worker)
        exit_reap(a, why, sizeof(why));
    a->wk_pages = 0;
    a->wk_windows = 0;
    xmig__seterr(a->x, saved, "%s of domain %u: the mapping worker %s", what,
                 a->domid, why);
    errno = saved;
}

static void exit_worker_fn(void *arg, int sock, pid_t parent)
{
    exit_worker(arg, sock, parent);
}

static int exit_start(xmig_arena *a)
{
    char c = 0;

    if (xmig__worker_spawn(a->x, exit_worker_fn, a, &a->worker, &a->sock) < 0)
        return -1;
    if (exit_wait(a, &c) < 0 || c != 'R') {
        errno = c == 'E' && a->ctl->errnum ? a->ctl->errnum : EPIPE;
        exit_fail(a, "cannot map frames");
        return -1;
    }
    return 0;
}

/* The lowest free slot: a caller with one window out touches one slot. */
static struct slot *exit_slot(xmig_arena *a)
{
    unsigned int i;

    pthread_mutex_lock(&a->lock);
    for (i = 0; i < a->p.slots; i++) {
        if (a->slots[i].state == SLOT_FREE) {
            a->slots[i].state = SLOT_BUSY;
            pthread_mutex_unlock(&a->lock);
            return &a->slots[i];
        }
    }
    pthread_mutex_unlock(&a->lock);
    xmig__seterr(a->x, ENOSPC, "all %u arena windows are in use", a->p.slots);
    return NULL;
}

static int check_err(xmig_arena *a, const xmig_pfn_t *frames, unsigned int n,
                     const int *err);

static xmig_window *map_exit(xmig_arena *a, const xmig_pfn_t *frames,
                             unsigned int n, int *err)
{
    struct exit_ctl *ctl = a->ctl;
    struct slot *s = exit_slot(a);
    uint64_t t0 = xmig_now_ns();
    int saved = 0;
    char c;

    if (!s)
        return NULL;
    pthread_mutex_lock(&a->exit_lock);
    if (a->worker && (a->wk_pages + n > exit_life_pages(a) ||
                      a->wk_windows >= EXIT_LIFE_WINDOWS))
        exit_stop(a);
    if (!a->worker && exit_start(a) < 0) {
        saved = errno;
        goto out;
    }
    ctl->slot = (uint32_t)s->win.slot;
    ctl->n = n;
    memcpy(ctl->frames, frames, n * sizeof(*frames));
    memset(ctl->err, 0, n * sizeof(*ctl->err));
    a->st.requests++;
    if (!exit_send(a->sock, 'M') || exit_wait(a, &c) < 0 || c != 'D') {
        errno = EPIPE;
        saved = EPIPE;
        exit_fail(a, "cannot map frames");
        goto out;
    }
    a->wk_pages += n;
    a->wk_windows++;
    memcpy(err, ctl->err, n * sizeof(*err));
    if (ctl->errnum) {
        saved = ctl->errnum;
        xmig__seterr(a->x, saved, "cannot map %u frames of domain %u: %s", n,
                     a->domid, strerror(saved));
    } else if (check_err(a, frames, n, err) < 0) {
        saved = errno;
    }
    /* What did map of a failed batch goes now, not at the next drain. */
    if (saved)
        exit_stop(a);
out:
    pthread_mutex_unlock(&a->exit_lock);
    pthread_mutex_lock(&a->lock);
    a->st.map_calls++;
    a->st.map_ns += xmig_now_ns() - t0;
    if (saved) {
        s->state = SLOT_FREE;
    } else {
        s->win.n = n;
        a->st.frames_mapped += n;
        a->st.windows++;
    }
    pthread_mutex_unlock(&a->lock);
    if (saved) {
        errno = saved;
        return NULL;
    }
    return &s->win;
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
    a->sock = -1;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    pthread_mutex_init(&a->exit_lock, NULL);

    if (a->strategy == XMIG_STRATEGY_KERNEL && !(x->caps & XMIG_CAP_ZAP)) {
        xmig__log(x, XMIG_LOG_INFO,
                  "kernel has no privcmd batched unmap: using 'arena'");
        a->strategy = XMIG_STRATEGY_ARENA;
    }
    if (a->strategy == XMIG_STRATEGY_PER_BATCH)
        return a;

    a->slots = calloc(a->p.slots, sizeof(*a->slots));
    a->region_len = (size_t)a->p.slots * a->p.batch * XMIG_PAGE_SIZE;
    if (a->strategy == XMIG_STRATEGY_EXIT) {
        /* The slots and the request, shared with the worker: no COW. */
        a->region_len += EXIT_CTL_LEN;
        a->region = xmig__exit_region_get(a->region_len);
    } else {
        a->region = mmap(NULL, a->region_len, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
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
    if (a->strategy == XMIG_STRATEGY_EXIT) {
        /* Started by the first map: an arena never used forks nothing. */
        a->ctl = (struct exit_ctl *)(a->region + a->region_len - EXIT_CTL_LEN);
        return a;
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
    if (a->strategy == XMIG_STRATEGY_EXIT)
        return map_exit(a, frames, n, err);
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
    if (a->strategy == XMIG_STRATEGY_EXIT) {
        /* A copy: nothing to unmap, the slot is free at once. */
        s->state = SLOT_FREE;
        pthread_mutex_unlock(&a->lock);
        return;
    }
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

    if (a->strategy == XMIG_STRATEGY_EXIT) {
        pthread_mutex_lock(&a->exit_lock);
        exit_stop(a);
        pthread_mutex_unlock(&a->exit_lock);
    }
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
    if (a->slots && a->strategy != XMIG_STRATEGY_EXIT) {
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
    if (a->region != MAP_FAILED && a->strategy == XMIG_STRATEGY_EXIT) {
        if (xmig__exit_region_put(a->region, a->region_len) < 0)
            rc = -1;
    } else if (a->region != MAP_FAILED) {
        /* Kept kernel mappings hold no PTEs any more: this is cheap. */
        if (munmap(a->region, a->region_len) < 0)
            rc = -1;
    }
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->exit_lock);
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
    struct xmig__errkeep k;
    int waited = 0;
    bool gone;

    xmig__err_keep(x, &k);
    while (!(gone = gone_now(x, before)) && teardown &&
           waited < VANISH_WAIT_MS) {
        nanosleep(&poll, NULL);
        waited += VANISH_POLL_MS;
    }
    xmig__err_back(x, &k);
    return gone;
}

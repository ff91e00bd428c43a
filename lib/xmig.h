/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libxmig: the library behind xmig and xmigd.
 *
 * The library never prints and never exits.  Functions return 0 (or a
 * pointer) on success and -1 (or NULL) on failure with errno set; a
 * one-line human readable reason for the last failure is kept in the
 * handle (xmig_xen_error()).
 */
#ifndef XMIG_H
#define XMIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XMIG_PAGE_SHIFT 12
#define XMIG_PAGE_SIZE (1UL << XMIG_PAGE_SHIFT)

/* Xen's per-call limit for getpageframeinfo3, and libxc's batch size. */
#define XMIG_MAX_BATCH 1024

typedef uint64_t xmig_pfn_t;

#define XMIG_INVALID_FRAME (~(xmig_pfn_t)0)

/* ------------------------------------------------------------------ */
/* Logging: the caller decides where messages go. */

enum xmig_log_level {
    XMIG_LOG_ERROR,
    XMIG_LOG_WARN,
    XMIG_LOG_INFO,
    XMIG_LOG_DEBUG,
};

typedef void xmig_log_fn(void *arg, enum xmig_log_level level, const char *msg);

/* ------------------------------------------------------------------ */
/* The Xen handle.  Everything that talks to Xen goes through it. */

typedef struct xmig_xen xmig_xen;

/* Kernel capabilities probed once at open. */
#define XMIG_CAP_ZAP (1u << 0) /* privcmd batched unmap (kernel-patch/) */

/*
 * Open the real Xen backend (libxenctrl, libxenforeignmemory, privcmd).
 * On failure *err_r (if not NULL) receives a malloc'd one-line reason that
 * the caller frees; errno is set.  A handle serves one thread, one job, at
 * a time: its error text, cancel token and hypercall buffers are its own.
 * xmigd opens one per job.
 */
xmig_xen *xmig_xen_open(xmig_log_fn *log, void *log_arg, char **err_r);
/* NULL-safe. */
void xmig_xen_close(xmig_xen *x);
const char *xmig_xen_error(const xmig_xen *x);
unsigned int xmig_xen_caps(const xmig_xen *x);

enum xmig_domtype {
    XMIG_DOM_PV,
    XMIG_DOM_PVH,
    XMIG_DOM_HVM,
};

struct xmig_dominfo {
    uint32_t domid;
    enum xmig_domtype type;
    bool paused;
    bool shutdown;
    bool suspended; /* shut down for a suspend: resume brings it back */
    bool dying;
    unsigned int guest_width; /* bytes per guest word (PV: 4 or 8) */
    uint64_t nr_pages;        /* populated pages, as Xen counts them */
    uint64_t max_pages;       /* the most it may have (xl's maxmem) */
    uint64_t nr_shared;       /* its gfns backed by pages shared with other
                                 domains (mem_sharing), in neither count */
    xmig_pfn_t max_gpfn;      /* highest gfn (HVM/PVH) */
    xmig_pfn_t shared_info_frame;
    unsigned int max_vcpu_id;
    char name[64];
    uint8_t uuid[16]; /* all zero if the backend does not know it */
};

const char *xmig_domtype_name(enum xmig_domtype t);

/* Resolve a domain given by name or by numeric id. */
int xmig_domain_find(xmig_xen *x, const char *spec, uint32_t *domid_r);
int xmig_domain_info(xmig_xen *x, uint32_t domid, struct xmig_dominfo *info_r);
/* Every domain but dom0, in id order; *list_r is malloc'd, caller frees. */
int xmig_domain_list(xmig_xen *x, struct xmig_dominfo **list_r, size_t *n_r);

/* ------------------------------------------------------------------ */
/*
 * The populated frames of a domain: pfn, the frame Xen maps it by (MFN for
 * PV through the guest's p2m, GFN for PVH/HVM) and its page type.  Holes,
 * ballooned pfns and frames Xen reports as XTAB/BROKEN never appear here:
 * mapping one would fail and cost a hypercall per page.
 */
struct xmig_frames {
    size_t n;
    xmig_pfn_t *pfn;
    xmig_pfn_t *frame;
    uint32_t *type;
    size_t nr_scanned; /* pfns looked at */
    size_t nr_holes;   /* pfns skipped */
};

void xmig_frames_init(struct xmig_frames *f);
int xmig_frames_scan(xmig_xen *x, const struct xmig_dominfo *info,
                     struct xmig_frames *f);
/* NULL-safe, idempotent. */
void xmig_frames_dispose(struct xmig_frames *f);

/* ------------------------------------------------------------------ */
/*
 * The mapping arena owns every foreign mapping.  A caller maps a batch of
 * frames into a window, reads the pages through xmig_window_page(), and
 * releases the window.  What release costs depends on the strategy.
 */

enum xmig_strategy {
    XMIG_STRATEGY_PER_BATCH, /* map, use, unmap every batch: stock libxc */
    XMIG_STRATEGY_ARENA,     /* slots in a reserved region, bulk reclaim */
    XMIG_STRATEGY_KERNEL,    /* windows kept, PTEs cleared by privcmd zap */
    XMIG_STRATEGY_EXIT,      /* a worker process maps (and, in a job,
                                writes the pages); its exit unmaps them */
    XMIG_STRATEGY__COUNT,
};

const char *xmig_strategy_name(enum xmig_strategy s);
int xmig_strategy_parse(const char *name, enum xmig_strategy *s_r);

struct xmig_arena_params {
    enum xmig_strategy strategy;
    unsigned int batch;   /* max pages per window, <= XMIG_MAX_BATCH */
    unsigned int slots;   /* windows in the region (arena, kernel, exit) */
    unsigned int reclaim; /* released windows reclaimed together */
    bool background;      /* reclaim on a thread of its own */
};

void xmig_arena_params_default(struct xmig_arena_params *p);

struct xmig_arena_stats {
    uint64_t frames_mapped;
    uint64_t map_calls;
    uint64_t unmap_calls;
    uint64_t map_ns;
    uint64_t unmap_ns;
    uint64_t windows;
    uint64_t requests; /* exit: requests a mapping worker answered */
};

typedef struct xmig_arena xmig_arena;
typedef struct xmig_window xmig_window;

/*
 * The strategy in effect may differ from the one asked for: 'kernel' falls
 * back to 'arena' when the running kernel lacks the batched unmap.
 */
xmig_arena *xmig_arena_open(xmig_xen *x, uint32_t domid,
                            const struct xmig_arena_params *p);
enum xmig_strategy xmig_arena_strategy(const xmig_arena *a);

/*
 * Map n frames (n <= batch) read-only.  err[] (n entries, may be NULL)
 * receives each frame's error (0 or a positive errno).  If any frame fails
 * the call fails with errno set, nothing of the batch stays mapped, and
 * err[] says which frames failed.
 */
xmig_window *xmig_arena_map(xmig_arena *a, const xmig_pfn_t *frames,
                            unsigned int n, int *err);
const void *xmig_window_page(const xmig_window *w, unsigned int i);
unsigned int xmig_window_count(const xmig_window *w);
/* Hand the window back; its pages must not be touched afterwards. */
void xmig_arena_release(xmig_arena *a, xmig_window *w);
/* Reclaim everything released so far and wait for the background thread. */
int xmig_arena_drain(xmig_arena *a);
void xmig_arena_get_stats(const xmig_arena *a, struct xmig_arena_stats *s);
/*
 * Drains, then frees.  Windows still held by the caller are unmapped too.
 * NULL-safe.  Returns -1 if a reclaim failed at any point.
 */
int xmig_arena_close(xmig_arena *a);
/*
 * After mapping (or reading) the domain `before' describes failed with
 * errnum: whether the domain is gone or on its way out, so that the
 * failure can be reported as that.  May wait up to 2 s for Xen to say so.
 * The handle's error message is left as it was.
 */
bool xmig_domain_vanished(xmig_xen *x, const struct xmig_dominfo *before,
                          int errnum);

/* ------------------------------------------------------------------ */
/* Hypervisor software counters (Xen built with CONFIG_PERF_COUNTERS). */

#define XMIG_PERFC_PTWR "writable pt emulations"
#define XMIG_PERFC_MMU_UPDATE "calls to mmu_update"
#define XMIG_PERFC_HYPERCALLS "hypercalls" /* every domain's, all kinds */

/* -1 with errno ENOSYS when the hypervisor has no counters. */
int xmig_perfc_reset(xmig_xen *x);
int xmig_perfc_read(xmig_xen *x, const char *name, uint64_t *val_r);

/*
 * What work costs, as the hypervisor accounts it rather than as dom0
 * sees itself: a PV dom0's kernel cannot see the time Xen spends
 * emulating its trapped page-table writes, Xen charges it to dom0's
 * vcpus.  Whole-host figures, not one job's: dom0's CPU time includes
 * everything dom0 does meanwhile (other jobs, daemons, the network), and
 * the counters count every domain's traps and hypercalls.  -1: unknown
 * (the counters need a Xen built with CONFIG_PERF_COUNTERS).
 */
struct xmig_cost {
    int64_t dom0_cpu_ns; /* dom0's CPU time, all its vcpus */
    int64_t traps;       /* XMIG_PERFC_PTWR: trapped PTE writes emulated */
    int64_t hypercalls;  /* XMIG_PERFC_HYPERCALLS */
};

/* The counters now.  Never fails: what cannot be read is -1. */
void xmig_cost_read(xmig_xen *x, struct xmig_cost *now);
/*
 * What was spent from before to after, field by field: -1 where either
 * is unknown or the counter went back (someone reset it meanwhile).
 */
void xmig_cost_diff(const struct xmig_cost *before,
                    const struct xmig_cost *after, struct xmig_cost *spent);
/*
 * v (ns or a count) per GiB of bytes, or per page of pages: a negative
 * number when v is unknown or there is nothing to divide by.
 */
double xmig_cost_per_gib(int64_t v, uint64_t bytes);
double xmig_cost_per_page(int64_t v, uint64_t pages);

/* ------------------------------------------------------------------ */
/*
 * Jobs: send one domain to a stock receiver (migrate) or a file (save).
 * A failed job leaves the guest running on the source, unpaused, with
 * log-dirty off and nothing mapped.
 */

enum xmig_job_kind {
    XMIG_JOB_MIGRATE,
    XMIG_JOB_SAVE,
};

enum xmig_engine {
    XMIG_ENGINE_LIBXC, /* libxenguest's xc_domain_save: the reference */
    XMIG_ENGINE_XMIG,  /* ours: all page I/O through the mapping arena */
};

/* What xmig's own engine did (zero for the libxc engine). */
struct xmig_engine_stats {
    uint64_t pages;    /* PAGE_DATA entries with data */
    uint64_t bytes;    /* stream bytes written */
    uint64_t reused;   /* pages read through a mapping kept from a pass */
    uint64_t deferred; /* PV page tables sent again after suspend */
    uint64_t skipped;  /* left to a later pass: dirtied again meanwhile */
    uint64_t unswept;  /* PVH/HVM: gfns never asked about, shown to hold
                          no page (engine.c, sweep_ends) */
    uint64_t types_ns; /* asking Xen for page types */
    uint64_t write_ns; /* writing the stream (the sink's pace included) */
    /*
     * Hypercall buffers of more than a page that xmig allocated itself:
     * each is an mmap and a munmap that traps in a PV dom0.  A few per
     * job, however many batches and passes.
     */
    uint64_t hcall_buffers;
    struct xmig_arena_stats arena; /* both arenas added up */
    enum xmig_strategy strategy;   /* what the arena used: `kernel' asked
                                      for on a stock kernel gives `arena' */
};

struct xmig_policy {
    unsigned int max_iters;   /* live passes before stop-and-copy */
    long target_dirty;        /* stop once a pass leaves fewer dirty pages */
    bool abort_if_busy;       /* at max_iters give up instead of stopping */
    unsigned int downtime_ms; /* stop once the rest fits in this, 0: off */
    bool skip_redirtied;      /* xmig engine: a live pass leaves out pages
                                 dirtied again since it began (default) */
};

void xmig_policy_default(struct xmig_policy *p);

enum xmig_event_type {
    XMIG_EV_PHASE, /* connect, stream, suspend, handshake, resume, done,
                      cancelled, failed */
    XMIG_EV_PASS,  /* a pre-copy pass finished */
    XMIG_EV_PROGRESS,
};

struct xmig_event {
    enum xmig_event_type type;
    const char *phase;
    unsigned int pass;  /* 0 = the first full pass */
    uint64_t sent;      /* pages sent in this pass so far (or in total) */
    uint64_t remaining; /* pages left in this pass, as far as known */
    long dirty;         /* dirty pages found after the pass, -1 unknown */
    double mib_s;       /* this pass's throughput */
    double dirty_rate;  /* dirty pages per second during the pass */
    double elapsed_s;   /* since the job started */
};

typedef void xmig_event_fn(void *arg, const struct xmig_event *ev);

/*
 * A cancel token, shared between a job and whoever may stop it (another
 * thread).  A cancelled job stops at the next point where it can, and
 * leaves the guest running on the source; after the go-ahead has been sent
 * to the receiver the guest is the receiver's and cancel has no effect.
 */
typedef struct xmig_cancel xmig_cancel;
xmig_cancel *xmig_cancel_new(void);
void xmig_cancel_free(xmig_cancel *c); /* NULL-safe; not while a job runs */
/*
 * Breaks the job's connection: an ssh or exec: receiver's whole process
 * group gets SIGTERM, and SIGKILL if it outlives a grace period.  Takes a
 * lock: not async-signal-safe (a signal wants a thread in sigwait()).
 */
void xmig_cancel_request(xmig_cancel *c);
bool xmig_cancel_requested(const xmig_cancel *c);

struct xmig_job_params {
    enum xmig_job_kind kind;
    const char *domain;      /* name or id */
    const char *dest;        /* migrate: ssh://, exec:, tcp://; save: path */
    const char *ssh_command; /* replaces "ssh" for ssh:// (may hold options) */
    bool live;
    bool keep; /* save: resume the guest instead of destroying */
    enum xmig_engine engine;
    struct xmig_arena_params arena; /* own engine only */
    struct xmig_policy policy;
    xmig_event_fn *event;
    void *event_arg;
    xmig_cancel *cancel; /* may be NULL */
    /*
     * Where the job keeps its crash journal (see xmig_recover()); NULL:
     * none.  A job refuses to start on a domain whose journal a dead job
     * left there.
     */
    const char *journal_dir;
    /*
     * How long a receiver gets to exit after the stream ended early (it
     * destroys its copy first) before it is killed; 0: 30 s.
     */
    unsigned int receiver_grace_ms;
    /*
     * migrate: how long the receiver may take to say 'ready' after the
     * stream, in seconds (1..XMIG_READY_TIMEOUT_MAX; 0: the default).  The
     * guest is suspended meanwhile; the go-ahead has not been sent, so on
     * timeout it is resumed here.
     */
    unsigned int ready_timeout_s;
};

#define XMIG_READY_TIMEOUT_DEFAULT 600
#define XMIG_READY_TIMEOUT_MAX 86400

/* Where the guest is after a job. */
enum xmig_guest {
    XMIG_GUEST_SOURCE,      /* here (resumed after a failure) */
    XMIG_GUEST_DESTINATION, /* the receiver runs it; ours is destroyed */
    /*
     * The receiver got the go-ahead and then gave no verdict, or reported
     * a failure without granting permission to resume: it may run the
     * guest.  Ours stays suspended under away_name, as xl 4.17 leaves it;
     * only an admin who has checked both hosts may resume one of them.
     */
    XMIG_GUEST_UNKNOWN,
    /*
     * Its domain ended here while the job ran (it crashed, shut down or
     * was destroyed by someone else) and no receiver took it over: the
     * guest runs nowhere.
     */
    XMIG_GUEST_GONE,
};

/* "source", "destination", "unknown", "gone" */
const char *xmig_guest_where(enum xmig_guest g);

struct xmig_job_result {
    uint32_t domid;
    unsigned int passes;
    uint64_t pages_sent;
    double total_s;
    double downtime_s; /* guest suspended until it ran again (or end) */
    enum xmig_guest guest;
    /*
     * The source domain's name when it is not the guest's own any more
     * (NAME--migratedaway: state unknown, or a rename back that failed);
     * empty otherwise.
     */
    char away_name[80];
    struct xmig_engine_stats engine;
    /*
     * From the start of the stream until it and every mapping made for it
     * are gone: for a migration of a PV guest whose mappings are kept
     * across passes, that is when the receiver reports, as they are
     * unmapped while it restores.  Both engines.
     */
    struct xmig_cost cost;
};

void xmig_job_params_default(struct xmig_job_params *p);
/*
 * Runs the job in the calling thread.  0 on success; -1 with errno and
 * xmig_xen_error() otherwise.  SIGPIPE is blocked in the calling thread
 * while the job runs, so a vanished receiver is an error, not a signal.
 */
int xmig_job_run(xmig_xen *x, const struct xmig_job_params *p,
                 struct xmig_job_result *r);

/* ------------------------------------------------------------------ */
/*
 * Crash recovery.  A job with a journal_dir writes down, at each step
 * that changes the guest, what it has done: a file per domain, replaced
 * atomically, and a lock that the job holds for its whole life.  When the
 * process dies (SIGKILL, a crash), the kernel drops the lock, and
 * xmig_recover() finds what the job left (the guest renamed, suspended,
 * in log-dirty mode, a partial save file) and puts the guest back on this
 * host, unless the receiver may have taken it over.
 */

/* xmigd's and `xmig --direct`'s journal (beside xmigd's socket). */
#define XMIG_JOURNAL_DIR "/run/xmig/journal"

enum xmig_recover_state {
    XMIG_RECOVER_RESTORED, /* the guest runs here again, as it was */
    XMIG_RECOVER_MIGRATED, /* the receiver took it: our copy is gone */
    XMIG_RECOVER_SAVED,    /* the save had finished: done as the job would */
    XMIG_RECOVER_GONE,     /* the domain no longer exists here */
    XMIG_RECOVER_RESOLVED, /* someone else settled it: left alone */
    XMIG_RECOVER_UNKNOWN,  /* the receiver may run it: ours is left
                              suspended under the away name; check both
                              hosts.  Reported again on every recovery
                              until our copy is destroyed or renamed. */
    XMIG_RECOVER_BUSY,     /* a live job holds it: left alone */
    XMIG_RECOVER_FAILED,   /* recovery could not finish: journal kept */
};

const char *xmig_recover_state_name(enum xmig_recover_state s);

/* One domain's outcome.  The strings live until the callback returns. */
struct xmig_recover_report {
    enum xmig_recover_state state;
    enum xmig_job_kind kind;
    uint32_t domid;
    const char *name;      /* the guest's own name */
    const char *away_name; /* its name on the source while it migrated */
    const char *dest;      /* where the job sent it */
    const char *phase;     /* the job's last phase */
    const char *found;     /* what the job left, e.g. "suspended, renamed" */
    const char *done;      /* what recovery did about it */
    const char *message;   /* one line of all of it, for people */
};

typedef void xmig_recover_fn(void *arg, const struct xmig_recover_report *rep);

/*
 * Looks at every journal in dir whose job is dead, acts, and calls report
 * once per journal (live jobs' too, as BUSY).  A missing dir holds
 * nothing.  Returns how many guests are left in the UNKNOWN state, or -1
 * with errno and xmig_xen_error() if dir cannot be read.
 */
int xmig_recover(xmig_xen *x, const char *dir, xmig_recover_fn *report,
                 void *arg);

/* Monotonic clock in nanoseconds. */
uint64_t xmig_now_ns(void);

#endif /* XMIG_H */

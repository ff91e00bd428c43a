/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libxmig internals: the handle and the ops table that every Xen access
 * goes through.  The real table is in xen.c; unit tests supply a double.
 */
#ifndef XMIG_PRIVATE_H
#define XMIG_PRIVATE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "xmig.h"

/* What the libxc engine calls back into while it runs. */
struct xmig_buf;

struct xmig__save_hooks {
    /* 0 once the guest has suspended, -1 if it did not. */
    int (*suspend)(void *arg);
    /* Returns XMIG_POLICY_*; dirty_count is -1 when not known. */
    int (*policy)(void *arg, unsigned int iteration,
                  unsigned long total_written, long dirty_count);
    /* Pages done out of total in the current pass; may be NULL. */
    void (*progress)(void *arg, unsigned long done, unsigned long total);
    void *arg;
    bool skip_redirtied; /* see struct xmig_policy */
    /* An HVM guest: QEMU in dom0 logs its own writes while the stream
       runs (ops->dm_logdirty), as libxenguest has libxl do. */
    bool dm;
    xmig_xen *x; /* for dm */
};

#define XMIG_POLICY_ABORT (-1)
#define XMIG_POLICY_CONTINUE 0
#define XMIG_POLICY_STOP_AND_COPY 1

/*
 * One instance per backend.  Every member is implemented.  Per-frame errors
 * go into err[] as positive errno values; calls return -1 with errno set
 * when the call as a whole fails.
 */
struct xmig_xen_ops {
    const char *name;
    /* Free the backend's state (x->priv), not x itself. */
    void (*close)(xmig_xen *x);
    /* The ids of every domain but 0; malloc'd, the caller frees. */
    int (*domain_ids)(xmig_xen *x, uint32_t **ids_r, size_t *n_r);
    /* Look a domain up by name. */
    int (*domain_by_name)(xmig_xen *x, const char *name, uint32_t *domid_r);
    int (*domain_info)(xmig_xen *x, uint32_t domid,
                       struct xmig_dominfo *info_r);
    /*
     * XEN_DOMCTL_getpageframeinfo3: frames[] in (MFNs for PV, GFNs
     * otherwise), the same frames with XEN_DOMCTL_PFINFO_* type bits out.
     * n <= XMIG_MAX_BATCH.
     */
    int (*page_types)(xmig_xen *x, uint32_t domid, unsigned int n,
                      xmig_pfn_t *frames);
    /* A fresh read-only mapping anywhere, as xenforeignmemory_map does. */
    void *(*map)(xmig_xen *x, uint32_t domid, unsigned int n,
                 const xmig_pfn_t *frames, int *err);
    int (*unmap)(xmig_xen *x, void *addr, unsigned int n);
    /*
     * Map read-only at addr.  refill == false: addr is reserved address
     * space (PROT_NONE) that becomes a new privcmd mapping of exactly n
     * pages.  refill == true: addr lies in a privcmd mapping whose range
     * was cleared by zap; the holes are filled again.  On failure the range
     * may be partly mapped: the caller reclaims or zaps it.
     */
    int (*map_at)(xmig_xen *x, uint32_t domid, void *addr, unsigned int n,
                  const xmig_pfn_t *frames, int *err, bool refill);
    /* Drop every mapping in [addr, +n pages) and reserve it again. */
    int (*reclaim)(xmig_xen *x, void *addr, unsigned int n);
    /* The kernel's batched unmap: clear the PTEs, keep the mapping. */
    int (*zap)(xmig_xen *x, void *addr, unsigned int n);
    /*
     * The descriptors map_at uses, into fds (at most max); how many.  A
     * forked worker that maps for itself keeps these and closes the rest.
     */
    unsigned int (*mapper_fds)(xmig_xen *x, int *fds, unsigned int max);
    int (*perfc_reset)(xmig_xen *x);
    /*
     * n counters by name, each summed over its CPUs and array entries, in
     * one query: a query's buffers are mmapped and munmapped, which traps
     * in a PV dom0.  ENOSYS: no counters; ENOENT: a name is not there.
     */
    int (*perfc_read)(xmig_xen *x, unsigned int n, const char *const *names,
                      uint64_t *vals);
    /* CPU time the hypervisor accounts to a domain, all its vcpus, in ns. */
    int (*cpu_ns)(xmig_xen *x, uint32_t domid, uint64_t *ns_r);
    /*
     * Memory that hypercalls may read and write, pages long (libxencall's
     * buffers); only through xmig__hbuf(), which keeps it per handle.
     */
    void *(*hbuf_alloc)(xmig_xen *x, size_t pages);
    void (*hbuf_free)(xmig_xen *x, void *p, size_t pages);

    /* --- toolstack operations, as xl does them (libxl) --- */
    /* The domain's configuration as xl's JSON; the caller frees it. */
    int (*config_json)(xmig_xen *x, uint32_t domid, char **json_r);
    int (*rename)(xmig_xen *x, uint32_t domid, const char *old_name,
                  const char *new_name);
    int (*destroy)(xmig_xen *x, uint32_t domid);
    /* Ask the guest to suspend and wait until it has (or time out). */
    int (*suspend)(xmig_xen *x, uint32_t domid);
    /* Undo a suspend: the guest sees its suspend hypercall cancelled. */
    int (*resume)(xmig_xen *x, uint32_t domid);
    int (*unpause)(xmig_xen *x, uint32_t domid);
    /* libxenguest's engine: the libxc stream v3 onto fd. */
    int (*libxc_save)(xmig_xen *x, uint32_t domid, int fd, bool live,
                      const struct xmig__save_hooks *hooks);

    /* --- an HVM guest's device model (xen-dm.c) --- */
    /* 0 if xmig can save it: QEMU upstream, in dom0. */
    int (*dm_check)(xmig_xen *x, uint32_t domid);
    /* Whether QEMU reports its own writes to guest memory to the log. */
    int (*dm_logdirty)(xmig_xen *x, uint32_t domid, bool enable);
    /*
     * Once suspended: the EMULATOR_XENSTORE_DATA body appended to xs (may
     * stay empty), and the device state QEMU saved (malloc'd).  The saved
     * state's file is gone afterwards, as after dm_discard.
     */
    int (*dm_state)(xmig_xen *x, uint32_t domid, struct xmig_buf *xs,
                    void **state_r, size_t *len_r);
    /* The saved state of a suspend that was undone. */
    void (*dm_discard)(xmig_xen *x, uint32_t domid);
    /*
     * Once suspended, for a migration: QEMU saves its state again as for
     * one ("live"), and so lets go of its disk images for the receiver.
     */
    int (*dm_release)(xmig_xen *x, uint32_t domid);

    /*
     * --- what xmig's own engine reads; blobs are malloc'd, caller frees ---
     */
    int (*xen_version)(xmig_xen *x, uint32_t *major_r, uint32_t *minor_r);
    /* CPUID leaves (24 bytes each) and MSRs (16 bytes each). */
    int (*cpu_policy)(xmig_xen *x, uint32_t domid, void **leaves_r,
                      uint32_t *nr_leaves_r, void **msrs_r,
                      uint32_t *nr_msrs_r);
    int (*logdirty_enable)(xmig_xen *x, uint32_t domid);
    int (*logdirty_off)(xmig_xen *x, uint32_t domid);
    /*
     * CLEAN: the dirty bitmap of nr pfns into bitmap (caller's memory,
     * (nr + 63) / 64 words) and clear it in Xen.
     */
    int (*logdirty_clean)(xmig_xen *x, uint32_t domid, uint64_t *bitmap,
                          size_t nr, bool final, uint64_t *dirty_r);
    /* PEEK: the same bitmap, left as it is in Xen. */
    int (*logdirty_peek)(xmig_xen *x, uint32_t domid, uint64_t *bitmap,
                         size_t nr);
    /* 24 bytes: the X86_TSC_INFO record body. */
    int (*tsc_info)(xmig_xen *x, uint32_t domid, void *rec24);
    int (*vcpu_online)(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                       bool *online_r);
    /* PV: the 64-bit vcpu_guest_context (5168 bytes). */
    int (*pv_vcpu_context)(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                           void *ctx, size_t len);
    /* PV: extended, xsave, msr blobs; *len_r = 0 when there is none. */
    int (*pv_vcpu_blob)(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                        unsigned int rec_type, void **blob_r, size_t *len_r);
    int (*hvm_context)(xmig_xen *x, uint32_t domid, void **blob_r,
                       size_t *len_r);
    int (*hvm_param)(xmig_xen *x, uint32_t domid, unsigned int index,
                     uint64_t *val_r);
    /* PV: the machine-to-phys table, read-only; m2p_unmap undoes it. */
    int (*m2p_map)(xmig_xen *x, const uint64_t **m2p_r, uint64_t *nr_r);
    void (*m2p_unmap)(xmig_xen *x, const uint64_t *m2p, uint64_t nr);
};

/*
 * Hypercall buffers that calls made per batch or per pass need.  libxencall
 * (Xen 4.17) keeps freed 1-page buffers for reuse, but maps a larger one
 * afresh for each call and unmaps it after: in a PV dom0 that munmap costs
 * a trapped page-table write per page.  So these belong to the handle:
 * allocated on first use, grown when a call needs more, never shrunk, freed
 * by xmig_xen_close().
 */
enum xmig__hbuf_use {
    XMIG__HBUF_TYPES, /* getpageframeinfo3: XMIG_MAX_BATCH frames */
    XMIG__HBUF_DIRTY, /* the log-dirty bitmap */
    XMIG__HBUF_N,
};

struct xmig__hbuf {
    void *p;
    size_t pages;
};

#define XMIG__ERR_LEN 512

struct xmig_xen {
    const struct xmig_xen_ops *ops;
    xmig_cancel *cancel; /* of the job running on this handle, if any */
    void *priv;
    xmig_log_fn *log;
    void *log_arg;
    unsigned int caps;
    /* Like err and cancel, for the one thread that uses the handle. */
    struct xmig__hbuf hbuf[XMIG__HBUF_N];
    uint64_t hcall_buffers; /* of more than a page, allocated so far */
    char err[XMIG__ERR_LEN];
};

/*
 * A job's first error outlives the clean-up and checks that follow it:
 * they may fail on their own account, and say so in the log.
 */
struct xmig__errkeep {
    char err[XMIG__ERR_LEN];
    int errnum;
};
void xmig__err_keep(const xmig_xen *x, struct xmig__errkeep *k);
/* The kept message and errno, whatever failed since. */
void xmig__err_back(xmig_xen *x, const struct xmig__errkeep *k);
/* The same, but a newer message stays if none was kept: the only news. */
void xmig__err_first(xmig_xen *x, const struct xmig__errkeep *k);

/* xen.c core helpers (core.c) */
xmig_xen *xmig__xen_new(const struct xmig_xen_ops *ops, void *priv,
                        xmig_log_fn *log, void *log_arg);
void xmig__seterr(xmig_xen *x, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *xmig__write_strerror(int errnum);
void *xmig__nofork_alloc(size_t len);
void xmig__nofork_free(void *p);
void xmig__log(xmig_xen *x, enum xmig_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * The handle's hypercall buffer for use, at least bytes long (page types:
 * a full batch); its contents are undefined.  NULL with errno and the
 * error set.
 */
void *xmig__hbuf(xmig_xen *x, enum xmig__hbuf_use use, size_t bytes);
/* Count a hypercall buffer of pages made elsewhere (a call's own). */
void xmig__hbuf_count(xmig_xen *x, size_t pages);

/* transport.c: where the stream goes, and where answers come from. */
struct xmig__transport {
    int wfd;      /* the stream (a socket) */
    int rfd;      /* the receiver's answers (-1 for a file) */
    pid_t pid;    /* ssh or exec child, or -1; leads its process group */
    int grace_ms; /* for the receiver to go after EOF; 0: EOF_GRACE */
};
int xmig__transport_open(xmig_xen *x, const char *dest, const char *ssh_cmd,
                         struct xmig__transport *t);
/*
 * Ends the stream (EOF) and reaps the child after its whole process group
 * has gone, reading its answers meanwhile: grace_ms to leave on its own
 * (xl destroys its copy first), then SIGTERM, KILL_GRACE, SIGKILL.  tcp:
 * EOF, then its answers until it closes, for grace_ms at most.
 */
void xmig__transport_close(struct xmig__transport *t);
#define XMIG__EOF_GRACE_MS 30000
#define XMIG__KILL_GRACE_MS 2000
/* sig to the child's process group (and SIGCONT, unless SIGKILL). */
void xmig__transport_kill(const struct xmig__transport *t, int sig);

/* savefile.c: where a save goes (see there). */
struct xmig__savefile {
    int fd;
    const char *path; /* as given */
    char *tmp;        /* beside path, until it takes path's place */
    bool sink;        /* an existing FIFO or device, written in place */
    bool copies;      /* its filesystem copies what it is given (tmpfs,
                         ext4, xfs, btrfs; a pipe or a device) */
    bool tmpfs;
    /* The reserving thread, while reserving is set (savefile.c). */
    pthread_t reserver;
    bool reserving;
    atomic_bool reserve_stop;
    atomic_llong reserved; /* bytes from 0 that it allocated */
    long long reserve_len;
};
int xmig__save_open(xmig_xen *x, const char *path, struct xmig__savefile *f);
/*
 * Allocates about bytes for the image on another thread while the job
 * goes on; tmpfs only, a hint that can fail.  save_commit gives back
 * what the image did not use.
 */
void xmig__save_reserve(struct xmig__savefile *f, uint64_t bytes);
/* On disk, then in place of path; a failure leaves path as it was. */
int xmig__save_commit(xmig_xen *x, struct xmig__savefile *f);
/* Closes; removes the temporary file unless it was committed. */
void xmig__save_close(struct xmig__savefile *f);

/* cancel.c */
bool xmig__cancelled(xmig_xen *x);
/* While registered, a cancel breaks the transport so blocked I/O ends. */
void xmig__cancel_attach(xmig_cancel *c, struct xmig__transport *t);
void xmig__cancel_detach(xmig_cancel *c);

/* fdio.c: the receiver's pipes, with deadlines. */
int xmig__read_exact(xmig_xen *x, int fd, void *buf, size_t len, int timeout_ms,
                     const char *what);
int xmig__expect(xmig_xen *x, int fd, const char *msg, size_t len,
                 int timeout_ms, const char *what);
int xmig__write_all(xmig_xen *x, int fd, const void *buf, size_t len,
                    const char *what);

/*
 * engine.c: xmig's own engine, writing the libxc stream v3 onto fd.
 *
 * On success *tail_r may hold the PV mappings kept across passes, being
 * unmapped in the background (or, strategy exit, the worker that holds
 * the job's mappings, exiting): a stock PV dom0 traps once per page for
 * an unmap, and the receiver's restore is a better time for it than the
 * downtime.  xmig__engine_tail_close() waits for it and adds its
 * counters to st; call it on every path once the stream is done.
 */
struct xmig__tail;
int xmig__engine_save(xmig_xen *x, const struct xmig_dominfo *info, int fd,
                      bool live, const struct xmig_arena_params *ap,
                      const struct xmig__save_hooks *hooks,
                      struct xmig_engine_stats *st, struct xmig__tail **tail_r);
int xmig__engine_tail_close(struct xmig__tail *tail,
                            struct xmig_engine_stats *st);

/* p2m.c: the PV guest's pfn -> mfn table, copied out of the guest. */
/*
 * leaves_r (may be NULL) receives the mfns of the frames holding the p2m,
 * (nr + 511) / 512 of them; generation_r (may be NULL) the linear list's
 * p2m_generation (0 for the tree).
 */
int xmig__p2m_read(xmig_xen *x, const struct xmig_dominfo *info,
                   xmig_pfn_t **p2m_r, size_t *nr_r, xmig_pfn_t **leaves_r,
                   uint64_t *generation_r);

/*
 * journal.c: a job's crash journal (see xmig_recover()).  Every call is
 * NULL-safe: a job without journal_dir has jn == NULL throughout.
 *
 * open: takes the domain's lock and writes the journal (kind, domid, name,
 * away name, uuid, dest, keep); fails if another live job holds the lock
 * or a dead job's journal is still there.  *jn_r is NULL when
 * p->journal_dir is.
 *
 * set: records key=value and rewrites the journal atomically.  Keys that
 * recovery reads: phase, go_sent=1 (written BEFORE the go-ahead: a failure
 * to write it must stop the job from sending it), report=ok|failed,
 * permission=1 (the receiver allowed us to resume after a failed report),
 * tmp=PATH (save: the temporary file; recovery removes it if it is a
 * regular file), saved=1 (save: the image is complete, in place),
 * paused_by_job=1.  Values may hold any byte but NUL.
 *
 * close: remove == true when the job leaves nothing to recover (it ended
 * with the guest in a known place); false keeps the journal for
 * xmig_recover().  Releases the lock either way.
 */
struct xmig__journal;
int xmig__journal_open(xmig_xen *x, const struct xmig_job_params *p,
                       const struct xmig_dominfo *info,
                       struct xmig__journal **jn_r);
int xmig__journal_set(struct xmig__journal *jn, const char *key,
                      const char *value);
void xmig__journal_close(struct xmig__journal *jn, bool remove);

/* arena.c: how many windows the arena has room for. */
unsigned int xmig__arena_slots(const xmig_arena *a);

/*
 * arena.c: for worker processes that map for themselves (strategy exit).
 *
 * Memory shared with workers, from a pool that outlives its users (see
 * arena.c): NULL (errno set) or len bytes of MAP_SHARED memory.
 */
void *xmig__exit_region_get(size_t len);
int xmig__exit_region_put(void *p, size_t len);
/*
 * In a freshly forked worker: die with the thread that forked it, default
 * signal dispositions but SIGPIPE ignored, nothing blocked, and every
 * descriptor closed but 0-2, keep[] and those map_at needs.  -1 if the
 * parent has gone already.  Async-signal-safe.
 */
int xmig__worker_init(xmig_xen *x, pid_t parent, const int *keep,
                      unsigned int nkeep);
/*
 * Forks a worker that runs fn(arg, its end of a socketpair, our pid) and
 * must not return; 0 with *pid_r and *sock_r (our end), or -1 with the
 * error set.
 */
int xmig__worker_reap(pid_t pid, char *why, size_t len);
int xmig__worker_wait(pid_t pid, int sock, char *c_r);
int xmig__worker_spawn(xmig_xen *x,
                       void (*fn)(void *arg, int sock, pid_t parent), void *arg,
                       pid_t *pid_r, int *sock_r);

#endif /* XMIG_PRIVATE_H */

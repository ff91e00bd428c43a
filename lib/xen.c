/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The real backend: the only file that calls libxenctrl,
 * libxenforeignmemory, libxenstore and privcmd.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xen/sys/privcmd.h>

#include "private.h"
#include "../kernel-patch/uapi/privcmd-xmig.h"
#include "xen-priv.h"

_Static_assert(sizeof(xen_pfn_t) == sizeof(xmig_pfn_t), "xen_pfn_t size");
/*
 * Page types, log-dirty and a PV vcpu's extra state are domctls we build
 * ourselves (xen.c, xen-engine.c), in the layout of these headers;
 * xc_domctl() stamps them with libxenctrl's interface version (its soname
 * is per release), and Xen refuses any other, at run time, in the middle
 * of a migration.  4.17 speaks 0x15, 4.20 0x17, and the structures used
 * (getpageframeinfo3, shadow_op, ext_vcpucontext, vcpuextstate, vcpu_msrs)
 * are the same in both: check them before adding a version.
 */
_Static_assert(XEN_DOMCTL_INTERFACE_VERSION == 0x15 ||
                   XEN_DOMCTL_INTERFACE_VERSION == 0x17,
               "built for the domctl interface of Xen 4.17 or 4.20");

/* What the backend reads of a domain's getdomaininfo. */
struct xen_dominfo {
    uint32_t domid;
    bool hvm;
    bool paused;
    bool shutdown; /* not for a crash, as xc_domain_getinfo() had it */
    bool dying;
    unsigned int shutdown_reason;
    uint32_t emulation_flags;
    uint8_t handle[16];
    uint64_t nr_pages;
    uint64_t max_pages;
    uint64_t shr_pages;
    uint64_t shared_info_frame;
    uint64_t cpu_time;
    unsigned int max_vcpu_id;
};

/*
 * dominfo_list(): the domains from `first` on, at most 64: how many, 0 or
 * -1/ESRCH past the last one.  dominfo_get(): that domain, or -1.
 */
#if HAVE_DECL_XC_DOMAIN_GETINFO_SINGLE
/*
 * Xen 4.18 on: xc_domain_getinfo() is gone and the domctl answers for the
 * domain asked only; the sysctl's list still starts at an id.
 */
static void dominfo_from(struct xen_dominfo *d, const xc_domaininfo_t *i)
{
    d->domid = i->domain;
    d->hvm = i->flags & XEN_DOMINF_hvm_guest;
    d->paused = i->flags & XEN_DOMINF_paused;
    d->dying = i->flags & XEN_DOMINF_dying;
    d->shutdown_reason = dominfo_shutdown_reason(i);
    d->shutdown = (i->flags & XEN_DOMINF_shutdown) &&
                  d->shutdown_reason != SHUTDOWN_crash;
    d->emulation_flags = i->arch_config.emulation_flags;
    memcpy(d->handle, i->handle, sizeof(d->handle));
    d->nr_pages = i->tot_pages;
    d->max_pages = i->max_pages;
    d->shr_pages = i->shr_pages;
    d->shared_info_frame = i->shared_info_frame;
    d->cpu_time = i->cpu_time;
    d->max_vcpu_id = i->max_vcpu_id;
}

static int dominfo_list(xc_interface *xch, uint32_t first,
                        struct xen_dominfo out[64])
{
    xc_domaininfo_t info[64];
    int n, i;

    n = xc_domain_getinfolist(xch, first, 64, info);
    for (i = 0; i < n; i++)
        dominfo_from(&out[i], &info[i]);
    return n;
}

static int dominfo_get(xc_interface *xch, uint32_t domid, struct xen_dominfo *d)
{
    xc_domaininfo_t info;

    if (xc_domain_getinfo_single(xch, domid, &info) < 0)
        return -1;
    dominfo_from(d, &info);
    return 0;
}
#else
static void dominfo_from(struct xen_dominfo *d, const xc_dominfo_t *i)
{
    d->domid = i->domid;
    d->hvm = i->hvm;
    d->paused = i->paused;
    d->dying = i->dying;
    d->shutdown_reason = i->shutdown_reason;
    d->shutdown = i->shutdown;
    d->emulation_flags = i->arch_config.emulation_flags;
    memcpy(d->handle, i->handle, sizeof(d->handle));
    d->nr_pages = i->nr_pages;
    d->max_pages = i->max_memkb / (XMIG_PAGE_SIZE / 1024);
    d->shr_pages = i->nr_shared_pages;
    d->shared_info_frame = i->shared_info_frame;
    d->cpu_time = i->cpu_time;
    d->max_vcpu_id = i->max_vcpu_id;
}

static int dominfo_list(xc_interface *xch, uint32_t first,
                        struct xen_dominfo out[64])
{
    xc_dominfo_t info[64];
    int n, i;

    n = xc_domain_getinfo(xch, first, 64, info);
    for (i = 0; i < n; i++)
        dominfo_from(&out[i], &info[i]);
    return n;
}

/* The domctl answers with the next domain up when this one is gone. */
static int dominfo_get(xc_interface *xch, uint32_t domid, struct xen_dominfo *d)
{
    xc_dominfo_t info;

    if (xc_domain_getinfo(xch, domid, 1, &info) != 1 || info.domid != domid)
        return -1;
    dominfo_from(d, &info);
    return 0;
}
#endif

static void fwd_vmessage(xentoollog_logger *l, xentoollog_level level,
                         int errnoval, const char *context, const char *fmt,
                         va_list al) __attribute__((format(printf, 5, 0)));

static void fwd_vmessage(xentoollog_logger *l, xentoollog_level level,
                         int errnoval, const char *context, const char *fmt,
                         va_list al)
{
    struct xen_logger *xl = (struct xen_logger *)l;
    char msg[400];

    if (!xl->x)
        return;
    vsnprintf(msg, sizeof(msg), fmt, al);
    /* Failures reach the user through our own error; this is detail. */
    xmig__log(xl->x, XMIG_LOG_DEBUG, "%s: %s%s%s", context ? context : "xen",
              msg, errnoval >= 0 ? ": " : "",
              errnoval >= 0 ? strerror(errnoval) : "");
}

static void fwd_progress(xentoollog_logger *l, const char *context,
                         const char *doing_what, int percent,
                         unsigned long done, unsigned long total)
{
    struct xen_logger *xl = (struct xen_logger *)l;

    /* libxenguest reports pages sent within a pass this way. */
    if (xl->progress)
        xl->progress(xl->progress_arg, done, total);
}

static void fwd_destroy(xentoollog_logger *l)
{
}

static void xen_close(xmig_xen *x)
{
    struct xen_priv *p = priv(x);

    if (!p)
        return;
    xmig__libxl_close(p);
    if (p->xsh)
        xs_close(p->xsh);
    if (p->privcmd >= 0)
        close(p->privcmd);
    xenforeignmemory_close(p->fmem);
    xc_interface_close(p->xch);
    free(p);
    x->priv = NULL;
}

static int xen_domain_ids(xmig_xen *x, uint32_t **ids_r, size_t *n_r)
{
    struct xen_priv *p = priv(x);
    struct xen_dominfo info[64];
    uint32_t next = 1, *ids = NULL, *t;
    size_t n = 0, cap = 0;
    int got, i;

    while ((got = dominfo_list(p->xch, next, info)) > 0) {
        for (i = 0; i < got; i++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                t = realloc(ids, cap * sizeof(*ids));
                if (!t) {
                    free(ids);
                    xmig__seterr(x, ENOMEM, "out of memory");
                    return -1;
                }
                ids = t;
            }
            ids[n++] = info[i].domid;
        }
        next = info[got - 1].domid + 1;
    }
    /*
     * The list ends with 0, or -1/ESRCH up to Xen 4.17, when no domain is
     * left at or above `next`: the usual way out of this loop.
     */
    if (got < 0 && errno != ESRCH) {
        free(ids);
        xmig__seterr(x, errno, "listing domains: %s", strerror(errno));
        return -1;
    }
    *ids_r = ids;
    *n_r = n;
    return 0;
}

static int xen_domain_by_name(xmig_xen *x, const char *name, uint32_t *domid_r)
{
    struct xen_priv *p = priv(x);
    struct xen_dominfo info[64];
    uint32_t next = 0;
    int n, i;

    if (!p->xsh)
        p->xsh = xs_open(XS_OPEN_READONLY);
    if (!p->xsh) {
        xmig__seterr(x, errno, "cannot look up domain '%s': xenstore: %s", name,
                     strerror(errno));
        return -1;
    }
    while ((n = dominfo_list(p->xch, next, info)) > 0) {
        for (i = 0; i < n; i++) {
            char path[64], *val;
            unsigned int len;
            bool match;

            snprintf(path, sizeof(path), "/local/domain/%u/name",
                     info[i].domid);
            val = xs_read(p->xsh, XBT_NULL, path, &len);
            match = val && strcmp(val, name) == 0;
            free(val);
            if (match) {
                *domid_r = info[i].domid;
                return 0;
            }
        }
        next = info[n - 1].domid + 1;
    }
    xmig__seterr(x, ESRCH, "domain '%s' not found", name);
    return -1;
}

static int xen_domain_info(xmig_xen *x, uint32_t domid,
                           struct xmig_dominfo *info_r)
{
    struct xen_priv *p = priv(x);
    struct xen_dominfo info;
    unsigned int width = 0;
    xen_pfn_t max_gpfn = 0;

    if (dominfo_get(p->xch, domid, &info) < 0) {
        xmig__seterr(x, ESRCH, "domain %u does not exist", domid);
        return -1;
    }
    info_r->domid = domid;
    if (!info.hvm)
        info_r->type = XMIG_DOM_PV;
    else if ((info.emulation_flags & XEN_X86_EMU_ALL) == XEN_X86_EMU_LAPIC)
        info_r->type = XMIG_DOM_PVH;
    else
        info_r->type = XMIG_DOM_HVM;
    info_r->paused = info.paused;
    info_r->shutdown = info.shutdown;
    info_r->suspended =
        info.shutdown && info.shutdown_reason == SHUTDOWN_suspend;
    memcpy(info_r->uuid, info.handle, sizeof(info_r->uuid));
    info_r->dying = info.dying;
    info_r->nr_pages = info.nr_pages;
    info_r->max_pages = info.max_pages;
    info_r->nr_shared = info.shr_pages;
    info_r->shared_info_frame = info.shared_info_frame;
    info_r->max_vcpu_id = info.max_vcpu_id;
    if (info_r->type == XMIG_DOM_PV) {
        if (xc_domain_get_guest_width(p->xch, domid, &width) < 0) {
            xmig__seterr(x, errno, "domain %u: cannot read guest width: %s",
                         domid, strerror(errno));
            return -1;
        }
        info_r->guest_width = width;
    } else {
        info_r->guest_width = 8;
    }
    if (xc_domain_maximum_gpfn(p->xch, domid, &max_gpfn) < 0) {
        xmig__seterr(x, errno, "domain %u: cannot read its highest gfn: %s",
                     domid, strerror(errno));
        return -1;
    }
    info_r->max_gpfn = max_gpfn;

    if (!p->xsh)
        p->xsh = xs_open(XS_OPEN_READONLY);
    if (p->xsh) {
        char path[64], *val;
        unsigned int len;

        snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
        val = xs_read(p->xsh, XBT_NULL, path, &len);
        if (val)
            snprintf(info_r->name, sizeof(info_r->name), "%s", val);
        free(val);
    }
    return 0;
}

/*
 * xc_get_pfn_type_batch(), but in the handle's buffer: libxenctrl's bounces
 * the 2 pages of a full batch through a buffer of its own, mapped and
 * unmapped per call.
 */
static int xen_page_types(xmig_xen *x, uint32_t domid, unsigned int n,
                          xmig_pfn_t *frames)
{
    struct xen_domctl d = {
        .cmd = XEN_DOMCTL_getpageframeinfo3,
        .domain = (domid_t)domid,
    };
    xen_pfn_t *arr;
    unsigned int tries = 0;
    int r;

    if (n > XMIG_MAX_BATCH) {
        xmig__seterr(x, E2BIG, "%u page types at once", n);
        return -1;
    }
    arr = xmig__hbuf(x, XMIG__HBUF_TYPES, n * sizeof(*arr));
    if (!arr)
        return -1;
    /*
     * EFAULT is tried again, as libxenctrl does: without /dev/xen/hypercall
     * the buffer is locked anonymous memory that the kernel may still move.
     * Xen has overwritten entries by then, so they are filled in again.
     */
    do {
        memcpy(arr, frames, n * sizeof(*arr));
        d.u.getpageframeinfo3.num = n;
        set_xen_guest_handle_raw(d.u.getpageframeinfo3.array, arr);
        r = xc_domctl(priv(x)->xch, &d);
    } while (r < 0 && errno == EFAULT && tries++ < 2);
    if (r < 0) {
        xmig__seterr(x, errno, "domain %u: cannot read page types: %s", domid,
                     strerror(errno));
        return -1;
    }
    memcpy(frames, arr, n * sizeof(*arr));
    return 0;
}

/* The kernel reports per-frame errors negated; we keep errno values. */
static void normalise_err(int *err, unsigned int n)
{
    unsigned int i;

    for (i = 0; i < n; i++)
        if (err[i] < 0)
            err[i] = -err[i];
}

static void *xen_map(xmig_xen *x, uint32_t domid, unsigned int n,
                     const xmig_pfn_t *frames, int *err)
{
    void *p = xenforeignmemory_map(priv(x)->fmem, domid, PROT_READ, n,
                                   (const xen_pfn_t *)frames, err);

    if (p)
        normalise_err(err, n);
    return p;
}

static int xen_unmap(xmig_xen *x, void *addr, unsigned int n)
{
    return xenforeignmemory_unmap(priv(x)->fmem, addr, n);
}

/*
 * libxenforeignmemory cannot place a mapping over reserved address space
 * without leaving a hole on failure, nor refill a mapping: speak to privcmd
 * directly, as its linux.c does.
 */
static int xen_map_at(xmig_xen *x, uint32_t domid, void *addr, unsigned int n,
                      const xmig_pfn_t *frames, int *err, bool refill)
{
    struct xen_priv *p = priv(x);
    privcmd_mmapbatch_v2_t ioc = {
        .num = n,
        .dom = (domid_t)domid,
        .addr = (uintptr_t)addr,
        .arr = (const xen_pfn_t *)frames,
        .err = err,
    };
    int r;

    if (!refill) {
        void *m = mmap(addr, (size_t)n << XMIG_PAGE_SHIFT, PROT_READ,
                       MAP_SHARED | MAP_FIXED, p->privcmd, 0);

        if (m == MAP_FAILED)
            return -1;
    }
    r = ioctl(p->privcmd, IOCTL_PRIVCMD_MMAPBATCH_V2, &ioc);
    normalise_err(err, n);
    /* ENOENT: paged-out frames, reported per frame in err[]. */
    if (r < 0 && errno != ENOENT)
        return -1;
    return 0;
}

static int xen_reclaim(xmig_xen *x, void *addr, unsigned int n)
{
    void *m =
        mmap(addr, (size_t)n << XMIG_PAGE_SHIFT, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);

    return m == MAP_FAILED ? -1 : 0;
}

static int xen_zap(xmig_xen *x, void *addr, unsigned int n)
{
    struct privcmd_unmap_range r = {
        .addr = (uintptr_t)addr,
        .num = n,
    };

    return ioctl(priv(x)->privcmd, IOCTL_PRIVCMD_UNMAP_RANGE, &r);
}

static void *xen_hbuf_alloc(xmig_xen *x, size_t pages)
{
    DECLARE_HYPERCALL_BUFFER(void, buf);

    buf = xc_hypercall_buffer_alloc_pages(priv(x)->xch, buf, (int)pages);
    return buf;
}

static void xen_hbuf_free(xmig_xen *x, void *p, size_t pages)
{
    /* libxenctrl frees by the address it handed out (xc_hcall_buf.c). */
    xc_hypercall_buffer_t hb = {.hbuf = p};

    xc__hypercall_buffer_free_pages(priv(x)->xch, &hb, (int)pages);
}

/* map_at speaks to privcmd alone: it holds no per-process state. */
static unsigned int xen_mapper_fds(xmig_xen *x, int *fds, unsigned int max)
{
    if (max < 1 || priv(x)->privcmd < 0)
        return 0;
    fds[0] = priv(x)->privcmd;
    return 1;
}

static int xen_perfc_reset(xmig_xen *x)
{
    if (xc_perfc_reset(priv(x)->xch) < 0) {
        xmig__seterr(x, errno, "hypervisor counters: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int xen_perfc_read(xmig_xen *x, unsigned int n, const char *const *names,
                          uint64_t *vals)
{
    xc_interface *xch = priv(x)->xch;
    DECLARE_HYPERCALL_BUFFER(xc_perfc_desc_t, desc);
    DECLARE_HYPERCALL_BUFFER(xc_perfc_val_t, val);
    int ndesc, nval, i, j, k = 0, rc = -1;
    unsigned int m, found = 0;

    if (n > 32) {
        xmig__seterr(x, EINVAL, "hypervisor counters: %u at once", n);
        return -1;
    }
    if (xc_perfc_query_number(xch, &ndesc, &nval) < 0) {
        xmig__seterr(x, errno, "hypervisor counters: %s", strerror(errno));
        return -1;
    }
    desc = xc_hypercall_buffer_alloc(xch, desc, sizeof(*desc) * ndesc);
    val = xc_hypercall_buffer_alloc(xch, val, sizeof(*val) * nval);
    xmig__hbuf_count(x, XEN_HBUF_PAGES(sizeof(*desc) * ndesc));
    xmig__hbuf_count(x, XEN_HBUF_PAGES(sizeof(*val) * nval));
    if (!desc || !val) {
        xmig__seterr(x, ENOMEM, "hypervisor counters: out of memory");
        goto out;
    }
    if (xc_perfc_query(xch, HYPERCALL_BUFFER(desc), HYPERCALL_BUFFER(val)) <
        0) {
        xmig__seterr(x, errno, "hypervisor counters: %s", strerror(errno));
        goto out;
    }
    for (i = 0; i < ndesc; i++) {
        for (m = 0; m < n; m++) {
            uint64_t sum = 0;

            if (strncmp(desc[i].name, names[m], sizeof(desc[i].name)) != 0)
                continue;
            for (j = 0; j < (int)desc[i].nr_vals && k + j < nval; j++)
                sum += val[k + j];
            vals[m] = sum;
            found |= 1u << m;
        }
        k += desc[i].nr_vals;
    }
    for (m = 0; m < n; m++) {
        if (!(found & (1u << m))) {
            xmig__seterr(x, ENOENT, "hypervisor counter '%s' not found",
                         names[m]);
            goto out;
        }
    }
    rc = 0;
out:
    xc_hypercall_buffer_free(xch, desc);
    xc_hypercall_buffer_free(xch, val);
    return rc;
}

static int xen_cpu_ns(xmig_xen *x, uint32_t domid, uint64_t *ns_r)
{
    struct xen_dominfo info;

    if (dominfo_get(priv(x)->xch, domid, &info) < 0) {
        xmig__seterr(x, ESRCH, "domain %u does not exist", domid);
        return -1;
    }
    /* Xen's sum of the time every vcpu spent running, in ns. */
    *ns_r = info.cpu_time;
    return 0;
}

const struct xmig_xen_ops xmig__xen_ops = {
    .name = "xen",
    .close = xen_close,
    .domain_ids = xen_domain_ids,
    .domain_by_name = xen_domain_by_name,
    .domain_info = xen_domain_info,
    .page_types = xen_page_types,
    .map = xen_map,
    .unmap = xen_unmap,
    .map_at = xen_map_at,
    .reclaim = xen_reclaim,
    .zap = xen_zap,
    .mapper_fds = xen_mapper_fds,
    .perfc_reset = xen_perfc_reset,
    .perfc_read = xen_perfc_read,
    .hbuf_alloc = xen_hbuf_alloc,
    .hbuf_free = xen_hbuf_free,
    .cpu_ns = xen_cpu_ns,
    .config_json = xmig__libxl_config_json,
    .rename = xmig__libxl_rename,
    .destroy = xmig__libxl_destroy,
    .suspend = xmig__libxl_suspend,
    .resume = xmig__libxl_resume,
    .unpause = xmig__libxl_unpause,
    .libxc_save = xmig__libxc_save,
    .dm_check = xmig__dm_check,
    .dm_logdirty = xmig__dm_logdirty,
    .dm_state = xmig__dm_state,
    .dm_discard = xmig__dm_discard,
    .dm_release = xmig__dm_release,
    .xen_version = xmig__xe_xen_version,
    .cpu_policy = xmig__xe_cpu_policy,
    .logdirty_enable = xmig__xe_logdirty_enable,
    .logdirty_off = xmig__xe_logdirty_off,
    .logdirty_clean = xmig__xe_logdirty_clean,
    .logdirty_peek = xmig__xe_logdirty_peek,
    .tsc_info = xmig__xe_tsc_info,
    .vcpu_online = xmig__xe_vcpu_online,
    .pv_vcpu_context = xmig__xe_pv_vcpu_context,
    .pv_vcpu_blob = xmig__xe_pv_vcpu_blob,
    .hvm_context = xmig__xe_hvm_context,
    .hvm_param = xmig__xe_hvm_param,
    .m2p_map = xmig__xe_m2p_map,
    .m2p_unmap = xmig__xe_m2p_unmap,
};

static char *why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *why(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

xmig_xen *xmig_xen_open(xmig_log_fn *log, void *log_arg, char **err_r)
{
    static const char *const privcmd_paths[] = {"/dev/xen/privcmd",
                                                "/proc/xen/privcmd"};
    struct xen_priv *p = calloc(1, sizeof(*p));
    struct privcmd_unmap_range probe = {0, 0};
    xmig_xen *x = NULL;
    char *msg = NULL;
    unsigned int i;
    int saved;

    if (!p) {
        saved = ENOMEM;
        goto err;
    }
    p->privcmd = -1;
    p->logger.vtable.vmessage = fwd_vmessage;
    p->logger.vtable.progress = fwd_progress;
    p->logger.vtable.destroy = fwd_destroy;
    /*
     * privcmd first: its errno tells "no Xen" from "not root" before the
     * Xen libraries print their own complaints on stderr.
     */
    for (i = 0; i < 2 && p->privcmd < 0; i++)
        p->privcmd = open(privcmd_paths[i], O_RDWR | O_CLOEXEC);
    if (p->privcmd < 0) {
        saved = errno;
        if (saved == ENOENT)
            msg = why("Xen is not available here (no /dev/xen/privcmd): "
                      "run xmig in a Xen dom0");
        else if (saved == EACCES || saved == EPERM)
            msg = why("permission denied opening /dev/xen/privcmd: xmig "
                      "needs root in dom0");
        else
            msg = why("cannot open %s: %s", privcmd_paths[0], strerror(saved));
        goto err;
    }
    p->xch = xc_interface_open(&p->logger.vtable, &p->logger.vtable, 0);
    if (!p->xch) {
        saved = errno;
        msg = why("cannot open libxenctrl: %s", strerror(saved));
        goto err;
    }
    p->fmem = xenforeignmemory_open(&p->logger.vtable, 0);
    if (!p->fmem) {
        saved = errno;
        msg = why("cannot open libxenforeignmemory: %s", strerror(saved));
        goto err;
    }
    x = xmig__xen_new(&xmig__xen_ops, p, log, log_arg);
    if (!x) {
        saved = ENOMEM;
        goto err;
    }
    p->logger.x = x;
    if (ioctl(p->privcmd, IOCTL_PRIVCMD_UNMAP_RANGE, &probe) == 0)
        x->caps |= XMIG_CAP_ZAP;
    xmig__log(x, XMIG_LOG_DEBUG, "privcmd batched unmap: %s",
              x->caps & XMIG_CAP_ZAP ? "yes" : "no");
    return x;

err:
    if (p) {
        if (p->fmem)
            xenforeignmemory_close(p->fmem);
        if (p->xch)
            xc_interface_close(p->xch);
        if (p->privcmd >= 0)
            close(p->privcmd);
        free(p);
    }
    if (err_r)
        *err_r = msg ? msg : strdup(strerror(saved));
    else
        free(msg);
    errno = saved;
    return NULL;
}

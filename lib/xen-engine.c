/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * What xmig's own engine reads from Xen: versions, CPU policy, log-dirty,
 * TSC, vCPU and HVM state, HVM params and the M2P.  Blobs come back in
 * malloc'd memory, so the engine never sees a hypercall buffer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "xen-priv.h"

#include <xenguest.h> /* needs xenctrl.h, from xen-priv.h, first */

static int fail(xmig_xen *x, const char *what)
{
    int e = errno ? errno : EIO;

    xmig__seterr(x, e, "%s: %s", what, strerror(e));
    return -1;
}

int xmig__xe_xen_version(xmig_xen *x, uint32_t *major_r, uint32_t *minor_r)
{
    int v = xc_version(priv(x)->xch, XENVER_version, NULL);

    if (v < 0)
        return fail(x, "xen version");
    *major_r = (uint32_t)v >> 16;
    *minor_r = (uint32_t)v & 0xffff;
    return 0;
}

int xmig__xe_cpu_policy(xmig_xen *x, uint32_t domid, void **leaves_r,
                        uint32_t *nr_leaves_r, void **msrs_r,
                        uint32_t *nr_msrs_r)
{
    xc_interface *xch = priv(x)->xch;
    xc_cpu_policy_t *p = NULL;
    uint32_t nl = 0, nm = 0;
    void *leaves = NULL, *msrs = NULL;
    int rc = -1;

    if (xc_cpu_policy_get_size(xch, &nl, &nm) < 0) {
        fail(x, "cpu policy size");
        goto out;
    }
    p = xc_cpu_policy_init();
    leaves = calloc(nl ? nl : 1, sizeof(xen_cpuid_leaf_t));
    msrs = calloc(nm ? nm : 1, sizeof(xen_msr_entry_t));
    if (!p || !leaves || !msrs) {
        xmig__seterr(x, ENOMEM, "out of memory");
        goto out;
    }
    if (xc_cpu_policy_get_domain(xch, domid, p) < 0 ||
        xc_cpu_policy_serialise(xch, p, leaves, &nl, msrs, &nm) < 0) {
        fail(x, "reading the domain's cpu policy");
        goto out;
    }
    *leaves_r = leaves;
    *msrs_r = msrs;
    *nr_leaves_r = nl;
    *nr_msrs_r = nm;
    leaves = msrs = NULL;
    rc = 0;
out:
    free(leaves);
    free(msrs);
    xc_cpu_policy_destroy(p);
    return rc;
}

int xmig__xe_logdirty_enable(xmig_xen *x, uint32_t domid)
{
    xc_interface *xch = priv(x)->xch;

    if (xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY,
                          NULL, 0) == 0)
        return 0;
    /* Already on (VRAM tracking, a crashed earlier sender): restart it. */
    xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
    if (xc_shadow_control(xch, domid, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY,
                          NULL, 0) == 0)
        return 0;
    return fail(x, "enabling log-dirty mode (PV guests need a Xen with "
                   "shadow paging)");
}

int xmig__xe_logdirty_off(xmig_xen *x, uint32_t domid)
{
    if (xc_shadow_control(priv(x)->xch, domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL,
                          0) < 0)
        return fail(x, "switching log-dirty mode off");
    return 0;
}

/*
 * xc_logdirty_control(), in the handle's buffer: the bitmap of a guest
 * above 128 MiB takes more than a page, which libxencall would map and
 * unmap on every CLEAN and PEEK.
 */
static int logdirty_read(xmig_xen *x, uint32_t domid, unsigned int op,
                         uint64_t *bitmap, size_t nr, unsigned int mode,
                         uint64_t *dirty_r)
{
    size_t bytes = (nr + 63) / 64 * 8;
    struct xen_domctl d = {
        .cmd = XEN_DOMCTL_shadow_op,
        .domain = (domid_t)domid,
        .u.shadow_op = {.op = op, .mode = mode, .pages = nr},
    };
    uint8_t *bm = xmig__hbuf(x, XMIG__HBUF_DIRTY, bytes);

    if (!bm)
        return -1;
    set_xen_guest_handle_raw(d.u.shadow_op.dirty_bitmap, bm);
    if (xc_domctl(priv(x)->xch, &d) < 0)
        return fail(x, "reading the dirty bitmap");
    /* Xen says how many pfns it covered: fewer would leave pages out. */
    if (d.u.shadow_op.pages != nr) {
        xmig__seterr(x, EIO,
                     "reading the dirty bitmap: Xen covered %llu of %zu pfns",
                     (unsigned long long)d.u.shadow_op.pages, nr);
        return -1;
    }
    memcpy(bitmap, bm, bytes);
    if (dirty_r)
        *dirty_r = d.u.shadow_op.stats.dirty_count;
    return 0;
}

int xmig__xe_logdirty_clean(xmig_xen *x, uint32_t domid, uint64_t *bitmap,
                            size_t nr, bool final, uint64_t *dirty_r)
{
    return logdirty_read(x, domid, XEN_DOMCTL_SHADOW_OP_CLEAN, bitmap, nr,
                         final ? XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL : 0, dirty_r);
}

int xmig__xe_logdirty_peek(xmig_xen *x, uint32_t domid, uint64_t *bitmap,
                           size_t nr)
{
    return logdirty_read(x, domid, XEN_DOMCTL_SHADOW_OP_PEEK, bitmap, nr, 0,
                         NULL);
}

int xmig__xe_tsc_info(xmig_xen *x, uint32_t domid, void *rec24)
{
    uint32_t mode, khz, incarnation;
    uint64_t nsec;
    uint8_t *p = rec24;

    if (xc_domain_get_tsc_info(priv(x)->xch, domid, &mode, &nsec, &khz,
                               &incarnation) < 0)
        return fail(x, "reading TSC info");
    /* Record order differs from the call's: mode, khz, nsec, incarnation. */
    memset(p, 0, 24);
    memcpy(p, &mode, 4);
    memcpy(p + 4, &khz, 4);
    memcpy(p + 8, &nsec, 8);
    memcpy(p + 16, &incarnation, 4);
    return 0;
}

int xmig__xe_vcpu_online(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                         bool *online_r)
{
    xc_vcpuinfo_t info;

    if (xc_vcpu_getinfo(priv(x)->xch, domid, vcpu, &info) < 0)
        return fail(x, "reading vcpu info");
    *online_r = info.online;
    return 0;
}

int xmig__xe_pv_vcpu_context(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                             void *ctx, size_t len)
{
    vcpu_guest_context_any_t c;

    if (len != sizeof(c.x64)) {
        xmig__seterr(x, EINVAL, "vcpu context size %zu", len);
        return -1;
    }
    if (xc_vcpu_getcontext(priv(x)->xch, domid, vcpu, &c) < 0)
        return fail(x, "reading a vcpu context");
    memcpy(ctx, &c.x64, len);
    return 0;
}

/* Record types of the libxc stream, as in stream.h. */
#define REC_EXTENDED 0x05
#define REC_XSAVE 0x06
#define REC_MSRS 0x0c

int xmig__xe_pv_vcpu_blob(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                          unsigned int rec_type, void **blob_r, size_t *len_r)
{
    xc_interface *xch = priv(x)->xch;
    struct xen_domctl d = {.domain = (domid_t)domid};
    DECLARE_HYPERCALL_BUFFER(void, buf);
    const char *what;
    size_t len;
    void *out;

    *blob_r = NULL;
    *len_r = 0;
    switch (rec_type) {
    case REC_EXTENDED:
        d.cmd = XEN_DOMCTL_get_ext_vcpucontext;
        d.u.ext_vcpucontext.vcpu = vcpu;
        if (xc_domctl(xch, &d) < 0)
            return fail(x, "reading a vcpu's extended context");
        len = d.u.ext_vcpucontext.size;
        if (!len)
            return 0;
        out = malloc(len);
        if (!out)
            goto nomem;
        memcpy(out, &d.u.ext_vcpucontext, len);
        *blob_r = out;
        *len_r = len;
        return 0;
    case REC_XSAVE:
        what = "reading a vcpu's xsave state";
        d.cmd = XEN_DOMCTL_getvcpuextstate;
        d.u.vcpuextstate.vcpu = vcpu;
        if (xc_domctl(xch, &d) < 0)
            return fail(x, what);
        if (!d.u.vcpuextstate.xfeature_mask)
            return 0;
        len = d.u.vcpuextstate.size;
        break;
    case REC_MSRS:
        what = "reading a vcpu's MSRs";
        d.cmd = XEN_DOMCTL_get_vcpu_msrs;
        d.u.vcpu_msrs.vcpu = vcpu;
        if (xc_domctl(xch, &d) < 0)
            return fail(x, what);
        if (!d.u.vcpu_msrs.msr_count)
            return 0;
        len = d.u.vcpu_msrs.msr_count * sizeof(xen_domctl_vcpu_msr_t);
        break;
    default:
        xmig__seterr(x, EINVAL, "unknown vcpu record %#x", rec_type);
        return -1;
    }

    /* The sized records: the first call said how much, a second fills it. */
    buf = xc_hypercall_buffer_alloc(xch, buf, len);
    if (!buf)
        goto nomem;
    xmig__hbuf_count(x, XEN_HBUF_PAGES(len));
    if (rec_type == REC_XSAVE)
        set_xen_guest_handle(d.u.vcpuextstate.buffer, buf);
    else
        set_xen_guest_handle(d.u.vcpu_msrs.msrs, buf);
    if (xc_domctl(xch, &d) < 0) {
        xc_hypercall_buffer_free(xch, buf);
        return fail(x, what);
    }
    /* Xen may report fewer MSRs than it sized the buffer for. */
    if (rec_type == REC_XSAVE)
        len = d.u.vcpuextstate.size;
    else
        len = d.u.vcpu_msrs.msr_count * sizeof(xen_domctl_vcpu_msr_t);
    out = len ? malloc(len) : NULL;
    if (out)
        memcpy(out, buf, len);
    xc_hypercall_buffer_free(xch, buf);
    if (len && !out)
        goto nomem;
    *blob_r = out;
    *len_r = len;
    return 0;
nomem:
    xmig__seterr(x, ENOMEM, "out of memory");
    return -1;
}

int xmig__xe_hvm_context(xmig_xen *x, uint32_t domid, void **blob_r,
                         size_t *len_r)
{
    xc_interface *xch = priv(x)->xch;
    int size = xc_domain_hvm_getcontext(xch, domid, NULL, 0);
    uint8_t *buf;

    if (size <= 0)
        return fail(x, "sizing the HVM context");
    buf = malloc((size_t)size);
    if (!buf) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return -1;
    }
    size = xc_domain_hvm_getcontext(xch, domid, buf, (uint32_t)size);
    if (size < 0) {
        free(buf);
        return fail(x, "reading the HVM context");
    }
    *blob_r = buf;
    *len_r = (size_t)size;
    return 0;
}

int xmig__xe_hvm_param(xmig_xen *x, uint32_t domid, unsigned int index,
                       uint64_t *val_r)
{
    if (xc_hvm_param_get(priv(x)->xch, domid, index, val_r) < 0)
        return fail(x, "reading an HVM param");
    return 0;
}

/* xc_map_m2p maps max_mfn entries rounded up to whole 2 MiB chunks. */
static size_t m2p_len(uint64_t nr)
{
    size_t chunk = 2u << 20;

    return (size_t)((nr * 8 + chunk - 1) / chunk * chunk);
}

/*
 * The M2P is Xen's own table, the same for every domain and for the host's
 * life, and read-only to us: a process maps it once and never unmaps it.
 * Unmapping it (1536 pages on a 3 GiB host) cost a trapped PTE write per
 * page in a PV dom0, every PV job; at exit, exit_mmap() tears it down with
 * the page tables unpinned, without a trap.  A host whose memory grew past
 * the mapped table gets a bigger one; the old stays for whoever reads it.
 */
static struct {
    pthread_mutex_t lock;
    const uint64_t *m2p;
    uint64_t nr;
} m2p_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

int xmig__xe_m2p_map(xmig_xen *x, const uint64_t **m2p_r, uint64_t *nr_r)
{
    xc_interface *xch = priv(x)->xch;
    unsigned long max_mfn, mfn0;
    xen_pfn_t *m2p;
    int rc = 0;

    if (xc_maximum_ram_page(xch, &max_mfn) < 0)
        return fail(x, "reading the highest machine frame");
    pthread_mutex_lock(&m2p_cache.lock);
    if (!m2p_cache.m2p || m2p_cache.nr < max_mfn) {
        m2p = xc_map_m2p(xch, max_mfn, PROT_READ, &mfn0);
        if (m2p) {
            m2p_cache.m2p = (const uint64_t *)m2p;
            /* Xen's max_page: one past the highest machine frame. */
            m2p_cache.nr = max_mfn;
            /* For whoever audits this process's foreign mappings (the
               testbed's leak checks): this one is no guest's. */
            xmig__log(x, XMIG_LOG_DEBUG,
                      "m2p: Xen's machine-to-phys table stays mapped at "
                      "%p (%zu bytes) until this process exits",
                      (void *)m2p, m2p_len(max_mfn));
        } else {
            rc = fail(x, "mapping the M2P");
        }
    }
    if (rc == 0) {
        *m2p_r = m2p_cache.m2p;
        *nr_r = m2p_cache.nr;
    }
    pthread_mutex_unlock(&m2p_cache.lock);
    return rc;
}

/* The table stays mapped: see m2p_cache. */
void xmig__xe_m2p_unmap(xmig_xen *x, const uint64_t *m2p, uint64_t nr)
{
    (void)x;
    (void)m2p;
    (void)nr;
}

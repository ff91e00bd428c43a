/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * libxmig internals: the handle and the ops table that every Xen access
 * goes through.  The real table is in xen.c; unit tests supply a double.
 */
#ifndef XMIG_PRIVATE_H
#define XMIG_PRIVATE_H

#include <stdarg.h>

#include "xmig.h"

/*
 * One instance per backend.  Every member is implemented.  Per-frame errors
 * go into err[] as positive errno values; calls return -1 with errno set
 * when the call as a whole fails.
 */
struct xmig_xen_ops {
    const char *name;
    /* Free the backend's state (x->priv), not x itself. */
    void (*close)(xmig_xen *x);
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
    int (*perfc_reset)(xmig_xen *x);
    int (*perfc_read)(xmig_xen *x, const char *name, uint64_t *val_r);
};

struct xmig_xen {
    const struct xmig_xen_ops *ops;
    void *priv;
    xmig_log_fn *log;
    void *log_arg;
    unsigned int caps;
    char err[256];
};

/* xen.c core helpers (core.c) */
xmig_xen *xmig__xen_new(const struct xmig_xen_ops *ops, void *priv,
                        xmig_log_fn *log, void *log_arg);
void xmig__seterr(xmig_xen *x, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void xmig__log(xmig_xen *x, enum xmig_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* p2m.c: the PV guest's pfn -> mfn table, copied out of the guest. */
int xmig__p2m_read(xmig_xen *x, const struct xmig_dominfo *info,
                   xmig_pfn_t **p2m_r, size_t *nr_r);

#endif /* XMIG_PRIVATE_H */

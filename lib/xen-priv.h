/* SPDX-License-Identifier: LGPL-2.1-only */
/* State of the real Xen backend, shared by xen.c and xen-libxl.c. */
#ifndef XMIG_XEN_PRIV_H
#define XMIG_XEN_PRIV_H

#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenstore.h>
#include <xentoollog.h>

#include "private.h"

struct libxl__ctx;

/* Routes the Xen libraries' messages to our logger instead of stderr. */
struct xen_logger {
    xentoollog_logger vtable;
    xmig_xen *x; /* NULL until the handle exists: drop messages until then */
    /* Set while libxenguest saves: pages done of the current pass. */
    void (*progress)(void *arg, unsigned long done, unsigned long total);
    void *progress_arg;
};

struct xen_priv {
    struct xen_logger logger;
    xc_interface *xch;
    xenforeignmemory_handle *fmem;
    struct xs_handle *xsh;  /* opened on first use: only names need it */
    struct libxl__ctx *ctx; /* opened on first use: only jobs need it */
    int privcmd;
};

static inline struct xen_priv *priv(xmig_xen *x)
{
    return x->priv;
}

/*
 * Pages behind xc_hypercall_buffer_alloc(..., bytes): libxencall puts a
 * 16-byte header in front (call/buffer.c), for xmig__hbuf_count().
 */
#define XEN_HBUF_PAGES(bytes)                                                  \
    (((bytes) + 16 + XMIG_PAGE_SIZE - 1) / XMIG_PAGE_SIZE)

/* xen-libxl.c */
extern const struct xmig_xen_ops xmig__xen_ops;
int xmig__libxl_config_json(xmig_xen *x, uint32_t domid, char **json_r);
int xmig__libxl_rename(xmig_xen *x, uint32_t domid, const char *old_name,
                       const char *new_name);
int xmig__libxl_destroy(xmig_xen *x, uint32_t domid);
int xmig__libxl_suspend(xmig_xen *x, uint32_t domid);
int xmig__libxl_resume(xmig_xen *x, uint32_t domid);
int xmig__libxl_unpause(xmig_xen *x, uint32_t domid);
int xmig__libxc_save(xmig_xen *x, uint32_t domid, int fd, bool live,
                     const struct xmig__save_hooks *hooks);
void xmig__libxl_close(struct xen_priv *p);

/* xen-dm.c */
int xmig__dm_check(xmig_xen *x, uint32_t domid);
int xmig__dm_logdirty(xmig_xen *x, uint32_t domid, bool enable);
int xmig__dm_state(xmig_xen *x, uint32_t domid, struct xmig_buf *xs,
                   void **state_r, size_t *len_r);
void xmig__dm_discard(xmig_xen *x, uint32_t domid);
int xmig__dm_release(xmig_xen *x, uint32_t domid);

/* xen-engine.c */
int xmig__xe_xen_version(xmig_xen *x, uint32_t *major_r, uint32_t *minor_r);
int xmig__xe_cpu_policy(xmig_xen *x, uint32_t domid, void **leaves_r,
                        uint32_t *nr_leaves_r, void **msrs_r,
                        uint32_t *nr_msrs_r);
int xmig__xe_logdirty_enable(xmig_xen *x, uint32_t domid);
int xmig__xe_logdirty_off(xmig_xen *x, uint32_t domid);
int xmig__xe_logdirty_peek(xmig_xen *x, uint32_t domid, uint64_t *bitmap,
                           size_t nr);
int xmig__xe_logdirty_clean(xmig_xen *x, uint32_t domid, uint64_t *bitmap,
                            size_t nr, bool final, uint64_t *dirty_r);
int xmig__xe_tsc_info(xmig_xen *x, uint32_t domid, void *rec24);
int xmig__xe_vcpu_online(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                         bool *online_r);
int xmig__xe_pv_vcpu_context(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                             void *ctx, size_t len);
int xmig__xe_pv_vcpu_blob(xmig_xen *x, uint32_t domid, unsigned int vcpu,
                          unsigned int rec_type, void **blob_r, size_t *len_r);
int xmig__xe_hvm_context(xmig_xen *x, uint32_t domid, void **blob_r,
                         size_t *len_r);
int xmig__xe_hvm_param(xmig_xen *x, uint32_t domid, unsigned int index,
                       uint64_t *val_r);
int xmig__xe_m2p_map(xmig_xen *x, const uint64_t **m2p_r, uint64_t *nr_r);
void xmig__xe_m2p_unmap(xmig_xen *x, const uint64_t *m2p, uint64_t nr);

#endif

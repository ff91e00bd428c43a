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
    struct xs_handle *xsh;   /* opened on first use: only names need it */
    struct libxl__ctx *ctx;  /* opened on first use: only jobs need it */
    int privcmd;
};

static inline struct xen_priv *priv(xmig_xen *x)
{
    return x->priv;
}

/* xen-libxl.c */
extern const struct xmig_xen_ops xmig__xen_ops;
int xmig__libxl_config_json(xmig_xen *x, uint32_t domid, char **json_r);
int xmig__libxl_rename(xmig_xen *x, uint32_t domid, const char *old_name,
                       const char *new_name);
int xmig__libxl_destroy(xmig_xen *x, uint32_t domid);
int xmig__libxl_suspend(xmig_xen *x, uint32_t domid);
int xmig__libxl_resume(xmig_xen *x, uint32_t domid);
int xmig__libxc_save(xmig_xen *x, uint32_t domid, int fd, bool live,
                     const struct xmig__save_hooks *hooks);
void xmig__libxl_close(struct xen_priv *p);

#endif

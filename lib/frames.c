/* SPDX-License-Identifier: LGPL-2.1-only */
/* Which frames of a domain hold memory, and how Xen wants them named. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

/* XEN_DOMCTL_PFINFO_* from Xen's public domctl.h (tools-only header). */
#define PFINFO_LTAB_MASK (0xfU << 28)
#define PFINFO_XTAB (0xfU << 28)
#define PFINFO_XALLOC (0xeU << 28)
#define PFINFO_BROKEN (0xdU << 28)

void xmig_frames_init(struct xmig_frames *f)
{
    memset(f, 0, sizeof(*f));
}

void xmig_frames_dispose(struct xmig_frames *f)
{
    if (!f)
        return;
    free(f->pfn);
    free(f->frame);
    free(f->type);
    xmig_frames_init(f);
}

/* Pages Xen has no data for: mapping them fails, one hypercall each. */
static bool type_has_data(uint32_t type)
{
    switch (type & PFINFO_LTAB_MASK) {
    case PFINFO_XTAB:
    case PFINFO_XALLOC:
    case PFINFO_BROKEN:
        return false;
    }
    return true;
}

int xmig_frames_scan(xmig_xen *x, const struct xmig_dominfo *info,
                     struct xmig_frames *f)
{
    xmig_pfn_t *p2m = NULL, batch[XMIG_MAX_BATCH], bpfn[XMIG_MAX_BATCH];
    size_t nr, pfn, i, cap;
    unsigned int nb = 0;
    int rc = -1;

    xmig_frames_dispose(f);
    if (info->type == XMIG_DOM_PV) {
        if (xmig__p2m_read(x, info, &p2m, &nr, NULL, NULL) < 0)
            return -1;
    } else {
        nr = (size_t)info->max_gpfn + 1;
    }

    /* Populated pages are a good first guess; grow if the guest grew. */
    cap = info->nr_pages ? (size_t)info->nr_pages : 1024;
    f->pfn = malloc(cap * sizeof(*f->pfn));
    f->frame = malloc(cap * sizeof(*f->frame));
    f->type = malloc(cap * sizeof(*f->type));
    if (!f->pfn || !f->frame || !f->type) {
        xmig__seterr(x, ENOMEM, "out of memory for %zu frames", cap);
        goto out;
    }

    for (pfn = 0; pfn <= nr; pfn++) {
        /* Flush a full batch, and the last one once every pfn was seen. */
        if (nb == XMIG_MAX_BATCH || (pfn == nr && nb)) {
            xmig_pfn_t types[XMIG_MAX_BATCH];

            memcpy(types, batch, nb * sizeof(types[0]));
            if (x->ops->page_types(x, info->domid, nb, types) < 0)
                goto out;
            for (i = 0; i < nb; i++) {
                uint32_t t = (uint32_t)(types[i] & PFINFO_LTAB_MASK);

                if (!type_has_data(t)) {
                    f->nr_holes++;
                    continue;
                }
                if (f->n == cap) {
                    size_t ncap = cap * 2;
                    void *a = realloc(f->pfn, ncap * sizeof(*f->pfn));

                    if (a)
                        f->pfn = a;
                    a = a ? realloc(f->frame, ncap * sizeof(*f->frame)) : NULL;
                    if (a)
                        f->frame = a;
                    a = a ? realloc(f->type, ncap * sizeof(*f->type)) : NULL;
                    if (!a) {
                        xmig__seterr(x, ENOMEM, "out of memory for %zu frames",
                                     ncap);
                        goto out;
                    }
                    f->type = a;
                    cap = ncap;
                }
                f->pfn[f->n] = bpfn[i];
                f->frame[f->n] = batch[i];
                f->type[f->n] = t;
                f->n++;
            }
            nb = 0;
        }
        if (pfn == nr)
            break;
        f->nr_scanned++;
        if (p2m && (p2m[pfn] >> 62)) {
            /*
             * Ballooned out (all ones), or Linux's identity/foreign markers
             * (bits 62, 63): no frame of this guest behind the pfn.
             */
            f->nr_holes++;
            continue;
        }
        bpfn[nb] = pfn;
        batch[nb] = p2m ? p2m[pfn] : pfn;
        nb++;
    }
    rc = 0;
out:
    free(p2m);
    if (rc < 0) {
        int saved = errno;

        xmig_frames_dispose(f);
        errno = saved;
    }
    return rc;
}

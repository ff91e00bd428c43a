/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Toolstack operations done the way xl does them, through libxenlight:
 * the domain's configuration, rename, destroy, suspend and resume; and
 * libxenguest's own save engine with our callbacks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxl.h>
#include <libxl_utils.h>

#include "xen-priv.h"

#include <xenguest.h> /* needs xenctrl.h, from xen-priv.h, first */

/*
 * libxl reaps the children it forks (a domain's destroy) from one SIGCHLD
 * handler for all the process's contexts, which it registers and removes
 * as contexts come and go.  With jobs in parallel, a destroy's child that
 * exited while another job's context was being freed was never reaped:
 * the destroy waited for ever (xmigd's daemon scenario, two jobs of an
 * evacuate).  So the calls that fork a child and the context's own
 * lifetime never overlap between jobs; none of them takes long.
 */
static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;

static libxl_ctx *ctx(xmig_xen *x)
{
    struct xen_priv *p = priv(x);

    if (!p->ctx) {
        libxl_ctx *c = NULL;

        pthread_mutex_lock(&children_lock);
        if (libxl_ctx_alloc(&c, LIBXL_VERSION, 0, &p->logger.vtable) != 0) {
            pthread_mutex_unlock(&children_lock);
            xmig__seterr(x, EIO,
                         "cannot open libxenlight (is xenstored "
                         "running?)");
            return NULL;
        }
        /*
         * Only reap libxl's own children: ours (ssh, exec:) are ours to
         * wait for.
         */
        static const libxl_childproc_hooks hooks = {
            .chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
        };
        libxl_childproc_setmode(c, &hooks, NULL);
        pthread_mutex_unlock(&children_lock);
        p->ctx = c;
    }
    return p->ctx;
}

void xmig__libxl_close(struct xen_priv *p)
{
    if (p->ctx) {
        pthread_mutex_lock(&children_lock);
        libxl_ctx_free(p->ctx);
        pthread_mutex_unlock(&children_lock);
    }
    p->ctx = NULL;
}

int xmig__libxl_config_json(xmig_xen *x, uint32_t domid, char **json_r)
{
    libxl_ctx *c = ctx(x);
    libxl_domain_config d;
    char *json;
    int rc;

    if (!c)
        return -1;
    libxl_domain_config_init(&d);
    rc = libxl_retrieve_domain_configuration(c, domid, &d, NULL);
    if (rc) {
        libxl_domain_config_dispose(&d);
        xmig__seterr(x, EIO,
                     "cannot read the configuration of domain %u "
                     "(libxl error %d): was it created by xl?",
                     domid, rc);
        return -1;
    }
    /* As xl: the receiver picks its own domid. */
    d.c_info.domid = 0;
    json = libxl_domain_config_to_json(c, &d);
    libxl_domain_config_dispose(&d);
    if (!json) {
        xmig__seterr(x, ENOMEM, "cannot encode the configuration of domain %u",
                     domid);
        return -1;
    }
    *json_r = json;
    return 0;
}

int xmig__libxl_rename(xmig_xen *x, uint32_t domid, const char *old_name,
                       const char *new_name)
{
    libxl_ctx *c = ctx(x);
    int rc;

    if (!c)
        return -1;
    rc = libxl_domain_rename(c, domid, old_name, new_name);
    if (rc) {
        xmig__seterr(x, EIO,
                     "cannot rename domain %u from '%s' to '%s' "
                     "(libxl error %d)",
                     domid, old_name, new_name, rc);
        return -1;
    }
    return 0;
}

int xmig__libxl_destroy(xmig_xen *x, uint32_t domid)
{
    libxl_ctx *c = ctx(x);
    int rc;

    if (!c)
        return -1;
    pthread_mutex_lock(&children_lock);
    rc = libxl_domain_destroy(c, domid, NULL);
    pthread_mutex_unlock(&children_lock);
    if (rc) {
        xmig__seterr(x, EIO, "cannot destroy domain %u (libxl error %d)", domid,
                     rc);
        return -1;
    }
    return 0;
}

int xmig__libxl_suspend(xmig_xen *x, uint32_t domid)
{
    libxl_ctx *c = ctx(x);
    int rc;

    if (!c)
        return -1;
    /*
     * libxl's own suspend: the suspend event channel when the guest has
     * one, else control/shutdown = "suspend", each acknowledged within a
     * timeout, then a wait for SHUTDOWN_suspend.
     */
    rc = libxl_domain_suspend_only(c, domid, NULL);
    if (rc) {
        xmig__seterr(x, ETIMEDOUT,
                     "domain %u did not suspend (libxl error "
                     "%d)",
                     domid, rc);
        return -1;
    }
    return 0;
}

int xmig__libxl_resume(xmig_xen *x, uint32_t domid)
{
    libxl_ctx *c = ctx(x);
    int rc;

    if (!c)
        return -1;
    rc = libxl_domain_resume(c, domid, 1, NULL);
    if (rc) {
        xmig__seterr(x, EIO, "cannot resume domain %u (libxl error %d)", domid,
                     rc);
        return -1;
    }
    return 0;
}

int xmig__libxl_unpause(xmig_xen *x, uint32_t domid)
{
    libxl_ctx *c = ctx(x);
    int rc;

    if (!c)
        return -1;
    rc = libxl_domain_unpause(c, domid, NULL);
    if (rc) {
        xmig__seterr(x, EIO, "cannot unpause domain %u (libxl error %d)", domid,
                     rc);
        return -1;
    }
    return 0;
}

/* ---- libxenguest's engine ---- */

static int cb_suspend(void *data)
{
    const struct xmig__save_hooks *h = data;

    /* xc_domain_save wants non-zero for success. */
    return h->suspend(h->arg) == 0 ? 1 : 0;
}

static int cb_policy(struct precopy_stats stats, void *data)
{
    const struct xmig__save_hooks *h = data;

    return h->policy(h->arg, stats.iteration, stats.total_written,
                     stats.dirty_count);
}

/* Called for PVH too, which has no device model to tell. */
static int cb_qemu_logdirty(uint32_t domid, unsigned int enable, void *data)
{
    const struct xmig__save_hooks *h = data;

    if (!h->dm)
        return 0;
    return h->x->ops->dm_logdirty(h->x, domid, enable != 0) < 0 ? -1 : 0;
}

int xmig__libxc_save(xmig_xen *x, uint32_t domid, int fd, bool live,
                     const struct xmig__save_hooks *hooks)
{
    struct xen_priv *p = priv(x);
    struct save_callbacks cb = {
        .suspend = cb_suspend,
        .precopy_policy = cb_policy,
        .switch_qemu_logdirty = cb_qemu_logdirty,
        .data = (void *)hooks,
    };
    int rc;

    p->logger.progress = hooks->progress;
    p->logger.progress_arg = hooks->arg;
    rc = xc_domain_save(p->xch, fd, domid, live ? XCFLAGS_LIVE : 0, &cb,
                        XC_STREAM_PLAIN, -1);
    p->logger.progress = NULL;
    if (rc) {
        int e = errno ? errno : EIO;

        xmig__seterr(x, e, "saving domain %u failed: %s", domid, strerror(e));
        return -1;
    }
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Cancelling a running job from another thread.  The flag is polled at the
 * job's decision points; breaking the transport ends a write or read that
 * is blocked on a slow or vanished receiver.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "private.h"

struct xmig_cancel {
    atomic_bool requested;
    pthread_mutex_t lock; /* t: the job detaches it before closing it */
    struct xmig__transport *t;
};

xmig_cancel *xmig_cancel_new(void)
{
    xmig_cancel *c = calloc(1, sizeof(*c));

    if (c)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

void xmig_cancel_free(xmig_cancel *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void xmig_cancel_request(xmig_cancel *c)
{
    atomic_store(&c->requested, true);
    pthread_mutex_lock(&c->lock);
    /*
     * The stream ends: a write blocked on a receiver that stopped reading
     * fails at once, and the receiver sees EOF, on which xl destroys its
     * copy.  Not a signal: killed, it (or the ssh in between) would leave
     * the copy behind; xmig__transport_close() kills only what stays.
     */
    if (c->t && c->t->wfd >= 0)
        shutdown(c->t->wfd, SHUT_WR);
    pthread_mutex_unlock(&c->lock);
}

bool xmig_cancel_requested(const xmig_cancel *c)
{
    return c && atomic_load(&((xmig_cancel *)c)->requested);
}

bool xmig__cancelled(xmig_xen *x)
{
    return xmig_cancel_requested(x->cancel);
}

void xmig__cancel_attach(xmig_cancel *c, struct xmig__transport *t)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->t = t;
    pthread_mutex_unlock(&c->lock);
}

void xmig__cancel_detach(xmig_cancel *c)
{
    xmig__cancel_attach(c, NULL);
}

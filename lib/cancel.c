/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Cancelling a running job from another thread.  The flag is polled at the
 * job's decision points; breaking the transport ends a write or read that
 * is blocked on a slow or vanished receiver.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "private.h"

struct xmig_cancel {
    atomic_bool requested;
    atomic_int refs; /* the owner's, and a pending escalation's */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* t was detached */
    struct xmig__transport *t;
    bool escalating;
};

xmig_cancel *xmig_cancel_new(void)
{
    xmig_cancel *c = calloc(1, sizeof(*c));
    pthread_condattr_t ca;

    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->changed, &ca);
    pthread_condattr_destroy(&ca);
    return c;
}

static void cancel_unref(xmig_cancel *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void xmig_cancel_free(xmig_cancel *c)
{
    if (c)
        cancel_unref(c);
}

/*
 * A receiver that ignores SIGTERM would keep the job's write blocked: kill
 * its group after the grace period, unless the job let go of it first.
 * The group cannot have been reaped while it is attached.
 */
static void *escalate(void *arg)
{
    xmig_cancel *c = arg;
    struct timespec until;
    pid_t pid;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += XMIG__KILL_GRACE_MS / 1000;
    pthread_mutex_lock(&c->lock);
    pid = c->t ? c->t->pid : -1;
    while (c->t && c->t->pid == pid &&
           pthread_cond_timedwait(&c->changed, &c->lock, &until) != ETIMEDOUT)
        ;
    if (c->t && c->t->pid == pid)
        xmig__transport_kill(c->t, SIGKILL);
    c->escalating = false;
    pthread_mutex_unlock(&c->lock);
    cancel_unref(c);
    return NULL;
}

static void start_escalation(xmig_cancel *c)
{
    sigset_t all, old;
    pthread_attr_t a;
    pthread_t th;

    if (c->escalating)
        return;
    atomic_fetch_add(&c->refs, 1);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* The caller's signals are not this thread's business. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&th, &a, escalate, c) == 0)
        c->escalating = true;
    else
        atomic_fetch_sub(&c->refs, 1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
}

void xmig_cancel_request(xmig_cancel *c)
{
    atomic_store(&c->requested, true);
    pthread_mutex_lock(&c->lock);
    if (c->t) {
        /* The receiver's end goes away: the engine's next write fails.
           All of it: a shell's children hold our pipe as well. */
        if (c->t->pid > 0) {
            xmig__transport_kill(c->t, SIGTERM);
            start_escalation(c);
        } else if (c->t->wfd >= 0) {
            shutdown(c->t->wfd, SHUT_RDWR);
        }
    }
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
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

void xmig__cancel_detach(xmig_cancel *c)
{
    xmig__cancel_attach(c, NULL);
}

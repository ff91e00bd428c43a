/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig_xen_open() for tests/daemon/xmigd-double: xmigd linked with
 * libxmig's core and the unit tests' Xen double instead of lib/xen.c, so
 * that the daemon's jobs, queue, cancel and shutdown can be tested on a
 * machine without Xen.  It proves nothing about Xen (the testbed does).
 *
 * XMIGD_DOUBLE_DOMAINS="5,6,7": the domain ids that exist (at most
 *   MAX_DOMAINS), each a PV guest named "guest" as the double has it (use
 *   ids in tests);
 * XMIGD_DOUBLE_SLOW="6,7": the streams of these domains take a minute
 *   and can be cancelled meanwhile, like real ones of big guests.
 * XMIGD_DOUBLE_PERFC=1: the hypervisor has software counters.
 * Unset XMIGD_DOUBLE_DOMAINS: "Xen is not available", as on this machine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xen-double.h"

#define BASE_DOMID 9
#define MAX_DOMAINS 1024

static struct xmig_xen_ops wrapped;
static const struct xmig_xen_ops *orig;

static bool listed(const char *var, uint32_t domid)
{
    const char *s = getenv(var);
    char *end;
    unsigned long id;

    while (s && *s) {
        id = strtoul(s, &end, 10);
        if (end == s)
            break;
        if (id == domid)
            return true;
        s = *end == ',' ? end + 1 : end;
    }
    return false;
}

static int shim_domain_info(xmig_xen *x, uint32_t domid,
                            struct xmig_dominfo *info_r)
{
    if (!listed("XMIGD_DOUBLE_DOMAINS", domid)) {
        xmig__seterr(x, ESRCH, "domain %u does not exist", domid);
        return -1;
    }
    if (orig->domain_info(x, BASE_DOMID, info_r) < 0)
        return -1;
    info_r->domid = domid;
    return 0;
}

/* The ids in XMIGD_DOUBLE_DOMAINS, in order. */
static int shim_domain_ids(xmig_xen *x, uint32_t **ids_r, size_t *n_r)
{
    const char *s = getenv("XMIGD_DOUBLE_DOMAINS");
    uint32_t *ids = calloc(MAX_DOMAINS, sizeof(*ids));
    size_t n = 0;
    char *end;

    if (!ids)
        return -1;
    while (s && *s && n < MAX_DOMAINS) {
        unsigned long id = strtoul(s, &end, 10);

        if (end == s)
            break;
        if (id != 0) /* as Xen's backend: every domain but dom0 */
            ids[n++] = (uint32_t)id;
        s = *end == ',' ? end + 1 : end;
    }
    *ids_r = ids;
    *n_r = n;
    return 0;
}

static int shim_libxc_save(xmig_xen *x, uint32_t domid, int fd, bool live,
                           const struct xmig__save_hooks *h)
{
    long ms = listed("XMIGD_DOUBLE_SLOW", domid) ? 60000 : 0;
    struct timespec tick = {0, 10 * 1000 * 1000};

    for (; ms > 0; ms -= 10) {
        if (xmig__cancelled(x)) {
            errno = ECANCELED;
            return -1;
        }
        nanosleep(&tick, NULL);
    }
    return orig->libxc_save(x, domid, fd, live, h);
}

xmig_xen *xmig_xen_open(xmig_log_fn *log, void *log_arg, char **err_r)
{
    struct dbl_config c = {.type = XMIG_DOM_PV,
                           .domid = BASE_DOMID,
                           .nr_pfns = 2048,
                           .perfc = getenv("XMIGD_DOUBLE_PERFC") != NULL};
    xmig_xen *x;

    if (!getenv("XMIGD_DOUBLE_DOMAINS")) {
        if (err_r)
            *err_r = strdup("Xen is not available here (no "
                            "/dev/xen/privcmd): run xmig in a Xen dom0");
        errno = ENOENT;
        return NULL;
    }
    x = dbl_open(&c);
    if (!x) {
        if (err_r)
            *err_r = strdup("out of memory");
        return NULL;
    }
    if (!orig) {
        orig = x->ops;
        wrapped = *orig;
        wrapped.domain_info = shim_domain_info;
        wrapped.domain_ids = shim_domain_ids;
        wrapped.libxc_save = shim_libxc_save;
    }
    x->ops = &wrapped;
    x->log = log;
    x->log_arg = log_arg;
    return x;
}

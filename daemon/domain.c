/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The event loop's own Xen handle, for what must be answered before a job
 * exists: does the domain exist, which id has it, is it busy.  Jobs never
 * use it; each opens its own in its worker thread.
 *
 * Where Xen is opened: once at start, and again on each request that
 * needs it for as long as it fails.  xmigd therefore starts (and answers
 * no_xen) on a machine without Xen, and picks Xen up if xenfs appears
 * later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "log.h"

/* DOMID_FIRST_RESERVED */

static xmig_xen *xen;
static char why[256] = "Xen has not been opened yet";

static void log_fwd(void *arg, enum xmig_log_level level, const char *msg)
{
    log_msg(level, "xen: %s", msg);
}

xmig_xen *domain_xen(const char **why_r)
{
    char *err = NULL;

    if (!xen) {
        xen = xmig_xen_open(log_fwd, NULL, &err);
        if (!xen) {
            snprintf(why, sizeof(why), "%s",
                     err ? err : "cannot open Xen: out of memory");
            log_debug("%s: %s", __func__, why);
        } else {
            log_info("Xen opened");
        }
        free(err);
    }
    if (why_r)
        *why_r = why;
    return xen;
}

void domain_init(void)
{
    if (!domain_xen(NULL))
        log_warnx("%s; xmigd keeps running and answers job requests with "
                  "no_xen until Xen can be opened",
                  why);
}

void domain_shutdown(void)
{
    xmig_xen_close(xen);
    xen = NULL;
}

bool domain_xen_available(void)
{
    return xen != NULL;
}

int domain_list(struct domain_entry **list_r, size_t *n_r, const char **why_r)
{
    struct xmig_dominfo *info = NULL;
    struct domain_entry *list;
    xmig_xen *x = domain_xen(why_r);
    size_t n = 0, i;

    *list_r = NULL;
    *n_r = 0;
    if (!x)
        return -1;
    if (xmig_domain_list(x, &info, &n) < 0) {
        *why_r = xmig_xen_error(x);
        return -1;
    }
    list = calloc(n ? n : 1, sizeof(*list));
    if (!list) {
        free(info);
        *why_r = "out of memory";
        return -1;
    }
    for (i = 0; i < n; i++) {
        list[i].domid = info[i].domid;
        list[i].type = info[i].type;
        list[i].dying = info[i].dying || info[i].shutdown;
        snprintf(list[i].name, sizeof(list[i].name), "%s", info[i].name);
    }
    free(info);
    *list_r = list;
    *n_r = n;
    return 0;
}

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

#include "xmigd.h"

/* DOMID_FIRST_RESERVED */
#define DOMID_LIMIT 0x7ff0

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

/*
 * libxmig has no domain list yet (xmig_domain_list is requested): ask for
 * each possible id.  One cheap hypercall per id that does not exist.
 */
int domain_list(struct domain_entry **list_r, size_t *n_r, const char **why_r)
{
    struct domain_entry *list = NULL, *l;
    struct xmig_dominfo info;
    size_t n = 0, cap = 0;
    xmig_xen *x = domain_xen(why_r);
    uint32_t id;

    *list_r = NULL;
    *n_r = 0;
    if (!x)
        return -1;
    for (id = 1; id < DOMID_LIMIT; id++) {
        if (xmig_domain_info(x, id, &info) < 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            l = realloc(list, cap * sizeof(*list));
            if (!l) {
                free(list);
                *why_r = "out of memory";
                return -1;
            }
            list = l;
        }
        list[n].domid = id;
        list[n].type = info.type;
        list[n].dying = info.dying || info.shutdown;
        snprintf(list[n].name, sizeof(list[n].name), "%s", info.name);
        n++;
    }
    *list_r = list;
    *n_r = n;
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/* The handle, errors and logging shared by every backend. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/mman.h>

#include "private.h"

xmig_xen *xmig__xen_new(const struct xmig_xen_ops *ops, void *priv,
                        xmig_log_fn *log, void *log_arg)
{
    xmig_xen *x = calloc(1, sizeof(*x));

    if (!x)
        return NULL;
    x->ops = ops;
    x->priv = priv;
    x->log = log;
    x->log_arg = log_arg;
    return x;
}

void xmig_xen_close(xmig_xen *x)
{
    unsigned int i;

    if (!x)
        return;
    for (i = 0; i < XMIG__HBUF_N; i++)
        if (x->hbuf[i].p)
            x->ops->hbuf_free(x, x->hbuf[i].p, x->hbuf[i].pages);
    x->ops->close(x);
    free(x);
}

void xmig__hbuf_count(xmig_xen *x, size_t pages)
{
    /* A single page comes from libxencall's cache, without a mmap. */
    if (pages > 1)
        x->hcall_buffers++;
}

/*
 * Page types: a full batch from the start, so that a short first batch
 * (a frame scan's, a test's) does not cost a second buffer.
 */
static const size_t hbuf_min[XMIG__HBUF_N] = {
    [XMIG__HBUF_TYPES] = XMIG_MAX_BATCH * sizeof(xmig_pfn_t),
};

void *xmig__hbuf(xmig_xen *x, enum xmig__hbuf_use use, size_t bytes)
{
    struct xmig__hbuf *b = &x->hbuf[use];
    size_t pages;

    if (bytes < hbuf_min[use])
        bytes = hbuf_min[use];
    pages = (bytes + XMIG_PAGE_SIZE - 1) / XMIG_PAGE_SIZE;
    if (!pages)
        pages = 1;
    if (b->p && b->pages >= pages)
        return b->p;
    if (b->p)
        x->ops->hbuf_free(x, b->p, b->pages);
    b->pages = 0;
    b->p = x->ops->hbuf_alloc(x, pages);
    if (!b->p) {
        xmig__seterr(x, ENOMEM, "out of memory for a hypercall buffer");
        return NULL;
    }
    b->pages = pages;
    xmig__hbuf_count(x, pages);
    return b->p;
}

/*
 * Zeroed memory that a fork does not copy (MADV_DONTFORK): what a job
 * writes while its exit worker lives.  A fork write-protects every
 * resident private page of the caller, a trapped PTE write each in a PV
 * dom0, and the caller's next write to each takes a copy-on-write fault
 * with another; the worker never reads these, so they are not its to
 * share.  The worker must not touch them: they are not mapped in it.  A
 * page in front holds the length, for xmig__nofork_free.
 */
void *xmig__nofork_alloc(size_t len)
{
    size_t total;
    uint8_t *p;

    if (len > SIZE_MAX - 2 * XMIG_PAGE_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    total = (len + 2 * XMIG_PAGE_SIZE - 1) & ~(size_t)(XMIG_PAGE_SIZE - 1);
    p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (madvise(p, total, MADV_DONTFORK) < 0) {
        munmap(p, total);
        return NULL;
    }
    memcpy(p, &total, sizeof(total));
    return p + XMIG_PAGE_SIZE;
}

void xmig__nofork_free(void *p)
{
    uint8_t *base;
    size_t total;

    if (!p)
        return;
    base = (uint8_t *)p - XMIG_PAGE_SIZE;
    memcpy(&total, base, sizeof(total));
    munmap(base, total);
}

/* Keeps errno as it was so callers can set the error and return -1. */
void xmig__seterr(xmig_xen *x, int errnum, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
    errno = errnum;
}

void xmig__err_keep(const xmig_xen *x, struct xmig__errkeep *k)
{
    k->errnum = errno;
    memcpy(k->err, x->err, sizeof(k->err));
}

void xmig__err_back(xmig_xen *x, const struct xmig__errkeep *k)
{
    memcpy(x->err, k->err, sizeof(x->err));
    errno = k->errnum;
}

void xmig__err_first(xmig_xen *x, const struct xmig__errkeep *k)
{
    if (k->err[0])
        memcpy(x->err, k->err, sizeof(x->err));
    errno = k->errnum;
}

/*
 * Why a write to the receiver failed.  A receiver that exits with bytes
 * unread resets a socket (ECONNRESET) where it breaks a pipe (EPIPE): the
 * same event, and the admin is told the same thing.
 */
const char *xmig__write_strerror(int errnum)
{
    if (errnum == EPIPE || errnum == ECONNRESET)
        return "the receiver has gone away";
    return strerror(errnum);
}

void xmig__log(xmig_xen *x, enum xmig_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int saved = errno;

    if (!x->log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    x->log(x->log_arg, level, msg);
    errno = saved;
}

const char *xmig_xen_error(const xmig_xen *x)
{
    return x->err[0] ? x->err : "unknown error";
}

unsigned int xmig_xen_caps(const xmig_xen *x)
{
    return x->caps;
}

const char *xmig_domtype_name(enum xmig_domtype t)
{
    switch (t) {
    case XMIG_DOM_PV:
        return "pv";
    case XMIG_DOM_PVH:
        return "pvh";
    case XMIG_DOM_HVM:
        return "hvm";
    }
    return "?";
}

/*
 * Digits only: an id, below DOMID_FIRST_RESERVED.  Anything else: a name,
 * which may not hold whitespace or control characters nor start with '-'
 * (it would read as an option to xl and ssh).  No sign, no blanks, no
 * wrapping: strtoul() took " 5", "+5" and "-18446744073709551611" for 5.
 */
int xmig_domain_find(xmig_xen *x, const char *spec, uint32_t *domid_r)
{
    struct xmig_dominfo info;
    unsigned long id = 0;
    const char *p;

    if (!spec || !*spec) {
        xmig__seterr(x, EINVAL, "no domain given");
        return -1;
    }
    for (p = spec; *p >= '0' && *p <= '9'; p++)
        if (id < 0x7ff0)
            id = id * 10 + (unsigned long)(*p - '0');
    if (!*p) {
        if (id >= 0x7ff0) { /* DOMID_FIRST_RESERVED */
            xmig__seterr(x, EINVAL,
                         "domain id %.24s%s is out of range (0 to 32751)", spec,
                         strlen(spec) > 24 ? "..." : "");
            return -1;
        }
        if (xmig_domain_info(x, (uint32_t)id, &info) < 0)
            return -1;
        *domid_r = (uint32_t)id;
        return 0;
    }
    for (p = spec; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            xmig__seterr(x, EINVAL,
                         "not a domain id or name: a name has no whitespace "
                         "or control characters");
            return -1;
        }
    }
    if (spec[0] == '-') {
        xmig__seterr(x, EINVAL,
                     "'%.64s' is not a domain id or name: ids are digits "
                     "only, names do not start with '-'",
                     spec);
        return -1;
    }
    return x->ops->domain_by_name(x, spec, domid_r);
}

int xmig_domain_info(xmig_xen *x, uint32_t domid, struct xmig_dominfo *info_r)
{
    memset(info_r, 0, sizeof(*info_r));
    return x->ops->domain_info(x, domid, info_r);
}

int xmig_domain_list(xmig_xen *x, struct xmig_dominfo **list_r, size_t *n_r)
{
    struct xmig_dominfo *list;
    uint32_t *ids = NULL;
    size_t n = 0, i, k = 0;

    if (x->ops->domain_ids(x, &ids, &n) < 0)
        return -1;
    list = calloc(n ? n : 1, sizeof(*list));
    if (!list) {
        free(ids);
        xmig__seterr(x, ENOMEM, "out of memory");
        return -1;
    }
    /* A domain may go between the two calls: it is simply not listed. */
    for (i = 0; i < n; i++)
        if (xmig_domain_info(x, ids[i], &list[k]) == 0)
            k++;
    free(ids);
    *list_r = list;
    *n_r = k;
    return 0;
}

int xmig_perfc_reset(xmig_xen *x)
{
    return x->ops->perfc_reset(x);
}

int xmig_perfc_read(xmig_xen *x, const char *name, uint64_t *val_r)
{
    return x->ops->perfc_read(x, 1, &name, val_r);
}

void xmig_cost_read(xmig_xen *x, struct xmig_cost *now)
{
    static const char *const names[] = {XMIG_PERFC_PTWR, XMIG_PERFC_HYPERCALLS};
    struct xmig__errkeep k;
    uint64_t ns, v[2];

    /* A job's failure keeps its own message, whatever cannot be read. */
    xmig__err_keep(x, &k);
    now->dom0_cpu_ns =
        x->ops->cpu_ns(x, 0, &ns) == 0 && ns <= INT64_MAX ? (int64_t)ns : -1;
    if (x->ops->perfc_read(x, 2, names, v) == 0 && v[0] <= INT64_MAX &&
        v[1] <= INT64_MAX) {
        now->traps = (int64_t)v[0];
        now->hypercalls = (int64_t)v[1];
    } else {
        now->traps = now->hypercalls = -1;
    }
    xmig__err_back(x, &k);
}

static int64_t spent(int64_t before, int64_t after)
{
    return before < 0 || after < before ? -1 : after - before;
}

void xmig_cost_diff(const struct xmig_cost *before,
                    const struct xmig_cost *after, struct xmig_cost *d)
{
    d->dom0_cpu_ns = spent(before->dom0_cpu_ns, after->dom0_cpu_ns);
    d->traps = spent(before->traps, after->traps);
    d->hypercalls = spent(before->hypercalls, after->hypercalls);
}

double xmig_cost_per_gib(int64_t v, uint64_t bytes)
{
    return v < 0 || !bytes ? -1 : (double)v / ((double)bytes / (1 << 30));
}

double xmig_cost_per_page(int64_t v, uint64_t pages)
{
    return v < 0 || !pages ? -1 : (double)v / (double)pages;
}

uint64_t xmig_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

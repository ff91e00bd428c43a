/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Writing the stream, for every part of the engine: records, and the
 * pages they carry straight from foreign mappings.
 */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "engine-core.h"

/*
 * Write every byte of iov.  Sinks that pin user pages (9p, FUSE direct
 * I/O, some zero-copy paths) refuse foreign mappings with EFAULT: from
 * then on pages are copied through a bounce buffer first.
 */
int xmig__engine_write(struct engine *e, struct iovec *iov, int cnt)
{
    /* Two writers at once would interleave records: refuse, do not
       corrupt the stream. */
    if (e->wk_busy) {
        xmig__seterr(e->x, EBUSY,
                     "internal error: a record written while the mapping "
                     "worker writes one");
        return -1;
    }
    while (cnt > 0) {
        int n = cnt > IOV_MAX ? IOV_MAX : cnt;
        ssize_t r;

        if (e->copy_writes)
            r = write(e->fd, e->bounce, engine_gather(e->bounce, iov, cnt));
        else
            r = writev(e->fd, iov, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EFAULT && !e->copy_writes) {
            xmig__log(e->x, XMIG_LOG_INFO,
                      "the sink refuses foreign pages: copying them");
            e->copy_writes = true;
            continue;
        }
        if (r < 0) {
            xmig__seterr(e->x, errno, "writing the stream: %s",
                         xmig__write_strerror(errno));
            return -1;
        }
        e->st->bytes += (uint64_t)r;
        engine_advance(&iov, &cnt, (size_t)r);
    }
    return 0;
}

/* A record whose body is a header and a second part, padded to 8. */
int xmig__engine_record2(struct engine *e, uint32_t type, const void *hdr,
                         size_t hlen, const void *body, size_t blen)
{
    static const uint8_t zero[8];
    uint32_t rh[2] = {type, (uint32_t)(hlen + blen)};
    struct iovec iov[4] = {
        {rh, sizeof(rh)},
        {(void *)hdr, hlen},
        {(void *)body, blen},
        {(void *)zero, (8 - ((hlen + blen) & 7)) & 7},
    };

    if (hlen + blen > (128u << 20)) {
        xmig__seterr(e->x, E2BIG, "record %#x too large", type);
        return -1;
    }
    return xmig__engine_write(e, iov, 4);
}

int xmig__engine_record(struct engine *e, uint32_t type, const void *body,
                        size_t len)
{
    return xmig__engine_record2(e, type, body, len, NULL, 0);
}

/*
 * A PV page table caught mid-update: sent again once the guest is still.
 * Its entry now: in a whole run of the first pass it stays, allocated only
 * (send_pages), else it is left out.
 */
uint32_t xmig__engine_defer(struct engine *e, xmig_pfn_t pfn, bool whole)
{
    if (!bit_test(e->deferred, pfn)) {
        bit_set(e->deferred, pfn);
        e->nr_deferred++;
    }
    if (whole && e->owed) {
        bit_set(e->owed, pfn);
        return PFINFO_XALLOC;
    }
    return PFINFO_XTAB;
}

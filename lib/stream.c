/* SPDX-License-Identifier: LGPL-2.1-only */
/* The xl and libxl framing around the libxc stream.  See stream.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

void xmig_buf_init(struct xmig_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void xmig_buf_dispose(struct xmig_buf *b)
{
    if (!b)
        return;
    free(b->p);
    xmig_buf_init(b);
}

int xmig_buf_put(struct xmig_buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        uint8_t *p;

        while (cap < b->len + len)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

int xmig_buf_put_le32(struct xmig_buf *b, uint32_t v)
{
    uint8_t x[4] = {v, v >> 8, v >> 16, v >> 24};

    return xmig_buf_put(b, x, 4);
}

int xmig_buf_put_be32(struct xmig_buf *b, uint32_t v)
{
    uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};

    return xmig_buf_put(b, x, 4);
}

int xmig_buf_put_be64(struct xmig_buf *b, uint64_t v)
{
    if (xmig_buf_put_be32(b, (uint32_t)(v >> 32)) < 0)
        return -1;
    return xmig_buf_put_be32(b, (uint32_t)v);
}

int xmig_stream_xl_header(struct xmig_buf *b, const char *json)
{
    size_t clen = strlen(json) + 1;

    if (clen > 0x7fffffff - 4) {
        errno = E2BIG;
        return -1;
    }
    /* xl writes the header in host order and says so with byteorder. */
    if (xmig_buf_put(b, XL_MAGIC, XL_MAGIC_LEN) < 0 ||
        xmig_buf_put_le32(b, XL_BYTEORDER) < 0 ||
        xmig_buf_put_le32(b, XL_MANDATORY_FLAG_JSON |
                                 XL_MANDATORY_FLAG_STREAMv2) < 0 ||
        xmig_buf_put_le32(b, 0) < 0 ||
        xmig_buf_put_le32(b, (uint32_t)(4 + clen)) < 0 ||
        xmig_buf_put_le32(b, (uint32_t)clen) < 0 ||
        xmig_buf_put(b, json, clen) < 0)
        return -1;
    return 0;
}

int xmig_stream_libxl_header(struct xmig_buf *b)
{
    /* Big-endian, as the spec says; options 0 = little-endian records. */
    if (xmig_buf_put_be64(b, LIBXL_STREAM_IDENT) < 0 ||
        xmig_buf_put_be32(b, LIBXL_STREAM_VERSION) < 0 ||
        xmig_buf_put_be32(b, 0) < 0)
        return -1;
    return 0;
}

int xmig_stream_libxl_record(struct xmig_buf *b, uint32_t type,
                             const void *body, uint32_t len)
{
    static const uint8_t zero[8];

    /*
     * Padding counts from the record's start: the xl header before the
     * libxl stream has no particular alignment.
     */
    if (xmig_buf_put_le32(b, type) < 0 || xmig_buf_put_le32(b, len) < 0 ||
        xmig_buf_put(b, body, len) < 0)
        return -1;
    return xmig_buf_put(b, zero, (8 - (len & 7)) & 7);
}

int xmig_stream_libxl_emulator(struct xmig_buf *b, uint32_t type,
                               const void *body, uint32_t len)
{
    static const uint8_t zero[8];
    uint32_t total = len + 8;

    if (len > UINT32_MAX - 8)
        return -1;
    if (xmig_buf_put_le32(b, type) < 0 || xmig_buf_put_le32(b, total) < 0 ||
        xmig_buf_put_le32(b, LIBXL_EMULATOR_QEMU_UPSTREAM) < 0 ||
        xmig_buf_put_le32(b, 0) < 0 || xmig_buf_put(b, body, len) < 0)
        return -1;
    return xmig_buf_put(b, zero, (8 - (total & 7)) & 7);
}

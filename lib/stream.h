/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Encoders for the framing a stock Xen 4.17 receiver reads: the xl
 * save-file header, the libxl v2 stream and the xl migrate handshake
 * messages.  Pure functions into a growable buffer: no I/O of their own.
 */
#ifndef XMIG_STREAM_H
#define XMIG_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct xmig_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
};

void xmig_buf_init(struct xmig_buf *b);
void xmig_buf_dispose(struct xmig_buf *b);
int xmig_buf_put(struct xmig_buf *b, const void *data, size_t len);
int xmig_buf_put_le32(struct xmig_buf *b, uint32_t v);
int xmig_buf_put_be32(struct xmig_buf *b, uint32_t v);
int xmig_buf_put_be64(struct xmig_buf *b, uint64_t v);

/* tools/xl/xl.h */
#define XL_MAGIC "Xen saved domain, xl format\n \0 \r"
#define XL_MAGIC_LEN 32
#define XL_BYTEORDER 0x01020304u
#define XL_MANDATORY_FLAG_JSON (1u << 0)
#define XL_MANDATORY_FLAG_STREAMv2 (1u << 1)

/* tools/xl/xl.h: the handshake strings, NULs counted where xl sends them. */
#define XL_MIG_BANNER "xl migration receiver ready, send binary domain data.\n"
#define XL_MIG_BANNER_LEN (sizeof(XL_MIG_BANNER) - 1)
#define XL_MIG_READY "domain received, ready to unpause"
#define XL_MIG_READY_LEN sizeof(XL_MIG_READY)
#define XL_MIG_GO "domain is yours, you are cleared to unpause"
#define XL_MIG_GO_LEN sizeof(XL_MIG_GO)
#define XL_MIG_REPORT "my copy unpause results are as follows"
#define XL_MIG_REPORT_LEN sizeof(XL_MIG_REPORT)

/* libxl_sr_stream_format.h */
#define LIBXL_STREAM_IDENT 0x4c6962786c466d74ULL /* "LibxlFmt" */
#define LIBXL_STREAM_VERSION 2
#define LIBXL_REC_END 0
#define LIBXL_REC_LIBXC_CONTEXT 1
#define LIBXL_REC_EMULATOR_XENSTORE_DATA 2
#define LIBXL_REC_EMULATOR_CONTEXT 3
/* libxl__sr_emulator_hdr.id: the device model of an HVM guest */
#define LIBXL_EMULATOR_QEMU_UPSTREAM 2

/* The xl header carrying the domain's JSON configuration (NUL included). */
int xmig_stream_xl_header(struct xmig_buf *b, const char *json);
/* The 16-byte libxl stream header. */
int xmig_stream_libxl_header(struct xmig_buf *b);
/* A libxl record: type, length, body, zero padding to 8 bytes. */
int xmig_stream_libxl_record(struct xmig_buf *b, uint32_t type,
                             const void *body, uint32_t len);
/*
 * An EMULATOR_* record of QEMU upstream (index 0): the emulator
 * sub-header, then body; len + 8 must fit the record's length.
 */
int xmig_stream_libxl_emulator(struct xmig_buf *b, uint32_t type,
                               const void *body, uint32_t len);

#endif

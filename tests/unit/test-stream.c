/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The framing against hand-checked bytes, and whole jobs against receivers
 * that behave and misbehave, with the test double standing in for Xen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "receiver.h"
#include "stream.h"
#include "test.h"
#include "xen-double.h"

static void test_xl_header(void)
{
    static const uint8_t want[] = {
        'X', 'e', 'n', ' ', 's', 'a',  'v', 'e', 'd', ' ',  'd',
        'o', 'm', 'a', 'i', 'n', ',',  ' ', 'x', 'l', ' ',  'f',
        'o', 'r', 'm', 'a', 't', '\n', ' ', 0,   ' ', '\r', /* magic, 32 bytes
                                                               with its NULs */
        4,   3,   2,   1, /* byteorder 0x01020304, little-endian */
        3,   0,   0,   0, /* mandatory: JSON | STREAMv2 */
        0,   0,   0,   0, /* optional flags */
        7,   0,   0,   0, /* optional data: 4 + config_len */
        3,   0,   0,   0, /* config_len, NUL included */
        '{', '}', 0,
    };
    struct xmig_buf b;

    xmig_buf_init(&b);
    ASSERT_INT_EQ(xmig_stream_xl_header(&b, "{}"), 0);
    ASSERT_U64_EQ(b.len, sizeof(want));
    ASSERT_TRUE(b.len == sizeof(want) && memcmp(b.p, want, b.len) == 0);
    xmig_buf_dispose(&b);
    xmig_buf_dispose(&b);
}

static void test_libxl(void)
{
    static const uint8_t want[] = {
        'L', 'i', 'b', 'x', 'l', 'F', 'm', 't', /* ident, big-endian */
        0,   0,   0,   2,                       /* version 2 */
        0,   0,   0,   0,                       /* options */
        1,   0,   0,   0,   0,   0,   0,   0,   /* LIBXC_CONTEXT, empty */
        3,   0,   0,   0,   11,  0,   0,   0,   /* EMULATOR_CONTEXT, 11 */
        'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
        'i', 'j', 'k', 0,   0,   0,   0,   0, /* padding to 8 */
        0,   0,   0,   0,   0,   0,   0,   0, /* END */
    };
    struct xmig_buf b;

    xmig_buf_init(&b);
    ASSERT_INT_EQ(xmig_stream_libxl_header(&b), 0);
    ASSERT_INT_EQ(
        xmig_stream_libxl_record(&b, LIBXL_REC_LIBXC_CONTEXT, NULL, 0), 0);
    ASSERT_INT_EQ(xmig_stream_libxl_record(&b, LIBXL_REC_EMULATOR_CONTEXT,
                                           "abcdefghijk", 11),
                  0);
    ASSERT_INT_EQ(xmig_stream_libxl_record(&b, LIBXL_REC_END, NULL, 0), 0);
    ASSERT_U64_EQ(b.len, sizeof(want));
    ASSERT_TRUE(b.len == sizeof(want) && memcmp(b.p, want, b.len) == 0);
    xmig_buf_dispose(&b);
}

static void test_handshake_strings(void)
{
    /* tools/xl/xl.h: the banner has no NUL, the others carry theirs. */
    ASSERT_U64_EQ(XL_MIG_BANNER_LEN, 54);
    ASSERT_U64_EQ(XL_MIG_READY_LEN, 34);
    ASSERT_U64_EQ(XL_MIG_GO_LEN, 44);
    ASSERT_U64_EQ(XL_MIG_REPORT_LEN, 39);
}

/* ---- receivers ---- */

enum rx_mode {
    RX_OK,
    RX_CLOSE_AT_ONCE,
    RX_DIE_MID_STREAM,
    RX_REJECT,
    RX_STATUS_FAIL,   /* as xl: destroys its copy, grants permission */
    RX_FAIL_NO_GRANT, /* reports a failure, then dies without permission */
    RX_DIE_AFTER_GO,  /* reads the go-ahead, then dies without a report */
    RX_STALL,
};

struct rx {
    enum rx_mode mode;
    bool framing_ok;
    unsigned int emulator; /* EMULATOR_* records */
    bool got_go;
    struct receiver r;
};

static bool rd(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t r = read(fd, p, len);

        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
    }
    return true;
}

static bool wr(int fd, const void *buf, size_t len)
{
    return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len;
}

static void rx_serve(int fd, void *arg)
{
    static const uint8_t zero8[8], ctx_rec[8] = {1};
    struct rx *rx = arg;
    uint8_t hdr[48], buf[512], status;
    uint32_t optlen;

    if (rx->mode == RX_CLOSE_AT_ONCE)
        return;
    if (!wr(fd, XL_MIG_BANNER, XL_MIG_BANNER_LEN) || !rd(fd, hdr, sizeof(hdr)))
        return;
    memcpy(&optlen, hdr + 44, 4);
    if (memcmp(hdr, XL_MAGIC, XL_MAGIC_LEN) != 0 || optlen > sizeof(buf) ||
        !rd(fd, buf, optlen))
        return;
    if (rx->mode == RX_DIE_MID_STREAM)
        return;
    if (!rd(fd, buf, 16) || memcmp(buf, "LibxlFmt\0\0\0\2\0\0\0\0", 16) != 0 ||
        !rd(fd, buf, 8) || memcmp(buf, ctx_rec, 8) != 0 || !rd(fd, buf, 8) ||
        memcmp(buf, zero8, 8) != 0) /* libxc END */
        return;
    /* An HVM guest's EMULATOR records, then libxl's END. */
    for (;;) {
        uint32_t type, len;

        if (!rd(fd, buf, 8))
            return;
        memcpy(&type, buf, 4);
        memcpy(&len, buf + 4, 4);
        if (type == 0 && len == 0)
            break;
        len = (len + 7) & ~7u;
        if ((type != 2 && type != 3) || len > sizeof(buf) || !rd(fd, buf, len))
            return;
        rx->emulator++;
    }
    rx->framing_ok = true;
    if (rx->mode == RX_REJECT)
        return;
    if (rx->mode == RX_STALL) {
        /* Never answers; waits for the sender to hang up. */
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
        return;
    }
    if (!wr(fd, XL_MIG_READY, XL_MIG_READY_LEN) ||
        !rd(fd, buf, XL_MIG_GO_LEN) ||
        memcmp(buf, XL_MIG_GO, XL_MIG_GO_LEN) != 0)
        return;
    rx->got_go = true;
    if (rx->mode == RX_DIE_AFTER_GO)
        return;
    status = rx->mode == RX_OK ? 0 : 3;
    wr(fd, XL_MIG_REPORT, XL_MIG_REPORT_LEN);
    wr(fd, &status, 1);
    if (rx->mode == RX_STATUS_FAIL)
        wr(fd, XL_MIG_GO, XL_MIG_GO_LEN); /* permission to resume */
}

static void rx_start(struct rx *rx, enum rx_mode mode)
{
    memset(rx, 0, sizeof(*rx));
    rx->mode = mode;
    receiver_start(&rx->r, rx_serve, rx);
}

static xmig_xen *pv_guest(void)
{
    struct dbl_config c = {.type = XMIG_DOM_PV, .domid = 9, .nr_pfns = 2048};

    return dbl_open(&c);
}

/* A migration of the double's guest to dest; cancel may be NULL. */
static void migrate_params(struct xmig_job_params *p, const char *dest,
                           xmig_cancel *cancel)
{
    xmig_job_params_default(p);
    p->engine = XMIG_ENGINE_LIBXC; /* the double's stand-in: see xen-double.c */
    p->kind = XMIG_JOB_MIGRATE;
    p->domain = "guest";
    p->dest = dest;
    p->cancel = cancel;
}

static int migrate(xmig_xen *x, const char *dest, struct xmig_job_result *r,
                   const struct xmig_policy *pol)
{
    struct xmig_job_params p;

    migrate_params(&p, dest, NULL);
    if (pol)
        p.policy = *pol;
    return xmig_job_run(x, &p, r);
}

/* After a failure: running here, unsuspended, original name, log-dirty off. */
static void assert_left_running(xmig_xen *x, const struct xmig_job_result *r)
{
    struct dbl_guest *g = dbl_guest(x);

    ASSERT_TRUE(!g->suspended);
    ASSERT_TRUE(!g->destroyed);
    ASSERT_TRUE(!g->logdirty);
    ASSERT_TRUE(strcmp(g->name, "guest") == 0);
    ASSERT_INT_EQ(g->suspends, g->resumes);
    ASSERT_INT_EQ(r->guest, XMIG_GUEST_SOURCE);
    ASSERT_TRUE(!r->away_name[0]);
}

static void test_migrate_ok(void)
{
    xmig_xen *x = pv_guest();
    struct xmig_job_result r;
    struct dbl_guest *g = dbl_guest(x);
    struct rx rx;

    rx_start(&rx, RX_OK);
    ASSERT_INT_EQ(migrate(x, rx.r.dest, &r, NULL), 0);
    receiver_stop(&rx.r);
    ASSERT_TRUE(rx.framing_ok && rx.got_go);
    ASSERT_TRUE(g->destroyed);
    ASSERT_TRUE(strcmp(g->name, "guest--migratedaway") == 0);
    ASSERT_INT_EQ(g->suspends, 1);
    ASSERT_INT_EQ(g->resumes, 0);
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_DESTINATION);
    /* 1000, 300, then 40 <= 50 stops: three live passes and the final one. */
    ASSERT_INT_EQ(r.passes, 4);
    ASSERT_U64_EQ(r.pages_sent, 1340);
    xmig_xen_close(x);
}

static void test_migrate_fails(enum rx_mode mode, const char *pattern)
{
    xmig_xen *x = pv_guest();
    struct xmig_job_result r;
    struct rx rx;

    rx_start(&rx, mode);
    ASSERT_INT_EQ(migrate(x, rx.r.dest, &r, NULL), -1);
    receiver_stop(&rx.r);
    if (!strstr(xmig_xen_error(x), pattern))
        TEST_FAIL("error '%s' lacks '%s'", xmig_xen_error(x), pattern);
    assert_left_running(x, &r);
    xmig_xen_close(x);
}

/*
 * HVM: once suspended, QEMU saves its state live and lets go of its disks
 * for the receiver's QEMU; a receiver that fails gets them back to the
 * source (the resume), with no stale state file and no logging left.
 */
static void test_migrate_hvm(enum rx_mode mode)
{
    struct dbl_config c = {.type = XMIG_DOM_HVM, .domid = 9, .nr_pfns = 2048};
    xmig_xen *x = dbl_open(&c);
    struct dbl_guest *g = dbl_guest(x);
    struct xmig_job_result r;
    struct rx rx;

    rx_start(&rx, mode);
    ASSERT_INT_EQ(migrate(x, rx.r.dest, &r, NULL), mode == RX_OK ? 0 : -1);
    receiver_stop(&rx.r);
    ASSERT_INT_EQ(g->dm_releases, 1);
    ASSERT_TRUE(!g->dm_logdirty);
    ASSERT_INT_EQ(g->dm_logdirty_calls, 2);
    if (mode == RX_OK) {
        ASSERT_TRUE(rx.framing_ok && g->destroyed);
        ASSERT_INT_EQ(rx.emulator, 2);
        ASSERT_INT_EQ(g->dm_states, 1);
        ASSERT_INT_EQ(r.guest, XMIG_GUEST_DESTINATION);
    } else {
        assert_left_running(x, &r);
        ASSERT_TRUE(!g->dm_saved);
        ASSERT_TRUE(g->dm_discards >= 2); /* before the suspend, after resume */
    }
    xmig_xen_close(x);
}

/*
 * After the go-ahead without a verdict, or a failure without permission to
 * resume: xl 4.17 leaves the source suspended and renamed; so must we.
 */
static void test_state_unknown(enum rx_mode mode)
{
    xmig_xen *x = pv_guest();
    struct dbl_guest *g = dbl_guest(x);
    struct xmig_job_result r;
    struct rx rx;

    rx_start(&rx, mode);
    ASSERT_INT_EQ(migrate(x, rx.r.dest, &r, NULL), -1);
    ASSERT_INT_EQ(errno, EPROTO);
    receiver_stop(&rx.r);
    ASSERT_TRUE(rx.got_go);
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_UNKNOWN);
    ASSERT_TRUE(strcmp(xmig_guest_where(r.guest), "unknown") == 0);
    ASSERT_TRUE(strcmp(r.away_name, "guest--migratedaway") == 0);
    ASSERT_TRUE(g->suspended && !g->destroyed);
    ASSERT_INT_EQ(g->resumes, 0);
    ASSERT_TRUE(strcmp(g->name, "guest--migratedaway") == 0);
    ASSERT_TRUE(!g->logdirty);
    /* Both names, for the admin who must check both hosts. */
    if (!strstr(xmig_xen_error(x), "'guest--migratedaway'") ||
        !strstr(xmig_xen_error(x), "as 'guest'") ||
        !strstr(xmig_xen_error(x), "unknown"))
        TEST_FAIL("error '%s' lacks the state and both names",
                  xmig_xen_error(x));
    xmig_xen_close(x);
}

/* Permission granted, but the name cannot come back: said, and resumed. */
static void test_rename_back_fails(void)
{
    xmig_xen *x = pv_guest();
    struct dbl_guest *g = dbl_guest(x);
    struct xmig_job_result r;
    struct rx rx;

    g->refuse_rename_back = true;
    rx_start(&rx, RX_STATUS_FAIL);
    ASSERT_INT_EQ(migrate(x, rx.r.dest, &r, NULL), -1);
    receiver_stop(&rx.r);
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_SOURCE);
    ASSERT_TRUE(strcmp(r.away_name, "guest--migratedaway") == 0);
    ASSERT_TRUE(!g->suspended && !g->destroyed);
    ASSERT_INT_EQ(g->resumes, 1);
    if (!strstr(xmig_xen_error(x), "could not unpause") ||
        !strstr(xmig_xen_error(x), "runs as 'guest--migratedaway'"))
        TEST_FAIL("error '%s' hides the failed rename", xmig_xen_error(x));
    xmig_xen_close(x);
}

static void test_exec_receiver_exits(void)
{
    xmig_xen *x = pv_guest();
    struct xmig_job_result r;

    ASSERT_INT_EQ(migrate(x, "exec:exit 0", &r, NULL), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "banner") != NULL);
    assert_left_running(x, &r);
    ASSERT_INT_EQ(dbl_guest(x)->suspends, 0);
    ASSERT_INT_EQ(migrate(x, "nowhere", &r, NULL), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "bad destination") != NULL);
    ASSERT_INT_EQ(migrate(x, "ssh://a;rm -rf /", &r, NULL), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "bad destination") != NULL);
    xmig_xen_close(x);
}

static void test_abort_if_busy(void)
{
    struct xmig_policy pol = {
        .max_iters = 1, .target_dirty = 10, .abort_if_busy = true};
    xmig_xen *x = pv_guest();
    struct xmig_job_result r;
    struct rx rx;

    rx_start(&rx, RX_DIE_MID_STREAM);
    ASSERT_INT_EQ(migrate(x, rx.r.dest, &r, &pol), -1);
    receiver_stop(&rx.r);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "did not converge") != NULL);
    assert_left_running(x, &r);
    ASSERT_INT_EQ(dbl_guest(x)->suspends, 0);
    xmig_xen_close(x);
}

/*
 * A receiver that takes the whole stream and never says 'ready': after the
 * job's 'ready' timeout, the guest runs here again (no go-ahead went out).
 * Out-of-range timeouts are refused before the guest is touched.
 */
static void test_ready_timeout(void)
{
    struct xmig_job_params p;
    struct xmig_job_result r;
    xmig_xen *x = pv_guest();
    struct dbl_guest *g = dbl_guest(x);
    uint64_t t0, ns;
    struct rx rx;

    xmig_job_params_default(&p);
    ASSERT_INT_EQ(p.ready_timeout_s, 600);
    p.engine = XMIG_ENGINE_LIBXC;
    p.domain = "guest";
    p.ready_timeout_s = XMIG_READY_TIMEOUT_MAX + 1;
    p.dest = "exec:exit 0";
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_INT_EQ(errno, EINVAL);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "from 1 to 86400 s") != NULL);
    ASSERT_INT_EQ(g->suspends, 0);

    rx_start(&rx, RX_STALL);
    p.dest = rx.r.dest;
    p.ready_timeout_s = 1;
    t0 = xmig_now_ns();
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ns = xmig_now_ns() - t0;
    ASSERT_INT_EQ(errno, ETIMEDOUT);
    receiver_stop(&rx.r);
    ASSERT_TRUE(rx.framing_ok && !rx.got_go);
    if (ns < 1000000000ULL || ns > 5000000000ULL)
        TEST_FAIL("the job took %.1f s with a 1 s 'ready' timeout", ns / 1e9);
    if (!strstr(xmig_xen_error(x), "'ready' within 1 s") ||
        !strstr(xmig_xen_error(x), "domain 9 runs here"))
        TEST_FAIL("error '%s' lacks the timeout or where the guest runs",
                  xmig_xen_error(x));
    assert_left_running(x, &r);
    ASSERT_INT_EQ(g->suspends, 1);
    ASSERT_TRUE(strcmp(xmig_guest_where(r.guest), "source") == 0);
    xmig_xen_close(x);
}

struct canceller {
    xmig_cancel *c;
    unsigned int ms;
    /*
     * With x: first wait (30 s at most) until a worker process has mapped
     * more than maps times in all, so that the cancel finds the worker at
     * work however slowly a loaded machine started it.
     */
    xmig_xen *x;
    uint64_t maps;
    /* With file: first wait (30 s at most) until it holds lines lines. */
    const char *file;
    int lines;
};

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "re");
    int n = 0, ch;

    while (f && (ch = getc(f)) != EOF)
        n += ch == '\n';
    if (f)
        fclose(f);
    return n;
}

static void *cancel_later(void *arg)
{
    struct canceller *cl = arg;
    struct dbl_stats ds;
    int waited;

    for (waited = 0; cl->x && waited < 3000; waited++) {
        dbl_get_stats(cl->x, &ds);
        if (ds.worker_maps > cl->maps)
            break;
        usleep(10000);
    }
    for (waited = 0; cl->file && waited < 3000; waited++) {
        if (count_lines(cl->file) >= cl->lines)
            break;
        usleep(10000);
    }
    usleep(cl->ms * 1000);
    xmig_cancel_request(cl->c);
    return NULL;
}

static void test_cancel(void)
{
    struct xmig_job_params p;
    struct xmig_job_result r;
    struct canceller cl = {.ms = 300};
    xmig_xen *x = pv_guest();
    pthread_t th;
    uint64_t t0;
    struct rx rx;

    /* Cancelled before it starts: nothing happens at all. */
    cl.c = xmig_cancel_new();
    xmig_cancel_request(cl.c);
    xmig_job_params_default(&p);
    p.engine = XMIG_ENGINE_LIBXC;
    p.domain = "guest";
    p.dest = "exec:exit 0";
    p.cancel = cl.c;
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "cancelled") != NULL);
    ASSERT_INT_EQ(dbl_guest(x)->suspends, 0);
    xmig_cancel_free(cl.c);

    /* Cancelled while the receiver keeps it waiting for 'ready'. */
    cl.c = xmig_cancel_new();
    rx_start(&rx, RX_STALL);
    p.dest = rx.r.dest;
    p.cancel = cl.c;
    pthread_create(&th, NULL, cancel_later, &cl);
    t0 = xmig_now_ns();
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_TRUE(xmig_now_ns() - t0 < 5000000000ULL);
    pthread_join(th, NULL);
    receiver_stop(&rx.r);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "cancelled") != NULL);
    assert_left_running(x, &r);
    ASSERT_INT_EQ(dbl_guest(x)->suspends, 1);
    xmig_cancel_free(cl.c);
    xmig_cancel_free(NULL);
    xmig_xen_close(x);
}

static void test_save(bool keep)
{
    char path[] = "/tmp/xmig-test-save-XXXXXX";
    struct xmig_job_params p;
    struct xmig_job_result r;
    xmig_xen *x = pv_guest();
    struct stat st;
    int fd = mkstemp(path);

    close(fd);
    xmig_job_params_default(&p);
    p.engine = XMIG_ENGINE_LIBXC;
    p.kind = XMIG_JOB_SAVE;
    p.domain = "9";
    p.dest = path;
    p.live = false;
    p.keep = keep;
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), 0);
    /* 48 + 4 + config, libxl header, LIBXC_CONTEXT, libxc END, libxl END */
    ASSERT_INT_EQ(stat(path, &st), 0);
    ASSERT_U64_EQ(st.st_size, 48 + 4 +
                                  strlen("{\"c_info\":{\"name\":\"guest\"}}") +
                                  1 + 16 + 8 + 8 + 8);
    ASSERT_TRUE(dbl_guest(x)->destroyed == !keep);
    ASSERT_INT_EQ(dbl_guest(x)->resumes, keep ? 1 : 0);
    unlink(path);

    /* An unwritable file: nothing is touched. */
    p.dest = "/nonexistent-dir/xmig.save";
    if (!keep) {
        xmig_xen_close(x);
        x = pv_guest();
    }
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "cannot write") != NULL);
    ASSERT_TRUE(!dbl_guest(x)->suspended && !dbl_guest(x)->destroyed);
    p.domain = "nosuch";
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "not found") != NULL);

    /* --keep, and the guest will not resume: a failure that says why. */
    if (keep) {
        char kept[] = "/tmp/xmig-test-save-XXXXXX";

        fd = mkstemp(kept);
        close(fd);
        p.domain = "9";
        p.dest = kept;
        dbl_guest(x)->refuse_resume = true;
        ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
        ASSERT_TRUE(strstr(xmig_xen_error(x), "resume refused") != NULL);
        ASSERT_INT_EQ(r.guest, XMIG_GUEST_SOURCE);
        ASSERT_TRUE(dbl_guest(x)->suspended && !dbl_guest(x)->destroyed);
        unlink(kept);
    }
    xmig_xen_close(x);
}

/*
 * On tmpfs an image's pages are allocated ahead of its writes, and what it
 * did not use is given back when it takes its place.
 */
static void test_save_reserve(void)
{
    char path[] = "/dev/shm/xmig-test-reserve-XXXXXX";
    struct xmig__savefile f;
    xmig_xen *x = pv_guest();
    struct stat st;
    int fd = mkstemp(path), i;

    close(fd);
    unlink(path);
    if (stat("/dev/shm", &st) < 0) {
        TEST_FAIL("%s", "no /dev/shm: the test needs a tmpfs");
        return;
    }
    ASSERT_INT_EQ(xmig__save_open(x, path, &f), 0);
    ASSERT_TRUE(f.tmpfs);
    xmig__save_reserve(&f, 1 << 20);
    for (i = 0; i < 500 && atomic_load(&f.reserved) < 1 << 20; i++)
        usleep(10000);
    ASSERT_INT_EQ(fstat(f.fd, &st), 0);
    ASSERT_INT_EQ(st.st_size, 0);
    if (st.st_blocks * 512 < 1 << 20)
        TEST_FAIL("%lld bytes allocated, not 1 MiB",
                  (long long)st.st_blocks * 512);
    ASSERT_INT_EQ(write(f.fd, "0123456789", 10), 10);
    ASSERT_INT_EQ(xmig__save_commit(x, &f), 0);
    xmig__save_close(&f);
    ASSERT_INT_EQ(stat(path, &st), 0);
    ASSERT_INT_EQ(st.st_size, 10);
    if (st.st_blocks * 512 > 4096)
        TEST_FAIL("%lld bytes still allocated for 10",
                  (long long)st.st_blocks * 512);
    unlink(path);
    xmig_xen_close(x);
}

static int save_to(xmig_xen *x, const char *path, struct xmig_job_result *r)
{
    struct xmig_job_params p;

    xmig_job_params_default(&p);
    p.engine = XMIG_ENGINE_LIBXC;
    p.kind = XMIG_JOB_SAVE;
    p.domain = "guest";
    p.dest = path;
    p.live = false;
    return xmig_job_run(x, &p, r);
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ASSERT_TRUE(f != NULL);
    fputs(text, f);
    fclose(f);
}

static bool file_is(const char *path, const char *text)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    return strcmp(buf, text) == 0;
}

/* Entries in dir besides . and .., so that a leftover temp file shows. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    ASSERT_TRUE(d != NULL);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

struct fifo {
    char path[128];
    size_t total;
};

static void *fifo_reader(void *arg)
{
    struct fifo *f = arg;
    char buf[4096];
    int fd = open(f->path, O_RDONLY);
    ssize_t n;

    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
        f->total += (size_t)n;
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* A save into the FIFO while a thread reads it. */
static int save_fifo(xmig_xen *x, struct fifo *f, struct xmig_job_result *r)
{
    pthread_t th;
    int rc;

    f->total = 0;
    pthread_create(&th, NULL, fifo_reader, f);
    /* Until the reader has opened its end, there is nobody to write to. */
    while ((rc = save_to(x, f->path, r)) < 0 &&
           strstr(xmig_xen_error(x), "no process reads"))
        usleep(10000);
    pthread_join(th, NULL);
    return rc;
}

/*
 * A save never removes what it did not create: an older image survives a
 * failed save, a FIFO or a device stays, a finished image stays even when
 * the guest cannot be destroyed.
 */
static void test_save_files(void)
{
    char dir[] = "/tmp/xmig-test-files-XXXXXX", path[128], link[160];
    struct fifo rd = {0};
    unsigned int suspends;
    struct xmig_job_result r;
    struct rlimit small = {32, RLIM_INFINITY}, old;
    xmig_xen *x = pv_guest();
    struct dbl_guest *g = dbl_guest(x);
    struct stat st;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/img", dir);

    /* A failed save over an older image: the older image stays. */
    put_file(path, "OLD");
    g->refuse_suspend = true;
    ASSERT_INT_EQ(save_to(x, path, &r), -1);
    ASSERT_TRUE(file_is(path, "OLD"));
    ASSERT_INT_EQ(entries(dir), 1);
    g->refuse_suspend = false;

    /* The disk fills up (a file size limit stands in): the same. */
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    ASSERT_INT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    ASSERT_INT_EQ(save_to(x, path, &r), -1);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    ASSERT_TRUE(file_is(path, "OLD"));
    ASSERT_INT_EQ(entries(dir), 1);
    ASSERT_TRUE(!g->suspended && !g->destroyed);

    /* A save over it that succeeds replaces it, 0600, nothing left over. */
    ASSERT_INT_EQ(save_to(x, path, &r), 0);
    ASSERT_INT_EQ(stat(path, &st), 0);
    ASSERT_TRUE(st.st_size > 64);
    ASSERT_INT_EQ(st.st_mode & 0777, 0600);
    ASSERT_INT_EQ(entries(dir), 1);
    xmig_xen_close(x);

    /* A symbolic link is refused before the guest is touched. */
    x = pv_guest();
    g = dbl_guest(x);
    snprintf(link, sizeof(link), "%s/link", dir);
    ASSERT_INT_EQ(symlink(path, link), 0);
    ASSERT_INT_EQ(save_to(x, link, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "symbolic link") != NULL);
    ASSERT_INT_EQ(lstat(link, &st), 0);
    ASSERT_TRUE(S_ISLNK(st.st_mode));
    ASSERT_INT_EQ(g->suspends, 0);
    unlink(link);

    /* The guest cannot be destroyed: the finished image stays, and the
       guest runs on here. */
    unlink(path);
    g->refuse_destroy = true;
    ASSERT_INT_EQ(save_to(x, path, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "the image stays") != NULL);
    ASSERT_INT_EQ(stat(path, &st), 0);
    ASSERT_TRUE(st.st_size > 64);
    ASSERT_TRUE(!g->suspended && !g->destroyed);
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_SOURCE);
    g->refuse_destroy = false;
    unlink(path);

    /* A FIFO: a sink, written in place and never removed, even on
       failure; one that nobody reads is an error, not a hang. */
    snprintf(rd.path, sizeof(rd.path), "%s/fifo", dir);
    ASSERT_INT_EQ(mkfifo(rd.path, 0600), 0);
    suspends = g->suspends;
    ASSERT_INT_EQ(save_to(x, rd.path, &r), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "no process reads") != NULL);
    ASSERT_INT_EQ(g->suspends, suspends);
    g->refuse_suspend = true;
    ASSERT_INT_EQ(save_fifo(x, &rd, &r), -1);
    ASSERT_TRUE(!g->suspended && !g->destroyed);
    ASSERT_INT_EQ(lstat(rd.path, &st), 0);
    ASSERT_TRUE(S_ISFIFO(st.st_mode));
    g->refuse_suspend = false;
    ASSERT_INT_EQ(save_fifo(x, &rd, &r), 0);
    ASSERT_TRUE(g->destroyed);
    ASSERT_TRUE(rd.total > 64);
    ASSERT_INT_EQ(lstat(rd.path, &st), 0);
    ASSERT_TRUE(S_ISFIFO(st.st_mode));
    unlink(rd.path);
    xmig_xen_close(x);

    /* A device node (root only: mknod) survives a failed save. */
    snprintf(path, sizeof(path), "%s/null", dir);
    if (mknod(path, S_IFCHR | 0600, makedev(1, 3)) == 0) {
        x = pv_guest();
        dbl_guest(x)->refuse_suspend = true;
        ASSERT_INT_EQ(save_to(x, path, &r), -1);
        ASSERT_INT_EQ(lstat(path, &st), 0);
        ASSERT_TRUE(S_ISCHR(st.st_mode));
        unlink(path);
        xmig_xen_close(x);
    }
    ASSERT_INT_EQ(rmdir(dir), 0);
}

/* ---- destinations, inherited fds, receiver process groups ---- */

static char *slurp(const char *path)
{
    static char buf[8192];
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
    }
    buf[n > 0 ? n : 0] = 0;
    return fd >= 0 ? buf : NULL;
}

/*
 * ssh_command writes its arguments to a file instead of connecting: what
 * ssh would have been given, or (no file) that nothing was spawned.
 */
static void test_ssh_destinations(void)
{
    static const char *const bad[] = {
        "ssh://-oProxyCommand=x",
        "ssh://-F/x@h",
        "ssh://h:-1",
        "ssh://h:0",
        "ssh://h:65536",
        "ssh://u@-h",
        "ssh://-h",
        "ssh://h-:22",
        "ssh://h..x",
        "ssh://u@h:22x",
        "ssh://u@h:+22",
        "ssh://u@@h",
        "ssh://@h",
        "ssh://[::1",
        "ssh://[h]:22",
        "ssh://u v@h",
        "ssh://h$(id)",
        "tcp://-h:5",
        "tcp://h:0",
        "tcp://h:65536",
        "tcp://h:+5",
        "tcp://h:-5",
        "tcp://h",
        "tcp://u@h:5",
        "tcp://[::1]",
    };
    static const struct {
        const char *dest, *argv;
    } good[] = {
        {"ssh://u@h:2222", "-p 2222 -- u@h xl migrate-receive "},
        {"ssh://host-b.example.org", "-- host-b.example.org xl "
                                     "migrate-receive "},
        {"ssh://root@[fe80::1]:22", "-p 22 -- root@fe80::1 xl "
                                    "migrate-receive "},
        {"ssh://::1", "-- ::1 xl migrate-receive "},
        {"ssh://a_b.c-d@10.0.0.1:65535", "-p 65535 -- a_b.c-d@10.0.0.1 xl "
                                         "migrate-receive "},
    };
    char mark[] = "/tmp/xmig-test-ssh-XXXXXX", ssh[128], *got;
    struct xmig_job_params p;
    struct xmig_job_result r;
    xmig_xen *x = pv_guest();
    size_t i;
    int fd = mkstemp(mark);

    close(fd);
    unlink(mark);
    snprintf(ssh, sizeof(ssh), "printf '%%s ' >>%s", mark);
    xmig_job_params_default(&p);
    p.engine = XMIG_ENGINE_LIBXC;
    p.domain = "guest";
    p.ssh_command = ssh;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p.dest = bad[i];
        ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
        if (!strstr(xmig_xen_error(x), "bad destination"))
            TEST_FAIL("%s: '%s'", bad[i], xmig_xen_error(x));
        if (access(mark, F_OK) == 0) {
            TEST_FAIL("%s: spawned ssh with '%s'", bad[i], slurp(mark));
            unlink(mark);
        }
    }
    ASSERT_INT_EQ(dbl_guest(x)->suspends, 0);
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        p.dest = good[i].dest;
        ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
        got = slurp(mark);
        if (!got || strcmp(got, good[i].argv) != 0)
            TEST_FAIL("%s: ssh got '%s', want '%s'", good[i].dest,
                      got ? got : "(nothing)", good[i].argv);
        unlink(mark);
    }
    assert_left_running(x, &r);
    xmig_xen_close(x);
}

/* A receiver spawned while a tcp:// transport is open sees no socket. */
static void test_tcp_fd_not_inherited(void)
{
    char list[] = "/tmp/xmig-test-fds-XXXXXX", cmd[128], sock[64];
    struct xmig__transport tcp, ex;
    xmig_xen *x = pv_guest();
    struct stat st;
    struct rx rx;
    char *got;
    int fd = mkstemp(list);

    close(fd);
    rx_start(&rx, RX_STALL);
    ASSERT_INT_EQ(xmig__transport_open(x, rx.r.dest, NULL, &tcp), 0);
    ASSERT_INT_EQ(fstat(tcp.rfd, &st), 0);
    snprintf(sock, sizeof(sock), "socket:[%lu]", (unsigned long)st.st_ino);
    snprintf(cmd, sizeof(cmd), "exec:ls -l /proc/self/fd/ >%s", list);
    ASSERT_INT_EQ(xmig__transport_open(x, cmd, NULL, &ex), 0);
    xmig__transport_close(&ex);
    got = slurp(list);
    /* It did list: its stdin (a socketpair's end, or wherever make put it). */
    ASSERT_TRUE(got && strstr(got, " 0 -> ") != NULL);
    if (got && strstr(got, sock))
        TEST_FAIL("the receiver inherited %s:\n%s", sock, got);
    xmig__transport_close(&tcp);
    receiver_stop(&rx.r);
    unlink(list);
    xmig_xen_close(x);
}

/*
 * The exec transport's stream holds one engine record in flight (4 MiB),
 * or as much as wmem_max lets a process without CAP_NET_ADMIN have.  The
 * kernel reports twice what was set.
 */
static void test_exec_sndbuf(void)
{
    struct xmig__transport t;
    xmig_xen *x = pv_guest();
    long wmem_max = 0;
    int got = 0;
    socklen_t len = sizeof(got);
    FILE *f = fopen("/proc/sys/net/core/wmem_max", "r");

    ASSERT_TRUE(f && fscanf(f, "%ld", &wmem_max) == 1);
    fclose(f);
    ASSERT_INT_EQ(xmig__transport_open(x, "exec:cat >/dev/null", NULL, &t), 0);
    ASSERT_INT_EQ(getsockopt(t.wfd, SOL_SOCKET, SO_SNDBUF, &got, &len), 0);
    if (got < 2 * (wmem_max < (4 << 20) ? (int)wmem_max : 4 << 20))
        TEST_FAIL("send buffer %d bytes; wmem_max %ld", got, wmem_max);
    xmig__transport_close(&t);
    xmig_xen_close(x);
}

/*
 * Whether a busybox variant cannot run here.  tests/run-all installs
 * busybox and sets XMIG_TEST_NEED_BUSYBOX: there, no silent skip.
 */
static bool busybox_missing(bool busybox)
{
    if (!busybox || system("busybox sh -c : 2>/dev/null") == 0)
        return false;
    if (getenv("XMIG_TEST_NEED_BUSYBOX"))
        TEST_FAIL("%s", "no busybox (apt-get install busybox-static)");
    else
        printf("  skipped: no busybox (apt-get install busybox-static)\n");
    return true;
}

/*
 * Whether a process runs, or any of a group (-pgid).  Zombies do not count:
 * their parent went first, and init reaps them when it gets to it.
 */
static bool running(pid_t id)
{
    char path[300], buf[512], *p, state;
    struct dirent *d;
    bool found = false;
    long pgrp;
    DIR *dir = opendir("/proc");
    int fd;
    ssize_t n;

    while (dir && !found && (d = readdir(dir))) {
        if (d->d_name[0] < '1' || d->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %c %*d %ld", &state, &pgrp) != 2 ||
            state == 'Z')
            continue;
        found = id < 0 ? pgrp == -id : atol(buf) == id;
    }
    if (dir)
        closedir(dir);
    return found;
}

/*
 * The receiver command starts in a process group of its own, with every
 * signal at its default action and none blocked, whatever the sender
 * ignores or blocks: an inherited SIG_IGN of SIGTERM would make it deaf to
 * a cancel.  The command records its pid and group, then what it
 * inherited (exec keeps ignored signals and the mask).
 */
static void test_exec_signals(void)
{
    char f[] = "/tmp/xmig-test-sig-XXXXXX", cmd[512], *got, *q;
    struct xmig__transport t;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_term, old_pipe;
    sigset_t usr1, old_mask;
    long pid = 0, pg = -1;
    xmig_xen *x = pv_guest();
    int fd = mkstemp(f);

    close(fd);
    snprintf(cmd, sizeof(cmd),
             "exec:echo $$ $(cut -d' ' -f5 /proc/$$/stat) >%s; "
             "exec grep -E '^Sig(Ign|Blk)' /proc/self/status >>%s",
             f, f);
    sigaction(SIGTERM, &ign, &old_term);
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
    ASSERT_INT_EQ(xmig__transport_open(x, cmd, NULL, &t), 0);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    waitpid(t.pid, NULL, 0);
    t.pid = -1;
    xmig__transport_close(&t);
    got = slurp(f);
    ASSERT_TRUE(got && sscanf(got, "%ld %ld", &pid, &pg) == 2);
    ASSERT_TRUE(pid > 0 && pid == pg);
    /* Signals 1-31.  glibc's posix_spawn leaves its own two (32 and 33,
       for threads) ignored; a program of glibc's installs them anew. */
    q = got ? strstr(got, "SigIgn:\t") : NULL;
    ASSERT_TRUE(q && (strtoull(q + 8, NULL, 16) & 0x7fffffffULL) == 0);
    q = got ? strstr(got, "SigBlk:\t") : NULL;
    ASSERT_TRUE(q && (strtoull(q + 8, NULL, 16) & 0x7fffffffULL) == 0);
    if (test_cur_failed && got)
        printf("  the receiver had: %s", got);
    unlink(f);
    xmig_xen_close(x);
}

/*
 * An exec: receiver whose shell waits for a child that holds our pipe and
 * never reads: a write blocks until cancel ends every process of the group.
 * busybox: the receiver's script runs in `busybox sh` under /bin/sh, as the
 * testbed's dom0 would run it; dash is Debian's /bin/sh.
 */
static void test_cancel_group(bool busybox)
{
    static const char script[] =
        "printf 'xl migration receiver ready, send binary domain data.\\n'; "
        "sh -c 'echo \\$\\$ >%s; exec sleep 8'; :";
    char pidf[] = "/tmp/xmig-test-pid-XXXXXX", inner[256], cmd[512];
    static uint8_t chunk[1 << 20];
    struct canceller cl = {.ms = 300};
    struct xmig__transport t;
    xmig_xen *x;
    uint64_t t0, took;
    pid_t pg, holder;
    pthread_t th;
    int fd, i, rc = 0;
    char *got, *q;

    if (busybox_missing(busybox))
        return;
    fd = mkstemp(pidf);
    close(fd);
    x = pv_guest();
    snprintf(inner, sizeof(inner), script, pidf);
    if (busybox) {
        snprintf(cmd, sizeof(cmd), "exec:busybox sh -c \"%s\"", inner);
    } else {
        /* Here the outer shell runs the script itself: unescape the $. */
        snprintf(cmd, sizeof(cmd), "exec:%s", inner);
        while ((q = strstr(cmd, "\\$")))
            memmove(q, q + 1, strlen(q));
    }
    cl.c = xmig_cancel_new();
    cl.file = pidf; /* the holder is there to be signalled */
    cl.lines = 1;
    ASSERT_INT_EQ(xmig__transport_open(x, cmd, NULL, &t), 0);
    t.grace_ms = 500; /* the holder never goes by itself */
    pg = t.pid;
    xmig__cancel_attach(cl.c, &t);
    ASSERT_INT_EQ(xmig__expect(x, t.rfd, XL_MIG_BANNER, XL_MIG_BANNER_LEN, 5000,
                               "the banner"),
                  0);
    pthread_create(&th, NULL, cancel_later, &cl);
    t0 = xmig_now_ns();
    /* Nobody reads: the pipe fills, then this blocks until the cancel. */
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < 64 && rc == 0; i++)
        rc = xmig__write_all(x, t.wfd, chunk, sizeof(chunk), "the stream");
    signal(SIGPIPE, SIG_DFL);
    ASSERT_INT_EQ(rc, -1);
    pthread_join(th, NULL);
    xmig__cancel_detach(cl.c);
    got = slurp(pidf);
    holder = got ? (pid_t)atoi(got) : 0;
    ASSERT_TRUE(holder > 0);
    xmig__transport_close(&t);
    took = xmig_now_ns() - t0;
    if (took > 4000000000ULL)
        TEST_FAIL("the cancel took %.1f s", (double)took / 1e9);
    if (holder > 0 && running(holder)) {
        TEST_FAIL("pid %d, which held the pipe, survived", (int)holder);
        kill(holder, SIGKILL);
    }
    if (running(-pg)) {
        TEST_FAIL("process group %d survived", (int)pg);
        kill(-pg, SIGKILL);
    }
    xmig_cancel_free(cl.c);
    unlink(pidf);
    xmig_xen_close(x);
}

/* The same through a job: cancelled, guest left running, group gone. */
static void test_cancel_job_group(bool busybox)
{
    char pidf[] = "/tmp/xmig-test-pid-XXXXXX", cmd[512];
    struct canceller cl = {.ms = 300};
    struct xmig_job_params p;
    struct xmig_job_result r;
    xmig_xen *x;
    pthread_t th;
    uint64_t t0;
    pid_t holder, pg;
    char *got;
    int fd;

    if (busybox_missing(busybox))
        return;
    fd = mkstemp(pidf);
    close(fd);
    x = pv_guest();
    /* Records its group and the pid of the child that holds the pipe. */
    snprintf(cmd, sizeof(cmd),
             "exec:%s\"printf 'xl migration receiver ready, send binary "
             "domain data.\\n'; sh -c 'cut -d\\\" \\\" -f5 /proc/\\$\\$/stat; "
             "echo \\$\\$' >%s; sleep 8; :\"",
             busybox ? "busybox sh -c " : "eval ", pidf);
    cl.c = xmig_cancel_new();
    cl.file = pidf; /* the receiver and its holder are there */
    cl.lines = 2;
    migrate_params(&p, cmd, cl.c);
    p.receiver_grace_ms = 500; /* the holder never goes by itself */
    pthread_create(&th, NULL, cancel_later, &cl);
    t0 = xmig_now_ns();
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    if (xmig_now_ns() - t0 > 4000000000ULL)
        TEST_FAIL("the cancel took %.1f s", (double)(xmig_now_ns() - t0) / 1e9);
    pthread_join(th, NULL);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "cancelled") != NULL);
    assert_left_running(x, &r);
    got = slurp(pidf);
    pg = got ? (pid_t)atoi(got) : 0;
    holder = got && strchr(got, '\n') ? (pid_t)atoi(strchr(got, '\n') + 1) : 0;
    ASSERT_TRUE(pg > 0 && holder > 0);
    if (pg > 0 && pg == getpgrp())
        TEST_FAIL("the receiver ran in the test's own group %d", (int)pg);
    else if (pg > 0 && running(-pg))
        TEST_FAIL("process group %d survived", (int)pg);
    if (holder > 0 && running(holder)) {
        TEST_FAIL("pid %d survived", (int)holder);
        kill(holder, SIGKILL);
    }
    xmig_cancel_free(cl.c);
    unlink(pidf);
    xmig_xen_close(x);
}

/*
 * xl's receiver, told by EOF that the migration failed, writes its report
 * and only then destroys its copy; a report it cannot write, or a signal,
 * ends it with the copy left behind.  This one writes MARK once its report
 * went out.  garbage: it answers the stream with something that is not
 * 'ready' (the job fails by itself); else it waits for EOF, and the job is
 * cancelled meanwhile.
 */
static void test_receiver_cleans_up(bool garbage, bool busybox)
{
    char mark[] = "/tmp/xmig-test-mark-XXXXXX", cmd[768], script[512];
    struct canceller cl = {.ms = 300};
    struct xmig_job_params p;
    struct xmig_job_result r;
    xmig_xen *x;
    pthread_t th;
    int fd;
    char *got;

    if (busybox_missing(busybox))
        return;
    fd = mkstemp(mark);
    close(fd);
    unlink(mark);
    x = pv_guest();
    snprintf(script, sizeof(script),
             "printf 'xl migration receiver ready, send binary domain "
             "data.\\n'; %s cat >/dev/null; sleep 1; "
             "printf 'my copy unpause results are as follows' || exit 1; "
             "echo destroyed >%s",
             garbage ? "head -c 64 >/dev/null; "
                       "printf 'not the ready message, not at all......';"
                     : "",
             mark);
    snprintf(cmd, sizeof(cmd), "exec:%s\"%s\"",
             busybox ? "busybox sh -c " : "eval ", script);
    cl.c = xmig_cancel_new();
    migrate_params(&p, cmd, cl.c);
    if (!garbage)
        pthread_create(&th, NULL, cancel_later, &cl);
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    if (!garbage)
        pthread_join(th, NULL);
    ASSERT_TRUE(strstr(xmig_xen_error(x),
                       garbage ? "something other than" : "cancelled") != NULL);
    assert_left_running(x, &r);
    got = slurp(mark);
    if (!got || strcmp(got, "destroyed\n") != 0)
        TEST_FAIL("the receiver could not report after EOF (%s): it would "
                  "leave its copy",
                  got ? got : "no mark");
    xmig_cancel_free(cl.c);
    unlink(mark);
    xmig_xen_close(x);
}

/* ---- strategy exit: the engine's worker (issue #13) ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* Shared anonymous mappings: the memory a job shares with its worker. */
static int shared_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    int n = 0;

    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, "/dev/zero") != NULL;
    if (f)
        fclose(f);
    return n;
}

/* No child process is left, running or unreaped. */
static bool no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

enum exit_case { EXIT_CANCEL, EXIT_KILL_MIGRATE, EXIT_KILL_SAVE };

static int exit_job(xmig_xen *x, enum exit_case c, xmig_cancel *cancel,
                    const char *path, struct xmig_job_result *r)
{
    static const char banner[] =
        "printf 'xl migration receiver ready, send binary domain data.\\n'";
    char cmd[256];
    struct xmig_job_params p;

    /* A receiver that never reads, or one that reads everything. */
    snprintf(cmd, sizeof(cmd), "exec:%s; %s", banner,
             c == EXIT_CANCEL ? "exec sleep 8" : "exec cat >/dev/null");
    migrate_params(&p, cmd, cancel);
    p.engine = XMIG_ENGINE_XMIG;
    p.arena.strategy = XMIG_STRATEGY_EXIT;
    p.arena.batch = 64; /* many batches a pass */
    p.receiver_grace_ms = 500;
    if (c == EXIT_KILL_SAVE) {
        p.kind = XMIG_JOB_SAVE;
        p.dest = path;
    }
    return xmig_job_run(x, &p, r);
}

/*
 * A job of strategy exit that is cancelled while its worker is blocked
 * writing, or whose worker is killed in the middle of a pass: a clear
 * error, the guest runs here, and no worker, descriptor or shared memory
 * is left.  The first job leaves the shared region to the pool (arena.c).
 */
static void test_exit_fails(enum exit_case c)
{
    char dir[] = "/tmp/xmig-test-exit-XXXXXX", path[128];
    struct canceller cl = {.ms = 300};
    struct xmig_job_result r;
    struct dbl_stats ds;
    xmig_xen *x = pv_guest();
    int round, fds = 0, shared = 0;
    pthread_t th;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/img", dir);
    for (round = 0; round < 3; round++) {
        cl.c = xmig_cancel_new();
        if (c == EXIT_CANCEL) {
            dbl_get_stats(x, &ds);
            cl.x = x;
            cl.maps = ds.worker_maps;
            cl.ms = 100; /* then the worker blocks on the full pipe */
            pthread_create(&th, NULL, cancel_later, &cl);
        } else
            dbl_kill_mapper_after(x, 0, 20); /* mid-way through pass 1 */
        ASSERT_INT_EQ(exit_job(x, c, cl.c, path, &r), -1);
        if (c == EXIT_CANCEL)
            pthread_join(th, NULL);
        if (!strstr(xmig_xen_error(x), c == EXIT_CANCEL
                                           ? "cancelled"
                                           : "the mapping worker was "
                                             "killed by signal 9"))
            TEST_FAIL("round %d: error '%s'", round, xmig_xen_error(x));
        assert_left_running(x, &r);
        ASSERT_TRUE(no_children());
        ASSERT_INT_EQ(entries(dir), 0); /* no image, no temporary file */
        xmig_cancel_free(cl.c);
        if (round == 0) {
            fds = count_fds();
            shared = shared_maps();
        } else {
            ASSERT_INT_EQ(count_fds(), fds);
            ASSERT_INT_EQ(shared_maps(), shared);
        }
    }
    dbl_get_stats(x, &ds);
    ASSERT_U64_EQ(ds.live_pages, 0);
    if (c == EXIT_CANCEL)
        ASSERT_TRUE(ds.worker_maps >= 3); /* it was the worker that wrote */
    else
        ASSERT_TRUE(ds.worker_maps >= 3 * 21);
    ASSERT_INT_EQ(ds.worker_fds, 2);
    ASSERT_INT_EQ(rmdir(dir), 0);
    xmig_xen_close(x);
}

/*
 * The receiver goes with bytes unread, as xl's does when it fails: a TCP
 * stream is then reset (ECONNRESET), and so is dom0's socketpair to an
 * exec: receiver, where a pipe would break (EPIPE).  The admin is told the
 * receiver went away either way, by both strategies.
 */
static void test_receiver_exits_unread(enum xmig_strategy strategy)
{
    xmig_xen *x = pv_guest();
    struct xmig_job_params p;
    struct xmig_job_result r;
    struct rx rx;

    rx_start(&rx, RX_DIE_MID_STREAM);
    migrate_params(&p, rx.r.dest, NULL);
    p.engine = XMIG_ENGINE_XMIG;
    p.arena.strategy = strategy;
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    receiver_stop(&rx.r);
    if (!strstr(xmig_xen_error(x), "the receiver has gone away"))
        TEST_FAIL("error '%s'", xmig_xen_error(x));
    assert_left_running(x, &r);
    ASSERT_TRUE(no_children());
    xmig_xen_close(x);
}

int main(void)
{
    TEST_START("xl header bytes");
    test_xl_header();
    TEST_DONE();
    TEST_START("libxl header and records bytes, padding");
    test_libxl();
    TEST_DONE();
    TEST_START("handshake message lengths");
    test_handshake_strings();
    TEST_DONE();
    TEST_START("migrate: framing, handshake, source destroyed");
    test_migrate_ok();
    TEST_DONE();
    TEST_START("migrate hvm: QEMU saves live and lets go of its disks");
    test_migrate_hvm(RX_OK);
    TEST_DONE();
    TEST_START("migrate hvm, receiver fails: resumed, QEMU's state gone");
    test_migrate_hvm(RX_STATUS_FAIL);
    TEST_DONE();
    TEST_START("migrate: receiver closes at once");
    test_migrate_fails(RX_CLOSE_AT_ONCE, "banner");
    TEST_DONE();
    TEST_START("migrate: receiver dies mid-stream");
    test_migrate_fails(RX_DIE_MID_STREAM, "");
    TEST_DONE();
    TEST_START("migrate: receiver exits with bytes unread (arena)");
    test_receiver_exits_unread(XMIG_STRATEGY_ARENA);
    TEST_DONE();
    TEST_START("migrate: receiver exits with bytes unread (exit)");
    test_receiver_exits_unread(XMIG_STRATEGY_EXIT);
    TEST_DONE();
    TEST_START("migrate: receiver rejects the domain");
    test_migrate_fails(RX_REJECT, "'ready'");
    TEST_DONE();
    TEST_START("migrate: receiver cannot unpause");
    test_migrate_fails(RX_STATUS_FAIL, "could not unpause");
    TEST_DONE();
    TEST_START("migrate: failure reported without permission: unknown");
    test_state_unknown(RX_FAIL_NO_GRANT);
    TEST_DONE();
    TEST_START("migrate: receiver dies after the go-ahead: unknown");
    test_state_unknown(RX_DIE_AFTER_GO);
    TEST_DONE();
    TEST_START("migrate: the rename back fails: said, guest resumed");
    test_rename_back_fails();
    TEST_DONE();
    TEST_START("migrate: exec receiver exits, bad destinations");
    test_exec_receiver_exits();
    TEST_DONE();
    TEST_START("migrate: --abort-if-busy gives up and leaves the guest");
    test_abort_if_busy();
    TEST_DONE();
    TEST_START("migrate: no 'ready' within ready_timeout_s: resumed here");
    test_ready_timeout();
    TEST_DONE();
    TEST_START("cancel: before the start, and while waiting for 'ready'");
    test_cancel();
    TEST_DONE();
    TEST_START("save: file layout, destroy; unwritable file; unknown domain");
    test_save(false);
    TEST_DONE();
    TEST_START("save: older image, full disk, symlink, FIFO, device, destroy");
    test_save_files();
    TEST_DONE();
    TEST_START("save --keep: resumes instead of destroying");
    test_save(true);
    TEST_DONE();
    TEST_START("save to tmpfs: pages allocated ahead, the rest given back");
    test_save_reserve();
    TEST_DONE();
    /* Destinations, fds and process groups (issue #12). */
    TEST_START("destinations: nothing reaches ssh as an option; after --");
    test_ssh_destinations();
    TEST_DONE();
    TEST_START("tcp: the socket is not inherited by other receivers");
    test_tcp_fd_not_inherited();
    TEST_DONE();
    TEST_START("exec: the stream holds a record in flight");
    test_exec_sndbuf();
    TEST_DONE();
    TEST_START("exec: the receiver leads its group, default signals, none "
               "blocked");
    test_exec_signals();
    TEST_DONE();
    TEST_START("cancel: a blocked write ends, the group goes (dash)");
    test_cancel_group(false);
    TEST_DONE();
    TEST_START("cancel: a blocked write ends, the group goes (busybox sh)");
    test_cancel_group(true);
    TEST_DONE();
    TEST_START("cancel: a job's receiver group goes (dash)");
    test_cancel_job_group(false);
    TEST_DONE();
    TEST_START("cancel: a job's receiver group goes (busybox sh)");
    test_cancel_job_group(true);
    TEST_DONE();
    TEST_START("failed job: the receiver reports after EOF, not killed (dash)");
    test_receiver_cleans_up(true, false);
    TEST_DONE();
    TEST_START("failed job: the receiver reports after EOF (busybox sh)");
    test_receiver_cleans_up(true, true);
    TEST_DONE();
    TEST_START("cancel: the receiver reports after EOF, not killed (dash)");
    test_receiver_cleans_up(false, false);
    TEST_DONE();
    TEST_START("cancel: the receiver reports after EOF (busybox sh)");
    test_receiver_cleans_up(false, true);
    TEST_DONE();
    TEST_START("exit: cancelled while the worker writes: guest here, no leak");
    test_exit_fails(EXIT_CANCEL);
    TEST_DONE();
    TEST_START("exit: worker killed mid-pass (migrate): said, guest here");
    test_exit_fails(EXIT_KILL_MIGRATE);
    TEST_DONE();
    TEST_START("exit: worker killed mid-pass (save): said, no file left");
    test_exit_fails(EXIT_KILL_SAVE);
    TEST_DONE();
    return TEST_EXIT();
}

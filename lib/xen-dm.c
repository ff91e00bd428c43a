/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * An HVM guest's device model, driven as libxl 4.17 drives it for a save
 * (libxl_dom_save.c, libxl_qmp.c, libxl_stream_write.c).  Only QEMU
 * upstream ("qemu-xen") running in dom0: a stub domain's QEMU and
 * qemu-traditional are refused by xmig__dm_check.
 *
 * - Live passes: QMP xen-set-global-dirty-log, so that what QEMU itself
 *   writes into guest memory (emulated DMA) is reported to Xen's dirty log
 *   and goes out again, as libxenguest's switch_qemu_logdirty callback has
 *   libxl do.
 * - Its state: libxl_domain_suspend_only() suspends the guest and has QEMU
 *   write its device state (xen-save-devices-state) to the file
 *   XEN_LIB_DIR/qemu-save.DOMID.  The stream carries it as EMULATOR_CONTEXT,
 *   after EMULATOR_XENSTORE_DATA (the physmap keys QEMU keeps under its
 *   xenstore directory), as libxl writes them after the libxc stream.
 *
 * The QMP socket is the one libxl gives QEMU (-qmp on qmp-libxl-DOMID);
 * QEMU serves one client at a time, so a command waits while libxl holds
 * it, up to DM_QMP_TIMEOUT_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "stream.h"
#include "xen-priv.h"

/* libxl's XEN_RUN_DIR and XEN_LIB_DIR as Debian builds them. */
#define DM_QMP_PATH "/var/run/xen/qmp-libxl-%u"
#define DM_SAVE_PATH "/var/lib/xen/qemu-save.%u"
#define DM_QMP_TIMEOUT_MS 10000
/* No reply of QEMU's to the commands sent here comes near this. */
#define DM_QMP_LINE_MAX 65536
/* QEMU's device state for a guest without disks is ~10 KiB; VGA adds
   its registers, not its memory (that is guest memory). */
#define DM_STATE_MAX (64u << 20)

static struct xs_handle *dm_xs(xmig_xen *x)
{
    struct xen_priv *p = priv(x);

    if (!p->xsh)
        p->xsh = xs_open(XS_OPEN_READONLY);
    return p->xsh;
}

static char *dm_xs_read(xmig_xen *x, const char *path)
{
    unsigned int len;

    return dm_xs(x) ? xs_read(dm_xs(x), XBT_NULL, path, &len) : NULL;
}

int xmig__dm_check(xmig_xen *x, uint32_t domid)
{
    char path[96], *v;
    bool ok;

    snprintf(path, sizeof(path), "/local/domain/%u/image/device-model-domid",
             domid);
    v = dm_xs_read(x, path);
    ok = !v || strcmp(v, "0") == 0;
    free(v);
    if (!ok) {
        xmig__seterr(x, EOPNOTSUPP,
                     "domain %u is HVM with its device model in a stub "
                     "domain, which xmig does not save",
                     domid);
        return -1;
    }
    snprintf(path, sizeof(path), "/libxl/%u/dm-version", domid);
    v = dm_xs_read(x, path);
    ok = v && strcmp(v, "qemu_xen") == 0;
    if (!ok)
        xmig__seterr(x, EOPNOTSUPP,
                     "domain %u is HVM with device model '%s': xmig saves "
                     "only QEMU upstream (qemu_xen)",
                     domid, v ? v : "unknown");
    free(v);
    return ok ? 0 : -1;
}

/* Milliseconds left before deadline, at least 0. */
static int dm_left(const struct timespec *deadline)
{
    struct timespec now;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (deadline->tv_sec - now.tv_sec) * 1000LL +
         (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : (int)ms;
}

/*
 * The next message from QEMU, one JSON object a line; events are read
 * past.  NULL once it said why.
 */
static json_object *dm_recv(xmig_xen *x, int fd, char *buf, size_t *have,
                            const struct timespec *deadline, uint32_t domid)
{
    for (;;) {
        char *nl = memchr(buf, '\n', *have);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (nl) {
            size_t len = (size_t)(nl - buf) + 1;
            json_object *o;

            *nl = '\0';
            o = json_tokener_parse(buf);
            memmove(buf, buf + len, *have - len);
            *have -= len;
            if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                xmig__seterr(x, EPROTO, "domain %u: QEMU sent what is not QMP",
                             domid);
                return NULL;
            }
            if (json_object_object_get_ex(o, "event", NULL)) {
                json_object_put(o);
                continue;
            }
            return o;
        }
        if (*have >= DM_QMP_LINE_MAX - 1) {
            xmig__seterr(x, EPROTO, "domain %u: QEMU's reply is too long",
                         domid);
            return NULL;
        }
        n = poll(&pfd, 1, dm_left(deadline));
        if (n == 0) {
            xmig__seterr(x, ETIMEDOUT,
                         "domain %u: QEMU did not answer within %d s", domid,
                         DM_QMP_TIMEOUT_MS / 1000);
            return NULL;
        }
        if (n < 0 && errno == EINTR)
            continue;
        n = n < 0 ? -1 : read(fd, buf + *have, DM_QMP_LINE_MAX - 1 - *have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            xmig__seterr(x, n < 0 ? errno : EPIPE,
                         "domain %u: QEMU closed its QMP socket", domid);
            return NULL;
        }
        *have += (size_t)n;
    }
}

/* A QMP session with one domain's QEMU, under one deadline. */
struct qmp {
    xmig_xen *x;
    uint32_t domid;
    int fd;
    char *buf;
    size_t have;
    struct timespec deadline;
};

/*
 * One command; pass_fd >= 0 goes along (SCM_RIGHTS), as for add-fd.  What
 * QEMU returned, or NULL once it said why.
 */
static json_object *qmp_call(struct qmp *q, const char *cmd, json_object *args,
                             int pass_fd)
{
    json_object *req = json_object_new_object(), *resp, *err, *desc, *ret;
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = {0};
    struct iovec iov;
    const char *s;
    char *line = NULL;
    size_t len;
    ssize_t n;

    ret = NULL;
    if (!req)
        goto nomem;
    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args)
        json_object_object_add(req, "arguments", json_object_get(args));
    s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    if (!s || asprintf(&line, "%s\n", s) < 0) {
        line = NULL;
        goto nomem;
    }
    len = strlen(line);
    if (pass_fd >= 0) {
        /* The descriptor rides on the command's first byte. */
        iov.iov_base = line;
        iov.iov_len = 1;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.space;
        msg.msg_controllen = sizeof(ctl.space);
        CMSG_FIRSTHDR(&msg)->cmsg_level = SOL_SOCKET;
        CMSG_FIRSTHDR(&msg)->cmsg_type = SCM_RIGHTS;
        CMSG_FIRSTHDR(&msg)->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(CMSG_FIRSTHDR(&msg)), &pass_fd, sizeof(int));
        do
            n = sendmsg(q->fd, &msg, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n != 1) {
            xmig__seterr(q->x, n < 0 ? errno : EIO,
                         "domain %u: passing a file to QEMU: %s", q->domid,
                         strerror(n < 0 ? errno : EIO));
            goto out;
        }
    }
    if (xmig__write_all(q->x, q->fd, line + (pass_fd >= 0),
                        len - (pass_fd >= 0), "a QMP command") < 0)
        goto out;
    resp = dm_recv(q->x, q->fd, q->buf, &q->have, &q->deadline, q->domid);
    if (!resp)
        goto out;
    if (json_object_object_get_ex(resp, "return", &ret)) {
        json_object_get(ret);
    } else {
        desc = NULL;
        if (json_object_object_get_ex(resp, "error", &err))
            json_object_object_get_ex(err, "desc", &desc);
        xmig__seterr(q->x, EIO, "domain %u: QEMU refused %s: %s", q->domid, cmd,
                     desc ? json_object_get_string(desc) : "no reason given");
    }
    json_object_put(resp);
out:
    free(line);
    json_object_put(req);
    return ret;
nomem:
    free(line);
    json_object_put(req);
    xmig__seterr(q->x, ENOMEM, "out of memory");
    return NULL;
}

static void qmp_close(struct qmp *q)
{
    free(q->buf);
    q->buf = NULL;
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
}

/* Connected, greeted, in command mode; qmp_close() in any case. */
static int qmp_open(struct qmp *q, xmig_xen *x, uint32_t domid)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    json_object *o;

    memset(q, 0, sizeof(*q));
    q->x = x;
    q->domid = domid;
    snprintf(sa.sun_path, sizeof(sa.sun_path), DM_QMP_PATH, domid);
    q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        xmig__seterr(x, errno, "domain %u: cannot reach QEMU at %s: %s", domid,
                     sa.sun_path, strerror(errno));
        return -1;
    }
    q->buf = malloc(DM_QMP_LINE_MAX);
    if (!q->buf) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &q->deadline);
    q->deadline.tv_sec += DM_QMP_TIMEOUT_MS / 1000;
    o = dm_recv(x, q->fd, q->buf, &q->have, &q->deadline, domid);
    if (!o)
        return -1;
    json_object_put(o);
    o = qmp_call(q, "qmp_capabilities", NULL, -1);
    json_object_put(o);
    return o ? 0 : -1;
}

int xmig__dm_logdirty(xmig_xen *x, uint32_t domid, bool enable)
{
    json_object *args = json_object_new_object(), *o = NULL;
    struct qmp q;

    if (!args) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return -1;
    }
    json_object_object_add(args, "enable", json_object_new_boolean(enable));
    if (qmp_open(&q, x, domid) == 0)
        o = qmp_call(&q, "xen-set-global-dirty-log", args, -1);
    qmp_close(&q);
    json_object_put(args);
    json_object_put(o);
    return o ? 0 : -1;
}

/*
 * libxl_domain_suspend_only() had QEMU save its state as for a snapshot
 * ("live": false).  For a migration libxl passes "live": true, and then
 * QEMU, stopped, lets go of its disk images (bdrv_inactivate_all), so that
 * the receiver's QEMU can lock them; a "cont" (libxl_domain_resume) takes
 * them back.  So the state is saved once more, the same state, live.  The
 * file goes to QEMU as a descriptor (add-fd), as libxl does, for a QEMU
 * that runs deprivileged and could not open it by name.
 */
int xmig__dm_release(xmig_xen *x, uint32_t domid)
{
    json_object *args = json_object_new_object(), *o = NULL, *id;
    char path[64], fdset[32];
    struct qmp q;
    int fd;

    snprintf(path, sizeof(path), DM_SAVE_PATH, domid);
    fd =
        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || !args) {
        xmig__seterr(x, fd < 0 ? errno : ENOMEM, "domain %u: %s: %s", domid,
                     path, strerror(fd < 0 ? errno : ENOMEM));
        goto out;
    }
    if (qmp_open(&q, x, domid) == 0)
        o = qmp_call(&q, "add-fd", NULL, fd);
    if (o && (!json_object_object_get_ex(o, "fdset-id", &id) ||
              !json_object_is_type(id, json_type_int))) {
        xmig__seterr(x, EPROTO, "domain %u: QEMU's add-fd returned no fdset-id",
                     domid);
        json_object_put(o);
        o = NULL;
    }
    if (o) {
        snprintf(fdset, sizeof(fdset), "/dev/fdset/%d",
                 json_object_get_int(id));
        json_object_put(o);
        json_object_object_add(args, "filename", json_object_new_string(fdset));
        json_object_object_add(args, "live", json_object_new_boolean(true));
        o = qmp_call(&q, "xen-save-devices-state", args, -1);
    }
    qmp_close(&q);
out:
    if (fd >= 0)
        close(fd);
    json_object_put(args);
    json_object_put(o);
    return o ? 0 : -1;
}

/* key NUL value NUL, as libxl's append_string does. */
static int dm_append(struct xmig_buf *b, const char *s)
{
    return xmig_buf_put(b, s, strlen(s) + 1);
}

/* The physmap keys QEMU keeps, as libxl__save_emulator_xenstore_data. */
static int dm_xenstore_data(xmig_xen *x, uint32_t domid, struct xmig_buf *b)
{
    static const char *const subkeys[] = {"start_addr", "size", "name"};
    struct xs_handle *xsh = dm_xs(x);
    char root[64], path[256], key[160];
    char **ents;
    unsigned int n, i, k;
    int rc = 0;

    snprintf(root, sizeof(root), "/local/domain/0/device-model/%u", domid);
    snprintf(path, sizeof(path), "%s/physmap", root);
    if (!xsh) {
        xmig__seterr(x, errno, "domain %u: xenstore: %s", domid,
                     strerror(errno));
        return -1;
    }
    ents = xs_directory(xsh, XBT_NULL, path, &n);
    if (!ents)
        return 0; /* no physmap: libxl writes no record either */
    for (i = 0; i < n && rc == 0; i++) {
        for (k = 0; k < sizeof(subkeys) / sizeof(subkeys[0]); k++) {
            char *v;

            snprintf(key, sizeof(key), "physmap/%s/%s", ents[i], subkeys[k]);
            snprintf(path, sizeof(path), "%s/%s", root, key);
            v = dm_xs_read(x, path);
            if (!v) {
                xmig__seterr(x, EIO, "domain %u: cannot read %s", domid, path);
                rc = -1;
                break;
            }
            if (dm_append(b, key) < 0 || dm_append(b, v) < 0) {
                xmig__seterr(x, ENOMEM, "out of memory");
                rc = -1;
            }
            free(v);
            if (rc < 0)
                break;
        }
    }
    free(ents);
    return rc;
}

/* The device state QEMU wrote when libxl suspended the guest. */
static int dm_saved_state(xmig_xen *x, uint32_t domid, void **state_r,
                          size_t *len_r)
{
    char path[64];
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd, rc = -1;

    snprintf(path, sizeof(path), DM_SAVE_PATH, domid);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) < 0) {
        xmig__seterr(x, errno, "domain %u: QEMU's saved state %s: %s", domid,
                     path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > DM_STATE_MAX) {
        xmig__seterr(x, EINVAL,
                     "domain %u: QEMU's saved state %s is not a plain file "
                     "of 1 byte to %u MiB",
                     domid, path, DM_STATE_MAX >> 20);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (!buf) {
        xmig__seterr(x, ENOMEM, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            xmig__seterr(x, n < 0 ? errno : EIO,
                         "domain %u: reading QEMU's saved state %s: %s", domid,
                         path, n < 0 ? strerror(errno) : "cut short");
            goto out;
        }
        got += (size_t)n;
    }
    *state_r = buf;
    *len_r = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int xmig__dm_state(xmig_xen *x, uint32_t domid, struct xmig_buf *xs,
                   void **state_r, size_t *len_r)
{
    int rc = dm_xenstore_data(x, domid, xs) < 0 ||
                     dm_saved_state(x, domid, state_r, len_r) < 0
                 ? -1
                 : 0;

    xmig__dm_discard(x, domid);
    return rc;
}

void xmig__dm_discard(xmig_xen *x, uint32_t domid)
{
    char path[64];

    (void)x;
    snprintf(path, sizeof(path), DM_SAVE_PATH, domid);
    (void)unlink(path);
}

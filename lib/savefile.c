/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A save's destination.  A regular file is written under a temporary name
 * beside its path and takes that path only once it is complete and on
 * disk: a failed save leaves an older image where it was, and nothing
 * ever removes a finished one.  An existing FIFO or device is a sink,
 * written in place and never removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "private.h"

#define TMPFS_MAGIC 0x01021994
/*
 * A reservation step: the inode lock is held for each (2.6 ms per MiB in
 * the testbed), and each of the save's writes may wait for one.  A 128 MiB
 * PV save there, four rounds each in one run: 0.86-0.88 s with 256 KiB
 * steps, 0.90-0.92 s with 1 MiB, 0.89-0.91 s with 64 KiB (a call per 64
 * pages costs more than it spares the writes).  With 8 MiB it took
 * 0.96-0.99 s, against 0.92-0.94 s with 1 MiB in that run: the records
 * written before the suspend wait for the lock too.
 */
#define RESERVE_STEP (1LL << 18)

/*
 * Whether writes to fd copy from the caller's pages.  9p and FUSE direct
 * I/O pin them instead, which fails with EFAULT for foreign mappings; so
 * may filesystems not listed here.  A regular file says whether it is on
 * tmpfs in *tmpfs_r.
 */
static bool file_copies(int fd, bool *tmpfs_r)
{
    static const unsigned long copying[] = {
        TMPFS_MAGIC, /* tmpfs */
        0x0000ef53,  /* ext2, ext3, ext4 */
        0x58465342,  /* xfs */
        0x9123683e,  /* btrfs */
    };
    struct statfs sfs;
    struct stat st;
    size_t i;

    if (fstat(fd, &st) < 0)
        return false;
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode))
        return true;
    if (!S_ISREG(st.st_mode) || fstatfs(fd, &sfs) < 0)
        return false;
    *tmpfs_r = (unsigned long)sfs.f_type == TMPFS_MAGIC;
    for (i = 0; i < sizeof(copying) / sizeof(copying[0]); i++) {
        if ((unsigned long)sfs.f_type == copying[i])
            return true;
    }
    return false;
}

static int open_sink(xmig_xen *x, const char *path, mode_t type,
                     struct xmig__savefile *f)
{
    struct stat st;
    int fl;

    /* Not blocking: a FIFO nobody reads is an error, not a hang. */
    f->fd =
        open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (f->fd < 0) {
        xmig__seterr(x, errno, "cannot write '%s': %s", path,
                     errno == ENXIO && S_ISFIFO(type)
                         ? "no process reads the FIFO"
                         : strerror(errno));
        return -1;
    }
    if (fstat(f->fd, &st) < 0 || (st.st_mode & S_IFMT) != type ||
        (fl = fcntl(f->fd, F_GETFL)) < 0 ||
        fcntl(f->fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        xmig__seterr(x, EAGAIN, "'%s' changed while it was opened", path);
        return -1;
    }
    f->sink = true;
    f->copies = true;
    return 0;
}

int xmig__save_open(xmig_xen *x, const char *path, struct xmig__savefile *f)
{
    char *dir_copy = NULL, *base_copy = NULL;
    struct stat st;
    int rc = -1;

    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->path = path;
    if (!path || !*path) {
        xmig__seterr(x, EINVAL, "no file to save to");
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            xmig__seterr(x, ELOOP,
                         "'%s' is a symbolic link: name the file it points "
                         "to",
                         path);
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            xmig__seterr(x, EISDIR, "cannot write '%s': it is a directory",
                         path);
            return -1;
        }
        if (!S_ISREG(st.st_mode))
            return open_sink(x, path, st.st_mode & S_IFMT, f);
    } else if (errno != ENOENT) {
        xmig__seterr(x, errno, "cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    dir_copy = strdup(path);
    base_copy = strdup(path);
    if (!dir_copy || !base_copy ||
        asprintf(&f->tmp, "%s/.%s.xmig-XXXXXX", dirname(dir_copy),
                 basename(base_copy)) < 0) {
        f->tmp = NULL;
        xmig__seterr(x, ENOMEM, "out of memory");
        goto out;
    }
    /* O_EXCL, 0600: never someone else's file, never through a link. */
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        xmig__seterr(x, errno, "cannot write '%s': %s", path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        goto out;
    }
    f->copies = file_copies(f->fd, &f->tmpfs);
    rc = 0;
out:
    free(dir_copy);
    free(base_copy);
    return rc;
}

/*
 * tmpfs allocates a page for each page written, and that costs more than
 * the copy into it: 0.47 of 0.80 s for 128 MiB in the testbed's dom0
 * (save-bench, write-floor).  Allocated here instead, on a second CPU,
 * from when the file is opened: while the job sets up, the guest
 * suspends, and between the writes (mapping, page types).  Allocating and
 * writing both hold the inode lock, so they take turns; what is gained is
 * what gets allocated while nothing is written.  fallocate leaves the
 * pages unwritten, not zeroed (shmem_fallocate, SGP_FALLOC), and
 * KEEP_SIZE leaves the file's size to the writes.  Signals stay with the
 * job's threads.
 */
static void *reserve_run(void *arg)
{
    struct xmig__savefile *f = arg;
    long long off = 0, n;

    while (off < f->reserve_len && !atomic_load(&f->reserve_stop)) {
        n = f->reserve_len - off < RESERVE_STEP ? f->reserve_len - off
                                                : RESERVE_STEP;
        if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, off, n) < 0)
            break; /* full, or not supported: the writes will tell */
        off += n;
        atomic_store(&f->reserved, off);
    }
    return NULL;
}

void xmig__save_reserve(struct xmig__savefile *f, uint64_t bytes)
{
    sigset_t all, old;

    if (!f->tmpfs || !f->tmp || f->reserving || !bytes ||
        bytes > (uint64_t)LLONG_MAX / 2)
        return;
    f->reserve_len = (long long)bytes;
    atomic_store(&f->reserve_stop, false);
    atomic_store(&f->reserved, 0);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    f->reserving = pthread_create(&f->reserver, NULL, reserve_run, f) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Stops the reservation; the allocation past the image's end goes back. */
static void reserve_end(struct xmig__savefile *f)
{
    struct stat st;
    long long end;

    if (!f->reserving)
        return;
    atomic_store(&f->reserve_stop, true);
    pthread_join(f->reserver, NULL);
    f->reserving = false;
    end = atomic_load(&f->reserved);
    if (fstat(f->fd, &st) == 0 && end > st.st_size)
        (void)fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        st.st_size, end - st.st_size);
}

int xmig__save_commit(xmig_xen *x, struct xmig__savefile *f)
{
    char *dir_copy;
    int dfd;

    reserve_end(f);
    /* A pipe or a device has nothing to sync (EINVAL). */
    if (fsync(f->fd) < 0 && errno != EINVAL) {
        xmig__seterr(x, errno, "writing '%s': %s", f->path, strerror(errno));
        return -1;
    }
    if (!f->tmp)
        return 0;
    if (rename(f->tmp, f->path) < 0) {
        xmig__seterr(x, errno, "cannot put the image in place as '%s': %s",
                     f->path, strerror(errno));
        return -1;
    }
    free(f->tmp);
    f->tmp = NULL;
    /* The new name must be on disk too before the guest is destroyed. */
    dir_copy = strdup(f->path);
    if (!dir_copy) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return -1;
    }
    dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir_copy);
    if (dfd < 0 || (fsync(dfd) < 0 && errno != EINVAL)) {
        xmig__seterr(x, errno, "writing the directory of '%s': %s", f->path,
                     strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    close(dfd);
    return 0;
}

void xmig__save_close(struct xmig__savefile *f)
{
    reserve_end(f);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    /* Only the file this save created, and only if it never took its place. */
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
}

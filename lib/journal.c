/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Crash journal and recovery: what a job has done to its guest, in a small
 * file per domain, so that once the job's process has died the guest can
 * be put back where it belongs (xmig_recover() in xmig.h).
 *
 *   DIR/dom-<domid>       the journal: key=value lines, replaced by rename
 *   DIR/dom-<domid>.tmp   its next version, being written
 *   DIR/dom-<domid>.lock  flock()ed by the live job for its whole life
 *
 * The kernel drops a dead process's flock(), so a lock that can be taken
 * means a dead job: no pids to check, none to be fooled by reuse.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

#define MAX_KEYS 32
#define MAX_JOURNAL (16 * 1024)
/* As handshake() names the source's copy while the receiver takes over. */
#define AWAY_SUFFIX "--migratedaway"

struct kv {
    char *key;
    char *val;
};

struct xmig__journal {
    xmig_xen *x;
    int dirfd;
    int lockfd;
    uint32_t domid;
    size_t n;
    struct kv kv[MAX_KEYS];
};

/* ------------------------------------------------------------------ */
/* Keys and values. */

static const char *kv_get(const struct xmig__journal *jn, const char *key)
{
    size_t i;

    for (i = 0; i < jn->n; i++)
        if (strcmp(jn->kv[i].key, key) == 0)
            return jn->kv[i].val;
    return NULL;
}

static bool kv_is(const struct xmig__journal *jn, const char *key,
                  const char *val)
{
    const char *v = kv_get(jn, key);

    return v && strcmp(v, val) == 0;
}

static int kv_set(struct xmig__journal *jn, const char *key, const char *val)
{
    char *v = strdup(val);
    size_t i;

    if (!v)
        return -1;
    for (i = 0; i < jn->n; i++) {
        if (strcmp(jn->kv[i].key, key) == 0) {
            free(jn->kv[i].val);
            jn->kv[i].val = v;
            return 0;
        }
    }
    if (jn->n == MAX_KEYS || !(jn->kv[jn->n].key = strdup(key))) {
        free(v);
        errno = jn->n == MAX_KEYS ? ENOSPC : ENOMEM;
        return -1;
    }
    jn->kv[jn->n++].val = v;
    return 0;
}

static void kv_clear(struct xmig__journal *jn)
{
    size_t i;

    for (i = 0; i < jn->n; i++) {
        free(jn->kv[i].key);
        free(jn->kv[i].val);
    }
    jn->n = 0;
}

/* Line breaks (and '%') in a value must not start a line of their own. */
static void put_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;

        if (c < 0x20 || c == 0x7f || c == '%')
            fprintf(f, "%%%02x", c);
        else
            fputc(c, f);
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* In place; -1 on a malformed escape or an encoded NUL. */
static int decode(char *s)
{
    char *o = s;

    for (; *s; s++) {
        if (*s == '%') {
            int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            *o++ = (char)(hi << 4 | lo);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Files. */

static void name_of(char *buf, size_t len, uint32_t domid, const char *suffix)
{
    snprintf(buf, len, "dom-%u%s", domid, suffix);
}

/*
 * mkdir -p, the last component private.  A journal tells recovery which
 * guests to destroy: only its owner may write there.
 */
static int dir_open(xmig_xen *x, const char *dir, bool create)
{
    char *p = NULL, *s;
    struct stat st;
    int fd;

    if (create) {
        p = strdup(dir);
        if (!p) {
            xmig__seterr(x, ENOMEM, "out of memory");
            return -1;
        }
        for (s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
            *s = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                break;
            *s = '/';
        }
        free(p);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            xmig__seterr(x, errno, "cannot create the journal directory %s: %s",
                         dir, strerror(errno));
            return -1;
        }
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        xmig__seterr(x, errno, "journal directory %s: %s", dir,
                     strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
        close(fd);
        xmig__seterr(x, EPERM,
                     "journal directory %s: must belong to uid %u and be "
                     "writable by it alone",
                     dir, (unsigned int)geteuid());
        return -1;
    }
    return fd;
}

/* 1: locked, 0: a live job holds it, -1: error. */
static int lock_take(xmig_xen *x, int dirfd, uint32_t domid, int *fd_r)
{
    struct stat a, b;
    char name[32];
    int fd, tries;

    name_of(name, sizeof(name), domid, ".lock");
    for (tries = 0; tries < 100; tries++) {
        fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                    0600);
        if (fd < 0) {
            xmig__seterr(x, errno, "%s: %s", name, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;

            close(fd);
            if (e == EWOULDBLOCK)
                return 0;
            if (e == EINTR)
                continue;
            xmig__seterr(x, e, "locking %s: %s", name, strerror(e));
            return -1;
        }
        /*
         * The holder before us removes the file as it lets go: then ours
         * locks a file nobody else will open.  Try again.
         */
        if (fstat(fd, &a) == 0 &&
            fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            *fd_r = fd;
            return 1;
        }
        close(fd);
    }
    xmig__seterr(x, EAGAIN, "cannot lock %s", name);
    return -1;
}

/* Removed while still held: see lock_take(). */
static void lock_drop(int dirfd, uint32_t domid, int fd)
{
    char name[32];

    if (fd < 0)
        return;
    name_of(name, sizeof(name), domid, ".lock");
    unlinkat(dirfd, name, 0);
    close(fd);
}

/*
 * No fsync: the journal has to outlive its process, not the machine.  It
 * lives in /run, and after a reboot there is no guest left to recover.
 */
static int journal_write(struct xmig__journal *jn)
{
    char tmp[32], name[32];
    FILE *f;
    size_t i;
    int fd, bad;

    name_of(tmp, sizeof(tmp), jn->domid, ".tmp");
    name_of(name, sizeof(name), jn->domid, "");
    fd = openat(jn->dirfd, tmp,
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        if (fd >= 0)
            close(fd);
        goto fail;
    }
    fputs("# xmig job journal: `xmig recover` reads it\n", f);
    for (i = 0; i < jn->n; i++) {
        fprintf(f, "%s=", jn->kv[i].key);
        put_value(f, jn->kv[i].val);
        fputc('\n', f);
    }
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        if (!errno)
            errno = EIO;
        goto fail;
    }
    if (renameat(jn->dirfd, tmp, jn->dirfd, name) < 0)
        goto fail;
    return 0;
fail:
    xmig__seterr(jn->x, errno, "cannot write the job journal %s: %s", name,
                 strerror(errno));
    unlinkat(jn->dirfd, tmp, 0);
    return -1;
}

/* 0, or -1 with errno (ENOENT: no journal) and the error set. */
static int journal_read(struct xmig__journal *jn)
{
    char name[32], *buf, *line, *next, *eq;
    struct stat st;
    ssize_t r;
    size_t len = 0;
    int fd;

    name_of(name, sizeof(name), jn->domid, "");
    fd = openat(jn->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        xmig__seterr(jn->x, errno, "%s: %s", name, strerror(errno));
        return -1;
    }
    buf = malloc(MAX_JOURNAL + 1);
    if (!buf || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        xmig__seterr(jn->x, buf ? EINVAL : ENOMEM, "%s: not a journal", name);
        goto fail;
    }
    while (len < MAX_JOURNAL &&
           (r = read(fd, buf + len, MAX_JOURNAL - len)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            xmig__seterr(jn->x, errno, "%s: %s", name, strerror(errno));
            goto fail;
        }
        len += (size_t)r;
    }
    buf[len] = 0;
    close(fd);
    fd = -1;
    for (line = buf; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (!*line || *line == '#')
            continue;
        eq = strchr(line, '=');
        if (!eq || eq == line ||
            strspn(line, "abcdefghijklmnopqrstuvwxyz_") !=
                (size_t)(eq - line)) {
            xmig__seterr(jn->x, EINVAL, "%s: malformed line", name);
            goto fail;
        }
        *eq = 0;
        if (decode(eq + 1) < 0 || kv_set(jn, line, eq + 1) < 0) {
            xmig__seterr(jn->x, EINVAL, "%s: bad value of '%s'", name, line);
            goto fail;
        }
    }
    free(buf);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    if (errno == ENOENT)
        errno = EINVAL; /* ENOENT means "no journal" to callers */
    return -1;
}

static bool uuid_known(const uint8_t *u)
{
    static const uint8_t zero[16];

    return memcmp(u, zero, 16) != 0;
}

static void uuid_str(const uint8_t *u, char *buf)
{
    int i;

    for (i = 0; i < 16; i++)
        sprintf(buf + 2 * i, "%02x", u[i]);
}

/* ------------------------------------------------------------------ */
/* The job's side. */

static void journal_free(struct xmig__journal *jn)
{
    kv_clear(jn);
    lock_drop(jn->dirfd, jn->domid, jn->lockfd);
    if (jn->dirfd >= 0)
        close(jn->dirfd);
    free(jn);
}

int xmig__journal_open(xmig_xen *x, const struct xmig_job_params *p,
                       const struct xmig_dominfo *info,
                       struct xmig__journal **jn_r)
{
    struct xmig__journal *jn;
    char name[32], num[32], away[sizeof(info->name) + 16], uuid[33];
    int r, saved;

    *jn_r = NULL;
    if (!p->journal_dir)
        return 0;
    jn = calloc(1, sizeof(*jn));
    if (!jn) {
        xmig__seterr(x, ENOMEM, "out of memory");
        return -1;
    }
    jn->x = x;
    jn->lockfd = -1;
    jn->domid = info->domid;
    jn->dirfd = dir_open(x, p->journal_dir, true);
    if (jn->dirfd < 0)
        goto fail;
    r = lock_take(x, jn->dirfd, info->domid, &jn->lockfd);
    if (r == 0)
        xmig__seterr(x, EBUSY, "domain %u: another job is running on it",
                     info->domid);
    if (r <= 0)
        goto fail;
    name_of(name, sizeof(name), info->domid, "");
    if (faccessat(jn->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        xmig__seterr(x, EEXIST,
                     "domain %u: a job that died left %s/%s behind: "
                     "run `xmig recover` first",
                     info->domid, p->journal_dir, name);
        goto fail;
    }
    snprintf(num, sizeof(num), "%u", info->domid);
    snprintf(away, sizeof(away), "%s" AWAY_SUFFIX, info->name);
    if (kv_set(jn, "kind", p->kind == XMIG_JOB_SAVE ? "save" : "migrate") ||
        kv_set(jn, "domid", num) || kv_set(jn, "name", info->name) ||
        kv_set(jn, "away", away) || kv_set(jn, "dest", p->dest ? p->dest : ""))
        goto nomem;
    if (uuid_known(info->uuid)) {
        uuid_str(info->uuid, uuid);
        if (kv_set(jn, "uuid", uuid))
            goto nomem;
    }
    if (p->kind == XMIG_JOB_SAVE && p->keep && kv_set(jn, "keep", "1"))
        goto nomem;
    /* For people reading the file: recovery goes by the lock. */
    snprintf(num, sizeof(num), "%ld", (long)getpid());
    if (kv_set(jn, "pid", num))
        goto nomem;
    snprintf(num, sizeof(num), "%lld", (long long)time(NULL));
    if (kv_set(jn, "started", num))
        goto nomem;
    if (journal_write(jn) < 0)
        goto fail;
    *jn_r = jn;
    return 0;
nomem:
    xmig__seterr(x, ENOMEM, "out of memory");
fail:
    saved = errno;
    journal_free(jn);
    errno = saved;
    return -1;
}

int xmig__journal_set(struct xmig__journal *jn, const char *key,
                      const char *value)
{
    if (!jn)
        return 0;
    if (kv_set(jn, key, value) < 0) {
        xmig__seterr(jn->x, errno, "cannot write the job journal: %s",
                     strerror(errno));
        return -1;
    }
    if (journal_write(jn) < 0) {
        xmig__log(jn->x, XMIG_LOG_WARN, "%s", jn->x->err);
        return -1;
    }
    return 0;
}

void xmig__journal_close(struct xmig__journal *jn, bool remove)
{
    char name[32];
    int saved = errno;

    if (!jn)
        return;
    if (remove) {
        name_of(name, sizeof(name), jn->domid, "");
        unlinkat(jn->dirfd, name, 0);
    }
    journal_free(jn);
    errno = saved;
}

/* ------------------------------------------------------------------ */
/* Recovery. */

const char *xmig_recover_state_name(enum xmig_recover_state s)
{
    static const char *const names[] = {
        "restored", "migrated", "saved",   "gone",
        "resolved", "unknown",  "running", "failed",
    };

    return (unsigned int)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* What one dead job left, and what recovery makes of it. */
struct rec {
    struct xmig__journal jn;
    struct xmig_dominfo info;
    char found[256];
    char done[256];
    char where[512];
};

static void add(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends to a ", "-separated list. */
static void add(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;

    if (used && used + 2 < len) {
        memcpy(buf + used, ", ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

static const char *val(const struct rec *r, const char *key)
{
    const char *v = kv_get(&r->jn, key);

    return v ? v : "";
}

static bool is_migrate(const struct rec *r)
{
    return kv_is(&r->jn, "kind", "migrate");
}

/* Log-dirty mode is on from the first pass to the end of the stream. */
static bool reached_stream(const struct rec *r)
{
    const char *phase = kv_get(&r->jn, "phase");

    return phase && strcmp(phase, "connect") != 0;
}

/* Is domain domid still the job's guest, or a new one with its id? */
static bool same_domain(const struct rec *r)
{
    const char *u = kv_get(&r->jn, "uuid");
    char mine[33];

    if (u && *u && uuid_known(r->info.uuid)) {
        uuid_str(r->info.uuid, mine);
        return strcmp(u, mine) == 0;
    }
    /* Without uuids: Xen hands out a domid again only after 32k others. */
    return strcmp(r->info.name, val(r, "name")) == 0 ||
           (is_migrate(r) && strcmp(r->info.name, val(r, "away")) == 0);
}

static enum xmig_recover_state gone(struct rec *r)
{
    if (is_migrate(r) && kv_is(&r->jn, "report", "ok")) {
        snprintf(r->where, sizeof(r->where),
                 "the receiver reported the guest running at %s as '%s'",
                 val(r, "dest"), val(r, "name"));
        return XMIG_RECOVER_MIGRATED;
    }
    if (!is_migrate(r) && kv_is(&r->jn, "saved", "1")) {
        snprintf(r->where, sizeof(r->where),
                 "the image is complete in '%s'; the domain is gone",
                 val(r, "dest"));
        return XMIG_RECOVER_SAVED;
    }
    snprintf(r->where, sizeof(r->where), "the domain no longer exists here%s%s",
             kv_is(&r->jn, "go_sent", "1") ? "; it may run at " : "",
             kv_is(&r->jn, "go_sent", "1") ? val(r, "dest") : "");
    return XMIG_RECOVER_GONE;
}

/* The go-ahead may have reached the receiver: the guest may be its. */
static enum xmig_recover_state handed_over(struct rec *r)
{
    xmig_xen *x = r->jn.x;
    const char *away = val(r, "away"), *why;

    if (strcmp(r->info.name, away) != 0) {
        snprintf(r->where, sizeof(r->where),
                 "someone settled it: it is called '%s' now; left alone",
                 r->info.name);
        return XMIG_RECOVER_RESOLVED;
    }
    if (kv_is(&r->jn, "report", "ok") && r->info.suspended) {
        if (x->ops->destroy(x, r->jn.domid) < 0) {
            add(r->done, sizeof(r->done), "cannot destroy our copy: %s",
                x->err);
            snprintf(r->where, sizeof(r->where),
                     "the receiver reported the guest running at %s; ours "
                     "stays suspended here as '%s'",
                     val(r, "dest"), away);
            return XMIG_RECOVER_FAILED;
        }
        add(r->done, sizeof(r->done), "destroyed our copy, as the job would");
        snprintf(r->where, sizeof(r->where),
                 "the receiver reported the guest running at %s as '%s'",
                 val(r, "dest"), val(r, "name"));
        return XMIG_RECOVER_MIGRATED;
    }
    if (kv_is(&r->jn, "report", "ok"))
        why = "the receiver reported it running, yet ours runs too";
    else if (kv_is(&r->jn, "report", "failed"))
        why = "the receiver reported a failure but not that it destroyed "
              "its copy";
    else
        why = "the job died before the receiver's report";
    snprintf(r->where, sizeof(r->where),
             "%s: the guest may run at %s as '%s'; ours stays here as '%s'; "
             "check both hosts and keep one copy",
             why, val(r, "dest"), val(r, "name"), away);
    return XMIG_RECOVER_UNKNOWN;
}

/* The save image is complete: finish as the job would have. */
static enum xmig_recover_state finish_save(struct rec *r)
{
    xmig_xen *x = r->jn.x;
    bool keep = kv_is(&r->jn, "keep", "1");

    if (!r->info.suspended) {
        snprintf(r->where, sizeof(r->where),
                 "the image is complete in '%s'; the guest runs here "
                 "(resumed by someone): left alone",
                 val(r, "dest"));
        return XMIG_RECOVER_RESOLVED;
    }
    if (keep ? x->ops->resume(x, r->jn.domid)
             : x->ops->destroy(x, r->jn.domid)) {
        add(r->done, sizeof(r->done), "cannot %s it: %s",
            keep ? "resume" : "destroy", x->err);
        snprintf(r->where, sizeof(r->where),
                 "the image is complete in '%s'; the guest stays "
                 "suspended here",
                 val(r, "dest"));
        return XMIG_RECOVER_FAILED;
    }
    if (keep && r->info.type == XMIG_DOM_HVM)
        x->ops->dm_discard(x, r->jn.domid);
    add(r->done, sizeof(r->done), "%s",
        keep ? "resumed it (--keep)" : "destroyed it, as the save would");
    snprintf(r->where, sizeof(r->where), "the image is complete in '%s'%s%s%s",
             val(r, "dest"), keep ? "; the guest runs here as '" : "",
             keep ? val(r, "name") : "", keep ? "'" : "");
    return XMIG_RECOVER_SAVED;
}

/* The guest is still ours: undo whatever the job did to it. */
static enum xmig_recover_state restore(struct rec *r)
{
    xmig_xen *x = r->jn.x;
    uint32_t domid = r->jn.domid;
    const char *name = val(r, "name"), *away = val(r, "away");
    const char *tmp = kv_get(&r->jn, "tmp");
    struct stat st;

    /* QEMU's first, as the job would: its log goes into Xen's. */
    if (reached_stream(r) && r->info.type == XMIG_DOM_HVM &&
        x->ops->dm_logdirty(x, domid, false) == 0)
        add(r->done, sizeof(r->done), "QEMU's log-dirty off");
    /* Off is off: Xen does not mind when it was not on. */
    if (reached_stream(r) && x->ops->logdirty_off(x, domid) == 0)
        add(r->done, sizeof(r->done), "log-dirty off");
    if (is_migrate(r) && strcmp(r->info.name, away) == 0) {
        /* Resumed under the away name, it would look migrated to xl. */
        if (x->ops->rename(x, domid, away, name) < 0) {
            add(r->done, sizeof(r->done), "cannot rename it back: %s", x->err);
            snprintf(r->where, sizeof(r->where),
                     "the guest stays %s here as '%s'",
                     r->info.suspended ? "suspended" : "running", away);
            return XMIG_RECOVER_FAILED;
        }
        add(r->done, sizeof(r->done), "renamed it back");
    }
    if (r->info.suspended) {
        if (x->ops->resume(x, domid) < 0) {
            add(r->done, sizeof(r->done), "cannot resume it: %s", x->err);
            snprintf(r->where, sizeof(r->where),
                     "the guest stays suspended here as '%s'", name);
            return XMIG_RECOVER_FAILED;
        }
        add(r->done, sizeof(r->done), "resumed it");
        /* QEMU's state of the undone suspend, if it got that far. */
        if (r->info.type == XMIG_DOM_HVM)
            x->ops->dm_discard(x, domid);
    }
    if (kv_is(&r->jn, "paused_by_job", "1") && r->info.paused) {
        if (x->ops->unpause(x, domid) < 0) {
            add(r->done, sizeof(r->done), "cannot unpause it: %s", x->err);
            snprintf(r->where, sizeof(r->where),
                     "the guest stays paused here as '%s'", name);
            return XMIG_RECOVER_FAILED;
        }
        add(r->done, sizeof(r->done), "unpaused it");
    }
    /* Only what the job created itself: never a FIFO, device or link. */
    if (!is_migrate(r) && tmp && *tmp && lstat(tmp, &st) == 0 &&
        S_ISREG(st.st_mode) && unlink(tmp) == 0)
        add(r->done, sizeof(r->done), "removed the partial image '%s'", tmp);
    if (!r->done[0])
        add(r->done, sizeof(r->done), "nothing left to undo");
    snprintf(r->where, sizeof(r->where), "the guest runs here as '%s'", name);
    return XMIG_RECOVER_RESTORED;
}

static enum xmig_recover_state decide(struct rec *r)
{
    xmig_xen *x = r->jn.x;
    bool go_sent = kv_is(&r->jn, "go_sent", "1");
    bool given_back =
        kv_is(&r->jn, "report", "failed") && kv_is(&r->jn, "permission", "1");

    if (!kv_get(&r->jn, "name") || !kv_get(&r->jn, "away") ||
        (!is_migrate(r) && !kv_is(&r->jn, "kind", "save"))) {
        add(r->done, sizeof(r->done),
            "nothing: the journal lacks kind, name "
            "or away");
        return XMIG_RECOVER_FAILED;
    }
    if (xmig_domain_info(x, r->jn.domid, &r->info) < 0) {
        if (errno == ESRCH)
            return gone(r);
        add(r->done, sizeof(r->done), "nothing: %s", x->err);
        return XMIG_RECOVER_FAILED;
    }
    if (!same_domain(r)) {
        add(r->found, sizeof(r->found), "domain %u is another guest now ('%s')",
            r->jn.domid, r->info.name);
        return gone(r);
    }
    if (is_migrate(r) && strcmp(r->info.name, val(r, "away")) == 0)
        add(r->found, sizeof(r->found), "renamed '%s'", r->info.name);
    if (r->info.suspended)
        add(r->found, sizeof(r->found), "suspended");
    if (r->info.paused)
        add(r->found, sizeof(r->found), "paused");
    if (!r->found[0])
        add(r->found, sizeof(r->found), "running");
    if (is_migrate(r) && go_sent && !given_back)
        return handed_over(r);
    if (!is_migrate(r) && kv_is(&r->jn, "saved", "1"))
        return finish_save(r);
    return restore(r);
}

static void tell(struct rec *r, enum xmig_recover_state st,
                 xmig_recover_fn *report, void *arg)
{
    struct xmig_recover_report rep = {
        .state = st,
        .kind = is_migrate(r) ? XMIG_JOB_MIGRATE : XMIG_JOB_SAVE,
        .domid = r->jn.domid,
        .name = val(r, "name"),
        .away_name = val(r, "away"),
        .dest = val(r, "dest"),
        .phase = val(r, "phase"),
        .found = r->found,
        .done = r->done,
    };
    char msg[1536], *c;

    if (!r->where[0])
        snprintf(r->where, sizeof(r->where),
                 "the journal stays for the next recovery");
    snprintf(msg, sizeof(msg),
             "%s: domain %u '%s' (%s to '%s', its job died in phase '%s'): "
             "found: %s; done: %s; %s",
             xmig_recover_state_name(st), rep.domid, rep.name,
             rep.kind == XMIG_JOB_SAVE ? "save" : "migrate", rep.dest,
             *rep.phase ? rep.phase : "start", r->found[0] ? r->found : "-",
             r->done[0] ? r->done : "nothing", r->where);
    if (st == XMIG_RECOVER_BUSY)
        snprintf(msg, sizeof(msg),
                 "%s: domain %u '%s' (%s to '%s', phase '%s'): "
                 "a live job (pid %s) holds it; left alone",
                 xmig_recover_state_name(st), rep.domid, rep.name,
                 rep.kind == XMIG_JOB_SAVE ? "save" : "migrate", rep.dest,
                 rep.phase, val(r, "pid"));
    /* One line, whatever the names and destinations hold. */
    for (c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    rep.message = msg;
    if (report)
        report(arg, &rep);
}

/* The report's state; -1 when there was nothing to report. */
static int recover_one(xmig_xen *x, int dirfd, uint32_t domid,
                       xmig_recover_fn *report, void *arg)
{
    struct rec r;
    enum xmig_recover_state st;
    char name[32];
    int lockfd = -1, got;

    memset(&r, 0, sizeof(r));
    r.jn.x = x;
    r.jn.dirfd = dirfd;
    r.jn.lockfd = -1;
    r.jn.domid = domid;
    got = lock_take(x, dirfd, domid, &lockfd);
    if (got <= 0) {
        if (journal_read(&r.jn) < 0 && errno == ENOENT) {
            kv_clear(&r.jn);
            return -1; /* a live job between two steps, or its end */
        }
        st = got == 0 ? XMIG_RECOVER_BUSY : XMIG_RECOVER_FAILED;
        if (got < 0)
            add(r.done, sizeof(r.done), "nothing: %s", x->err);
    } else if (journal_read(&r.jn) < 0) {
        if (errno == ENOENT) {
            /* What a job dying before its first journal leaves. */
            name_of(name, sizeof(name), domid, ".tmp");
            unlinkat(dirfd, name, 0);
            lock_drop(dirfd, domid, lockfd);
            kv_clear(&r.jn);
            return -1;
        }
        add(r.done, sizeof(r.done), "nothing: %s", x->err);
        st = XMIG_RECOVER_FAILED;
    } else {
        st = decide(&r);
    }
    tell(&r, st, report, arg);
    if (got > 0) {
        name_of(name, sizeof(name), domid, ".tmp");
        unlinkat(dirfd, name, 0);
        if (st != XMIG_RECOVER_UNKNOWN && st != XMIG_RECOVER_FAILED) {
            name_of(name, sizeof(name), domid, "");
            unlinkat(dirfd, name, 0);
        }
        lock_drop(dirfd, domid, lockfd);
    }
    kv_clear(&r.jn);
    return (int)st;
}

static int cmp_domid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* dom-<domid>, with .lock or .tmp or nothing after it. */
static bool parse_name(const char *s, uint32_t *domid_r)
{
    unsigned long id;
    char *end;

    if (strncmp(s, "dom-", 4) != 0 || s[4] < '0' || s[4] > '9')
        return false;
    id = strtoul(s + 4, &end, 10);
    if (id >= 0x7ff0 || (*end && strcmp(end, ".lock") && strcmp(end, ".tmp")))
        return false;
    *domid_r = (uint32_t)id;
    return true;
}

int xmig_recover(xmig_xen *x, const char *dir, xmig_recover_fn *report,
                 void *arg)
{
    uint32_t *ids = NULL, *more, id;
    size_t n = 0, cap = 0, i;
    struct dirent *de;
    int dirfd, fd, unknown = 0;
    DIR *d;

    dirfd = dir_open(x, dir, false);
    if (dirfd < 0)
        return errno == ENOENT ? 0 : -1;
    fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        xmig__seterr(x, errno, "%s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        close(dirfd);
        return -1;
    }
    while ((de = readdir(d))) {
        if (!parse_name(de->d_name, &id))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            more = realloc(ids, cap * sizeof(*ids));
            if (!more) {
                xmig__seterr(x, ENOMEM, "out of memory");
                unknown = -1;
                goto out;
            }
            ids = more;
        }
        ids[n++] = id;
    }
    if (n)
        qsort(ids, n, sizeof(*ids), cmp_domid);
    for (i = 0; i < n; i++)
        if ((i == 0 || ids[i] != ids[i - 1]) &&
            recover_one(x, dirfd, ids[i], report, arg) == XMIG_RECOVER_UNKNOWN)
            unknown++;
out:
    closedir(d);
    close(dirfd);
    free(ids);
    return unknown;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Crash recovery: jobs killed (SIGKILL, in a forked child) at each phase,
 * or journals written as a dying job would have left them, then
 * xmig_recover() against the test double's guest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "receiver.h"
#include "stream.h"
#include "test.h"
#include "xen-double.h"

#define DOMID 9

static char dir[64];

/* ---- a receiver that answers as xl does, or stops answering ---- */

enum rx_mode {
    RX_OK,        /* report: success */
    RX_NO_REPORT, /* takes the go-ahead, then says nothing */
};

struct rx {
    enum rx_mode mode;
    struct receiver r;
};

static void rx_serve(int fd, void *arg)
{
    struct rx *rx = arg;
    uint8_t buf[4096], status = 0;
    size_t got = 0, zeros = 0;
    ssize_t n;

    if (send(fd, XL_MIG_BANNER, XL_MIG_BANNER_LEN, MSG_NOSIGNAL) < 0)
        return;
    /*
     * The double's stream ends in the libxc and libxl END records, the
     * only 16 zero bytes in a row in it.
     */
    while (zeros < 16) {
        ssize_t i;

        n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        for (i = 0; i < n; i++)
            zeros = buf[i] ? 0 : zeros + 1;
    }
    if (send(fd, XL_MIG_READY, XL_MIG_READY_LEN, MSG_NOSIGNAL) < 0)
        return;
    got = 0;
    while (got < XL_MIG_GO_LEN && (n = read(fd, buf, XL_MIG_GO_LEN - got)) > 0)
        got += (size_t)n;
    if (got < XL_MIG_GO_LEN)
        return;
    if (rx->mode == RX_NO_REPORT) {
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
        return;
    }
    send(fd, XL_MIG_REPORT, XL_MIG_REPORT_LEN, MSG_NOSIGNAL);
    send(fd, &status, 1, MSG_NOSIGNAL);
}

static void rx_start(struct rx *rx, enum rx_mode mode)
{
    memset(rx, 0, sizeof(*rx));
    rx->mode = mode;
    receiver_start(&rx->r, rx_serve, rx);
}

/* ---- the journal directory ---- */

static void dir_make(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xmig-journal.XXXXXX");
    if (!mkdtemp(dir))
        abort();
}

static void dir_remove(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[384];

    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* The names in dir, sorted, space-separated ("" when empty). */
/* Whether a save's temporary file (".NAME.xmig-XXXXXX") is in dir. */
static bool temp_left(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    bool found = false;

    while (d && (de = readdir(d)))
        found |= strstr(de->d_name, ".xmig-") != NULL;
    if (d)
        closedir(d);
    return found;
}

static const char *dir_list(void)
{
    static char out[512];
    struct dirent **names;
    int n, i;

    out[0] = 0;
    n = scandir(dir, &names, NULL, alphasort);
    for (i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            if (out[0])
                strcat(out, " ");
            strncat(out, names[i]->d_name, sizeof(out) - strlen(out) - 64);
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return out;
}

static char *journal_text(void)
{
    static char buf[4096];
    char path[128];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/dom-%u", dir, DOMID);
    buf[0] = 0;
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return buf;
    n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    return buf;
}

/* A journal as a dying job would have left it. */
static void journal_write(const char *text)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/dom-%u", dir, DOMID);
    f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

#define MIGRATE_JOURNAL                                                        \
    "kind=migrate\ndomid=9\nname=guest\naway=guest--migratedaway\n"            \
    "uuid=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\ndest=tcp://127.0.0.1:1\n"          \
    "pid=1\n"

/* ---- recovery and what it said ---- */

struct said {
    unsigned int n;
    enum xmig_recover_state state;
    char message[1536];
};

static void on_report(void *arg, const struct xmig_recover_report *rep)
{
    struct said *s = arg;

    if (getenv("TEST_VERBOSE"))
        printf("  | %s\n", rep->message);
    s->n++;
    s->state = rep->state;
    snprintf(s->message, sizeof(s->message), "%s", rep->message);
}

static int recover(xmig_xen *x, struct said *s)
{
    memset(s, 0, sizeof(*s));
    return xmig_recover(x, dir, on_report, s);
}

#define ASSERT_SAID(s, st, text)                                               \
    do {                                                                       \
        ASSERT_INT_EQ((s).n, 1);                                               \
        if ((s).state != (st))                                                 \
            TEST_FAIL("state %s, not %s: %s",                                  \
                      xmig_recover_state_name((s).state),                      \
                      xmig_recover_state_name(st), (s).message);               \
        if (!strstr((s).message, (text)))                                      \
            TEST_FAIL("'%s' lacks '%s'", (s).message, (text));                 \
    } while (0)

static xmig_xen *guest(void)
{
    struct dbl_config c = {.type = XMIG_DOM_PV, .domid = DOMID, .nr_pfns = 256};

    return dbl_open(&c);
}

/* Running here, as before the job. */
static void assert_restored(xmig_xen *x)
{
    struct dbl_guest *g = dbl_guest(x);

    ASSERT_TRUE(!g->suspended);
    ASSERT_TRUE(!g->destroyed);
    ASSERT_TRUE(!g->logdirty);
    ASSERT_TRUE(!g->paused);
    ASSERT_TRUE(strcmp(g->name, "guest") == 0);
}

/* ---- jobs killed in a forked child ---- */

enum kill_at {
    KILL_IN_PASS, /* the first live pass is done: log-dirty is on */
    KILL_IN_HANDSHAKE,
    KILL_COMMITTED, /* the go-ahead is out, no report yet */
};

static enum kill_at kill_point;

static void killer(void *arg, const struct xmig_event *ev)
{
    bool now = false;

    switch (kill_point) {
    case KILL_IN_PASS:
        now = ev->type == XMIG_EV_PASS;
        break;
    case KILL_IN_HANDSHAKE:
        now = ev->type == XMIG_EV_PHASE && strcmp(ev->phase, "handshake") == 0;
        break;
    case KILL_COMMITTED:
        now = ev->type == XMIG_EV_PHASE && strcmp(ev->phase, "committed") == 0;
        break;
    }
    if (now)
        raise(SIGKILL);
}

static void params(struct xmig_job_params *p, enum xmig_job_kind kind,
                   const char *dest)
{
    xmig_job_params_default(p);
    p->engine = XMIG_ENGINE_LIBXC; /* the double's stand-in */
    p->kind = kind;
    p->live = true;
    p->domain = "guest";
    p->dest = dest;
    p->journal_dir = dir;
}

/* Runs the job in a child that SIGKILLs itself at `at`. */
static void run_and_kill(xmig_xen *x, enum xmig_job_kind kind, const char *dest,
                         enum kill_at at)
{
    struct xmig_job_params p;
    struct xmig_job_result r;
    int status;
    pid_t pid;

    params(&p, kind, dest);
    p.event = killer;
    kill_point = at;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        xmig_job_run(x, &p, &r);
        _exit(0); /* not killed: the test sees it */
    }
    ASSERT_TRUE(pid > 0);
    ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_killed_in_stream(void)
{
    xmig_xen *x = guest();
    struct said s;
    struct rx rx;

    TEST_START("migrate killed in a live pass: log-dirty off, running");
    dir_make();
    rx_start(&rx, RX_OK);
    run_and_kill(x, XMIG_JOB_MIGRATE, rx.r.dest, KILL_IN_PASS);
    receiver_stop(&rx.r);
    ASSERT_TRUE(dbl_guest(x)->logdirty);
    ASSERT_TRUE(strstr(journal_text(), "phase=stream\n") != NULL);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED, "log-dirty off");
    assert_restored(x);
    ASSERT_INT_EQ(dbl_guest(x)->resumes, 0);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

/* HVM: QEMU logs its writes during the stream; recovery stops that too. */
static void test_killed_in_stream_hvm(void)
{
    struct dbl_config c = {
        .type = XMIG_DOM_HVM, .domid = DOMID, .nr_pfns = 256};
    xmig_xen *x = dbl_open(&c);
    struct said s;
    struct rx rx;

    TEST_START("hvm migrate killed in a live pass: QEMU's log-dirty off too");
    dir_make();
    rx_start(&rx, RX_OK);
    run_and_kill(x, XMIG_JOB_MIGRATE, rx.r.dest, KILL_IN_PASS);
    receiver_stop(&rx.r);
    ASSERT_TRUE(dbl_guest(x)->logdirty && dbl_guest(x)->dm_logdirty);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED,
                "QEMU's log-dirty off, log-dirty off");
    assert_restored(x);
    ASSERT_TRUE(!dbl_guest(x)->dm_logdirty);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_killed_in_handshake(void)
{
    xmig_xen *x = guest();
    struct said s;
    struct rx rx;

    TEST_START("migrate killed in the handshake: resumed");
    dir_make();
    rx_start(&rx, RX_OK);
    run_and_kill(x, XMIG_JOB_MIGRATE, rx.r.dest, KILL_IN_HANDSHAKE);
    receiver_stop(&rx.r);
    ASSERT_TRUE(dbl_guest(x)->suspended);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED,
                "found: suspended; done: log-dirty "
                "off, resumed it");
    assert_restored(x);
    ASSERT_INT_EQ(dbl_guest(x)->resumes, 1);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_renamed_before_go(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct said s;

    TEST_START("killed after the rename, before the go-ahead: taken back");
    dir_make();
    /* Until recovery has run, no new job touches the guest. */
    journal_write(MIGRATE_JOURNAL "phase=handshake\n");
    {
        struct xmig_job_params p;
        struct xmig_job_result r;

        params(&p, XMIG_JOB_MIGRATE, "exec:exit 0");
        ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
        ASSERT_TRUE(strstr(xmig_xen_error(x), "xmig recover") != NULL);
        ASSERT_TRUE(strstr(journal_text(), "phase=handshake\n") != NULL);
    }
    journal_write(MIGRATE_JOURNAL "phase=handshake\n");
    strcpy(g->name, "guest--migratedaway");
    g->suspended = true;
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED,
                "found: renamed 'guest--migratedaway', suspended; done: "
                "log-dirty off, renamed it back, resumed it; the guest runs "
                "here as 'guest'");
    assert_restored(x);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_killed_after_go(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct said s;
    struct rx rx;

    TEST_START("killed after the go-ahead, no report: left, unknown, again");
    dir_make();
    rx_start(&rx, RX_NO_REPORT);
    run_and_kill(x, XMIG_JOB_MIGRATE, rx.r.dest, KILL_COMMITTED);
    receiver_stop(&rx.r);
    ASSERT_TRUE(strstr(journal_text(), "go_sent=1\n") != NULL);
    /* Every recovery says so, and touches nothing. */
    ASSERT_INT_EQ(recover(x, &s), 1);
    ASSERT_SAID(s, XMIG_RECOVER_UNKNOWN,
                "ours stays here as "
                "'guest--migratedaway'");
    ASSERT_INT_EQ(recover(x, &s), 1);
    ASSERT_SAID(s, XMIG_RECOVER_UNKNOWN, "the guest may run at");
    ASSERT_TRUE(g->suspended && !g->destroyed);
    ASSERT_TRUE(strcmp(g->name, "guest--migratedaway") == 0);
    ASSERT_INT_EQ(g->resumes, 0);
    ASSERT_TRUE(strcmp(dir_list(), "dom-9") == 0);
    /* The admin finds it running there and destroys ours. */
    dbl_kill_domain(x);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_GONE, "no longer exists here");
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_unknown_resolved_by_rename(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct said s;

    TEST_START("unknown, then the admin renames ours back: left alone");
    dir_make();
    journal_write(MIGRATE_JOURNAL "phase=committed\ngo_sent=1\n"
                                  "report=failed\n");
    strcpy(g->name, "guest--migratedaway");
    g->suspended = true;
    ASSERT_INT_EQ(recover(x, &s), 1);
    ASSERT_SAID(s, XMIG_RECOVER_UNKNOWN, "reported a failure but not");
    strcpy(g->name, "guest");
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESOLVED, "left alone");
    ASSERT_TRUE(g->suspended); /* the admin's to resume */
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_report_ok(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct said s;

    TEST_START("killed after the receiver's success: our copy destroyed");
    dir_make();
    journal_write(MIGRATE_JOURNAL "phase=committed\ngo_sent=1\nreport=ok\n");
    strcpy(g->name, "guest--migratedaway");
    g->suspended = true;
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_MIGRATED, "destroyed our copy");
    ASSERT_TRUE(g->destroyed);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    /* And if it is gone already, nothing is destroyed twice. */
    g->destroyed = false;
    journal_write(MIGRATE_JOURNAL "phase=committed\ngo_sent=1\nreport=ok\n");
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_MIGRATED, "running at tcp://127.0.0.1:1");
    ASSERT_TRUE(!g->destroyed);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_failed_with_permission(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct said s;

    TEST_START("the receiver failed and gave permission: resumed here");
    dir_make();
    journal_write(MIGRATE_JOURNAL "phase=committed\ngo_sent=1\n"
                                  "report=failed\npermission=1\n");
    strcpy(g->name, "guest--migratedaway");
    g->suspended = true;
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED, "renamed it back, resumed it");
    assert_restored(x);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_save_killed(void)
{
    xmig_xen *x = guest();
    struct said s;
    char dest[128], tmp[128], fifo[128];
    struct stat st;
    char text[512];

    TEST_START("save killed in a live pass: resumed, only the temp file goes");
    dir_make();
    snprintf(dest, sizeof(dest), "%s/image", dir);
    run_and_kill(x, XMIG_JOB_SAVE, dest, KILL_IN_PASS);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED, "save to");
    assert_restored(x);
    /* The job wrote a temporary file only, and recovery removed it. */
    ASSERT_TRUE(stat(dest, &st) < 0 && errno == ENOENT);
    ASSERT_TRUE(!temp_left());

    /* The temp file the job journaled goes; a FIFO there would stay. */
    snprintf(tmp, sizeof(tmp), "%s/image.tmp", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    close(open(tmp, O_WRONLY | O_CREAT, 0600));
    ASSERT_INT_EQ(mkfifo(fifo, 0600), 0);
    snprintf(text, sizeof(text),
             "kind=save\ndomid=9\nname=guest\naway=guest--migratedaway\n"
             "dest=%s\ntmp=%s\nphase=stream\n",
             dest, tmp);
    journal_write(text);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED, "removed the partial image");
    ASSERT_TRUE(stat(tmp, &st) < 0 && errno == ENOENT);
    snprintf(text, sizeof(text),
             "kind=save\ndomid=9\nname=guest\naway=guest--migratedaway\n"
             "dest=%s\ntmp=%s\nphase=stream\n",
             dest, fifo);
    journal_write(text);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED, "log-dirty off; ");
    ASSERT_TRUE(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_save_complete(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct said s;

    TEST_START("save killed once the image was complete: finished");
    dir_make();
    journal_write("kind=save\ndomid=9\nname=guest\naway=guest--migratedaway\n"
                  "dest=/x/image\nphase=stream\nsaved=1\n");
    g->suspended = true;
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_SAVED, "destroyed it, as the save would");
    ASSERT_TRUE(g->destroyed);
    xmig_xen_close(x);

    x = guest();
    g = dbl_guest(x);
    journal_write("kind=save\ndomid=9\nname=guest\naway=guest--migratedaway\n"
                  "dest=/x/image\nphase=stream\nsaved=1\nkeep=1\n");
    g->suspended = true;
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_SAVED, "resumed it (--keep)");
    assert_restored(x);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_domain_gone(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct said s;

    TEST_START("domain gone or another guest: journal removed, nothing done");
    dir_make();
    journal_write(MIGRATE_JOURNAL "phase=stream\n");
    dbl_kill_domain(x);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_GONE, "no longer exists");
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    xmig_xen_close(x);

    /* The same domid, another uuid: not ours to resume. */
    x = guest();
    g = dbl_guest(x);
    g->uuid[0] ^= 1;
    g->suspended = true;
    journal_write(MIGRATE_JOURNAL "phase=handshake\n");
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_GONE, "is another guest now");
    ASSERT_TRUE(g->suspended);
    ASSERT_INT_EQ(g->resumes, 0);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_live_job_skipped(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct xmig__journal *jn = NULL;
    struct xmig_job_params p;
    struct xmig_dominfo info;
    struct said s;

    TEST_START("a live job's lock: recovery leaves its guest alone");
    dir_make();
    params(&p, XMIG_JOB_MIGRATE, "tcp://127.0.0.1:1");
    ASSERT_INT_EQ(xmig_domain_info(x, DOMID, &info), 0);
    ASSERT_INT_EQ(xmig__journal_open(x, &p, &info, &jn), 0);
    ASSERT_PTR_NONNULL(jn);
    ASSERT_INT_EQ(xmig__journal_set(jn, "phase", "stream"), 0);
    g->suspended = true;
    g->logdirty = true;
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_BUSY, "a live job");
    ASSERT_TRUE(g->suspended && g->logdirty);
    ASSERT_TRUE(strcmp(dir_list(), "dom-9 dom-9.lock") == 0);
    /* Nor may a second job start on it. */
    {
        struct xmig__journal *jn2 = NULL;

        ASSERT_INT_EQ(xmig__journal_open(x, &p, &info, &jn2), -1);
        ASSERT_INT_EQ(errno, EBUSY);
        ASSERT_PTR_NULL(jn2);
    }
    xmig__journal_close(jn, true);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_finished_jobs_leave_nothing(void)
{
    xmig_xen *x = guest();
    struct xmig_job_params p;
    struct xmig_job_result r;
    char dest[128];
    struct rx rx;

    TEST_START("jobs that end, well or not, leave no journal");
    dir_make();
    params(&p, XMIG_JOB_MIGRATE, "exec:exit 0");
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    snprintf(dest, sizeof(dest), "%s/image", dir);
    params(&p, XMIG_JOB_SAVE, dest);
    p.keep = true;
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), 0);
    ASSERT_TRUE(strcmp(dir_list(), "image") == 0);
    unlink(dest);
    rx_start(&rx, RX_OK);
    params(&p, XMIG_JOB_MIGRATE, rx.r.dest);
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), 0);
    receiver_stop(&rx.r);
    ASSERT_TRUE(dbl_guest(x)->destroyed);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

/*
 * The guest's domain ends while it is suspended (a crash, or the
 * toolstack destroys it): the resume fails, the job says the guest is
 * gone, and its journal goes, since nothing of the guest is left here
 * to recover.  Kept, it would stay until xmigd starts again.
 */
static void test_gone_while_suspended(void)
{
    xmig_xen *x = guest();
    struct xmig_job_params p;
    struct xmig_job_result r;
    char dest[128];

    TEST_START("a guest that ends while suspended leaves no journal");
    dir_make();
    snprintf(dest, sizeof(dest), "%s/image", dir);
    params(&p, XMIG_JOB_SAVE, dest);
    p.engine = XMIG_ENGINE_XMIG;
    p.live = false;
    p.keep = true;
    dbl_kill_types_at(x, 1); /* after the suspend: a non-live save */
    ASSERT_INT_EQ(xmig_job_run(x, &p, &r), -1);
    ASSERT_INT_EQ(r.guest, XMIG_GUEST_GONE);
    ASSERT_INT_EQ(dbl_guest(x)->suspends, 1);
    ASSERT_INT_EQ(dbl_guest(x)->resumes, 0);
    ASSERT_TRUE(strcmp(dir_list(), "") == 0);
    if (test_cur_failed)
        printf("  error: %s; left: %s\n", xmig_xen_error(x), dir_list());
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

static void test_format(void)
{
    xmig_xen *x = guest();
    struct dbl_guest *g = dbl_guest(x);
    struct xmig__journal *jn = NULL;
    struct xmig_job_params p;
    struct xmig_dominfo info;
    char path[128];
    struct said s;

    TEST_START("journal: escaped values, orphans, bad files, paused");
    dir_make();
    params(&p, XMIG_JOB_MIGRATE, "exec:printf 'a\nb%'");
    ASSERT_INT_EQ(xmig_domain_info(x, DOMID, &info), 0);
    ASSERT_INT_EQ(xmig__journal_open(x, &p, &info, &jn), 0);
    ASSERT_TRUE(strstr(journal_text(), "dest=exec:printf 'a%0ab%25'\n"));
    ASSERT_TRUE(
        strstr(journal_text(), "uuid=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"));
    /* Killed: the lock goes with the process; here, by hand. */
    xmig__journal_set(jn, "paused_by_job", "1");
    g->paused = true;
    snprintf(path, sizeof(path), "%s/dom-9.lock", dir);
    ASSERT_INT_EQ(unlink(path), 0);
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED, "to 'exec:printf 'a?b%''");
    ASSERT_SAID(s, XMIG_RECOVER_RESTORED, "unpaused it");
    assert_restored(x);
    xmig__journal_close(jn, false);

    /* What a job that died before its first journal leaves: no report. */
    snprintf(path, sizeof(path), "%s/dom-9.tmp", dir);
    close(open(path, O_WRONLY | O_CREAT, 0600));
    snprintf(path, sizeof(path), "%s/dom-12.lock", dir);
    close(open(path, O_WRONLY | O_CREAT, 0600));
    snprintf(path, sizeof(path), "%s/other", dir);
    close(open(path, O_WRONLY | O_CREAT, 0600));
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_INT_EQ(s.n, 0);
    ASSERT_TRUE(strcmp(dir_list(), "other") == 0);
    unlink(path);

    journal_write("kind=migrate\nthis is no journal\n");
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_SAID(s, XMIG_RECOVER_FAILED, "malformed");
    ASSERT_TRUE(strcmp(dir_list(), "dom-9") == 0);
    dir_remove();

    /* No directory: nothing to do.  Anyone may write there: refused. */
    ASSERT_INT_EQ(recover(x, &s), 0);
    ASSERT_INT_EQ(s.n, 0);
    dir_make();
    chmod(dir, 0777);
    ASSERT_INT_EQ(recover(x, &s), -1);
    ASSERT_TRUE(strstr(xmig_xen_error(x), "writable") != NULL);
    dir_remove();
    xmig_xen_close(x);
    TEST_DONE();
}

int main(void)
{
    test_killed_in_stream();
    test_killed_in_stream_hvm();
    test_killed_in_handshake();
    test_renamed_before_go();
    test_killed_after_go();
    test_unknown_resolved_by_rename();
    test_report_ok();
    test_failed_with_permission();
    test_save_killed();
    test_save_complete();
    test_domain_gone();
    test_gone_while_suspended();
    test_live_job_skipped();
    test_finished_jobs_leave_nothing();
    test_format();
    return TEST_EXIT();
}

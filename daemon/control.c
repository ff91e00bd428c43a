/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The control socket and its peers (PROTOCOL.md §1, §4, §5).  One struct
 * per connection; whatever goes wrong with a peer ends in peer_lost(),
 * which unhooks it at once and frees it from the loop later, so that no
 * callback ever runs on a freed peer.  Nothing a client sends is fatal.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "control.h"
#include "log.h"
#include "proto.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

struct peer {
    TAILQ_ENTRY(peer) entry;
    unsigned int no; /* for the log */
    struct bufferevent *bev;
    struct event *timer; /* a partial line waits too long */
    struct event *reap;  /* frees a lost peer from the loop */
    uid_t uid;
    gid_t gid;
    pid_t pid;
    int flags;
#define PEER_LOST 0x1      /* unhooked; freed by reap */
#define PEER_CLOSING 0x2   /* close once the output has gone */
#define PEER_THROTTLED 0x4 /* reading paused until the output drains */
#define PEER_EOF 0x8       /* the client has sent all it will */
    bool watch_all;
    uint64_t *watch;
    size_t nwatch;
    size_t capwatch;
    uint64_t dropped;
};

static TAILQ_HEAD(, peer) peers = TAILQ_HEAD_INITIALIZER(peers);
static struct event_base *base;
static struct control_cb cb;
static struct evconnlistener *listener;
static struct event *backoff;
static unsigned int nclients;
static unsigned int next_no = 1;
static struct control_counters counters;
static bool have_group;
static gid_t access_gid;
static char access_group[64];

static void process_input(struct peer *p, bool eof);

/* ------------------------------------------------------------------ */
/* Access. */

static bool in_group(int fd, const struct ucred *cr);
static void peer_close_after_flush(struct peer *p);
static struct json_object *error_line(struct json_object *id, const char *code,
                                      const char *msg);

static void denied(uid_t uid, char *msg, size_t n)
{
    if (have_group)
        snprintf(msg, n, "uid %u may not use xmigd (root and group %s only)",
                 (unsigned int)uid, access_group);
    else
        snprintf(msg, n, "uid %u may not use xmigd (root only)",
                 (unsigned int)uid);
}

/* A reload narrowed who may connect: those who no longer may, go. */
static void recheck_peers(void)
{
    struct peer *p;
    struct ucred cr;
    struct json_object *w;
    char msg[160];

    TAILQ_FOREACH(p, &peers, entry) {
        if (p->flags & (PEER_LOST | PEER_CLOSING) || p->uid == 0)
            continue;
        cr.uid = p->uid;
        cr.gid = p->gid;
        cr.pid = p->pid;
        if (in_group(bufferevent_getfd(p->bev), &cr))
            continue;
        denied(p->uid, msg, sizeof(msg));
        w = error_line(NULL, "permission_denied", msg);
        control_send(p, w);
        json_object_put(w);
        log_info("client %u (uid %u, pid %d): not allowed any more after "
                 "the reload: disconnected",
                 p->no, (unsigned int)p->uid, (int)p->pid);
        peer_close_after_flush(p);
    }
}

void control_set_access(const char *group)
{
    struct group *gr = group ? getgrnam(group) : NULL;

    have_group = gr != NULL;
    if (group && !gr)
        log_warnx("group '%s' does not exist: root only", group);
    access_gid = gr ? gr->gr_gid : 0;
    snprintf(access_group, sizeof(access_group), "%s", gr ? group : "");
    recheck_peers();
}

static bool in_group(int fd, const struct ucred *cr)
{
    gid_t groups[256];
    socklen_t len = sizeof(groups);
    size_t i;

    if (!have_group)
        return false;
    if (cr->gid == access_gid)
        return true;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
        return false;
    for (i = 0; i < len / sizeof(gid_t); i++)
        if (groups[i] == access_gid)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* Peers. */

static void peer_free(struct peer *p)
{
    if (!p)
        return;
    TAILQ_REMOVE(&peers, p, entry);
    nclients--;
    if (p->bev)
        bufferevent_free(p->bev);
    if (p->timer)
        event_free(p->timer);
    if (p->reap)
        event_free(p->reap);
    free(p->watch);
    free(p);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    peer_free(arg);
}

/* The one way a peer goes: from any callback, safely. */
static void peer_lost(struct peer *p, const char *why)
{
    if (p->flags & PEER_LOST)
        return;
    p->flags |= PEER_LOST;
    if (why)
        log_info("client %u (uid %u, pid %d): %s", p->no, (unsigned int)p->uid,
                 (int)p->pid, why);
    else
        log_debug("client %u: closed", p->no);
    if (p->dropped)
        log_debug("client %u: %llu progress events dropped (slow reader)",
                  p->no, (unsigned long long)p->dropped);
    p->nwatch = 0;
    p->watch_all = false;
    bufferevent_disable(p->bev, EV_READ | EV_WRITE);
    event_del(p->timer);
    event_active(p->reap, EV_TIMEOUT, 1);
}

/* Answer what is queued, then close. */
static void peer_close_after_flush(struct peer *p)
{
    struct evbuffer *in = bufferevent_get_input(p->bev);

    p->flags |= PEER_CLOSING;
    p->nwatch = 0;
    p->watch_all = false;
    bufferevent_disable(p->bev, EV_READ);
    evbuffer_drain(in, evbuffer_get_length(in));
    event_del(p->timer);
    if (evbuffer_get_length(bufferevent_get_output(p->bev)) == 0)
        peer_lost(p, NULL);
}

void control_send(struct peer *p, struct json_object *w)
{
    struct evbuffer *out;
    const char *line;
    size_t len;

    if (p->flags & PEER_LOST || !w)
        return;
    out = bufferevent_get_output(p->bev);
    if (evbuffer_get_length(out) > XMIGD_OUT_HARD) {
        peer_lost(p, "more than 1 MiB of output unread: disconnected");
        return;
    }
    /* json-c keeps the string with w: a broadcast builds it once. */
    line = proto_to_string(w, &len);
    if (!line || bufferevent_write(p->bev, line, len) < 0 ||
        bufferevent_write(p->bev, "\n", 1) < 0)
        peer_lost(p, "out of memory for its output");
}

/* {"id":...,"ok":false,"error":{"code":...,"message":...}}; id may be NULL. */
static struct json_object *error_line(struct json_object *id, const char *code,
                                      const char *msg)
{
    struct json_object *w = json_object_new_object(), *e;

    if (id)
        proto_add(w, "id", json_object_get(id));
    proto_add_bool(w, "ok", false);
    proto_add(w, "error", e = json_object_new_object());
    proto_add_str(e, "code", code);
    proto_add_text(e, "message", msg);
    return w;
}

void control_reply_error(struct peer *p, struct json_object *id,
                         const char *code, const char *fmt, ...)
{
    char msg[512];
    struct json_object *w;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    w = error_line(id, code, msg);
    control_send(p, w);
    json_object_put(w);
    log_debug("client %u: error %s: %s", p->no, code, msg);
}

static bool watches(const struct peer *p, uint64_t id)
{
    size_t i;

    if (p->watch_all)
        return true;
    for (i = 0; i < p->nwatch; i++)
        if (p->watch[i] == id)
            return true;
    return false;
}

void control_broadcast(uint64_t id, struct json_object *w, bool lossy)
{
    struct peer *p;

    TAILQ_FOREACH(p, &peers, entry) {
        if (p->flags & PEER_LOST || !watches(p, id))
            continue;
        if (lossy && evbuffer_get_length(bufferevent_get_output(p->bev)) >
                         XMIGD_OUT_SOFT) {
            p->dropped++;
            continue;
        }
        control_send(p, w);
    }
}

void control_broadcast_all(struct json_object *w)
{
    struct peer *p;

    TAILQ_FOREACH(p, &peers, entry)
        if (!(p->flags & PEER_LOST) && p->watch_all)
            control_send(p, w);
}

void control_watch_all(struct peer *p)
{
    p->watch_all = true;
}

void control_watch(struct peer *p, uint64_t id)
{
    uint64_t *n;

    if (watches(p, id))
        return;
    if (p->nwatch == p->capwatch) {
        n = realloc(p->watch, (p->capwatch ? p->capwatch * 2 : 4) * sizeof(*n));
        if (!n) {
            peer_lost(p, "out of memory for its watch list");
            return;
        }
        p->watch = n;
        p->capwatch = p->capwatch ? p->capwatch * 2 : 4;
    }
    p->watch[p->nwatch++] = id;
}

/* The job has ended: its watchers stop watching it. */
void control_unwatch_job(uint64_t id)
{
    struct peer *p;
    size_t i;

    TAILQ_FOREACH(p, &peers, entry) {
        for (i = 0; i < p->nwatch; i++) {
            if (p->watch[i] == id) {
                p->watch[i] = p->watch[--p->nwatch];
                break;
            }
        }
    }
}

uid_t control_peer_uid(const struct peer *p)
{
    return p->uid;
}

pid_t control_peer_pid(const struct peer *p)
{
    return p->pid;
}

unsigned int control_clients(void)
{
    return nclients;
}

const struct control_counters *control_counters(void)
{
    return &counters;
}

/* ------------------------------------------------------------------ */
/* Reading requests. */

static void handle_line(struct peer *p, const char *line, size_t len)
{
    struct request rq;
    struct request_error e;
    size_t i;

    for (i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            break;
    if (i == len)
        return; /* blank lines are ignored */
    counters.requests++;
    request_init(&rq);
    if (request_decode(&rq, line, len, &e) < 0) {
        counters.bad_requests++;
        control_reply_error(p, rq.id, e.code, "%s", e.message);
    } else {
        log_debug("client %u: %s", p->no, request_cmd_name(rq.cmd));
        cb.dispatch(p, &rq);
    }
    request_dispose(&rq);
}

static void too_long(struct peer *p)
{
    counters.bad_requests++;
    control_reply_error(p, NULL, "line_too_long",
                        "request line longer than %d bytes: closing",
                        PROTO_LINE_MAX);
    log_info("client %u (uid %u): request line too long: disconnected", p->no,
             (unsigned int)p->uid);
    peer_close_after_flush(p);
}

static void process_input(struct peer *p, bool eof)
{
    struct evbuffer *in = bufferevent_get_input(p->bev);
    struct evbuffer_ptr eol;
    struct timeval tv = {XMIGD_PARTIAL_TIMEOUT_S, 0};
    size_t len, eol_len;
    char *line;

    while (!(p->flags & (PEER_LOST | PEER_CLOSING))) {
        if (evbuffer_get_length(bufferevent_get_output(p->bev)) >
            XMIGD_OUT_SOFT) {
            /* Its answers pile up: read on when they have gone. */
            p->flags |= PEER_THROTTLED;
            bufferevent_disable(p->bev, EV_READ);
            break;
        }
        len = evbuffer_get_length(in);
        if (!len)
            break;
        eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (len >= PROTO_LINE_MAX) {
                too_long(p);
                break;
            }
            if (!eof) {
                if (!evtimer_pending(p->timer, NULL))
                    evtimer_add(p->timer, &tv);
                return;
            }
            /* The last line may lack its newline. */
            eol.pos = (ev_ssize_t)len;
            eol_len = 0;
        }
        if ((size_t)eol.pos + 1 > PROTO_LINE_MAX) {
            too_long(p);
            break;
        }
        line = malloc((size_t)eol.pos + 1);
        if (!line) {
            peer_lost(p, "out of memory for its request");
            break;
        }
        evbuffer_remove(in, line, (size_t)eol.pos);
        evbuffer_drain(in, eol_len);
        line[eol.pos] = 0;
        handle_line(p, line, (size_t)eol.pos);
        free(line);
    }
    if (!(p->flags & PEER_LOST))
        event_del(p->timer);
    if (eof && !(p->flags & (PEER_LOST | PEER_THROTTLED | PEER_CLOSING)))
        peer_close_after_flush(p);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    process_input(arg, false);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;

    /* The output has drained (the low watermark is 0). */
    if (p->flags & PEER_LOST)
        return;
    if (p->flags & PEER_CLOSING) {
        peer_lost(p, NULL);
        return;
    }
    if (p->flags & PEER_THROTTLED) {
        p->flags &= ~PEER_THROTTLED;
        if (!(p->flags & PEER_EOF))
            bufferevent_enable(p->bev, EV_READ);
        process_input(p, p->flags & PEER_EOF);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct peer *p = arg;

    if (p->flags & PEER_LOST)
        return;
    if (what & BEV_EVENT_EOF) {
        /* It has said all it will: answer that, then close. */
        p->flags |= PEER_EOF;
        process_input(p, true);
        return;
    }
    if (what & BEV_EVENT_ERROR)
        peer_lost(p, (p->nwatch || p->watch_all) ? "vanished while watching"
                                                 : NULL);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct peer *p = arg;

    peer_lost(p, "sent part of a line and nothing more for 30 s: "
                 "disconnected");
}

/* ------------------------------------------------------------------ */
/* Accepting. */

/* For a peer that gets no struct: one line, best effort, then close. */
static void refuse(int fd, const char *code, const char *msg)
{
    struct json_object *w = error_line(NULL, code, msg);
    const char *s = w ? proto_to_string(w, NULL) : NULL;
    char *line = NULL;
    ssize_t r;

    if (s && asprintf(&line, "%s\n", s) > 0) {
        r = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)r;
    }
    free(line);
    json_object_put(w);
    counters.refused++;
    close(fd);
}

static unsigned int peers_of(uid_t uid)
{
    const struct peer *p;
    unsigned int n = 0;

    TAILQ_FOREACH(p, &peers, entry)
        if (p->uid == uid)
            n++;
    return n;
}

/*
 * Room for one more connection of uid; else why not.  No uid but root may
 * take all the connections, and none may take the last ones: root can
 * always get in to see and cancel what runs.
 */
static bool room_for(uid_t uid, char *why, size_t n)
{
    if (nclients >= XMIGD_MAX_CLIENTS) {
        snprintf(why, n, "xmigd serves %d clients already", XMIGD_MAX_CLIENTS);
        return false;
    }
    if (uid == 0)
        return true;
    if (nclients >= XMIGD_MAX_CLIENTS - XMIGD_ROOT_CLIENTS) {
        snprintf(why, n,
                 "xmigd serves %d clients already (its last %d "
                 "connections are root's)",
                 XMIGD_MAX_CLIENTS - XMIGD_ROOT_CLIENTS, XMIGD_ROOT_CLIENTS);
        return false;
    }
    if (peers_of(uid) >= XMIGD_MAX_CLIENTS_UID) {
        snprintf(why, n, "uid %u has %d connections to xmigd already",
                 (unsigned int)uid, XMIGD_MAX_CLIENTS_UID);
        return false;
    }
    return true;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    struct peer *p;
    char msg[160];

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
        log_warn("%s: SO_PEERCRED", __func__);
        refuse(fd, "internal", "cannot read the peer's credentials");
        return;
    }
    if (cr.uid != 0 && !in_group(fd, &cr)) {
        denied(cr.uid, msg, sizeof(msg));
        log_info("refused uid %u (pid %d): permission denied",
                 (unsigned int)cr.uid, (int)cr.pid);
        refuse(fd, "permission_denied", msg);
        return;
    }
    if (!room_for(cr.uid, msg, sizeof(msg))) {
        log_warnx("refused uid %u (pid %d): %s", (unsigned int)cr.uid,
                  (int)cr.pid, msg);
        refuse(fd, "too_many_clients", msg);
        return;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        refuse(fd, "internal", "out of memory");
        return;
    }
    p->no = next_no++;
    p->uid = cr.uid;
    p->gid = cr.gid;
    p->pid = cr.pid;
    TAILQ_INSERT_TAIL(&peers, p, entry);
    nclients++;
    p->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    p->timer = evtimer_new(base, timer_cb, p);
    p->reap = evtimer_new(base, reap_cb, p);
    if (!p->bev || !p->timer || !p->reap) {
        if (!p->bev)
            close(fd);
        peer_free(p);
        counters.refused++;
        log_warnx("%s: out of memory", __func__);
        return;
    }
    bufferevent_setcb(p->bev, read_cb, write_cb, event_cb, p);
    bufferevent_setwatermark(p->bev, EV_READ, 0, 2 * PROTO_LINE_MAX);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    log_debug("client %u: uid %u pid %d connected", p->no, (unsigned int)cr.uid,
              (int)cr.pid);
    cb.greet(p);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    evconnlistener_enable(listener);
}

/* Out of fds: pause accepting for a second rather than spin. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct timeval tv = {1, 0};
    int err = EVUTIL_SOCKET_ERROR();

    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        log_warnx("accept: %s: pausing for a second", strerror(err));
        evconnlistener_disable(listener);
        evtimer_add(backoff, &tv);
        return;
    }
    log_warnx("accept: %s", strerror(err));
}

int control_init(struct event_base *b, int fd, const struct control_cb *c)
{
    base = b;
    cb = *c;
    listener = evconnlistener_new(base, accept_cb, NULL,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                  -1, fd);
    backoff = evtimer_new(base, backoff_cb, NULL);
    if (!listener || !backoff) {
        log_warnx("%s: cannot listen on the control socket", __func__);
        return -1;
    }
    evconnlistener_set_error_cb(listener, accept_error_cb);
    return 0;
}

void control_flush_and_close_all(void)
{
    struct peer *p;

    if (listener)
        evconnlistener_disable(listener);
    TAILQ_FOREACH(p, &peers, entry)
        if (!(p->flags & (PEER_LOST | PEER_CLOSING)))
            peer_close_after_flush(p);
}

void control_shutdown(void)
{
    struct peer *p;

    while ((p = TAILQ_FIRST(&peers)))
        peer_free(p);
    if (listener)
        evconnlistener_free(listener);
    listener = NULL;
    if (backoff)
        event_free(backoff);
    backoff = NULL;
}

/* ------------------------------------------------------------------ */
/* A socket of our own (not systemd's). */

void control_chmod(const char *path, const char *group)
{
    struct group *gr = group ? getgrnam(group) : NULL;

    if (chown(path, 0, gr ? gr->gr_gid : 0) < 0)
        log_warn("chown %s", path);
    if (chmod(path, gr ? 0660 : 0600) < 0)
        log_warn("chmod %s", path);
}

/* Someone answers on path: another xmigd. */
static bool alive(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool yes;

    if (fd < 0)
        return false;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    yes = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    return yes;
}

static int fail(char **err_r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(char **err_r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(err_r, fmt, ap) < 0)
        *err_r = NULL;
    va_end(ap);
    return -1;
}

int control_listen(const char *path, const char *group, char **err_r)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    char dir[sizeof(sun.sun_path)], *slash;
    mode_t old;
    int fd, r;

    *err_r = NULL;
    if (strlen(path) >= sizeof(sun.sun_path))
        return fail(err_r, "socket path too long: %s", path);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return fail(err_r, "cannot create %s: %s", dir, strerror(errno));
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return fail(err_r, "%s exists and is not a socket", path);
        if (alive(path))
            return fail(err_r, "another xmigd is listening on %s", path);
        unlink(path); /* left over from a crash */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return fail(err_r, "socket: %s", strerror(errno));
    old = umask(0177); /* 0600 from the start: no window */
    r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r < 0) {
        fail(err_r, "cannot bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 64) < 0) {
        fail(err_r, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    if (group)
        control_chmod(path, group);
    return fd;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig as xmigd's client: connect, check the greeting, send one-line
 * requests, read responses and events (daemon/PROTOCOL.md).  Blocking and
 * simple: the CLI has nothing else to do meanwhile.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig-cli.h"

const char *cli_socket;

const char *client_socket_path(void)
{
    const char *env = getenv("XMIG_SOCKET");

    if (cli_socket)
        return cli_socket;
    return env && *env ? env : PROTO_DEFAULT_SOCKET;
}

void client_init(struct client *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void client_close(struct client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    json_object_put(c->msg);
    free(c->buf);
    free(c->line);
    client_init(c);
}

/* One line from the daemon, without its newline; NULL at EOF or error. */
static const char *read_line(struct client *c, size_t *len_r)
{
    char *nl, *p;
    ssize_t n;
    size_t len;

    for (;;) {
        nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        if (nl) {
            len = (size_t)(nl - c->buf);
            p = realloc(c->line, len + 1);
            if (!p)
                return NULL;
            c->line = p;
            memcpy(c->line, c->buf, len);
            c->line[len] = 0;
            memmove(c->buf, nl + 1, c->len - len - 1);
            c->len -= len + 1;
            *len_r = len;
            return c->line;
        }
        if (c->len >= PROTO_REPLY_MAX) {
            errno = EMSGSIZE;
            return NULL;
        }
        if (c->cap - c->len < 4096) {
            p = realloc(c->buf, c->cap ? c->cap * 2 : 65536);
            if (!p)
                return NULL;
            c->buf = p;
            c->cap = c->cap ? c->cap * 2 : 65536;
        }
        n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ECONNRESET;
            return NULL;
        }
        c->len += (size_t)n;
    }
}

struct json_object *client_next(struct client *c)
{
    char err[128];
    const char *line;
    size_t len;

    json_object_put(c->msg);
    c->msg = NULL;
    line = read_line(c, &len);
    if (!line)
        return NULL;
    /* Requests have limits; what the daemon sends has none. */
    if (proto_parse_reply(line, len, &c->msg, err, sizeof(err)) < 0 ||
        !json_object_is_type(c->msg, json_type_object)) {
        cli_error("xmigd sent malformed JSON (%s): %.80s",
                  err[0] ? err : "not an object", line);
        errno = EPROTO;
        return NULL;
    }
    return c->msg;
}

const char *client_line(const struct client *c)
{
    return c->line ? c->line : "";
}

static void client_print_error(struct json_object *resp)
{
    struct json_object *e = proto_get(resp, "error");
    const char *msg = proto_str(e, "message");
    const char *code = proto_str(e, "code");

    cli_error("%s (%s)", *msg ? msg : "unknown error", *code ? code : "?");
}

int client_open(struct client *c, bool direct_hint)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    const char *path = client_socket_path();
    struct json_object *hello, *v;
    long long version;

    client_init(c);
    if (strlen(path) >= sizeof(sun.sun_path)) {
        cli_error("socket path too long: %s", path);
        return EXIT_USAGE;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        cli_error("socket: %s", strerror(errno));
        return EXIT_FAIL;
    }
    if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int err = errno;

        client_close(c);
        if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR) {
            cli_error("xmigd is not running (socket %s): start it with "
                      "`systemctl start xmigd`%s",
                      path, direct_hint ? ", or use --direct" : "");
            return EXIT_NO_DAEMON;
        }
        if (err == EACCES || err == EPERM)
            cli_error("permission denied on %s: xmigd serves root (and the "
                      "group that xmigd.conf allows)",
                      path);
        else
            cli_error("cannot connect to xmigd at %s: %s", path, strerror(err));
        return EXIT_FAIL;
    }
    hello = client_next(c);
    if (!hello) {
        cli_error("xmigd at %s closed the connection without a greeting", path);
        client_close(c);
        return EXIT_FAIL;
    }
    v = proto_get(hello, "ok");
    if (json_object_is_type(v, json_type_boolean) &&
        !json_object_get_boolean(v)) {
        client_print_error(hello);
        client_close(c);
        return EXIT_FAIL;
    }
    v = proto_get(hello, "protocol");
    version = json_object_is_type(v, json_type_int)
                  ? proto_int(hello, "protocol")
                  : -1;
    if (version != PROTO_VERSION) {
        cli_error("xmigd at %s speaks another protocol (%lld; xmig speaks "
                  "%d): are xmig and xmigd from the same release?",
                  path, version, PROTO_VERSION);
        client_close(c);
        return EXIT_FAIL;
    }
    c->xen = proto_bool(hello, "xen");
    return EXIT_OK;
}

int client_send(struct client *c, const char *line, size_t len)
{
    ssize_t n;

    while (len) {
        n = send(c->fd, line, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cli_error("sending to xmigd: %s", strerror(errno));
            return -1;
        }
        line += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A request's JSON: begin, add fields, then client_request(). */
void client_req_begin(struct client_req *rq, const char *cmd)
{
    rq->o = json_object_new_object();
    proto_add_str(rq->o, "cmd", cmd);
    proto_add_int(rq->o, "protocol", PROTO_VERSION);
}

struct json_object *client_request(struct client *c, struct client_req *rq,
                                   client_event_fn *ev, void *arg)
{
    struct json_object *m = NULL;
    const char *line = rq->o ? proto_to_string(rq->o, NULL) : NULL;
    int rc = -1;

    if (!line) {
        cli_error("out of memory");
        json_object_put(rq->o);
        rq->o = NULL;
        return NULL;
    }
    rc = client_send(c, line, strlen(line));
    if (rc == 0)
        rc = client_send(c, "\n", 1);
    json_object_put(rq->o);
    rq->o = NULL;
    if (rc < 0)
        return NULL;
    while ((m = client_next(c))) {
        if (proto_has(m, "ok", NULL)) {
            if (proto_bool(m, "ok"))
                return m;
            client_print_error(m);
            return NULL;
        }
        if (ev)
            ev(arg, m);
    }
    cli_error("xmigd closed the connection: %s", strerror(errno));
    return NULL;
}

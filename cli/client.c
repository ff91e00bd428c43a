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

#define DEFAULT_SOCKET "/run/xmig/xmigd.sock"
/*
 * Far above the longest line xmigd sends: a list of every job it keeps
 * (256 queued, 64 running, 64 ended) with 4 KiB destinations is < 8 MiB.
 */
#define LINE_MAX_IN (64 << 20)

const char *cli_socket;

const char *client_socket_path(void)
{
    const char *env = getenv("XMIG_SOCKET");

    if (cli_socket)
        return cli_socket;
    return env && *env ? env : DEFAULT_SOCKET;
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
    json_doc_free(c->doc);
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
        if (c->len >= LINE_MAX_IN) {
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

const struct json_value *client_next(struct client *c)
{
    char err[128];
    const char *line;
    size_t len;

    json_doc_free(c->doc);
    c->doc = NULL;
    line = read_line(c, &len);
    if (!line)
        return NULL;
    /* Requests have limits; what the daemon sends has none. */
    c->doc = json_parse_limits(line, len, &json_reply_limits, err, sizeof(err));
    if (!c->doc) {
        cli_error("xmigd sent malformed JSON (%s): %.80s", err, line);
        errno = EPROTO;
        return NULL;
    }
    return json_root(c->doc);
}

const char *client_line(const struct client *c)
{
    return c->line ? c->line : "";
}

static bool client_ok(const struct json_value *resp)
{
    const struct json_value *v = json_get(resp, "ok");

    return v && v->type == JSON_BOOL && v->b;
}

static void client_print_error(const struct json_value *resp)
{
    const struct json_value *e = json_get(resp, "error");
    const struct json_value *msg = json_get(e, "message");
    const struct json_value *code = json_get(e, "code");

    cli_error("%s (%s)",
              msg && msg->type == JSON_STRING ? msg->s : "unknown error",
              code && code->type == JSON_STRING ? code->s : "?");
}

int client_open(struct client *c, bool direct_hint)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    const char *path = client_socket_path();
    const struct json_value *hello, *v;

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
    v = json_get(hello, "ok");
    if (v && v->type == JSON_BOOL && !v->b) {
        client_print_error(hello);
        client_close(c);
        return EXIT_FAIL;
    }
    v = json_get(hello, "protocol");
    if (!v || v->type != JSON_INT || v->i != CLIENT_PROTOCOL) {
        cli_error("xmigd at %s speaks another protocol (%lld; xmig speaks "
                  "%d): are xmig and xmigd from the same release?",
                  path, v && v->type == JSON_INT ? v->i : -1LL,
                  CLIENT_PROTOCOL);
        client_close(c);
        return EXIT_FAIL;
    }
    v = json_get(hello, "xen");
    c->xen = v && v->type == JSON_BOOL && v->b;
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
    rq->buf = NULL;
    rq->len = 0;
    rq->f = open_memstream(&rq->buf, &rq->len);
    if (!rq->f)
        return;
    json_begin(&rq->j, rq->f);
    json_open(&rq->j, NULL, '{');
    json_str(&rq->j, "cmd", cmd);
    json_u64(&rq->j, "protocol", CLIENT_PROTOCOL);
}

const struct json_value *client_request(struct client *c, struct client_req *rq,
                                        client_event_fn *ev, void *arg)
{
    const struct json_value *m = NULL;
    int rc = -1;

    if (!rq->f) {
        cli_error("out of memory");
        return NULL;
    }
    json_close(&rq->j, '}');
    json_end(&rq->j);
    if (fclose(rq->f) == 0)
        rc = client_send(c, rq->buf, rq->len);
    rq->f = NULL;
    free(rq->buf);
    rq->buf = NULL;
    if (rc < 0)
        return NULL;
    while ((m = client_next(c))) {
        if (json_get(m, "ok")) {
            if (client_ok(m))
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

const char *client_str(const struct json_value *obj, const char *key)
{
    const struct json_value *v = json_get(obj, key);

    return v && v->type == JSON_STRING ? v->s : "";
}

long long client_int(const struct json_value *obj, const char *key)
{
    const struct json_value *v = json_get(obj, key);

    return v && (v->type == JSON_INT || v->type == JSON_NUMBER)
               ? (v->type == JSON_INT ? v->i : (long long)v->d)
               : -1;
}

double client_dbl(const struct json_value *obj, const char *key)
{
    const struct json_value *v = json_get(obj, key);

    return v && (v->type == JSON_INT || v->type == JSON_NUMBER) ? v->d : 0;
}

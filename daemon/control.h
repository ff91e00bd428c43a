/* SPDX-License-Identifier: LGPL-2.1-only */
/* control.c: the socket, its peers, and sending to them. */
#ifndef XMIGD_CONTROL_H
#define XMIGD_CONTROL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

/* PROTOCOL.md §1 and §4. */
#define XMIGD_PARTIAL_TIMEOUT_S 30
#define XMIGD_MAX_CLIENTS 128
#define XMIGD_MAX_CLIENTS_UID 16 /* per uid but root */
#define XMIGD_ROOT_CLIENTS 16    /* of XMIGD_MAX_CLIENTS: root's alone */
#define XMIGD_OUT_SOFT (64 * 1024)
#define XMIGD_OUT_HARD (1024 * 1024)

struct event_base;
struct json_object;
struct peer;
struct request;

/*
 * What the layer above does with a peer: control.c only moves lines.
 * greet: a peer has just connected; dispatch: it sent a valid request.
 */
struct control_cb {
    void (*greet)(struct peer *p);
    void (*dispatch)(struct peer *p, struct request *rq);
};

int control_init(struct event_base *base, int listen_fd,
                 const struct control_cb *cb);
void control_shutdown(void);
/* Open and bind the socket at path (mode by group), or -1. */
int control_listen(const char *path, const char *group, char **err_r);
/* Who may connect; peers that no longer may are disconnected. */
void control_set_access(const char *group);
/* Re-applies mode and group to a socket xmigd created itself. */
void control_chmod(const char *path, const char *group);
/* w as one line (NULL: nothing, memory ran out building it). */
void control_send(struct peer *p, struct json_object *w);
void control_reply_error(struct peer *p, struct json_object *id,
                         const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* To every peer watching job id (or everything); progress may be dropped. */
void control_broadcast(uint64_t id, struct json_object *w, bool lossy);
void control_broadcast_all(struct json_object *w);
/* p is sent what is broadcast about job id, or about every job. */
void control_watch(struct peer *p, uint64_t id);
void control_watch_all(struct peer *p);
void control_unwatch_job(uint64_t id);
uid_t control_peer_uid(const struct peer *p);
pid_t control_peer_pid(const struct peer *p);
unsigned int control_clients(void);
void control_flush_and_close_all(void);
struct control_counters {
    uint64_t requests;
    uint64_t bad_requests;
    uint64_t refused;
};
const struct control_counters *control_counters(void);

#endif

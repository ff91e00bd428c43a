/* SPDX-License-Identifier: LGPL-2.1-only */
/* notify.c: the sd_notify datagram, without libsystemd. */
#ifndef XMIGD_NOTIFY_H
#define XMIGD_NOTIFY_H

void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The socket systemd passed (LISTEN_FDS/LISTEN_PID), or -1. */
int notify_listen_fd(char **err_r);

#endif

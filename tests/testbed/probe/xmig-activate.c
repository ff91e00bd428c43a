/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig-activate SOCKET COMMAND [ARG...]: start COMMAND as systemd's socket
 * activation would (xmigd.socket): a listening UNIX socket at SOCKET as
 * fd 3, LISTEN_FDS=1, LISTEN_PID=its pid.  For the testbed's busybox dom0,
 * which has no systemd-socket-activate.  Mode 0600, as in xmigd.socket.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char pid[16];
    int fd;

    if (argc < 3) {
        fprintf(stderr, "usage: xmig-activate SOCKET COMMAND [ARG...]\n");
        return 2;
    }
    if (strlen(argv[1]) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "xmig-activate: socket path too long\n");
        return 2;
    }
    strcpy(sun.sun_path, argv[1]);
    unlink(argv[1]);
    umask(0177);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, 64) < 0) {
        fprintf(stderr, "xmig-activate: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    umask(022);
    if (fd != 3) {
        if (dup2(fd, 3) < 0) {
            perror("xmig-activate: dup2");
            return 1;
        }
        close(fd);
    }
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_PID", pid, 1);
    execvp(argv[2], argv + 2);
    fprintf(stderr, "xmig-activate: %s: %s\n", argv[2], strerror(errno));
    return 127;
}

/* SPDX-License-Identifier: LGPL-2.1-only */
/* A receiver for whole jobs in the unit tests: see receiver.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "receiver.h"

static void *receiver_main(void *arg)
{
    struct receiver *r = arg;
    int fd = accept(r->lfd, NULL, NULL);

    if (fd < 0)
        return NULL;
    r->serve(fd, r->arg);
    close(fd);
    return NULL;
}

void receiver_start(struct receiver *r, void (*serve)(int fd, void *arg),
                    void *arg)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    /* A job that never connects must not hang the test in accept(). */
    struct timeval tv = {10, 0};

    r->serve = serve;
    r->arg = arg;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(r->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(r->lfd, 1) < 0 ||
        getsockname(r->lfd, (struct sockaddr *)&sa, &len) < 0)
        abort();
    snprintf(r->dest, sizeof(r->dest), "tcp://127.0.0.1:%d",
             ntohs(sa.sin_port));
    if (pthread_create(&r->thread, NULL, receiver_main, r) != 0)
        abort();
}

void receiver_stop(struct receiver *r)
{
    pthread_join(r->thread, NULL);
    close(r->lfd);
}

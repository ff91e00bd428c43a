/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A receiver for whole jobs in the unit tests: a loopback listener whose
 * one connection a thread hands to the test's own serve().
 */
#ifndef XMIG_TEST_RECEIVER_H
#define XMIG_TEST_RECEIVER_H

#include <pthread.h>

struct receiver {
    char dest[32]; /* tcp://127.0.0.1:PORT, for the job */
    int lfd;
    void (*serve)(int fd, void *arg); /* the connection is closed after */
    void *arg;
    pthread_t thread;
};

/* Listens and starts the thread; aborts if it cannot. */
void receiver_start(struct receiver *r, void (*serve)(int fd, void *arg),
                    void *arg);
/* Waits for serve() to return, then stops listening. */
void receiver_stop(struct receiver *r);

#endif

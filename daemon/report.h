/* SPDX-License-Identifier: LGPL-2.1-only */
/* report.c: jobs and their events as JSON, sent to the peers that watch. */
#ifndef XMIGD_REPORT_H
#define XMIGD_REPORT_H

#include "xmig.h"

struct job;
struct json_object;

/* The job object of PROTOCOL.md §3 (NULL when out of memory). */
struct json_object *report_job(const struct job *j);
/* The events of PROTOCOL.md §5; these fill job.c's struct job_cb. */
void report_queued(const struct job *j);
void report_running(const struct job *j);
void report_event(const struct job *j, const struct xmig_event *ev);
void report_log(const struct job *j, enum xmig_log_level level,
                const char *text);
void report_ended(const struct job *j);

#endif

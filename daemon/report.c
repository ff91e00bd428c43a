/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * Jobs in the words of PROTOCOL.md §3 and §5: the one place where what
 * job.c reports becomes JSON, and goes to the peers that watch.
 */
#include "control.h"
#include "job.h"
#include "log.h"
#include "proto.h"
#include "report.h"

static double secs(uint64_t from, uint64_t to)
{
    return from && to > from ? (double)(to - from) / 1e9 : 0;
}

struct json_object *report_job(const struct job *j)
{
    struct json_object *w = json_object_new_object(), *o;
    uint64_t now = xmig_now_ns();

    proto_add_uint(w, "id", j->id);
    proto_add_str(w, "kind", j->kind == XMIG_JOB_SAVE ? "save" : "migrate");
    proto_add_text(w, "domain", j->name);
    proto_add_uint(w, "domid", j->domid);
    proto_add_text(w, j->kind == XMIG_JOB_SAVE ? "file" : "dest", j->dest);
    proto_add_str(w, "state", job_state_name(j->state));
    proto_add_text(w, "phase", j->phase);
    proto_add_uint(w, "pass", j->pass);
    proto_add_uint(w, "sent", j->sent);
    proto_add_uint(w, "remaining", j->remaining);
    proto_add_int(w, "dirty", j->dirty);
    proto_add_fixed(w, "mib_s", j->mib_s, 2);
    proto_add_fixed(w, "elapsed_s", j->elapsed_s, 6);
    proto_add_fixed(w, "queued_s",
                    secs(j->t_queued, j->t_started ? j->t_started
                                      : j->t_ended ? j->t_ended
                                                   : now),
                    6);
    proto_add_uint(w, "uid", (uint64_t)j->uid);
    proto_add_uint(w, "group", j->group);
    proto_add_bool(w, "cancel_requested", j->cancel_requested);
    if (!job_final(j))
        return w;
    proto_add(w, "result", o = json_object_new_object());
    proto_result(o, j->params.engine, &j->result);
    if (j->state != JOB_DONE) {
        proto_add(w, "error", o = json_object_new_object());
        proto_add_str(o, "code",
                      j->state == JOB_CANCELLED ? "cancelled" : "failed");
        proto_add_text(o, "message", j->error);
    }
    return w;
}

void report_queued(const struct job *j)
{
    struct json_object *w;

    w = json_object_new_object();
    proto_add_str(w, "event", "queued");
    proto_add(w, "job", report_job(j));
    control_broadcast_all(w);
    json_object_put(w);
}

void report_running(const struct job *j)
{
    struct json_object *w;

    w = json_object_new_object();
    proto_add_str(w, "event", "state");
    proto_add_uint(w, "job", j->id);
    proto_add_str(w, "state", "running");
    control_broadcast(j->id, w, false);
    json_object_put(w);
}

/* Progress may be dropped for a slow reader; nothing else is. */
void report_event(const struct job *j, const struct xmig_event *ev)
{
    struct json_object *w = proto_event(ev, j->id);

    control_broadcast(j->id, w, ev->type == XMIG_EV_PROGRESS);
    json_object_put(w);
}

void report_log(const struct job *j, enum xmig_log_level level,
                const char *text)
{
    struct json_object *w;

    w = json_object_new_object();
    proto_add_str(w, "event", "log");
    proto_add_uint(w, "job", j->id);
    proto_add_str(w, "level", log_level_name(level));
    proto_add_text(w, "message", text);
    control_broadcast(j->id, w, false);
    json_object_put(w);
}

void report_ended(const struct job *j)
{
    struct json_object *w;

    w = json_object_new_object();
    proto_add_str(w, "event", "end");
    proto_add(w, "job", report_job(j));
    control_broadcast(j->id, w, false);
    json_object_put(w);
    control_unwatch_job(j->id);
}

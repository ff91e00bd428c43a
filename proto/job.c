/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A job's events and result as JSON (PROTOCOL.md §3 and §4), and back:
 * xmigd writes them, xmig reads them and writes the same keys for a job
 * that it runs itself (--direct --json).
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"

static const char *const event_names[] = {
    [XMIG_EV_PHASE] = "phase",
    [XMIG_EV_PASS] = "pass",
    [XMIG_EV_PROGRESS] = "progress",
};

struct json_object *proto_event(const struct xmig_event *ev, uint64_t job)
{
    struct json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    proto_add_str(o, "event", event_names[ev->type]);
    if (job)
        proto_add_uint(o, "job", job);
    proto_add_fixed(o, "t", ev->elapsed_s, 6);
    if (ev->type == XMIG_EV_PHASE) {
        proto_add_text(o, "phase", ev->phase);
        return o;
    }
    proto_add_uint(o, "pass", ev->pass);
    proto_add_uint(o, "sent", ev->sent);
    if (ev->type == XMIG_EV_PROGRESS) {
        proto_add_uint(o, "remaining", ev->remaining);
    } else {
        proto_add_int(o, "dirty", ev->dirty);
        proto_add_fixed(o, "dirty_rate", ev->dirty_rate, 2);
    }
    proto_add_fixed(o, "mib_s", ev->mib_s, 2);
    return o;
}

int proto_event_parse(struct json_object *m, struct xmig_event *ev)
{
    const char *type = proto_str(m, "event");
    size_t i;

    memset(ev, 0, sizeof(*ev));
    for (i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++)
        if (strcmp(type, event_names[i]) == 0)
            break;
    if (i == sizeof(event_names) / sizeof(event_names[0]))
        return -1;
    ev->type = (enum xmig_event_type)i;
    ev->phase = proto_str(m, "phase");
    ev->elapsed_s = proto_dbl(m, "t");
    ev->pass = (unsigned int)proto_int(m, "pass");
    ev->sent = (uint64_t)proto_int(m, "sent");
    ev->remaining = (uint64_t)proto_int(m, "remaining");
    ev->dirty = proto_get(m, "dirty") ? (long)proto_int(m, "dirty") : -1;
    ev->mib_s = proto_dbl(m, "mib_s");
    ev->dirty_rate = proto_dbl(m, "dirty_rate");
    return 0;
}

/*
 * What the stream cost dom0 and Xen, as Xen accounts it (whole-host
 * figures); per GiB and per page of the own engine's stream.
 */
static void cost(struct json_object *o, enum xmig_engine engine,
                 const struct xmig_job_result *r)
{
    const struct xmig_cost *c = &r->cost;
    bool own = engine == XMIG_ENGINE_XMIG;
    uint64_t bytes = own ? r->engine.bytes : 0;
    uint64_t pages = own ? r->engine.pages : 0;
    double per_gib = xmig_cost_per_gib(c->dom0_cpu_ns, bytes);

    proto_add_known(o, "dom0_cpu_s",
                    c->dom0_cpu_ns < 0 ? -1 : (double)c->dom0_cpu_ns / 1e9, 6);
    proto_add_known(o, "dom0_cpu_s_per_gib", per_gib < 0 ? -1 : per_gib / 1e9,
                    6);
    proto_add_count(o, "traps", c->traps);
    proto_add_known(o, "traps_per_page", xmig_cost_per_page(c->traps, pages),
                    6);
    proto_add_count(o, "hypercalls", c->hypercalls);
    proto_add_known(o, "hypercalls_per_page",
                    xmig_cost_per_page(c->hypercalls, pages), 6);
}

void proto_result(struct json_object *o, enum xmig_engine engine,
                  const struct xmig_job_result *r)
{
    const struct xmig_engine_stats *e = &r->engine;

    proto_add_uint(o, "passes", r->passes);
    proto_add_uint(o, "pages_sent", r->pages_sent);
    proto_add_fixed(o, "total_s", r->total_s, 6);
    proto_add_fixed(o, "downtime_s", r->downtime_s, 6);
    proto_add_str(o, "guest", xmig_guest_where(r->guest));
    if (r->away_name[0])
        proto_add_text(o, "away_name", r->away_name);
    proto_add_str(o, "engine", opt_value_name(OPT_ENGINE, (int)engine));
    cost(o, engine, r);
    if (engine != XMIG_ENGINE_XMIG)
        return;
    proto_add_str(o, "strategy", xmig_strategy_name(e->strategy));
    proto_add_uint(o, "bytes", e->bytes);
    proto_add_uint(o, "data_pages", e->pages);
    proto_add_uint(o, "reused", e->reused);
    proto_add_uint(o, "deferred", e->deferred);
    proto_add_uint(o, "skipped", e->skipped);
    proto_add_uint(o, "unswept", e->unswept);
    proto_add_uint(o, "map_calls", e->arena.map_calls);
    proto_add_uint(o, "unmap_calls", e->arena.unmap_calls);
    proto_add_fixed(o, "map_s", (double)e->arena.map_ns / 1e9, 6);
    proto_add_fixed(o, "unmap_s", (double)e->arena.unmap_ns / 1e9, 6);
    proto_add_fixed(o, "types_s", (double)e->types_ns / 1e9, 6);
    proto_add_fixed(o, "write_s", (double)e->write_ns / 1e9, 6);
    proto_add_uint(o, "hcall_buffers", e->hcall_buffers);
}

/* A figure that may be null (unknown): -1 then. */
static int64_t known_ns(struct json_object *o, const char *key)
{
    struct json_object *v = proto_get(o, key);

    if (!json_object_is_type(v, json_type_int) &&
        !json_object_is_type(v, json_type_double))
        return -1;
    return (int64_t)(json_object_get_double(v) * 1e9 + 0.5);
}

static uint64_t ns(struct json_object *o, const char *key)
{
    return (uint64_t)(proto_dbl(o, key) * 1e9);
}

bool proto_job_result(struct json_object *job, struct xmig_job_params *p,
                      struct xmig_job_result *r, const char **error_r)
{
    struct json_object *res = proto_get(job, "result");
    struct json_object *err = proto_get(job, "error");
    const char *guest = proto_str(res, "guest");
    int v;

    memset(r, 0, sizeof(*r));
    p->kind = strcmp(proto_str(job, "kind"), "save") == 0 ? XMIG_JOB_SAVE
                                                          : XMIG_JOB_MIGRATE;
    p->dest = proto_str(job, p->kind == XMIG_JOB_SAVE ? "file" : "dest");
    p->engine = opt_value_parse(OPT_ENGINE, proto_str(res, "engine"), &v) == 0
                    ? (enum xmig_engine)v
                    : XMIG_ENGINE_XMIG;
    xmig_strategy_parse(proto_str(res, "strategy"), &r->engine.strategy);
    r->domid = (uint32_t)proto_int(job, "domid");
    r->passes = (unsigned int)proto_int(res, "passes");
    r->pages_sent = (uint64_t)proto_int(res, "pages_sent");
    r->total_s = proto_dbl(res, "total_s");
    r->downtime_s = proto_dbl(res, "downtime_s");
    r->guest = !strcmp(guest, "source")        ? XMIG_GUEST_SOURCE
               : !strcmp(guest, "destination") ? XMIG_GUEST_DESTINATION
               : !strcmp(guest, "gone")        ? XMIG_GUEST_GONE
                                               : XMIG_GUEST_UNKNOWN;
    snprintf(r->away_name, sizeof(r->away_name), "%s",
             proto_str(res, "away_name"));
    r->engine.bytes = (uint64_t)proto_int(res, "bytes");
    r->engine.pages = (uint64_t)proto_int(res, "data_pages");
    r->engine.reused = (uint64_t)proto_int(res, "reused");
    r->engine.deferred = (uint64_t)proto_int(res, "deferred");
    r->engine.skipped = (uint64_t)proto_int(res, "skipped");
    r->engine.unswept = (uint64_t)proto_int(res, "unswept");
    r->engine.arena.map_calls = (uint64_t)proto_int(res, "map_calls");
    r->engine.arena.unmap_calls = (uint64_t)proto_int(res, "unmap_calls");
    r->engine.arena.map_ns = ns(res, "map_s");
    r->engine.arena.unmap_ns = ns(res, "unmap_s");
    r->engine.types_ns = ns(res, "types_s");
    r->engine.write_ns = ns(res, "write_s");
    r->engine.hcall_buffers = (uint64_t)proto_int(res, "hcall_buffers");
    r->cost.dom0_cpu_ns = known_ns(res, "dom0_cpu_s");
    r->cost.traps = proto_int(res, "traps");
    r->cost.hypercalls = proto_int(res, "hypercalls");
    *error_r = err ? proto_str(err, "message") : "";
    return strcmp(proto_str(job, "state"), "done") == 0;
}

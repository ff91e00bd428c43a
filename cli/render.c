/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * How a job looks on the terminal and to scripts: progress on stderr when
 * it is a TTY, one JSON object per line on stdout with --json.  The same
 * for a job run in-process (--direct) and one run by xmigd.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmig-cli.h"

void render_end_line(struct render *rd)
{
    if (rd->line_open) {
        fputc('\n', stderr);
        rd->line_open = false;
    }
}

void render_event(void *arg, const struct xmig_event *ev)
{
    static const char *const types[] = {"phase", "pass", "progress"};
    struct render *rd = arg;

    if (rd->json) {
        struct json j;

        json_begin(&j, stdout);
        json_open(&j, NULL, '{');
        json_str(&j, "event", types[ev->type]);
        json_dbl(&j, "t", ev->elapsed_s);
        if (ev->type == XMIG_EV_PHASE) {
            json_str(&j, "phase", ev->phase);
        } else {
            json_u64(&j, "pass", ev->pass);
            json_u64(&j, "sent", ev->sent);
            if (ev->type == XMIG_EV_PROGRESS)
                json_u64(&j, "remaining", ev->remaining);
            if (ev->dirty >= 0)
                json_u64(&j, "dirty", (unsigned long long)ev->dirty);
            json_dbl(&j, "mib_s", ev->mib_s);
            if (ev->type == XMIG_EV_PASS)
                json_dbl(&j, "dirty_rate", ev->dirty_rate);
        }
        json_close(&j, '}');
        json_end(&j);
        return;
    }
    if (!rd->tty)
        return;
    switch (ev->type) {
    case XMIG_EV_PHASE:
        render_end_line(rd);
        fprintf(stderr, "%7.1fs %s\n", ev->elapsed_s, ev->phase);
        break;
    case XMIG_EV_PROGRESS:
        fprintf(stderr,
                "\r%7.1fs pass %u: %" PRIu64 " pages sent, %" PRIu64
                " to go, %.1f MiB/s   ",
                ev->elapsed_s, ev->pass, ev->sent, ev->remaining, ev->mib_s);
        rd->line_open = true;
        break;
    case XMIG_EV_PASS:
        render_end_line(rd);
        fprintf(stderr, "%7.1fs pass %u: %" PRIu64 " pages, %.1f MiB/s",
                ev->elapsed_s, ev->pass, ev->sent, ev->mib_s);
        if (ev->dirty >= 0)
            fprintf(stderr, ", %ld dirtied (%.0f pages/s)", ev->dirty,
                    ev->dirty_rate);
        fputc('\n', stderr);
        break;
    }
}

/* What the stream is measured by: the own engine's bytes and data pages. */
static uint64_t sent_bytes(const struct xmig_job_params *p,
                           const struct xmig_job_result *r)
{
    return p->engine == XMIG_ENGINE_XMIG ? r->engine.bytes : 0;
}

static uint64_t sent_pages(const struct xmig_job_params *p,
                           const struct xmig_job_result *r)
{
    return p->engine == XMIG_ENGINE_XMIG ? r->engine.pages : 0;
}

static void json_known(struct json *j, const char *k, double v)
{
    if (v < 0)
        json_null(j, k);
    else
        json_dbl(j, k, v);
}

static void json_count(struct json *j, const char *k, int64_t v)
{
    if (v < 0)
        json_null(j, k);
    else
        json_u64(j, k, (unsigned long long)v);
}

/* The same keys as xmigd's result (daemon/PROTOCOL.md). */
static void json_cost(struct json *j, const struct xmig_job_params *p,
                      const struct xmig_job_result *r)
{
    const struct xmig_cost *c = &r->cost;
    double per_gib = xmig_cost_per_gib(c->dom0_cpu_ns, sent_bytes(p, r));

    json_known(j, "dom0_cpu_s",
               c->dom0_cpu_ns < 0 ? -1 : (double)c->dom0_cpu_ns / 1e9);
    json_known(j, "dom0_cpu_s_per_gib", per_gib < 0 ? -1 : per_gib / 1e9);
    json_count(j, "traps", c->traps);
    json_known(j, "traps_per_page",
               xmig_cost_per_page(c->traps, sent_pages(p, r)));
    json_count(j, "hypercalls", c->hypercalls);
    json_known(j, "hypercalls_per_page",
               xmig_cost_per_page(c->hypercalls, sent_pages(p, r)));
}

/* Whole-host figures: the line says so. */
static void print_cost(const struct xmig_job_params *p,
                       const struct xmig_job_result *r)
{
    const struct xmig_cost *c = &r->cost;
    double per_gib = xmig_cost_per_gib(c->dom0_cpu_ns, sent_bytes(p, r));
    uint64_t pages = sent_pages(p, r);

    if (c->dom0_cpu_ns < 0)
        return;
    printf("dom0 CPU (all of dom0, as Xen accounts it) %.3f s",
           (double)c->dom0_cpu_ns / 1e9);
    if (per_gib >= 0)
        printf(", %.3f s per GiB sent", per_gib / 1e9);
    if (c->traps >= 0 && c->hypercalls >= 0 && pages)
        printf("; per page (all domains) %.4f trapped PTE writes, %.3f "
               "hypercalls",
               xmig_cost_per_page(c->traps, pages),
               xmig_cost_per_page(c->hypercalls, pages));
    else if (c->traps >= 0 && c->hypercalls >= 0)
        printf("; (all domains) %" PRId64 " trapped PTE writes, %" PRId64
               " hypercalls",
               c->traps, c->hypercalls);
    putchar('\n');
}

void render_result(const struct render *rd, const struct xmig_job_params *p,
                   const struct xmig_job_result *r, bool ok, const char *error)
{
    if (rd->json) {
        struct json j;

        json_begin(&j, stdout);
        json_open(&j, NULL, '{');
        json_str(&j, "event", "result");
        json_bool(&j, "ok", ok);
        json_u64(&j, "domid", r->domid);
        json_str(&j, "dest", p->dest);
        json_u64(&j, "passes", r->passes);
        json_u64(&j, "pages_sent", r->pages_sent);
        json_dbl(&j, "total_s", r->total_s);
        json_dbl(&j, "downtime_s", r->downtime_s);
        json_str(&j, "guest", xmig_guest_where(r->guest));
        if (r->away_name[0])
            json_str(&j, "away_name", r->away_name);
        json_str(&j, "engine",
                 p->engine == XMIG_ENGINE_XMIG ? "xmig" : "libxc");
        if (p->engine == XMIG_ENGINE_XMIG) {
            const struct xmig_engine_stats *e = &r->engine;

            json_str(&j, "strategy", xmig_strategy_name(e->strategy));
            json_u64(&j, "bytes", e->bytes);
            json_u64(&j, "data_pages", e->pages);
            json_u64(&j, "reused", e->reused);
            json_u64(&j, "deferred", e->deferred);
            json_u64(&j, "skipped", e->skipped);
            json_u64(&j, "map_calls", e->arena.map_calls);
            json_u64(&j, "unmap_calls", e->arena.unmap_calls);
            json_dbl(&j, "map_s", (double)e->arena.map_ns / 1e9);
            json_dbl(&j, "unmap_s", (double)e->arena.unmap_ns / 1e9);
            json_dbl(&j, "types_s", (double)e->types_ns / 1e9);
            json_dbl(&j, "write_s", (double)e->write_ns / 1e9);
            json_u64(&j, "hcall_buffers", e->hcall_buffers);
        }
        json_cost(&j, p, r);
        if (!ok)
            json_str(&j, "error", error);
        json_close(&j, '}');
        json_end(&j);
        return;
    }
    if (!ok)
        return;
    printf("domain %u %s %s: %u passes, %" PRIu64
           " pages, %.1f s, downtime %.3f s\n",
           r->domid, p->kind == XMIG_JOB_SAVE ? "saved to" : "migrated to",
           p->dest, r->passes, r->pages_sent, r->total_s, r->downtime_s);
    if (p->engine == XMIG_ENGINE_XMIG)
        printf("engine xmig (%s): %" PRIu64 " MiB written, %" PRIu64
               " pages reused, %" PRIu64 " left for a later pass, %" PRIu64
               " map calls (%.3f s), %" PRIu64 " unmap calls (%.3f s), "
               "page types %.3f s, writing %.3f s, %" PRIu64
               " hypercall buffers\n",
               xmig_strategy_name(r->engine.strategy), r->engine.bytes >> 20,
               r->engine.reused, r->engine.skipped, r->engine.arena.map_calls,
               (double)r->engine.arena.map_ns / 1e9,
               r->engine.arena.unmap_calls,
               (double)r->engine.arena.unmap_ns / 1e9,
               (double)r->engine.types_ns / 1e9,
               (double)r->engine.write_ns / 1e9, r->engine.hcall_buffers);
    print_cost(p, r);
}

/* A daemon event as the library's struct, so that both look the same. */
void render_daemon_event(struct render *rd, const struct json_value *m)
{
    const char *type = client_str(m, "event");
    struct xmig_event ev = {.dirty = -1};

    if (strcmp(type, "log") == 0) {
        const char *level = client_str(m, "level");

        if (strcmp(level, "info") != 0 || cli_verbose) {
            render_end_line(rd);
            fprintf(stderr, "xmig: %s: job %lld: %s\n", level,
                    client_int(m, "job"), client_str(m, "message"));
        }
        return;
    }
    if (strcmp(type, "phase") == 0)
        ev.type = XMIG_EV_PHASE;
    else if (strcmp(type, "pass") == 0)
        ev.type = XMIG_EV_PASS;
    else if (strcmp(type, "progress") == 0)
        ev.type = XMIG_EV_PROGRESS;
    else
        return;
    ev.phase = client_str(m, "phase");
    ev.elapsed_s = client_dbl(m, "t");
    ev.pass = (unsigned int)client_int(m, "pass");
    ev.sent = (uint64_t)client_int(m, "sent");
    ev.remaining = (uint64_t)client_int(m, "remaining");
    if (json_get(m, "dirty"))
        ev.dirty = (long)client_int(m, "dirty");
    ev.mib_s = client_dbl(m, "mib_s");
    ev.dirty_rate = client_dbl(m, "dirty_rate");
    render_event(rd, &ev);
}

/* A figure the daemon may report as null (unknown): -1 then. */
static int64_t known_ns(const struct json_value *obj, const char *key)
{
    const struct json_value *v = json_get(obj, key);

    if (!v || (v->type != JSON_INT && v->type != JSON_NUMBER))
        return -1;
    return (int64_t)(client_dbl(obj, key) * 1e9 + 0.5);
}

/* The daemon's final job object -> what render_result() prints. */
bool render_job_result(const struct json_value *job, struct xmig_job_params *p,
                       struct xmig_job_result *r, const char **error_r)
{
    const struct json_value *res = json_get(job, "result");
    const struct json_value *err = json_get(job, "error");

    memset(r, 0, sizeof(*r));
    p->kind = strcmp(client_str(job, "kind"), "save") == 0 ? XMIG_JOB_SAVE
                                                           : XMIG_JOB_MIGRATE;
    p->dest = client_str(job, p->kind == XMIG_JOB_SAVE ? "file" : "dest");
    p->engine = strcmp(client_str(res, "engine"), "libxc") == 0
                    ? XMIG_ENGINE_LIBXC
                    : XMIG_ENGINE_XMIG;
    xmig_strategy_parse(client_str(res, "strategy"), &r->engine.strategy);
    r->domid = (uint32_t)client_int(job, "domid");
    r->passes = (unsigned int)client_int(res, "passes");
    r->pages_sent = (uint64_t)client_int(res, "pages_sent");
    r->total_s = client_dbl(res, "total_s");
    r->downtime_s = client_dbl(res, "downtime_s");
    r->guest = !strcmp(client_str(res, "guest"), "source") ? XMIG_GUEST_SOURCE
               : !strcmp(client_str(res, "guest"), "destination")
                   ? XMIG_GUEST_DESTINATION
                   : XMIG_GUEST_UNKNOWN;
    snprintf(r->away_name, sizeof(r->away_name), "%s",
             client_str(res, "away_name"));
    r->engine.bytes = (uint64_t)client_int(res, "bytes");
    r->engine.pages = (uint64_t)client_int(res, "data_pages");
    r->engine.reused = (uint64_t)client_int(res, "reused");
    r->engine.deferred = (uint64_t)client_int(res, "deferred");
    r->engine.skipped = (uint64_t)client_int(res, "skipped");
    r->engine.arena.map_calls = (uint64_t)client_int(res, "map_calls");
    r->engine.arena.unmap_calls = (uint64_t)client_int(res, "unmap_calls");
    r->engine.arena.map_ns = (uint64_t)(client_dbl(res, "map_s") * 1e9);
    r->engine.arena.unmap_ns = (uint64_t)(client_dbl(res, "unmap_s") * 1e9);
    r->engine.types_ns = (uint64_t)(client_dbl(res, "types_s") * 1e9);
    r->engine.write_ns = (uint64_t)(client_dbl(res, "write_s") * 1e9);
    r->engine.hcall_buffers = (uint64_t)client_int(res, "hcall_buffers");
    r->cost.dom0_cpu_ns = known_ns(res, "dom0_cpu_s");
    r->cost.traps = client_int(res, "traps");
    r->cost.hypercalls = client_int(res, "hypercalls");
    *error_r = err ? client_str(err, "message") : "";
    return strcmp(client_str(job, "state"), "done") == 0;
}

int render_exit(const struct xmig_job_result *r, bool ok)
{
    if (ok)
        return EXIT_OK;
    return r->guest == XMIG_GUEST_UNKNOWN ? EXIT_UNKNOWN : EXIT_FAIL;
}

const char *render_where(const struct xmig_job_result *r, char *buf, size_t n)
{
    if (r->guest != XMIG_GUEST_SOURCE)
        return ""; /* the error itself says what became of it */
    if (r->away_name[0])
        snprintf(buf, n, " (the guest is still here, as '%s')", r->away_name);
    else
        snprintf(buf, n, " (the guest is still running here)");
    return buf;
}

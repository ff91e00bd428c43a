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

void render_json(struct json_object *o)
{
    const char *line = o ? proto_to_string(o, NULL) : NULL;

    if (line)
        printf("%s\n", line);
    fflush(stdout);
    json_object_put(o);
}

void render_event(void *arg, const struct xmig_event *ev)
{
    struct render *rd = arg;

    if (rd->json) {
        render_json(proto_event(ev, 0));
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
        struct json_object *o = json_object_new_object();

        proto_add_str(o, "event", "result");
        proto_add_bool(o, "ok", ok);
        proto_add_uint(o, "domid", r->domid);
        proto_add_text(o, "dest", p->dest);
        proto_result(o, p->engine, r);
        if (!ok)
            proto_add_text(o, "error", error);
        render_json(o);
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
void render_daemon_event(struct render *rd, struct json_object *m)
{
    const char *type = proto_str(m, "event");
    struct xmig_event ev;

    if (strcmp(type, "log") == 0) {
        const char *level = proto_str(m, "level");

        if (strcmp(level, "info") != 0 || cli_verbose) {
            render_end_line(rd);
            fprintf(stderr, "xmig: %s: job %lld: %s\n", level,
                    proto_int(m, "job"), proto_str(m, "message"));
        }
        return;
    }
    if (proto_event_parse(m, &ev) == 0)
        render_event(rd, &ev);
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

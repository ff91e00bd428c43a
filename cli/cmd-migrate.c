/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig migrate / xmig save: send a domain to a stock xl receiver or to a
 * file that stock `xl restore` reads.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig-cli.h"

struct render {
    bool json;
    bool tty;
    bool line_open;
};

static void end_line(struct render *rd)
{
    if (rd->line_open) {
        fputc('\n', stderr);
        rd->line_open = false;
    }
}

static void on_event(void *arg, const struct xmig_event *ev)
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
        end_line(rd);
        fprintf(stderr, "%7.1fs %s\n", ev->elapsed_s, ev->phase);
        break;
    case XMIG_EV_PROGRESS:
        fprintf(stderr, "\r%7.1fs pass %u: %" PRIu64 " pages sent, %" PRIu64
                        " to go, %.1f MiB/s   ",
                ev->elapsed_s, ev->pass, ev->sent, ev->remaining, ev->mib_s);
        rd->line_open = true;
        break;
    case XMIG_EV_PASS:
        end_line(rd);
        fprintf(stderr, "%7.1fs pass %u: %" PRIu64 " pages, %.1f MiB/s",
                ev->elapsed_s, ev->pass, ev->sent, ev->mib_s);
        if (ev->dirty >= 0)
            fprintf(stderr, ", %ld dirtied (%.0f pages/s)", ev->dirty,
                    ev->dirty_rate);
        fputc('\n', stderr);
        break;
    }
}

static void print_result(const struct render *rd, const struct xmig_job_params *p,
                         const struct xmig_job_result *r, bool ok,
                         const char *error)
{
    if (rd->json) {
        struct json j;

        json_begin(&j, stdout);
        json_open(&j, NULL, '{');
        json_str(&j, "event", "result");
        json_str(&j, "ok", ok ? "true" : "false");
        json_u64(&j, "domid", r->domid);
        json_str(&j, "dest", p->dest);
        json_u64(&j, "passes", r->passes);
        json_u64(&j, "pages_sent", r->pages_sent);
        json_dbl(&j, "total_s", r->total_s);
        json_dbl(&j, "downtime_s", r->downtime_s);
        json_str(&j, "guest", r->guest_on_source ? "source" : "destination");
        json_str(&j, "engine", p->engine == XMIG_ENGINE_XMIG ? "xmig" : "libxc");
        if (p->engine == XMIG_ENGINE_XMIG) {
            const struct xmig_engine_stats *e = &r->engine;

            json_str(&j, "strategy", xmig_strategy_name(p->arena.strategy));
            json_u64(&j, "bytes", e->bytes);
            json_u64(&j, "data_pages", e->pages);
            json_u64(&j, "reused", e->reused);
            json_u64(&j, "deferred", e->deferred);
            json_u64(&j, "map_calls", e->arena.map_calls);
            json_u64(&j, "unmap_calls", e->arena.unmap_calls);
            json_dbl(&j, "map_s", (double)e->arena.map_ns / 1e9);
            json_dbl(&j, "unmap_s", (double)e->arena.unmap_ns / 1e9);
        }
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
               " pages reused, %" PRIu64 " map calls (%.3f s), %" PRIu64
               " unmap calls (%.3f s)\n",
               xmig_strategy_name(p->arena.strategy), r->engine.bytes >> 20,
               r->engine.reused, r->engine.arena.map_calls,
               (double)r->engine.arena.map_ns / 1e9,
               r->engine.arena.unmap_calls,
               (double)r->engine.arena.unmap_ns / 1e9);
}

static int parse_num(const char *opt, const char *s, long min, long max,
                     long *v)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || *end || !*s || n < min || n > max) {
        cli_error("%s: expected a number from %ld to %ld, got '%s'", opt, min,
                  max, s);
        return -1;
    }
    *v = n;
    return 0;
}

static int run(const struct cmd_entry *e, enum xmig_job_kind kind, int argc,
               char **argv)
{
    static const struct option opts[] = {
        {"live", no_argument, NULL, 'l'},
        {"no-live", no_argument, NULL, 'L'},
        {"max-iters", required_argument, NULL, 'i'},
        {"target-dirty", required_argument, NULL, 't'},
        {"abort-if-busy", no_argument, NULL, 'a'},
        {"engine", required_argument, NULL, 'e'},
        {"ssh-command", required_argument, NULL, 's'},
        {"keep", no_argument, NULL, 'k'},
        {"downtime-ms", required_argument, NULL, 'D'},
        {"strategy", required_argument, NULL, 'S'},
        {"batch", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct xmig_job_params p;
    struct xmig_job_result r;
    struct render rd = {.tty = isatty(2) != 0};
    xmig_xen *x;
    char *why = NULL;
    long v;
    int c, rc;

    xmig_job_params_default(&p);
    p.kind = kind;
    /* xl save is not live unless asked; xl migrate is. */
    p.live = kind == XMIG_JOB_MIGRATE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            p.live = true;
            break;
        case 'L':
            p.live = false;
            break;
        case 'i':
            if (parse_num("--max-iters", optarg, 1, 1000, &v) < 0)
                return EXIT_USAGE;
            p.policy.max_iters = (unsigned int)v;
            break;
        case 't':
            if (parse_num("--target-dirty", optarg, 0, 1L << 40, &v) < 0)
                return EXIT_USAGE;
            p.policy.target_dirty = v;
            break;
        case 'a':
            p.policy.abort_if_busy = true;
            break;
        case 'e':
            if (strcmp(optarg, "libxc") == 0) {
                p.engine = XMIG_ENGINE_LIBXC;
            } else if (strcmp(optarg, "xmig") == 0) {
                p.engine = XMIG_ENGINE_XMIG;
            } else {
                cli_error("unknown engine '%s' (xmig, libxc)", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'D':
            if (parse_num("--downtime-ms", optarg, 1, 3600000, &v) < 0)
                return EXIT_USAGE;
            p.policy.downtime_ms = (unsigned int)v;
            break;
        case 'S':
            if (xmig_strategy_parse(optarg, &p.arena.strategy) < 0) {
                cli_error("unknown strategy '%s' (per-batch, arena, kernel)",
                          optarg);
                return EXIT_USAGE;
            }
            break;
        case 'b':
            if (parse_num("--batch", optarg, 1, XMIG_MAX_BATCH, &v) < 0)
                return EXIT_USAGE;
            p.arena.batch = (unsigned int)v;
            break;
        case 's':
            p.ssh_command = optarg;
            break;
        case 'k':
            if (kind != XMIG_JOB_SAVE)
                return cli_usage(e);
            p.keep = true;
            break;
        case 'j':
            rd.json = true;
            break;
        default:
            return cli_usage(e);
        }
    }
    if (optind + 2 != argc)
        return cli_usage(e);
    p.domain = argv[optind];
    p.dest = argv[optind + 1];
    p.event = on_event;
    p.event_arg = &rd;

    x = xmig_xen_open(cli_log, NULL, &why);
    if (!x) {
        cli_error("%s", why);
        free(why);
        return EXIT_FAIL;
    }
    rc = xmig_job_run(x, &p, &r);
    end_line(&rd);
    print_result(&rd, &p, &r, rc == 0, rc == 0 ? "" : xmig_xen_error(x));
    if (rc < 0) {
        cli_error("%s%s", xmig_xen_error(x),
                  r.guest_on_source ? " (the guest is still running here)" : "");
    }
    xmig_xen_close(x);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_migrate(int argc, char **argv)
{
    return run(&cmd_migrate_entry, XMIG_JOB_MIGRATE, argc, argv);
}

static int cmd_save(int argc, char **argv)
{
    return run(&cmd_save_entry, XMIG_JOB_SAVE, argc, argv);
}

const struct cmd_entry cmd_migrate_entry = {
    .name = "migrate",
    .usage = "DOMAIN DEST [--live|--no-live] [--max-iters N] [--target-dirty N] "
             "[--abort-if-busy] [--downtime-ms MS] [--engine xmig|libxc] "
             "[--strategy S] [--batch N] [--ssh-command CMD] [--json]",
    .help = "send DOMAIN to a stock `xl migrate-receive` at DEST: "
            "ssh://[user@]host[:port], exec:COMMAND or tcp://host:port",
    .exec = cmd_migrate,
};

const struct cmd_entry cmd_save_entry = {
    .name = "save",
    .usage = "DOMAIN FILE [--live] [--keep] [--max-iters N] [--target-dirty N] "
             "[--engine xmig|libxc] [--strategy S] [--json]",
    .help = "save DOMAIN to FILE for stock `xl restore`, then destroy it "
            "(--keep: resume it instead)",
    .exec = cmd_save,
};

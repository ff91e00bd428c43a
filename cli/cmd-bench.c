/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig bench map: map every populated frame of a domain with each unmap
 * strategy, read every page, unmap, and report what it cost.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmig-cli.h"

struct run {
    enum xmig_strategy asked;
    enum xmig_strategy used;
    double wall_s;
    uint64_t checksum;
    struct xmig_arena_stats st;
    bool have_perfc;
    uint64_t ptwr;
    uint64_t mmu_update;
    /* From the first map until every mapping is gone, as Xen counts. */
    struct xmig_cost cost;
};

/* Every word of the page feeds the sum, so every page is really read. */
static uint64_t page_sum(uint64_t h, const uint64_t *w)
{
    size_t i;

    for (i = 0; i < XMIG_PAGE_SIZE / sizeof(*w); i++)
        h = (h ^ w[i]) * 0x100000001b3ULL;
    return h;
}

/*
 * A domain destroyed under the benchmark fails its maps with whatever
 * errno the teardown has reached: say what happened, whichever it was.
 */
static void explain_failure(xmig_xen *x, const struct xmig_dominfo *info,
                            int errnum, const char *msg)
{
    if (xmig_domain_vanished(x, info, errnum))
        cli_error("domain %u vanished during the benchmark (%s)", info->domid,
                  msg);
    else
        cli_error("%s", msg);
}

static int bench_one(xmig_xen *x, const struct xmig_dominfo *info,
                     const struct xmig_frames *f,
                     const struct xmig_arena_params *p, struct run *r)
{
    int err[XMIG_MAX_BATCH];
    uint64_t t0, sum = 0xcbf29ce484222325ULL;
    struct xmig_cost c0, c1;
    xmig_arena *a;
    size_t off;
    int rc = -1, map_errno = 0;
    char map_err[256] = "";

    r->have_perfc = xmig_perfc_reset(x) == 0;
    xmig_cost_read(x, &c0);
    t0 = xmig_now_ns();
    a = xmig_arena_open(x, info->domid, p);
    if (!a) {
        cli_error("%s", xmig_xen_error(x));
        return -1;
    }
    r->used = xmig_arena_strategy(a);
    for (off = 0; off < f->n; off += p->batch) {
        unsigned int n =
            f->n - off < p->batch ? (unsigned int)(f->n - off) : p->batch;
        xmig_window *w = xmig_arena_map(a, f->frame + off, n, err);
        unsigned int i;

        if (!w) {
            map_errno = errno ? errno : EIO;
            snprintf(map_err, sizeof(map_err), "%s", xmig_xen_error(x));
            goto out;
        }
        for (i = 0; i < n; i++)
            sum = page_sum(sum, xmig_window_page(w, i));
        xmig_arena_release(a, w);
    }
    rc = 0;
out:
    /*
     * Unmapping is part of the cost: the clock stops once all is drained.
     * After a failed map, our mappings go before we look at the domain.
     */
    if (xmig_arena_drain(a) < 0 && rc == 0) {
        cli_error("%s", xmig_xen_error(x));
        rc = -1;
    }
    xmig_arena_get_stats(a, &r->st);
    if (xmig_arena_close(a) < 0 && rc == 0) {
        cli_error("%s", xmig_xen_error(x));
        rc = -1;
    }
    r->wall_s = (double)(xmig_now_ns() - t0) / 1e9;
    xmig_cost_read(x, &c1);
    xmig_cost_diff(&c0, &c1, &r->cost);
    r->checksum = sum;
    if (map_errno)
        explain_failure(x, info, map_errno, map_err);
    if (rc == 0 && r->have_perfc) {
        r->have_perfc =
            r->cost.traps >= 0 &&
            xmig_perfc_read(x, XMIG_PERFC_MMU_UPDATE, &r->mmu_update) == 0;
        r->ptwr = (uint64_t)r->cost.traps;
    }
    return rc;
}

/* dom0's CPU seconds per GiB mapped; negative: unknown. */
static double cpu_per_gib(const struct run *r)
{
    double v = xmig_cost_per_gib(r->cost.dom0_cpu_ns,
                                 r->st.frames_mapped * XMIG_PAGE_SIZE);

    return v < 0 ? v : v / 1e9;
}

static void print_table(const struct xmig_dominfo *info,
                        const struct xmig_frames *f, unsigned int batch,
                        const struct run *runs, int nruns)
{
    int i;

    printf("domain %u (%s, %s): %zu populated frames, %zu holes skipped, "
           "batch %u\n",
           info->domid, info->name[0] ? info->name : "?",
           xmig_domtype_name(info->type), f->n, f->nr_holes, batch);
    printf("%-16s %8s %8s %8s %8s %10s %10s %10s %10s %10s\n", "strategy",
           "pages", "map s", "unmap s", "wall s", "pages/s", "cpu s/GiB",
           "ptwr/page", "hcall/page", "mmu_update");
    for (i = 0; i < nruns; i++) {
        const struct run *r = &runs[i];
        char name[32], ptwr[16] = "n/a", mmu[16] = "n/a", cpu[16] = "n/a";
        char hcall[16] = "n/a";

        if (r->used != r->asked)
            snprintf(name, sizeof(name), "%s>%s", xmig_strategy_name(r->asked),
                     xmig_strategy_name(r->used));
        else
            snprintf(name, sizeof(name), "%s", xmig_strategy_name(r->used));
        if (r->have_perfc) {
            snprintf(ptwr, sizeof(ptwr), "%.3f",
                     f->n ? (double)r->ptwr / (double)f->n : 0.0);
            snprintf(mmu, sizeof(mmu), "%" PRIu64, r->mmu_update);
        }
        if (cpu_per_gib(r) >= 0)
            snprintf(cpu, sizeof(cpu), "%.3f", cpu_per_gib(r));
        if (xmig_cost_per_page(r->cost.hypercalls, f->n) >= 0)
            snprintf(hcall, sizeof(hcall), "%.3f",
                     xmig_cost_per_page(r->cost.hypercalls, f->n));
        printf("%-16s %8" PRIu64 " %8.3f %8.3f %8.3f %10.0f %10s %10s %10s "
               "%10s\n",
               name, r->st.frames_mapped, (double)r->st.map_ns / 1e9,
               (double)r->st.unmap_ns / 1e9, r->wall_s,
               r->wall_s > 0 ? (double)r->st.frames_mapped / r->wall_s : 0.0,
               cpu, ptwr, hcall, mmu);
    }
}

static void print_json(const struct xmig_dominfo *info,
                       const struct xmig_frames *f,
                       const struct xmig_arena_params *p,
                       const struct run *runs, int nruns)
{
    struct json_object *j = json_object_new_object(), *a, *o;
    int i;

    proto_add_str(j, "bench", "map");
    proto_add_uint(j, "domid", info->domid);
    proto_add_text(j, "name", info->name);
    proto_add_str(j, "type", xmig_domtype_name(info->type));
    proto_add_uint(j, "frames", f->n);
    proto_add_uint(j, "holes", f->nr_holes);
    proto_add_uint(j, "batch", p->batch);
    proto_add_uint(j, "slots", p->slots);
    proto_add_str(j, "background", p->background ? "yes" : "no");
    proto_add(j, "runs", a = json_object_new_array());
    for (i = 0; i < nruns; i++) {
        const struct run *r = &runs[i];
        char sum[20];

        proto_append(a, o = json_object_new_object());
        proto_add_str(o, "strategy", xmig_strategy_name(r->asked));
        proto_add_str(o, "used", xmig_strategy_name(r->used));
        proto_add_uint(o, "pages", r->st.frames_mapped);
        proto_add_uint(o, "map_calls", r->st.map_calls);
        proto_add_uint(o, "unmap_calls", r->st.unmap_calls);
        proto_add_sig(o, "map_s", (double)r->st.map_ns / 1e9, 6);
        proto_add_sig(o, "unmap_s", (double)r->st.unmap_ns / 1e9, 6);
        proto_add_sig(o, "wall_s", r->wall_s, 6);
        proto_add_fixed(
            o, "pages_per_s",
            r->wall_s > 0 ? (double)r->st.frames_mapped / r->wall_s : 0, 9);
        /* Xen's account of all of dom0: other work meanwhile counts too. */
        if (r->cost.dom0_cpu_ns >= 0) {
            proto_add_sig(o, "dom0_cpu_s", (double)r->cost.dom0_cpu_ns / 1e9,
                          9);
            proto_add_fixed(o, "dom0_cpu_s_per_gib", cpu_per_gib(r), 6);
        } else {
            proto_add_null(o, "dom0_cpu_s");
            proto_add_null(o, "dom0_cpu_s_per_gib");
        }
        if (r->have_perfc) {
            proto_add_uint(o, "ptwr", r->ptwr);
            proto_add_sig(o, "ptwr_per_page",
                          f->n ? (double)r->ptwr / (double)f->n : 0.0, 6);
            proto_add_uint(o, "mmu_update", r->mmu_update);
        } else {
            proto_add_null(o, "ptwr");
            proto_add_null(o, "ptwr_per_page");
            proto_add_null(o, "mmu_update");
        }
        if (r->cost.hypercalls >= 0) {
            proto_add_uint(o, "hypercalls", (uint64_t)r->cost.hypercalls);
            proto_add_sig(o, "hypercalls_per_page",
                          xmig_cost_per_page(r->cost.hypercalls, f->n), 6);
        } else {
            proto_add_null(o, "hypercalls");
            proto_add_null(o, "hypercalls_per_page");
        }
        snprintf(sum, sizeof(sum), "%016" PRIx64, r->checksum);
        proto_add_str(o, "checksum", sum);
    }
    render_json(j);
}

static int parse_uint(const char *opt, const char *s, unsigned int max,
                      unsigned int *v)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(s, &end, 10);
    if (errno || *end || !*s || n == 0 || n > max) {
        cli_error("%s: expected a number from 1 to %u, got '%s'", opt, max, s);
        return -1;
    }
    *v = (unsigned int)n;
    return 0;
}

static int cmd_bench_map(int argc, char **argv)
{
    static const struct option opts[] = {
        {"batch", required_argument, NULL, 'b'},
        {"strategy", required_argument, NULL, 's'},
        {"slots", required_argument, NULL, 'S'},
        {"reclaim", required_argument, NULL, 'r'},
        {"no-background", no_argument, NULL, 'B'},
        {"background", no_argument, NULL, 'G'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct xmig_arena_params p;
    struct run runs[XMIG_STRATEGY__COUNT];
    enum xmig_strategy chosen[XMIG_STRATEGY__COUNT];
    struct xmig_dominfo info, after;
    struct xmig_frames f;
    xmig_xen *x = NULL;
    char *why = NULL;
    struct opt_value v;
    bool json = false;
    int nchosen = 0, i, c, rc = EXIT_FAIL;
    uint32_t domid;

    xmig_arena_params_default(&p);
    xmig_frames_init(&f);
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:s:j", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (cli_opt(OPT_BATCH, true, optarg, &v) < 0)
                return EXIT_USAGE;
            p.batch = (unsigned int)v.n;
            break;
        case 'S':
            if (parse_uint("--slots", optarg, 4096, &p.slots) < 0)
                return EXIT_USAGE;
            break;
        case 'r':
            if (parse_uint("--reclaim", optarg, 4096, &p.reclaim) < 0)
                return EXIT_USAGE;
            break;
        case 's':
            if (cli_opt(OPT_STRATEGY, true, optarg, &v) < 0)
                return EXIT_USAGE;
            if (nchosen == XMIG_STRATEGY__COUNT)
                return cli_usage(&cmd_bench_entry);
            chosen[nchosen++] = (enum xmig_strategy)v.n;
            break;
        case 'B':
            p.background = false;
            break;
        case 'G':
            p.background = true;
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_usage(&cmd_bench_entry);
        }
    }
    if (optind + 1 != argc)
        return cli_usage(&cmd_bench_entry);
    if (!nchosen) {
        for (i = 0; i < XMIG_STRATEGY__COUNT; i++)
            chosen[i] = (enum xmig_strategy)i;
        nchosen = XMIG_STRATEGY__COUNT;
    }

    x = xmig_xen_open(cli_log, NULL, &why);
    if (!x) {
        cli_error("%s", why);
        free(why);
        return EXIT_FAIL;
    }
    if (xmig_domain_find(x, argv[optind], &domid) < 0 ||
        xmig_domain_info(x, domid, &info) < 0) {
        cli_error("%s", xmig_xen_error(x));
        goto out;
    }
    if (domid == 0) {
        cli_error("domain 0 cannot be benchmarked: it is this dom0");
        goto out;
    }
    if (xmig_frames_scan(x, &info, &f) < 0) {
        explain_failure(x, &info, errno, xmig_xen_error(x));
        goto out;
    }
    if (!f.n) {
        cli_error("domain %u has no populated frames", domid);
        goto out;
    }
    for (i = 0; i < nchosen; i++) {
        memset(&runs[i], 0, sizeof(runs[i]));
        runs[i].asked = chosen[i];
        p.strategy = chosen[i];
        if (bench_one(x, &info, &f, &p, &runs[i]) < 0)
            goto out;
    }
    /* Being destroyed, it may have lasted until the end: not a result. */
    if (xmig_domain_vanished(x, &info, 0) ||
        xmig_domain_info(x, domid, &after) < 0) {
        cli_error("domain %u vanished during the benchmark", domid);
        goto out;
    }
    /* A paused guest cannot change: every strategy must have read the same. */
    if (info.paused && after.paused) {
        for (i = 1; i < nchosen; i++) {
            if (runs[i].checksum != runs[0].checksum) {
                cli_error("checksum of '%s' differs from '%s' on paused "
                          "domain %u",
                          xmig_strategy_name(runs[i].asked),
                          xmig_strategy_name(runs[0].asked), domid);
                goto out;
            }
        }
    }
    if (json)
        print_json(&info, &f, &p, runs, nchosen);
    else
        print_table(&info, &f, p.batch, runs, nchosen);
    rc = EXIT_OK;
out:
    xmig_frames_dispose(&f);
    xmig_xen_close(x);
    return rc;
}

static int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "map") != 0)
        return cli_usage(&cmd_bench_entry);
    return cmd_bench_map(argc - 1, argv + 1);
}

const struct cmd_entry cmd_bench_entry = {
    .name = "bench",
    .usage = "map DOMAIN [--batch N] [--strategy S]... [--slots N] "
             "[--reclaim N] [--background] [--json]",
    .help = "map, read and unmap every populated frame of DOMAIN with each "
            "strategy (per-batch, arena, kernel, exit) and report the cost",
    .exec = cmd_bench,
};

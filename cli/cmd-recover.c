/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xmig recover: put back the guests of jobs that died (xmigd or `xmig
 * --direct` killed mid-job), as xmigd does when it starts.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "xmig-cli.h"

struct outcome {
    struct json j;
    bool json;
    unsigned int failed;
};

static void report(void *arg, const struct xmig_recover_report *rep)
{
    struct outcome *o = arg;

    if (rep->state == XMIG_RECOVER_FAILED)
        o->failed++;
    if (!o->json) {
        printf("%s\n", rep->message);
        return;
    }
    json_open(&o->j, NULL, '{');
    json_u64(&o->j, "domid", rep->domid);
    json_str(&o->j, "name", rep->name);
    json_str(&o->j, "away_name", rep->away_name);
    json_str(&o->j, "kind", rep->kind == XMIG_JOB_SAVE ? "save" : "migrate");
    json_str(&o->j, "dest", rep->dest);
    json_str(&o->j, "phase", rep->phase);
    json_str(&o->j, "state", xmig_recover_state_name(rep->state));
    json_str(&o->j, "found", rep->found);
    json_str(&o->j, "done", rep->done);
    json_str(&o->j, "message", rep->message);
    json_close(&o->j, '}');
}

static int cmd_recover(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"journal-dir", required_argument, NULL, 'J'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = XMIG_JOURNAL_DIR;
    struct outcome o = {.json = false};
    char *why = NULL;
    xmig_xen *x;
    int c, unknown;

    optind = 1;
    while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o.json = true;
            break;
        case 'J':
            dir = optarg;
            break;
        default:
            return cli_usage(&cmd_recover_entry);
        }
    }
    if (optind != argc)
        return cli_usage(&cmd_recover_entry);
    x = xmig_xen_open(cli_log, NULL, &why);
    if (!x) {
        cli_error("%s", why);
        free(why);
        return EXIT_FAIL;
    }
    if (o.json) {
        json_begin(&o.j, stdout);
        json_open(&o.j, NULL, '{');
        json_str(&o.j, "journal_dir", dir);
        json_open(&o.j, "guests", '[');
    }
    unknown = xmig_recover(x, dir, report, &o);
    if (o.json) {
        json_close(&o.j, ']');
        if (unknown >= 0)
            json_u64(&o.j, "unknown", (unsigned int)unknown);
        else
            json_str(&o.j, "error", xmig_xen_error(x));
        json_close(&o.j, '}');
        json_end(&o.j);
    }
    if (unknown < 0)
        cli_error("%s", xmig_xen_error(x));
    xmig_xen_close(x);
    if (unknown > 0)
        return EXIT_UNKNOWN;
    return unknown < 0 || o.failed ? EXIT_FAIL : EXIT_OK;
}

const struct cmd_entry cmd_recover_entry = {
    .name = "recover",
    .usage = "[--json] [--journal-dir DIR]",
    .help = "put back the guests of jobs that died (xmigd or --direct "
            "killed): resume them here unless the receiver may run them",
    .exec = cmd_recover,
};

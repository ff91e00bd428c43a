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
    struct json_object *guests;
    bool json;
    unsigned int failed;
};

static void report(void *arg, const struct xmig_recover_report *rep)
{
    struct outcome *o = arg;
    struct json_object *g;

    if (rep->state == XMIG_RECOVER_FAILED)
        o->failed++;
    if (!o->json) {
        printf("%s\n", rep->message);
        return;
    }
    proto_append(o->guests, g = json_object_new_object());
    proto_add_uint(g, "domid", rep->domid);
    proto_add_text(g, "name", rep->name);
    proto_add_text(g, "away_name", rep->away_name);
    proto_add_str(g, "kind", rep->kind == XMIG_JOB_SAVE ? "save" : "migrate");
    proto_add_text(g, "dest", rep->dest);
    proto_add_text(g, "phase", rep->phase);
    proto_add_str(g, "state", xmig_recover_state_name(rep->state));
    proto_add_text(g, "found", rep->found);
    proto_add_text(g, "done", rep->done);
    proto_add_text(g, "message", rep->message);
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
    struct json_object *out = NULL;
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
        out = json_object_new_object();
        proto_add_text(out, "journal_dir", dir);
        proto_add(out, "guests", o.guests = json_object_new_array());
    }
    unknown = xmig_recover(x, dir, report, &o);
    if (o.json) {
        if (unknown >= 0)
            proto_add_uint(out, "unknown", (unsigned int)unknown);
        else
            proto_add_text(out, "error", xmig_xen_error(x));
        render_json(out);
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

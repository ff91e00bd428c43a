/* SPDX-License-Identifier: LGPL-2.1-only */
/* xmig: the command-line tool.  Commands are looked up in cmd_table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "xmig-cli.h"

bool cli_verbose;

static const struct cmd_entry *const cmd_table[] = {
    &cmd_bench_entry,    &cmd_migrate_entry, &cmd_save_entry,
    &cmd_evacuate_entry, &cmd_status_entry,  &cmd_watch_entry,
    &cmd_cancel_entry,   &cmd_stats_entry,   &cmd_recover_entry,
};

#define NCMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))

void cli_log(void *arg, enum xmig_log_level level, const char *msg)
{
    if (level >= XMIG_LOG_INFO && !cli_verbose)
        return;
    fprintf(stderr, "xmig: %s: %s\n", opt_value_name(OPT_LOG_LEVEL, (int)level),
            msg);
}

/* "--live|--no-live", "--max-iters N", "--engine xmig|libxc" */
static void print_opt(FILE *f, enum opt_id id)
{
    const struct opt *o = &opt_table[id];
    char values[128];

    fprintf(f, "--%s", o->cli ? o->cli : o->cli_off);
    if (o->cli && o->cli_off)
        fprintf(f, "|--%s", o->cli_off);
    if (o->type == OPT_ENUM) {
        opt_value_list(id, "|", "|", values, sizeof(values));
        fprintf(f, " %s", values);
    } else if (o->type != OPT_BOOL) {
        fprintf(f, " %s", o->arg);
    }
}

static bool is_cli(const struct opt *o, unsigned int cmds)
{
    return (o->cmds & cmds) && (o->cli || o->cli_off);
}

/* The options of migrate, save and evacuate, and what they mean. */
static void print_opts_help(FILE *f)
{
    const struct opt *o;
    char cmds[64];
    size_t id;

    fprintf(f, "\noptions of migrate, save and evacuate:\n");
    for (id = 0; id < OPT__COUNT; id++) {
        o = &opt_table[id];
        if (!is_cli(o, OPT_JOBS))
            continue;
        fprintf(f, "  ");
        print_opt(f, (enum opt_id)id);
        fprintf(f, "\n      %s", o->help);
        if (o->type == OPT_UINT)
            fprintf(f, " (%llu to %llu)", o->min, o->max);
        if ((o->cmds & OPT_JOBS) != OPT_JOBS) {
            opt_cmds_list(o->cmds, cmds, sizeof(cmds));
            fprintf(f, "; %s only", cmds);
        }
        fprintf(f, "\n");
    }
}

void cli_error(const char *fmt, ...)
{
    va_list ap;

    fputs("xmig: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_opt(enum opt_id id, bool on, const char *s, struct opt_value *v)
{
    char err[256];

    if (opt_parse_arg(id, on, s, v, err, sizeof(err)) == 0)
        return 0;
    cli_error("%s", err);
    return -1;
}

int cli_usage(const struct cmd_entry *e)
{
    size_t id;

    fprintf(stderr, "usage: xmig %s %s", e->name, e->usage);
    for (id = 0; id < OPT__COUNT; id++) {
        if (is_cli(&opt_table[id], e->opts)) {
            fprintf(stderr, " [");
            print_opt(stderr, (enum opt_id)id);
            fprintf(stderr, "]");
        }
    }
    fputc('\n', stderr);
    return EXIT_USAGE;
}

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: xmig [-v] [-S SOCKET] COMMAND [ARGS]\n"
               "       xmig --version\n\n"
               "commands:\n");
    for (i = 0; i < NCMDS; i++) {
        fprintf(f, "  %s %s", cmd_table[i]->name, cmd_table[i]->usage);
        if (cmd_table[i]->opts)
            fprintf(f, " [options]");
        fprintf(f, "\n      %s\n", cmd_table[i]->help);
    }
    print_opts_help(f);
}

int main(int argc, char **argv)
{
    size_t i;

    argc--;
    argv++;
    while (argc && argv[0][0] == '-') {
        if (strcmp(argv[0], "-v") == 0) {
            cli_verbose = true;
        } else if (strcmp(argv[0], "-S") == 0 ||
                   strcmp(argv[0], "--socket") == 0) {
            if (argc < 2) {
                cli_error("%s needs the path of xmigd's socket", argv[0]);
                return EXIT_USAGE;
            }
            cli_socket = argv[1];
            argc--;
            argv++;
        } else if (strcmp(argv[0], "--version") == 0) {
            printf("xmig %s\n", PACKAGE_VERSION);
            return EXIT_OK;
        } else if (strcmp(argv[0], "-h") == 0 ||
                   strcmp(argv[0], "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else {
            cli_error("unknown option '%s'", argv[0]);
            usage(stderr);
            return EXIT_USAGE;
        }
        argc--;
        argv++;
    }
    if (!argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (i = 0; i < NCMDS; i++)
        if (strcmp(argv[0], cmd_table[i]->name) == 0)
            return cmd_table[i]->exec(argc, argv);
    cli_error("unknown command '%s'", argv[0]);
    usage(stderr);
    return EXIT_USAGE;
}

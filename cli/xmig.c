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
    static const char *const names[] = {"error", "warning", "info", "debug"};

    if (level >= XMIG_LOG_INFO && !cli_verbose)
        return;
    fprintf(stderr, "xmig: %s: %s\n", names[level], msg);
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

int cli_usage(const struct cmd_entry *e)
{
    fprintf(stderr, "usage: xmig %s %s\n", e->name, e->usage);
    return EXIT_USAGE;
}

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: xmig [-v] [-S SOCKET] COMMAND [ARGS]\n"
               "       xmig --version\n\n"
               "commands:\n");
    for (i = 0; i < NCMDS; i++)
        fprintf(f, "  %s %s\n      %s\n", cmd_table[i]->name,
                cmd_table[i]->usage, cmd_table[i]->help);
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

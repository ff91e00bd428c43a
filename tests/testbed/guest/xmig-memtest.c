/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * xmig-memtest: the guest workload that proves a guest's memory survived a
 * save/restore or live migration intact.  See README.md for the protocol.
 *
 * Every page holds its own index, its generation and a pattern derived from
 * (seed, index, generation), so a page can be checked in isolation and a
 * failure says what went wrong: an older generation is a dirty page the
 * migration did not resend, another index a page that landed in the wrong
 * frame.  The expected generations live in ordinary guest memory too; they
 * migrate with everything else, which is exactly what we want to test.
 *
 * Build: gcc -static -O2 -Wall -Wextra -Werror -o xmig-memtest xmig-memtest.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static size_t npages, nwss, page_words;
static uint64_t *mem;           /* npages * page_words words */
static uint32_t *gen;           /* expected generation of each page */
static unsigned char *seen_bad; /* pages the dirtier found damaged */
static uint64_t seed, dirtied;
static double rate = 3000;
static int dirty_on = 1;
/* The dirtier holds this while it writes; verify and corrupt take it, so a
 * page and its expected generation are never seen half updated. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int in_fd = 0, out_fd = 1;
static const char *console;
static double started;

static uint64_t mix(uint64_t x) /* splitmix64's finaliser */
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t *page(size_t i)
{
    return mem + i * page_words;
}

static uint64_t
xorshift(uint64_t *x) /* cheap enough to fill memory under TCG */
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Write page i as generation g, or count the words that differ from it. */
static size_t page_op(size_t i, uint32_t g, int write)
{
    uint64_t *w = page(i), x = mix(mix(seed ^ i) ^ g) | 1;
    size_t bad = 0;

    for (size_t k = 0; k < page_words; k++) {
        uint64_t want = k == 0 ? i : k == 1 ? g : xorshift(&x);
        if (write)
            w[k] = want;
        else
            bad += w[k] != want;
    }
    return bad;
}

static void dirty_page(size_t i)
{
    if (seen_bad[i])
        return;
    if (page_op(i, gen[i], 0)) { /* keep the evidence: never rewrite it */
        seen_bad[i] = 1;
        return;
    }
    page_op(i, gen[i] + 1, 1);
    gen[i]++;
    dirtied++;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The longest stall the guest saw, on the clock that counts a suspend
 * (CLOCK_BOOTTIME: Linux adds the time a Xen guest spent suspended on
 * resume): a migration's downtime as the guest lives it.
 */
static double max_gap;

static double boottime(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_BOOTTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *dirtier(void *arg)
{
    uint64_t rng = mix(seed + 1);
    double owed = 0, last = now(), last_boot = boottime();

    (void)arg;
    for (;;) {
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
        double t = now(), dt = t - last, b = boottime();

        last = t;
        /* A migration pauses us and may move clocks: never catch up more
         * than a tick's worth, never go backwards. */
        if (dt < 0 || dt > 0.1)
            dt = 0.1;
        pthread_mutex_lock(&lock);
        if (b - last_boot > max_gap)
            max_gap = b - last_boot;
        last_boot = b;
        owed = dirty_on && nwss ? owed + rate * dt : 0;
        for (; owed >= 1; owed--)
            dirty_page(xorshift(&rng) % nwss);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* One write per line; errors are ignored: a lost console must not stop us. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vdprintf(out_fd, fmt, ap);
    va_end(ap);
}

static size_t verify(int report)
{
    size_t bad = 0, shown = 0;
    char detail[768] = "";

    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < npages; i++) {
        size_t diff = page_op(i, gen[i], 0);
        if (!diff && !seen_bad[i])
            continue;
        if (shown < 6) {
            size_t len = strlen(detail);
            snprintf(detail + len, sizeof(detail) - len,
                     "%spage=%zu want_gen=%" PRIu32 " found_idx=%" PRIu64
                     " found_gen=%" PRIu64 " diff_words=%zu",
                     shown ? "; " : "", i, gen[i], page(i)[0], page(i)[1],
                     diff);
            shown++;
        }
        bad++;
    }
    pthread_mutex_unlock(&lock);
    if (!report)
        return bad;
    if (bad) {
        say("integrity FAIL bad=%zu of %zu\n", bad, npages);
        say("bad %s\n", detail);
    } else {
        say("integrity OK pages=%zu\n", npages);
    }
    return bad;
}

/* Flip one bit in each of k pages spread over the whole range. */
static size_t corrupt(size_t k)
{
    pthread_mutex_lock(&lock);
    if (k > npages)
        k = npages;
    for (size_t j = 0; j < k; j++) {
        uint64_t r = mix(seed ^ (uint64_t)(now() * 1e9) ^ j);
        size_t i = j * npages / k + r % (npages / k);
        page(i)[2 + (r >> 32) % (page_words - 2)] ^= 1ULL << (r >> 58);
    }
    pthread_mutex_unlock(&lock);
    return k;
}

static void no_echo(int fd) /* keep replies parseable */
{
    struct termios tio;

    if (!tcgetattr(fd, &tio)) {
        tio.c_lflag &= ~(ECHO | ECHONL);
        tcsetattr(fd, TCSANOW, &tio);
    }
}

static void open_console(void)
{
    int fd;

    while ((fd = open(console, O_RDWR | O_NOCTTY)) < 0)
        sleep(1);
    if (in_fd > 2)
        close(in_fd);
    in_fd = out_fd = fd;
    no_echo(fd);
}

static void command(char *line)
{
    static double last_t; /* of the previous stats, for the rate */
    static uint64_t last_dirtied;
    char word[16], arg[16];
    size_t k;
    int n = sscanf(line, "%15s %15s", word, arg);

    if (n < 1)
        return;
    if (!strcmp(word, "verify") && n == 1) {
        verify(1);
    } else if (!strcmp(word, "corrupt") && n == 2 &&
               sscanf(arg, "%zu", &k) == 1) {
        say("corrupted %zu\n", corrupt(k));
    } else if (!strcmp(word, "dirty") && n == 2 &&
               (!strcmp(arg, "on") || !strcmp(arg, "off"))) {
        pthread_mutex_lock(&lock);
        dirty_on = !strcmp(arg, "on");
        pthread_mutex_unlock(&lock);
        say("dirty %s\n", arg);
    } else if (!strcmp(word, "gap") && n == 1) {
        pthread_mutex_lock(&lock);
        double g = max_gap;
        max_gap = 0;
        pthread_mutex_unlock(&lock);
        say("gap max_ms=%.0f\n", g * 1000);
    } else if (!strcmp(word, "stats") && n == 1) {
        pthread_mutex_lock(&lock);
        uint64_t d = dirtied;
        int on = dirty_on;
        pthread_mutex_unlock(&lock);
        double t = now();
        if (!last_t)
            last_t = started;
        say("stats pages=%zu wss=%zu gen_total=%" PRIu64
            " dirty=%s rate=%.0f actual=%.0f\n",
            npages, nwss, d, on ? "on" : "off", rate,
            t > last_t ? (d - last_dirtied) / (t - last_t) : 0.0);
        last_t = t;
        last_dirtied = d;
    } else {
        say("error unknown command\n");
    }
}

static size_t avail_pages(size_t psz)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long long kb = 0;

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024 / psz;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pages", 1, 0, 'p'},       {"mem-pct", 1, 0, 'm'},
        {"reserve-mib", 1, 0, 'r'}, {"seed", 1, 0, 's'},
        {"wss-pct", 1, 0, 'w'},     {"rate", 1, 0, 'R'},
        {"console", 1, 0, 'c'},     {"exit-on-eof", 0, 0, 'e'},
        {"self-test", 0, 0, 't'},   {0, 0, 0, 0}};
    size_t psz = sysconf(_SC_PAGESIZE), reserve_mib = 24;
    double mem_pct = 0, wss_pct = 25;
    int opt, exit_on_eof = 0, self_test = 0;

    seed = mix(time(NULL) ^ (uint64_t)getpid() << 32 ^ (uint64_t)(now() * 1e9));
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            npages = strtoull(optarg, NULL, 0);
            break;
        case 'm':
            mem_pct = strtod(optarg, NULL);
            break;
        case 'r':
            reserve_mib = strtoull(optarg, NULL, 0);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 0);
            break;
        case 'w':
            wss_pct = strtod(optarg, NULL);
            break;
        case 'R':
            rate = strtod(optarg, NULL);
            break;
        case 'c':
            console = optarg;
            break;
        case 'e':
            exit_on_eof = 1;
            break;
        case 't':
            self_test = 1;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--pages N | --mem-pct P | --reserve-mib M] "
                    "[--seed S]\n"
                    "  [--wss-pct P] [--rate PAGES_PER_S] [--console DEV] "
                    "[--exit-on-eof] [--self-test]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!npages) {
        size_t avail = avail_pages(psz), keep = reserve_mib * 1024 * 1024 / psz;
        npages = mem_pct > 0    ? avail * mem_pct / 100
                 : avail > keep ? avail - keep
                                : 0;
    }
    page_words = psz / sizeof(uint64_t);
    nwss = npages * (wss_pct < 0 ? 0 : wss_pct > 100 ? 100 : wss_pct) / 100;
    mem = mmap(NULL, npages * psz, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    gen = calloc(npages, sizeof(*gen));
    seen_bad = calloc(npages, 1);
    if (!npages || mem == MAP_FAILED || !gen || !seen_bad) {
        fprintf(stderr, "xmig-memtest: cannot allocate %zu pages: %s\n", npages,
                strerror(errno));
        return 1;
    }
    if (mlock(mem, npages * psz)) /* no swap in the guest: not fatal */
        fprintf(stderr, "xmig-memtest: mlock: %s (continuing)\n",
                strerror(errno));
    for (size_t i = 0; i < npages; i++)
        page_op(i, 0, 1);

    /* A console may hang up, or be closed and reopened, across a migration. */
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    if (console)
        open_console();
    else
        no_echo(in_fd);
    pthread_t thr;
    started = now();
    if (pthread_create(&thr, NULL, dirtier, NULL)) {
        fprintf(stderr, "xmig-memtest: cannot start the dirtier\n");
        return 1;
    }
    if (self_test) {
        nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
        size_t ok = verify(0), k = npages < 5 ? npages : 5;
        corrupt(k);
        nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
        size_t bad = verify(0);
        pthread_mutex_lock(&lock);
        int pass = !ok && bad == k && dirtied;
        say("self-test dirtied=%" PRIu64
            " clean-bad=%zu after-corrupt=%zu of %zu: %s\n",
            dirtied, ok, bad, k, pass ? "PASS" : "FAIL");
        return !pass;
    }
    say("memtest ready pages=%zu seed=%" PRIu64 "\n", npages, seed);

    char buf[256];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(in_fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { /* EOF or hangup: wait for a reader again */
            if (exit_on_eof)
                return 0;
            sleep(1);
            if (console)
                open_console();
            continue;
        }
        len += n;
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', buf + len - line))) {
            *nl = 0; /* a trailing \r is just blank to sscanf */
            command(line);
            line = nl + 1;
        }
        len -= line - buf;
        memmove(buf, line, len);
        if (len == sizeof(buf) - 1) /* an overlong line: drop it */
            len = 0;
    }
}

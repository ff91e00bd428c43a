/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * A very small test helper: failures are counted, not fatal, and each
 * program ends with the "N passed, N failed" line that CI reads.
 */
#ifndef XMIG_TEST_H
#define XMIG_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed, test_cur_failed;
static const char *test_cur;

#define TEST_START(name)                                                       \
    do {                                                                       \
        test_cur = (name);                                                     \
        test_cur_failed = 0;                                                   \
    } while (0)

#define TEST_DONE()                                                            \
    do {                                                                       \
        if (test_cur_failed)                                                   \
            test_failed++;                                                     \
        else                                                                   \
            test_passed++;                                                     \
        printf("%s: %s\n", test_cur_failed ? "FAIL" : "ok  ", test_cur);       \
    } while (0)

#define TEST_FAIL(fmt, ...)                                                    \
    do {                                                                       \
        test_cur_failed++;                                                     \
        printf("  %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);         \
    } while (0)

#define ASSERT_TRUE(c)                                                         \
    do {                                                                       \
        if (!(c))                                                              \
            TEST_FAIL("assertion failed: %s", #c);                             \
    } while (0)

#define ASSERT_U64_EQ(a, b)                                                    \
    do {                                                                       \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                       \
        if (a_ != b_)                                                          \
            TEST_FAIL("%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, a_, b_);    \
    } while (0)

#define ASSERT_INT_EQ(a, b)                                                    \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_)                                                          \
            TEST_FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);               \
    } while (0)

#define ASSERT_PTR_NULL(p) ASSERT_TRUE((p) == NULL)
#define ASSERT_PTR_NONNULL(p) ASSERT_TRUE((p) != NULL)

#define TEST_EXIT()                                                            \
    (printf("%d passed, %d failed\n", test_passed, test_failed),               \
     test_failed ? 1 : 0)

#endif

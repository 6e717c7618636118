/* Unit tests for fy_log: line formats, ids, levels. stderr is redirected to a
 * file for the duration of each capture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "fy_log.h"

static char cap_path[64];
static int saved_fd = -1;

static void capture_start(void)
{
    snprintf(cap_path, sizeof cap_path, "/tmp/fy_log_test.XXXXXX");
    int fd = mkstemp(cap_path);
    assert_true(fd >= 0);
    saved_fd = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* Returns the captured text; caller frees. */
static char *capture_end(void)
{
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    FILE *f = fopen(cap_path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(cap_path);
    return buf;
}

static void test_text_format(void **state)
{
    (void)state;
    fy_log_init("ferry-api", FY_LOG_INFO, false);
    capture_start();
    fy_log_set_request_id(NULL);
    fy_log_set_migration_id(NULL);
    fy_info("hello %d", 42);
    fy_log_set_request_id("req-abc");
    fy_log_set_migration_id("mig-1");
    fy_warn("two\nlines");
    fy_debug("hidden");
    char *out = capture_end();

    char *l2 = strchr(out, '\n');
    assert_non_null(l2);
    *l2++ = '\0';
    /* 2026-11-27T14:37:53.123Z */
    assert_int_equal(strlen(out) > 24, 1);
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[19], '.');
    assert_int_equal(out[23], 'Z');
    assert_string_equal(out + 24, " ferry-api INFO [-] [-] hello 42");
    assert_string_equal(strchr(l2, ' '), " ferry-api WARN [req-abc] [mig-1] two\\nlines\n");
    assert_null(strstr(l2, "hidden"));
    free(out);
    assert_string_equal(fy_log_request_id(), "req-abc");
    fy_log_set_request_id(NULL);
    fy_log_set_migration_id(NULL);
    assert_string_equal(fy_log_request_id(), "");
}

static void test_json_format(void **state)
{
    (void)state;
    fy_log_init("ferry-compute", FY_LOG_DEBUG, true);
    capture_start();
    fy_log_set_request_id("req-\"q\"");
    fy_debug("tab\there \"quoted\" \\ \x01");
    char *out = capture_end();
    fy_log_set_request_id(NULL);

    size_t len = strlen(out);
    assert_true(len > 0 && out[len - 1] == '\n');
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("bad json line '%s': %s", out, je.text);
    assert_string_equal(json_string_value(json_object_get(j, "service")), "ferry-compute");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "debug");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "req-\"q\"");
    assert_true(json_is_null(json_object_get(j, "migration_id")));
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "tab\there \"quoted\" \\ \x01");
    assert_non_null(strstr(json_string_value(json_object_get(j, "where")), "test_log.c:"));
    assert_non_null(json_string_value(json_object_get(j, "ts")));
    json_decref(j);
    free(out);
}

static void test_levels(void **state)
{
    (void)state;
    assert_int_equal(fy_log_level_from_name("error"), FY_LOG_ERROR);
    assert_int_equal(fy_log_level_from_name("WARN"), FY_LOG_WARN);
    assert_int_equal(fy_log_level_from_name("warning"), FY_LOG_WARN);
    assert_int_equal(fy_log_level_from_name("info"), FY_LOG_INFO);
    assert_int_equal(fy_log_level_from_name("debug"), FY_LOG_DEBUG);
    assert_int_equal(fy_log_level_from_name("loud"), -1);
    assert_int_equal(fy_log_level_from_name(NULL), -1);
    fy_log_set_level(FY_LOG_WARN);
    assert_true(fy_log_enabled(FY_LOG_ERROR));
    assert_false(fy_log_enabled(FY_LOG_INFO));
}

static void *thread_logger(void *arg)
{
    fy_log_set_request_id(arg);
    for (int i = 0; i < 200; i++)
        fy_info("line %d from %s with some padding to make it longer than a few bytes", i,
                (const char *)arg);
    return NULL;
}

static void test_threads_no_interleave(void **state)
{
    (void)state;
    fy_log_init("ferry-conductor", FY_LOG_INFO, false);
    capture_start();
    pthread_t a, b;
    pthread_create(&a, NULL, thread_logger, "req-a");
    pthread_create(&b, NULL, thread_logger, "req-b");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    char *out = capture_end();
    int lines = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lines++;
        bool is_a = strstr(l, "[req-a]") && strstr(l, "from req-a with");
        bool is_b = strstr(l, "[req-b]") && strstr(l, "from req-b with");
        assert_true(is_a || is_b);
    }
    assert_int_equal(lines, 400);
    free(out);
    assert_string_equal(fy_log_request_id(), "");
}

static void log_big(const char *big)
{
    capture_start();
    fy_error("%s", big);
    char *out = capture_end();
    json_error_t je;
    json_t *j = json_loads(out, 0, &je); /* still one valid JSON line even when cut */
    if (!j)
        fail_msg("invalid JSON line: %s", je.text);
    assert_non_null(strchr(out, '\n'));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    json_decref(j);
    free(out);
}

static void test_long_message(void **state)
{
    (void)state;
    fy_log_init("ferry-api", FY_LOG_INFO, true);
    size_t n = 20000;
    char *big = malloc(n);
    assert_non_null(big);
    /* Quotes double, control bytes grow sixfold, "é" must never be split. */
    const char *fills[] = { "\"", "\x01", "\xc3\xa9", "\x01\xc3\xa9\\" };
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        for (size_t off = 0; off < 6; off++) {
            size_t i = 0;
            for (; i < off; i++)
                big[i] = 'x';
            size_t fl = strlen(fills[f]);
            while (i + fl < n) {
                memcpy(big + i, fills[f], fl);
                i += fl;
            }
            big[i] = '\0';
            log_big(big);
        }
    }
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_json_format),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_threads_no_interleave),
        cmocka_unit_test(test_long_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* compute_host_uptime: the line has the shape procps' `uptime` prints. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "compute_host.h"

static void test_uptime_line_shape(void **state)
{
    (void)state;
    char line[160];
    fy_err err = {0};
    assert_int_equal(compute_host_uptime(line, sizeof(line), &err), FY_E_OK);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^ [0-2][0-9]:[0-5][0-9]:[0-6][0-9] up "
                             "([0-9]+ days?, )?([ 0-9][0-9]:[0-5][0-9]|[0-9]+ min), "
                             "[ 0-9][0-9]* users?,  load average: "
                             "[0-9]+\\.[0-9]{2}, [0-9]+\\.[0-9]{2}, [0-9]+\\.[0-9]{2}$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    int rc = regexec(&re, line, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("unexpected uptime line '%s'", line);
}

static void test_uptime_too_small_buffer(void **state)
{
    (void)state;
    char line[16];
    fy_err err = {0};
    assert_int_equal(compute_host_uptime(line, sizeof(line), &err), FY_E_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uptime_line_shape),
        cmocka_unit_test(test_uptime_too_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

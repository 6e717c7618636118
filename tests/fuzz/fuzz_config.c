/* fuzz_config — fy_config_load on arbitrary file contents: a value is loaded or
 * refused with a message, never a crash or a leak. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fy_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_cfg {
    char *db_url, *bind, *secret, *name;
    long long port, threads, max_body;
    bool debug, tls;
    double ratio, interval;
} fuzz_cfg;

#define O(k, t, d, lo, hi, f, fl) { k, t, d, lo, hi, offsetof(fuzz_cfg, f), fl, k }
static const fy_cfg_opt table[] = {
    O("db_url", FY_CFG_STR, "postgresql:///ferry", 0, 0, db_url, 0),
    O("bind", FY_CFG_STR, "127.0.0.1", 0, 0, bind, 0),
    O("service_secret", FY_CFG_SECRET, NULL, 0, 0, secret, 0),
    O("name", FY_CFG_STR, NULL, 0, 0, name, FY_CFG_REQUIRED),
    O("port", FY_CFG_INT, "8774", 1, 65535, port, 0),
    O("threads", FY_CFG_INT, "4", 0, 0, threads, 0),
    O("max_body", FY_CFG_INT, "1048576", 1, 1LL << 40, max_body, 0),
    O("debug", FY_CFG_BOOL, "false", 0, 0, debug, 0),
    O("tls", FY_CFG_BOOL, NULL, 0, 0, tls, 0),
    O("cpu_allocation_ratio", FY_CFG_DOUBLE, "16.0", 0, 0, ratio, 0),
    O("interval", FY_CFG_DOUBLE, NULL, 0, 0, interval, 0),
};

static char path[64];
static FILE *devnull;

/* One scratch file per process, rewritten for each input. */
static int scratch_fd(void)
{
    static int fd = -1;
    if (fd >= 0)
        return fd;
    /* in memory when possible: a disk file truncated per input is the bottleneck */
    snprintf(path, sizeof path, "/dev/shm/fuzz-config-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0) {
        snprintf(path, sizeof path, "/tmp/fuzz-config-XXXXXX");
        fd = mkstemp(path);
    }
    if (fd < 0)
        abort();
    devnull = fopen("/dev/null", "w");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char env[96];
        snprintf(env, sizeof env, "FERRY_%s", table[i].key);
        for (char *p = env; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        unsetenv(env);
    }
    return fd;
}

static void cleanup(void) __attribute__((destructor));
static void cleanup(void)
{
    if (path[0])
        unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = scratch_fd();
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    fuzz_cfg cfg = { 0 };
    fy_err err = { 0 };
    size_t n = sizeof table / sizeof table[0];
    fy_code rc = fy_config_load(table, n, &cfg, path, &err);
    if (rc != FY_E_OK && !err.msg[0])
        abort();
    if (rc == FY_E_OK) {
        if (!cfg.name || cfg.port < 1 || cfg.port > 65535)
            abort();
        if (devnull)
            fy_config_dump(table, n, &cfg, devnull);
    }
    fy_config_free(table, n, &cfg);
    return 0;
}

/* ferry-compute — the per-host compute agent. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compute.h"
#include "fy_log.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: ferry-compute [--config FILE] [--log-format text|json]\n"
            "Runs the compute agent of one host.  Options come from defaults, then FILE\n"
            "(key = value lines), then environment variables FERRY_<KEY>:\n");
    compute_config_help(out);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"log-format", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_file = optarg;
            break;
        case 'L':
            setenv("FERRY_LOG_FORMAT", optarg, 1); /* the config loader applies env last */
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ferry-compute: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    /* Before any thread exists, so every thread inherits the blocked mask. */
    fy_signals_block();
    return compute_agent_run(config_file);
}

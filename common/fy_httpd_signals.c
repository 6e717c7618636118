/* fy_httpd_signals — a service's main thread waits for SIGTERM/SIGINT with
 * sigwait; blocking them before any thread starts keeps them off the workers. */
#include <pthread.h>
#include <signal.h>
#include "fy_httpd.h"

static void stop_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void fy_signals_block(void)
{
    sigset_t set;
    stop_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* a peer closing mid-response must not kill the process */
    signal(SIGPIPE, SIG_IGN);
}

int fy_signals_wait(void)
{
    sigset_t set;
    int sig = 0;
    stop_set(&set);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

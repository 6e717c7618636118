/* Agent base URLs, remembered for a short while: a migration asks for the
 * same two hosts' URLs at every step.  An agent that moves to another URL is
 * seen after COND_URL_TTL_MS, or at once when a call to it fails to connect. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "cond.h"
#include "fy_util.h"

#define COND_URL_SLOTS 64
#define COND_URL_TTL_MS 5000

typedef struct url_slot {
    char host[COND_HOST_MAX];
    char url[512];
    uint64_t fetched_ms;
} url_slot;

static url_slot slots[COND_URL_SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static url_slot *find(const char *host)
{
    for (size_t i = 0; i < COND_URL_SLOTS; i++)
        if (slots[i].host[0] && strcmp(slots[i].host, host) == 0)
            return &slots[i];
    return NULL;
}

bool cond_urlcache_get(const char *host, char *out, size_t size)
{
    bool hit = false;
    pthread_mutex_lock(&slots_lock);
    const url_slot *s = find(host);
    if (s && fy_now_ms() - s->fetched_ms < COND_URL_TTL_MS && strlen(s->url) < size) {
        snprintf(out, size, "%s", s->url);
        hit = true;
    }
    pthread_mutex_unlock(&slots_lock);
    return hit;
}

void cond_urlcache_put(const char *host, const char *url)
{
    if (strlen(host) >= COND_HOST_MAX || strlen(url) >= sizeof(slots[0].url))
        return;
    pthread_mutex_lock(&slots_lock);
    url_slot *s = find(host);
    for (size_t i = 0; !s && i < COND_URL_SLOTS; i++)
        if (!slots[i].host[0])
            s = &slots[i];
    if (!s) {   /* full: replace the oldest */
        s = &slots[0];
        for (size_t i = 1; i < COND_URL_SLOTS; i++)
            if (slots[i].fetched_ms < s->fetched_ms)
                s = &slots[i];
    }
    snprintf(s->host, sizeof(s->host), "%s", host);
    snprintf(s->url, sizeof(s->url), "%s", url);
    s->fetched_ms = fy_now_ms();
    pthread_mutex_unlock(&slots_lock);
}

void cond_urlcache_forget(const char *host)
{
    pthread_mutex_lock(&slots_lock);
    url_slot *s = find(host);
    if (s)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&slots_lock);
}

/* The fake virt driver: no hypervisor, but real files.
 *
 * A guest is its definition state_dir/domains/<uuid>.json (name, flavor, power
 * state, VIFs, volumes) and its directory instances_path/<uuid>/ with the disk
 * (sparse, or a copy of the cached image).  The definition is written last and
 * atomically, so its presence means the guest exists; a directory without it
 * is the remains of an interrupted spawn and is rebuilt by the next spawn. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "compute_disk.h"
#include "compute_driver.h"
#include "compute_fake_priv.h"
#include "fy_util.h"

#define FAKE_DOMAIN_MAX (1024 * 1024)

pthread_mutex_t *fake_lock_guest(fake_priv *p, const char *uuid)
{
    uint32_t h = 2166136261u;   /* FNV-1a: unrelated guests rarely share a stripe */
    for (const char *c = uuid; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    pthread_mutex_t *m = &p->locks[h % FAKE_LOCK_STRIPES];
    pthread_mutex_lock(m);
    return m;
}

void fake_unlockp(pthread_mutex_t **m)
{
    if (*m)
        pthread_mutex_unlock(*m);
}

fy_code fake_check_uuid(const char *uuid, fy_err *err)
{
    if (!fy_uuid_valid(uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid '%s'", uuid ? uuid : "");
    return FY_E_OK;
}

char *fake_guest_path_sfx(const fake_priv *p, const char *uuid, const char *suffix,
                          const char *file)
{
    if (!file)
        return fy_strdup_printf("%s/%s%s", p->instances_path, uuid, suffix);
    return fy_strdup_printf("%s/%s%s/%s", p->instances_path, uuid, suffix, file);
}

char *fake_guest_path(const fake_priv *p, const char *uuid, const char *file)
{
    return fake_guest_path_sfx(p, uuid, "", file);
}

char *fake_domain_path(const fake_priv *p, const char *uuid, const char *suffix)
{
    return fy_strdup_printf("%s/%s%s.json", p->domains_path, uuid, suffix);
}

fy_code fake_read_domain(const fake_priv *p, const char *uuid, const char *suffix, json_t **ret,
                         fy_err *err)
{
    _cleanup_free_ char *path = fake_domain_path(p, uuid, suffix);
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return fy_fail(err, FY_E_NOT_FOUND, "instance %s not found on this host", uuid);
        return fy_fail(err, FY_E_IO, "open %s: %s", path, strerror(errno));
    }
    json_error_t jerr;
    json_t *dom = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(dom)) {
        json_decref(dom);
        return fy_fail(err, FY_E_DRIVER, "%s is corrupt: %s", path, jerr.text);
    }
    *ret = dom;
    return FY_E_OK;
}

fy_code fake_write_domain(const fake_priv *p, const char *uuid, const char *suffix,
                          const json_t *dom, fy_err *err)
{
    _cleanup_free_ char *path = fake_domain_path(p, uuid, suffix);
    _cleanup_free_ char *text = json_dumps(dom, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!path || !text)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (strlen(text) > FAKE_DOMAIN_MAX)
        return fy_fail(err, FY_E_DRIVER, "definition of %s is too large", uuid);
    /* The fake's guests die with the machine anyway: no fsync on every step. */
    if (fy_write_file_replace(path, text, strlen(text), err))
        return fy_err_prefix(err, "writing domain of %s", uuid);
    return FY_E_OK;
}

fy_code fake_remove_domain(const fake_priv *p, const char *uuid, const char *suffix,
                           fy_err *err)
{
    _cleanup_free_ char *path = fake_domain_path(p, uuid, suffix);
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (unlink(path) < 0 && errno != ENOENT)
        return fy_fail(err, FY_E_IO, "unlink %s: %s", path, strerror(errno));
    return FY_E_OK;
}

fy_code fake_make_info(const fake_priv *p, const char *uuid, const json_t *dom, json_t **ret,
                       fy_err *err)
{
    _cleanup_free_ char *disk = fake_guest_path(p, uuid, "disk");
    if (!disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    struct stat st;
    long long size = 0, allocated = 0;
    if (stat(disk, &st) == 0) {
        size = st.st_size;
        allocated = (long long)st.st_blocks * 512;
    }
    int ps = (int)json_integer_value(json_object_get(dom, "power_state"));
    json_t *vifs = json_object_get(dom, "vifs");
    json_t *vols = json_object_get(dom, "volumes");
    json_t *flavor = json_object_get(dom, "flavor");
    json_t *info = json_pack("{s:s, s:O?, s:i, s:s, s:s, s:I, s:I, s:o, s:o, s:O?, s:O?, s:O?,"
                             " s:b}",
                             "uuid", uuid, "name", json_object_get(dom, "name"),
                             "power_state", ps, "state", compute_power_state_name(ps),
                             "disk_path", disk, "disk_size", (json_int_t)size,
                             "disk_allocated", (json_int_t)allocated,
                             "vifs", vifs ? json_incref(vifs) : json_array(),
                             "volumes", vols ? json_incref(vols) : json_array(),
                             "flavor", flavor, "image_id", json_object_get(dom, "image_id"),
                             "created_at", json_object_get(dom, "created_at"),
                             "incoming", json_is_true(json_object_get(dom, "incoming")));
    if (!info)
        return fy_fail(err, FY_E_NOMEM, NULL);
    *ret = info;
    return FY_E_OK;
}

static fy_code fake_get_info(compute_driver *drv, const char *uuid, json_t **ret, fy_err *err)
{
    fake_priv *p = drv->priv;
    json_t *dom = NULL;
    if (fake_check_uuid(uuid, err) || fake_read_domain(p, uuid, "", &dom, err))
        return err->code;
    fy_code rc = fake_make_info(p, uuid, dom, ret, err);
    json_decref(dom);
    return rc;
}

json_t *fake_new_domain(const char *uuid, long long instance_id, const json_t *flavor,
                        const char *image_id, long long root_gb, const json_t *vifs)
{
    char name[32], now[32];
    snprintf(name, sizeof(name), "instance-%08llx", (unsigned long long)instance_id);
    fy_time_iso(time(NULL), now);
    return json_pack("{s:s, s:s, s:I, s:O, s:s?, s:I, s:i, s:O, s:[], s:s}",
                     "uuid", uuid, "name", name, "instance_id", (json_int_t)instance_id,
                     "flavor", flavor, "image_id", image_id, "root_gb", (json_int_t)root_gb,
                     "power_state", COMPUTE_POWER_RUNNING, "vifs", vifs, "volumes",
                     "created_at", now);
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static fy_code build_guest(fake_priv *p, const compute_spawn_spec *spec, fy_err *err)
{
    _cleanup_free_ char *dir = fake_guest_path(p, spec->uuid, NULL);
    _cleanup_free_ char *part = fake_guest_path(p, spec->uuid, "disk.part");
    _cleanup_free_ char *disk = fake_guest_path(p, spec->uuid, "disk");
    if (!dir || !part || !disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    int r = fy_mkdir_p(dir, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "mkdir %s: %s", dir, strerror(-r));
    if (p->spawn_delay_ms > 0)
        sleep_ms(p->spawn_delay_ms);

    off_t size = (off_t)spec->root_gb << 30;
    if (compute_disk_create(part, spec->image_path, size, err))
        return err->code;
    if (rename(part, disk) < 0)
        return fy_fail(err, FY_E_IO, "rename %s: %s", part, strerror(errno));

    json_t *dom = fake_new_domain(spec->uuid, spec->instance_id, spec->flavor, spec->image_id,
                                  spec->root_gb, spec->vifs);
    if (!dom)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_code rc = fake_write_domain(p, spec->uuid, "", dom, err);
    json_decref(dom);
    return rc;
}

static fy_code fake_spawn(compute_driver *drv, const compute_spawn_spec *spec, json_t **ret,
                          fy_err *err)
{
    fake_priv *p = drv->priv;
    if (fake_check_uuid(spec->uuid, err))
        return err->code;
    if (spec->root_gb < 0 || !json_is_object(spec->flavor) || !json_is_array(spec->vifs))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid spawn request for %s", spec->uuid);

    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, spec->uuid);
    json_t *dom = NULL;
    fy_code rc = fake_read_domain(p, spec->uuid, "", &dom, err);
    if (rc == FY_E_OK) {
        /* Already defined: a repeated spawn answers like the first one. */
        rc = fake_make_info(p, spec->uuid, dom, ret, err);
        json_decref(dom);
        return rc;
    }
    if (rc != FY_E_NOT_FOUND)
        return rc;
    if (build_guest(p, spec, err))
        return fy_err_prefix(err, "spawn %s", spec->uuid);
    return fake_get_info(drv, spec->uuid, ret, err);
}

fy_code fake_remove_dir(const char *dir, fy_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return FY_E_OK;
        return fy_fail(err, FY_E_IO, "opendir %s: %s", dir, strerror(errno));
    }
    fy_code rc = FY_E_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
            rc = fy_fail(err, FY_E_IO, "unlink %s/%s: %s", dir, de->d_name, strerror(errno));
            break;
        }
    }
    closedir(d);
    if (rc == FY_E_OK && rmdir(dir) < 0 && errno != ENOENT)
        rc = fy_fail(err, FY_E_IO, "rmdir %s: %s", dir, strerror(errno));
    return rc;
}

static fy_code fake_destroy(compute_driver *drv, const char *uuid, fy_err *err)
{
    fake_priv *p = drv->priv;
    if (fake_check_uuid(uuid, err))
        return err->code;
    _cleanup_free_ char *dir = fake_guest_path(p, uuid, NULL);
    if (!dir)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, uuid);
    /* The definition goes first: from here on the guest no longer exists. */
    if (fake_remove_domain(p, uuid, "", err))
        return err->code;
    return fake_remove_dir(dir, err);
}

static fy_code set_power(compute_driver *drv, const char *uuid, int state, json_t **ret,
                         fy_err *err)
{
    fake_priv *p = drv->priv;
    if (fake_check_uuid(uuid, err))
        return err->code;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, uuid);
    json_t *dom = NULL;
    if (fake_read_domain(p, uuid, "", &dom, err))
        return err->code;
    fy_code rc = FY_E_OK;
    if (json_integer_value(json_object_get(dom, "power_state")) != state) {
        if (json_object_set_new(dom, "power_state", json_integer(state)) < 0)
            rc = fy_fail(err, FY_E_NOMEM, NULL);
        else
            rc = fake_write_domain(p, uuid, "", dom, err);
    }
    if (rc == FY_E_OK)
        rc = fake_make_info(p, uuid, dom, ret, err);
    json_decref(dom);
    return rc;
}

static fy_code fake_power_on(compute_driver *drv, const char *uuid, json_t **ret, fy_err *err)
{
    return set_power(drv, uuid, COMPUTE_POWER_RUNNING, ret, err);
}

static fy_code fake_power_off(compute_driver *drv, const char *uuid, json_t **ret, fy_err *err)
{
    return set_power(drv, uuid, COMPUTE_POWER_SHUTDOWN, ret, err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void name_list_clear(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* "<uuid>.json" names the live definition of a guest; other files there are
 * definitions kept aside during a resize, or temporary files. */
static bool domain_file_uuid(const char *name, char out[FY_UUID_LEN + 1])
{
    if (strlen(name) != FY_UUID_LEN + 5 || strcmp(name + FY_UUID_LEN, ".json") != 0)
        return false;
    memcpy(out, name, FY_UUID_LEN);
    out[FY_UUID_LEN] = '\0';
    return fy_uuid_valid(out);
}

static fy_code name_list_add(name_list *l, const char *name, fy_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return fy_fail(err, FY_E_NOMEM, NULL);
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(name)))
        return fy_fail(err, FY_E_NOMEM, NULL);
    l->n++;
    return FY_E_OK;
}

static fy_code collect_guests(const fake_priv *p, name_list *l, fy_err *err)
{
    DIR *d = opendir(p->domains_path);
    if (!d)
        return fy_fail(err, FY_E_IO, "opendir %s: %s", p->domains_path, strerror(errno));
    fy_code rc = FY_E_OK;
    struct dirent *de;
    char uuid[FY_UUID_LEN + 1];
    while (rc == FY_E_OK && (de = readdir(d)))
        if (domain_file_uuid(de->d_name, uuid))
            rc = name_list_add(l, uuid, err);
    closedir(d);
    if (rc == FY_E_OK && l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), cmp_str);
    return rc;
}

static fy_code fake_list(compute_driver *drv, json_t **ret, fy_err *err)
{
    fake_priv *p = drv->priv;
    name_list names = {0};
    json_t *arr = json_array();
    fy_code rc = arr ? collect_guests(p, &names, err) : fy_fail(err, FY_E_NOMEM, NULL);
    for (size_t i = 0; rc == FY_E_OK && i < names.n; i++) {
        json_t *info = NULL;
        fy_err e2 = {0};
        fy_code r = fake_get_info(drv, names.v[i], &info, &e2);
        if (r == FY_E_NOT_FOUND)
            continue;   /* being spawned or destroyed right now */
        if (r) {
            *err = e2;
            rc = r;
        } else if (json_is_true(json_object_get(info, "incoming"))) {
            json_decref(info);   /* an incoming migration is not a guest of this host yet */
        } else if (json_array_append_new(arr, info) < 0) {
            rc = fy_fail(err, FY_E_NOMEM, NULL);
        }
    }
    name_list_clear(&names);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *ret = arr;
    return FY_E_OK;
}

static void fake_cleanup(compute_driver *drv)
{
    fake_priv *p = drv->priv;
    if (!p)
        return;
    for (int i = 0; i < FAKE_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&p->locks[i]);
    free(p->instances_path);
    free(p->domains_path);
    free(p);
    drv->priv = NULL;
}

/* state_dir defaults to the parent of instances_path. */
static char *domains_dir(const compute_driver_conf *conf)
{
    if (conf->state_dir && *conf->state_dir)
        return fy_strdup_printf("%s/domains", conf->state_dir);
    const char *slash = strrchr(conf->instances_path, '/');
    int n = (int)(slash - conf->instances_path);
    return fy_strdup_printf("%.*s/domains", n, conf->instances_path);
}

static fy_code fake_init(compute_driver *drv, const compute_driver_conf *conf, fy_err *err)
{
    if (!conf->instances_path || conf->instances_path[0] != '/')
        return fy_fail(err, FY_E_CONFIG, "instances_path must be an absolute path");
    fake_priv *p = calloc(1, sizeof(*p));
    if (!p || !(p->instances_path = strdup(conf->instances_path)) ||
        !(p->domains_path = domains_dir(conf))) {
        if (p)
            free(p->instances_path);
        free(p);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    int r = fy_mkdir_p(p->instances_path, 0755);
    if (r >= 0)
        r = fy_mkdir_p(p->domains_path, 0755);
    if (r < 0) {
        fy_fail(err, FY_E_IO, "mkdir %s: %s", p->domains_path, strerror(-r));
        free(p->instances_path);
        free(p->domains_path);
        free(p);
        return err->code;
    }
    p->spawn_delay_ms = conf->spawn_delay_ms;
    for (int i = 0; i < FAKE_LOCK_STRIPES; i++)
        pthread_mutex_init(&p->locks[i], NULL);
    drv->priv = p;
    return FY_E_OK;
}

const compute_driver_ops compute_fake_ops = {
    .name = "fake",
    .init = fake_init,
    .cleanup = fake_cleanup,
    .spawn = fake_spawn,
    .destroy = fake_destroy,
    .power_on = fake_power_on,
    .power_off = fake_power_off,
    .get_info = fake_get_info,
    .list = fake_list,
    COMPUTE_FAKE_MIG_OPS
};

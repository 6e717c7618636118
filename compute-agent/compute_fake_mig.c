/* The fake driver's live migration: real files move between hosts (definition,
 * and the disk unless storage is shared); the RAM copy is a model in time. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_disk.h"
#include "compute_fake_priv.h"
#include "compute_mig.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

#define SHARED_TEST_PREFIX ".ferry-shared-"

/* ---- the RAM-copy model ---- */

static double bytes_per_ms(double bw_mbps)
{
    return bw_mbps * 1e6 / 8.0 / 1000.0;
}

long long fake_lm_copy_ms(long long bytes, double bw_mbps)
{
    return bytes <= 0 ? 0 : (long long)ceil((double)bytes / bytes_per_ms(bw_mbps));
}

void fake_lm_sim(long long total, double bw_mbps, double dirty, long long copy_ms,
                 double wall_ms, long long *processed, long long *remaining)
{
    double b = bytes_per_ms(bw_mbps);
    double pass_ms = (double)total / b;
    double tau = copy_ms > 0 ? wall_ms * pass_ms / (double)copy_ms : INFINITY;
    if (dirty >= 1.0) {
        /* Pages are dirtied as fast as they are sent: nothing ever shrinks. */
        *remaining = total;
        *processed = isinf(tau) ? total : (long long)(b * tau);
        return;
    }
    double needed = (double)total / (1.0 - dirty);   /* bytes sent until nothing is left */
    double sent = isinf(tau) ? needed : fmin(b * tau, needed);
    double rem = (double)total - sent * (1.0 - dirty);
    *processed = (long long)sent;
    *remaining = rem > 0 ? (long long)ceil(rem) : 0;
}

/* ---- checks ---- */

static bool md_block(const compute_mig_spec *s)
{
    if (fy_streq(s->block_migration, "true"))
        return true;
    if (fy_streq(s->block_migration, "false"))
        return false;
    return compute_md_bool(s->migrate_data, "block_migration",
                           !compute_md_bool(s->migrate_data, "is_shared_instance_path", false));
}

static bool md_shared(const compute_mig_spec *s)
{
    return compute_md_bool(s->migrate_data, "is_shared_instance_path", false);
}

static long long flavor_int(const json_t *flavor, const char *key)
{
    return fy_json_int(flavor, key, 0);
}

/* The test file's name as sent back by the peer: one plain name in instances_path. */
static char *test_file_path(const fake_priv *p, const json_t *md)
{
    const char *name = fy_json_str(md, "shared_test_file");
    if (!name || strncmp(name, SHARED_TEST_PREFIX, strlen(SHARED_TEST_PREFIX)) != 0 ||
        strchr(name, '/') || strlen(name) > 80)
        return NULL;
    return fy_strdup_printf("%s/%s", p->instances_path, name);
}

static json_t *block_json(const char *mode)
{
    if (fy_streq(mode, "auto"))
        return json_string("auto");
    return json_boolean(fy_streq(mode, "true"));
}

fy_code fake_check_dest(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                        fy_err *err)
{
    fake_priv *p = drv->priv;
    long long mem = flavor_int(spec->flavor, "memory_mb");
    long long need_mb = flavor_int(spec->flavor, "root_gb") * 1024;
    if (mem > spec->host_memory_mb)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Unable to migrate %s to %s: Lack of memory(host:%lld <= instance:%lld)",
                       spec->uuid, spec->host, spec->host_memory_mb, mem);
    if (fy_streq(spec->block_migration, "true") && need_mb > spec->disk_available_mb)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Unable to migrate %s: Disk of instance is too large(available on "
                       "destination host:%lld < need:%lld)",
                       spec->uuid, spec->disk_available_mb, need_mb);
    char id[FY_UUID_LEN + 1];
    fy_uuid_v4(id);
    _cleanup_free_ char *name = fy_strdup_printf(SHARED_TEST_PREFIX "%s", id);
    _cleanup_free_ char *path = name ? fy_strdup_printf("%s/%s", p->instances_path, name) : NULL;
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fy_fail(err, FY_E_IO, "create %s: %s", path, strerror(errno));
    *ret = json_pack("{s:s, s:s, s:o, s:I}", "shared_test_file", name, "dest_instances_path",
                     p->instances_path, "block_migration", block_json(spec->block_migration),
                     "disk_available_mb", (json_int_t)spec->disk_available_mb);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

fy_code fake_check_source(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                          fy_err *err)
{
    fake_priv *p = drv->priv;
    json_t *dom = NULL;
    if (fake_read_domain(p, spec->uuid, "", &dom, err))
        return err->code == FY_E_NOT_FOUND ? fy_fail(err, FY_E_MIGRATION_PRECHECK,
                                                     "Instance %s is not on host %s",
                                                     spec->uuid, spec->host)
                                           : err->code;
    json_decref(dom);
    _cleanup_free_ char *test = test_file_path(p, spec->migrate_data);
    bool shared = test && access(test, F_OK) == 0;
    /* The agent decided is_volume_backed from block_device_info (Nova's
     * manager); called without that decision the guest's mappings tell. */
    bool volume_backed = compute_md_bool(spec->migrate_data, "is_volume_backed",
                                         !spec->image_id && json_array_size(spec->volumes) > 0);
    /* A volume-backed guest has a local disk only if one was made for it
     * (the flavor's root_gb, or ephemeral / swap space). */
    _cleanup_free_ char *disk = fake_guest_path(p, spec->uuid, "disk");
    struct stat st;
    bool local_disk = !volume_backed || (disk && stat(disk, &st) == 0 && st.st_size > 0) ||
                      flavor_int(spec->flavor, "ephemeral_gb") > 0 ||
                      flavor_int(spec->flavor, "swap_mb") > 0;
    bool block;
    if (fy_streq(spec->block_migration, "true"))
        block = true;
    else if (fy_streq(spec->block_migration, "false"))
        block = false;
    else
        block = !shared && local_disk;
    if (block && shared)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "%s is not on local storage: Block migration can not be used with "
                       "shared storage.", spec->host);
    if (!block && !shared && local_disk)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "%s is not on shared storage: Shared storage live-migration requires "
                       "either shared storage or boot-from-volume with no local disks.",
                       spec->host);
    *ret = json_pack("{s:b, s:b, s:b, s:b}", "is_shared_instance_path", shared,
                     "is_volume_backed", volume_backed, "is_shared_block_storage",
                     volume_backed && !local_disk, "block_migration", block);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

fy_code fake_check_dest_cleanup(compute_driver *drv, const compute_mig_spec *spec, fy_err *err)
{
    _cleanup_free_ char *test = test_file_path(drv->priv, spec->migrate_data);
    if (test && unlink(test) < 0 && errno != ENOENT)
        return fy_fail(err, FY_E_IO, "unlink %s: %s", test, strerror(errno));
    return FY_E_OK;
}

/* ---- destination side ---- */

static json_t *incoming_domain(const compute_mig_spec *spec)
{
    json_t *dom = fake_new_domain(spec->uuid, spec->instance_id, spec->flavor, spec->image_id,
                                  flavor_int(spec->flavor, "root_gb"), spec->vifs);
    if (!dom)
        return NULL;
    json_object_set_new(dom, "power_state", json_integer(COMPUTE_POWER_PAUSED));
    json_object_set_new(dom, "incoming", json_true());
    json_object_set_new(dom, "migration_uuid", json_string(spec->migration_uuid));
    json_object_set(dom, "volumes", (json_t *)spec->volumes);
    return dom;
}

fy_code fake_pre_live_migration(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                                fy_err *err)
{
    fake_priv *p = drv->priv;
    if (!json_is_object(spec->flavor))
        return fy_fail(err, FY_E_BAD_REQUEST, "instance.flavor is needed");
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, spec->uuid);
    json_t *old = NULL;
    fy_code rc = fake_read_domain(p, spec->uuid, "", &old, err);
    bool running_here = rc == FY_E_OK && !json_is_true(json_object_get(old, "incoming"));
    json_decref(old);
    if (rc && rc != FY_E_NOT_FOUND)
        return rc;
    if (running_here)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK, "Instance %s already runs on %s",
                       spec->uuid, spec->host);
    fy_err_clear(err);
    if (md_block(spec) && !md_shared(spec)) {
        _cleanup_free_ char *dir = fake_guest_path(p, spec->uuid, NULL);
        _cleanup_free_ char *disk = fake_guest_path(p, spec->uuid, "disk");
        if (!dir || !disk)
            return fy_fail(err, FY_E_NOMEM, NULL);
        int r = fy_mkdir_p(dir, 0755);
        if (r < 0)
            return fy_fail(err, FY_E_IO, "mkdir %s: %s", dir, strerror(-r));
        if (compute_disk_create_empty(disk, (off_t)flavor_int(spec->flavor, "root_gb") << 30,
                                      err))
            return err->code;
    }
    json_t *dom = incoming_domain(spec);
    if (!dom)
        return fy_fail(err, FY_E_NOMEM, NULL);
    rc = fake_write_domain(p, spec->uuid, "", dom, err);
    json_decref(dom);
    if (rc)
        return rc;
    json_t *vols = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(spec->volumes, i, v)
        json_array_append_new(vols, json_string(fy_json_str(v, "volume_id")));
    *ret = json_pack("{s:b, s:O, s:o}", "pre_live_migration_done", 1, "vifs", spec->vifs,
                     "connected_volumes", vols);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

fy_code fake_post_lm_dest(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                          fy_err *err)
{
    fake_priv *p = drv->priv;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, spec->uuid);
    json_t *dom = NULL;
    if (fake_read_domain(p, spec->uuid, "", &dom, err))
        return err->code;
    fy_code rc = FY_E_OK;
    if (json_is_true(json_object_get(dom, "incoming"))) {
        json_object_del(dom, "incoming");
        json_object_del(dom, "migration_uuid");
        json_object_set_new(dom, "power_state", json_integer(COMPUTE_POWER_RUNNING));
        if (json_array_size(spec->vifs) > 0)
            json_object_set(dom, "vifs", (json_t *)spec->vifs);
        rc = fake_write_domain(p, spec->uuid, "", dom, err);
    }
    if (rc == FY_E_OK)
        rc = fake_make_info(p, spec->uuid, dom, ret, err);
    json_decref(dom);
    return rc;
}

fy_code fake_rollback_lm_dest(compute_driver *drv, const compute_mig_spec *spec, fy_err *err)
{
    fake_priv *p = drv->priv;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, spec->uuid);
    json_t *dom = NULL;
    fy_code rc = fake_read_domain(p, spec->uuid, "", &dom, err);
    if (rc && rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);
    bool incoming = rc == FY_E_NOT_FOUND || json_is_true(json_object_get(dom, "incoming"));
    json_decref(dom);
    if (!incoming)
        return FY_E_OK;   /* the guest lives here: never destroy it */
    if (fake_remove_domain(p, spec->uuid, "", err))
        return err->code;
    if (!spec->destroy_disks || md_shared(spec))
        return FY_E_OK;
    _cleanup_free_ char *dir = fake_guest_path(p, spec->uuid, NULL);
    return dir ? fake_remove_dir(dir, err) : fy_fail(err, FY_E_NOMEM, NULL);
}

/* ---- source side ---- */

fy_code fake_post_lm_source(compute_driver *drv, const compute_mig_spec *spec, fy_err *err)
{
    fake_priv *p = drv->priv;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, spec->uuid);
    if (fake_remove_domain(p, spec->uuid, "", err))
        return err->code;
    if (!spec->destroy_disks || md_shared(spec))
        return FY_E_OK;   /* the shared disk is the destination's now */
    _cleanup_free_ char *dir = fake_guest_path(p, spec->uuid, NULL);
    return dir ? fake_remove_dir(dir, err) : fy_fail(err, FY_E_NOMEM, NULL);
}

/* ---- devices ---- */

static fy_code edit_domain(fake_priv *p, const char *uuid,
                           fy_code (*fn)(json_t *dom, const void *arg, fy_err *err),
                           const void *arg, fy_err *err)
{
    if (fake_check_uuid(uuid, err))
        return err->code;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, uuid);
    json_t *dom = NULL;
    if (fake_read_domain(p, uuid, "", &dom, err))
        return err->code;
    fy_code rc = fn(dom, arg, err);
    if (rc == FY_E_OK)
        rc = fake_write_domain(p, uuid, "", dom, err);
    json_decref(dom);
    return rc;
}

static fy_code set_vifs(json_t *dom, const void *arg, fy_err *err)
{
    json_t *vifs = arg ? json_deep_copy(arg) : json_array();
    if (!vifs || json_object_set_new(dom, "vifs", vifs) < 0)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return FY_E_OK;
}

fy_code fake_plug_vifs(compute_driver *drv, const char *uuid, const json_t *vifs, fy_err *err)
{
    if (!json_is_array(vifs))
        return fy_fail(err, FY_E_BAD_REQUEST, "vifs must be an array");
    return edit_domain(drv->priv, uuid, set_vifs, vifs, err);
}

fy_code fake_unplug_vifs(compute_driver *drv, const char *uuid, fy_err *err)
{
    return edit_domain(drv->priv, uuid, set_vifs, NULL, err);
}

static json_t *volumes_of(json_t *dom)
{
    json_t *vols = json_object_get(dom, "volumes");
    if (!json_is_array(vols)) {
        vols = json_array();
        json_object_set_new(dom, "volumes", vols);
    }
    return vols;
}

static fy_code drop_volume(json_t *dom, const void *arg, fy_err *err)
{
    (void)err;
    json_t *vols = volumes_of(dom);
    for (size_t i = json_array_size(vols); i-- > 0;)
        if (fy_streq(fy_json_str(json_array_get(vols, i), "volume_id"), arg))
            json_array_remove(vols, i);
    return FY_E_OK;
}

static fy_code add_volume(json_t *dom, const void *arg, fy_err *err)
{
    const json_t *bdm = arg;
    drop_volume(dom, fy_json_str(bdm, "volume_id"), err);
    if (json_array_append_new(volumes_of(dom), json_deep_copy(bdm)) < 0)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return FY_E_OK;
}

fy_code fake_attach_volume(compute_driver *drv, const char *uuid, const json_t *bdm,
                           fy_err *err)
{
    if (!fy_uuid_valid(fy_json_str(bdm, "volume_id")))
        return fy_fail(err, FY_E_BAD_REQUEST, "a volume needs a volume_id");
    return edit_domain(drv->priv, uuid, add_volume, bdm, err);
}

fy_code fake_detach_volume(compute_driver *drv, const char *uuid, const char *volume_id,
                           fy_err *err)
{
    fy_code rc = edit_domain(drv->priv, uuid, drop_volume, volume_id, err);
    if (rc == FY_E_NOT_FOUND) {
        fy_err_clear(err);
        return FY_E_OK;
    }
    return rc;
}

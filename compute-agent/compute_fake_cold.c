/* The fake driver's cold migration / resize.
 *
 * The source keeps what a revert needs: its directory renamed to
 * instances_path/<uuid>_resize and its definition to domains/<uuid>.resize.json.
 * The destination gets the disk (pushed, or copied on shared storage) in
 * instances_path/<uuid>/ and a new definition with the new flavor. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_disk.h"
#include "compute_fake_priv.h"
#include "compute_mig.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define RESIZE_SFX "_resize"
#define RESIZE_DOM ".resize"
#define SHARED_TEST_PREFIX ".ferry-shared-"
/* The kept definition's note of the power state the guest had before. */
#define POWER_BEFORE "power_state_before"

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Storage is shared when the caller says so, when this is the same host, or
 * when the destination's test file from prep_resize is visible here. */
static bool storage_shared(const fake_priv *p, const compute_mig_spec *s)
{
    if (s->shared_storage || s->same_host)
        return true;
    const char *name = fy_json_str(s->migrate_data, "shared_test_file");
    if (!name || strncmp(name, SHARED_TEST_PREFIX, strlen(SHARED_TEST_PREFIX)) != 0 ||
        strchr(name, '/'))
        return false;
    _cleanup_free_ char *path = fy_strdup_printf("%s/%s", p->instances_path, name);
    return path && exists(path);
}

static void remove_test_file(const fake_priv *p, const json_t *md)
{
    const char *name = fy_json_str(md, "shared_test_file");
    if (!name || strncmp(name, SHARED_TEST_PREFIX, strlen(SHARED_TEST_PREFIX)) != 0 ||
        strchr(name, '/'))
        return;
    _cleanup_free_ char *path = fy_strdup_printf("%s/%s", p->instances_path, name);
    if (path)
        unlink(path);
}

/* Sets the aside copy: the directory renamed and the definition moved. */
static fy_code set_aside(fake_priv *p, const char *uuid, fy_err *err)
{
    _cleanup_free_ char *dir = fake_guest_path(p, uuid, NULL);
    _cleanup_free_ char *kept = fake_guest_path_sfx(p, uuid, RESIZE_SFX, NULL);
    if (!dir || !kept)
        return fy_fail(err, FY_E_NOMEM, NULL);
    json_t *dom = NULL;
    fy_code rc = fake_read_domain(p, uuid, "", &dom, err);
    if (rc == FY_E_NOT_FOUND) {
        json_t *aside = NULL;
        fy_err e2 = {0};
        if (fake_read_domain(p, uuid, RESIZE_DOM, &aside, &e2) == FY_E_OK) {
            json_decref(aside);   /* set aside by an earlier attempt */
            fy_err_clear(err);
            return FY_E_OK;
        }
        return rc;
    }
    if (rc)
        return rc;
    json_object_set(dom, POWER_BEFORE, json_object_get(dom, "power_state"));
    json_object_set_new(dom, "power_state", json_integer(COMPUTE_POWER_SHUTDOWN));
    rc = fake_write_domain(p, uuid, RESIZE_DOM, dom, err);
    json_decref(dom);
    if (rc)
        return rc;
    if (!exists(kept) && rename(dir, kept) < 0 && errno != ENOENT)
        return fy_fail(err, FY_E_IO, "rename %s: %s", dir, strerror(errno));
    return fake_remove_domain(p, uuid, "", err);
}

/* Undoes set_aside after a failed copy: the guest is back as it was. */
static void undo_aside(fake_priv *p, const char *uuid, int power_state)
{
    fy_err e = {0};
    _cleanup_free_ char *dir = fake_guest_path(p, uuid, NULL);
    _cleanup_free_ char *kept = fake_guest_path_sfx(p, uuid, RESIZE_SFX, NULL);
    json_t *dom = NULL;
    if (!dir || !kept || fake_read_domain(p, uuid, RESIZE_DOM, &dom, &e))
        return;
    if (exists(kept)) {
        fake_remove_dir(dir, &e);
        if (rename(kept, dir) < 0)
            fy_warn("cannot restore %s: %s", dir, strerror(errno));
    }
    json_object_del(dom, POWER_BEFORE);
    json_object_set_new(dom, "power_state", json_integer(power_state));
    if (fake_write_domain(p, uuid, "", dom, &e) == FY_E_OK)
        fake_remove_domain(p, uuid, RESIZE_DOM, &e);
    json_decref(dom);
}

/* Shared storage: the destination's disk is a copy next to the kept one. */
static fy_code copy_local(fake_priv *p, const char *uuid, fy_err *err)
{
    _cleanup_free_ char *dir = fake_guest_path(p, uuid, NULL);
    _cleanup_free_ char *src = fake_guest_path_sfx(p, uuid, RESIZE_SFX, "disk");
    _cleanup_free_ char *part = fake_guest_path(p, uuid, "disk.part");
    _cleanup_free_ char *disk = fake_guest_path(p, uuid, "disk");
    if (!dir || !src || !part || !disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    int r = fy_mkdir_p(dir, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "mkdir %s: %s", dir, strerror(-r));
    if (compute_disk_create(part, src, 0, err))
        return err->code;
    if (rename(part, disk) < 0)
        return fy_fail(err, FY_E_IO, "rename %s: %s", disk, strerror(errno));
    return FY_E_OK;
}

static fy_code push(fake_priv *p, const compute_mig_spec *s, char sha[65], fy_err *err)
{
    _cleanup_free_ char *src = fake_guest_path_sfx(p, s->uuid, RESIZE_SFX, "disk");
    if (!src)
        return fy_fail(err, FY_E_NOMEM, NULL);
    compute_xfer x = {
        .dest_url = s->peer_url, .service_secret = s->service_secret,
        .migration_uuid = s->migration_uuid, .instance_uuid = s->uuid, .path = src,
        .host = s->host,
    };
    return compute_transfer_push(&x, sha, err);
}

static fy_code check_not_down(const json_t *dom, const compute_mig_spec *s, fy_err *err)
{
    long long old_gb = fy_json_int(json_object_get(dom, "flavor"), "root_gb", 0);
    long long new_gb = fy_json_int(s->flavor, "root_gb", old_gb);
    if (new_gb < old_gb)
        return fy_fail(err, FY_E_BAD_REQUEST, "Unable to resize disk down.");
    return FY_E_OK;
}

fy_code fake_migrate_disk(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                          fy_err *err)
{
    fake_priv *p = drv->priv;
    if (fake_check_uuid(s->uuid, err))
        return err->code;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, s->uuid);
    json_t *dom = NULL;
    int power = COMPUTE_POWER_RUNNING;
    if (fake_read_domain(p, s->uuid, "", &dom, err) == FY_E_OK) {
        power = (int)json_integer_value(json_object_get(dom, "power_state"));
        fy_code rc = check_not_down(dom, s, err);
        json_decref(dom);
        if (rc)
            return rc;
    } else if (err->code != FY_E_NOT_FOUND) {
        return err->code;
    } else {
        /* Set aside by an earlier run of this step whose answer was lost: the
         * power state from before the move was kept with it. */
        json_t *aside = NULL;
        fy_err e2 = {0};
        if (fake_read_domain(p, s->uuid, RESIZE_DOM, &aside, &e2) == FY_E_OK)
            power = (int)fy_json_int(aside, POWER_BEFORE, COMPUTE_POWER_SHUTDOWN);
        json_decref(aside);
        fy_err_clear(err);
    }
    bool shared = storage_shared(p, s);
    if (set_aside(p, s->uuid, err))
        return err->code;
    char sha[65] = "";
    fy_code rc = shared ? copy_local(p, s->uuid, err) : push(p, s, sha, err);
    if (rc) {
        undo_aside(p, s->uuid, power);
        return rc;
    }
    remove_test_file(p, s->migrate_data);
    _cleanup_free_ char *kept = fake_guest_path_sfx(p, s->uuid, RESIZE_SFX, "disk");
    struct stat st;
    long long size = kept && stat(kept, &st) == 0 ? (long long)st.st_size : 0;
    *ret = json_pack("{s:I, s:b, s:s, s:i}", "disk_size", (json_int_t)size, "shared_storage",
                     shared, "sha256", sha, "power_state", power);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

fy_code fake_finish_migration(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                              fy_err *err)
{
    fake_priv *p = drv->priv;
    if (fake_check_uuid(s->uuid, err))
        return err->code;
    if (!json_is_object(s->flavor))
        return fy_fail(err, FY_E_BAD_REQUEST, "flavor is needed");
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, s->uuid);
    _cleanup_free_ char *disk = fake_guest_path(p, s->uuid, "disk");
    if (!disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    struct stat st;
    if (stat(disk, &st) < 0)
        return fy_fail(err, FY_E_DRIVER, "the disk of %s did not arrive on %s", s->uuid, s->host);
    long long root_gb = fy_json_int(s->flavor, "root_gb", 0);
    if ((long long)st.st_size < (root_gb << 30) && truncate(disk, (off_t)root_gb << 30) < 0)
        return fy_fail(err, FY_E_IO, "resize %s: %s", disk, strerror(errno));
    json_t *dom = fake_new_domain(s->uuid, s->instance_id, s->flavor, s->image_id, root_gb,
                                  s->vifs);
    if (!dom)
        return fy_fail(err, FY_E_NOMEM, NULL);
    json_object_set(dom, "volumes", (json_t *)s->volumes);
    json_object_set_new(dom, "power_state", json_integer(s->power_on ? COMPUTE_POWER_RUNNING
                                                                     : COMPUTE_POWER_SHUTDOWN));
    fy_code rc = fake_write_domain(p, s->uuid, "", dom, err);
    if (rc == FY_E_OK)
        rc = fake_make_info(p, s->uuid, dom, ret, err);
    json_decref(dom);
    remove_test_file(p, s->migrate_data);
    return rc;
}

fy_code fake_confirm_migration(compute_driver *drv, const compute_mig_spec *s, fy_err *err)
{
    fake_priv *p = drv->priv;
    if (fake_check_uuid(s->uuid, err))
        return err->code;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, s->uuid);
    _cleanup_free_ char *kept = fake_guest_path_sfx(p, s->uuid, RESIZE_SFX, NULL);
    if (!kept)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (fake_remove_domain(p, s->uuid, RESIZE_DOM, err))
        return err->code;
    return fake_remove_dir(kept, err);
}

fy_code fake_revert_dest(compute_driver *drv, const compute_mig_spec *s, fy_err *err)
{
    fake_priv *p = drv->priv;
    if (fake_check_uuid(s->uuid, err))
        return err->code;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, s->uuid);
    _cleanup_free_ char *dir = fake_guest_path(p, s->uuid, NULL);
    _cleanup_free_ char *kept = fake_guest_path_sfx(p, s->uuid, RESIZE_SFX, NULL);
    if (!dir || !kept)
        return fy_fail(err, FY_E_NOMEM, NULL);
    remove_test_file(p, s->migrate_data);
    if (fake_remove_domain(p, s->uuid, "", err))
        return err->code;
    /* On a shared path the source restores its kept directory afterwards; if it
     * already has (a repeated call), the directory is the guest's again. */
    if (!exists(kept) && (s->same_host || s->shared_storage))
        return FY_E_OK;
    return fake_remove_dir(dir, err);
}

fy_code fake_finish_revert(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                           fy_err *err)
{
    fake_priv *p = drv->priv;
    if (fake_check_uuid(s->uuid, err))
        return err->code;
    _cleanup_fake_unlock_ pthread_mutex_t *lock = fake_lock_guest(p, s->uuid);
    _cleanup_free_ char *dir = fake_guest_path(p, s->uuid, NULL);
    _cleanup_free_ char *kept = fake_guest_path_sfx(p, s->uuid, RESIZE_SFX, NULL);
    if (!dir || !kept)
        return fy_fail(err, FY_E_NOMEM, NULL);
    json_t *dom = NULL;
    if (fake_read_domain(p, s->uuid, RESIZE_DOM, &dom, err) &&
        (err->code != FY_E_NOT_FOUND || fake_read_domain(p, s->uuid, "", &dom, err)))
        return err->code;
    fy_code rc = FY_E_OK;
    if (exists(kept)) {
        if ((rc = fake_remove_dir(dir, err)) == FY_E_OK && rename(kept, dir) < 0)
            rc = fy_fail(err, FY_E_IO, "rename %s: %s", kept, strerror(errno));
    }
    /* The kept definition carries the old flavor. */
    json_object_del(dom, POWER_BEFORE);
    json_object_set_new(dom, "power_state", json_integer(s->power_on ? COMPUTE_POWER_RUNNING
                                                                     : COMPUTE_POWER_SHUTDOWN));
    if (rc == FY_E_OK)
        rc = fake_write_domain(p, s->uuid, "", dom, err);
    if (rc == FY_E_OK)
        rc = fake_remove_domain(p, s->uuid, RESIZE_DOM, err);
    if (rc == FY_E_OK)
        rc = fake_make_info(p, s->uuid, dom, ret, err);
    json_decref(dom);
    return rc;
}

/* Live-migration steps (docs/migrations.md, "Live migration"). */
#include <string.h>
#include "compute_mig.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

static fy_code answer_md(json_t *md /* stolen */, json_t **ret, fy_err *err)
{
    *ret = md ? json_pack("{s:o}", "migrate_data", md) : NULL;
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code answer_info(json_t *info /* stolen */, json_t **ret, fy_err *err)
{
    *ret = info ? json_pack("{s:o}", "instance", info) : NULL;
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code check_dest(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    json_t *md = NULL;
    if (!json_is_object(m->spec.flavor))
        return fy_fail(err, FY_E_BAD_REQUEST, "instance.flavor is needed");
    if (d->ops->check_can_live_migrate_destination(d, &m->spec, &md, err))
        return err->code;
    return answer_md(md, ret, err);
}

/* Nova's is_volume_backed_instance: the root disk is a volume when a mapping of
 * block_device_info is the root device (boot_index 0, or /dev/vda when the
 * index is not given).  An instance without an image is not volume-backed by
 * that alone: Ferry also boots image-less servers on a blank local disk. */
static bool volume_backed(const json_t *bdi)
{
    size_t i;
    const json_t *b;
    json_array_foreach(bdi, i, b) {
        const json_t *bi = json_object_get(b, "boot_index");
        if (json_is_integer(bi) ? json_integer_value(bi) == 0
                                : fy_streq(fy_json_str(b, "device"), "/dev/vda"))
            return true;
    }
    return false;
}

/* The manager decides is_volume_backed from the block device info and hands
 * it to the driver's check in migrate_data (Nova's dest_check_data), which
 * the answer carries as decided. */
static fy_code check_source(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    bool vb = volume_backed(m->spec.volumes);
    json_t *in = json_deep_copy(m->spec.migrate_data);
    if (!in || json_object_set_new(in, "is_volume_backed", json_boolean(vb)) != 0) {
        json_decref(in);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    compute_mig_spec spec = m->spec;
    spec.migrate_data = in;
    json_t *md = NULL;
    fy_code rc = d->ops->check_can_live_migrate_source(d, &spec, &md, err);
    json_decref(in);
    if (rc)
        return rc;
    if (json_object_set_new(md, "is_volume_backed", json_boolean(vb)) != 0) {
        json_decref(md);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    return answer_md(md, ret, err);
}

static fy_code check_cleanup(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    if (d->ops->check_can_live_migrate_destination_cleanup(d, &m->spec, err))
        return err->code;
    *ret = json_object();
    return FY_E_OK;
}

static fy_code pre_live_migration(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    json_t *md = NULL;
    if (d->ops->pre_live_migration(d, &m->spec, &md, err))
        return err->code;
    return answer_md(md, ret, err);
}

static fy_code live_migration(compute_mig_req *m, json_t **ret, fy_err *err)
{
    if (compute_live_job_start(m->ctx, &m->spec, err))
        return err->code;
    *ret = json_pack("{s:s}", "job", "live_migration");
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code post_source(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    if (d->ops->post_live_migration_source(d, &m->spec, err))
        return err->code;
    *ret = json_object();
    return FY_E_OK;
}

static fy_code post_dest(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    json_t *info = NULL;
    if (d->ops->post_live_migration_at_destination(d, &m->spec, &info, err))
        return err->code;
    return answer_info(info, ret, err);
}

/* Whether the guest runs here as a guest of this host (not one still arriving). */
static bool lives_here(compute_driver *d, const char *uuid)
{
    json_t *info = NULL;
    fy_err e = {0};
    if (d->ops->get_info(d, uuid, &info, &e))
        return false;
    int power = (int)fy_json_int(info, "power_state", COMPUTE_POWER_NOSTATE);
    bool lives = !json_is_true(json_object_get(info, "incoming")) &&
                 (power == COMPUTE_POWER_RUNNING || power == COMPUTE_POWER_PAUSED);
    json_decref(info);
    return lives;
}

/* The driver removes a guest still arriving (after which the move cannot
 * complete any more) and never one that lives here.  A guest that lives here
 * means the move completed: that is answered as a conflict, so that the
 * caller does not take the rollback for done (and it is not recorded). */
static fy_code rollback_dest(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    if (d->ops->rollback_live_migration_at_destination(d, &m->spec, err))
        return err->code;
    if (lives_here(d, m->spec.uuid))
        return fy_fail(err, FY_E_CONFLICT,
                       "Instance %s runs on %s: its live migration completed there",
                       m->spec.uuid, m->spec.host ? m->spec.host : "the destination");
    *ret = json_object();
    return FY_E_OK;
}

typedef struct live_step {
    const char *name;
    compute_mig_fn fn;
    int status;
} live_step;

static const live_step live_steps[] = {
    {"check_can_live_migrate_destination", check_dest, 200},
    {"check_can_live_migrate_source", check_source, 200},
    {"check_can_live_migrate_destination_cleanup", check_cleanup, 200},
    {"pre_live_migration", pre_live_migration, 200},
    {"live_migration", live_migration, 202},
    {"post_live_migration_source", post_source, 200},
    {"post_live_migration_at_destination", post_dest, 200},
    {"rollback_live_migration_at_destination", rollback_dest, 200},
};

/* Abort and force-complete act on the job as it is now: not run-once. */
static fy_code job_request(fy_req *req, fy_resp *resp, bool abort_it, fy_err *err)
{
    const char *mig = req->params[0];
    if (req->json && !json_is_object(req->json))
        return fy_fail(err, FY_E_BAD_REQUEST, "The request body must be a JSON object");
    const char *state = NULL;
    fy_code rc = abort_it ? compute_live_job_abort(mig, &state, err)
                          : compute_live_job_force_complete(mig, &state, err);
    if (rc)
        return rc;
    fy_info("migration %s: %s requested (job %s)", mig, abort_it ? "abort" : "force-complete",
            state);
    json_t *body = json_pack("{s:s}", "job_state", state);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

/* Detaches each volume of block_device_info (or "volume_id") from the guest
 * here; a step per volume, so each is recorded on its own. */
static fy_code remove_one(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    const char *vol = fy_json_str(m->body, "volume_id");
    size_t i;
    json_t *b;
    if (vol && d->ops->detach_volume(d, m->spec.uuid, vol, err))
        return err->code;
    json_array_foreach(m->spec.volumes, i, b)
        if (d->ops->detach_volume(d, m->spec.uuid, fy_json_str(b, "volume_id"), err))
            return err->code;
    *ret = json_object();
    return FY_E_OK;
}

static fy_code remove_volume_connection(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *vol = json_is_object(req->json) ? fy_json_str(req->json, "volume_id") : NULL;
    if (vol && !fy_uuid_valid(vol))
        return fy_fail(err, FY_E_BAD_REQUEST, "volume_id must be a uuid");
    char step[96];
    snprintf(step, sizeof(step), "remove_volume_connection%s%s", vol ? "-" : "",
             vol ? vol : "");
    return compute_mig_run(req, resp, step, remove_one, 200, err);
}

fy_code compute_live_handle_step(fy_req *req, fy_resp *resp, bool *handled, fy_err *err)
{
    const char *step = req->params[1];
    *handled = true;
    for (size_t i = 0; i < sizeof(live_steps) / sizeof(live_steps[0]); i++)
        if (!strcmp(step, live_steps[i].name))
            return compute_mig_run(req, resp, step, live_steps[i].fn, live_steps[i].status, err);
    if (!strcmp(step, "live_migration_abort") || !strcmp(step, "live_migration_force_complete"))
        return job_request(req, resp, !strcmp(step, "live_migration_abort"), err);
    if (!strcmp(step, "remove_volume_connection"))
        return remove_volume_connection(req, resp, err);
    *handled = false;
    return FY_E_OK;
}

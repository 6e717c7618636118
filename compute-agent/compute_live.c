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

static fy_code check_source(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    json_t *md = NULL;
    if (d->ops->check_can_live_migrate_source(d, &m->spec, &md, err))
        return err->code;
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

static fy_code rollback_dest(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    if (d->ops->rollback_live_migration_at_destination(d, &m->spec, err))
        return err->code;
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

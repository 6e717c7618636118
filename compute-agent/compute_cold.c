/* Cold-migration / resize steps (docs/migrations.md, "Cold migration / resize"),
 * and the dispatch of every migration step. */
#include <string.h>
#include "compute_mig.h"
#include "fy_json.h"
#include "fy_util.h"

static fy_code answer(const char *key, json_t *v /* stolen */, json_t **ret, fy_err *err)
{
    *ret = v ? json_pack("{s:o}", key, v) : NULL;
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static bool moving_to_self(const compute_mig_req *m)
{
    const char *src = m->source_compute;
    if (!src)
        src = fy_json_str(json_object_get(m->body, "instance"), "host");
    return src && fy_streq(src, m->ctx->cfg->host);
}

/* Destination: the same-host rule and the resources, then the shared-storage
 * test file that migrate_disk_and_power_off looks for on the source. */
static fy_code prep_resize(compute_mig_req *m, json_t **ret, fy_err *err)
{
    const compute_mig_spec *s = &m->spec;
    if (!json_is_object(s->flavor))
        return fy_fail(err, FY_E_BAD_REQUEST, "flavor is needed");
    bool same = moving_to_self(m);
    if (same && !fy_json_bool(m->body, "allow_same_host", false))
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Unable to migrate instance (%s) to current host (%s).", s->uuid,
                       s->host);
    long long mem = fy_json_int(s->flavor, "memory_mb", 0);
    long long disk_mb = fy_json_int(s->flavor, "root_gb", 0) * 1024;
    if (mem > s->host_memory_mb)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Insufficient compute resources: Free memory %lld MB < requested %lld MB.",
                       s->host_memory_mb, mem);
    if (!same && disk_mb > s->disk_available_mb)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Insufficient compute resources: Free disk %lld MB < requested %lld MB.",
                       s->disk_available_mb, disk_mb);
    compute_driver *d = m->ctx->driver;
    json_t *md = NULL;
    if (d->ops->check_can_live_migrate_destination(d, s, &md, err))
        return err->code;
    json_object_del(md, "block_migration");
    json_object_set_new(md, "same_host", json_boolean(same));
    return answer("migrate_data", md, ret, err);
}

static fy_code migrate_disk(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    json_t *info = NULL;
    if (!m->spec.same_host && !m->spec.peer_url && !m->spec.shared_storage)
        return fy_fail(err, FY_E_BAD_REQUEST, "dest_url is needed to move the disk");
    if (d->ops->migrate_disk_and_power_off(d, &m->spec, &info, err))
        return err->code;
    return answer("disk_info", info, ret, err);
}

static fy_code finish_migration(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    json_t *info = NULL;
    if (d->ops->finish_migration(d, &m->spec, &info, err))
        return err->code;
    return answer("instance", info, ret, err);
}

static fy_code confirm(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    if (d->ops->confirm_migration(d, &m->spec, err))
        return err->code;
    *ret = json_object();
    return FY_E_OK;
}

static fy_code revert_dest(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    if (d->ops->revert_migration_dest(d, &m->spec, err))
        return err->code;
    *ret = json_object();
    return FY_E_OK;
}

static fy_code finish_revert(compute_mig_req *m, json_t **ret, fy_err *err)
{
    compute_driver *d = m->ctx->driver;
    json_t *info = NULL;
    if (d->ops->finish_revert_migration(d, &m->spec, &info, err))
        return err->code;
    return answer("instance", info, ret, err);
}

typedef struct cold_step {
    const char *name;
    compute_mig_fn fn;
} cold_step;

static const cold_step cold_steps[] = {
    {"prep_resize", prep_resize},
    {"migrate_disk_and_power_off", migrate_disk},
    {"finish_migration", finish_migration},
    {"confirm_migration", confirm},
    {"revert_migration_dest", revert_dest},
    {"finish_revert_migration", finish_revert},
};

fy_code compute_cold_handle_step(fy_req *req, fy_resp *resp, bool *handled, fy_err *err)
{
    const char *step = req->params[1];
    for (size_t i = 0; i < sizeof(cold_steps) / sizeof(cold_steps[0]); i++)
        if (!strcmp(step, cold_steps[i].name)) {
            *handled = true;
            return compute_mig_run(req, resp, step, cold_steps[i].fn, 200, err);
        }
    *handled = false;
    return FY_E_OK;
}

fy_code compute_mig_handle_step(fy_req *req, fy_resp *resp, fy_err *err)
{
    bool handled = false;
    if (req->nparams < 2 || !fy_uuid_valid(req->params[0]))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid migration uuid in the path");
    fy_code rc = compute_live_handle_step(req, resp, &handled, err);
    if (!handled)
        rc = compute_cold_handle_step(req, resp, &handled, err);
    if (!handled)
        return fy_fail(err, FY_E_NOT_FOUND, "Unknown migration step '%s'", req->params[1]);
    return rc;
}

/* Migration step requests: the body of docs/migrations.md -> compute_mig_spec,
 * and the run-once wrapper every step goes through. */
#include <string.h>
#include <sys/statvfs.h>
#include "compute_fault.h"
#include "compute_mig.h"
#include "compute_steps.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define MIG_MAX_VIFS 64
#define MIG_MAX_VOLUMES 64

bool compute_md_bool(const json_t *md, const char *key, bool def)
{
    json_t *v = json_object_get(md, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* network_info -> the guest's VIFs [{"port_id", "mac_address"}]. */
static fy_code parse_vifs(const json_t *ni, json_t **ret, fy_err *err)
{
    if (ni && !json_is_array(ni))
        return fy_fail(err, FY_E_BAD_REQUEST, "network_info must be an array");
    if (json_array_size(ni) > MIG_MAX_VIFS)
        return fy_fail(err, FY_E_BAD_REQUEST, "Too many ports in network_info");
    json_t *vifs = json_array();
    if (!vifs)
        return fy_fail(err, FY_E_NOMEM, NULL);
    size_t i;
    json_t *p;
    json_array_foreach(ni, i, p) {
        const char *port = fy_json_str(p, "port_id");
        const char *mac = fy_json_str(p, "mac_address");
        if (!fy_uuid_valid(port) || !mac || !*mac || strlen(mac) > 32) {
            json_decref(vifs);
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "network_info.%zu needs a port_id (uuid) and a mac_address", i);
        }
        json_array_append_new(vifs, json_pack("{s:s, s:s}", "port_id", port, "mac_address", mac));
    }
    *ret = vifs;
    return FY_E_OK;
}

static fy_code check_volumes(const json_t *bdi, fy_err *err)
{
    if (!json_is_array(bdi) || json_array_size(bdi) > MIG_MAX_VOLUMES)
        return fy_fail(err, FY_E_BAD_REQUEST, "block_device_info must be an array");
    size_t i;
    json_t *b;
    json_array_foreach(bdi, i, b)
        if (!json_is_object(b) || !fy_uuid_valid(fy_json_str(b, "volume_id")))
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "block_device_info.%zu needs a volume_id (uuid)", i);
    return FY_E_OK;
}

/* "true" / "false" / "auto" from a JSON bool or string; NULL when absent. */
static fy_code block_mode(const json_t *v, const char **ret, fy_err *err)
{
    if (!v || json_is_null(v))
        return FY_E_OK;
    if (json_is_boolean(v))
        *ret = json_is_true(v) ? "true" : "false";
    else if (json_is_string(v) && fy_streq(json_string_value(v), "auto"))
        *ret = "auto";
    else
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "block_migration must be true, false or \"auto\"");
    return FY_E_OK;
}

static fy_code parse_instance(const json_t *inst, compute_mig_spec *s, fy_err *err)
{
    if (!json_is_object(inst))
        return fy_fail(err, FY_E_BAD_REQUEST, "Missing required field: instance");
    s->uuid = fy_json_str(inst, "uuid");
    if (!fy_uuid_valid(s->uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "instance.uuid must be a uuid");
    s->instance_id = fy_json_int(inst, "id", 0);
    const char *image = fy_json_str(inst, "image_ref");
    s->image_id = image && *image ? image : NULL;
    return FY_E_OK;
}

static fy_code parse_migration(const json_t *body, const char *uuid, compute_mig_req *m,
                               fy_err *err)
{
    const json_t *mig = json_object_get(body, "migration");
    if (mig && !json_is_object(mig))
        return fy_fail(err, FY_E_BAD_REQUEST, "migration must be an object");
    const char *muuid = fy_json_str(mig, "uuid");
    if (muuid && !fy_streq(muuid, uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "migration.uuid %s does not match the path (%s)",
                       muuid, uuid);
    const char *iuuid = fy_json_str(mig, "instance_uuid");
    if (iuuid && !fy_streq(iuuid, m->spec.uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "migration.instance_uuid does not match instance");
    m->source_compute = fy_json_str(mig, "source_compute");
    if (!m->source_compute)
        m->source_compute = fy_json_str(body, "source_host");
    m->dest_compute = fy_json_str(mig, "dest_compute");
    if (!m->dest_compute)
        m->dest_compute = fy_json_str(body, "dest_host");
    return FY_E_OK;
}

static long long free_mb(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return 0;
    return (long long)((unsigned long long)sv.f_bavail * sv.f_frsize >> 20);
}

/* The agent this step sends data to: the destination from the source, and
 * the other way round. */
static const char *peer_url(const json_t *body, const char *host, const char *dest)
{
    if (dest && fy_streq(host, dest))
        return fy_json_str(body, "source_url");
    return fy_json_str(body, "dest_url");
}

fy_code compute_mig_req_parse(fy_req *req, compute_mig_req *m, fy_err *err)
{
    const char *uuid = req->nparams > 0 ? req->params[0] : NULL;
    memset(m, 0, sizeof(*m));
    m->ctx = req->svc;
    m->body = req->json;
    compute_mig_spec *s = &m->spec;
    if (!fy_uuid_valid(uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid migration uuid '%s' in the path",
                       uuid ? uuid : "");
    s->migration_uuid = uuid;
    if (!json_is_object(req->json))
        return fy_fail(err, FY_E_BAD_REQUEST, "The request body must be a JSON object");
    const json_t *body = req->json;
    const json_t *inst = json_object_get(body, "instance");
    if (parse_instance(inst, s, err) || parse_migration(body, uuid, m, err))
        return err->code;

    const json_t *flavor = json_object_get(body, "flavor");
    s->flavor = json_is_object(flavor) ? flavor : json_object_get(inst, "flavor");
    if (s->flavor && !json_is_object(s->flavor))
        return fy_fail(err, FY_E_BAD_REQUEST, "instance.flavor must be an object");

    const json_t *md = json_object_get(body, "migrate_data");
    if (md && !json_is_null(md) && !json_is_object(md))
        return fy_fail(err, FY_E_BAD_REQUEST, "migrate_data must be an object");
    if (!json_is_object(md))
        md = m->owned_md = json_object();
    s->migrate_data = md;

    const json_t *bdi = json_object_get(body, "block_device_info");
    if (!bdi || json_is_null(bdi))
        bdi = m->owned_volumes = json_array();
    if (check_volumes(bdi, err) || parse_vifs(json_object_get(body, "network_info"),
                                              &m->owned_vifs, err))
        return err->code;
    s->volumes = bdi;
    s->vifs = m->owned_vifs;

    if (block_mode(json_object_get(body, "block_migration"), &s->block_migration, err) ||
        (!s->block_migration &&
         block_mode(json_object_get(md, "block_migration"), &s->block_migration, err)))
        return err->code;

    const compute_config *cfg = m->ctx->cfg;
    s->shared_storage = fy_json_bool(body, "shared_storage", false);
    s->destroy_disks = fy_json_bool(body, "destroy_disks",
                                    !compute_md_bool(md, "is_shared_instance_path", false));
    s->power_on = fy_json_bool(body, "power_on", true);
    s->same_host = m->source_compute && m->dest_compute &&
                   fy_streq(m->source_compute, m->dest_compute);
    s->host = cfg->host;
    s->peer_url = peer_url(body, cfg->host, m->dest_compute);
    s->service_secret = cfg->service_secret;
    s->host_memory_mb = cfg->memory_mb;
    s->disk_available_mb = free_mb(cfg->instances_path);
    return FY_E_OK;
}

void compute_mig_req_clear(compute_mig_req *m)
{
    json_decref(m->owned_vifs);
    json_decref(m->owned_md);
    json_decref(m->owned_volumes);
    m->owned_vifs = m->owned_md = m->owned_volumes = NULL;
}

typedef struct run_arg {
    compute_mig_req *m;
    const char *step;
    compute_mig_fn fn;
} run_arg;

static fy_code run_once(void *arg, json_t **ret, fy_err *err)
{
    run_arg *a = arg;
    if (compute_fault_check(a->step, err))
        return err->code;
    return a->fn(a->m, ret, err);
}

fy_code compute_mig_run(fy_req *req, fy_resp *resp, const char *step, compute_mig_fn fn,
                        int status, fy_err *err)
{
    compute_mig_req m;
    fy_code rc = compute_mig_req_parse(req, &m, err);
    if (rc == FY_E_OK) {
        fy_log_set_migration_id(m.spec.migration_uuid);
        run_arg a = {&m, step, fn};
        json_t *answer = NULL;
        rc = compute_step_run(m.ctx->cfg->host, m.spec.migration_uuid, step, run_once, &a,
                              &answer, err);
        if (rc == FY_E_OK) {
            fy_info("migration %s: %s done for instance %s", m.spec.migration_uuid, step,
                    m.spec.uuid);
            fy_resp_json(resp, status, answer);
        } else {
            fy_warn("migration %s: %s failed: %s", m.spec.migration_uuid, step, err->msg);
        }
        fy_log_set_migration_id(NULL);
    }
    compute_mig_req_clear(&m);
    return rc;
}

/* A minimal Cinder v3 (volumes as sparse files under volumes_dir, which stands
 * for storage every compute host reaches) and Nova's os-volume_attachments. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "api.h"
#include "api_netvol.h"
#include "api_servers.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

#define POLICY "rule:admin_or_owner"
#define MAX_SIZE_GB API_VOLUME_MAX_GB
#define GIB (1024LL * 1024 * 1024)

static const char IN_USE_MSG[] =
    "Invalid volume: Volume status must be available or error or error_restoring or "
    "error_extending or error_managing and must not be migrating, attached, belong to a group, "
    "have snapshots or be disassociated from snapshots after volume transfer.";

/* The project in the URL must be the caller's own (admins may name any). */
static fy_code check_project(const fy_req *req, fy_err *err)
{
    const char *pid = req->params[0];
    if (!fy_uuid_valid(pid) || !api_policy_allows(req, POLICY, pid))
        return fy_fail(err, FY_E_FORBIDDEN, "Policy doesn't allow volume access in project "
                       "%.64s.", pid);
    return FY_E_OK;
}

/* ---- view ---- */

static json_t *volume_json(const fy_req *req, PGresult *res, int i)
{
    const char *id = fy_db_str(res, i, "id"), *att = fy_db_str(res, i, "attachments");
    const char *project = fy_db_str(res, i, "project_id");
    char self[512];
    snprintf(self, sizeof self, "%s/volume/v3/%s/volumes/%s", api_cfg(req)->public_url,
             project ? project : req->params[0], id);
    json_t *atts = att ? json_loads(att, 0, NULL) : NULL;
    json_t *v = json_pack(
        "{s:s,s:s,s:I,s:s,s:o,s:s,s:s,s:s,s:b,s:b,s:n,s:n,s:n,s:{},s:s,s:n,s:[{s:s,s:s}]}",
        "id", id, "name", fy_db_str(res, i, "name"), "size",
        (json_int_t)fy_db_ll(res, i, "size_gb", 0), "status", fy_db_str(res, i, "status"),
        "attachments", atts ? atts : json_array(), "availability_zone", "nova", "bootable",
        "false", "volume_type", "__DEFAULT__", "multiattach", 0, "encrypted", 0, "description",
        "snapshot_id", "source_volid", "metadata", "created_at",
        fy_db_str(res, i, "created_at"), "updated_at", "links", "rel", "self", "href", self);
    if (v && req->auth.is_admin)
        json_object_set_new(v, "os-vol-tenant-attr:tenant_id",
                            project ? json_string(project) : json_null());
    return v;
}

static json_t *volume_brief(const fy_req *req, PGresult *res, int i)
{
    json_t *full = volume_json(req, res, i);
    json_t *brief = full ? json_pack("{s:O,s:O,s:O}", "id", json_object_get(full, "id"), "name",
                                     json_object_get(full, "name"), "links",
                                     json_object_get(full, "links"))
                         : NULL;
    json_decref(full);
    return brief;
}

/* A volume the caller may see, or FY_E_NOT_FOUND with Cinder's message. */
static fy_code volume_load(const fy_req *req, const char *id, PGresult **ret, fy_err *err)
{
    const char *p[] = {id};
    PGresult *res = NULL;
    fy_code rc = fy_uuid_valid(id) ? fy_db_exec_one(&api_sql_vol_get, p, &res, err)
                                   : FY_E_NOT_FOUND;
    if (rc == FY_E_OK && !api_policy_allows(req, POLICY, fy_db_str(res, 0, "project_id"))) {
        PQclear(res);
        rc = FY_E_NOT_FOUND;
    }
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, rc, "Volume %.64s could not be found.", id);
    if (rc == FY_E_OK)
        *ret = res;
    return rc;
}

static fy_code list(fy_req *req, fy_resp *resp, bool detail, fy_err *err)
{
    if (check_project(req, err))
        return err->code;
    bool all = req->auth.is_admin && api_bool_str(fy_req_query(req, "all_tenants"));
    const char *p[] = {all ? NULL : req->params[0]};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&api_sql_vol_list, p, &res, err))
        return err->code;
    json_t *arr = json_array();
    for (int i = 0; arr && i < PQntuples(res); i++) {
        json_t *v = detail ? volume_json(req, res, i) : volume_brief(req, res, i);
        if (!v || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return fy_fail(err, FY_E_NOMEM, NULL);
        }
    }
    json_t *body = arr ? json_pack("{s:o}", "volumes", arr) : NULL;
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_volumes_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    return list(req, resp, false, err);
}

fy_code api_volumes_detail(fy_req *req, fy_resp *resp, fy_err *err)
{
    return list(req, resp, true, err);
}

fy_code api_volumes_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    if (check_project(req, err) || volume_load(req, req->params[1], &res, err))
        return err->code;
    json_t *body = json_pack("{s:o}", "volume", volume_json(req, res, 0));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

/* ---- create / delete ---- */

typedef struct volume_in {
    long long size;
    const char *name;
} volume_in;

static const fy_jspec volume_spec[] = {
    {"size", FY_J_INT, FY_J_REQUIRED | FY_J_INT_AS_STRING, offsetof(volume_in, size),
     FY_JNOPRESENT, 1, MAX_SIZE_GB},
    {"name", FY_J_STRING, FY_J_NULLABLE, offsetof(volume_in, name), FY_JNOPRESENT, 0, 255},
};

/* A sparse file of the volume's size, created exclusively. */
static fy_code volume_file(const char *dir, const char *path, long long size_gb, fy_err *err)
{
    int r = fy_mkdir_p(dir, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "cannot create %s: %s", dir, strerror(-r));
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fy_fail(err, FY_E_IO, "cannot create %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)(size_gb * GIB)) != 0) {
        int e = errno;
        unlink(path);
        return fy_fail(err, FY_E_IO, "cannot size %s: %s", path, strerror(e));
    }
    return FY_E_OK;
}

fy_code api_volumes_create(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (check_project(req, err))
        return err->code;
    const json_t *vol = json_object_get(req->json, "volume");
    if (!json_is_object(vol) || json_object_size(req->json) != 1)
        return fy_fail(err, FY_E_BAD_REQUEST, "Missing required element 'volume' in request "
                       "body.");
    volume_in in = {0};
    if (fy_json_parse(vol, volume_spec, ELEMENTSOF(volume_spec), &in, false, "volume", err))
        return err->code;
    char id[FY_UUID_LEN + 1], size[24];
    fy_uuid_v4(id);
    snprintf(size, sizeof size, "%lld", in.size);
    const char *dir = api_cfg(req)->volumes_dir;
    _cleanup_free_ char *path = fy_strdup_printf("%s/volume-%s", dir, id);
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (volume_file(dir, path, in.size, err))
        return err->code;
    const char *p[] = {id, in.name ? in.name : "", size, req->params[0], path};
    if (fy_db_exec(&api_sql_vol_insert, p, NULL, err)) {
        unlink(path);
        return err->code;
    }
    _cleanup_pgres_ PGresult *res = NULL;
    const char *g[] = {id};
    if (fy_db_exec_one(&api_sql_vol_get, g, &res, err))
        return err->code;
    json_t *body = json_pack("{s:o}", "volume", volume_json(req, res, 0));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 202, body);
    return FY_E_OK;
}

fy_code api_volumes_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL, *del = NULL;
    if (check_project(req, err) || volume_load(req, req->params[1], &res, err))
        return err->code;
    const char *p[] = {req->params[1]};
    if (fy_db_exec(&api_sql_vol_delete, p, &del, err))
        return err->code;
    if (PQntuples(del) != 1)
        return fy_fail(err, FY_E_BAD_REQUEST, "%s", IN_USE_MSG);
    /* The record is gone; a leftover file is only wasted space. */
    unlink(fy_db_str(del, 0, "path"));
    resp->status = 202;
    return FY_E_OK;
}

/* ---- attachments ---- */

/* "/dev/vda" is the root disk; others take the first free of vdb..vdz. */
static fy_code next_device(const char *instance, bool root, char out[16], fy_err *err)
{
    if (root) {
        snprintf(out, 16, "/dev/vda");
        return FY_E_OK;
    }
    const char *p[] = {instance};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&api_sql_vol_att_devices, p, &res, err))
        return err->code;
    for (char c = 'b'; c <= 'z'; c++) {
        snprintf(out, 16, "/dev/vd%c", c);
        bool used = false;
        for (int i = 0; i < PQntuples(res) && !used; i++)
            used = fy_streq(fy_db_str(res, i, "device"), out);
        if (!used)
            return FY_E_OK;
    }
    return fy_fail(err, FY_E_BAD_REQUEST, "No free device name left on the instance.");
}

/* Locks a volume the caller may use and takes it from available to status. */
static fy_code reserve(const fy_req *req, const char *volume, const char *status,
                       PGresult **ret, fy_err *err)
{
    const char *p[] = {volume};
    _cleanup_pgres_ PGresult *res = NULL, *upd = NULL;
    fy_code rc = fy_db_exec_one(&api_sql_vol_lock, p, &res, err);
    if (rc == FY_E_OK && !api_policy_allows(req, POLICY, fy_db_str(res, 0, "project_id")))
        rc = FY_E_NOT_FOUND;
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, rc, "Volume %s could not be found.", volume);
    if (rc)
        return rc;
    const char *u[] = {volume, status};
    if (fy_db_exec(&api_sql_vol_reserve, u, &upd, err))
        return err->code;
    if (fy_db_affected(upd) != 1)
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid volume: volume %s status must be "
                       "available, but current status is: %s.", volume,
                       fy_db_str(res, 0, "status"));
    if (ret)
        *ret = TAKE_PTR(res);
    return FY_E_OK;
}

static fy_code insert_attachment(const char *att, const char *volume, const char *instance,
                                 const char *device, int boot_index, fy_err *err)
{
    char bi[16];
    snprintf(bi, sizeof bi, "%d", boot_index);
    const char *p[] = {att, volume, instance, device, boot_index >= 0 ? bi : NULL};
    return fy_db_exec(&api_sql_vol_att_insert, p, NULL, err);
}

typedef struct bdm_in {
    const char *uuid, *source, *dest, *device;
    json_t *boot_index;
    bool delete_on_termination;
    long long volume_size;
} bdm_in;

static const fy_jspec bdm_spec[] = {
    {"uuid", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID, offsetof(bdm_in, uuid), FY_JNOPRESENT, 0, 0},
    {"source_type", FY_J_STRING, FY_J_REQUIRED, offsetof(bdm_in, source), FY_JNOPRESENT, 0, 0},
    {"destination_type", FY_J_STRING, 0, offsetof(bdm_in, dest), FY_JNOPRESENT, 0, 0},
    {"device_name", FY_J_STRING, FY_J_NULLABLE, offsetof(bdm_in, device), FY_JNOPRESENT, 0, 255},
    {"boot_index", FY_J_ANY, 0, offsetof(bdm_in, boot_index), FY_JNOPRESENT, 0, 0},
    {"delete_on_termination", FY_J_BOOL, 0, offsetof(bdm_in, delete_on_termination),
     FY_JNOPRESENT, 0, 0},
    {"volume_size", FY_J_INT, FY_J_INT_AS_STRING, offsetof(bdm_in, volume_size), FY_JNOPRESENT,
     0, MAX_SIZE_GB},
};

/* Nova accepts an integer, a decimal string or null; negative means "not bootable". */
static fy_code parse_boot_index(const json_t *v, int *ret, fy_err *err)
{
    long long n = -1;
    if (v && !json_is_null(v) &&
        !(json_is_integer(v) && (n = json_integer_value(v), true)) &&
        !(json_is_string(v) && fy_parse_ll(json_string_value(v), -1000, 1000, &n)))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for field/attribute boot_index.");
    *ret = n < 0 ? -1 : (int)n;
    return FY_E_OK;
}

static fy_code bdm_one(const fy_req *req, const json_t *item, api_bdm *ret, fy_err *err)
{
    bdm_in b = {0};
    if (fy_json_parse(item, bdm_spec, ELEMENTSOF(bdm_spec), &b, false,
                      "block_device_mapping_v2", err))
        return err->code;
    if (strcmp(b.source, "volume") != 0 || (b.dest && strcmp(b.dest, "volume") != 0))
        return fy_fail(err, FY_E_BAD_REQUEST, "Block Device Mapping is Invalid: only existing "
                       "volumes (source_type and destination_type volume) are supported.");
    if (b.delete_on_termination)
        return fy_fail(err, FY_E_BAD_REQUEST, "Block Device Mapping is Invalid: "
                       "delete_on_termination is not supported for existing volumes.");
    int bi = -1;
    if (parse_boot_index(b.boot_index, &bi, err))
        return err->code;
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = volume_load(req, b.uuid, &res, err);
    if (rc && rc != FY_E_NOT_FOUND)
        return rc;
    if (rc)
        return fy_fail(err, FY_E_BAD_REQUEST, "Block Device Mapping is Invalid: failed to get "
                       "volume %s.", b.uuid);
    if (!fy_streq(fy_db_str(res, 0, "status"), "available"))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid volume: volume %s status must be "
                       "available, but current status is: %s.", b.uuid,
                       fy_db_str(res, 0, "status"));
    snprintf(ret->volume_id, sizeof ret->volume_id, "%s", b.uuid);
    ret->boot_index = bi;
    return FY_E_OK;
}

fy_code api_bdm_parse(const fy_req *req, const json_t *bdms, api_bdm_list *ret, fy_err *err)
{
    ret->n = 0;
    if (!bdms)
        return FY_E_OK;
    if (!json_is_array(bdms) || json_array_size(bdms) > API_MAX_BDMS)
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for field/attribute "
                       "block_device_mapping_v2: a list of at most %d items is required.",
                       API_MAX_BDMS);
    size_t i;
    json_t *item;
    int roots = 0;
    json_array_foreach (bdms, i, item) {
        api_bdm *b = &ret->v[ret->n];
        if (bdm_one(req, item, b, err))
            return err->code;
        for (int j = 0; j < ret->n; j++)
            if (!strcmp(ret->v[j].volume_id, b->volume_id))
                return fy_fail(err, FY_E_BAD_REQUEST, "Block Device Mapping is Invalid: "
                               "volume %s is mapped twice.", b->volume_id);
        roots += b->boot_index == 0;
        ret->n++;
    }
    if (roots > 1)
        return fy_fail(err, FY_E_BAD_REQUEST, "Block Device Mapping is Invalid: Boot sequence "
                       "for the instance and image/block device mapping combination is not "
                       "valid.");
    return FY_E_OK;
}

fy_code api_bdm_attach(const fy_req *req, const api_bdm_list *l, const char *instance_uuid,
                       fy_err *err)
{
    for (int i = 0; i < l->n; i++) {
        const api_bdm *b = &l->v[i];
        char att[FY_UUID_LEN + 1], dev[16];
        fy_uuid_v4(att);
        if (reserve(req, b->volume_id, "attaching", NULL, err) ||
            next_device(instance_uuid, b->boot_index == 0, dev, err) ||
            insert_attachment(att, b->volume_id, instance_uuid, dev, b->boot_index, err))
            return err->code;
    }
    return FY_E_OK;
}

static json_t *attachment_json(const fy_req *req, const char *server, const char *att,
                               const char *volume, const char *device, bool with_id)
{
    json_t *a = json_pack("{s:s,s:s,s:s}", "device", device, "serverId", server, "volumeId",
                          volume);
    if (!a)
        return NULL;
    if (with_id)
        json_object_set_new(a, "id", json_string(volume));
    if (api_mv_ge(req, 2, 70))
        json_object_set_new(a, "tag", json_null());
    if (api_mv_ge(req, 2, 79))
        json_object_set_new(a, "delete_on_termination", json_false());
    if (api_mv_ge(req, 2, 89)) {
        /* The attachment row is Ferry's block device mapping. */
        json_object_set_new(a, "attachment_id", json_string(att));
        json_object_set_new(a, "bdm_uuid", json_string(att));
    }
    return a;
}

fy_code api_volume_attachments_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *server = req->params[0];
    _cleanup_pgres_ PGresult *inst = NULL, *res = NULL;
    if (api_server_load(req, server, &inst, err))
        return err->code;
    if (!api_policy_allows(req, POLICY, fy_db_str(inst, 0, "project_id")))
        return fy_fail(err, FY_E_FORBIDDEN, "Policy doesn't allow "
                       "os_compute_api:os-volumes-attachments:index to be performed.");
    const char *p[] = {server};
    if (fy_db_exec(&api_sql_vol_server_attachments, p, &res, err))
        return err->code;
    json_t *arr = json_array();
    bool with_id = !api_mv_ge(req, 2, 89);
    for (int i = 0; arr && i < PQntuples(res); i++) {
        json_t *a = attachment_json(req, server, fy_db_str(res, i, "id"),
                                    fy_db_str(res, i, "volume_id"), fy_db_str(res, i, "device"),
                                    with_id);
        if (!a || json_array_append_new(arr, a) != 0) {
            json_decref(arr);
            return fy_fail(err, FY_E_NOMEM, NULL);
        }
    }
    json_t *body = arr ? json_pack("{s:o}", "volumeAttachments", arr) : NULL;
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

typedef struct attach_args {
    const fy_req *req;
    const char *server, *volume;
    char att[FY_UUID_LEN + 1], device[16];
} attach_args;

static bool attachable(const char *vm_state)
{
    static const char *const ok[] = {"active", "stopped", "paused", "suspended"};
    for (size_t i = 0; i < ELEMENTSOF(ok); i++)
        if (fy_streq(vm_state, ok[i]))
            return true;
    return false;
}

/* The connection for the instance's host is recorded here, as the conductor's
 * initialize_connection would; the guest picks the volume up from it. */
static fy_code attach_txn(void *arg, fy_err *err)
{
    attach_args *a = arg;
    const char *pi[] = {a->server};
    _cleanup_pgres_ PGresult *inst = NULL, *vol = NULL;
    fy_code rc = fy_db_exec_one(&api_sql_vol_instance_lock, pi, &inst, err);
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, rc, "Instance %s could not be found.", a->server);
    if (rc)
        return rc;
    const char *vm = fy_db_str(inst, 0, "vm_state"), *task = fy_db_str(inst, 0, "task_state");
    if (!attachable(vm) || task)
        return fy_fail(err, FY_E_CONFLICT, "Cannot 'attach_volume' instance %s while it is in "
                       "%s %s", a->server, task ? "task_state" : "vm_state", task ? task : vm);
    fy_uuid_v4(a->att);
    if (reserve(a->req, a->volume, "in-use", &vol, err) ||
        next_device(a->server, false, a->device, err) ||
        insert_attachment(a->att, a->volume, a->server, a->device, -1, err))
        return err->code;
    const char *host = fy_db_str(inst, 0, "host");
    if (!host)
        return FY_E_OK;
    _cleanup_(json_decrefp) json_t *info = json_pack(
        "{s:s,s:s,s:{s:s,s:s}}", "driver_volume_type", "file", "path", fy_db_str(vol, 0, "path"),
        "data", "volume_id", a->volume, "path", fy_db_str(vol, 0, "path"));
    _cleanup_free_ char *text = info ? fy_json_dump(info) : NULL;
    if (!text)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *pc[] = {a->att, host, text};
    return fy_db_exec(&api_sql_vol_connection_insert, pc, NULL, err);
}

typedef struct attach_in {
    const char *volume, *device, *tag;
    bool delete_on_termination;
} attach_in;

static const fy_jspec attach_spec[] = {
    {"volumeId", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID, offsetof(attach_in, volume),
     FY_JNOPRESENT, 0, 0},
    {"device", FY_J_STRING, FY_J_NULLABLE, offsetof(attach_in, device), FY_JNOPRESENT, 0, 255},
    {"tag", FY_J_STRING, 0, offsetof(attach_in, tag), FY_JNOPRESENT, 1, 60},
    {"delete_on_termination", FY_J_BOOL, 0, offsetof(attach_in, delete_on_termination),
     FY_JNOPRESENT, 0, 0},
};

fy_code api_volume_attachments_create(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *server = req->params[0];
    _cleanup_pgres_ PGresult *inst = NULL;
    if (api_server_load(req, server, &inst, err))
        return err->code;
    if (!api_policy_allows(req, POLICY, fy_db_str(inst, 0, "project_id")))
        return fy_fail(err, FY_E_FORBIDDEN, "Policy doesn't allow "
                       "os_compute_api:os-volumes-attachments:create to be performed.");
    const json_t *va = json_object_get(req->json, "volumeAttachment");
    if (!json_is_object(va) || json_object_size(req->json) != 1)
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for field/attribute "
                       "volumeAttachment. 'volumeAttachment' is a required property");
    attach_in in = {0};
    if (fy_json_parse(va, attach_spec, ELEMENTSOF(attach_spec), &in, false, "volumeAttachment",
                      err))
        return err->code;
    if (in.delete_on_termination)
        return fy_fail(err, FY_E_BAD_REQUEST, "delete_on_termination is not supported for "
                       "existing volumes.");
    attach_args a = {.req = req, .server = server, .volume = in.volume};
    if (fy_db_txn(attach_txn, &a, false, err))
        return err->code;
    json_t *body = json_pack("{s:o}", "volumeAttachment",
                             attachment_json(req, server, a.att, in.volume, a.device, true));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

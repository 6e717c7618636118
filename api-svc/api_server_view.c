/* The server JSON view (show, detail, list), shaped like Nova's per microversion. */
#include <ctype.h>
#include <openssl/evp.h>
#include <string.h>
#include "api_servers.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

/* Nova's _STATE_MAP: vm_state + task_state -> status.  task NULL = any other. */
typedef struct status_map {
    const char *vm, *task, *status;
} status_map;

static const status_map status_table[] = {
    {"active", "rebooting", "REBOOT"},
    {"active", "reboot_pending", "REBOOT"},
    {"active", "reboot_started", "REBOOT"},
    {"active", "rebooting_hard", "HARD_REBOOT"},
    {"active", "reboot_pending_hard", "HARD_REBOOT"},
    {"active", "reboot_started_hard", "HARD_REBOOT"},
    {"active", "updating_password", "PASSWORD"},
    {"active", "rebuilding", "REBUILD"},
    {"active", "rebuild_block_device_mapping", "REBUILD"},
    {"active", "rebuild_spawning", "REBUILD"},
    {"active", "migrating", "MIGRATING"},
    {"active", "resize_prep", "RESIZE"},
    {"active", "resize_migrating", "RESIZE"},
    {"active", "resize_migrated", "RESIZE"},
    {"active", "resize_finish", "RESIZE"},
    {"active", NULL, "ACTIVE"},
    {"building", NULL, "BUILD"},
    {"stopped", "resize_prep", "RESIZE"},
    {"stopped", "resize_migrating", "RESIZE"},
    {"stopped", "resize_migrated", "RESIZE"},
    {"stopped", "resize_finish", "RESIZE"},
    {"stopped", "rebuilding", "REBUILD"},
    {"stopped", "rebuild_block_device_mapping", "REBUILD"},
    {"stopped", "rebuild_spawning", "REBUILD"},
    {"stopped", NULL, "SHUTOFF"},
    {"resized", "resize_reverting", "REVERT_RESIZE"},
    {"resized", NULL, "VERIFY_RESIZE"},
    {"paused", "migrating", "MIGRATING"},
    {"paused", NULL, "PAUSED"},
    {"suspended", NULL, "SUSPENDED"},
    {"rescued", NULL, "RESCUE"},
    {"error", NULL, "ERROR"},
    {"deleted", NULL, "DELETED"},
    {"soft-delete", NULL, "SOFT_DELETED"},
    {"shelved", NULL, "SHELVED"},
    {"shelved_offloaded", NULL, "SHELVED_OFFLOADED"},
};

const char *api_server_status(const char *vm_state, const char *task_state)
{
    for (size_t i = 0; i < ELEMENTSOF(status_table); i++) {
        const status_map *m = &status_table[i];
        if (!fy_streq(m->vm, vm_state))
            continue;
        if (!m->task || fy_streq(m->task, task_state))
            return m->status;
    }
    return "UNKNOWN";
}

bool api_server_status_states(const char *status, json_t *vm_states, json_t *task_states,
                              bool *ret_any_task)
{
    bool found = false, any_task = false;
    for (size_t i = 0; i < ELEMENTSOF(status_table); i++) {
        const status_map *m = &status_table[i];
        if (strcasecmp(m->status, status) != 0)
            continue;
        found = true;
        json_array_append_new(vm_states, json_string(m->vm));
        if (m->task)
            json_array_append_new(task_states, json_string(m->task));
        else
            any_task = true;
    }
    if (any_task)
        *ret_any_task = true;
    return found;
}

void api_server_host_id(const char *project_id, const char *host, char out[57])
{
    out[0] = '\0';
    if (!host || !*host)
        return;
    _cleanup_free_ char *in = fy_strdup_printf("%s%s", project_id ? project_id : "", host);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!in || !EVP_Digest(in, strlen(in), md, &len, EVP_sha224(), NULL) || len != 28)
        return;
    fy_hex(md, len, out);
}

/* Lower-case letters, digits and '-', other runs of characters become one '-',
 * no leading/trailing '-' or '.', like nova.utils.sanitize_hostname. */
void api_server_hostname(const char *display_name, char out[64])
{
    size_t n = 0;
    bool dash = false;
    for (const char *p = display_name ? display_name : ""; *p && n < 63; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c)) {
            if (dash && n > 0 && n < 62)
                out[n++] = '-';
            dash = false;
            out[n++] = (char)tolower(c);
        } else if (c == '-' || isspace(c) || c == '_' || c == '.') {
            dash = true;
        }
    }
    out[n] = '\0';
}

static json_t *json_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *parse_or(const char *text, json_t *fallback)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (!j)
        return fallback;
    json_decref(fallback);
    return j;
}

json_t *api_server_links(const char *base_url, const char *uuid)
{
    _cleanup_free_ char *self = fy_strdup_printf("%s/v2.1/servers/%s", base_url, uuid);
    _cleanup_free_ char *book = fy_strdup_printf("%s/servers/%s", base_url, uuid);
    if (!self || !book)
        return json_array();
    return json_pack("[{s:s, s:s}, {s:s, s:s}]", "rel", "self", "href", self, "rel", "bookmark",
                     "href", book);
}

static json_t *bookmark_ref(const char *base_url, const char *kind, const char *id)
{
    _cleanup_free_ char *href = fy_strdup_printf("%s/%s/%s", base_url, kind, id);
    return json_pack("{s:s, s:[{s:s, s:s}]}", "id", id, "links", "rel", "bookmark", "href",
                     href ? href : "");
}

static bool mv_ge(const api_view_opts *o, int major, int minor)
{
    return o->mv_major > major || (o->mv_major == major && o->mv_minor >= minor);
}

static json_t *flavor_view(const api_view_opts *o, const api_server_row *r)
{
    json_t *f = parse_or(r->flavor_json, json_object());
    const char *fid = fy_json_str(f, "flavorid");
    json_t *v;
    if (!mv_ge(o, 2, 47)) {
        v = bookmark_ref(o->base_url, "flavors", fid ? fid : "");
    } else {
        json_t *specs = json_object_get(f, "extra_specs");
        v = json_pack("{s:I, s:I, s:I, s:I, s:I, s:s, s:O}", "vcpus",
                      (json_int_t)fy_json_int(f, "vcpus", 0), "ram",
                      (json_int_t)fy_json_int(f, "memory_mb", 0), "disk",
                      (json_int_t)fy_json_int(f, "root_gb", 0), "ephemeral",
                      (json_int_t)fy_json_int(f, "ephemeral_gb", 0), "swap",
                      (json_int_t)fy_json_int(f, "swap_mb", 0), "original_name",
                      fy_json_str(f, "name") ? fy_json_str(f, "name") : "", "extra_specs",
                      json_is_object(specs) ? specs : json_object());
    }
    json_decref(f);
    return v;
}

/* {"<network name>": [{"addr", "version", "OS-EXT-IPS:type", "OS-EXT-IPS-MAC:mac_addr"}]} */
static json_t *addresses_view(const api_server_row *r)
{
    json_t *addrs = json_object();
    json_t *ports = parse_or(r->ports_json, json_array());
    size_t i;
    json_t *p;
    json_array_foreach (ports, i, p) {
        const char *net = fy_json_str(p, "net"), *addr = fy_json_str(p, "addr");
        if (!net || !addr)
            continue;
        json_t *list = json_object_get(addrs, net);
        if (!list) {
            list = json_array();
            json_object_set_new(addrs, net, list);
        }
        json_array_append_new(list, json_pack("{s:s, s:i, s:s, s:s?}", "addr", addr, "version",
                                              strchr(addr, ':') ? 6 : 4, "OS-EXT-IPS:type", "fixed",
                                              "OS-EXT-IPS-MAC:mac_addr", fy_json_str(p, "mac")));
    }
    json_decref(ports);
    return addrs;
}

static json_t *volumes_view(const api_view_opts *o, const api_server_row *r)
{
    json_t *out = json_array();
    json_t *vols = parse_or(r->volumes_json, json_array());
    size_t i;
    json_t *v;
    json_array_foreach (vols, i, v) {
        if (!json_is_string(v))
            continue;
        json_t *item = json_pack("{s:O}", "id", v);
        if (mv_ge(o, 2, 3))
            json_object_set_new(item, "delete_on_termination", json_false());
        json_array_append_new(out, item);
    }
    json_decref(vols);
    return out;
}

static void add_fault(const api_view_opts *o, const api_server_row *r, const char *status,
                      json_t *s)
{
    if (!r->fault_json || (strcmp(status, "ERROR") != 0 && strcmp(status, "DELETED") != 0))
        return;
    json_t *f = parse_or(r->fault_json, NULL);
    if (!f)
        return;
    json_t *view =
        json_pack("{s:I, s:s?, s:s?}", "code", (json_int_t)fy_json_int(f, "code", 500), "created",
                  fy_json_str(f, "created"), "message", fy_json_str(f, "message"));
    const char *details = fy_json_str(f, "details");
    if (o->fault_details && details && *details)
        json_object_set_new(view, "details", json_string(details));
    json_object_set_new(s, "fault", view);
    json_decref(f);
}

static void add_ext_attrs(const api_view_opts *o, const api_server_row *r, json_t *s)
{
    char name[32];
    snprintf(name, sizeof(name), "instance-%08llx", (unsigned long long)r->id);
    json_object_set_new(s, "OS-EXT-SRV-ATTR:host", json_or_null(r->host));
    json_object_set_new(s, "OS-EXT-SRV-ATTR:instance_name", json_string(name));
    json_object_set_new(s, "OS-EXT-SRV-ATTR:hypervisor_hostname", json_or_null(r->node));
    if (!mv_ge(o, 2, 3))
        return;
    char hostname[64], resv[16];
    api_server_hostname(r->name, hostname);
    /* Ferry keeps no reservation ids; one derived from the uuid stays stable. */
    snprintf(resv, sizeof(resv), "r-%.8s", r->uuid);
    json_object_set_new(s, "OS-EXT-SRV-ATTR:reservation_id", json_string(resv));
    json_object_set_new(s, "OS-EXT-SRV-ATTR:launch_index", json_integer(0));
    json_object_set_new(s, "OS-EXT-SRV-ATTR:hostname", json_string(hostname));
    json_object_set_new(s, "OS-EXT-SRV-ATTR:kernel_id", json_string(""));
    json_object_set_new(s, "OS-EXT-SRV-ATTR:ramdisk_id", json_string(""));
    json_object_set_new(s, "OS-EXT-SRV-ATTR:root_device_name", json_null());
    json_object_set_new(s, "OS-EXT-SRV-ATTR:user_data", json_null());
}

/* Fields that appear from a microversion on. */
static void add_mv_fields(const api_view_opts *o, const api_server_row *r, json_t *s)
{
    if (mv_ge(o, 2, 16) && o->host_status)
        json_object_set_new(s, "host_status", json_string(r->host_status ? r->host_status : ""));
    if (mv_ge(o, 2, 9))
        json_object_set_new(s, "locked", json_boolean(r->locked));
    if (mv_ge(o, 2, 73))
        json_object_set_new(s, "locked_reason", json_null());
    if (mv_ge(o, 2, 19))
        json_object_set_new(s, "description", json_null());
    if (mv_ge(o, 2, 26))
        json_object_set_new(s, "tags", json_array());
    if (mv_ge(o, 2, 63))
        json_object_set_new(s, "trusted_image_certificates", json_null());
    if (mv_ge(o, 2, 71))
        json_object_set_new(s, "server_groups", json_array());
}

json_t *api_server_view_brief(const api_view_opts *o, const api_server_row *r)
{
    return json_pack("{s:s, s:s, s:o}", "id", r->uuid, "name", r->name ? r->name : "", "links",
                     api_server_links(o->base_url, r->uuid));
}

static bool shows_progress(const char *status)
{
    static const char *const with[] = {"ACTIVE", "BUILD",         "REBUILD",
                                       "RESIZE", "VERIFY_RESIZE", "MIGRATING"};
    for (size_t i = 0; i < ELEMENTSOF(with); i++)
        if (strcmp(with[i], status) == 0)
            return true;
    return false;
}

json_t *api_server_view_full(const api_view_opts *o, const api_server_row *r)
{
    const char *status = api_server_status(r->vm_state, r->task_state);
    char host_id[57];
    api_server_host_id(r->project_id, r->host, host_id);
    json_t *image = (r->image_ref && *r->image_ref)
                        ? bookmark_ref(o->base_url, "images", r->image_ref)
                        : json_string("");
    json_t *s = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s?, s:o, s:s, s:o, s:o, s:s?, s:s?, s:o,"
        " s:s, s:s, s:o, s:s}",
        "id", r->uuid, "name", r->name ? r->name : "", "status", status, "tenant_id", r->project_id,
        "user_id", r->user_id, "metadata", parse_or(r->metadata_json, json_object()), "hostId",
        host_id, "image", image, "flavor", flavor_view(o, r), "created", r->created, "updated",
        r->updated, "addresses", addresses_view(r), "accessIPv4", "", "accessIPv6", "", "links",
        api_server_links(o->base_url, r->uuid), "OS-DCF:diskConfig", "MANUAL");
    if (!s)
        return NULL;
    if (shows_progress(status))
        json_object_set_new(s, "progress", json_integer(0));
    json_object_set_new(s, "OS-EXT-AZ:availability_zone", json_string(r->az ? r->az : ""));
    json_object_set_new(s, "config_drive", json_string(""));
    json_object_set_new(s, "key_name", json_or_null(r->key_name));
    json_object_set_new(s, "OS-SRV-USG:launched_at", json_or_null(r->launched_at));
    json_object_set_new(s, "OS-SRV-USG:terminated_at", json_or_null(r->terminated_at));
    if (o->ext_attrs)
        add_ext_attrs(o, r, s);
    json_object_set_new(s, "OS-EXT-STS:task_state", json_or_null(r->task_state));
    json_object_set_new(s, "OS-EXT-STS:vm_state", json_or_null(r->vm_state));
    json_object_set_new(s, "OS-EXT-STS:power_state", json_integer(r->power_state));
    json_object_set_new(s, "os-extended-volumes:volumes_attached", volumes_view(o, r));
    /* Nova lists the default group only for servers that have ports. */
    if (json_object_size(json_object_get(s, "addresses")) > 0)
        json_object_set_new(s, "security_groups", json_pack("[{s:s}]", "name", "default"));
    add_fault(o, r, status, s);
    add_mv_fields(o, r, s);
    return s;
}

void api_server_row_from_pg(PGresult *res, int i, api_server_row *ret)
{
    *ret = (api_server_row){
        .uuid = fy_db_str(res, i, "uuid"),
        .name = fy_db_str(res, i, "display_name"),
        .project_id = fy_db_str(res, i, "project_id"),
        .user_id = fy_db_str(res, i, "user_id"),
        .image_ref = fy_db_str(res, i, "image_ref"),
        .flavor_json = fy_db_str(res, i, "flavor"),
        .vm_state = fy_db_str(res, i, "vm_state"),
        .task_state = fy_db_str(res, i, "task_state"),
        .host = fy_db_str(res, i, "host"),
        .node = fy_db_str(res, i, "node"),
        .az = fy_db_str(res, i, "az"),
        .key_name = fy_db_str(res, i, "key_name"),
        .metadata_json = fy_db_str(res, i, "metadata"),
        .launched_at = fy_db_str(res, i, "launched_at"),
        .terminated_at = fy_db_str(res, i, "terminated_at"),
        .created = fy_db_str(res, i, "created"),
        .updated = fy_db_str(res, i, "updated"),
        .ports_json = fy_db_str(res, i, "ports"),
        .volumes_json = fy_db_str(res, i, "volumes"),
        .fault_json = fy_db_str(res, i, "fault"),
        .host_status = fy_db_str(res, i, "host_status"),
        .id = fy_db_ll(res, i, "id", 0),
        .power_state = fy_db_ll(res, i, "power_state", 0),
        .locked = fy_db_bool(res, i, "locked"),
    };
}

void api_base_url(const fy_req *req, char *out, size_t size)
{
    const api_ctx *ctx = req->svc;
    const char *url = ctx && ctx->cfg.public_url ? ctx->cfg.public_url : "";
    snprintf(out, size, "%s", url);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* Policy decides visibility; a denied check only hides the fields. */
static bool allowed(const fy_req *req, const char *rule, const char *owner)
{
    fy_err scratch = {0};
    return api_policy_check(req, rule, owner, &scratch) == FY_E_OK;
}

void api_view_opts_for(const fy_req *req, char *base_buf, size_t base_size, api_view_opts *ret)
{
    api_base_url(req, base_buf, base_size);
    *ret = (api_view_opts){
        .base_url = base_buf,
        .mv_major = req->mv_major ? req->mv_major : 2,
        .mv_minor = req->mv_major ? req->mv_minor : 1,
        .ext_attrs = allowed(req, "os_compute_api:os-extended-server-attributes", NULL),
        .host_status = allowed(req, "os_compute_api:servers:show:host_status", NULL),
        .fault_details = req->auth.is_admin,
    };
}

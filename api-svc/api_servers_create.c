/* POST /v2.1/servers: validate everything first, then write the instances, their
 * ports, actions and build tasks in one transaction. */
#include <stddef.h>
#include <string.h>
#include "api_netvol.h"
#include "api_servers.h"
#include "fy_auth.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

#define MAX_COUNT 100 /* instances per request */
#define MAX_NICS 16

typedef struct create_body {
    const char *name, *image_ref, *az, *key_name, *user_data, *disk_config;
    json_t *flavor_ref, *networks, *metadata, *config_drive, *security_groups, *bdms;
    long long min_count, max_count;
    bool has_networks, has_min, has_max;
} create_body;

#define F(n, t, fl, field)                                                                         \
    {                                                                                              \
        n, t, fl, offsetof(create_body, field), FY_JNOPRESENT, 0, 0                                \
    }
#define FP(n, t, fl, field, pres, lo, hi)                                                          \
    {                                                                                              \
        n, t, fl, offsetof(create_body, field), offsetof(create_body, pres), lo, hi                \
    }

#define FB(n, t, fl, field, lo, hi)                                                                \
    {                                                                                              \
        n, t, fl, offsetof(create_body, field), FY_JNOPRESENT, lo, hi                              \
    }

static const fy_jspec server_spec[] = {
    FB("name", FY_J_STRING, FY_J_REQUIRED, name, 1, 255),
    F("flavorRef", FY_J_ANY, FY_J_REQUIRED, flavor_ref),
    FB("imageRef", FY_J_STRING, 0, image_ref, 0, 255),
    FP("networks", FY_J_ANY, 0, networks, has_networks, 0, 0),
    FB("availability_zone", FY_J_STRING, 0, az, 1, 255),
    FP("min_count", FY_J_INT, FY_J_INT_AS_STRING, min_count, has_min, 1, MAX_COUNT),
    FP("max_count", FY_J_INT, FY_J_INT_AS_STRING, max_count, has_max, 1, MAX_COUNT),
    F("metadata", FY_J_OBJECT, 0, metadata),
    FB("key_name", FY_J_STRING, 0, key_name, 1, 255),
    FB("user_data", FY_J_STRING, FY_J_NULLABLE, user_data, 0, 65535),
    F("config_drive", FY_J_ANY, 0, config_drive),
    F("security_groups", FY_J_ARRAY, 0, security_groups),
    FB("OS-DCF:diskConfig", FY_J_STRING, 0, disk_config, 0, 16),
    F("block_device_mapping_v2", FY_J_ARRAY, 0, bdms),
};

typedef struct top_body {
    json_t *server, *hints, *hints_legacy; /* hints are accepted; no filter uses them */
} top_body;

static const fy_jspec top_spec[] = {
    {"server", FY_J_OBJECT, FY_J_REQUIRED, offsetof(top_body, server), FY_JNOPRESENT, 0, 0},
    {"os:scheduler_hints", FY_J_OBJECT, 0, offsetof(top_body, hints), FY_JNOPRESENT, 0, 0},
    {"OS-SCH-HNT:scheduler_hints", FY_J_OBJECT, 0, offsetof(top_body, hints_legacy), FY_JNOPRESENT,
     0, 0},
};

/* One requested NIC: an existing port, or a new port on a network (NULL = default). */
typedef struct nic_req {
    const char *port_id, *net_id;
} nic_req;

/* Everything the transaction needs, resolved before it starts. */
typedef struct create_plan {
    fy_req *req;
    const char *name;
    char flavor_id[256];
    long long vcpus, ram;
    char *flavor_json;    /* owned snapshot */
    const char *image_id; /* "" for none */
    char *zone, *host;    /* owned, may be NULL */
    char *networks_req;   /* owned JSON text */
    char *metadata;       /* owned JSON text */
    const char *key_name;
    nic_req nics[MAX_NICS];
    int nnics;
    long long min_count, max_count;
    api_bdm_list bdms;    /* existing volumes to attach */
    char first_uuid[FY_UUID_LEN + 1];
} create_plan;

static void plan_free(create_plan *p)
{
    free(p->flavor_json);
    free(p->zone);
    free(p->host);
    free(p->networks_req);
    free(p->metadata);
}

static fy_code bad(fy_err *err, const char *msg)
{
    return fy_fail(err, FY_E_BAD_REQUEST, "%s", msg);
}

/* A reference may be an id or a URL ending in the id. */
static const char *ref_tail(const char *ref)
{
    const char *slash = strrchr(ref, '/');
    return slash ? slash + 1 : ref;
}

static fy_code resolve_flavor(const create_body *b, create_plan *p, fy_err *err)
{
    if (json_is_integer(b->flavor_ref))
        snprintf(p->flavor_id, sizeof(p->flavor_id), "%lld",
                 (long long)json_integer_value(b->flavor_ref));
    else if (json_is_string(b->flavor_ref) && json_string_length(b->flavor_ref) > 0 &&
             json_string_length(b->flavor_ref) < sizeof(p->flavor_id))
        snprintf(p->flavor_id, sizeof(p->flavor_id), "%s",
                 ref_tail(json_string_value(b->flavor_ref)));
    else
        return bad(err, "Invalid input for field/attribute flavorRef. "
                        "flavorRef must be a string or an integer");
    _cleanup_pgres_ PGresult *res = NULL;
    const char *q[] = {p->flavor_id};
    fy_code rc = fy_db_exec(&api_sql_srv_flavor_get, q, &res, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(res) != 1 || (!fy_db_bool(res, 0, "is_public") && !p->req->auth.is_admin))
        return bad(err, "Invalid flavorRef provided.");
    json_t *specs = json_loads(fy_db_str(res, 0, "extra_specs"), 0, NULL);
    p->vcpus = fy_db_ll(res, 0, "vcpus", 0);
    p->ram = fy_db_ll(res, 0, "memory_mb", 0);
    json_t *snap = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "flavorid", fy_db_str(res, 0, "flavorid"),
        "name", fy_db_str(res, 0, "name"), "vcpus", (json_int_t)p->vcpus, "memory_mb",
        (json_int_t)p->ram, "root_gb", (json_int_t)fy_db_ll(res, 0, "root_gb", 0), "ephemeral_gb",
        (json_int_t)fy_db_ll(res, 0, "ephemeral_gb", 0), "swap_mb",
        (json_int_t)fy_db_ll(res, 0, "swap_mb", 0), "extra_specs", specs ? specs : json_object());
    p->flavor_json = snap ? fy_json_dump(snap) : NULL;
    json_decref(snap);
    return p->flavor_json ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code resolve_image(const create_body *b, create_plan *p, fy_err *err)
{
    p->image_id = b->image_ref ? ref_tail(b->image_ref) : "";
    if (!*p->image_id)
        return FY_E_OK; /* boot from volume */
    if (!fy_uuid_valid(p->image_id))
        return bad(err, "Invalid imageRef provided.");
    _cleanup_pgres_ PGresult *res = NULL;
    const char *q[] = {p->image_id};
    fy_code rc = fy_db_exec(&api_sql_srv_image_get, q, &res, err);
    if (rc != FY_E_OK)
        return rc;
    const fy_req *req = p->req;
    bool visible = PQntuples(res) == 1 &&
                   (req->auth.is_admin || !fy_streq(fy_db_str(res, 0, "visibility"), "private") ||
                    fy_streq(fy_db_str(res, 0, "owner"), req->auth.project_id));
    if (!visible)
        return bad(err, "Invalid imageRef provided.");
    if (!fy_streq(fy_db_str(res, 0, "status"), "active"))
        return fy_fail(err, FY_E_BAD_REQUEST, "Image %s is not active.", p->image_id);
    json_t *f = json_loads(p->flavor_json, 0, NULL);
    long long root = fy_json_int(f, "root_gb", 0);
    json_decref(f);
    if (p->ram < fy_db_ll(res, 0, "min_ram", 0))
        return bad(err, "Flavor's memory is too small for requested image.");
    if (root > 0 && root < fy_db_ll(res, 0, "min_disk", 0))
        return bad(err, "Flavor's disk is too small for requested image.");
    return FY_E_OK;
}

/* "zone", "zone:host" or "zone:host:node"; pinning a host is admin-only. */
static fy_code resolve_az(const create_body *b, create_plan *p, fy_err *err)
{
    if (!b->az)
        return FY_E_OK;
    _cleanup_free_ char *buf = strdup(b->az);
    if (!buf)
        return fy_fail(err, FY_E_NOMEM, NULL);
    char *colon = strchr(buf, ':');
    char *host = NULL;
    if (colon) {
        *colon = '\0';
        host = colon + 1;
        char *node = strchr(host, ':');
        if (node)
            *node = '\0';
    }
    fy_code rc;
    if (host && *host) {
        rc = api_policy_check(p->req, "os_compute_api:servers:create:forced_host", NULL, err);
        if (rc != FY_E_OK)
            return rc;
        _cleanup_pgres_ PGresult *res = NULL;
        const char *q[] = {host};
        rc = fy_db_exec(&api_sql_compute_host_get, q, &res, err);
        if (rc != FY_E_OK)
            return rc;
        if (PQntuples(res) == 0)
            return fy_fail(err, FY_E_BAD_REQUEST, "Compute host %s could not be found.", host);
        p->host = strdup(host);
    }
    if (*buf) {
        _cleanup_pgres_ PGresult *res = NULL;
        const char *q[] = {buf};
        rc = fy_db_exec(&api_sql_zone_exists, q, &res, err);
        if (rc != FY_E_OK)
            return rc;
        if (PQntuples(res) == 0)
            return bad(err, "The requested availability zone is not available");
        p->zone = strdup(buf);
    }
    if ((host && *host && !p->host) || (*buf && !p->zone))
        return fy_fail(err, FY_E_NOMEM, NULL);
    return FY_E_OK;
}

typedef struct nic_body {
    const char *port, *uuid, *tag;
} nic_body;

static const fy_jspec nic_spec[] = {
    {"port", FY_J_STRING, FY_J_UUID | FY_J_NULLABLE, offsetof(nic_body, port), FY_JNOPRESENT, 0, 0},
    {"uuid", FY_J_STRING, FY_J_UUID, offsetof(nic_body, uuid), FY_JNOPRESENT, 0, 0},
    {"tag", FY_J_STRING, 0, offsetof(nic_body, tag), FY_JNOPRESENT, 1, 60},
};

static fy_code resolve_nic_list(const json_t *list, create_plan *p, fy_err *err)
{
    if (json_array_size(list) > MAX_NICS)
        return fy_fail(err, FY_E_BAD_REQUEST, "At most %d networks may be requested.", MAX_NICS);
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        nic_body nb = {0};
        fy_code rc =
            fy_json_parse(item, nic_spec, ELEMENTSOF(nic_spec), &nb, false, "networks", err);
        if (rc != FY_E_OK)
            return rc;
        if (!nb.port && !nb.uuid)
            return bad(err, "Bad networks format: network uuid is not in proper format");
        p->nics[p->nnics++] = (nic_req){.port_id = nb.port, .net_id = nb.port ? NULL : nb.uuid};
    }
    return FY_E_OK;
}

static fy_code resolve_networks(const create_body *b, create_plan *p, fy_err *err)
{
    bool strings = api_mv_ge(p->req, 2, 37);
    const json_t *n = b->networks;
    if (!b->has_networks && strings)
        return bad(err,
                   "Invalid input for field/attribute server. 'networks' is a required property");
    fy_code rc = FY_E_OK;
    if (!b->has_networks || (strings && json_is_string(n) && !strcmp(json_string_value(n), "auto")))
        p->nics[p->nnics++] = (nic_req){0};
    else if (strings && json_is_string(n) && !strcmp(json_string_value(n), "none"))
        ;
    else if (json_is_array(n))
        rc = resolve_nic_list(n, p, err);
    else
        rc = bad(err, strings ? "Invalid input for field/attribute networks. "
                                "networks must be 'auto', 'none' or a list"
                              : "Invalid input for field/attribute networks. "
                                "networks must be a list");
    if (rc != FY_E_OK)
        return rc;
    p->networks_req = b->has_networks ? fy_json_dump(n) : strdup("\"auto\"");
    return p->networks_req ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code resolve_counts(const create_body *b, create_plan *p, fy_err *err)
{
    p->min_count = b->has_min ? b->min_count : 1;
    p->max_count = b->has_max ? b->max_count : p->min_count;
    if (p->min_count > p->max_count)
        return bad(err, "min_count must be <= max_count");
    if (p->bdms.n > 0 && p->max_count > 1)
        return bad(err, "Unable to launch multiple instances with a single configured volume.");
    for (int i = 0; i < p->nnics && p->max_count > 1; i++)
        if (p->nics[i].port_id)
            return bad(err, "Unable to launch multiple instances with a single configured port "
                            "ID. Please launch your instance one by one with different ports.");
    return FY_E_OK;
}

static fy_code validate_metadata(const create_body *b, create_plan *p, fy_err *err)
{
    if (json_object_size(b->metadata) > 128)
        return fy_fail(err, FY_E_QUOTA_EXCEEDED, "Quota exceeded, too many metadata items.");
    const char *k;
    json_t *v;
    json_object_foreach (b->metadata, k, v) {
        if (!*k || strlen(k) > 255 || !json_is_string(v) || json_string_length(v) > 255)
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for field/attribute metadata. Metadata item '%.64s' "
                           "must map a key of 1-255 characters to a string of at most 255",
                           k);
    }
    p->metadata = b->metadata ? fy_json_dump(b->metadata) : strdup("{}");
    return p->metadata ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code build_plan(fy_req *req, create_plan *p, fy_err *err)
{
    top_body top = {0};
    fy_code rc = fy_json_parse(req->json, top_spec, ELEMENTSOF(top_spec), &top, false, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    create_body b = {0};
    rc = fy_json_parse(json_object_get(req->json, "server"), server_spec, ELEMENTSOF(server_spec),
                       &b, false, "server", err);
    if (rc != FY_E_OK)
        return rc;
    p->name = b.name;
    p->key_name = b.key_name;
    if ((rc = resolve_flavor(&b, p, err)) != FY_E_OK ||
        (rc = resolve_image(&b, p, err)) != FY_E_OK || (rc = resolve_az(&b, p, err)) != FY_E_OK ||
        (rc = resolve_networks(&b, p, err)) != FY_E_OK ||
        (rc = validate_metadata(&b, p, err)) != FY_E_OK ||
        (rc = api_bdm_parse(req, b.bdms, &p->bdms, err)) != FY_E_OK)
        return rc;
    return resolve_counts(&b, p, err);
}

/* ---- the transaction ---- */

static fy_code quota_fail(fy_err *err, const char *res, long long req, long long used,
                          long long lim)
{
    return fy_fail(err, FY_E_QUOTA_EXCEEDED,
                   "Quota exceeded for %s: Requested %lld, but already used %lld of %lld %s", res,
                   req, used, lim, res);
}

/* How many of the requested instances fit (Nova creates as many as fit >= min_count). */
static fy_code quota_count(create_plan *p, long long *ret_n, fy_err *err)
{
    const char *q[] = {p->req->auth.project_id};
    fy_code rc = fy_db_exec(&api_sql_quota_lock, q, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    if ((rc = fy_db_exec(&api_sql_quota_usage, q, &res, err)) != FY_E_OK)
        return rc;
    long long n = p->max_count;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = fy_db_str(res, i, "resource");
        long long lim = fy_db_ll(res, i, "hard_limit", -1), used = fy_db_ll(res, i, "used", 0);
        long long per = !strcmp(name, "instances") ? 1 : !strcmp(name, "cores") ? p->vcpus : p->ram;
        if (lim < 0 || per <= 0)
            continue;
        long long fit = lim > used ? (lim - used) / per : 0;
        if (fit < p->min_count)
            return quota_fail(err, name, per * p->max_count, used, lim);
        if (fit < n)
            n = fit;
    }
    *ret_n = n;
    return FY_E_OK;
}

static fy_code random_mac(char out[18], fy_err *err)
{
    unsigned char b[3];
    if (!fy_random_bytes(b, sizeof(b)))
        return fy_fail(err, FY_E_INTERNAL, "no randomness for a MAC address");
    snprintf(out, 18, "fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2]);
    return FY_E_OK;
}

static fy_code new_port(create_plan *p, const char *net_id, const char *instance, fy_err *err)
{
    _cleanup_pgres_ PGresult *net = NULL;
    const char *q[] = {net_id};
    fy_code rc = fy_db_exec_one(&api_sql_network_lock, q, &net, err);
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, FY_E_BAD_REQUEST, "Network %s could not be found.", net_id);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *ip = NULL;
    rc = fy_db_exec_one(&api_sql_network_free_ip, q, &ip, err);
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, FY_E_CONFLICT, "No more IP addresses available on network %s.", net_id);
    if (rc != FY_E_OK)
        return rc;
    for (int attempt = 0; attempt < 8; attempt++) {
        char port[FY_UUID_LEN + 1], mac[18];
        fy_uuid_v4(port);
        if ((rc = random_mac(mac, err)) != FY_E_OK)
            return rc;
        const char *ins[] = {
            port, net_id, mac, fy_db_str(ip, 0, "ip"), instance, p->req->auth.project_id};
        _cleanup_pgres_ PGresult *res = NULL;
        if ((rc = fy_db_exec(&api_sql_port_insert, ins, &res, err)) != FY_E_OK)
            return rc;
        if (fy_db_affected(res) == 1)
            return FY_E_OK;
    }
    return fy_fail(err, FY_E_CONFLICT, "Could not allocate a unique MAC address.");
}

static fy_code attach_port(create_plan *p, const char *port_id, const char *instance, fy_err *err)
{
    _cleanup_pgres_ PGresult *port = NULL;
    const char *q[] = {port_id};
    fy_code rc = fy_db_exec_one(&api_sql_port_lock, q, &port, err);
    const char *owner = rc == FY_E_OK ? fy_db_str(port, 0, "project_id") : NULL;
    if (rc == FY_E_NOT_FOUND || (rc == FY_E_OK && owner && !p->req->auth.is_admin &&
                                 !fy_streq(owner, p->req->auth.project_id)))
        return fy_fail(err, FY_E_BAD_REQUEST, "Port id %s could not be found.", port_id);
    if (rc != FY_E_OK)
        return rc;
    if (fy_db_str(port, 0, "device_id"))
        return fy_fail(err, FY_E_CONFLICT, "Port %s is still in use.", port_id);
    const char *u[] = {port_id, instance};
    _cleanup_pgres_ PGresult *res = NULL;
    if ((rc = fy_db_exec(&api_sql_port_attach, u, &res, err)) != FY_E_OK)
        return rc;
    return fy_db_affected(res) == 1
               ? FY_E_OK
               : fy_fail(err, FY_E_CONFLICT, "Port %s is still in use.", port_id);
}

static fy_code create_ports(create_plan *p, const char *instance, fy_err *err)
{
    for (int i = 0; i < p->nnics; i++) {
        const nic_req *n = &p->nics[i];
        fy_code rc;
        if (n->port_id) {
            rc = attach_port(p, n->port_id, instance, err);
        } else if (n->net_id) {
            rc = new_port(p, n->net_id, instance, err);
        } else {
            /* "auto": the default network when there is one, else no NIC. */
            _cleanup_pgres_ PGresult *def = NULL;
            rc = fy_db_exec(&api_sql_network_default, NULL, &def, err);
            if (rc == FY_E_OK && PQntuples(def) == 1)
                rc = new_port(p, fy_db_str(def, 0, "id"), instance, err);
        }
        if (rc != FY_E_OK)
            return rc;
    }
    return FY_E_OK;
}

static fy_code create_one(create_plan *p, const char *uuid, const char *name, fy_err *err)
{
    const fy_req *req = p->req;
    const char *ins[] = {
        uuid,    name,    req->auth.project_id, req->auth.user_id, p->image_id, p->flavor_json,
        p->zone, p->host, p->networks_req,      p->key_name,       p->metadata};
    fy_code rc = fy_db_exec(&api_sql_instance_insert, ins, NULL, err);
    if (rc == FY_E_OK)
        rc = create_ports(p, uuid, err);
    if (rc == FY_E_OK)
        rc = api_bdm_attach(req, &p->bdms, uuid, err);
    if (rc == FY_E_OK)
        rc = api_instance_action_record(req, uuid, "create", err);
    if (rc == FY_E_OK)
        rc = api_task_enqueue("build", uuid, NULL, req->request_id, NULL, NULL, err);
    return rc;
}

static fy_code create_txn(void *arg, fy_err *err)
{
    create_plan *p = arg;
    long long n = 0;
    fy_code rc = quota_count(p, &n, err);
    for (long long i = 0; rc == FY_E_OK && i < n; i++) {
        char uuid[FY_UUID_LEN + 1];
        fy_uuid_v4(uuid);
        _cleanup_free_ char *name =
            n > 1 ? fy_strdup_printf("%s-%lld", p->name, i + 1) : strdup(p->name);
        if (!name)
            return fy_fail(err, FY_E_NOMEM, NULL);
        rc = create_one(p, uuid, name, err);
        if (i == 0)
            snprintf(p->first_uuid, sizeof(p->first_uuid), "%s", uuid);
    }
    return rc;
}

fy_code api_servers_create(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:servers:create", req->auth.project_id, err);
    if (rc != FY_E_OK)
        return rc;
    if (!fy_uuid_valid(req->auth.project_id) || !fy_uuid_valid(req->auth.user_id))
        return fy_fail(err, FY_E_FORBIDDEN, "A project-scoped user token is required.");
    _cleanup_(plan_free) create_plan p = {.req = req};
    if ((rc = build_plan(req, &p, err)) != FY_E_OK)
        return rc;
    if ((rc = fy_db_txn(create_txn, &p, false, err)) != FY_E_OK)
        return rc;
    char base[512], pass[13];
    api_base_url(req, base, sizeof(base));
    fy_secret_new(pass, sizeof(pass));
    json_t *body = json_pack("{s:{s:s, s:o, s:s, s:[{s:s}], s:s}}", "server", "id", p.first_uuid,
                             "links", api_server_links(base, p.first_uuid), "OS-DCF:diskConfig",
                             "MANUAL", "security_groups", "name", "default", "adminPass", pass);
    fy_resp_add_header(resp, "Location", "%s/v2.1/servers/%s", base, p.first_uuid);
    fy_resp_json(resp, 202, body);
    return FY_E_OK;
}

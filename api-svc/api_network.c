/* A minimal Neutron v2.0: list networks; create, list, show and delete ports.
 * Ports made here are preserved when their server is deleted; binding:host_id
 * is the host of the port's ACTIVE binding (set by the conductor). */
#include <stddef.h>
#include <string.h>
#include "api.h"
#include "api_netvol.h"
#include "api_servers.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

#define POLICY "rule:admin_or_owner"
#define MAC_ATTEMPTS 8

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static fy_code forbidden(fy_err *err)
{
    return fy_fail(err, FY_E_FORBIDDEN, "Policy doesn't allow this operation to be performed.");
}

/* ---- networks ---- */

fy_code api_networks_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!api_policy_allows(req, POLICY, req->auth.project_id))
        return forbidden(err);
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&api_sql_net_list, NULL, &res, err))
        return err->code;
    json_t *list = json_array();
    for (int i = 0; list && i < PQntuples(res); i++) {
        /* Ferry's networks are shared provider networks with one implicit subnet. */
        json_t *n = json_pack("{s:s,s:s,s:s,s:b,s:b,s:b,s:[],s:s,s:s,s:s,s:i}", "id",
                              fy_db_str(res, i, "id"), "name", fy_db_str(res, i, "name"),
                              "status", "ACTIVE", "admin_state_up", 1, "shared", 1,
                              "router:external", 0, "subnets", "tenant_id", "", "project_id",
                              "", "cidr", fy_db_str(res, i, "cidr"), "mtu", 1500);
        if (!n || json_array_append_new(list, n) != 0) {
            json_decref(list);
            return fy_fail(err, FY_E_NOMEM, NULL);
        }
    }
    json_t *body = list ? json_pack("{s:o}", "networks", list) : NULL;
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

/* ---- port view ---- */

static json_t *port_json(PGresult *res, int i)
{
    const char *device = fy_db_str(res, i, "device_id");
    const char *host = fy_db_str(res, i, "binding_host");
    const char *project = fy_db_str(res, i, "project_id");
    return json_pack(
        "{s:s,s:s,s:s,s:s,s:[{s:s}],s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:{},s:{},s:s,s:o,s:o}",
        "id", fy_db_str(res, i, "id"), "name", fy_db_str(res, i, "name"), "network_id",
        fy_db_str(res, i, "network_id"), "mac_address", fy_db_str(res, i, "mac_address"),
        "fixed_ips", "ip_address", fy_db_str(res, i, "fixed_ip"), "device_id",
        device ? device : "", "device_owner", device ? "compute:nova" : "", "status",
        fy_db_str(res, i, "status"), "admin_state_up", 1, "binding:host_id", host ? host : "",
        "binding:vif_type", host ? "ovs" : "unbound", "binding:vnic_type", "normal",
        "created_at", fy_db_str(res, i, "created_at"), "binding:profile", "binding:vif_details",
        "description", "", "tenant_id", str_or_null(project), "project_id",
        str_or_null(project));
}

/* A port the caller may see, or FY_E_NOT_FOUND. */
static fy_code port_load(const fy_req *req, const char *id, PGresult **ret, fy_err *err)
{
    const char *p[] = {id};
    PGresult *res = NULL;
    fy_code rc = fy_uuid_valid(id) ? fy_db_exec_one(&api_sql_net_port_get, p, &res, err)
                                   : FY_E_NOT_FOUND;
    if (rc == FY_E_OK && !api_policy_allows(req, POLICY, fy_db_str(res, 0, "project_id"))) {
        PQclear(res);
        rc = FY_E_NOT_FOUND;
    }
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, rc, "Port %.64s could not be found.", id);
    if (rc == FY_E_OK)
        *ret = res;
    return rc;
}

static fy_code uuid_filter(const fy_req *req, const char *key, const char **ret, fy_err *err)
{
    const char *v = fy_req_query(req, key);
    if (v && !fy_uuid_valid(v))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for %s. '%.64s' is not a valid "
                       "UUID.", key, v);
    *ret = v;
    return FY_E_OK;
}

fy_code api_ports_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!api_policy_allows(req, POLICY, req->auth.project_id))
        return forbidden(err);
    const char *device = NULL, *network = NULL;
    if (uuid_filter(req, "device_id", &device, err) || uuid_filter(req, "network_id", &network, err))
        return err->code;
    const char *p[] = {req->auth.is_admin ? NULL : req->auth.project_id, device, network};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&api_sql_net_ports_list, p, &res, err))
        return err->code;
    json_t *list = json_array();
    for (int i = 0; list && i < PQntuples(res); i++) {
        json_t *port = port_json(res, i);
        if (!port || json_array_append_new(list, port) != 0) {
            json_decref(list);
            return fy_fail(err, FY_E_NOMEM, NULL);
        }
    }
    json_t *body = list ? json_pack("{s:o}", "ports", list) : NULL;
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_ports_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    if (port_load(req, req->params[0], &res, err))
        return err->code;
    json_t *body = json_pack("{s:o}", "port", port_json(res, 0));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_ports_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL, *del = NULL;
    if (port_load(req, req->params[0], &res, err))
        return err->code;
    const char *p[] = {req->params[0]};
    if (fy_db_exec(&api_sql_net_port_delete, p, &del, err))
        return err->code;
    if (fy_db_affected(del) == 0)
        return fy_fail(err, FY_E_CONFLICT, "Port %s is in use by a server; detach it first.",
                       req->params[0]);
    resp->status = 204;
    return FY_E_OK;
}

/* ---- create ---- */

typedef struct port_in {
    const char *network_id, *name, *mac;
    bool admin_up, has_admin_up;
} port_in;

static const fy_jspec port_spec[] = {
    {"network_id", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID, offsetof(port_in, network_id),
     FY_JNOPRESENT, 0, 0},
    {"name", FY_J_STRING, 0, offsetof(port_in, name), FY_JNOPRESENT, 0, 255},
    {"mac_address", FY_J_STRING, 0, offsetof(port_in, mac), FY_JNOPRESENT, 17, 17},
    {"admin_state_up", FY_J_BOOL, 0, offsetof(port_in, admin_up), offsetof(port_in, has_admin_up),
     0, 0},
};

typedef struct port_create {
    const fy_req *req;
    port_in in;
    char id[FY_UUID_LEN + 1];
} port_create;

static bool mac_valid(const char *m)
{
    for (int i = 0; i < 17; i++) {
        bool colon = i % 3 == 2;
        if (colon ? m[i] != ':' : !strchr("0123456789abcdefABCDEF", m[i]) || !m[i])
            return false;
    }
    return m[17] == '\0';
}

static fy_code draw_mac(char out[18], fy_err *err)
{
    unsigned char b[3];
    if (!fy_random_bytes(b, sizeof(b)))
        return fy_fail(err, FY_E_INTERNAL, "no randomness for a MAC address");
    snprintf(out, 18, "fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2]);
    return FY_E_OK;
}

static fy_code port_create_txn(void *arg, fy_err *err)
{
    port_create *c = arg;
    const char *q[] = {c->in.network_id};
    _cleanup_pgres_ PGresult *net = NULL, *ip = NULL;
    fy_code rc = fy_db_exec_one(&api_sql_network_lock, q, &net, err);
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, rc, "Network %s could not be found.", c->in.network_id);
    if (rc)
        return rc;
    rc = fy_db_exec_one(&api_sql_network_free_ip, q, &ip, err);
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, FY_E_CONFLICT, "No more IP addresses available on network %s.",
                       c->in.network_id);
    if (rc)
        return rc;
    for (int attempt = 0; attempt < MAC_ATTEMPTS; attempt++) {
        char mac[18];
        if (c->in.mac)
            snprintf(mac, sizeof mac, "%s", c->in.mac);
        else if (draw_mac(mac, err))
            return err->code;
        fy_uuid_v4(c->id);
        const char *ins[] = {c->id, c->in.network_id, c->in.name ? c->in.name : "", mac,
                             fy_db_str(ip, 0, "ip"), c->req->auth.project_id};
        _cleanup_pgres_ PGresult *res = NULL;
        if (fy_db_exec(&api_sql_net_port_insert, ins, &res, err))
            return err->code;
        if (fy_db_affected(res) == 1)
            return FY_E_OK;
        if (c->in.mac)
            return fy_fail(err, FY_E_CONFLICT, "Unable to complete operation for network %s. "
                           "The mac address %s is in use.", c->in.network_id, c->in.mac);
    }
    return fy_fail(err, FY_E_CONFLICT, "Could not allocate a unique MAC address.");
}

fy_code api_ports_create(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!api_policy_allows(req, POLICY, req->auth.project_id))
        return forbidden(err);
    if (!fy_uuid_valid(req->auth.project_id))
        return fy_fail(err, FY_E_FORBIDDEN, "A project-scoped token is required.");
    const json_t *port = json_object_get(req->json, "port");
    if (!json_is_object(port) || json_object_size(req->json) != 1)
        return fy_fail(err, FY_E_BAD_REQUEST, "Resource body required: {\"port\": {...}}");
    port_create c = {.req = req};
    if (fy_json_parse(port, port_spec, ELEMENTSOF(port_spec), &c.in, false, "port", err))
        return err->code;
    if (c.in.mac && !mac_valid(c.in.mac))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for mac_address. '%s' is not a "
                       "valid MAC address.", c.in.mac);
    if (c.in.has_admin_up && !c.in.admin_up)
        return fy_fail(err, FY_E_BAD_REQUEST, "admin_state_up false is not supported.");
    if (fy_db_txn(port_create_txn, &c, false, err))
        return err->code;
    const char *p[] = {c.id};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec_one(&api_sql_net_port_get, p, &res, err))
        return err->code;
    json_t *body = json_pack("{s:o}", "port", port_json(res, 0));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 201, body);
    return FY_E_OK;
}

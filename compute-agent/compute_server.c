/* The agent's internal API: the route table and its handlers. */
#include <limits.h>
#include <stddef.h>
#include "compute.h"
#include "compute_fault.h"
#include "compute_host.h"
#include "compute_image.h"
#include "compute_mig.h"
#include "fy_health.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_metrics_http.h"
#include "fy_util.h"

/* Largest root disk a flavor may ask of this host (GiB); beyond it the sparse
 * file would exceed what common file systems allow. */
#define COMPUTE_MAX_ROOT_GB 16384
#define COMPUTE_MAX_PORTS 64

static fy_code path_uuid(const fy_req *req, const char **ret, fy_err *err)
{
    const char *uuid = req->nparams > 0 ? req->params[0] : NULL;
    if (!fy_uuid_valid(uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid instance uuid '%s' in the path",
                       uuid ? uuid : "");
    *ret = uuid;
    return FY_E_OK;
}

static fy_code answer_instance(fy_resp *resp, json_t *info /* stolen */, fy_err *err)
{
    json_t *body = json_pack("{s:o}", "instance", info);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

/* Step calls without parameters take `{}` or no body at all. */
static fy_code empty_body(const fy_req *req, fy_err *err)
{
    if (req->json && !json_is_object(req->json))
        return fy_fail(err, FY_E_BAD_REQUEST, "The request body must be a JSON object");
    return FY_E_OK;
}

typedef struct spawn_body {
    json_t *instance;
    json_t *ports;
    json_t *image;
} spawn_body;

typedef struct spawn_instance {
    const char *uuid;
    long long id;
    json_t *flavor;
    const char *image_ref;
} spawn_instance;

typedef struct spawn_port {
    const char *id;
    const char *mac_address;
} spawn_port;

static const fy_jspec spawn_spec[] = {
    {"instance", FY_J_OBJECT, FY_J_REQUIRED, offsetof(spawn_body, instance), FY_JNOPRESENT, 0, 0},
    {"ports", FY_J_ARRAY, 0, offsetof(spawn_body, ports), FY_JNOPRESENT, 0, 0},
    {"image", FY_J_OBJECT, FY_J_NULLABLE, offsetof(spawn_body, image), FY_JNOPRESENT, 0, 0},
};

static const fy_jspec instance_spec[] = {
    {"uuid", FY_J_STRING, FY_J_UUID, offsetof(spawn_instance, uuid), FY_JNOPRESENT, 0, 0},
    {"id", FY_J_INT, FY_J_REQUIRED, offsetof(spawn_instance, id), FY_JNOPRESENT, 1, INT_MAX},
    {"flavor", FY_J_OBJECT, FY_J_REQUIRED, offsetof(spawn_instance, flavor), FY_JNOPRESENT, 0,
     0},
    {"image_ref", FY_J_STRING, FY_J_NULLABLE, offsetof(spawn_instance, image_ref),
     FY_JNOPRESENT, 0, 0},
};

typedef struct spawn_flavor {
    long long root_gb;
} spawn_flavor;

static const fy_jspec flavor_spec[] = {
    {"root_gb", FY_J_INT, FY_J_REQUIRED, offsetof(spawn_flavor, root_gb), FY_JNOPRESENT, 0,
     COMPUTE_MAX_ROOT_GB},
};

static const fy_jspec port_spec[] = {
    {"id", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID, offsetof(spawn_port, id), FY_JNOPRESENT, 0,
     0},
    {"mac_address", FY_J_STRING, FY_J_REQUIRED | FY_J_NONEMPTY,
     offsetof(spawn_port, mac_address), FY_JNOPRESENT, 1, 32},
};

typedef struct spawn_image {
    const char *id;
} spawn_image;

static const fy_jspec image_spec[] = {
    {"id", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID, offsetof(spawn_image, id), FY_JNOPRESENT, 0,
     0},
};

/* ports -> the guest's VIFs: [{"port_id", "mac_address"}]. */
static fy_code parse_vifs(const json_t *ports, json_t **ret, fy_err *err)
{
    if (json_array_size(ports) > COMPUTE_MAX_PORTS)
        return fy_fail(err, FY_E_BAD_REQUEST, "Too many ports: %zu (at most %d)",
                       json_array_size(ports), COMPUTE_MAX_PORTS);
    json_t *vifs = json_array();
    if (!vifs)
        return fy_fail(err, FY_E_NOMEM, NULL);
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) {
        char where[32];
        snprintf(where, sizeof(where), "ports.%zu", i);
        spawn_port port = {0};
        if (!json_is_object(p)) {
            json_decref(vifs);
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for field/attribute %s. Value: not an object", where);
        }
        if (fy_json_parse(p, port_spec, ELEMENTSOF(port_spec), &port, true, where, err)) {
            json_decref(vifs);
            return err->code;
        }
        if (json_array_append_new(vifs, json_pack("{s:s, s:s}", "port_id", port.id,
                                                  "mac_address", port.mac_address)) < 0) {
            json_decref(vifs);
            return fy_fail(err, FY_E_NOMEM, NULL);
        }
    }
    *ret = vifs;
    return FY_E_OK;
}

/* The image to boot from: body.image.id, else instance.image_ref; NULL for none. */
static fy_code parse_image(const spawn_body *b, const spawn_instance *inst, const char **ret,
                           fy_err *err)
{
    *ret = NULL;
    if (b->image) {
        spawn_image img = {0};
        if (fy_json_parse(b->image, image_spec, ELEMENTSOF(image_spec), &img, true, "image",
                          err))
            return err->code;
        *ret = img.id;
        return FY_E_OK;
    }
    if (inst->image_ref && *inst->image_ref) {
        if (!fy_uuid_valid(inst->image_ref))
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for field/attribute instance.image_ref. Value: %s",
                           inst->image_ref);
        *ret = inst->image_ref;
    }
    return FY_E_OK;
}

static fy_code handle_spawn(fy_req *req, fy_resp *resp, fy_err *err)
{
    compute_ctx *ctx = req->svc;
    const char *uuid;
    if (path_uuid(req, &uuid, err))
        return err->code;
    if (!json_is_object(req->json))
        return fy_fail(err, FY_E_BAD_REQUEST, "The request body must be a JSON object");
    if (compute_fault_check("spawn", err))
        return err->code;

    spawn_body b = {0};
    spawn_instance inst = {0};
    spawn_flavor fl = {0};
    if (fy_json_parse(req->json, spawn_spec, ELEMENTSOF(spawn_spec), &b, true, NULL, err) ||
        fy_json_parse(b.instance, instance_spec, ELEMENTSOF(instance_spec), &inst, true,
                      "instance", err) ||
        fy_json_parse(inst.flavor, flavor_spec, ELEMENTSOF(flavor_spec), &fl, true,
                      "instance.flavor", err))
        return err->code;
    if (inst.uuid && !fy_streq(inst.uuid, uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "instance.uuid %s does not match the path (%s)",
                       inst.uuid, uuid);

    const char *image_id;
    if (parse_image(&b, &inst, &image_id, err))
        return err->code;
    json_t *vifs = NULL;
    json_t *no_ports = NULL;
    if (!b.ports)
        b.ports = no_ports = json_array();
    fy_code rc = parse_vifs(b.ports, &vifs, err);
    json_decref(no_ports);
    if (rc)
        return rc;

    _cleanup_free_ char *image_path = NULL;
    if (image_id && compute_image_get(ctx->images, image_id, &image_path, err)) {
        json_decref(vifs);
        return err->code;
    }
    compute_spawn_spec spec = {
        .uuid = uuid,
        .instance_id = inst.id,
        .flavor = inst.flavor,
        .root_gb = fl.root_gb,
        .image_id = image_id,
        .image_path = image_path,
        .vifs = vifs,
    };
    json_t *info = NULL;
    rc = ctx->driver->ops->spawn(ctx->driver, &spec, &info, err);
    json_decref(vifs);
    if (rc)
        return rc;
    fy_info("spawned instance %s", uuid);
    return answer_instance(resp, info, err);
}

static fy_code handle_destroy(fy_req *req, fy_resp *resp, fy_err *err)
{
    compute_ctx *ctx = req->svc;
    const char *uuid;
    if (path_uuid(req, &uuid, err) || empty_body(req, err))
        return err->code;
    if (ctx->driver->ops->destroy(ctx->driver, uuid, err))
        return err->code;
    fy_info("destroyed instance %s", uuid);
    json_t *body = json_pack("{s:{s:s, s:b}}", "instance", "uuid", uuid, "deleted", 1);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

typedef fy_code (*power_fn)(compute_driver *, const char *, json_t **, fy_err *);

static fy_code power(fy_req *req, fy_resp *resp, bool on, fy_err *err)
{
    compute_ctx *ctx = req->svc;
    const char *uuid;
    if (path_uuid(req, &uuid, err) || empty_body(req, err))
        return err->code;
    power_fn fn = on ? ctx->driver->ops->power_on : ctx->driver->ops->power_off;
    json_t *info = NULL;
    if (fn(ctx->driver, uuid, &info, err))
        return err->code;
    fy_info("powered %s instance %s", on ? "on" : "off", uuid);
    return answer_instance(resp, info, err);
}

static fy_code handle_power_on(fy_req *req, fy_resp *resp, fy_err *err)
{
    return power(req, resp, true, err);
}

static fy_code handle_power_off(fy_req *req, fy_resp *resp, fy_err *err)
{
    return power(req, resp, false, err);
}

static fy_code handle_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    compute_ctx *ctx = req->svc;
    const char *uuid;
    json_t *info = NULL;
    if (path_uuid(req, &uuid, err) || ctx->driver->ops->get_info(ctx->driver, uuid, &info, err))
        return err->code;
    return answer_instance(resp, info, err);
}

static fy_code handle_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    compute_ctx *ctx = req->svc;
    json_t *list = NULL;
    if (ctx->driver->ops->list(ctx->driver, &list, err))
        return err->code;
    json_t *body = json_pack("{s:o, s:s}", "instances", list, "host", ctx->cfg->host);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

static fy_code handle_healthz(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    json_t *body = json_pack("{s:s}", "status", "ok");
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

const fy_route compute_routes[] = {
    {"GET", "/healthz", handle_healthz, FY_R_PUBLIC},
    {"GET", "/readyz", fy_health_handler, FY_R_PUBLIC},
    {"GET", "/metrics", fy_metrics_handler, FY_R_PUBLIC},
    {"GET", "/internal/v1/instances", handle_list, FY_R_INTERNAL},
    {"GET", "/internal/v1/instances/{}", handle_show, FY_R_INTERNAL},
    {"POST", "/internal/v1/instances/{}/spawn", handle_spawn, FY_R_INTERNAL},
    {"POST", "/internal/v1/instances/{}/destroy", handle_destroy, FY_R_INTERNAL},
    {"POST", "/internal/v1/instances/{}/power_on", handle_power_on, FY_R_INTERNAL},
    {"POST", "/internal/v1/instances/{}/power_off", handle_power_off, FY_R_INTERNAL},
    {"POST", "/internal/v1/migrations/{}/{}", compute_mig_handle_step, FY_R_INTERNAL},
    {"PUT", "/internal/v1/transfer/{}/disk", compute_transfer_handle_put,
     FY_R_INTERNAL | FY_R_UPLOAD},
    {"GET", "/internal/v1/faults", compute_fault_handle_get, FY_R_INTERNAL},
    {"PUT", "/internal/v1/faults", compute_fault_handle_put, FY_R_INTERNAL},
    {"DELETE", "/internal/v1/faults", compute_fault_handle_delete, FY_R_INTERNAL},
    {"GET", "/internal/v1/settings", compute_settings_handle_get, FY_R_INTERNAL},
    {"PUT", "/internal/v1/settings", compute_settings_handle_put, FY_R_INTERNAL},
    {"GET", "/internal/v1/host/uptime", compute_host_handle_uptime, FY_R_INTERNAL},
};

const size_t compute_nroutes = ELEMENTSOF(compute_routes);

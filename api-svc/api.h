/* api-svc — the public REST API (Nova compute v2.1, Keystone v3 tokens, Glance v2 images).
 * Handlers share fy_handler's signature; the route table is api_routes.c. */
#pragma once
#include <stdio.h>
#include "fy_httpd.h"

/* The API's configuration (table in api_config.c). */
typedef struct api_config {
    char *db_url;
    char *service_secret;
    char *host;
    char *bind;
    long long port;
    bool reuse_port;           /* share the port with other API processes (SO_REUSEPORT) */
    long long threads;
    char *log_level;
    char *log_format;
    char *public_url;          /* e.g. http://127.0.0.1:8774 — base for links and the catalog */
    char *region;              /* RegionOne */
    long long token_ttl;       /* seconds */
    char *images_dir;          /* where image files are kept */
    long long max_body;        /* JSON body limit */
    long long max_image_size;  /* upload limit */
    long long service_down_time;
    char *policy_file;         /* optional per-action overrides */
    char *volumes_dir;         /* volume files (shared storage); default <images_dir>/../volumes */
} api_config;

typedef struct api_ctx {
    api_config cfg;
} api_ctx;

/* The service context handed to every handler as req->svc. */
static inline const api_config *api_cfg(const fy_req *req)
{
    return &((const api_ctx *)req->svc)->cfg;
}

/* Config (api_config.c): defaults -> file -> FERRY_* environment; fills host and
 * public_url when left empty.  api_config_free accepts a zeroed or loaded struct. */
fy_code api_config_load(api_config *cfg, const char *file, fy_err *err);
void api_config_free(api_config *cfg);
void api_config_dump(const api_config *cfg, FILE *out);

/* Microversions this API implements: 2.1 .. 2.API_MV_MAX_MINOR.  The maximum is the
 * one version whose shapes the endpoints follow (servers, services, hypervisors,
 * flavors match the 2.90 recordings). */
#define API_MV_MIN_MAJOR 2
#define API_MV_MIN_MINOR 1
#define API_MV_MAX_MINOR 90

/* Parses a version request value ("2.53", "latest"); FY_E_BAD_REQUEST on bad format,
 * FY_E_NOT_ACCEPTABLE outside [2.1, max].  On 406 the outputs still hold the
 * requested version (Nova echoes it in the response headers). */
fy_code api_mv_parse(const char *value, int *major, int *minor, fy_err *err);
/* The compute version string from the request headers (OpenStack-API-Version first,
 * then X-OpenStack-Nova-API-Version), or NULL.  Copies into buf. */
const char *api_mv_requested(const fy_req *req, char *buf, size_t size);

extern const fy_route api_routes[];
extern const size_t api_nroutes;

/* httpd hooks (api_auth.c, api_microversion.c, api_errors.c) */
fy_code api_authenticate(fy_req *req, fy_err *err);
fy_code api_pre_dispatch(fy_req *req, fy_resp *resp, fy_err *err);
void api_render_error(fy_req *req, const fy_err *e, fy_resp *resp);
void api_decorate(fy_req *req, fy_resp *resp);

/* True when req's microversion >= major.minor. */
bool api_mv_ge(const fy_req *req, int major, int minor);

/* Policy (api_policy.c): FY_E_FORBIDDEN with Nova's message unless allowed.
 * owner_project may be NULL for rules that are admin-only or any-authenticated. */
fy_code api_policy_check(const fy_req *req, const char *rule, const char *owner_project, fy_err *err);
fy_code api_policy_load(const char *file, fy_err *err);
/* Same check on a policy text ("role:admin", "rule:admin_or_owner", "@", "!", and
 * "a or b"), without a registered rule name. */
bool api_policy_allows(const fy_req *req, const char *policy, const char *owner_project);

/* --- version discovery (api_versions.c) --- */
fy_code api_versions_root(fy_req *, fy_resp *, fy_err *);
fy_code api_versions_v21(fy_req *, fy_resp *, fy_err *);

/* --- identity (api_identity.c) --- */
fy_code api_identity_root(fy_req *, fy_resp *, fy_err *);     /* GET /identity */
fy_code api_identity_v3(fy_req *, fy_resp *, fy_err *);       /* GET /identity/v3 */
fy_code api_tokens_issue(fy_req *, fy_resp *, fy_err *);      /* POST /identity/v3/auth/tokens */
fy_code api_tokens_validate(fy_req *, fy_resp *, fy_err *);   /* GET/HEAD /identity/v3/auth/tokens */
fy_code api_tokens_revoke(fy_req *, fy_resp *, fy_err *);     /* DELETE /identity/v3/auth/tokens */
fy_code api_projects_list(fy_req *, fy_resp *, fy_err *);     /* GET /identity/v3/projects */
fy_code api_projects_show(fy_req *, fy_resp *, fy_err *);     /* GET /identity/v3/projects/{} */
fy_code api_users_list(fy_req *, fy_resp *, fy_err *);        /* GET /identity/v3/users */
fy_code api_users_show(fy_req *, fy_resp *, fy_err *);        /* GET /identity/v3/users/{} */

/* --- flavors (api_flavors.c) --- */
fy_code api_flavors_list(fy_req *, fy_resp *, fy_err *);
fy_code api_flavors_detail(fy_req *, fy_resp *, fy_err *);
fy_code api_flavors_show(fy_req *, fy_resp *, fy_err *);
fy_code api_flavors_create(fy_req *, fy_resp *, fy_err *);
fy_code api_flavors_delete(fy_req *, fy_resp *, fy_err *);
fy_code api_flavor_extra_specs(fy_req *, fy_resp *, fy_err *);

/* --- images (api_images.c) --- */
fy_code api_image_versions(fy_req *, fy_resp *, fy_err *);
fy_code api_images_list(fy_req *, fy_resp *, fy_err *);
fy_code api_images_create(fy_req *, fy_resp *, fy_err *);
fy_code api_images_show(fy_req *, fy_resp *, fy_err *);
fy_code api_images_delete(fy_req *, fy_resp *, fy_err *);
fy_code api_images_upload(fy_req *, fy_resp *, fy_err *);
fy_code api_images_download(fy_req *, fy_resp *, fy_err *);

/* --- servers (api_servers*.c) --- */
fy_code api_servers_list(fy_req *, fy_resp *, fy_err *);
fy_code api_servers_detail(fy_req *, fy_resp *, fy_err *);
fy_code api_servers_create(fy_req *, fy_resp *, fy_err *);
fy_code api_servers_show(fy_req *, fy_resp *, fy_err *);
fy_code api_servers_delete(fy_req *, fy_resp *, fy_err *);
fy_code api_servers_action(fy_req *, fy_resp *, fy_err *);    /* os-start, os-stop, ... */

/* --- os-services, os-hypervisors, limits (api_services.c, api_hypervisors.c) --- */
fy_code api_services_list(fy_req *, fy_resp *, fy_err *);
fy_code api_services_update(fy_req *, fy_resp *, fy_err *);   /* PUT /os-services/{id} (2.53) */

fy_code api_hypervisors_list(fy_req *, fy_resp *, fy_err *);
fy_code api_hypervisors_detail(fy_req *, fy_resp *, fy_err *);
fy_code api_hypervisors_show(fy_req *, fy_resp *, fy_err *);
fy_code api_availability_zones(fy_req *, fy_resp *, fy_err *);
fy_code api_aggregates_list(fy_req *, fy_resp *, fy_err *);       /* api_aggregates.c */

/* --- network API, Neutron v2.0 subset (api_network.c) --- */
fy_code api_networks_list(fy_req *, fy_resp *, fy_err *);
fy_code api_ports_list(fy_req *, fy_resp *, fy_err *);
fy_code api_ports_create(fy_req *, fy_resp *, fy_err *);
fy_code api_ports_show(fy_req *, fy_resp *, fy_err *);
fy_code api_ports_delete(fy_req *, fy_resp *, fy_err *);

/* --- volume API, Cinder v3 subset, and server volume attachments (api_volume.c) --- */
fy_code api_volumes_list(fy_req *, fy_resp *, fy_err *);
fy_code api_volumes_detail(fy_req *, fy_resp *, fy_err *);
fy_code api_volumes_create(fy_req *, fy_resp *, fy_err *);
fy_code api_volumes_show(fy_req *, fy_resp *, fy_err *);
fy_code api_volumes_delete(fy_req *, fy_resp *, fy_err *);
fy_code api_volume_attachments_list(fy_req *, fy_resp *, fy_err *);
fy_code api_volume_attachments_create(fy_req *, fy_resp *, fy_err *);

/* --- migrations, instance actions, quotas (api_migrations.c, api_instance_actions.c,
 * api_quota.c; the server actions are in api_migrations.h) --- */
fy_code api_server_migrations_list(fy_req *, fy_resp *, fy_err *);   /* 2.23+ */
fy_code api_server_migrations_show(fy_req *, fy_resp *, fy_err *);   /* 2.23+ */
fy_code api_server_migrations_action(fy_req *, fy_resp *, fy_err *); /* force_complete, 2.22+ */
fy_code api_server_migrations_abort(fy_req *, fy_resp *, fy_err *);  /* DELETE, 2.24+ */
fy_code api_os_migrations_list(fy_req *, fy_resp *, fy_err *);
fy_code api_instance_actions_list(fy_req *, fy_resp *, fy_err *);
fy_code api_instance_actions_show(fy_req *, fy_resp *, fy_err *);
fy_code api_limits(fy_req *, fy_resp *, fy_err *);
fy_code api_quota_show(fy_req *, fy_resp *, fy_err *);
fy_code api_quota_detail(fy_req *, fy_resp *, fy_err *);
fy_code api_quota_defaults(fy_req *, fy_resp *, fy_err *);
fy_code api_quota_update(fy_req *, fy_resp *, fy_err *);
fy_code api_quota_delete(fy_req *, fy_resp *, fy_err *);

/* --- quotas and limits of the network and volume APIs (api_netvol_quota.c) --- */
fy_code api_volume_quota_show(fy_req *, fy_resp *, fy_err *);
fy_code api_volume_quota_defaults(fy_req *, fy_resp *, fy_err *);
fy_code api_volume_limits(fy_req *, fy_resp *, fy_err *);
fy_code api_network_quota_show(fy_req *, fy_resp *, fy_err *);
fy_code api_network_quota_default(fy_req *, fy_resp *, fy_err *);

/* --- health --- */
fy_code api_healthz(fy_req *, fy_resp *, fy_err *);

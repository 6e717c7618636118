/* The API's one route table.  Order matters only for readability: matching is exact. */
#include "api.h"
#include "fy_health.h"
#include "fy_metrics_http.h"

const fy_route api_routes[] = {
    {"GET", "/", api_versions_root, FY_R_PUBLIC},
    {"GET", "/v2.1", api_versions_v21, FY_R_PUBLIC},
    {"GET", "/healthz", api_healthz, FY_R_PUBLIC},
    {"GET", "/readyz", fy_health_handler, FY_R_PUBLIC},
    {"GET", "/metrics", fy_metrics_handler, FY_R_PUBLIC},

    {"GET", "/identity", api_identity_root, FY_R_PUBLIC},
    {"GET", "/identity/v3", api_identity_v3, FY_R_PUBLIC},
    {"POST", "/identity/v3/auth/tokens", api_tokens_issue, FY_R_PUBLIC},
    {"GET", "/identity/v3/auth/tokens", api_tokens_validate, 0},
    {"DELETE", "/identity/v3/auth/tokens", api_tokens_revoke, 0},
    {"GET", "/identity/v3/projects", api_projects_list, 0},
    {"GET", "/identity/v3/projects/{}", api_projects_show, 0},
    {"GET", "/identity/v3/users", api_users_list, 0},
    {"GET", "/identity/v3/users/{}", api_users_show, 0},

    {"GET", "/v2.1/flavors", api_flavors_list, 0},
    {"POST", "/v2.1/flavors", api_flavors_create, 0},
    {"GET", "/v2.1/flavors/detail", api_flavors_detail, 0},
    {"GET", "/v2.1/flavors/{}", api_flavors_show, 0},
    {"DELETE", "/v2.1/flavors/{}", api_flavors_delete, 0},
    {"GET", "/v2.1/flavors/{}/os-extra_specs", api_flavor_extra_specs, 0},

    {"GET", "/image", api_image_versions, FY_R_PUBLIC},
    {"GET", "/image/v2/images", api_images_list, 0},
    {"POST", "/image/v2/images", api_images_create, 0},
    {"GET", "/image/v2/images/{}", api_images_show, 0},
    {"DELETE", "/image/v2/images/{}", api_images_delete, 0},
    {"PUT", "/image/v2/images/{}/file", api_images_upload, FY_R_UPLOAD},
    {"GET", "/image/v2/images/{}/file", api_images_download, 0},

    {"GET", "/v2.1/servers", api_servers_list, 0},
    {"POST", "/v2.1/servers", api_servers_create, 0},
    {"GET", "/v2.1/servers/detail", api_servers_detail, 0},
    {"GET", "/v2.1/servers/{}", api_servers_show, 0},
    {"DELETE", "/v2.1/servers/{}", api_servers_delete, 0},
    {"POST", "/v2.1/servers/{}/action", api_servers_action, 0},

    {"GET", "/v2.1/os-services", api_services_list, 0},
    {"PUT", "/v2.1/os-services/{}", api_services_update, 0},
    {"GET", "/v2.1/os-hypervisors", api_hypervisors_list, 0},
    {"GET", "/v2.1/os-hypervisors/detail", api_hypervisors_detail, 0},
    {"GET", "/v2.1/os-hypervisors/{}", api_hypervisors_show, 0},
    {"GET", "/v2.1/os-availability-zone", api_availability_zones, 0},
    {"GET", "/v2.1/os-aggregates", api_aggregates_list, 0},

    {"GET", "/v2.1/servers/{}/migrations", api_server_migrations_list, 0},
    {"GET", "/v2.1/servers/{}/migrations/{}", api_server_migrations_show, 0},
    {"DELETE", "/v2.1/servers/{}/migrations/{}", api_server_migrations_abort, 0},
    {"POST", "/v2.1/servers/{}/migrations/{}/action", api_server_migrations_action, 0},
    {"GET", "/v2.1/os-migrations", api_os_migrations_list, 0},
    {"GET", "/v2.1/servers/{}/os-instance-actions", api_instance_actions_list, 0},
    {"GET", "/v2.1/servers/{}/os-instance-actions/{}", api_instance_actions_show, 0},
    {"GET", "/v2.1/limits", api_limits, 0},
    {"GET", "/v2.1/os-quota-sets/{}", api_quota_show, 0},
    {"PUT", "/v2.1/os-quota-sets/{}", api_quota_update, 0},
    {"DELETE", "/v2.1/os-quota-sets/{}", api_quota_delete, 0},
    {"GET", "/v2.1/os-quota-sets/{}/defaults", api_quota_defaults, 0},
    {"GET", "/v2.1/os-quota-sets/{}/detail", api_quota_detail, 0},

    {"GET", "/network/v2.0/networks", api_networks_list, 0},
    {"GET", "/network/v2.0/ports", api_ports_list, 0},
    {"POST", "/network/v2.0/ports", api_ports_create, 0},
    {"GET", "/network/v2.0/ports/{}", api_ports_show, 0},
    {"DELETE", "/network/v2.0/ports/{}", api_ports_delete, 0},
    {"GET", "/network/v2.0/quotas/{}", api_network_quota_show, 0},
    {"GET", "/network/v2.0/quotas/{}/default", api_network_quota_default, 0},

    {"GET", "/volume/v3/{}/volumes", api_volumes_list, 0},
    {"POST", "/volume/v3/{}/volumes", api_volumes_create, 0},
    {"GET", "/volume/v3/{}/volumes/detail", api_volumes_detail, 0},
    {"GET", "/volume/v3/{}/volumes/{}", api_volumes_show, 0},
    {"DELETE", "/volume/v3/{}/volumes/{}", api_volumes_delete, 0},
    {"GET", "/volume/v3/{}/os-quota-sets/{}", api_volume_quota_show, 0},
    {"GET", "/volume/v3/{}/os-quota-sets/{}/defaults", api_volume_quota_defaults, 0},
    {"GET", "/volume/v3/{}/limits", api_volume_limits, 0},
    {"GET", "/v2.1/servers/{}/os-volume_attachments", api_volume_attachments_list, 0},
    {"POST", "/v2.1/servers/{}/os-volume_attachments", api_volume_attachments_create, 0},
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

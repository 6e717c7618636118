/* The API's one route table.  Order matters only for readability: matching is exact. */
#include "api.h"

const fy_route api_routes[] = {
    {"GET", "/", api_versions_root, FY_R_PUBLIC},
    {"GET", "/v2.1", api_versions_v21, FY_R_PUBLIC},
    {"GET", "/healthz", api_healthz, FY_R_PUBLIC},

    {"GET", "/identity", api_identity_root, FY_R_PUBLIC},
    {"GET", "/identity/v3", api_identity_v3, FY_R_PUBLIC},
    {"POST", "/identity/v3/auth/tokens", api_tokens_issue, FY_R_PUBLIC},
    {"GET", "/identity/v3/auth/tokens", api_tokens_validate, 0},
    {"DELETE", "/identity/v3/auth/tokens", api_tokens_revoke, 0},

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
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

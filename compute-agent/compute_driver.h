/* compute_driver — the virt-driver interface.
 *
 * A driver is a table of operations plus private state.  Every operation is
 * idempotent with respect to the guest's end state: spawning a guest that
 * exists returns its info, destroying a missing guest succeeds.  Operations on
 * one guest are serialised by the driver; different guests run in parallel.
 *
 * Guest info is a JSON object:
 *   {"uuid", "name", "power_state" (Nova's numbers), "state" ("running", ...),
 *    "disk_path", "disk_size", "vifs": [{"port_id", "mac_address"}], "flavor", ...}
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include "fy_cleanup.h"
#include "fy_err.h"

/* Nova's power states. */
enum {
    COMPUTE_POWER_NOSTATE = 0,
    COMPUTE_POWER_RUNNING = 1,
    COMPUTE_POWER_PAUSED = 3,
    COMPUTE_POWER_SHUTDOWN = 4,
    COMPUTE_POWER_CRASHED = 6,
    COMPUTE_POWER_SUSPENDED = 7,
};
const char *compute_power_state_name(int power_state);   /* "running", ... */

typedef struct compute_driver_conf {
    const char *instances_path;
    long long spawn_delay_ms;    /* fake driver: artificial delay of spawn */
} compute_driver_conf;

/* What spawn needs, already validated by the caller. */
typedef struct compute_spawn_spec {
    const char *uuid;
    long long instance_id;       /* instances.id, for the "instance-%08x" name */
    const json_t *flavor;        /* flavor snapshot (object), copied into the guest */
    long long root_gb;
    const char *image_id;        /* NULL when there is no image */
    const char *image_path;      /* cached image file, NULL when there is no image */
    const json_t *vifs;          /* array of {"port_id", "mac_address"} */
} compute_spawn_spec;

typedef struct compute_driver compute_driver;

typedef struct compute_driver_ops {
    const char *name;
    fy_code (*init)(compute_driver *drv, const compute_driver_conf *conf, fy_err *err);
    void (*cleanup)(compute_driver *drv);
    fy_code (*spawn)(compute_driver *drv, const compute_spawn_spec *spec, json_t **ret_info,
                     fy_err *err);
    /* Stops and removes the guest and its disk; FY_E_OK when absent. */
    fy_code (*destroy)(compute_driver *drv, const char *uuid, fy_err *err);
    fy_code (*power_on)(compute_driver *drv, const char *uuid, json_t **ret_info, fy_err *err);
    fy_code (*power_off)(compute_driver *drv, const char *uuid, json_t **ret_info, fy_err *err);
    /* FY_E_NOT_FOUND when the guest does not exist. */
    fy_code (*get_info)(compute_driver *drv, const char *uuid, json_t **ret_info, fy_err *err);
    /* Array of guest infos, ordered by uuid. */
    fy_code (*list)(compute_driver *drv, json_t **ret_list, fy_err *err);
} compute_driver_ops;

struct compute_driver {
    const compute_driver_ops *ops;
    void *priv;
};

extern const compute_driver_ops compute_fake_ops;

/* Looks a driver up by name ("fake") and initialises it.  FY_E_CONFIG for an
 * unknown name. */
fy_code compute_driver_new(const char *name, const compute_driver_conf *conf,
                           compute_driver **ret, fy_err *err);
void compute_driver_free(compute_driver *drv);
FY_DEFINE_FREEP(compute_driver, compute_driver_free)

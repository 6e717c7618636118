/* Driver registry: picks an implementation of compute_driver_ops by name. */
#include <string.h>
#include "compute_driver.h"
#include "fy_util.h"

static const compute_driver_ops *const compute_drivers[] = {
    &compute_fake_ops,
#ifdef FERRY_HAVE_LIBVIRT
    &compute_libvirt_ops,
#endif
};

const char *compute_power_state_name(int power_state)
{
    switch (power_state) {
    case COMPUTE_POWER_NOSTATE: return "nostate";
    case COMPUTE_POWER_RUNNING: return "running";
    case COMPUTE_POWER_PAUSED: return "paused";
    case COMPUTE_POWER_SHUTDOWN: return "shutdown";
    case COMPUTE_POWER_CRASHED: return "crashed";
    case COMPUTE_POWER_SUSPENDED: return "suspended";
    default: return "unknown";
    }
}

fy_code compute_driver_new(const char *name, const compute_driver_conf *conf,
                           compute_driver **ret, fy_err *err)
{
    const compute_driver_ops *ops = NULL;
    for (size_t i = 0; i < ELEMENTSOF(compute_drivers); i++)
        if (fy_streq(compute_drivers[i]->name, name))
            ops = compute_drivers[i];
    if (!ops)
        return fy_fail(err, FY_E_CONFIG, "unknown virt driver '%s'", name ? name : "(null)");

    compute_driver *drv = calloc(1, sizeof(*drv));
    if (!drv)
        return fy_fail(err, FY_E_NOMEM, NULL);
    drv->ops = ops;
    if (ops->init(drv, conf, err)) {
        free(drv);
        return err->code;
    }
    *ret = drv;
    return FY_E_OK;
}

void compute_driver_free(compute_driver *drv)
{
    if (!drv)
        return;
    if (drv->ops->cleanup)
        drv->ops->cleanup(drv);
    free(drv);
}

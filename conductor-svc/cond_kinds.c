/* Task kind -> handler.  A new flow (live_migrate, migrate, resize, confirm,
 * revert) is a new file with its handler and one line here. */
#include "cond.h"
#include "fy_cleanup.h"

const cond_kind cond_kinds[] = {
    {"build", cond_build_run},
    {"delete", cond_delete_run},
    {"start", cond_start_run},
    {"stop", cond_stop_run},
    {"migrate", cond_migrate_run},
    {"resize", cond_resize_run},
    {"confirm", cond_confirm_run},
    {"revert", cond_revert_run},
    {"live_migrate", cond_live_run},
};

const size_t cond_nkinds = ELEMENTSOF(cond_kinds);

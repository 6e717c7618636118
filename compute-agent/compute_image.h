/* compute_image — the per-host image cache: <state_dir>/_base/<image id>.
 *
 * An image is downloaded once from <image_url>/v2/images/<id>/file with the
 * service credential, into a temporary file renamed into place, so a cache
 * entry is always complete.  Concurrent requests for one image wait for a
 * single download (flock on a per-image lock file: works across threads and
 * across processes sharing the directory). */
#pragma once
#include "fy_cleanup.h"
#include "fy_err.h"

typedef struct compute_image_cache compute_image_cache;

fy_code compute_image_cache_new(const char *base_dir, const char *image_url,
                                const char *service_secret, compute_image_cache **ret,
                                fy_err *err);
void compute_image_cache_free(compute_image_cache *c);
FY_DEFINE_FREEP(compute_image_cache, compute_image_cache_free)

/* Makes sure image_id is cached; *ret_path (caller frees) is the cached file.
 * FY_E_BAD_REQUEST for an id that is not a uuid; the image API's failure is
 * reported as FY_E_UPSTREAM (or its retryable code) with the image id. */
fy_code compute_image_get(compute_image_cache *c, const char *image_id, char **ret_path,
                          fy_err *err);

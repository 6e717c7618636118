/* compute_disk — guest disk files: copies and sparse files. */
#pragma once
#include <sys/types.h>
#include "fy_err.h"

/* Creates path (truncating it): a copy of src when src is non-NULL, then
 * extended sparsely to size bytes when it is smaller.  Data is flushed. */
fy_code compute_disk_create(const char *path, const char *src, off_t size, fy_err *err);
/* An empty sparse file of size bytes, not flushed: a block migration's
 * target, whose content arrives (and is flushed) later or not at all. */
fy_code compute_disk_create_empty(const char *path, off_t size, fy_err *err);
/* Copies all of in_fd (from its start) to out_fd; reflinks when the file
 * system can, else copy_file_range, else read/write. */
fy_code compute_disk_copy_fd(int in_fd, int out_fd, fy_err *err);

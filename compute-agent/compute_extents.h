/* compute_extents — the data extents of a sparse disk, as the disk transfer
 * describes them: found with SEEK_DATA/SEEK_HOLE on the sender, carried in the
 * header X-Ferry-Extents as "off:len,off:len,..." (ascending, disjoint), and
 * checked on the receiver before it builds the disk from them. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "fy_err.h"

/* Bounds the header: holes are sent as zeros rather than go past this. */
#define COMPUTE_EXTENTS_MAX 4096
/* Holes shorter than this are sent as zeros (a smaller map, longer runs). */
#define COMPUTE_EXTENTS_MIN_HOLE (64 * 1024)

typedef struct compute_extent {
    long long off, len;
} compute_extent;

typedef struct compute_extents {
    compute_extent *v;          /* owned */
    size_t n, cap;
    long long size;             /* the file's logical size */
    long long data;             /* sum of the lengths: the bytes that are sent */
} compute_extents;

void compute_extents_clear(compute_extents *m);
/* Appends [off, off+len), merging it with a directly adjacent last extent. */
fy_code compute_extents_add(compute_extents *m, long long off, long long len, fy_err *err);
/* Maps fd's data (size bytes).  A file system without SEEK_DATA reports the
 * whole file as one extent.  The map is coalesced to at most COMPUTE_EXTENTS_MAX. */
fy_code compute_extents_scan(int fd, long long size, compute_extents *m, fy_err *err);
/* Merges extents separated by holes shorter than gap. */
void compute_extents_coalesce(compute_extents *m, long long gap);
/* "off:len,..." (owned; "" for no extents), NULL when out of memory. */
char *compute_extents_format(const compute_extents *m);
/* Parses the header value for a file of `size` bytes; FY_E_BAD_REQUEST names
 * what is wrong (syntax, order, overlap, past the end, too many). */
fy_code compute_extents_parse(const char *s, long long size, compute_extents *m, fy_err *err);
/* true when the map is one extent covering the whole file (or the file is empty). */
bool compute_extents_dense(const compute_extents *m);

/* compute_libvirt — helpers of the libvirt driver that need no libvirt:
 * domain XML text (compute_libvirt_xml.c) and disk images through qemu-img
 * (compute_libvirt_disk.c).  The driver itself, the only code that talks to
 * libvirt, is compute_libvirt.c.
 *
 * Layout of a guest on a host: its disk is <images>/<uuid>/disk (qcow2), where
 * <images> is instances_path as the agent sees it and libvirt_images_dir as
 * the hypervisor sees it (the hypervisor may run in another mount namespace).
 * A guest without image and without root disk is diskless. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include "fy_err.h"

/* The XML namespace of Ferry's metadata element in a domain definition. */
#define COMPUTE_LV_META_NS "http://ferry.invalid/xmlns/instance/1"
#define COMPUTE_LV_META_KEY "ferry"

typedef struct compute_lv_domain {
    const char *name;             /* instance-%08x */
    const char *uuid;
    long long memory_mb;
    long long vcpus;
    const char *disk_path;        /* as the hypervisor sees it; NULL = diskless */
    const char *kernel;           /* a multiboot kernel to boot directly, or NULL */
    const json_t *meta;           /* Ferry's bookkeeping (flavor, vifs, volumes, ...) */
} compute_lv_domain;

/* The persistent definition of a guest; NULL on ENOMEM. */
char *compute_lv_domain_xml(const compute_lv_domain *d);
/* The metadata element alone (for virDomainSetMetadata); NULL on ENOMEM. */
char *compute_lv_meta_xml(const json_t *meta);
/* Ferry's metadata from the element libvirt hands back; NULL when unreadable. */
json_t *compute_lv_meta_parse(const char *xml);
/* XML-escapes s (for text and attribute values); NULL on ENOMEM. */
char *compute_lv_xml_escape(const char *s);

/* Creates a qcow2 disk at path: a converted copy of base (any format qemu-img
 * recognises) grown to size_bytes when that is larger, or an empty one of
 * size_bytes when base is NULL. */
fy_code compute_lv_disk_create(const char *path, const char *base, long long size_bytes,
                               fy_err *err);
/* Grows a disk to size_bytes (never shrinks). */
fy_code compute_lv_disk_grow(const char *path, long long size_bytes, fy_err *err);
/* The virtual size of a disk image (works while a guest uses it). */
fy_code compute_lv_disk_virtual_size(const char *path, long long *ret, fy_err *err);
/* Removes a directory tree of plain files; FY_E_OK when absent. */
fy_code compute_lv_remove_tree(const char *dir, fy_err *err);

/* The libvirt driver's plain-text helpers: XML escaping, the metadata element
 * round trip, the domain definition, and qemu-img disk images. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "compute_libvirt.h"
#include "fy_cleanup.h"
#include "fy_util.h"

static void test_escape(void **state)
{
    (void)state;
    _cleanup_free_ char *e = compute_lv_xml_escape("a<b>&'\"c");
    assert_string_equal(e, "a&lt;b&gt;&amp;&apos;&quot;c");
}

static void test_meta_round_trip(void **state)
{
    (void)state;
    json_t *meta = json_pack("{s:s, s:{s:i}, s:[]}", "name", "x<&>'\"y", "flavor", "memory_mb",
                             64, "vifs");
    _cleanup_free_ char *xml = compute_lv_meta_xml(meta);
    assert_non_null(strstr(xml, COMPUTE_LV_META_NS));
    /* libvirt hands the element back with its own prefix choice. */
    json_t *back = compute_lv_meta_parse(xml);
    assert_true(json_equal(meta, back));
    json_decref(back);
    assert_null(compute_lv_meta_parse("<instance/>"));
    assert_null(compute_lv_meta_parse("not xml"));
    json_decref(meta);
}

static void test_domain_xml(void **state)
{
    (void)state;
    json_t *meta = json_pack("{s:s}", "image_id", "img");
    compute_lv_domain d = {
        .name = "instance-0000000a", .uuid = "5a5a0000-0000-4000-8000-00000000000a",
        .memory_mb = 64, .vcpus = 2, .disk_path = "/var/lib/libvirt/images/u/disk",
        .kernel = "/tmp/k&.elf", .meta = meta,
    };
    _cleanup_free_ char *xml = compute_lv_domain_xml(&d);
    assert_non_null(strstr(xml, "<domain type='qemu'>"));
    assert_non_null(strstr(xml, "<memory unit='MiB'>64</memory>"));
    assert_non_null(strstr(xml, "<vcpu>2</vcpu>"));
    assert_non_null(strstr(xml, "<kernel>/tmp/k&amp;.elf</kernel>"));
    assert_non_null(strstr(xml, "<source file='/var/lib/libvirt/images/u/disk'/>"));
    d.disk_path = NULL;
    d.kernel = NULL;
    _cleanup_free_ char *bare = compute_lv_domain_xml(&d);
    assert_null(strstr(bare, "<disk"));
    assert_null(strstr(bare, "<kernel>"));
    json_decref(meta);
}

static void test_disks(void **state)
{
    (void)state;
    if (access("/usr/bin/qemu-img", X_OK) != 0)
        skip();
    char dir[] = "/tmp/lvdisk.XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *empty = fy_strdup_printf("%s/sub/empty", dir);
    _cleanup_free_ char *sub = fy_strdup_printf("%s/sub", dir);
    _cleanup_free_ char *raw = fy_strdup_printf("%s/raw", dir);
    _cleanup_free_ char *conv = fy_strdup_printf("%s/sub/conv", dir);
    assert_int_equal(fy_mkdir_p(sub, 0755), 0);
    fy_err err = {0};
    assert_int_equal(compute_lv_disk_create(empty, NULL, 1 << 20, &err), FY_E_OK);
    long long size = 0;
    assert_int_equal(compute_lv_disk_virtual_size(empty, &size, &err), FY_E_OK);
    assert_int_equal(size, 1 << 20);
    assert_int_equal(compute_lv_disk_grow(empty, 4 << 20, &err), FY_E_OK);
    assert_int_equal(compute_lv_disk_grow(empty, 2 << 20, &err), FY_E_OK);   /* no shrink */
    assert_int_equal(compute_lv_disk_virtual_size(empty, &size, &err), FY_E_OK);
    assert_int_equal(size, 4 << 20);
    FILE *f = fopen(raw, "w");
    assert_non_null(f);
    fputs("base image data", f);
    fclose(f);
    assert_int_equal(compute_lv_disk_create(conv, raw, 3 << 20, &err), FY_E_OK);
    assert_int_equal(compute_lv_disk_virtual_size(conv, &size, &err), FY_E_OK);
    assert_int_equal(size, 3 << 20);
    /* qemu-img's own message reaches the caller. */
    assert_int_equal(compute_lv_disk_virtual_size(raw + 1, &size, &err), FY_E_DRIVER);
    assert_non_null(strstr(err.msg, "qemu-img"));
    assert_int_equal(compute_lv_remove_tree(dir, &err), FY_E_OK);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(compute_lv_remove_tree(dir, &err), FY_E_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_meta_round_trip),
        cmocka_unit_test(test_domain_xml),
        cmocka_unit_test(test_disks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

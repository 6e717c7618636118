/* Domain XML for the libvirt driver, as plain text.  Guests are TCG machines
 * ('qemu' domains, i440fx) so they run without /dev/kvm; they have no NIC
 * (Ferry's networks are bookkeeping) and no balloon. */
#include <stdio.h>
#include <string.h>
#include "compute_libvirt.h"
#include "fy_cleanup.h"
#include "fy_util.h"

char *compute_lv_xml_escape(const char *s)
{
    size_t n = 0;
    for (const char *c = s; *c; c++)
        n += *c == '&' ? 5 : (*c == '<' || *c == '>') ? 4 : (*c == '\'' || *c == '"') ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *c = s; *c; c++) {
        const char *rep = *c == '&' ? "&amp;" : *c == '<' ? "&lt;" : *c == '>' ? "&gt;"
                        : *c == '\'' ? "&apos;" : *c == '"' ? "&quot;" : NULL;
        if (rep) {
            size_t k = strlen(rep);
            memcpy(o, rep, k);
            o += k;
        } else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

static void unescape_in_place(char *s)
{
    static const struct { const char *ent; char c; } ents[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&quot;", '"'},
    };
    char *o = s;
    for (const char *i = s; *i;) {
        bool done = false;
        for (size_t k = 0; *i == '&' && k < ELEMENTSOF(ents); k++) {
            size_t len = strlen(ents[k].ent);
            if (!strncmp(i, ents[k].ent, len)) {
                *o++ = ents[k].c;
                i += len;
                done = true;
                break;
            }
        }
        if (!done)
            *o++ = *i++;
    }
    *o = '\0';
}

char *compute_lv_meta_xml(const json_t *meta)
{
    _cleanup_free_ char *text = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    _cleanup_free_ char *esc = text ? compute_lv_xml_escape(text) : NULL;
    if (!esc)
        return NULL;
    return fy_strdup_printf("<instance xmlns=\"%s\">%s</instance>", COMPUTE_LV_META_NS, esc);
}

json_t *compute_lv_meta_parse(const char *xml)
{
    const char *open_end = xml ? strchr(xml, '>') : NULL;
    const char *close = xml ? strrchr(xml, '<') : NULL;
    if (!open_end || !close || close <= open_end || open_end[-1] == '/')
        return NULL;
    _cleanup_free_ char *text = strndup(open_end + 1, (size_t)(close - open_end - 1));
    if (!text)
        return NULL;
    unescape_in_place(text);
    json_t *j = json_loads(text, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

char *compute_lv_domain_xml(const compute_lv_domain *d)
{
    _cleanup_free_ char *meta_text = json_dumps(d->meta, JSON_COMPACT | JSON_SORT_KEYS);
    _cleanup_free_ char *meta = meta_text ? compute_lv_xml_escape(meta_text) : NULL;
    _cleanup_free_ char *name = compute_lv_xml_escape(d->name);
    _cleanup_free_ char *disk = d->disk_path ? compute_lv_xml_escape(d->disk_path) : NULL;
    _cleanup_free_ char *kernel = d->kernel ? compute_lv_xml_escape(d->kernel) : NULL;
    if (!meta || !name || (d->disk_path && !disk) || (d->kernel && !kernel))
        return NULL;
    _cleanup_free_ char *kernel_el = kernel ? fy_strdup_printf("<kernel>%s</kernel>", kernel)
                                            : strdup("");
    _cleanup_free_ char *disk_el =
        disk ? fy_strdup_printf("<disk type='file' device='disk'>"
                                "<driver name='qemu' type='qcow2'/>"
                                "<source file='%s'/><target dev='vda' bus='virtio'/></disk>",
                                disk)
             : strdup("");
    if (!kernel_el || !disk_el)
        return NULL;
    return fy_strdup_printf(
        "<domain type='qemu'>\n"
        "  <name>%s</name>\n"
        "  <uuid>%s</uuid>\n"
        "  <metadata><" COMPUTE_LV_META_KEY ":instance xmlns:" COMPUTE_LV_META_KEY "='%s'>%s</"
        COMPUTE_LV_META_KEY ":instance></metadata>\n"
        "  <memory unit='MiB'>%lld</memory>\n"
        "  <vcpu>%lld</vcpu>\n"
        "  <os><type arch='x86_64' machine='pc'>hvm</type>%s</os>\n"
        "  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>restart</on_reboot>\n"
        "  <on_crash>destroy</on_crash>\n"
        "  <devices>\n"
        "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
        "    %s\n"
        "    <memballoon model='none'/>\n"
        "  </devices>\n"
        "</domain>\n",
        name, d->uuid, COMPUTE_LV_META_NS, meta, d->memory_mb, d->vcpus, kernel_el, disk_el);
}

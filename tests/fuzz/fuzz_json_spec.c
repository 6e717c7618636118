/* fuzz_json_spec — request bodies through fy_json_load and then fy_json_parse with
 * specs shaped like the API's: server create (with its networks list), the
 * os-migrateLive / migrate / resize actions, flavor create and token issue.
 * A body is either accepted with every declared constraint holding, or refused
 * with FY_E_BAD_REQUEST and a message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fy_json.h"
#include "fy_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(st, n, t, fl, f, lo, hi) { n, t, fl, offsetof(st, f), FY_JNOPRESENT, lo, hi }
#define SP(st, n, t, fl, f, p, lo, hi) { n, t, fl, offsetof(st, f), offsetof(st, p), lo, hi }

static void refused(fy_code rc, const fy_err *err)
{
    if (rc != FY_E_BAD_REQUEST || !err->msg[0])
        abort();
}

/* A string the spec accepted must meet its bounds, counted in code points. */
static void check_len(const char *s, long long lo, long long hi)
{
    if (!s)
        return;
    long long n = 0;
    for (const char *p = s; *p; p++)
        n += ((unsigned char)*p & 0xc0) != 0x80;
    if (n < lo || (hi > 0 && n > hi))
        abort();
}

typedef struct server_body {
    const char *name, *image_ref, *az, *key_name, *user_data, *disk_config;
    json_t *flavor_ref, *networks, *metadata, *config_drive, *security_groups;
    long long min_count, max_count;
    bool has_networks, has_min, has_max;
} server_body;

static const fy_jspec server_spec[] = {
    S(server_body, "name", FY_J_STRING, FY_J_REQUIRED, name, 1, 255),
    S(server_body, "flavorRef", FY_J_ANY, FY_J_REQUIRED, flavor_ref, 0, 0),
    S(server_body, "imageRef", FY_J_STRING, 0, image_ref, 0, 255),
    SP(server_body, "networks", FY_J_ANY, 0, networks, has_networks, 0, 0),
    S(server_body, "availability_zone", FY_J_STRING, 0, az, 1, 255),
    SP(server_body, "min_count", FY_J_INT, FY_J_INT_AS_STRING, min_count, has_min, 1, 100),
    SP(server_body, "max_count", FY_J_INT, FY_J_INT_AS_STRING, max_count, has_max, 1, 100),
    S(server_body, "metadata", FY_J_OBJECT, 0, metadata, 0, 0),
    S(server_body, "key_name", FY_J_STRING, 0, key_name, 1, 255),
    S(server_body, "user_data", FY_J_STRING, FY_J_NULLABLE, user_data, 0, 65535),
    S(server_body, "config_drive", FY_J_ANY, 0, config_drive, 0, 0),
    S(server_body, "security_groups", FY_J_ARRAY, 0, security_groups, 0, 0),
    S(server_body, "OS-DCF:diskConfig", FY_J_STRING, 0, disk_config, 0, 16),
};

typedef struct nic_body {
    const char *port, *uuid, *tag;
} nic_body;

static const fy_jspec nic_spec[] = {
    S(nic_body, "port", FY_J_STRING, FY_J_UUID | FY_J_NULLABLE, port, 0, 0),
    S(nic_body, "uuid", FY_J_STRING, FY_J_UUID, uuid, 0, 0),
    S(nic_body, "tag", FY_J_STRING, 0, tag, 1, 60),
};

typedef struct create_body {
    json_t *server, *hints, *hints_legacy;
} create_body;

static const fy_jspec create_spec[] = {
    S(create_body, "server", FY_J_OBJECT, FY_J_REQUIRED, server, 0, 0),
    S(create_body, "os:scheduler_hints", FY_J_OBJECT, 0, hints, 0, 0),
    S(create_body, "OS-SCH-HNT:scheduler_hints", FY_J_OBJECT, 0, hints_legacy, 0, 0),
};

static void parse_nics(const json_t *list)
{
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        nic_body nb = { 0 };
        fy_err err = { 0 };
        fy_code rc = fy_json_parse(item, nic_spec, N(nic_spec), &nb, false, "networks", &err);
        if (rc != FY_E_OK) {
            refused(rc, &err);
            continue;
        }
        if ((nb.port && !fy_uuid_valid(nb.port)) || (nb.uuid && !fy_uuid_valid(nb.uuid)))
            abort();
        check_len(nb.tag, 1, 60);
    }
}

static void server_create(const json_t *root)
{
    create_body top = { 0 };
    fy_err err = { 0 };
    fy_code rc = fy_json_parse(root, create_spec, N(create_spec), &top, false, NULL, &err);
    if (rc != FY_E_OK) {
        refused(rc, &err);
        return;
    }
    server_body sb = { .min_count = 1, .max_count = 1 };
    rc = fy_json_parse(top.server, server_spec, N(server_spec), &sb, false, "server", &err);
    if (rc != FY_E_OK) {
        refused(rc, &err);
        return;
    }
    if (!sb.name || !sb.flavor_ref)
        abort();
    check_len(sb.name, 1, 255);
    check_len(sb.az, 1, 255);
    check_len(sb.user_data, 0, 65535);
    if ((sb.has_min && (sb.min_count < 1 || sb.min_count > 100)) ||
        (sb.has_max && (sb.max_count < 1 || sb.max_count > 100)))
        abort();
    if (sb.has_networks && json_is_array(sb.networks))
        parse_nics(sb.networks);
}

typedef struct live_body {
    const char *host;
    json_t *block_migration, *force, *disk_over_commit;
} live_body;

static const fy_jspec live_spec[] = {
    S(live_body, "host", FY_J_STRING, FY_J_REQUIRED | FY_J_NULLABLE, host, 1, 255),
    S(live_body, "block_migration", FY_J_ANY, FY_J_REQUIRED, block_migration, 0, 0),
    S(live_body, "force", FY_J_ANY, 0, force, 0, 0),
    S(live_body, "disk_over_commit", FY_J_ANY, 0, disk_over_commit, 0, 0),
};

typedef struct migrate_body {
    const char *host;
} migrate_body;

static const fy_jspec migrate_spec[] = {
    S(migrate_body, "host", FY_J_STRING, FY_J_NULLABLE, host, 1, 255),
};

typedef struct resize_body {
    json_t *flavor_ref;
    const char *disk_config;
} resize_body;

static const fy_jspec resize_spec[] = {
    S(resize_body, "flavorRef", FY_J_ANY, FY_J_REQUIRED, flavor_ref, 0, 0),
    S(resize_body, "OS-DCF:diskConfig", FY_J_STRING, 0, disk_config, 0, 16),
};

/* Actions take one member naming the action; its value is checked by that action's spec. */
static void server_action(const json_t *root)
{
    if (!json_is_object(root) || json_object_size(root) != 1)
        return;
    const char *name = json_object_iter_key(json_object_iter((json_t *)root));
    const json_t *v = json_object_iter_value(json_object_iter((json_t *)root));
    fy_err err = { 0 };
    fy_code rc = FY_E_OK;
    if (strcmp(name, "os-migrateLive") == 0) {
        live_body lb = { 0 };
        rc = fy_json_parse(v, live_spec, N(live_spec), &lb, false, name, &err);
        if (rc == FY_E_OK) {
            if (!lb.block_migration)
                abort();
            check_len(lb.host, 1, 255);
        }
    } else if (strcmp(name, "migrate") == 0) {
        migrate_body mb = { 0 };
        if (!json_is_null(v))
            rc = fy_json_parse(v, migrate_spec, N(migrate_spec), &mb, false, name, &err);
        check_len(mb.host, 1, 255);
    } else if (strcmp(name, "resize") == 0) {
        resize_body rb = { 0 };
        rc = fy_json_parse(v, resize_spec, N(resize_spec), &rb, false, name, &err);
        if (rc == FY_E_OK && !rb.flavor_ref)
            abort();
    }
    if (rc != FY_E_OK)
        refused(rc, &err);
}

typedef struct flavor_in {
    const char *name, *description;
    json_t *id, *rxtx, *is_public;
    long long ram, vcpus, disk, ephemeral, swap;
} flavor_in;

#define DB_INT_MAX 2147483647LL
static const fy_jspec flavor_spec[] = {
    S(flavor_in, "name", FY_J_STRING, FY_J_REQUIRED, name, 1, 255),
    S(flavor_in, "id", FY_J_ANY, 0, id, 0, 0),
    S(flavor_in, "ram", FY_J_INT, FY_J_REQUIRED | FY_J_INT_AS_STRING, ram, 1, DB_INT_MAX),
    S(flavor_in, "vcpus", FY_J_INT, FY_J_REQUIRED | FY_J_INT_AS_STRING, vcpus, 1, DB_INT_MAX),
    S(flavor_in, "disk", FY_J_INT, FY_J_REQUIRED | FY_J_INT_AS_STRING, disk, 0, DB_INT_MAX),
    S(flavor_in, "OS-FLV-EXT-DATA:ephemeral", FY_J_INT, FY_J_INT_AS_STRING, ephemeral, 0,
      DB_INT_MAX),
    S(flavor_in, "swap", FY_J_INT, FY_J_INT_AS_STRING, swap, 0, DB_INT_MAX),
    S(flavor_in, "rxtx_factor", FY_J_ANY, 0, rxtx, 0, 0),
    S(flavor_in, "os-flavor-access:is_public", FY_J_ANY, 0, is_public, 0, 0),
    S(flavor_in, "description", FY_J_STRING, FY_J_NULLABLE, description, 0, 65535),
};

static void flavor_create(const json_t *root)
{
    flavor_in f = { 0 };
    fy_err err = { 0 };
    fy_code rc = fy_json_parse(json_object_get(root, "flavor"), flavor_spec, N(flavor_spec), &f,
                               false, "flavor", &err);
    if (rc != FY_E_OK) {
        refused(rc, &err);
        return;
    }
    if (f.ram < 1 || f.vcpus < 1 || f.disk < 0 || f.ram > DB_INT_MAX || f.disk > DB_INT_MAX)
        abort();
    check_len(f.name, 1, 255);
}

typedef struct token_body {
    bool enabled;
    long long count;
    const char *domain;
} token_body;

/* Loose spec: unknown members allowed, typed members only. */
static const fy_jspec token_spec[] = {
    S(token_body, "enabled", FY_J_BOOL, FY_J_NULLABLE, enabled, 0, 0),
    S(token_body, "count", FY_J_INT, 0, count, 0, 0),
    S(token_body, "domain", FY_J_STRING, FY_J_NONEMPTY | FY_J_NULLABLE, domain, 0, 0),
};

static void loose(const json_t *root)
{
    token_body tb = { 0 };
    fy_err err = { 0 };
    fy_code rc = fy_json_parse(root, token_spec, N(token_spec), &tb, true, "", &err);
    if (rc != FY_E_OK)
        refused(rc, &err);
    else if (tb.domain && !tb.domain[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = NULL;
    fy_err err = { 0 };
    if (fy_json_load((const char *)data, size, &root, &err) != FY_E_OK)
        return 0;
    server_create(root);
    server_action(root);
    flavor_create(root);
    loose(root);
    json_decref(root);
    return 0;
}

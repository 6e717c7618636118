/* A small Glance v2: image records in the database, image data as files in
 * images_dir/<id>.  Enough for the CLI and for compute agents, which download
 * with the service credential. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "api.h"
#include "api_sql.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define IMAGE_DEFAULT_LIMIT 25
#define IMAGE_MAX_LIMIT 1000
#define PROP_KEY_MAX 255
#define PROP_VAL_MAX 65535

static const char *const disk_formats[] = {"ami", "ari", "aki", "vhd", "vhdx", "vmdk",
                                           "raw", "qcow2", "vdi", "iso", "ploop", NULL};
static const char *const container_formats[] = {"ami", "ari", "aki", "bare", "ovf",
                                                "ova", "docker", "compressed", NULL};
static const char *const visibilities[] = {"public", "private", "shared", "community", NULL};
static const char *const read_only[] = {
    "status", "checksum", "size", "virtual_size", "created_at", "updated_at", "self", "file",
    "schema", "os_hash_algo", "os_hash_value", "direct_url", "locations", "owner", "deleted",
    "deleted_at", "os_hidden", NULL};

static bool in_list(const char *const *list, const char *v)
{
    for (; v && *list; list++)
        if (strcmp(*list, v) == 0)
            return true;
    return false;
}

/* --- view --- */

static json_t *str_or_null(PGresult *res, const char *col)
{
    const char *v = fy_db_str(res, 0, col);
    return v ? json_string(v) : json_null();
}

static json_t *image_json(PGresult *res)
{
    const char *id = fy_db_str(res, 0, "id");
    char self[80], file[96];
    snprintf(self, sizeof self, "/v2/images/%s", id);
    snprintf(file, sizeof file, "/v2/images/%s/file", id);
    const char *size = fy_db_str(res, 0, "size");
    json_t *img = json_pack(
        "{s:s,s:o,s:s,s:s,s:b,s:o,s:o,s:o,s:o,s:n,s:I,s:I,s:o,s:o,s:o,s:s,s:s,s:[],s:b,"
        "s:s,s:s,s:s}",
        "id", id, "name", str_or_null(res, "name"), "status", fy_db_str(res, 0, "status"),
        "visibility", fy_db_str(res, 0, "visibility"), "protected",
        fy_db_bool(res, 0, "protected"), "checksum", str_or_null(res, "checksum"),
        "os_hash_algo", str_or_null(res, "os_hash_algo"), "os_hash_value",
        str_or_null(res, "os_hash_value"), "size",
        size ? json_integer(fy_db_ll(res, 0, "size", 0)) : json_null(), "virtual_size",
        "min_disk", fy_db_ll(res, 0, "min_disk", 0), "min_ram", fy_db_ll(res, 0, "min_ram", 0),
        "disk_format", str_or_null(res, "disk_format"), "container_format",
        str_or_null(res, "container_format"), "owner", str_or_null(res, "owner"), "created_at",
        fy_db_str(res, 0, "created_at"), "updated_at", fy_db_str(res, 0, "updated_at"), "tags",
        "os_hidden", 0, "self", self, "file", file, "schema", "/v2/schemas/image");
    /* Custom properties show as top-level members; "tags" is kept among them. */
    const char *ptext = fy_db_str(res, 0, "properties");
    json_t *props = ptext ? json_loads(ptext, 0, NULL) : NULL;
    const char *key;
    json_t *val;
    if (img && json_is_object(props)) {
        json_object_foreach(props, key, val) {
            if (strcmp(key, "tags") == 0 || !json_object_get(img, key))
                json_object_set(img, key, val);
        }
    }
    json_decref(props);
    return img;
}

/* A one-row PGresult per image keeps image_json simple for lists too. */
static json_t *image_json_row(PGresult *res, int row)
{
    if (row == 0)
        return image_json(res);
    PGresult *one = PQcopyResult(res, PG_COPYRES_ATTRS);
    if (!one)
        return NULL;
    for (int c = 0; c < PQnfields(res); c++)
        if (!PQgetisnull(res, row, c))
            PQsetvalue(one, 0, c, PQgetvalue(res, row, c), PQgetlength(res, row, c));
        else
            PQsetvalue(one, 0, c, NULL, -1);
    json_t *j = image_json(one);
    PQclear(one);
    return j;
}

/* --- access --- */

static bool can_see(const fy_req *req, PGresult *res)
{
    const char *vis = fy_db_str(res, 0, "visibility");
    return req->auth.is_admin || fy_streq(vis, "public") || fy_streq(vis, "community") ||
           fy_streq(fy_db_str(res, 0, "owner"), req->auth.project_id);
}

static fy_code get_image(const fy_req *req, PGresult **ret, fy_err *err)
{
    const char *id = req->params[0];
    const char *params[] = {id};
    PGresult *res = NULL;
    fy_code rc = fy_uuid_valid(id) ? fy_db_exec_one(&api_sql_image_get, params, &res, err)
                                   : FY_E_NOT_FOUND;
    if (rc == FY_E_OK && !can_see(req, res)) {
        PQclear(res);
        rc = FY_E_NOT_FOUND;
    }
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, FY_E_NOT_FOUND, "No image found with ID %.64s", id);
    if (rc == FY_E_OK)
        *ret = res;
    return rc;
}

static char *image_path(const fy_req *req, const char *id)
{
    return fy_strdup_printf("%s/%s", api_cfg(req)->images_dir, id);
}

/* --- versions --- */

fy_code api_image_versions(fy_req *req, fy_resp *resp, fy_err *err)
{
    static const char *const ids[] = {"v2.16", "v2.15", "v2.9", "v2.7", "v2.6", "v2.5",
                                      "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"};
    char href[512];
    snprintf(href, sizeof href, "%s/image/v2/", api_cfg(req)->public_url);
    json_t *list = json_array();
    for (size_t i = 0; list && i < ELEMENTSOF(ids); i++)
        json_array_append_new(list, json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "id", ids[i],
                                              "status", i == 0 ? "CURRENT" : "SUPPORTED",
                                              "links", "rel", "self", "href", href));
    json_t *body = json_pack("{s:o}", "versions", list);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 300, body);
    return FY_E_OK;
}

/* --- create --- */

typedef struct image_in {
    char id[FY_UUID_LEN + 1];
    const char *name, *disk_format, *container_format, *visibility;
    char min_disk[24], min_ram[24];
    bool protected_;
    json_t *props;   /* owned */
} image_in;

static fy_code enum_field(json_t *v, const char *field, const char *const *allowed,
                          const char **out, fy_err *err)
{
    if (json_is_null(v)) {
        *out = NULL;
        return FY_E_OK;
    }
    if (!json_is_string(v) || !in_list(allowed, json_string_value(v)))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for '%s': not one of the allowed "
                       "values.", field);
    *out = json_string_value(v);
    return FY_E_OK;
}

static fy_code int_field(json_t *v, const char *field, char out[24], fy_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for '%s': must be an integer "
                       "between 0 and 2147483647.", field);
    snprintf(out, 24, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return FY_E_OK;
}

static fy_code tags_field(json_t *v, json_t *props, fy_err *err)
{
    size_t i;
    json_t *t;
    if (!json_is_array(v) || json_array_size(v) > 128)
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for 'tags': expected a list of "
                       "at most 128 strings.");
    json_array_foreach(v, i, t)
        if (!json_is_string(t) || json_string_length(t) > 255)
            return fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for 'tags': each tag must be "
                           "a string of at most 255 characters.");
    json_object_set(props, "tags", v);
    return FY_E_OK;
}

static fy_code image_member(image_in *in, const char *key, json_t *v, fy_err *err)
{
    if (in_list(read_only, key))
        return fy_fail(err, FY_E_FORBIDDEN, "Attribute '%.64s' is read-only.", key);
    if (strcmp(key, "id") == 0) {
        if (!json_is_string(v) || !fy_uuid_valid(json_string_value(v)))
            return fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for 'id': must be a UUID.");
        snprintf(in->id, sizeof in->id, "%s", json_string_value(v));
        return FY_E_OK;
    }
    if (strcmp(key, "name") == 0) {
        if (!json_is_null(v) && (!json_is_string(v) || json_string_length(v) > 255))
            return fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for 'name': must be a string "
                           "of at most 255 characters or null.");
        in->name = json_string_value(v);
        return FY_E_OK;
    }
    if (strcmp(key, "disk_format") == 0)
        return enum_field(v, key, disk_formats, &in->disk_format, err);
    if (strcmp(key, "container_format") == 0)
        return enum_field(v, key, container_formats, &in->container_format, err);
    if (strcmp(key, "visibility") == 0)
        return json_is_null(v) ? fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for "
                                         "'visibility'.")
                               : enum_field(v, key, visibilities, &in->visibility, err);
    if (strcmp(key, "min_disk") == 0)
        return int_field(v, key, in->min_disk, err);
    if (strcmp(key, "min_ram") == 0)
        return int_field(v, key, in->min_ram, err);
    if (strcmp(key, "protected") == 0) {
        if (!json_is_boolean(v))
            return fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for 'protected': must be a "
                           "boolean.");
        in->protected_ = json_is_true(v);
        return FY_E_OK;
    }
    if (strcmp(key, "tags") == 0)
        return tags_field(v, in->props, err);
    if (!json_is_string(v) || strlen(key) > PROP_KEY_MAX || json_string_length(v) > PROP_VAL_MAX)
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid value for property '%.64s': custom "
                       "properties must be strings.", key);
    json_object_set(in->props, key, v);
    return FY_E_OK;
}

static fy_code parse_image(const json_t *body, image_in *in, fy_err *err)
{
    if (!json_is_object(body))
        return fy_fail(err, FY_E_BAD_REQUEST, "Body expected in request.");
    if (json_object_size(body) > 256)
        return fy_fail(err, FY_E_BAD_REQUEST, "Too many properties.");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        fy_code rc = image_member(in, key, v, err);
        if (rc != FY_E_OK)
            return rc;
    }
    return FY_E_OK;
}

fy_code api_images_create(fy_req *req, fy_resp *resp, fy_err *err)
{
    image_in in = {.visibility = "shared", .min_disk = "0", .min_ram = "0"};
    in.props = json_object();
    if (!in.props)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_code rc = parse_image(req->json, &in, err);
    const char *owner = req->auth.project_id[0] ? req->auth.project_id : NULL;
    if (rc == FY_E_OK)
        rc = api_policy_check(req, "add_image", owner, err);
    if (rc == FY_E_OK && strcmp(in.visibility, "public") == 0)
        rc = api_policy_check(req, "publicize_image", owner, err);
    if (rc == FY_E_OK && strcmp(in.visibility, "community") == 0)
        rc = api_policy_check(req, "communitize_image", owner, err);
    _cleanup_free_ char *props = rc == FY_E_OK ? fy_json_dump(in.props) : NULL;
    json_decref(in.props);
    if (rc != FY_E_OK)
        return rc;
    if (!props)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (!in.id[0])
        fy_uuid_v4(in.id);

    const char *params[] = {in.id,      in.name,    in.disk_format,
                            in.container_format,    owner,
                            in.visibility, in.min_disk, in.min_ram,
                            in.protected_ ? "true" : "false", props};
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec_one(&api_sql_image_insert, params, &res, err);
    if (rc == FY_E_CONFLICT)
        return fy_fail(err, FY_E_CONFLICT, "Image with identifier %s already exists!", in.id);
    if (rc != FY_E_OK)
        return rc;
    json_t *body = image_json(res);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 201, body);
    fy_resp_add_header(resp, "Location", "%s/image/v2/images/%s", api_cfg(req)->public_url,
                       in.id);
    return FY_E_OK;
}

/* --- list / show / delete --- */

fy_code api_images_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "get_images", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    long long limit = IMAGE_DEFAULT_LIMIT;
    const char *lim = fy_req_query(req, "limit");
    if (lim && !fy_parse_ll(lim, 0, LLONG_MAX, &limit))
        return fy_fail(err, FY_E_BAD_REQUEST, "limit param must be an integer");
    if (limit > IMAGE_MAX_LIMIT)
        limit = IMAGE_MAX_LIMIT;
    const char *vis = fy_req_query(req, "visibility");
    if (vis && strcmp(vis, "all") == 0)
        vis = NULL;
    if (vis && !in_list(visibilities, vis))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid visibility value: %.64s", vis);
    const char *marker = fy_req_query(req, "marker");
    if (marker && !fy_uuid_valid(marker))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid marker. Image %.64s could not be found.",
                       marker);

    char nlimit[24];
    snprintf(nlimit, sizeof nlimit, "%lld", limit);
    const char *params[] = {req->auth.is_admin ? "true" : "false", req->auth.project_id, vis,
                            fy_req_query(req, "name"), fy_req_query(req, "status"), marker,
                            nlimit};
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec(&api_sql_image_list, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *arr = json_array();
    int n = PQntuples(res);
    for (int i = 0; arr && i < n; i++)
        json_array_append_new(arr, image_json_row(res, i));
    json_t *body = json_pack("{s:o,s:s,s:s}", "images", arr, "first", "/v2/images", "schema",
                             "/v2/schemas/images");
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (n > 0 && n == limit) {
        char next[160];
        snprintf(next, sizeof next, "/v2/images?marker=%s&limit=%lld",
                 fy_db_str(res, n - 1, "id"), limit);
        json_object_set_new(body, "next", json_string(next));
    }
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_images_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = get_image(req, &res, err);
    if (rc == FY_E_OK)
        rc = api_policy_check(req, "get_image", fy_db_str(res, 0, "owner"), err);
    if (rc != FY_E_OK)
        return rc;
    json_t *body = image_json(res);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_images_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = get_image(req, &res, err);
    if (rc == FY_E_OK)
        rc = api_policy_check(req, "delete_image", fy_db_str(res, 0, "owner"), err);
    if (rc != FY_E_OK)
        return rc;
    const char *id = fy_db_str(res, 0, "id");
    if (fy_db_bool(res, 0, "protected"))
        return fy_fail(err, FY_E_FORBIDDEN, "Image %s is protected and cannot be deleted.", id);
    const char *params[] = {id};
    _cleanup_pgres_ PGresult *del = NULL;
    rc = fy_db_exec(&api_sql_image_delete, params, &del, err);
    if (rc != FY_E_OK)
        return rc;
    if (fy_db_affected(del) == 0)
        return fy_fail(err, FY_E_NOT_FOUND, "No image found with ID %s", id);
    _cleanup_free_ char *path = image_path(req, id);
    if (path && unlink(path) != 0 && errno != ENOENT)
        fy_warn("image %s: cannot remove %s: %m", id, path);
    resp->status = 204;
    return FY_E_OK;
}

/* --- data --- */

typedef struct image_sums {
    char md5[33], sha512[129];
    long long size;
} image_sums;

static void free_md_ctx(EVP_MD_CTX **c)
{
    EVP_MD_CTX_free(*c);
}

/* Both digests in one pass over the file, as Glance computes them while storing. */
static fy_code hash_file(const char *path, image_sums *out, fy_err *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fy_fail(err, FY_E_IO, "open %s: %s", path, strerror(errno));
    _cleanup_(free_md_ctx) EVP_MD_CTX *md5 = EVP_MD_CTX_new();
    _cleanup_(free_md_ctx) EVP_MD_CTX *sha = EVP_MD_CTX_new();
    if (!md5 || !sha || !EVP_DigestInit_ex(md5, EVP_md5(), NULL) ||
        !EVP_DigestInit_ex(sha, EVP_sha512(), NULL))
        return fy_fail(err, FY_E_INTERNAL, "cannot set up image digests");
    _cleanup_free_ unsigned char *buf = malloc(1 << 20);
    if (!buf)
        return fy_fail(err, FY_E_NOMEM, NULL);
    out->size = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fy_fail(err, FY_E_IO, "read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        if (!EVP_DigestUpdate(md5, buf, (size_t)n) || !EVP_DigestUpdate(sha, buf, (size_t)n))
            return fy_fail(err, FY_E_INTERNAL, "image digest failed");
        out->size += n;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!EVP_DigestFinal_ex(md5, md, &len))
        return fy_fail(err, FY_E_INTERNAL, "image digest failed");
    fy_hex(md, len, out->md5);
    if (!EVP_DigestFinal_ex(sha, md, &len))
        return fy_fail(err, FY_E_INTERNAL, "image digest failed");
    fy_hex(md, len, out->sha512);
    return FY_E_OK;
}

static fy_code store_data(const fy_req *req, const char *id, fy_err *err)
{
    if (!req->upload_path)
        return fy_fail(err, FY_E_BAD_REQUEST, "Image data expected in the request body.");
    image_sums sums;
    fy_code rc = hash_file(req->upload_path, &sums, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_free_ char *path = image_path(req, id);
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (rename(req->upload_path, path) != 0)
        return fy_fail(err, FY_E_IO, "store image %s: %s", id, strerror(errno));
    char size[24];
    snprintf(size, sizeof size, "%lld", sums.size);
    const char *params[] = {id, size, sums.md5, sums.sha512};
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec(&api_sql_image_set_active, params, &res, err);
    if (rc == FY_E_OK && fy_db_affected(res) == 0)
        rc = fy_fail(err, FY_E_CONFLICT, "Image %s was deleted during upload.", id);
    if (rc != FY_E_OK)
        unlink(path);
    return rc;
}

fy_code api_images_upload(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = get_image(req, &res, err);
    if (rc == FY_E_OK)
        rc = api_policy_check(req, "upload_image", fy_db_str(res, 0, "owner"), err);
    if (rc != FY_E_OK)
        return rc;
    const char *id = fy_db_str(res, 0, "id");
    const char *params[] = {id};
    _cleanup_pgres_ PGresult *upd = NULL;
    rc = fy_db_exec(&api_sql_image_set_saving, params, &upd, err);
    if (rc != FY_E_OK)
        return rc;
    /* Only a queued image takes data, and only one upload at a time. */
    if (fy_db_affected(upd) == 0)
        return fy_fail(err, FY_E_CONFLICT, "Image status transition from %s to saving is not "
                       "allowed", fy_db_str(res, 0, "status"));
    rc = store_data(req, id, err);
    if (rc != FY_E_OK) {
        fy_err back;
        _cleanup_pgres_ PGresult *q = NULL;
        if (fy_db_exec(&api_sql_image_set_queued, params, &q, &back) != FY_E_OK)
            fy_warn("image %s left in saving: %s", id, back.msg);
        return rc;
    }
    fy_info("image %s uploaded", id);
    resp->status = 204;
    return FY_E_OK;
}

fy_code api_images_download(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = get_image(req, &res, err);
    if (rc == FY_E_OK)
        rc = api_policy_check(req, "download_image", fy_db_str(res, 0, "owner"), err);
    if (rc != FY_E_OK)
        return rc;
    const char *id = fy_db_str(res, 0, "id");
    if (!fy_streq(fy_db_str(res, 0, "status"), "active")) {
        resp->status = 204;   /* Glance: no data yet */
        return FY_E_OK;
    }
    _cleanup_free_ char *path = image_path(req, id);
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return fy_fail(err, FY_E_NOT_FOUND, "Image %s has no data on this server.", id);
    resp->status = 200;
    resp->file_size = st.st_size;
    resp->file_fd = TAKE_FD(fd);
    resp->content_type = "application/octet-stream";
    fy_resp_add_header(resp, "Content-MD5", "%s", fy_db_str(res, 0, "checksum"));
    return FY_E_OK;
}

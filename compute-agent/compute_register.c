/* Registration: the services row (through fy_service) and this host's
 * compute_nodes row with its inventory. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "compute.h"
#include "compute_sql.h"
#include "fy_log.h"
#include "fy_service.h"
#include "fy_util.h"

#define NODE_UUID_FILE "node_uuid"

static fy_code read_node_uuid(const char *path, char out[37], bool *found, fy_err *err)
{
    *found = false;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return FY_E_OK;
        return fy_fail(err, FY_E_IO, "open %s: %s", path, strerror(errno));
    }
    char buf[64] = "";
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0)
        return fy_fail(err, FY_E_IO, "read %s: %s", path, strerror(errno));
    buf[n] = '\0';
    buf[strcspn(buf, " \t\r\n")] = '\0';
    if (!fy_uuid_valid(buf))
        return fy_fail(err, FY_E_CONFIG, "%s does not hold a uuid", path);
    memcpy(out, buf, FY_UUID_LEN + 1);
    *found = true;
    return FY_E_OK;
}

static fy_code write_node_uuid(const char *path, const char *uuid, fy_err *err)
{
    char line[FY_UUID_LEN + 2];
    snprintf(line, sizeof(line), "%s\n", uuid);
    return fy_write_file_atomic(path, line, strlen(line), err);
}

fy_code compute_node_uuid(const char *state_dir, char out[37], fy_err *err)
{
    int r = fy_mkdir_p(state_dir, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "mkdir %s: %s", state_dir, strerror(-r));
    _cleanup_free_ char *path = fy_strdup_printf("%s/" NODE_UUID_FILE, state_dir);
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    bool found;
    if (read_node_uuid(path, out, &found, err))
        return err->code;
    if (found)
        return FY_E_OK;
    fy_uuid_v4(out);
    return write_node_uuid(path, out, err);
}

static char *cpu_info_json(const compute_config *cfg)
{
    struct utsname u;
    const char *arch = uname(&u) == 0 ? u.machine : "x86_64";
    json_t *info = json_pack("{s:s, s:s, s:{s:I, s:i, s:i}, s:[]}", "arch", arch, "model",
                             cfg->cpu_model, "topology", "cores", (json_int_t)cfg->vcpus,
                             "sockets", 1, "threads", 1, "features");
    char *s = info ? json_dumps(info, JSON_COMPACT) : NULL;
    json_decref(info);
    return s;
}

static const char *host_ip(const compute_config *cfg)
{
    if (fy_streq(cfg->bind, "0.0.0.0") || fy_streq(cfg->bind, "::"))
        return "127.0.0.1";
    return cfg->bind;
}

static fy_code upsert_node(const compute_config *cfg, int service_id, char uuid[37],
                           fy_err *err)
{
    char sid[16], hv[24], vcpus[24], mem[24], disk[24], cpu_r[32], ram_r[32], disk_r[32];
    snprintf(sid, sizeof(sid), "%d", service_id);
    snprintf(hv, sizeof(hv), "%lld", cfg->hypervisor_version);
    snprintf(vcpus, sizeof(vcpus), "%lld", cfg->vcpus);
    snprintf(mem, sizeof(mem), "%lld", cfg->memory_mb);
    snprintf(disk, sizeof(disk), "%lld", cfg->disk_gb);
    snprintf(cpu_r, sizeof(cpu_r), "%.17g", cfg->cpu_allocation_ratio);
    snprintf(ram_r, sizeof(ram_r), "%.17g", cfg->ram_allocation_ratio);
    snprintf(disk_r, sizeof(disk_r), "%.17g", cfg->disk_allocation_ratio);
    _cleanup_free_ char *cpu_info = cpu_info_json(cfg);
    if (!cpu_info)
        return fy_fail(err, FY_E_NOMEM, NULL);

    const char *params[] = {uuid, sid, cfg->host, cfg->host, cfg->hypervisor_type, hv,
                            cfg->cpu_model, cpu_info, vcpus, mem, disk, cpu_r, ram_r, disk_r,
                            host_ip(cfg), cfg->instances_path};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec_one(&compute_sql_node_upsert, params, &res, err))
        return fy_err_prefix(err, "registering compute node %s", cfg->host);
    const char *db_uuid = fy_db_str(res, 0, "uuid");
    if (db_uuid && fy_uuid_valid(db_uuid) && strcmp(db_uuid, uuid) != 0) {
        fy_debug("compute node %s keeps its recorded uuid %s", cfg->host, db_uuid);
        memcpy(uuid, db_uuid, FY_UUID_LEN + 1);
    }
    return FY_E_OK;
}

fy_code compute_register(const compute_config *cfg, int *ret_service_id, fy_err *err)
{
    char uuid[FY_UUID_LEN + 1], orig[FY_UUID_LEN + 1];
    int service_id = 0;
    if (compute_node_uuid(cfg->state_dir, uuid, err))
        return err->code;
    memcpy(orig, uuid, sizeof(orig));
    if (fy_service_register(cfg->host, "ferry-compute", cfg->advertise_url,
                            cfg->availability_zone, &service_id, err))
        return err->code;
    if (upsert_node(cfg, service_id, uuid, err))
        return err->code;
    if (strcmp(orig, uuid) != 0) {
        _cleanup_free_ char *path = fy_strdup_printf("%s/" NODE_UUID_FILE, cfg->state_dir);
        if (!path)
            return fy_fail(err, FY_E_NOMEM, NULL);
        if (write_node_uuid(path, uuid, err))
            return err->code;
    }
    *ret_service_id = service_id;
    return FY_E_OK;
}

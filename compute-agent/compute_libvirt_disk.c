/* Disk images of the libvirt driver, made with qemu-img (run directly with
 * posix_spawn, never through a shell). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "compute_libvirt.h"
#include "fy_cleanup.h"
#include "fy_util.h"

extern char **environ;

#define QEMU_IMG "qemu-img"
#define OUT_MAX (256 * 1024)

typedef struct buf {
    char *data;
    size_t len;
} buf;

static void buf_add(buf *b, const char *d, size_t n)
{
    if (b->len + n > OUT_MAX)
        n = OUT_MAX - b->len;
    char *nd = realloc(b->data, b->len + n + 1);
    if (!nd)
        return;
    b->data = nd;
    memcpy(b->data + b->len, d, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Reads both pipes until they close. */
static void drain(int out_fd, int err_fd, buf *out, buf *errb)
{
    struct pollfd pf[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    buf *dst[2] = {out, errb};
    int open_fds = 2;
    char chunk[4096];
    while (open_fds > 0) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            ssize_t n = read(pf[i].fd, chunk, sizeof(chunk));
            if (n > 0) {
                buf_add(dst[i], chunk, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
}

static void trim(char *s)
{
    size_t n = s ? strlen(s) : 0;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* Runs qemu-img with argv (argv[0] is "qemu-img"); *ret_out gets stdout. */
static fy_code run_qemu_img(char *const argv[], char **ret_out, fy_err *err)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
        int e = errno;
        if (po[0] >= 0) {
            close(po[0]);
            close(po[1]);
        }
        return fy_fail(err, FY_E_IO, "pipe: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    pid_t pid;
    int r = posix_spawnp(&pid, QEMU_IMG, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    buf out = {0}, errb = {0};
    if (r == 0)
        drain(po[0], pe[0], &out, &errb);
    close(po[0]);
    close(pe[0]);
    if (r != 0)
        return fy_fail(err, FY_E_DRIVER, "cannot run %s: %s", QEMU_IMG, strerror(r));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    fy_code rc = FY_E_OK;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        trim(errb.data);
        rc = fy_fail(err, FY_E_DRIVER, "%s %s failed: %s", QEMU_IMG, argv[1],
                     errb.data && *errb.data ? errb.data : "no message");
    }
    free(errb.data);
    if (rc == FY_E_OK && ret_out)
        *ret_out = out.data ? out.data : strdup("");
    else
        free(out.data);
    return rc;
}

fy_code compute_lv_disk_create(const char *path, const char *base, long long size_bytes,
                               fy_err *err)
{
    char size[32];
    snprintf(size, sizeof(size), "%lld", size_bytes);
    if (!base) {
        char *argv[] = {QEMU_IMG, "create", "-q", "-f", "qcow2", (char *)path, size, NULL};
        return run_qemu_img(argv, NULL, err);
    }
    char *argv[] = {QEMU_IMG, "convert", "-q", "-O", "qcow2", (char *)base, (char *)path, NULL};
    if (run_qemu_img(argv, NULL, err))
        return err->code;
    return compute_lv_disk_grow(path, size_bytes, err);
}

fy_code compute_lv_disk_virtual_size(const char *path, long long *ret, fy_err *err)
{
    /* -U: the guest may hold the image's lock. */
    char *argv[] = {QEMU_IMG, "info", "-U", "--output=json", (char *)path, NULL};
    _cleanup_free_ char *out = NULL;
    if (run_qemu_img(argv, &out, err))
        return err->code;
    json_t *j = json_loads(out, 0, NULL);
    json_t *v = json_object_get(j, "virtual-size");
    fy_code rc = FY_E_OK;
    if (json_is_integer(v))
        *ret = json_integer_value(v);
    else
        rc = fy_fail(err, FY_E_DRIVER, "%s info %s: no virtual size", QEMU_IMG, path);
    json_decref(j);
    return rc;
}

fy_code compute_lv_disk_grow(const char *path, long long size_bytes, fy_err *err)
{
    long long cur = 0;
    if (compute_lv_disk_virtual_size(path, &cur, err))
        return err->code;
    if (size_bytes <= cur)
        return FY_E_OK;
    char size[32];
    snprintf(size, sizeof(size), "%lld", size_bytes);
    char *argv[] = {QEMU_IMG, "resize", "-q", (char *)path, size, NULL};
    return run_qemu_img(argv, NULL, err);
}

fy_code compute_lv_remove_tree(const char *dir, fy_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return FY_E_OK;
        return fy_fail(err, FY_E_IO, "opendir %s: %s", dir, strerror(errno));
    }
    fy_code rc = FY_E_OK;
    struct dirent *de;
    while (rc == FY_E_OK && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno == EISDIR || errno == EPERM) {
            _cleanup_free_ char *sub = fy_strdup_printf("%s/%s", dir, de->d_name);
            rc = sub ? compute_lv_remove_tree(sub, err) : fy_fail(err, FY_E_NOMEM, NULL);
        } else {
            rc = fy_fail(err, FY_E_IO, "unlink %s/%s: %s", dir, de->d_name, strerror(errno));
        }
    }
    closedir(d);
    if (rc == FY_E_OK && rmdir(dir) < 0 && errno != ENOENT)
        rc = fy_fail(err, FY_E_IO, "rmdir %s: %s", dir, strerror(errno));
    return rc;
}

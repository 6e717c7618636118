/* ferry-api: the public REST API. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "fy_db.h"
#include "fy_httpc.h"
#include "fy_log.h"
#include "fy_metrics_http.h"
#include "fy_util.h"

static api_ctx ctx;

static void usage(FILE *out)
{
    fprintf(out, "usage: ferry-api [--config FILE] [--dump-config] [--log-format text|json]\n");
}

static fy_code prepare_dirs(const api_config *cfg, char **ret_upload, fy_err *err)
{
    char *upload = fy_strdup_printf("%s/.uploads", cfg->images_dir);
    if (!upload)
        return fy_fail(err, FY_E_NOMEM, NULL);
    /* Uploads land next to the images so storing one is a rename. */
    int r = fy_mkdir_p(upload, 0750);
    if (r < 0) {
        free(upload);
        return fy_fail(err, FY_E_CONFIG, "images_dir %s: %s", cfg->images_dir, strerror(-r));
    }
    *ret_upload = upload;
    return FY_E_OK;
}

static fy_code start(fy_httpd **ret, char **ret_upload, fy_err *err)
{
    const api_config *cfg = &ctx.cfg;
    fy_httpc_global_init();
    fy_code rc = fy_db_init(cfg->db_url, "ferry-api", err);
    if (rc == FY_E_OK)
        rc = fy_schema_check(err);
    if (rc == FY_E_OK)
        rc = api_policy_load(cfg->policy_file, err);
    if (rc == FY_E_OK)
        rc = prepare_dirs(cfg, ret_upload, err);
    if (rc != FY_E_OK)
        return rc;
    fy_httpd_conf conf = {
        .bind_addr = cfg->bind,
        .port = (int)cfg->port,
        .reuse_port = cfg->reuse_port,
        .threads = (unsigned)cfg->threads,
        .max_body = (size_t)cfg->max_body,
        .max_upload = (size_t)cfg->max_image_size,
        .upload_dir = *ret_upload,
        .routes = api_routes,
        .nroutes = api_nroutes,
        .svc = &ctx,
        .service_secret = cfg->service_secret,
        .authenticate = api_authenticate,
        .pre_dispatch = api_pre_dispatch,
        .render_error = api_render_error,
        .decorate = api_decorate,
        .finished = fy_metrics_http_finished,
    };
    return fy_httpd_start(&conf, ret, err);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"dump-config", no_argument, NULL, 'd'},
                                         {"log-format", required_argument, NULL, 'L'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *file = NULL;
    bool dump = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c')
            file = optarg;
        else if (c == 'd')
            dump = true;
        else if (c == 'L')
            setenv("FERRY_LOG_FORMAT", optarg, 1); /* the config loader applies env last */
        else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }

    fy_signals_block();
    fy_err err = {0};
    if (api_config_load(&ctx.cfg, file, &err) != FY_E_OK) {
        fprintf(stderr, "ferry-api: %s\n", err.msg);
        return 1;
    }
    if (dump) {
        api_config_dump(&ctx.cfg, stdout);
        api_config_free(&ctx.cfg);
        return 0;
    }
    int level = fy_log_level_from_name(ctx.cfg.log_level);
    if (level < 0 || (strcmp(ctx.cfg.log_format, "json") && strcmp(ctx.cfg.log_format, "text"))) {
        fprintf(stderr, "ferry-api: bad log_level %s or log_format %s\n", ctx.cfg.log_level,
                ctx.cfg.log_format);
        api_config_free(&ctx.cfg);
        return 1;
    }
    fy_log_init("ferry-api", level, strcmp(ctx.cfg.log_format, "json") == 0);

    fy_httpd *httpd = NULL;
    char *upload_dir = NULL;
    int status = 0;
    if (start(&httpd, &upload_dir, &err) != FY_E_OK) {
        fy_error("cannot start: %s", err.msg);
        status = 1;
    } else {
        fy_info("listening on %s:%d, public URL %s", ctx.cfg.bind, fy_httpd_port(httpd),
                ctx.cfg.public_url);
        int sig = fy_signals_wait();
        fy_info("signal %d: stopping", sig);
    }
    fy_httpd_stop(httpd);
    fy_db_shutdown();
    free(upload_dir);
    api_config_free(&ctx.cfg);
    return status;
}

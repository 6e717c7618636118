/* Authorisation: Nova's default rules, optionally overridden from a JSON file.
 *
 * A rule's check text is one of "@" (any authenticated caller), "!" (nobody),
 * "role:NAME", "rule:admin_api", "rule:admin_or_owner", "rule:context_is_admin",
 * "is_admin:True", "project_id:%(project_id)s", or several joined by " or ".
 * The table is read-only after start-up, so checks need no lock. */
#include <jansson.h>
#include <string.h>
#include "api.h"
#include "fy_cleanup.h"
#include "fy_log.h"
#include "fy_util.h"

#define ADMIN "rule:admin_api"
#define OWNER "rule:admin_or_owner"
#define ANY "@"
#define POLICY_TEXT_MAX 256

typedef struct policy_rule {
    const char *name;
    const char *def;
} policy_rule;

/* Nova's registered defaults for what Ferry serves (nova/policies), plus the
 * Glance rules of the image API. */
static const policy_rule rules[] = {
    {"admin_api", "is_admin:True"},
    {"admin_or_owner", "is_admin:True or project_id:%(project_id)s"},
    {"context_is_admin", "role:admin"},

    {"os_compute_api:os-flavor-manage:create", ADMIN},
    {"os_compute_api:os-flavor-manage:delete", ADMIN},
    {"os_compute_api:os-flavor-manage:update", ADMIN},
    {"os_compute_api:os-flavor-extra-specs:index", OWNER},
    {"os_compute_api:os-flavor-extra-specs:show", OWNER},
    {"os_compute_api:os-flavor-extra-specs:create", ADMIN},
    {"os_compute_api:os-flavor-extra-specs:update", ADMIN},
    {"os_compute_api:os-flavor-extra-specs:delete", ADMIN},

    {"os_compute_api:servers:index", OWNER},
    {"os_compute_api:servers:index:get_all_tenants", ADMIN},
    {"os_compute_api:servers:detail", OWNER},
    {"os_compute_api:servers:detail:get_all_tenants", ADMIN},
    {"os_compute_api:servers:allow_all_filters", ADMIN},
    {"os_compute_api:servers:show", OWNER},
    {"os_compute_api:servers:show:host_status", ADMIN},
    {"os_compute_api:servers:show:host_status:unknown-only", ADMIN},
    {"os_compute_api:servers:create", OWNER},
    {"os_compute_api:servers:create:forced_host", ADMIN},
    {"os_compute_api:servers:create:requested_destination", ADMIN},
    {"os_compute_api:servers:create:attach_volume", OWNER},
    {"os_compute_api:servers:create:attach_network", OWNER},
    {"os_compute_api:servers:create:trusted_certs", OWNER},
    {"os_compute_api:servers:create:zero_disk_flavor", ADMIN},
    {"os_compute_api:servers:update", OWNER},
    {"os_compute_api:servers:delete", OWNER},
    {"os_compute_api:servers:start", OWNER},
    {"os_compute_api:servers:stop", OWNER},
    {"os_compute_api:servers:reboot", OWNER},
    {"os_compute_api:servers:rebuild", OWNER},
    {"os_compute_api:servers:resize", OWNER},
    {"os_compute_api:servers:confirm_resize", OWNER},
    {"os_compute_api:servers:revert_resize", OWNER},
    {"os_compute_api:servers:migrations:index", ADMIN},
    {"os_compute_api:servers:migrations:show", ADMIN},
    {"os_compute_api:servers:migrations:force_complete", ADMIN},
    {"os_compute_api:servers:migrations:delete", ADMIN},
    {"os_compute_api:os-migrate-server:migrate", ADMIN},
    {"os_compute_api:os-migrate-server:migrate:host", ADMIN},
    {"os_compute_api:os-migrate-server:migrate_live", ADMIN},
    {"os_compute_api:os-migrations:index", ADMIN},
    {"os_compute_api:os-evacuate", ADMIN},
    {"os_compute_api:os-extended-server-attributes", ADMIN},
    {"os_compute_api:os-admin-actions:reset_state", ADMIN},
    {"os_compute_api:os-admin-actions:inject_network_info", ADMIN},
    {"os_compute_api:os-lock-server:lock", OWNER},
    {"os_compute_api:os-lock-server:unlock", OWNER},
    {"os_compute_api:os-lock-server:unlock:unlock_override", ADMIN},
    {"os_compute_api:os-pause-server:pause", OWNER},
    {"os_compute_api:os-pause-server:unpause", OWNER},
    {"os_compute_api:os-suspend-server:suspend", OWNER},
    {"os_compute_api:os-suspend-server:resume", OWNER},
    {"os_compute_api:os-instance-actions:list", OWNER},
    {"os_compute_api:os-instance-actions:show", OWNER},
    {"os_compute_api:os-instance-actions:events", ADMIN},
    {"os_compute_api:os-instance-actions:events:details", ADMIN},
    {"os_compute_api:os-server-external-events:create", ADMIN},
    {"os_compute_api:os-volumes-attachments:index", OWNER},
    {"os_compute_api:os-volumes-attachments:show", OWNER},
    {"os_compute_api:os-volumes-attachments:create", OWNER},
    {"os_compute_api:os-volumes-attachments:update", OWNER},
    {"os_compute_api:os-volumes-attachments:swap", ADMIN},
    {"os_compute_api:os-volumes-attachments:delete", OWNER},
    {"os_compute_api:os-attach-interfaces:list", OWNER},
    {"os_compute_api:os-attach-interfaces:show", OWNER},
    {"os_compute_api:os-attach-interfaces:create", OWNER},
    {"os_compute_api:os-attach-interfaces:delete", OWNER},
    {"os_compute_api:os-services:list", ADMIN},
    {"os_compute_api:os-services:update", ADMIN},
    {"os_compute_api:os-services:delete", ADMIN},
    {"os_compute_api:os-hypervisors:list", ADMIN},
    {"os_compute_api:os-hypervisors:list-detail", ADMIN},
    {"os_compute_api:os-hypervisors:show", ADMIN},
    {"os_compute_api:os-hypervisors:statistics", ADMIN},
    {"os_compute_api:os-hypervisors:uptime", ADMIN},
    {"os_compute_api:os-hypervisors:search", ADMIN},
    {"os_compute_api:os-hypervisors:servers", ADMIN},
    {"os_compute_api:os-availability-zone:list", ANY},
    {"os_compute_api:os-availability-zone:detail", ADMIN},
    {"os_compute_api:os-aggregates:index", ADMIN},
    {"os_compute_api:limits", ANY},
    {"os_compute_api:limits:other_project", ADMIN},
    {"os_compute_api:os-quota-sets:show", OWNER},
    {"os_compute_api:os-quota-sets:update", ADMIN},
    {"os_compute_api:os-quota-sets:defaults", ANY},
    {"os_compute_api:os-quota-sets:detail", OWNER},
    {"os_compute_api:os-quota-sets:delete", ADMIN},

    /* Glance */
    {"add_image", OWNER},
    {"delete_image", OWNER},
    {"get_image", ANY},
    {"get_images", ANY},
    {"upload_image", OWNER},
    {"download_image", ANY},
    {"publicize_image", "role:admin"},
    {"communitize_image", OWNER},

    /* Keystone */
    {"identity:validate_token", "rule:admin_api or rule:token_subject"},
    {"identity:revoke_token", "rule:admin_api or rule:token_subject"},
};

/* Overrides from the policy file, by index into rules[]; NULL = the default. */
static char *overrides[ELEMENTSOF(rules)];

static int rule_index(const char *name)
{
    for (size_t i = 0; i < ELEMENTSOF(rules); i++)
        if (strcmp(rules[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const char *rule_text(int i)
{
    return overrides[i] ? overrides[i] : rules[i].def;
}

static bool has_role(const fy_req *req, const char *role, size_t n)
{
    const char *p = req->auth.roles;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, role, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

static bool eval(const fy_req *req, const char *text, const char *owner, int depth);

/* One check ("role:admin", "rule:x", ...) of length n. */
static bool eval_term(const fy_req *req, const char *t, size_t n, const char *owner, int depth)
{
    char term[POLICY_TEXT_MAX];
    if (n >= sizeof term)
        return false;
    memcpy(term, t, n);
    term[n] = '\0';

    if (strcmp(term, "@") == 0 || strcmp(term, "") == 0)
        return true;
    if (strcmp(term, "!") == 0)
        return false;
    if (strcmp(term, "is_admin:True") == 0)
        return req->auth.is_admin;
    if (strcmp(term, "project_id:%(project_id)s") == 0)
        /* No target given: Nova checks against the caller's own project. */
        return !owner || (*req->auth.project_id && strcmp(owner, req->auth.project_id) == 0);
    if (strcmp(term, "rule:token_subject") == 0)
        return false;   /* decided by the identity handler, which knows the subject */
    if (strncmp(term, "role:", 5) == 0)
        return has_role(req, term + 5, strlen(term + 5)) ||
               (req->auth.is_service && strcmp(term + 5, "admin") == 0);
    if (strncmp(term, "rule:", 5) == 0) {
        int i = rule_index(term + 5);
        return i >= 0 && depth < 8 && eval(req, rule_text(i), owner, depth + 1);
    }
    return false;
}

static bool eval(const fy_req *req, const char *text, const char *owner, int depth)
{
    const char *p = text;
    for (;;) {
        const char *sep = strstr(p, " or ");
        size_t n = sep ? (size_t)(sep - p) : strlen(p);
        while (n > 0 && p[0] == ' ')
            p++, n--;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (eval_term(req, p, n, owner, depth))
            return true;
        if (!sep)
            return false;
        p = sep + 4;
    }
}

bool api_policy_allows(const fy_req *req, const char *policy, const char *owner_project)
{
    if (!req->auth.authenticated)
        return false;
    return eval(req, policy, owner_project, 0);
}

fy_code api_policy_check(const fy_req *req, const char *rule, const char *owner_project,
                         fy_err *err)
{
    int i = rule_index(rule);
    /* An unregistered name is a programming error; deny rather than guess. */
    const char *text = i >= 0 ? rule_text(i) : "rule:admin_api";
    if (i < 0)
        fy_debug("policy rule %s is not registered; treated as admin-only", rule);
    if (api_policy_allows(req, text, owner_project))
        return FY_E_OK;
    return fy_fail(err, FY_E_FORBIDDEN, "Policy doesn't allow %s to be performed.", rule);
}

/* A check text must be something eval() understands, or a typo would silently deny. */
static bool valid_text(const char *text)
{
    const char *p = text;
    for (;;) {
        const char *sep = strstr(p, " or ");
        size_t n = sep ? (size_t)(sep - p) : strlen(p);
        char term[POLICY_TEXT_MAX];
        if (n >= sizeof term)
            return false;
        memcpy(term, p, n);
        term[n] = '\0';
        bool ok = !strcmp(term, "@") || !strcmp(term, "!") || !strcmp(term, "") ||
                  !strcmp(term, "is_admin:True") || !strcmp(term, "project_id:%(project_id)s") ||
                  !strcmp(term, "rule:token_subject") ||
                  (!strncmp(term, "role:", 5) && term[5]) ||
                  (!strncmp(term, "rule:", 5) && rule_index(term + 5) >= 0);
        if (!ok)
            return false;
        if (!sep)
            return true;
        p = sep + 4;
    }
}

static void reset(void)
{
    for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
        free(overrides[i]);
        overrides[i] = NULL;
    }
}

static fy_code apply(json_t *doc, const char *file, fy_err *err)
{
    if (!json_is_object(doc))
        return fy_fail(err, FY_E_CONFIG, "%s: policy file must hold a JSON object", file);
    const char *name;
    json_t *val;
    json_object_foreach(doc, name, val) {
        int i = rule_index(name);
        if (i < 0)
            return fy_fail(err, FY_E_CONFIG, "%s: unknown policy rule \"%s\"", file, name);
        const char *text = json_string_value(val);
        if (!text || !valid_text(text))
            return fy_fail(err, FY_E_CONFIG, "%s: rule \"%s\": unsupported check %s", file,
                           name, text ? text : "(not a string)");
        free(overrides[i]);
        overrides[i] = strdup(text);
        if (!overrides[i])
            return fy_fail(err, FY_E_NOMEM, NULL);
    }
    return FY_E_OK;
}

fy_code api_policy_load(const char *file, fy_err *err)
{
    reset();
    if (!file || !*file)
        return FY_E_OK;
    json_error_t jerr;
    json_t *doc = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return fy_fail(err, FY_E_CONFIG, "%s:%d: %s", file, jerr.line, jerr.text);
    fy_code rc = apply(doc, file, err);
    json_decref(doc);
    if (rc != FY_E_OK)
        reset();
    return rc;
}

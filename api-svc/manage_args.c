/* ferry-manage option parsing and messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "manage.h"

static const manage_opt *find_opt(const manage_opt *opts, const char *name, size_t len)
{
    for (const manage_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

bool manage_parse(int argc, char **argv, const manage_opt *opts, const char **pos, int max_pos,
                  int *npos)
{
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (*npos >= max_pos) {
                fprintf(stderr, "ferry-manage: unexpected argument '%s'\n", a);
                return false;
            }
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const manage_opt *o = find_opt(opts, name, len);
        if (!o) {
            fprintf(stderr, "ferry-manage: unknown option '--%.*s'\n", (int)len, name);
            return false;
        }
        if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            fprintf(stderr, "ferry-manage: option '--%s' needs a value\n", o->name);
            return false;
        }
    }
    return true;
}

int manage_fail(const fy_err *e)
{
    fprintf(stderr, "ferry-manage: %s\n", e->msg);
    return MANAGE_FAIL;
}

int manage_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ferry-manage: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(run 'ferry-manage help' for usage)\n", stderr);
    va_end(ap);
    return MANAGE_USAGE;
}

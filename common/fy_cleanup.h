/* fy_cleanup — scope-bound ownership with __attribute__((cleanup)).
 *   _cleanup_free_ char *s = strdup("x");   freed at scope exit
 *   return TAKE_PTR(s);                      hands ownership out */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void fy_freep(void *p) { free(*(void **)p); }
static inline void fy_fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void fy_closep(int *fd) { if (*fd >= 0) close(*fd); }

#define _cleanup_free_ _cleanup_(fy_freep)
#define _cleanup_fclose_ _cleanup_(fy_fclosep)
#define _cleanup_close_ _cleanup_(fy_closep)

#define TAKE_PTR(p) ({ __typeof__(p) _tp = (p); (p) = NULL; _tp; })
#define TAKE_FD(fd) ({ int _tf = (fd); (fd) = -1; _tf; })

/* Declares fy_<type>_freep for a destructor that accepts NULL. */
#define FY_DEFINE_FREEP(type, fn) \
    static inline void fn##p(type **p) { if (*p) fn(*p); }

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

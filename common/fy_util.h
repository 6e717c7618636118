/* fy_util — small libc-only helpers. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "fy_err.h"

#define FY_UUID_LEN 36
void fy_uuid_v4(char out[FY_UUID_LEN + 1]);
bool fy_uuid_valid(const char *s);           /* canonical 8-4-4-4-12 hex form */
void fy_request_id_new(char out[48]);        /* "req-<uuid>" */
bool fy_random_bytes(void *buf, size_t n);   /* getrandom; false on failure */
void fy_hex(const uint8_t *in, size_t n, char *out /* 2n+1 */);

uint64_t fy_now_ms(void);                    /* CLOCK_MONOTONIC, ms */
uint64_t fy_now_us(void);                    /* CLOCK_MONOTONIC, us */
/* ISO 8601 "2026-11-27T14:37:53Z" / with microseconds "…53.123456" (Nova uses both). */
void fy_time_iso(time_t t, char out[32]);

char *fy_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool fy_streq(const char *a, const char *b);  /* NULL-safe */
bool fy_const_time_eq(const char *a, const char *b);
/* Parses a whole string as a base-10 integer within [min,max]. */
bool fy_parse_ll(const char *s, long long min, long long max, long long *ret);
/* mkdir -p with mode; 0 or -errno. */
int fy_mkdir_p(const char *path, unsigned mode);
/* Writes data to path atomically (tmp + rename + fsync). */
fy_code fy_write_file_atomic(const char *path, const void *data, size_t len, fy_err *err);
/* The same without fsync: readers see the old or the new content, never a mix,
 * and a crashed process loses nothing; only a power loss may. */
fy_code fy_write_file_replace(const char *path, const void *data, size_t len, fy_err *err);
/* Reads a whole file (NUL-terminated); caller frees. */
fy_code fy_read_file(const char *path, size_t max, char **ret, size_t *ret_len, fy_err *err);

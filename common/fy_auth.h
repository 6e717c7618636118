/* fy_auth — passwords and tokens.
 * Passwords: salted slow hashes (yescrypt via libcrypt).  Tokens: 32 random bytes,
 * handed out as hex; only their SHA-256 is stored. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "fy_err.h"

fy_code fy_password_hash(const char *password, char *out, size_t out_size, fy_err *err);
bool fy_password_verify(const char *password, const char *hash);

#define FY_TOKEN_LEN 64      /* hex chars */
void fy_token_new(char out[FY_TOKEN_LEN + 1]);
void fy_token_digest(const char *token, char out[65]);   /* sha256 hex */
/* Random printable secret (for generated passwords). */
void fy_secret_new(char *out, size_t len);

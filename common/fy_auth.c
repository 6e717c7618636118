/* fy_auth — password hashing (yescrypt via libxcrypt) and API tokens. */
#include "fy_auth.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "fy_cleanup.h"
#include "fy_util.h"

fy_code fy_password_hash(const char *password, char *out, size_t out_size, fy_err *err)
{
    if (!password)
        return fy_fail(err, FY_E_BAD_REQUEST, "password is missing");
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
        return fy_fail(err, FY_E_INTERNAL, "crypt_gensalt failed: %s", strerror(errno));
    /* struct crypt_data is tens of kilobytes: too big for a worker thread's stack. */
    _cleanup_free_ struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *h = crypt_rn(password, salt, cd, sizeof *cd);
    if (!h || h[0] == '*')
        return fy_fail(err, FY_E_INTERNAL, "password hashing failed");
    size_t len = strlen(h);
    if (len + 1 > out_size)
        return fy_fail(err, FY_E_INTERNAL, "password hash needs %zu bytes, buffer has %zu",
                       len + 1, out_size);
    memcpy(out, h, len + 1);
    explicit_bzero(cd, sizeof *cd);
    return FY_E_OK;
}

bool fy_password_verify(const char *password, const char *hash)
{
    if (!password || !hash || !*hash)
        return false;
    _cleanup_free_ struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *h = crypt_rn(password, hash, cd, sizeof *cd);
    bool ok = h && h[0] != '*' && fy_const_time_eq(h, hash);
    explicit_bzero(cd, sizeof *cd);
    return ok;
}

void fy_token_new(char out[FY_TOKEN_LEN + 1])
{
    uint8_t raw[FY_TOKEN_LEN / 2];
    /* A predictable token would be worse than stopping. */
    if (!fy_random_bytes(raw, sizeof raw))
        abort();
    fy_hex(raw, sizeof raw, out);
    explicit_bzero(raw, sizeof raw);
}

void fy_token_digest(const char *token, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const char *t = token ? token : "";
    if (!EVP_Digest(t, strlen(t), md, &md_len, EVP_sha256(), NULL) || md_len != 32)
        abort(); /* SHA-256 cannot fail short of a broken libcrypto */
    fy_hex(md, md_len, out);
}

void fy_secret_new(char *out, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const unsigned n = sizeof alphabet - 1; /* 62 */
    if (!out || len == 0)
        return;
    size_t i = 0;
    while (i + 1 < len) {
        uint8_t b[64];
        if (!fy_random_bytes(b, sizeof b))
            abort();
        for (size_t k = 0; k < sizeof b && i + 1 < len; k++) {
            /* Rejection sampling keeps every character equally likely. */
            if (b[k] >= 256 - 256 % n)
                continue;
            out[i++] = alphabet[b[k] % n];
        }
        explicit_bzero(b, sizeof b);
    }
    out[i] = '\0';
}

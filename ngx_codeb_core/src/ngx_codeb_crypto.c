/*
 * Secrets and signatures with OpenSSL: HMAC (RFC 2104), constant-time
 * comparison, random identifiers.
 */

#include "ngx_codeb_core.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


static u_char  ngx_codeb_hex[] = "0123456789abcdef";


static void ngx_codeb_hex_encode(u_char *md, size_t n, u_char *hex);


ngx_uint_t
ngx_codeb_equal_secret(u_char *a, size_t alen, u_char *b, size_t blen)
{
    if (alen != blen) {
        return 0;
    }

    return CRYPTO_memcmp(a, b, alen) == 0;
}


void
ngx_codeb_hmac_sha256_hex(ngx_str_t *key, ngx_str_t *data, u_char *hex)
{
    u_char        md[EVP_MAX_MD_SIZE];
    unsigned int  mdlen;

    mdlen = 0;
    (void) HMAC(EVP_sha256(), key->data, (int) key->len, data->data,
                data->len, md, &mdlen);

    ngx_hex_dump(hex, md, mdlen);
}


void
ngx_codeb_hmac_sha1_base64(ngx_str_t *key, ngx_str_t *data, ngx_str_t *out)
{
    u_char        md[EVP_MAX_MD_SIZE];
    unsigned int  mdlen;
    ngx_str_t     src;

    mdlen = 0;
    (void) HMAC(EVP_sha1(), key->data, (int) key->len, data->data,
                data->len, md, &mdlen);

    src.data = md;
    src.len = mdlen;
    ngx_encode_base64(out, &src);
}


ngx_int_t
ngx_codeb_random_hex(u_char *out, size_t n)
{
    u_char  buf[64];

    if (n > sizeof(buf) || RAND_bytes(buf, (int) n) != 1) {
        return NGX_ERROR;
    }

    ngx_hex_dump(out, buf, n);

    return NGX_OK;
}


ngx_int_t
ngx_codeb_random_alnum(u_char *out, size_t n)
{
    static u_char  alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";

    u_char  buf[64];
    size_t  i, k;

    /* rejection sampling keeps the 36 characters equally likely */

    for (i = 0; i < n; /* void */) {
        if (RAND_bytes(buf, sizeof(buf)) != 1) {
            return NGX_ERROR;
        }

        for (k = 0; k < sizeof(buf) && i < n; k++) {
            if (buf[k] < 252) {
                out[i++] = alnum[buf[k] % 36];
            }
        }
    }

    return NGX_OK;
}


void
ngx_codeb_sha1_hex(u_char *data, size_t len, u_char *hex)
{
    u_char  md[SHA_DIGEST_LENGTH];

    SHA1(data, len, md);
    ngx_codeb_hex_encode(md, SHA_DIGEST_LENGTH, hex);
}


void
ngx_codeb_sha256_hex(u_char *data, size_t len, u_char *hex)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    SHA256(data, len, md);
    ngx_codeb_hex_encode(md, SHA256_DIGEST_LENGTH, hex);
}


/* n bytes as 2n lowercase hex chars and a NUL */
static void
ngx_codeb_hex_encode(u_char *md, size_t n, u_char *hex)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        hex[2 * i] = ngx_codeb_hex[md[i] >> 4];
        hex[2 * i + 1] = ngx_codeb_hex[md[i] & 0xf];
    }

    hex[2 * n] = '\0';
}

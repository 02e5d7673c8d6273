/*
 * Secrets and signatures with OpenSSL: HMAC (RFC 2104), constant-time
 * comparison, random identifiers.
 */

#include "ngx_codeb_core.h"
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


static u_char  ngx_codeb_hex[] = "0123456789abcdef";


static void ngx_codeb_hex_encode(u_char *md, size_t n, u_char *hex);
static ngx_int_t ngx_codeb_base64url(ngx_pool_t *pool, u_char *data,
    size_t len, ngx_str_t *out);


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


ngx_codeb_oidc_key_t *
ngx_codeb_oidc_key(ngx_pool_t *pool, ngx_str_t *pem, char **err)
{
    u_char                 pub[65], md[SHA256_DIGEST_LENGTH], jwk[256], *p;
    char                   curve[32], *data;
    long                   n;
    size_t                 len;
    BIO                   *in, *out;
    EVP_PKEY              *pkey;
    ngx_str_t              d;
    ngx_codeb_oidc_key_t  *k;

    *err = "the key is not a PEM EC P-256 private key";
    k = NULL;
    out = NULL;
    pkey = NULL;

    in = BIO_new_mem_buf(pem->data, (int) pem->len);
    if (in == NULL) {
        return NULL;
    }

    pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);

    if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC
        || EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                          curve, sizeof(curve), NULL) != 1
        || ngx_strcmp(curve, "prime256v1") != 0
        || EVP_PKEY_get_octet_string_param(pkey,
                                           OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                           pub, sizeof(pub), &len) != 1
        || len != 65 || pub[0] != 0x04)
    {
        goto done;
    }

    *err = "out of memory";

    k = ngx_pcalloc(pool, sizeof(ngx_codeb_oidc_key_t));
    out = BIO_new(BIO_s_mem());
    if (k == NULL || out == NULL || PEM_write_bio_PUBKEY(out, pkey) != 1) {
        k = NULL;
        goto done;
    }

    n = BIO_get_mem_data(out, &data);
    d.data = (u_char *) data;
    d.len = (size_t) n;

    k->private_pem = *pem;
    k->public_pem.data = ngx_pstrdup(pool, &d);
    k->public_pem.len = d.len;

    if (k->public_pem.data == NULL
        || ngx_codeb_base64url(pool, pub + 1, 32, &k->x) != NGX_OK
        || ngx_codeb_base64url(pool, pub + 33, 32, &k->y) != NGX_OK)
    {
        k = NULL;
        goto done;
    }

    /* RFC 7638: the members crv, kty, x, y in this order, no spaces */
    p = ngx_snprintf(jwk, sizeof(jwk),
                     "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%V\","
                     "\"y\":\"%V\"}", &k->x, &k->y);
    SHA256(jwk, p - jwk, md);

    if (ngx_codeb_base64url(pool, md, sizeof(md), &k->kid) != NGX_OK) {
        k = NULL;
    }

done:

    EVP_PKEY_free(pkey);
    BIO_free(in);
    BIO_free(out);

    return k;
}


/* len bytes of data as base64url without padding (RFC 4648 §5) */
static ngx_int_t
ngx_codeb_base64url(ngx_pool_t *pool, u_char *data, size_t len,
    ngx_str_t *out)
{
    ngx_str_t  src;

    src.data = data;
    src.len = len;

    out->data = ngx_pnalloc(pool, ngx_base64_encoded_length(len));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(out, &src);

    return NGX_OK;
}

/*
 * OIDC ID/access token validation (RFC 7519, RFC 7515 compact form) with
 * libjwt for the signature.  The algorithm is read from the JOSE header
 * first and must match the tenant's key type, so an HS256 token can never
 * be checked against an RS256 public key used as an HMAC secret.
 */

#include "ngx_codeb_core.h"
#include <jwt.h>
#include <yajl/yajl_tree.h>


#define NGX_CODEB_JWT_MAX  8192


static ngx_int_t ngx_codeb_jwt_alg(ngx_str_t *token, ngx_pool_t *pool,
    ngx_str_t *alg);
static ngx_uint_t ngx_codeb_jwt_has(jwt_t *jwt, const char *claim,
    ngx_str_t *value);
static char *ngx_codeb_jwt_claims(ngx_codeb_tenant_t *t, jwt_t *jwt);
static ngx_int_t ngx_codeb_jwt_identity(jwt_t *jwt, ngx_pool_t *pool,
    ngx_str_t *identity);


ngx_int_t
ngx_codeb_jwt_verify(ngx_codeb_tenant_t *t, ngx_str_t *token, ngx_pool_t *pool,
    ngx_log_t *log, ngx_str_t *identity, ngx_flag_t *admin)
{
    ngx_int_t    rc;
    char        *tok, *why;
    jwt_t       *jwt;
    ngx_str_t    alg, *key, client = ngx_string(NGX_CODEB_OIDC_CLIENT);
    ngx_uint_t   self;
    const char  *expected;

    if (token->len == 0 || token->len > NGX_CODEB_JWT_MAX) {
        ngx_log_error(NGX_LOG_INFO, log, 0, "token refused: bad length");
        return NGX_DECLINED;
    }

    rc = ngx_codeb_jwt_alg(token, pool, &alg);
    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "token refused: malformed header");
        }
        return rc;
    }

    /*
     * the algorithm is pinned to the key: ES256 only with the IdP's own
     * EC key, HS256 or RS256 only with the key configured for it (no HS256
     * against a public key)
     */

    self = alg.len == 5 && ngx_strncmp(alg.data, "ES256", 5) == 0
           && t->oidc_key;

    if (self) {
        key = &t->oidc_key->public_pem;
        expected = "ES256";

    } else if (t->oidc_hs256_secret.len) {
        key = &t->oidc_hs256_secret;
        expected = "HS256";

    } else if (t->oidc_rs256_key.len) {
        key = &t->oidc_rs256_key;
        expected = "RS256";

    } else {
        ngx_log_error(NGX_LOG_INFO, log, 0, "token refused: no OIDC key "
                      "configured for tenant \"%V\"", &t->name);
        return NGX_DECLINED;
    }

    if (alg.len != 5 || ngx_strncmp(alg.data, expected, 5) != 0) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "token refused: algorithm is not %s", expected);
        return NGX_DECLINED;
    }

    tok = (char *) ngx_pnalloc(pool, token->len + 1);
    if (tok == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(tok, token->data, token->len);
    tok[token->len] = '\0';

    jwt = NULL;

    if (jwt_decode(&jwt, tok, key->data, (int) key->len) != 0
        || jwt == NULL)
    {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "token refused: signature invalid");
        return NGX_DECLINED;
    }

    if (self) {
        why = ngx_codeb_jwt_has(jwt, "aud", &client)
              ? ngx_codeb_jwt_claims(NULL, jwt) : "wrong audience";

    } else {
        why = ngx_codeb_jwt_claims(t, jwt);
    }

    if (why) {
        ngx_log_error(NGX_LOG_INFO, log, 0, "token refused: %s", why);
        rc = NGX_DECLINED;

    } else {
        rc = ngx_codeb_jwt_identity(jwt, pool, identity);

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, log, 0, "token refused: no identity");
        }

        *admin = ngx_codeb_jwt_has(jwt, "role", NULL)
                 || ngx_codeb_jwt_has(jwt, "roles", NULL);
    }

    jwt_free(jwt);

    return rc;
}


/*
 * NULL when exp is in the future and iss and aud are as t configures
 * (t NULL: exp only), else what is wrong
 */
static char *
ngx_codeb_jwt_claims(ngx_codeb_tenant_t *t, jwt_t *jwt)
{
    long  exp;

    errno = 0;
    exp = jwt_get_grant_int(jwt, "exp");

    if (errno != 0 || exp <= (long) ngx_time()) {
        return "expired or without exp";
    }

    if (t == NULL) {
        return NULL;
    }

    if (t->oidc_issuer.len && !ngx_codeb_jwt_has(jwt, "iss", &t->oidc_issuer))
    {
        return "wrong issuer";
    }

    if (t->oidc_audience.len
        && !ngx_codeb_jwt_has(jwt, "aud", &t->oidc_audience))
    {
        return "wrong audience";
    }

    return NULL;
}


/* preferred_username, else email, else sub (at most 256 bytes) */
static ngx_int_t
ngx_codeb_jwt_identity(jwt_t *jwt, ngx_pool_t *pool, ngx_str_t *identity)
{
    const char  *id;

    id = jwt_get_grant(jwt, "preferred_username");
    if (id == NULL || *id == '\0') {
        id = jwt_get_grant(jwt, "email");
    }

    if (id == NULL || *id == '\0') {
        id = jwt_get_grant(jwt, "sub");
    }

    if (id == NULL || *id == '\0' || ngx_strlen(id) > 256) {
        return NGX_DECLINED;
    }

    identity->len = ngx_strlen(id);
    identity->data = ngx_pnalloc(pool, identity->len);
    if (identity->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(identity->data, id, identity->len);

    return NGX_OK;
}


/* the "alg" of the JOSE header (first dot-separated base64url segment) */
static ngx_int_t
ngx_codeb_jwt_alg(ngx_str_t *token, ngx_pool_t *pool, ngx_str_t *alg)
{
    u_char                   *dot;
    ngx_str_t                 src, dst;
    ngx_array_t              *members;
    ngx_codeb_json_member_t  *m;

    dot = ngx_strlchr(token->data, token->data + token->len, '.');
    if (dot == NULL || dot == token->data) {
        return NGX_DECLINED;
    }

    src.data = token->data;
    src.len = dot - token->data;

    dst.data = ngx_pnalloc(pool, ngx_base64_decoded_length(src.len));
    if (dst.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(&dst, &src) != NGX_OK) {
        return NGX_DECLINED;
    }

    switch (ngx_codeb_json_object(pool, dst.data, dst.len, &members)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_ERROR;
    default:
        return NGX_DECLINED;
    }

    m = ngx_codeb_json_get_type(members, "alg", NGX_CODEB_JSON_STRING);
    if (m == NULL) {
        return NGX_DECLINED;
    }

    *alg = m->str;

    return NGX_OK;
}


/*
 * 1 when claim equals value or is an array containing it; value NULL
 * means the literal "admin"
 */
static ngx_uint_t
ngx_codeb_jwt_has(jwt_t *jwt, const char *claim, ngx_str_t *value)
{
    char        *json;
    size_t       i, n;
    const char  *s, *want;
    yajl_val     root, v;
    ngx_uint_t   found;

    want = value ? (const char *) value->data : "admin";
    n = value ? value->len : 5;

    s = jwt_get_grant(jwt, claim);
    if (s) {
        return ngx_strlen(s) == n && ngx_strncmp(s, want, n) == 0;
    }

    json = jwt_get_grants_json(jwt, claim);
    if (json == NULL) {
        return 0;
    }

    root = yajl_tree_parse(json, NULL, 0);
    free(json);

    if (root == NULL) {
        return 0;
    }

    found = 0;

    if (YAJL_IS_ARRAY(root)) {
        for (i = 0; i < root->u.array.len; i++) {
            v = root->u.array.values[i];

            if (YAJL_IS_STRING(v) && ngx_strlen(v->u.string) == n
                && ngx_strncmp(v->u.string, want, n) == 0)
            {
                found = 1;
                break;
            }
        }
    }

    yajl_tree_free(root);

    return found;
}

/*
 * What the platform's OIDC provider says of itself (docs/api.md "Token
 * endpoint"): its issuer, the discovery document (OpenID Connect
 * Discovery 1.0 §3) and the JWKS of its signing key (RFC 7517).
 */

#include "ngx_codeb_api.h"


/* "<scheme>://<Host>/oidc.ashx", NUL-terminated */
ngx_int_t
ngx_codeb_api_oidc_issuer(ngx_http_request_t *r, ngx_str_t *iss)
{
    u_char     *p;
    ngx_str_t   host;

    host = r->headers_in.host ? r->headers_in.host->value
                              : ngx_codeb_tenant(r)->name;

    iss->data = ngx_pnalloc(r->pool, sizeof("https:///oidc.ashx") + host.len);
    if (iss->data == NULL) {
        return NGX_ERROR;
    }

#if (NGX_HTTP_SSL)
    p = ngx_sprintf(iss->data, "%s://%V/oidc.ashx%Z",
                    r->connection->ssl ? "https" : "http", &host);
#else
    p = ngx_sprintf(iss->data, "http://%V/oidc.ashx%Z", &host);
#endif

    iss->len = p - iss->data - 1;

    return NGX_OK;
}


/* GET /oidc.ashx/.well-known/openid-configuration */
ngx_int_t
ngx_codeb_api_oidc_discovery(ngx_http_request_t *r)
{
    u_char     *p;
    yajl_gen    g;
    ngx_str_t   iss, url;
    ngx_uint_t  i;

    static char  *grants[] = { "password", "refresh_token", NULL };
    static char  *scopes[] = { "openid", "offline_access", NULL };

    url.data = NULL;

    if (ngx_codeb_api_oidc_issuer(r, &iss) == NGX_OK) {
        url.data = ngx_pnalloc(r->pool, iss.len + sizeof("/token"));
    }

    g = ngx_codeb_gen();
    if (url.data == NULL || g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_vstr(g, "issuer", &iss);
    p = ngx_sprintf(url.data, "%V/token", &iss);
    ngx_codeb_gen_str(g, "token_endpoint", url.data, p - url.data);
    p = ngx_sprintf(url.data, "%V/jwks", &iss);
    ngx_codeb_gen_str(g, "jwks_uri", url.data, p - url.data);

    ngx_codeb_gen_key(g, "grant_types_supported");
    yajl_gen_array_open(g);
    for (i = 0; grants[i]; i++) {
        yajl_gen_string(g, (u_char *) grants[i], ngx_strlen(grants[i]));
    }
    yajl_gen_array_close(g);

    ngx_codeb_gen_key(g, "scopes_supported");
    yajl_gen_array_open(g);
    for (i = 0; scopes[i]; i++) {
        yajl_gen_string(g, (u_char *) scopes[i], ngx_strlen(scopes[i]));
    }
    yajl_gen_array_close(g);

    ngx_codeb_gen_key(g, "response_types_supported");
    yajl_gen_array_open(g);
    yajl_gen_string(g, (u_char *) "token", 5);
    yajl_gen_array_close(g);

    ngx_codeb_gen_key(g, "subject_types_supported");
    yajl_gen_array_open(g);
    yajl_gen_string(g, (u_char *) "public", 6);
    yajl_gen_array_close(g);

    ngx_codeb_gen_key(g, "id_token_signing_alg_values_supported");
    yajl_gen_array_open(g);
    yajl_gen_string(g, (u_char *) "ES256", 5);
    yajl_gen_array_close(g);

    ngx_codeb_gen_key(g, "token_endpoint_auth_methods_supported");
    yajl_gen_array_open(g);
    yajl_gen_string(g, (u_char *) "none", 4);
    yajl_gen_array_close(g);

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}


/* GET /oidc.ashx/jwks: the signing key's public half */
ngx_int_t
ngx_codeb_api_oidc_jwks(ngx_http_request_t *r)
{
    yajl_gen               g;
    ngx_codeb_oidc_key_t  *k;

    k = ngx_codeb_tenant(r)->oidc_key;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_key(g, "keys");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    ngx_codeb_gen_cstr(g, "kty", "EC");
    ngx_codeb_gen_cstr(g, "crv", "P-256");
    ngx_codeb_gen_vstr(g, "x", &k->x);
    ngx_codeb_gen_vstr(g, "y", &k->y);
    ngx_codeb_gen_cstr(g, "use", "sig");
    ngx_codeb_gen_cstr(g, "alg", "ES256");
    ngx_codeb_gen_vstr(g, "kid", &k->kid);
    yajl_gen_map_close(g);
    yajl_gen_array_close(g);

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}

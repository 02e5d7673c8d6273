/*
 * What the API says of itself, both from the route table: GET
 * /api.ashx/v1 (the seed's "Live API description") and GET
 * /api.ashx/v1/openapi.json (OpenAPI 3.1).  docs/api.md "Self-describe".
 */

#include "ngx_codeb_api.h"


static void ngx_codeb_api_openapi_path(yajl_gen g,
    ngx_codeb_api_route_t *first);
static void ngx_codeb_api_openapi_op(yajl_gen g, ngx_codeb_api_route_t *rt);


ngx_int_t
ngx_codeb_api_describe(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char                 *p, *path;
    yajl_gen                g;
    ngx_codeb_api_route_t  *rt;

    g = ngx_codeb_gen();
    path = ngx_pnalloc(r->pool, 256);
    if (g == NULL || path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_cstr(g, "name", "CodeB Platform REST API");
    ngx_codeb_gen_cstr(g, "version", "v1");
    ngx_codeb_gen_cstr(g, "build", ngx_codeb_build());
    ngx_codeb_gen_key(g, "endpoints");
    yajl_gen_array_open(g);

    for (rt = ngx_codeb_api_routes; rt->path; rt++) {
        p = ngx_snprintf(path, 256, "/api.ashx%s", rt->path);

        yajl_gen_map_open(g);
        ngx_codeb_gen_cstr(g, "method", ngx_codeb_api_method_name(rt->method));
        ngx_codeb_gen_str(g, "path", path, p - path);
        ngx_codeb_gen_cstr(g, "description", rt->description);
        ngx_codeb_gen_cstr(g, "area", rt->area);
        ngx_codeb_gen_bool(g, "auth", !(rt->flags & NGX_CODEB_API_PUBLIC));
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_codeb_gen_cstr(g, "auth", "Authorization: Bearer <token>. token = "
                       "OIDC access token (role=admin) OR an ak_-prefixed "
                       "API key");
    ngx_codeb_gen_cstr(g, "pagination",
                       "?limit=N&offset=M  (defaults 50, 0; limit <= 500)");
    ngx_codeb_gen_cstr(g, "errors",
                       "{ error: <code>, error_description: <text> }");
    ngx_codeb_gen_cstr(g, "openapi", "/api.ashx/v1/openapi.json");

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}


ngx_int_t
ngx_codeb_api_openapi(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    yajl_gen                g;
    ngx_codeb_api_route_t  *rt, *seen;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_cstr(g, "openapi", "3.1.0");

    ngx_codeb_gen_key(g, "info");
    yajl_gen_map_open(g);
    ngx_codeb_gen_cstr(g, "title", "CodeB Platform REST API");
    ngx_codeb_gen_cstr(g, "version", ngx_codeb_build());
    yajl_gen_map_close(g);

    ngx_codeb_gen_key(g, "paths");
    yajl_gen_map_open(g);

    for (rt = ngx_codeb_api_routes; rt->path; rt++) {

        /* one Path Item per path, with all its methods */
        for (seen = ngx_codeb_api_routes; seen < rt; seen++) {
            if (ngx_strcmp(seen->path, rt->path) == 0) {
                break;
            }
        }

        if (seen == rt) {
            ngx_codeb_api_openapi_path(g, rt);
        }
    }

    yajl_gen_map_close(g);

    ngx_codeb_gen_key(g, "components");
    yajl_gen_map_open(g);
    ngx_codeb_gen_key(g, "securitySchemes");
    yajl_gen_map_open(g);
    ngx_codeb_gen_key(g, "bearer");
    yajl_gen_map_open(g);
    ngx_codeb_gen_cstr(g, "type", "http");
    ngx_codeb_gen_cstr(g, "scheme", "bearer");
    ngx_codeb_gen_cstr(g, "description", "an OIDC access token with "
                       "role=admin, or an ak_ API key");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    ngx_codeb_gen_key(g, "security");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    ngx_codeb_gen_key(g, "bearer");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    yajl_gen_array_close(g);

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}


/* "/api.ashx<path>": { "<method>": operation, ... } of first's path */
static void
ngx_codeb_api_openapi_path(yajl_gen g, ngx_codeb_api_route_t *first)
{
    u_char                  path[256], *p;
    ngx_codeb_api_route_t  *rt;

    p = ngx_snprintf(path, sizeof(path) - 1, "/api.ashx%s", first->path);
    *p = '\0';

    ngx_codeb_gen_key(g, (char *) path);
    yajl_gen_map_open(g);

    for (rt = first; rt->path; rt++) {
        if (ngx_strcmp(rt->path, first->path) == 0) {
            ngx_codeb_api_openapi_op(g, rt);
        }
    }

    yajl_gen_map_close(g);
}


/* one Operation Object: summary, tag, path parameter, security, answers */
static void
ngx_codeb_api_openapi_op(yajl_gen g, ngx_codeb_api_route_t *rt)
{
    char    *m;
    u_char  *s, *e, name[8];

    m = ngx_codeb_api_method_name(rt->method);
    ngx_strlow(name, (u_char *) m, ngx_strlen(m) + 1);
    ngx_codeb_gen_key(g, (char *) name);
    yajl_gen_map_open(g);

    ngx_codeb_gen_cstr(g, "summary", rt->description);
    ngx_codeb_gen_key(g, "tags");
    yajl_gen_array_open(g);
    yajl_gen_string(g, (u_char *) rt->area, ngx_strlen(rt->area));
    yajl_gen_array_close(g);

    s = (u_char *) ngx_strchr(rt->path, '{');

    if (s) {
        e = (u_char *) ngx_strchr(s, '}');

        ngx_codeb_gen_key(g, "parameters");
        yajl_gen_array_open(g);
        yajl_gen_map_open(g);
        ngx_codeb_gen_str(g, "name", s + 1, e - s - 1);
        ngx_codeb_gen_cstr(g, "in", "path");
        ngx_codeb_gen_bool(g, "required", 1);
        ngx_codeb_gen_key(g, "schema");
        yajl_gen_map_open(g);
        ngx_codeb_gen_cstr(g, "type", "string");
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
        yajl_gen_array_close(g);
    }

    if (rt->flags & NGX_CODEB_API_PUBLIC) {
        ngx_codeb_gen_key(g, "security");
        yajl_gen_array_open(g);
        yajl_gen_array_close(g);
    }

    if (rt->flags & NGX_CODEB_API_BODY) {
        ngx_codeb_gen_key(g, "requestBody");
        yajl_gen_map_open(g);
        ngx_codeb_gen_bool(g, "required", 1);
        ngx_codeb_gen_key(g, "content");
        yajl_gen_map_open(g);
        ngx_codeb_gen_key(g, "application/json");
        yajl_gen_map_open(g);
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
    }

    ngx_codeb_gen_key(g, "responses");
    yajl_gen_map_open(g);
    ngx_codeb_gen_key(g, rt->method == NGX_HTTP_POST
                         && (rt->flags & NGX_CODEB_API_BODY) ? "201" : "200");
    yajl_gen_map_open(g);
    ngx_codeb_gen_cstr(g, "description", "success");
    yajl_gen_map_close(g);
    ngx_codeb_gen_key(g, "default");
    yajl_gen_map_open(g);
    ngx_codeb_gen_cstr(g, "description",
                       "{error, error_description} with the status");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    yajl_gen_map_close(g);
}

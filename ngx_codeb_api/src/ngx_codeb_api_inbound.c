/*
 * Inbound routes (docs/api.md "Inbound routes"): the tenant's
 * codeb_inbound_route rows in the order SIP inbound routing and
 * ?office-ring evaluate them (first match; did "*" is the catch-all).
 * Read-only for now: they come from nginx.conf.
 */

#include "ngx_codeb_api.h"


static void ngx_codeb_api_inbound_members(yajl_gen g, ngx_codeb_route_t *rt);


/* GET /v1/inbound-routes: the list envelope of {did, fromNumber, user} */
ngx_int_t
ngx_codeb_api_inbound_list(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    yajl_gen            g;
    ngx_int_t           limit, offset, rc, i, n;
    ngx_codeb_route_t  *rt;

    if (ngx_codeb_api_page(r, &limit, &offset, &rc) != NGX_OK) {
        return rc;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = ctx->tenant->routes ? (ngx_int_t) ctx->tenant->routes->nelts : 0;
    rt = n ? ctx->tenant->routes->elts : NULL;

    ngx_codeb_gen_key(g, "data");
    yajl_gen_array_open(g);

    for (i = offset; i < n && i < offset + limit; i++) {
        yajl_gen_map_open(g);
        ngx_codeb_api_inbound_members(g, &rt[i]);
        yajl_gen_map_close(g);
    }

    return ngx_codeb_api_page_send(r, g, n, limit, offset);
}


/*
 * GET /v1/inbound-routes/{did}[?fromNumber=]: the first row whose did is
 * the path segment (and whose from is fromNumber, when given); 404 none
 */
ngx_int_t
ngx_codeb_api_inbound_get(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char             *p, *text;
    yajl_gen            g;
    ngx_str_t           from, raw;
    ngx_uint_t          i, n, by_from;
    ngx_codeb_route_t  *rt;

    by_from = ngx_http_arg(r, (u_char *) "fromNumber", 10, &raw) == NGX_OK;

    if (by_from) {
        from.data = ngx_pnalloc(r->pool, raw.len);
        if (from.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = from.data;
        ngx_unescape_uri(&p, &raw.data, raw.len, NGX_UNESCAPE_URI);
        from.len = p - from.data;
    }

    n = ctx->tenant->routes ? ctx->tenant->routes->nelts : 0;
    rt = n ? ctx->tenant->routes->elts : NULL;

    for (i = 0; i < n; i++) {
        if (rt[i].did.len == ctx->param.len
            && ngx_strncmp(rt[i].did.data, ctx->param.data, ctx->param.len)
               == 0
            && (!by_from
                || (rt[i].from.len == from.len
                    && ngx_strncmp(rt[i].from.data, from.data, from.len)
                       == 0)))
        {
            g = ngx_codeb_gen();
            if (g == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_codeb_api_inbound_members(g, &rt[i]);

            return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
        }
    }

    text = ngx_pnalloc(r->pool, NGX_CODEB_API_MAX_PARAM * 2 + 64);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_snprintf(text, NGX_CODEB_API_MAX_PARAM * 2 + 63,
                     "No inbound route with did='%V'", &ctx->param);
    *p = '\0';

    return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                (char *) text);
}


/* the members did, fromNumber (unless "*": no filter) and user */
static void
ngx_codeb_api_inbound_members(yajl_gen g, ngx_codeb_route_t *rt)
{
    ngx_codeb_gen_vstr(g, "did", &rt->did);

    if (!(rt->from.len == 1 && rt->from.data[0] == '*')) {
        ngx_codeb_gen_vstr(g, "fromNumber", &rt->from);
    }

    ngx_codeb_gen_vstr(g, "user", &rt->user);
}

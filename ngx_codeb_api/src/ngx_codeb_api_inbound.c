/*
 * Inbound routes (docs/api.md "Inbound routes"): the tenant's table in
 * Redis (ngx_codeb_routes.c), which SIP inbound routing and ?office-ring
 * read, seeded from the codeb_inbound_route directives the first time.
 * Rows are {did, fromNumber, user}; fromNumber "*" (no filter) is left
 * out; a row is addressed by (did, fromNumber).
 */

#include "ngx_codeb_api.h"


#define NGX_CODEB_API_ROUTE_MAX   128        /* bytes of did, from, user */


static ngx_int_t ngx_codeb_api_inbound_run(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, char *op, ngx_str_t *args, ngx_uint_t n,
    redisCallbackFn *cb);
static void ngx_codeb_api_inbound_listed(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_api_inbound_changed(redisAsyncContext *ac,
    void *reply, void *data);
static ngx_int_t ngx_codeb_api_inbound_row(ngx_pool_t *pool, u_char *text,
    size_t len, ngx_codeb_route_t *rt);
static void ngx_codeb_api_inbound_members(yajl_gen g, ngx_codeb_route_t *rt);
static ngx_int_t ngx_codeb_api_inbound_from(ngx_http_request_t *r,
    ngx_str_t *from);
static ngx_int_t ngx_codeb_api_inbound_value(ngx_str_t *v);
static ngx_int_t ngx_codeb_api_inbound_missing(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);


/* GET /v1/inbound-routes and GET /v1/inbound-routes/{did} */
ngx_int_t
ngx_codeb_api_inbound_list(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_int_t  limit, offset, rc;

    if (ngx_codeb_api_page(r, &limit, &offset, &rc) != NGX_OK) {
        return rc;
    }

    return ngx_codeb_api_inbound_run(r, ctx, "list", NULL, 0,
                                     ngx_codeb_api_inbound_listed);
}


ngx_int_t
ngx_codeb_api_inbound_get(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    return ngx_codeb_api_inbound_run(r, ctx, "list", NULL, 0,
                                     ngx_codeb_api_inbound_listed);
}


/* POST /v1/inbound-routes {did, fromNumber?, user}: before the catch-all */
ngx_int_t
ngx_codeb_api_inbound_post(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_str_t                 args[3];
    ngx_codeb_json_member_t  *did, *from, *user;

    did = ngx_codeb_api_field(ctx, "did");
    from = ngx_codeb_api_field(ctx, "fromNumber");
    user = ngx_codeb_api_field(ctx, "user");

    if (did == NULL || ngx_codeb_api_inbound_value(&did->str) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "did: a string of 1 to 128 printable "
                                    "bytes is required");
    }

    if (user == NULL || ngx_codeb_api_inbound_value(&user->str) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "user: a string of 1 to 128 printable "
                                    "bytes is required");
    }

    if (from && ngx_codeb_api_inbound_value(&from->str) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "fromNumber: 1 to 128 printable bytes");
    }

    args[0] = did->str;
    ngx_str_set(&args[1], "*");
    args[2] = user->str;

    if (from) {
        args[1] = from->str;
    }

    ctx->data = ngx_pcalloc(r->pool, sizeof(ngx_codeb_route_t));
    if (ctx->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ((ngx_codeb_route_t *) ctx->data)->did = args[0];
    ((ngx_codeb_route_t *) ctx->data)->from = args[1];
    ((ngx_codeb_route_t *) ctx->data)->user = args[2];

    return ngx_codeb_api_inbound_run(r, ctx, "post", args, 3,
                                     ngx_codeb_api_inbound_changed);
}


/* PUT /v1/inbound-routes/{did}[?fromNumber=] {user}: only user changes */
ngx_int_t
ngx_codeb_api_inbound_put(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_str_t                 args[3];
    ngx_codeb_json_member_t  *user;

    user = ngx_codeb_api_field(ctx, "user");

    if (user == NULL || ngx_codeb_api_inbound_value(&user->str) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "user: a string of 1 to 128 printable "
                                    "bytes is required");
    }

    args[0] = ctx->param;
    args[2] = user->str;

    if (ngx_codeb_api_inbound_from(r, &args[1]) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (args[1].len == 0) {
        ngx_str_set(&args[1], "*");      /* the row without a filter */
    }

    return ngx_codeb_api_inbound_run(r, ctx, "put", args, 3,
                                     ngx_codeb_api_inbound_changed);
}


/* DELETE /v1/inbound-routes/{did}[?fromNumber=]: never the catch-all */
ngx_int_t
ngx_codeb_api_inbound_delete(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_str_t  args[2];

    args[0] = ctx->param;

    if (ngx_codeb_api_inbound_from(r, &args[1]) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_codeb_api_inbound_run(r, ctx, "delete", args, 2,
                                     ngx_codeb_api_inbound_changed);
}


static ngx_int_t
ngx_codeb_api_inbound_run(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    char *op, ngx_str_t *args, ngx_uint_t n, redisCallbackFn *cb)
{
    r->main->count++;

    if (ngx_codeb_routes_run(ctx->tenant, r->pool, op, args, n, cb, r)
        != NGX_OK)
    {
        r->main->count--;
        return ngx_codeb_http_unavailable(r, NULL);
    }

    return NGX_DONE;
}


/* the rows: the list envelope, or the first row of {did}[?fromNumber=] */
static void
ngx_codeb_api_inbound_listed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t                i, n;
    yajl_gen              g;
    ngx_int_t             limit, offset, rc;
    ngx_str_t             from;
    redisReply           *rep = reply, *e;
    ngx_http_request_t   *r = data;
    ngx_codeb_route_t    *rows;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    rows = ngx_palloc(r->pool, (rep->elements + 1) * sizeof(ngx_codeb_route_t));
    if (rows == NULL || ngx_codeb_api_inbound_from(r, &from) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0, n = 0; i < rep->elements; i++) {
        e = rep->element[i];

        if (e->type == REDIS_REPLY_STRING
            && ngx_codeb_api_inbound_row(r->pool, (u_char *) e->str, e->len,
                                         &rows[n])
               == NGX_OK)
        {
            n++;
        }
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->param.len) {
        for (i = 0; i < n; i++) {
            if (rows[i].did.len == ctx->param.len
                && ngx_strncmp(rows[i].did.data, ctx->param.data,
                               ctx->param.len) == 0
                && (from.len == 0
                    || (rows[i].from.len == from.len
                        && ngx_strncmp(rows[i].from.data, from.data,
                                       from.len) == 0)))
            {
                ngx_codeb_api_inbound_members(g, &rows[i]);
                ngx_http_finalize_request(r,
                    ngx_codeb_http_json(r, NGX_HTTP_OK, g));
                return;
            }
        }

        ngx_http_finalize_request(r, ngx_codeb_api_inbound_missing(r, ctx));
        return;
    }

    (void) ngx_codeb_api_page(r, &limit, &offset, &rc);

    ngx_codeb_gen_key(g, "data");
    yajl_gen_array_open(g);

    for (i = offset; i < n && i < (size_t) (offset + limit); i++) {
        yajl_gen_map_open(g);
        ngx_codeb_api_inbound_members(g, &rows[i]);
        yajl_gen_map_close(g);
    }

    ngx_http_finalize_request(r, ngx_codeb_api_page_send(r, g, n, limit,
                                                         offset));
}


/* the answer of post (1 / 0), put (row / nil), delete (row / nil / -1) */
static void
ngx_codeb_api_inbound_changed(redisAsyncContext *ac, void *reply,
    void *data)
{
    u_char                *p, *text;
    yajl_gen               g;
    redisReply            *rep = reply;
    ngx_codeb_route_t      row;
    ngx_http_request_t    *r = data;
    ngx_codeb_api_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == -1) {
        ngx_http_finalize_request(r,
            ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                 "cannot_delete_catchall",
                                 "The '*' catchall row cannot be deleted -- "
                                 "the bridge requires it for unmatched "
                                 "inbound calls"));
        return;
    }

    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 0) {
        text = ngx_pnalloc(r->pool, NGX_CODEB_API_ROUTE_MAX + 64);
        if (text == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        p = ngx_snprintf(text, NGX_CODEB_API_ROUTE_MAX + 63,
                         "An inbound route already exists for Did='%V'",
                         &((ngx_codeb_route_t *) ctx->data)->did);
        *p = '\0';

        ngx_http_finalize_request(r,
            ngx_codeb_http_error(r, NGX_HTTP_CONFLICT, "duplicate_route",
                                 (char *) text));
        return;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rep->type == REDIS_REPLY_INTEGER) {
        /* post: the row created */
        ngx_codeb_api_inbound_members(g, ctx->data);
        ngx_http_finalize_request(r,
            ngx_codeb_http_json(r, NGX_HTTP_CREATED, g));
        return;
    }

    if (rep->type != REDIS_REPLY_STRING
        || ngx_codeb_api_inbound_row(r->pool, (u_char *) rep->str, rep->len,
                                     &row)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, ngx_codeb_api_inbound_missing(r, ctx));
        return;
    }

    if (r->method == NGX_HTTP_DELETE) {
        ngx_codeb_gen_key(g, "deleted");
        yajl_gen_map_open(g);
        ngx_codeb_api_inbound_members(g, &row);
        yajl_gen_map_close(g);

    } else {
        ngx_codeb_api_inbound_members(g, &row);
    }

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


/* a stored row {"did","from","user"} */
static ngx_int_t
ngx_codeb_api_inbound_row(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_codeb_route_t *rt)
{
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *did, *from, *user;

    if (ngx_codeb_json_object(pool, text, len, &m) != NGX_OK) {
        return NGX_ERROR;
    }

    did = ngx_codeb_json_get_type(m, "did", NGX_CODEB_JSON_STRING);
    from = ngx_codeb_json_get_type(m, "from", NGX_CODEB_JSON_STRING);
    user = ngx_codeb_json_get_type(m, "user", NGX_CODEB_JSON_STRING);

    if (did == NULL || from == NULL || user == NULL) {
        return NGX_ERROR;
    }

    rt->did = did->str;
    rt->from = from->str;
    rt->user = user->str;

    return NGX_OK;
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


/* ?fromNumber=, decoded ("" when absent) */
static ngx_int_t
ngx_codeb_api_inbound_from(ngx_http_request_t *r, ngx_str_t *from)
{
    u_char     *p;
    ngx_str_t   raw;

    from->len = 0;
    from->data = NULL;

    if (ngx_http_arg(r, (u_char *) "fromNumber", 10, &raw) != NGX_OK) {
        return NGX_OK;
    }

    from->data = ngx_pnalloc(r->pool, raw.len + 1);
    if (from->data == NULL) {
        return NGX_ERROR;
    }

    p = from->data;
    ngx_unescape_uri(&p, &raw.data, raw.len, NGX_UNESCAPE_URI);
    from->len = ngx_min((size_t) (p - from->data), NGX_CODEB_API_ROUTE_MAX);

    return NGX_OK;
}


/* 1 to 128 bytes, no control characters */
static ngx_int_t
ngx_codeb_api_inbound_value(ngx_str_t *v)
{
    size_t  i;

    if (v->len == 0 || v->len > NGX_CODEB_API_ROUTE_MAX) {
        return NGX_DECLINED;
    }

    for (i = 0; i < v->len; i++) {
        if (v->data[i] < 0x20 || v->data[i] == 0x7f) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* 404 naming the did (and fromNumber) asked for */
static ngx_int_t
ngx_codeb_api_inbound_missing(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char     *p, *text;
    ngx_str_t   from;

    text = ngx_pnalloc(r->pool, 2 * NGX_CODEB_API_ROUTE_MAX + 96);
    if (text == NULL || ngx_codeb_api_inbound_from(r, &from) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (from.len) {
        p = ngx_snprintf(text, 2 * NGX_CODEB_API_ROUTE_MAX + 95,
                         "No inbound route with Did='%V' FromNumber='%V'",
                         &ctx->param, &from);

    } else {
        p = ngx_snprintf(text, 2 * NGX_CODEB_API_ROUTE_MAX + 95,
                         "No inbound route with did='%V'", &ctx->param);
    }

    *p = '\0';

    return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                (char *) text);
}

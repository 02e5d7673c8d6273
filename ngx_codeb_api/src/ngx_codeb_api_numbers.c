/*
 * GET /api.ashx/v1/numbers (docs/api.md "Numbers"): the tenant's virtual
 * numbers, those of nginx.conf (codeb_vnum) then those kept in Redis
 * (P vnums, managed through /signal.ashx?virtualnumbers), as
 * /signal.ashx serves them, in the list envelope with "tenant".
 */

#include "ngx_codeb_api.h"


static void ngx_codeb_api_numbers_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_api_numbers_gen(yajl_gen g, ngx_codeb_vnum_t *vn,
    char *source);


ngx_int_t
ngx_codeb_api_numbers(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_int_t                limit, offset, rc;
    ngx_str_t               *key;
    ngx_codeb_redis_args_t   a;

    if (ngx_codeb_api_page(r, &limit, &offset, &rc) != NGX_OK) {
        return rc;
    }

    key = ngx_codeb_api_key(r, ctx, "vnums");
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HGETALL");
    ngx_codeb_redis_arg_str(&a, key);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_api_numbers_reply, 0, &a);
}


static void
ngx_codeb_api_numbers_reply(redisAsyncContext *ac, void *reply, void *data)
{
    size_t                i, n, nconf;
    yajl_gen              g;
    ngx_int_t             limit, offset, rc;
    redisReply           *rep = reply, *e;
    ngx_http_request_t   *r = data;
    ngx_codeb_vnum_t     *vn, *all;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    nconf = ctx->tenant->vnums ? ctx->tenant->vnums->nelts : 0;

    all = ngx_palloc(r->pool, (nconf + rep->elements / 2 + 1)
                              * sizeof(ngx_codeb_vnum_t));
    if (all == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (nconf) {
        ngx_memcpy(all, ctx->tenant->vnums->elts,
                   nconf * sizeof(ngx_codeb_vnum_t));
    }

    n = nconf;

    for (i = 1; i < rep->elements; i += 2) {
        e = rep->element[i];

        if (e->type == REDIS_REPLY_STRING
            && ngx_codeb_vnum_parse(r->pool, (u_char *) e->str, e->len,
                                    &all[n])
               == NGX_OK)
        {
            n++;
        }
    }

    (void) ngx_codeb_api_page(r, &limit, &offset, &rc);

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_vstr(g, "tenant", &ctx->tenant->name);
    ngx_codeb_gen_key(g, "data");
    yajl_gen_array_open(g);

    for (i = offset, vn = all; i < n && i < (size_t) (offset + limit); i++) {
        ngx_codeb_api_numbers_gen(g, &vn[i], i < nconf ? "conf" : "redis");
    }

    ngx_http_finalize_request(r, ngx_codeb_api_page_send(r, g, n, limit,
                                                         offset));
}


/* {name, number, mode, visibility, user, source} */
static void
ngx_codeb_api_numbers_gen(yajl_gen g, ngx_codeb_vnum_t *vn, char *source)
{
    yajl_gen_map_open(g);
    ngx_codeb_gen_vstr(g, "name", &vn->name);
    ngx_codeb_gen_vstr(g, "number", &vn->number);
    ngx_codeb_gen_vstr(g, "mode", &vn->mode);
    ngx_codeb_gen_vstr(g, "visibility", &vn->visibility);
    ngx_codeb_gen_vstr(g, "user", &vn->user);
    ngx_codeb_gen_cstr(g, "source", source);
    yajl_gen_map_close(g);
}

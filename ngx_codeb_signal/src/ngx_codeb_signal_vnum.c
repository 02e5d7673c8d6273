/*
 * Virtual numbers (docs/signal.md "Plain HTTP"): ?vnum-overview lists the
 * rows a caller may see (anonymous: visibility "anonymous" only; a valid
 * Bearer: all), ?virtualnumbers is the admin CRUD of the rows kept in
 * Redis (P vnums: number -> JSON row); rows of nginx.conf are read-only.
 */

#include "ngx_codeb_signal.h"


static ngx_int_t ngx_codeb_signal_vnum_list(ngx_http_request_t *r);
static void ngx_codeb_flag_vnums_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_flag_vnum_write_reply(redisAsyncContext *ac,
    void *reply, void *data);
static ngx_int_t ngx_codeb_signal_vnum_check(ngx_http_request_t *r,
    ngx_str_t *number);
static ngx_int_t ngx_codeb_signal_vnum_write(ngx_http_request_t *r,
    ngx_codeb_vnum_t *vn);


/* one vnum row; the visibility filter is the caller's */
static void
ngx_codeb_signal_gen_vnum(ngx_http_request_t *r, yajl_gen g,
    ngx_codeb_vnum_t *vn, ngx_uint_t admin, char *source)
{
    u_char     *p, *url;
    size_t      len;
    ngx_str_t   host;

    yajl_gen_map_open(g);
    ngx_codeb_gen_vstr(g, "number", &vn->number);
    ngx_codeb_gen_vstr(g, "name", &vn->name);
    ngx_codeb_gen_vstr(g, "mode", &vn->mode);

    if (r->headers_in.host) {
        host = r->headers_in.host->value;

    } else {
        ngx_str_set(&host, "localhost");
    }

    len = sizeof("https:///room.html?room=random&dial=&cam=off") + host.len
          + vn->number.len;
    url = ngx_pnalloc(r->pool, len);

    if (url) {
        p = ngx_sprintf(url, "%s://%V/room.html?room=random&dial=%V&cam=off",
#if (NGX_HTTP_SSL)
                        r->connection->ssl ? "https" : "http",
#else
                        "http",
#endif
                        &host, &vn->number);
        ngx_codeb_gen_str(g, "dialUrl", url, p - url);
    }

    ngx_codeb_gen_vstr(g, "visibility", &vn->visibility);

    if (admin) {
        ngx_codeb_gen_vstr(g, "user", &vn->user);
        ngx_codeb_gen_cstr(g, "source", source);
    }

    yajl_gen_map_close(g);
}


/* a stored vnum (JSON object) into vn; NGX_DECLINED when malformed */
static ngx_uint_t
ngx_codeb_signal_vnum_visible(ngx_codeb_vnum_t *vn, ngx_uint_t signed_in)
{
    return signed_in || ngx_codeb_signal_is(&vn->visibility, "anonymous");
}


/* the rows of nginx.conf, then those of Redis (rep NULL: Redis is down) */
static ngx_int_t
ngx_codeb_signal_vnums_send(ngx_http_request_t *r, redisReply *rep)
{
    size_t                   i;
    yajl_gen                 g;
    ngx_uint_t               k, admin;
    redisReply              *e;
    ngx_codeb_vnum_t        *vn, stored;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);
    admin = ctx->flag->admin;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_key(g, "virtualNumbers");
    yajl_gen_array_open(g);

    vn = ctx->tenant->vnums ? ctx->tenant->vnums->elts : NULL;

    for (k = 0; vn && k < ctx->tenant->vnums->nelts; k++) {
        if (ngx_codeb_signal_vnum_visible(&vn[k], ctx->signed_in)) {
            ngx_codeb_signal_gen_vnum(r, g, &vn[k], admin, "config");
        }
    }

    /* Redis unavailable: the configured rows are still an answer */

    for (i = 0; rep && rep->type == REDIS_REPLY_ARRAY
                && i + 1 < rep->elements; i += 2)
    {
        e = rep->element[i + 1];

        if (e->type != REDIS_REPLY_STRING
            || ngx_codeb_vnum_parse(r->pool, (u_char *) e->str,
                                           e->len, &stored)
               != NGX_OK)
        {
            continue;
        }

        if (ngx_codeb_signal_vnum_visible(&stored, ctx->signed_in)) {
            ngx_codeb_signal_gen_vnum(r, g, &stored, admin, "redis");
        }
    }

    yajl_gen_array_close(g);

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}


static void
ngx_codeb_flag_vnums_reply(redisAsyncContext *ac, void *reply, void *data)
{
    ngx_http_request_t  *r = data;

    ngx_http_finalize_request(r, ngx_codeb_signal_vnums_send(r, reply));
}


static ngx_int_t
ngx_codeb_signal_vnum_list(ngx_http_request_t *r)
{
    ngx_str_t               *vk;
    ngx_codeb_redis_args_t   a;

    vk = ngx_codeb_signal_key(r, "vnums", NULL);
    if (vk == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HGETALL");
    ngx_codeb_redis_arg_str(&a, vk);

    r->main->count++;

    if (ngx_codeb_redis_command(ngx_codeb_flag_vnums_reply, r, &a)
        != NGX_OK)
    {
        r->main->count--;
        return ngx_codeb_signal_vnums_send(r, NULL);
    }

    return NGX_DONE;
}


ngx_int_t
ngx_codeb_flag_vnums(ngx_http_request_t *r)
{
    ngx_str_t                token, identity;
    ngx_flag_t               admin;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    ngx_codeb_http_bearer(r, &token);

    if (token.len) {
        if (ngx_codeb_jwt_verify(ctx->tenant, &token, r->pool,
                                 r->connection->log, &identity, &admin)
            != NGX_OK)
        {
            return ngx_codeb_http_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "invalid_token",
                                        "the Bearer token is not valid");
        }

        ctx->signed_in = 1;
    }

    return ngx_codeb_signal_vnum_list(r);
}


/*
 * ?virtualnumbers: GET lists every row; POST creates, PUT replaces
 * ({number, name?, mode?, visibility?, user?}); DELETE takes
 * &number=<n>.
 */
ngx_int_t
ngx_codeb_flag_vnum_admin(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_str_t                number, *vk;
    ngx_codeb_vnum_t         vn;
    ngx_codeb_redis_args_t   a;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        ctx->signed_in = 1;
        return ngx_codeb_signal_vnum_list(r);
    }

    if (r->method == NGX_HTTP_DELETE) {
        if (ngx_http_arg(r, (u_char *) "number", 6, &number) != NGX_OK) {
            ngx_str_null(&number);
        }

    } else {
        if (ngx_codeb_vnum_parse(r->pool, ctx->body.data,
                                        ctx->body.len, &vn)
            != NGX_OK)
        {
            return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_request",
                                        "expected a JSON object with "
                                        "\"number\"");
        }

        number = vn.number;

        if (!ngx_codeb_signal_is(&vn.visibility, "anonymous")
            && !ngx_codeb_signal_is(&vn.visibility, "signed-in"))
        {
            return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_request",
                                        "visibility must be anonymous or "
                                        "signed-in");
        }
    }

    rc = ngx_codeb_signal_vnum_check(r, &number);

    if (rc == NGX_HTTP_BAD_REQUEST) {
        return ngx_codeb_http_error(r, rc, "invalid_request",
                                    "number must be 1-32 digits");
    }

    if (rc == NGX_HTTP_CONFLICT) {
        return ngx_codeb_http_error(r, rc, "read_only",
                                    "defined in nginx.conf");
    }

    if (r->method != NGX_HTTP_DELETE) {
        return ngx_codeb_signal_vnum_write(r, &vn);
    }

    vk = ngx_codeb_signal_key(r, "vnums", NULL);
    if (vk == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HDEL");
    ngx_codeb_redis_arg_str(&a, vk);
    ngx_codeb_redis_arg_str(&a, &number);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_flag_vnum_write_reply,
                                  0, &a);
}


/*
 * NGX_OK for a valid number that nginx.conf does not define, else
 * NGX_HTTP_BAD_REQUEST or NGX_HTTP_CONFLICT
 */
static ngx_int_t
ngx_codeb_signal_vnum_check(ngx_http_request_t *r, ngx_str_t *number)
{
    ngx_uint_t               k;
    ngx_codeb_vnum_t        *cv;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (!ngx_codeb_peer_valid_number(number)) {
        return NGX_HTTP_BAD_REQUEST;
    }

    cv = ctx->tenant->vnums ? ctx->tenant->vnums->elts : NULL;

    for (k = 0; cv && k < ctx->tenant->vnums->nelts; k++) {
        if (cv[k].number.len == number->len
            && ngx_strncmp(cv[k].number.data, number->data, number->len)
               == 0)
        {
            return NGX_HTTP_CONFLICT;
        }
    }

    return NGX_OK;
}


/* POST creates the row (HSETNX), PUT replaces an existing one */
static ngx_int_t
ngx_codeb_signal_vnum_write(ngx_http_request_t *r, ngx_codeb_vnum_t *vn)
{
    yajl_gen                 g;
    ngx_str_t                text, value, *vk;
    ngx_codeb_redis_args_t   a;

    vk = ngx_codeb_signal_key(r, "vnums", NULL);
    g = ngx_codeb_gen();

    if (vk == NULL || g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_vstr(g, "number", &vn->number);
    ngx_codeb_gen_vstr(g, "name", &vn->name);
    ngx_codeb_gen_vstr(g, "mode", &vn->mode);
    ngx_codeb_gen_vstr(g, "visibility", &vn->visibility);
    ngx_codeb_gen_vstr(g, "user", &vn->user);
    text = ngx_codeb_gen_done(g);

    value.data = ngx_pstrdup(r->pool, &text);
    if (value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.len = text.len;

    a.argc = 0;

    if (r->method == NGX_HTTP_POST) {
        ngx_codeb_redis_arg_lit(&a, "HSETNX");
        ngx_codeb_redis_arg_str(&a, vk);
        ngx_codeb_redis_arg_str(&a, &vn->number);
        ngx_codeb_redis_arg_str(&a, &value);

        return ngx_codeb_http_redis(r, NULL,
                                      ngx_codeb_flag_vnum_write_reply, 0, &a);
    }

    ngx_codeb_redis_arg_str(&a, vk);
    ngx_codeb_redis_arg_str(&a, &vn->number);
    ngx_codeb_redis_arg_str(&a, &value);

    return ngx_codeb_http_redis(r, &ngx_codeb_signal_vnum_put_script,
                                  ngx_codeb_flag_vnum_write_reply, 1, &a);
}


/* 1: done; 0: POST found the row, PUT and DELETE did not */
static void
ngx_codeb_flag_vnum_write_reply(redisAsyncContext *ac, void *reply,
    void *data)
{
    yajl_gen             g;
    ngx_int_t            rc;
    redisReply          *rep = reply;
    ngx_http_request_t  *r = data;

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    if (rep->integer == 1) {
        g = ngx_codeb_gen();
        if (g == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_codeb_gen_bool(g, "ok", 1);
        rc = ngx_codeb_http_json(r, r->method == NGX_HTTP_POST
                                    ? NGX_HTTP_CREATED : NGX_HTTP_OK, g);

    } else if (r->method == NGX_HTTP_POST) {
        rc = ngx_codeb_http_error(r, NGX_HTTP_CONFLICT, "exists",
                                  "the virtual number exists");

    } else {
        rc = ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                  "no such virtual number");
    }

    ngx_http_finalize_request(r, rc);
}

/*
 * Rings of office tabs (docs/signal.md "Bridge webhooks"): the bridge's
 * ?office-ring and ?office-ring-clear, signed with the tenant's bridge
 * secret, and the ring script that a dial from a room uses as well.
 */

#include "ngx_codeb_signal.h"


static void ngx_codeb_flag_ring_reply(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_flag_ring_frame(ngx_http_request_t *r,
    ngx_array_t *m, ngx_str_t *call, ngx_str_t *user, ngx_str_t *frame);
static void ngx_codeb_flag_ring_routed(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_flag_ring_nobody(ngx_http_request_t *r);


ngx_int_t
ngx_codeb_signal_ring(ngx_pool_t *pool, ngx_codeb_tenant_t *t,
    ngx_str_t *call, ngx_str_t *user, ngx_str_t *frame, ngx_str_t *not_vnum,
    ngx_uint_t ring, redisCallbackFn *cb, void *data)
{
    u_char                  *p, ttl[NGX_INT_T_LEN];
    ngx_str_t                rk, vk, px, head;
    ngx_codeb_redis_args_t   a;

    if (ngx_codeb_key(pool, &t->name, "ring:", call->data, call->len, &rk)
        != NGX_OK
        || ngx_codeb_key(pool, &t->name, "vnums", NULL, 0, &vk) != NGX_OK
        || ngx_codeb_key(pool, &t->name, "", NULL, 0, &px) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the bus head "office <tenant> "; the script appends the user */

    head.data = ngx_pnalloc(pool, sizeof("office  ") + t->name.len);
    if (head.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(head.data, "office %V ", &t->name);
    head.len = p - head.data;

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &rk);
    ngx_codeb_redis_arg_str(&a, &vk);
    ngx_codeb_redis_arg_str(&a, &px);
    ngx_codeb_redis_arg_str(&a, user);
    ngx_codeb_redis_arg_str(&a, &head);
    ngx_codeb_redis_arg_str(&a, frame);

    if (not_vnum) {
        ngx_codeb_redis_arg_str(&a, not_vnum);

    } else {
        ngx_codeb_redis_arg(&a, NULL, 0);
    }

    if (ring) {
        ngx_codeb_redis_arg_lit(&a, "ring");

    } else {
        ngx_codeb_redis_arg_lit(&a, "clear");
    }

    ngx_codeb_redis_arg(&a, ttl, ngx_sprintf(ttl, "%d", NGX_CODEB_RING_TTL)
                                 - ttl);

    return ngx_codeb_redis_eval(&ngx_codeb_signal_ring_script, cb, data, 2,
                                &a);
}


static ngx_str_t *
ngx_codeb_json_str(ngx_array_t *m, char *key, ngx_str_t *none)
{
    ngx_codeb_json_member_t  *jm;

    jm = ngx_codeb_json_get_type(m, key, NGX_CODEB_JSON_STRING);

    return jm ? &jm->str : none;
}


/*
 * ?office-ring {callId, ts, did, fromNumber, user?} and
 * ?office-ring-clear {callId, ts, reason}: authentication first (401),
 * then the body (400)
 */
ngx_int_t
ngx_codeb_flag_ring(ngx_http_request_t *r)
{
    int64_t                   ts;
    ngx_int_t                 rc;
    ngx_str_t                 frame, user, *call;
    ngx_str_t                 none = ngx_string("");
    ngx_array_t              *m;
    ngx_codeb_signal_req_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    rc = ngx_codeb_signal_signed(r, &ctx->tenant->bridge_secret, NULL);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK
        || ngx_codeb_json_object(r->pool, ctx->body.data, ctx->body.len, &m)
           != NGX_OK
        || ngx_codeb_json_int(m, "ts", &ts) != NGX_OK
        || !ngx_codeb_signal_fresh(ts))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "codeb: ?%V refused: bad or stale signature",
                      &ctx->flag->name);

        return ngx_codeb_http_error(r, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                                    "signature mismatch or stale timestamp");
    }

    call = ngx_codeb_json_str(m, "callId", &none);

    if (call->len == 0 || call->len > 128) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request", "missing \"callId\"");
    }

    rc = ngx_codeb_flag_ring_frame(r, m, call, &user, &frame);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_HTTP_BAD_REQUEST) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "\"reason\" must be cancelled, "
                                    "hangup or answered-elsewhere");
    }

    if (rc == NGX_AGAIN) {
        /* the routes are asked (ngx_codeb_flag_ring_routed) */
        r->main->count++;
        return NGX_DONE;
    }

    if (ngx_codeb_signal_ring(r->pool, ctx->tenant, call, &user, &frame,
                              NULL,
                              ctx->flag->name.len == sizeof("office-ring") - 1,
                              ngx_codeb_flag_ring_reply, r)
        != NGX_OK)
    {
        return ngx_codeb_http_unavailable(r, NULL);
    }

    r->main->count++;

    return NGX_DONE;
}


/*
 * the frame for the tabs (ring, or ring-cleared) and the user to ring:
 * the body's; without one NGX_AGAIN, the inbound routes are asked
 * (ngx_codeb_flag_ring_routed goes on); NGX_HTTP_BAD_REQUEST: no valid
 * reason for a clear; NGX_ERROR: no memory or Redis down
 */
static ngx_int_t
ngx_codeb_flag_ring_frame(ngx_http_request_t *r, ngx_array_t *m,
    ngx_str_t *call, ngx_str_t *user, ngx_str_t *frame)
{
    yajl_gen                 g;
    ngx_str_t                none = ngx_string("");
    ngx_str_t               *did, *from, *reason, args[2];
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    did = ngx_codeb_json_str(m, "did", &none);
    from = ngx_codeb_json_str(m, "fromNumber", &none);
    reason = ngx_codeb_json_str(m, "reason", &none);
    *user = *ngx_codeb_json_str(m, "user", &none);

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_ERROR;
    }

    if (ctx->flag->name.len != sizeof("office-ring") - 1) {
        if (!ngx_codeb_signal_is(reason, "cancelled")
            && !ngx_codeb_signal_is(reason, "hangup")
            && !ngx_codeb_signal_is(reason, "answered-elsewhere"))
        {
            return NGX_HTTP_BAD_REQUEST;
        }

        ngx_codeb_gen_cstr(g, "type", "ring-cleared");
        ngx_codeb_gen_vstr(g, "callId", call);
        ngx_codeb_gen_vstr(g, "reason", reason);
        *frame = ngx_codeb_gen_text(g);

        return NGX_OK;
    }

    ngx_codeb_gen_cstr(g, "type", "ring");
    ngx_codeb_gen_vstr(g, "callId", call);

    if (did->len) {
        ngx_codeb_gen_vstr(g, "did", did);
        ngx_codeb_gen_vstr(g, "number", did);
    }

    if (from->len) {
        ngx_codeb_gen_vstr(g, "fromNumber", from);
    }

    *frame = ngx_codeb_gen_text(g);

    if (user->len) {
        return NGX_OK;
    }

    /* the inbound routes choose the user; the frame waits in r's pool */

    ctx->call = *call;
    ctx->frame.data = ngx_pstrdup(r->pool, frame);
    ctx->frame.len = frame->len;
    args[0] = *did;
    args[1] = *from;

    if (ctx->frame.data == NULL
        || ngx_codeb_routes_run(ctx->tenant, r->pool, "match", args, 2,
                                ngx_codeb_flag_ring_routed, r)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/* the routes' user for ?office-ring: nil or "" rings nobody */
static void
ngx_codeb_flag_ring_routed(redisAsyncContext *ac, void *reply, void *data)
{
    ngx_str_t                user;
    redisReply              *rep = reply;
    ngx_http_request_t      *r = data;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (rep == NULL
        || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL))
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    if (rep->type == REDIS_REPLY_NIL || rep->len == 0) {
        ngx_http_finalize_request(r, ngx_codeb_flag_ring_nobody(r));
        return;
    }

    user.len = rep->len;
    user.data = ngx_pnalloc(r->pool, rep->len);
    if (user.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(user.data, rep->str, rep->len);

    if (ngx_codeb_signal_ring(r->pool, ctx->tenant, &ctx->call, &user,
                              &ctx->frame, NULL, 1,
                              ngx_codeb_flag_ring_reply, r)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, NULL));
        return;
    }

    /* the ring's reply finalizes r; this callback's count goes to it */
}


/* {"delivered": 0}: nobody to ring */
static ngx_int_t
ngx_codeb_flag_ring_nobody(ngx_http_request_t *r)
{
    yajl_gen  g;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_int(g, "delivered", 0);

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}


static void
ngx_codeb_flag_ring_reply(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen                 g;
    redisReply              *rep = reply;
    ngx_http_request_t      *r = data;
    ngx_codeb_signal_req_t  *ctx;

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->flag->name.len == sizeof("office-ring") - 1) {
        ngx_codeb_gen_int(g, "delivered", ngx_max(rep->integer, 0));

    } else {
        ngx_codeb_gen_bool(g, "ok", 1);
    }

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}

/*
 * Webhook subscriptions (docs/api.md "Webhooks"): list, create (the
 * secret shown once), delete, test fire, the delivery log; and
 * ngx_codeb_api_fire(), which queues an event for the subscriptions that
 * want it (sent by ngx_codeb_api_deliver.c).
 *
 * Redis: P webhooks, a hash id -> {"id","url","events","secret",
 * "active","created" (ms),"by","lastFired" (ms),"failures"}.
 */

#include "ngx_codeb_api.h"
#include <yajl/yajl_tree.h>


#define NGX_CODEB_WH_URL_MAX   2048          /* bytes */


/* the events a subscription may name ("*": all) */
static char  *ngx_codeb_wh_events[] = {
    "*", "call.started", "call.answered", "call.transferred", "call.ended",
    "outbound-ai.finished", "transcript.saved", "share.created",
    "share.viewed", "share.revoked", "webhook.test", NULL
};


/*
 * KEYS: the queue.  ARGV: tenant, event, body, now (ms), webhook id (""
 * for every subscription that wants the event), delivery id prefix,
 * retry delays (JSON array, ms), private allowed ("1"/"0").  The
 * deliveries queued, or -1 when the webhook id is unknown.
 */
static ngx_codeb_redis_script_t  ngx_codeb_wh_fire_script = {
    ngx_string(
        "local p = 'codeb:{' .. ARGV[1] .. '}:'\n"
        "local hooks = redis.call('HGETALL', p .. 'webhooks')\n"
        "local n, found = 0, false\n"
        "for i = 1, #hooks, 2 do\n"
        "  local w = cjson.decode(hooks[i + 1])\n"
        "  local want = false\n"
        "  if ARGV[5] ~= '' then\n"
        "    want = w.id == ARGV[5]\n"
        "    found = found or want\n"
        "  elseif w.active then\n"
        "    for _, e in ipairs(w.events) do\n"
        "      if e == '*' or e == ARGV[2] then want = true end\n"
        "    end\n"
        "  end\n"
        "  if want then\n"
        "    n = n + 1\n"
        "    local id = ARGV[6] .. string.format('%02x', n)\n"
        "    redis.call('SET', p .. 'whd:' .. id, cjson.encode({\n"
        "      deliveryId = id, webhookId = w.id, event = ARGV[2],\n"
        "      body = ARGV[3], attempt = 0,\n"
        "      retry = cjson.decode(ARGV[7]), private = ARGV[8] == '1'}),\n"
        "      'EX', 86400)\n"
        "    redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1] .. ' ' .. id)\n"
        "  end\n"
        "end\n"
        "if ARGV[5] ~= '' and not found then return -1 end\n"
        "return n\n"),
    ""
};


/* KEYS: P webhooks, P whlog:<id>.  ARGV: id.  Its record, removed. */
static ngx_codeb_redis_script_t  ngx_codeb_wh_del_script = {
    ngx_string(
        "local w = redis.call('HGET', KEYS[1], ARGV[1])\n"
        "if not w then return false end\n"
        "redis.call('HDEL', KEYS[1], ARGV[1])\n"
        "redis.call('DEL', KEYS[2])\n"
        "return w\n"),
    ""
};

/* KEYS: P webhooks, P whlog:<id>.  ARGV: id.  Its log, nil: no webhook. */
static ngx_codeb_redis_script_t  ngx_codeb_wh_log_script = {
    ngx_string(
        "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then\n"
        "  return false\n"
        "end\n"
        "return redis.call('LRANGE', KEYS[2], 0, 199)\n"),
    ""
};


static void ngx_codeb_wh_listed(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_wh_done(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_wh_logged(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_wh_gen(yajl_gen g, ngx_array_t *m);
static void ngx_codeb_wh_gen_events(yajl_gen g, ngx_str_t *raw);
static ngx_int_t ngx_codeb_wh_by_id(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_codeb_redis_script_t *script,
    redisCallbackFn *cb);
static ngx_int_t ngx_codeb_wh_url(ngx_str_t *url, ngx_uint_t allow_private);
static ngx_int_t ngx_codeb_wh_events_valid(ngx_str_t *raw);


ngx_int_t
ngx_codeb_api_webhooks_init(ngx_conf_t *cf)
{
    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_wh_fire_script) != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_wh_del_script) != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_wh_log_script) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* GET /v1/webhooks: the list envelope, oldest first, never the secret */
ngx_int_t
ngx_codeb_api_webhooks_list(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_int_t                limit, offset, rc;
    ngx_str_t               *key;
    ngx_codeb_redis_args_t   a;

    if (ngx_codeb_api_page(r, &limit, &offset, &rc) != NGX_OK) {
        return rc;
    }

    key = ngx_codeb_api_key(r, ctx, "webhooks");
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HVALS");
    ngx_codeb_redis_arg_str(&a, key);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_wh_listed, 0, &a);
}


static int
ngx_codeb_wh_cmp(const void *a, const void *b)
{
    int64_t        x, y;
    ngx_array_t   *const *ma = a, *const *mb = b;

    if (ngx_codeb_json_int(*ma, "created", &x) != NGX_OK) {
        x = 0;
    }

    if (ngx_codeb_json_int(*mb, "created", &y) != NGX_OK) {
        y = 0;
    }

    return x < y ? -1 : x > y;
}


static void
ngx_codeb_wh_listed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t               i, n;
    yajl_gen             g;
    ngx_int_t            limit, offset, rc;
    redisReply          *rep = reply, *e;
    ngx_array_t        **hooks;
    ngx_http_request_t  *r = data;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    hooks = ngx_palloc(r->pool, (rep->elements + 1) * sizeof(ngx_array_t *));
    if (hooks == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0, n = 0; i < rep->elements; i++) {
        e = rep->element[i];

        if (e->type == REDIS_REPLY_STRING
            && ngx_codeb_json_object(r->pool, (u_char *) e->str, e->len,
                                     &hooks[n])
               == NGX_OK)
        {
            n++;
        }
    }

    ngx_qsort(hooks, n, sizeof(ngx_array_t *), ngx_codeb_wh_cmp);
    (void) ngx_codeb_api_page(r, &limit, &offset, &rc);

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_key(g, "data");
    yajl_gen_array_open(g);

    for (i = offset; i < n && i < (size_t) (offset + limit); i++) {
        yajl_gen_map_open(g);
        ngx_codeb_wh_gen(g, hooks[i]);
        yajl_gen_map_close(g);
    }

    ngx_http_finalize_request(r, ngx_codeb_api_page_send(r, g, n, limit,
                                                         offset));
}


/* {id, url, events, active, createdAtUtc, createdBy, lastFiredUtc, failures} */
static void
ngx_codeb_wh_gen(yajl_gen g, ngx_array_t *m)
{
    int64_t                   v;
    ngx_codeb_json_member_t  *j;

    if ((j = ngx_codeb_json_get_type(m, "id", NGX_CODEB_JSON_STRING))) {
        ngx_codeb_gen_vstr(g, "id", &j->str);
    }

    if ((j = ngx_codeb_json_get_type(m, "url", NGX_CODEB_JSON_STRING))) {
        ngx_codeb_gen_vstr(g, "url", &j->str);
    }

    ngx_codeb_gen_key(g, "events");
    j = ngx_codeb_json_get_type(m, "events", NGX_CODEB_JSON_ARRAY);
    ngx_codeb_wh_gen_events(g, j ? &j->raw : NULL);

    j = ngx_codeb_json_get_type(m, "active", NGX_CODEB_JSON_BOOL);
    ngx_codeb_gen_bool(g, "active", j && j->boolean);

    ngx_codeb_gen_time(g, "createdAtUtc",
                       ngx_codeb_json_int(m, "created", &v) == NGX_OK
                       ? (uint64_t) v : 0);

    if ((j = ngx_codeb_json_get_type(m, "by", NGX_CODEB_JSON_STRING))) {
        ngx_codeb_gen_vstr(g, "createdBy", &j->str);
    }

    ngx_codeb_gen_time(g, "lastFiredUtc",
                       ngx_codeb_json_int(m, "lastFired", &v) == NGX_OK
                       ? (uint64_t) v : 0);
    ngx_codeb_gen_int(g, "failures",
                      ngx_codeb_json_int(m, "failures", &v) == NGX_OK ? v : 0);
}


/* POST /v1/webhooks {url, events}: 201 with the secret, shown only here */
ngx_int_t
ngx_codeb_api_webhooks_create(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char                   *p;
    yajl_gen                  g;
    ngx_str_t                 id, secret, rec, *key;
    ngx_codeb_redis_args_t    a;
    ngx_codeb_json_member_t  *url, *ev;

    url = ngx_codeb_api_field(ctx, "url");
    ev = ngx_codeb_json_get_type(ctx->body, "events", NGX_CODEB_JSON_ARRAY);
    if (ev == NULL) {
        ev = ngx_codeb_json_get_type(ctx->body, "Events",
                                     NGX_CODEB_JSON_ARRAY);
    }

    if (url == NULL
        || ngx_codeb_wh_url(&url->str,
                            ctx->conf->webhook_private == 1) != NGX_OK)
    {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "url: an http(s) URL of at most 2048 "
                                    "bytes is required; private and "
                                    "loopback hosts only where allowed");
    }

    if (ev == NULL || ngx_codeb_wh_events_valid(&ev->raw) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "events: a non-empty array of event "
                                    "names or \"*\" is required");
    }

    p = ngx_pnalloc(r->pool, 16 + 64);
    if (p == NULL || ngx_codeb_random_hex(p, 8) != NGX_OK
        || ngx_codeb_random_hex(p + 16, 32) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    id.data = p;
    id.len = 16;
    secret.data = p + 16;
    secret.len = 64;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_vstr(g, "id", &id);
    ngx_codeb_gen_vstr(g, "url", &url->str);
    ngx_codeb_gen_key(g, "events");
    ngx_codeb_wh_gen_events(g, &ev->raw);
    ngx_codeb_gen_vstr(g, "secret", &secret);
    ngx_codeb_gen_bool(g, "active", 1);
    ngx_codeb_gen_int(g, "created", (int64_t) ngx_codeb_now_ms());
    ngx_codeb_gen_vstr(g, "by", &ctx->identity);
    ngx_codeb_gen_int(g, "failures", 0);

    rec = ngx_codeb_gen_done(g);
    rec.data = ngx_pstrdup(r->pool, &rec);
    key = ngx_codeb_api_key(r, ctx, "webhooks");
    if (rec.data == NULL || key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (ctx->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *(ngx_str_t *) ctx->data = rec;

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HSET");
    ngx_codeb_redis_arg_str(&a, key);
    ngx_codeb_redis_arg_str(&a, &id);
    ngx_codeb_redis_arg_str(&a, &rec);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_wh_done, 0, &a);
}


/*
 * the end of create (HSET: 201 with the record and its secret), delete
 * (the record taken: 200) and test (the deliveries queued: 202)
 */
static void
ngx_codeb_wh_done(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen              g;
    ngx_str_t            *rec;
    ngx_array_t          *m;
    redisReply           *rep = reply;
    ngx_http_request_t   *r = data;
    ngx_codeb_api_ctx_t  *ctx;
    ngx_codeb_json_member_t  *sec;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (r->method == NGX_HTTP_POST && ctx->param.len) {
        /* test: the number queued, or -1 */
        if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 0) {
            ngx_http_finalize_request(r,
                ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                     "no webhook with that id"));
            return;
        }

        ngx_codeb_gen_bool(g, "ok", 1);
        ngx_codeb_gen_cstr(g, "event", "webhook.test");
        ngx_codeb_gen_int(g, "queued", rep->integer);
        ngx_http_finalize_request(r,
            ngx_codeb_http_json(r, NGX_HTTP_ACCEPTED, g));
        return;
    }

    rec = r->method == NGX_HTTP_POST ? ctx->data : NULL;

    if (rec == NULL) {
        /* delete: the record the script took */
        if (rep->type != REDIS_REPLY_STRING) {
            ngx_http_finalize_request(r,
                ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                     "no webhook with that id"));
            return;
        }

        rec = ngx_palloc(r->pool, sizeof(ngx_str_t));
        if (rec == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        rec->data = (u_char *) rep->str;
        rec->len = rep->len;
    }

    if (ngx_codeb_json_object(r->pool, rec->data, rec->len, &m) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (r->method == NGX_HTTP_POST) {
        ngx_codeb_wh_gen(g, m);
        sec = ngx_codeb_json_get_type(m, "secret", NGX_CODEB_JSON_STRING);
        if (sec) {
            ngx_codeb_gen_vstr(g, "secret", &sec->str);
        }

        ngx_http_finalize_request(r,
            ngx_codeb_http_json(r, NGX_HTTP_CREATED, g));
        return;
    }

    ngx_codeb_gen_key(g, "deleted");
    yajl_gen_map_open(g);
    ngx_codeb_wh_gen(g, m);
    yajl_gen_map_close(g);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


/* DELETE /v1/webhooks/{id}: the subscription and its delivery log */
ngx_int_t
ngx_codeb_api_webhooks_delete(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    return ngx_codeb_wh_by_id(r, ctx, &ngx_codeb_wh_del_script,
                              ngx_codeb_wh_done);
}


/*
 * script on webhook {id}: KEYS P webhooks, P whlog:<id>; ARGV id.  404
 * for an id that is not 16 hex digits.
 */
static ngx_int_t
ngx_codeb_wh_by_id(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_codeb_redis_script_t *script, redisCallbackFn *cb)
{
    ngx_str_t               *key, log;
    ngx_codeb_redis_args_t   a;

    if (ngx_codeb_api_id(&ctx->param) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "no webhook with that id");
    }

    key = ngx_codeb_api_key(r, ctx, "webhooks");
    if (key == NULL
        || ngx_codeb_key(r->pool, &ctx->tenant->name, "whlog:",
                         ctx->param.data, ctx->param.len, &log)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, key);
    ngx_codeb_redis_arg_str(&a, &log);
    ngx_codeb_redis_arg_str(&a, &ctx->param);

    return ngx_codeb_http_redis(r, script, cb, 2, &a);
}


/* POST /v1/webhooks/{id}/test: a webhook.test delivery to it, 202 */
ngx_int_t
ngx_codeb_api_webhooks_test(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    yajl_gen  g;

    if (ngx_codeb_api_id(&ctx->param) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "no webhook with that id");
    }

    g = ngx_codeb_api_envelope(ctx->tenant, "webhook.test");
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_cstr(g, "message", "a test delivery from CodeB");
    ngx_codeb_gen_vstr(g, "webhookId", &ctx->param);
    ngx_codeb_gen_vstr(g, "requestedBy", &ctx->identity);

    r->main->count++;

    if (ngx_codeb_api_fire(ctx->conf, "webhook.test", g, &ctx->param,
                           ngx_codeb_wh_done, r)
        != NGX_OK)
    {
        r->main->count--;
        return ngx_codeb_http_unavailable(r, NULL);
    }

    return NGX_DONE;
}


/* GET /v1/webhooks/{id}/deliveries: the last 200 attempts, newest first */
ngx_int_t
ngx_codeb_api_webhooks_log(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_int_t  limit, offset, rc;

    if (ngx_codeb_api_page(r, &limit, &offset, &rc) != NGX_OK) {
        return rc;
    }

    return ngx_codeb_wh_by_id(r, ctx, &ngx_codeb_wh_log_script,
                              ngx_codeb_wh_logged);
}


static void
ngx_codeb_wh_logged(redisAsyncContext *ac, void *reply, void *data)
{
    size_t                    i, n;
    int64_t                   v;
    yajl_gen                  g;
    ngx_int_t                 limit, offset, rc;
    ngx_array_t              *m;
    redisReply               *rep = reply, *e;
    ngx_http_request_t       *r = data;
    ngx_codeb_json_member_t  *j;

    if (rep == NULL
        || (rep->type != REDIS_REPLY_ARRAY && rep->type != REDIS_REPLY_NIL))
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    if (rep->type == REDIS_REPLY_NIL) {
        ngx_http_finalize_request(r,
            ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                 "no webhook with that id"));
        return;
    }

    (void) ngx_codeb_api_page(r, &limit, &offset, &rc);

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_key(g, "data");
    yajl_gen_array_open(g);
    n = rep->elements;

    for (i = offset; i < n && i < (size_t) (offset + limit); i++) {
        e = rep->element[i];

        if (e->type != REDIS_REPLY_STRING
            || ngx_codeb_json_object(r->pool, (u_char *) e->str, e->len, &m)
               != NGX_OK)
        {
            continue;
        }

        yajl_gen_map_open(g);

        if ((j = ngx_codeb_json_get_type(m, "deliveryId",
                                         NGX_CODEB_JSON_STRING)))
        {
            ngx_codeb_gen_vstr(g, "deliveryId", &j->str);
        }

        if ((j = ngx_codeb_json_get_type(m, "event", NGX_CODEB_JSON_STRING)))
        {
            ngx_codeb_gen_vstr(g, "event", &j->str);
        }

        ngx_codeb_gen_int(g, "attempt",
                          ngx_codeb_json_int(m, "attempt", &v) == NGX_OK
                          ? v : 0);
        ngx_codeb_gen_int(g, "status",
                          ngx_codeb_json_int(m, "status", &v) == NGX_OK
                          ? v : 0);

        j = ngx_codeb_json_get_type(m, "error", NGX_CODEB_JSON_STRING);
        if (j && j->str.len) {
            ngx_codeb_gen_vstr(g, "error", &j->str);

        } else {
            ngx_codeb_gen_null(g, "error");
        }

        ngx_codeb_gen_time(g, "atUtc",
                           ngx_codeb_json_int(m, "at", &v) == NGX_OK
                           ? (uint64_t) v : 0);
        yajl_gen_map_close(g);
    }

    ngx_http_finalize_request(r, ngx_codeb_api_page_send(r, g, n, limit,
                                                         offset));
}


yajl_gen
ngx_codeb_api_envelope(ngx_codeb_tenant_t *t, char *event)
{
    yajl_gen     g;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NULL;
    }

    ngx_codeb_gen_cstr(g, "event", event);
    ngx_codeb_gen_vstr(g, "tenant", &t->name);
    ngx_codeb_gen_time(g, "ts", ngx_codeb_now_ms());
    ngx_codeb_gen_key(g, "data");
    yajl_gen_map_open(g);

    return g;
}


ngx_int_t
ngx_codeb_api_fire(ngx_codeb_api_srv_conf_t *conf, char *event, yajl_gen g,
    ngx_str_t *only, redisCallbackFn *cb, void *data)
{
    u_char                  *p, now[NGX_INT64_LEN], prefix[16];
    ngx_str_t                body, retry;
    ngx_codeb_redis_args_t   a;

    yajl_gen_map_close(g);
    body = ngx_codeb_gen_done(g);

    if (ngx_codeb_random_hex(prefix, 7) != NGX_OK) {
        return NGX_ERROR;
    }

    retry = conf->webhook_retry;

    /* hiredis copies the arguments when the script is queued */

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "codeb:webhooks:queue");
    ngx_codeb_redis_arg_str(&a, &conf->tenant->name);
    ngx_codeb_redis_arg(&a, event, ngx_strlen(event));
    ngx_codeb_redis_arg_str(&a, &body);
    p = ngx_sprintf(now, "%L", (int64_t) ngx_codeb_now_ms());
    ngx_codeb_redis_arg(&a, now, p - now);

    if (only) {
        ngx_codeb_redis_arg_str(&a, only);

    } else {
        ngx_codeb_redis_arg(&a, NULL, 0);
    }

    ngx_codeb_redis_arg(&a, prefix, 14);
    ngx_codeb_redis_arg_str(&a, &retry);
    ngx_codeb_redis_arg(&a, conf->webhook_private == 1 ? "1" : "0", 1);

    return ngx_codeb_redis_eval(&ngx_codeb_wh_fire_script, cb, data, 1, &a);
}


/*
 * http:// or https://, a host, at most 2048 bytes, no spaces or control
 * characters; a literal loopback or private host only when allowed (the
 * addresses a name resolves to are checked when it is sent)
 */
static ngx_int_t
ngx_codeb_wh_url(ngx_str_t *url, ngx_uint_t allow_private)
{
    size_t      i, skip;
    u_char     *host, *end;
    ngx_str_t   h;

    if (url->len == 0 || url->len > NGX_CODEB_WH_URL_MAX) {
        return NGX_DECLINED;
    }

    for (i = 0; i < url->len; i++) {
        if (url->data[i] <= 0x20 || url->data[i] == 0x7f) {
            return NGX_DECLINED;
        }
    }

    if (url->len > 7 && ngx_strncasecmp(url->data, (u_char *) "http://", 7)
                        == 0)
    {
        skip = 7;

    } else if (url->len > 8
               && ngx_strncasecmp(url->data, (u_char *) "https://", 8) == 0)
    {
        skip = 8;

    } else {
        return NGX_DECLINED;
    }

    host = url->data + skip;
    end = url->data + url->len;

    for (h.data = host; host < end && *host != '/' && *host != '?'
                        && *host != '#'; host++)
    {
        if (*host == '@') {
            return NGX_DECLINED;         /* no userinfo */
        }
    }

    h.len = host - h.data;

    if (h.len == 0) {
        return NGX_DECLINED;
    }

    if (!allow_private
        && ((h.len >= 9 && ngx_strncasecmp(h.data, (u_char *) "localhost", 9)
                           == 0)
            || (h.len >= 4 && ngx_strncmp(h.data, "127.", 4) == 0)
            || (h.len >= 3 && ngx_strncmp(h.data, "10.", 3) == 0)
            || (h.len >= 8 && ngx_strncmp(h.data, "192.168.", 8) == 0)
            || (h.len >= 1 && h.data[0] == '[')))
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a non-empty array (at most 16) of the names of ngx_codeb_wh_events */
static ngx_int_t
ngx_codeb_wh_events_valid(ngx_str_t *raw)
{
    char        buf[1024];
    size_t      k;
    yajl_val    t, v;
    ngx_uint_t  i, ok;

    if (raw->len == 0 || raw->len >= sizeof(buf)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(buf, raw->data, raw->len);
    buf[raw->len] = '\0';

    t = yajl_tree_parse(buf, NULL, 0);
    ok = YAJL_IS_ARRAY(t) && t->u.array.len > 0 && t->u.array.len <= 16;

    for (k = 0; ok && k < t->u.array.len; k++) {
        v = t->u.array.values[k];
        ok = 0;

        for (i = 0; YAJL_IS_STRING(v) && ngx_codeb_wh_events[i]; i++) {
            if (ngx_strcmp(v->u.string, ngx_codeb_wh_events[i]) == 0) {
                ok = 1;
            }
        }
    }

    yajl_tree_free(t);

    return ok ? NGX_OK : NGX_DECLINED;
}


/* the event names of a stored (valid) array as a JSON array */
static void
ngx_codeb_wh_gen_events(yajl_gen g, ngx_str_t *raw)
{
    char      buf[1024];
    size_t    k;
    yajl_val  t, v;

    yajl_gen_array_open(g);

    if (raw && raw->len < sizeof(buf)) {
        ngx_memcpy(buf, raw->data, raw->len);
        buf[raw->len] = '\0';
        t = yajl_tree_parse(buf, NULL, 0);

        for (k = 0; YAJL_IS_ARRAY(t) && k < t->u.array.len; k++) {
            v = t->u.array.values[k];

            if (YAJL_IS_STRING(v)) {
                yajl_gen_string(g, (u_char *) v->u.string,
                                ngx_strlen(v->u.string));
            }
        }

        yajl_tree_free(t);
    }

    yajl_gen_array_close(g);
}

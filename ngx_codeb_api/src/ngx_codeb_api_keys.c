/*
 * API keys (docs/api.md "API keys"): "ak_" + 32 hex chars, shown once at
 * creation, kept only as their SHA-256.  Redis (docs/design.md "State in
 * Redis"): P apikeys, a hash id -> {"id","name","hash","created" (ms),
 * "by"}; P apikeyhash, a hash SHA-256 hex -> id; P apikeys:t, a sorted
 * set of the ids by creation (ms), for the pages.  They change together,
 * in scripts.
 */

#include "ngx_codeb_api.h"


#define NGX_CODEB_API_KEY_NAME_MAX   100      /* bytes */


typedef struct {
    ngx_str_t                   id;
    ngx_str_t                   name;
    int64_t                     created;     /* ms since the epoch */
} ngx_codeb_api_keyrec_t;


typedef struct {
    ngx_str_t                   key;         /* "ak_..." */
    ngx_codeb_api_keyrec_t      rec;
} ngx_codeb_api_newkey_t;


/* KEYS: apikeys, apikeyhash, apikeys:t.  ARGV: id, hash, record, ms */
static ngx_codeb_redis_script_t  ngx_codeb_api_key_add_script = {
    ngx_string(
        "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
        "redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])\n"
        "redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])\n"
        "return 1\n"),
    ""
};

/* a page: {total, the records of ids offset ARGV[1], count ARGV[2]} */
static ngx_codeb_redis_script_t  ngx_codeb_api_key_page_script = {
    ngx_string(
        "local from = tonumber(ARGV[1])\n"
        "local ids = redis.call('ZRANGE', KEYS[3], from,\n"
        "                       from + tonumber(ARGV[2]) - 1)\n"
        "local recs = {}\n"
        "if #ids > 0 then\n"
        "  recs = redis.call('HMGET', KEYS[1], unpack(ids))\n"
        "end\n"
        "return {redis.call('ZCARD', KEYS[3]), recs}\n"),
    ""
};

/* the record of the key whose SHA-256 is ARGV[1], or nil */
static ngx_codeb_redis_script_t  ngx_codeb_api_key_find_script = {
    ngx_string(
        "local id = redis.call('HGET', KEYS[2], ARGV[1])\n"
        "if not id then return false end\n"
        "return redis.call('HGET', KEYS[1], id)\n"),
    ""
};

/* removes key ARGV[1] and its hash; its record, or nil */
static ngx_codeb_redis_script_t  ngx_codeb_api_key_del_script = {
    ngx_string(
        "local rec = redis.call('HGET', KEYS[1], ARGV[1])\n"
        "if not rec then return false end\n"
        "local ok, r = pcall(cjson.decode, rec)\n"
        "if ok and type(r.hash) == 'string' then\n"
        "  redis.call('HDEL', KEYS[2], r.hash)\n"
        "end\n"
        "redis.call('HDEL', KEYS[1], ARGV[1])\n"
        "redis.call('ZREM', KEYS[3], ARGV[1])\n"
        "return rec\n"),
    ""
};


static ngx_int_t ngx_codeb_api_keys_redis(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_codeb_redis_script_t *script,
    ngx_str_t *args, ngx_uint_t n, redisCallbackFn *cb);
static void ngx_codeb_api_keys_created(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_api_keys_listed(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_api_keys_deleted(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_api_keys_found(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_api_keys_record(ngx_http_request_t *r,
    redisReply *rep, ngx_codeb_api_keyrec_t *rec);
static ngx_int_t ngx_codeb_api_keys_parse(ngx_pool_t *pool, u_char *text,
    size_t len, ngx_codeb_api_keyrec_t *rec);


ngx_int_t
ngx_codeb_api_keys_init(ngx_conf_t *cf)
{
    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_api_key_add_script)
        != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_api_key_find_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_api_key_page_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_api_key_del_script)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* POST /v1/api-keys {name}: 201 {id, name, key, createdAtUtc} */
ngx_int_t
ngx_codeb_api_keys_create(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char                   *p;
    yajl_gen                  g;
    u_char                   *ms;
    ngx_str_t                 args[4], text;
    ngx_codeb_api_newkey_t   *nk;
    ngx_codeb_json_member_t  *name;

    name = ngx_codeb_api_field(ctx, "name");

    if (name == NULL || name->str.len == 0
        || name->str.len > NGX_CODEB_API_KEY_NAME_MAX)
    {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "name: a string of 1 to 100 bytes is "
                                    "required");
    }

    /* the key "ak_<32 hex>", its id (16 hex), its SHA-256 (64 hex) */
    nk = ngx_palloc(r->pool, sizeof(ngx_codeb_api_newkey_t));
    p = ngx_pnalloc(r->pool, 35 + 16 + 65);
    if (nk == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nk->key.data = p;
    nk->key.len = 35;
    nk->rec.id.data = p + 35;
    nk->rec.id.len = 16;
    nk->rec.name = name->str;
    args[1].data = p + 51;
    args[1].len = 64;

    ngx_memcpy(p, "ak_", 3);

    if (ngx_codeb_random_hex(p + 3, 16) != NGX_OK
        || ngx_codeb_random_hex(nk->rec.id.data, 8) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_sha256_hex(nk->key.data, nk->key.len, args[1].data);
    args[0] = nk->rec.id;

    nk->rec.created = (int64_t) ngx_codeb_now_ms();

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_vstr(g, "id", &nk->rec.id);
    ngx_codeb_gen_vstr(g, "name", &nk->rec.name);
    ngx_codeb_gen_vstr(g, "hash", &args[1]);
    ngx_codeb_gen_int(g, "created", nk->rec.created);
    ngx_codeb_gen_vstr(g, "by", &ctx->identity);

    /* the generator is the worker's: the record is copied */
    text = ngx_codeb_gen_done(g);
    args[2].data = ngx_pstrdup(r->pool, &text);
    args[2].len = text.len;
    if (args[2].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ms = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (ms == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args[3].data = ms;
    args[3].len = ngx_sprintf(ms, "%L", nk->rec.created) - ms;
    ctx->data = nk;

    return ngx_codeb_api_keys_redis(r, ctx, &ngx_codeb_api_key_add_script,
                                    args, 4, ngx_codeb_api_keys_created);
}


/* KEYS apikeys apikeyhash apikeys:t, then the n args; cb gets r */
static ngx_int_t
ngx_codeb_api_keys_redis(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_codeb_redis_script_t *script, ngx_str_t *args, ngx_uint_t n,
    redisCallbackFn *cb)
{
    ngx_str_t               *keys, *hashes, *order;
    ngx_uint_t               i;
    ngx_codeb_redis_args_t   a;

    keys = ngx_codeb_api_key(r, ctx, "apikeys");
    hashes = ngx_codeb_api_key(r, ctx, "apikeyhash");
    order = ngx_codeb_api_key(r, ctx, "apikeys:t");
    if (keys == NULL || hashes == NULL || order == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, keys);
    ngx_codeb_redis_arg_str(&a, hashes);
    ngx_codeb_redis_arg_str(&a, order);

    for (i = 0; i < n; i++) {
        ngx_codeb_redis_arg_str(&a, &args[i]);
    }

    return ngx_codeb_http_redis(r, script, cb, 3, &a);
}


static void
ngx_codeb_api_keys_created(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen                 g;
    redisReply              *rep = reply;
    ngx_http_request_t      *r = data;
    ngx_codeb_api_ctx_t     *ctx;
    ngx_codeb_api_newkey_t  *nk;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);
    nk = ctx->data;

    g = ngx_codeb_http_reply_gen(r, rep, REDIS_REPLY_INTEGER);
    if (g == NULL) {
        return;
    }

    ngx_codeb_gen_vstr(g, "id", &nk->rec.id);
    ngx_codeb_gen_vstr(g, "name", &nk->rec.name);
    ngx_codeb_gen_vstr(g, "key", &nk->key);
    ngx_codeb_gen_time(g, "createdAtUtc", (uint64_t) nk->rec.created);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_CREATED, g));
}


/*
 * GET /v1/api-keys: the list envelope of {id, name, createdAtUtc}, oldest
 * first; only the page's records are read
 */
ngx_int_t
ngx_codeb_api_keys_list(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char     *p;
    ngx_int_t   limit, offset, rc;
    ngx_str_t   args[2];

    if (ngx_codeb_api_page(r, &limit, &offset, &rc) != NGX_OK) {
        return rc;
    }

    p = ngx_pnalloc(r->pool, 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args[0].data = p;
    args[0].len = ngx_sprintf(p, "%i", offset) - p;
    args[1].data = p + NGX_INT_T_LEN;
    args[1].len = ngx_sprintf(args[1].data, "%i", limit) - args[1].data;

    return ngx_codeb_api_keys_redis(r, ctx, &ngx_codeb_api_key_page_script,
                                    args, 2, ngx_codeb_api_keys_listed);
}


static void
ngx_codeb_api_keys_listed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t                   i;
    yajl_gen                 g;
    redisReply              *rep = reply, *recs, *e;
    ngx_http_request_t      *r = data;
    ngx_codeb_api_keyrec_t   rec;

    g = ngx_codeb_api_page_open(r, rep);
    if (g == NULL) {
        return;
    }

    recs = rep->element[1];

    for (i = 0; i < recs->elements; i++) {
        e = recs->element[i];

        if (e->type != REDIS_REPLY_STRING
            || ngx_codeb_api_keys_parse(r->pool, (u_char *) e->str, e->len,
                                        &rec)
               != NGX_OK)
        {
            continue;
        }

        yajl_gen_map_open(g);
        ngx_codeb_gen_vstr(g, "id", &rec.id);
        ngx_codeb_gen_vstr(g, "name", &rec.name);
        ngx_codeb_gen_time(g, "createdAtUtc", (uint64_t) rec.created);
        yajl_gen_map_close(g);
    }

    ngx_codeb_api_page_close(r, g, rep);
}


/* DELETE /v1/api-keys/{id}: 200 {deleted: {id, name}}, or 404 */
ngx_int_t
ngx_codeb_api_keys_delete(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    if (ngx_codeb_api_id(&ctx->param) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "no API key with that id");
    }

    return ngx_codeb_api_keys_redis(r, ctx, &ngx_codeb_api_key_del_script,
                                    &ctx->param, 1,
                                    ngx_codeb_api_keys_deleted);
}


static void
ngx_codeb_api_keys_deleted(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen                 g;
    ngx_int_t                rc;
    redisReply              *rep = reply;
    ngx_http_request_t      *r = data;
    ngx_codeb_api_keyrec_t   rec;

    rc = ngx_codeb_api_keys_record(r, rep, &rec);

    if (rc == NGX_ERROR) {
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                 "no API key with that id"));
        return;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_key(g, "deleted");
    yajl_gen_map_open(g);
    ngx_codeb_gen_vstr(g, "id", &rec.id);
    ngx_codeb_gen_vstr(g, "name", &rec.name);
    yajl_gen_map_close(g);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


ngx_int_t
ngx_codeb_api_keys_check(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_str_t *token)
{
    ngx_str_t  hash;

    hash.data = ngx_pnalloc(r->pool, 65);
    if (hash.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the lookup is by a hash of the key: no secret compared in time */
    ngx_codeb_sha256_hex(token->data, token->len, hash.data);
    hash.len = 64;

    return ngx_codeb_api_keys_redis(r, ctx, &ngx_codeb_api_key_find_script,
                                    &hash, 1, ngx_codeb_api_keys_found);
}


static void
ngx_codeb_api_keys_found(redisAsyncContext *ac, void *reply, void *data)
{
    ngx_int_t                rc;
    redisReply              *rep = reply;
    ngx_http_request_t      *r = data;
    ngx_codeb_api_ctx_t     *ctx;
    ngx_codeb_api_keyrec_t   rec;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    rc = ngx_codeb_api_keys_record(r, rep, &rec);

    if (rc == NGX_ERROR) {
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_codeb_http_error(r, NGX_HTTP_UNAUTHORIZED, "invalid_token",
                                 "the API key is not valid"));
        return;
    }

    ctx->identity = rec.name;
    ctx->by_key = 1;

    ngx_http_finalize_request(r, ngx_codeb_api_run(r, ctx));
}


/*
 * a script's answer of one record (or nil): NGX_OK with rec, NGX_DECLINED
 * none, NGX_ERROR when Redis did not answer (r is finalized with 503)
 */
static ngx_int_t
ngx_codeb_api_keys_record(ngx_http_request_t *r, redisReply *rep,
    ngx_codeb_api_keyrec_t *rec)
{
    if (rep == NULL
        || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL))
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return NGX_ERROR;
    }

    if (rep->type == REDIS_REPLY_NIL
        || ngx_codeb_api_keys_parse(r->pool, (u_char *) rep->str, rep->len,
                                    rec)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a stored record: id, name and created are required */
static ngx_int_t
ngx_codeb_api_keys_parse(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_codeb_api_keyrec_t *rec)
{
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *id, *name;

    if (ngx_codeb_json_object(pool, text, len, &m) != NGX_OK) {
        return NGX_ERROR;
    }

    id = ngx_codeb_json_get_type(m, "id", NGX_CODEB_JSON_STRING);
    name = ngx_codeb_json_get_type(m, "name", NGX_CODEB_JSON_STRING);

    if (id == NULL || name == NULL
        || ngx_codeb_json_int(m, "created", &rec->created) != NGX_OK)
    {
        return NGX_ERROR;
    }

    rec->id = id->str;
    rec->name = name->str;

    return NGX_OK;
}

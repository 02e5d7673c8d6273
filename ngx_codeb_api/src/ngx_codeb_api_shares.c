/*
 * Transcript shares (docs/api.md "Transcripts"): a revocable public link
 * to one transcript, GET /transcript-share.ashx?token=<token> (the
 * codeb_transcript_share location, no bearer), which shows an allowlist
 * of the transcript's fields only.
 *
 * A token is 32 random lowercase hex digits, shown once in the 201
 * answer; Redis keeps its SHA-256 only: P share:<SHA-256 hex>, a string
 * {"callId","file","by","created" (ms),"expires" (ms, 0: never)} with
 * that expiry.  A lookup is by hash, so no secret is compared in a time
 * that depends on it.
 */

#include "ngx_codeb_api.h"
#include <yajl/yajl_tree.h>


#define NGX_CODEB_SHARE_TTL_DEFAULT  168          /* hours */
#define NGX_CODEB_SHARE_TTL_MAX      8760         /* hours: a year */


typedef struct {
    ngx_str_t                   token;       /* 32 hex */
    ngx_str_t                   key;         /* P share:<SHA-256> */
    int64_t                     ttl;         /* hours, 0: never */
    int64_t                     expires;     /* epoch ms, 0: never */
} ngx_codeb_share_t;


/*
 * KEYS: P transcripts, P share:<hash>.  ARGV: callId, by, created (ms),
 * expires (ms, 0), PX (ms, 0).  The transcript's file, or nil when the
 * callId has none.
 */
static ngx_codeb_redis_script_t  ngx_codeb_share_add_script = {
    ngx_string(
        "local s = redis.call('HGET', KEYS[1], ARGV[1])\n"
        "if not s then return false end\n"
        "local f = cjson.decode(s).file or ''\n"
        "local rec = cjson.encode({callId = ARGV[1], file = f, by = ARGV[2],\n"
        "  created = tonumber(ARGV[3]), expires = tonumber(ARGV[4])})\n"
        "if ARGV[5] ~= '0' then\n"
        "  redis.call('SET', KEYS[2], rec, 'PX', ARGV[5])\n"
        "else\n"
        "  redis.call('SET', KEYS[2], rec)\n"
        "end\n"
        "return f\n"),
    ""
};

/*
 * KEYS: P share:<hash>, P transcripts:body.  ARGV: now (ms).  {file,
 * transcript}, or nil: no such share, expired, or its transcript gone.
 */
static ngx_codeb_redis_script_t  ngx_codeb_share_view_script = {
    ngx_string(
        "local rec = redis.call('GET', KEYS[1])\n"
        "if not rec then return false end\n"
        "local r = cjson.decode(rec)\n"
        "if r.expires > 0 and r.expires <= tonumber(ARGV[1]) then\n"
        "  redis.call('DEL', KEYS[1])\n"
        "  return false\n"
        "end\n"
        "local b = redis.call('HGET', KEYS[2], r.callId)\n"
        "if not b then return false end\n"
        "return {r.file, b}\n"),
    ""
};

/* KEYS: P share:<hash>.  ARGV: callId.  Its file, or nil: not this one's */
static ngx_codeb_redis_script_t  ngx_codeb_share_del_script = {
    ngx_string(
        "local rec = redis.call('GET', KEYS[1])\n"
        "if not rec then return false end\n"
        "local r = cjson.decode(rec)\n"
        "if r.callId ~= ARGV[1] then return false end\n"
        "redis.call('DEL', KEYS[1])\n"
        "return r.file\n"),
    ""
};


/* the public view: these members of the transcript, and turns */
static char  *ngx_codeb_share_fields[] = {
    "callId", "callerSource", "displayName", "startedUtc", "answeredUtc",
    "endedUtc", "durationSec", "outcome", "language", NULL
};

/* the members of a turn in the public view */
static char  *ngx_codeb_share_turn_fields[] = {
    "speaker", "text", "ts", NULL
};


static ngx_int_t ngx_codeb_share_key(ngx_http_request_t *r,
    ngx_codeb_tenant_t *t, ngx_str_t *token, ngx_codeb_share_t *sh);
static void ngx_codeb_share_created(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_share_file(ngx_http_request_t *r,
    redisReply *rep, ngx_str_t *file);
static void ngx_codeb_share_deleted(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_share_lookup(ngx_http_request_t *r);
static void ngx_codeb_share_found(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_uint_t ngx_codeb_share_number(ngx_str_t *s);
static void ngx_codeb_share_gen_turns(ngx_http_request_t *r, yajl_gen g,
    ngx_str_t *raw);
static yajl_gen ngx_codeb_share_event(ngx_codeb_tenant_t *t, char *event,
    ngx_str_t *token, ngx_str_t *file);


ngx_int_t
ngx_codeb_api_shares_init(ngx_conf_t *cf)
{
    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_share_add_script)
        != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_share_view_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_share_del_script)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * sh->key, the Redis key of token (32 lowercase hex, else NGX_DECLINED)
 * in tenant t; NGX_ERROR: no memory
 */
static ngx_int_t
ngx_codeb_share_key(ngx_http_request_t *r, ngx_codeb_tenant_t *t,
    ngx_str_t *token, ngx_codeb_share_t *sh)
{
    u_char  hash[65];
    size_t  i;

    if (token->len != 32) {
        return NGX_DECLINED;
    }

    for (i = 0; i < 32; i++) {
        if (!((token->data[i] >= '0' && token->data[i] <= '9')
              || (token->data[i] >= 'a' && token->data[i] <= 'f')))
        {
            return NGX_DECLINED;
        }
    }

    sh->token = *token;
    ngx_codeb_sha256_hex(token->data, 32, hash);

    return ngx_codeb_key(r->pool, &t->name, "share:", hash, 64, &sh->key);
}


/*
 * POST /v1/transcripts/{callId}/shares {ttlHours?}: 201 {token, url,
 * ttlHours, expiresUtc}; 400 naming ttlHours; 404 no such transcript
 */
ngx_int_t
ngx_codeb_api_shares_create(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char                   *p;
    ngx_str_t                 token, *sum, args[5];
    ngx_codeb_share_t        *sh;
    ngx_codeb_redis_args_t    a;
    ngx_codeb_json_member_t  *ttl;
    ngx_uint_t                i;

    if (ngx_codeb_api_call_id(&ctx->param) != NGX_OK) {
        return ngx_codeb_api_transcript_404(r, &ctx->param);
    }

    sh = ngx_pcalloc(r->pool, sizeof(ngx_codeb_share_t));
    p = ngx_pnalloc(r->pool, 32 + 4 * NGX_INT64_LEN);
    if (sh == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sh->ttl = NGX_CODEB_SHARE_TTL_DEFAULT;

    ttl = ngx_codeb_json_get(ctx->body, "ttlHours");
    if (ttl == NULL) {
        ttl = ngx_codeb_json_get(ctx->body, "TtlHours");
    }

    if (ttl
        && (ngx_codeb_json_int(ctx->body, (char *) ttl->key.data, &sh->ttl)
            != NGX_OK
            || sh->ttl < 0 || sh->ttl > NGX_CODEB_SHARE_TTL_MAX))
    {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "ttlHours: an integer 0 (never "
                                    "expires) to 8760");
    }

    token.data = p;
    token.len = 32;

    if (ngx_codeb_random_hex(p, 16) != NGX_OK
        || ngx_codeb_share_key(r, ctx->tenant, &token, sh) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p += 32;
    sh->expires = sh->ttl ? (int64_t) ngx_codeb_now_ms()
                            + sh->ttl * 3600000 : 0;

    args[0] = ctx->param;
    args[1] = ctx->identity;
    args[2].data = p;
    args[2].len = ngx_sprintf(p, "%L", (int64_t) ngx_codeb_now_ms())
                  - p;
    args[3].data = p + NGX_INT64_LEN;
    args[3].len = ngx_sprintf(args[3].data, "%L", sh->expires)
                  - args[3].data;
    args[4].data = p + 2 * NGX_INT64_LEN;
    args[4].len = ngx_sprintf(args[4].data, "%L", sh->ttl * 3600000)
                  - args[4].data;

    sum = ngx_codeb_api_key(r, ctx, NGX_CODEB_API_TR_SUMMARY);
    if (sum == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, sum);
    ngx_codeb_redis_arg_str(&a, &sh->key);

    for (i = 0; i < 5; i++) {
        ngx_codeb_redis_arg_str(&a, &args[i]);
    }

    ctx->data = sh;

    return ngx_codeb_http_redis(r, &ngx_codeb_share_add_script,
                                ngx_codeb_share_created, 2, &a);
}


static void
ngx_codeb_share_created(redisAsyncContext *ac, void *reply, void *data)
{
    u_char               *p;
    yajl_gen              g;
    ngx_int_t             rc;
    ngx_str_t             host, url, file;
    redisReply           *rep = reply;
    ngx_http_request_t   *r = data;
    ngx_codeb_share_t    *sh;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);
    sh = ctx->data;
    rc = ngx_codeb_share_file(r, rep, &file);

    if (rc == NGX_ERROR) {
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_codeb_api_transcript_404(r, &ctx->param));
        return;
    }

    /* share.created: the token's last 8 characters only */

    g = ngx_codeb_share_event(ctx->tenant, "share.created", &sh->token,
                              &file);
    if (g) {
        ngx_codeb_gen_int(g, "ttlHours", sh->ttl);
        ngx_codeb_gen_vstr(g, "createdBy", &ctx->identity);
        ngx_codeb_gen_time(g, "expiresUtc", (uint64_t) sh->expires);

        (void) ngx_codeb_api_fire(ctx->conf, "share.created", g, NULL, NULL,
                                  NULL);
    }

    host = r->headers_in.host ? r->headers_in.host->value : ctx->tenant->name;

    url.data = ngx_pnalloc(r->pool, sizeof("https:///transcript-share.ashx"
                                           "?token=") + host.len + 32);
    if (url.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_sprintf(url.data, "%s://%V/transcript-share.ashx?token=%V",
#if (NGX_HTTP_SSL)
                    r->connection->ssl ? "https" : "http",
#else
                    "http",
#endif
                    &host, &sh->token);
    url.len = p - url.data;

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_vstr(g, "token", &sh->token);
    ngx_codeb_gen_vstr(g, "url", &url);
    ngx_codeb_gen_int(g, "ttlHours", sh->ttl);
    ngx_codeb_gen_time(g, "expiresUtc", (uint64_t) sh->expires);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_CREATED, g));
}


/*
 * a script's answer of a file name, or nil: NGX_OK with *file,
 * NGX_DECLINED nil, NGX_ERROR when Redis did not answer (r is finalized
 * with 503)
 */
static ngx_int_t
ngx_codeb_share_file(ngx_http_request_t *r, redisReply *rep,
    ngx_str_t *file)
{
    if (rep == NULL
        || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL))
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return NGX_ERROR;
    }

    if (rep->type == REDIS_REPLY_NIL) {
        return NGX_DECLINED;
    }

    file->data = (u_char *) rep->str;
    file->len = rep->len;

    return NGX_OK;
}


/* DELETE /v1/transcripts/{callId}/shares/{token}: 200 {ok}, or 404 */
ngx_int_t
ngx_codeb_api_shares_delete(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_int_t                rc;
    ngx_codeb_share_t       *sh;
    ngx_codeb_redis_args_t   a;

    sh = ngx_pcalloc(r->pool, sizeof(ngx_codeb_share_t));
    if (sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_codeb_share_key(r, ctx->tenant, &ctx->param2, sh);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK || ngx_codeb_api_call_id(&ctx->param) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "No share with that token for that "
                                    "callId");
    }

    ctx->data = sh;

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &sh->key);
    ngx_codeb_redis_arg_str(&a, &ctx->param);

    return ngx_codeb_http_redis(r, &ngx_codeb_share_del_script,
                                ngx_codeb_share_deleted, 1, &a);
}


static void
ngx_codeb_share_deleted(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen              g;
    ngx_int_t             rc;
    ngx_str_t             file;
    redisReply           *rep = reply;
    ngx_http_request_t   *r = data;
    ngx_codeb_share_t    *sh;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);
    sh = ctx->data;
    rc = ngx_codeb_share_file(r, rep, &file);

    if (rc == NGX_ERROR) {
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                 "No share with that token for that "
                                 "callId"));
        return;
    }

    g = ngx_codeb_share_event(ctx->tenant, "share.revoked", &sh->token,
                              &file);
    if (g) {
        ngx_codeb_gen_vstr(g, "revokedBy", &ctx->identity);
        (void) ngx_codeb_api_fire(ctx->conf, "share.revoked", g, NULL, NULL,
                                  NULL);
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_bool(g, "ok", 1);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


/*
 * the codeb_transcript_share location: GET or HEAD ?token=, no bearer;
 * 405 other methods, 400 without a token, 404 an unknown, revoked or
 * expired one, else 200 with the public view
 */
ngx_int_t
ngx_codeb_api_share_handler(ngx_http_request_t *r)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *h;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "GET, HEAD");

        return ngx_codeb_http_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method_not_allowed",
                                    "a share is read with GET");
    }

    if (ngx_codeb_tenant(r) == NULL) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "no codeb_tenant for this host");
    }

    return ngx_codeb_http_with_redis(r, ngx_codeb_share_lookup);
}


/* the share of ?token= looked up (Redis is up, or given up on) */
static ngx_int_t
ngx_codeb_share_lookup(ngx_http_request_t *r)
{
    u_char                  *p;
    ngx_int_t                rc;
    ngx_str_t                token, body, now;
    ngx_codeb_tenant_t      *t;
    ngx_codeb_share_t       *sh;
    ngx_codeb_redis_args_t   a;

    t = ngx_codeb_tenant(r);

    if (ngx_http_arg(r, (u_char *) "token", 5, &token) != NGX_OK
        || token.len == 0)
    {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request", "token is required");
    }

    sh = ngx_pcalloc(r->pool, sizeof(ngx_codeb_share_t));
    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (sh == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_codeb_share_key(r, t, &token, sh);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "no such share (revoked or expired?)");
    }

    if (ngx_codeb_key(r->pool, &t->name, NGX_CODEB_API_TR_BODY, NULL, 0,
                      &body)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    now.data = p;
    now.len = ngx_sprintf(p, "%L", (int64_t) ngx_codeb_now_ms()) - p;

    ngx_http_set_ctx(r, sh, ngx_codeb_api_module);

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &sh->key);
    ngx_codeb_redis_arg_str(&a, &body);
    ngx_codeb_redis_arg_str(&a, &now);

    return ngx_codeb_http_redis(r, &ngx_codeb_share_view_script,
                                ngx_codeb_share_found, 2, &a);
}


static void
ngx_codeb_share_found(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen                   g;
    ngx_str_t                  file, ip;
    ngx_uint_t                 i;
    redisReply                *rep = reply, *b;
    ngx_array_t               *m;
    ngx_http_request_t        *r = data;
    ngx_codeb_tenant_t        *t;
    ngx_codeb_share_t         *sh;
    ngx_codeb_api_srv_conf_t  *conf;
    ngx_codeb_json_member_t   *j;

    sh = ngx_http_get_module_ctx(r, ngx_codeb_api_module);
    t = ngx_codeb_tenant(r);

    if (rep == NULL
        || (rep->type != REDIS_REPLY_ARRAY && rep->type != REDIS_REPLY_NIL))
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    b = (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2
         && rep->element[0]->type == REDIS_REPLY_STRING
         && rep->element[1]->type == REDIS_REPLY_STRING)
        ? rep->element[1] : NULL;

    if (b == NULL
        || ngx_codeb_json_object(r->pool, (u_char *) b->str, b->len, &m)
           != NGX_OK)
    {
        ngx_http_finalize_request(r,
            ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                 "no such share (revoked or expired?)"));
        return;
    }

    /* share.viewed, with the settings of the tenant's API server */

    file.data = (u_char *) rep->element[0]->str;
    file.len = rep->element[0]->len;
    conf = ngx_codeb_api_conf_of(&t->name);

    if (conf == NULL) {
        conf = ngx_http_get_module_srv_conf(r, ngx_codeb_api_module);
    }

    g = ngx_codeb_share_event(t, "share.viewed", &sh->token, &file);
    if (g) {
        ip = r->connection->addr_text;
        ngx_codeb_gen_vstr(g, "viewerIp", &ip);
        (void) ngx_codeb_api_fire(conf, "share.viewed", g, NULL, NULL, NULL);
    }

    /* the public view: an allowlist, never phones, emails or who asked */

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; ngx_codeb_share_fields[i]; i++) {
        j = ngx_codeb_json_get(m, ngx_codeb_share_fields[i]);

        if (j && j->type == NGX_CODEB_JSON_STRING) {
            if (ngx_codeb_share_number(&j->str)) {
                /* a display name that is the caller's number */
                continue;
            }

            ngx_codeb_gen_vstr(g, ngx_codeb_share_fields[i], &j->str);

        } else if (j && j->type == NGX_CODEB_JSON_NUMBER) {
            ngx_codeb_gen_key(g, ngx_codeb_share_fields[i]);
            yajl_gen_number(g, (char *) j->raw.data, j->raw.len);
        }
    }

    ngx_codeb_gen_key(g, "turns");
    j = ngx_codeb_json_get_type(m, "turns", NGX_CODEB_JSON_ARRAY);
    ngx_codeb_share_gen_turns(r, g, j ? &j->raw : NULL);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


/* 1 when s looks like a phone number: digits and "+ -().", 3 digits+ */
static ngx_uint_t
ngx_codeb_share_number(ngx_str_t *s)
{
    size_t  i, digits;

    for (i = 0, digits = 0; i < s->len; i++) {
        if (s->data[i] >= '0' && s->data[i] <= '9') {
            digits++;

        } else if (ngx_strchr("+ -().", s->data[i]) == NULL) {
            return 0;
        }
    }

    return digits >= 3;
}


/* [{speaker, text, ts}] of the turns (raw JSON), their strings only */
static void
ngx_codeb_share_gen_turns(ngx_http_request_t *r, yajl_gen g, ngx_str_t *raw)
{
    char        *text;
    size_t       k;
    yajl_val     t, v, f;
    ngx_uint_t   i;
    const char  *path[2];

    yajl_gen_array_open(g);
    path[1] = NULL;

    text = raw ? ngx_pnalloc(r->pool, raw->len + 1) : NULL;

    if (text == NULL) {
        yajl_gen_array_close(g);
        return;
    }

    /* indexed transcripts come from the generator: 128 levels at most */
    ngx_memcpy(text, raw->data, raw->len);
    text[raw->len] = '\0';
    t = yajl_tree_parse(text, NULL, 0);

    for (k = 0; YAJL_IS_ARRAY(t) && k < t->u.array.len; k++) {
        v = t->u.array.values[k];

        if (!YAJL_IS_OBJECT(v)) {
            continue;
        }

        yajl_gen_map_open(g);

        for (i = 0; ngx_codeb_share_turn_fields[i]; i++) {
            path[0] = ngx_codeb_share_turn_fields[i];
            f = yajl_tree_get(v, path, yajl_t_string);
            if (f) {
                ngx_codeb_gen_cstr(g, ngx_codeb_share_turn_fields[i],
                                   YAJL_GET_STRING(f));
            }
        }

        yajl_gen_map_close(g);
    }

    yajl_tree_free(t);
    yajl_gen_array_close(g);
}


/* an event's envelope with {token: "..." + its last 8, file} in data */
static yajl_gen
ngx_codeb_share_event(ngx_codeb_tenant_t *t, char *event, ngx_str_t *token,
    ngx_str_t *file)
{
    u_char    tail[3 + 8];
    yajl_gen  g;

    g = ngx_codeb_api_envelope(t, event);
    if (g == NULL) {
        return NULL;
    }

    ngx_memcpy(tail, "...", 3);
    ngx_memcpy(tail + 3, token->data + token->len - 8, 8);

    ngx_codeb_gen_str(g, "token", tail, sizeof(tail));
    ngx_codeb_gen_vstr(g, "file", file);

    return g;
}

/*
 * The platform's own OIDC provider for its admins (docs/api.md "Token
 * endpoint"): POST /oidc.ashx/token (RFC 6749 §4.3 password and §6
 * refresh_token grants, client codeb-admin), the discovery document
 * (OpenID Connect Discovery 1.0) and the JWKS (RFC 7517).  Tokens are
 * ES256 JWTs (RFC 7519) signed with the tenant's codeb_oidc_signing_key,
 * for 3600 s.  Passwords are checked with crypt(3) (yescrypt, or any
 * scheme libcrypt knows) in nginx's thread pool, never on the event
 * loop; failed sign-ins are limited per user and per address in Redis.
 */

#include "ngx_codeb_api.h"
#include <crypt.h>
#include <jwt.h>


#define NGX_CODEB_OIDC_TTL          3600     /* s, access and ID tokens */
#define NGX_CODEB_OIDC_REFRESH_TTL  "2592000"   /* s, 30 days */
#define NGX_CODEB_OIDC_MAX_FAILS    "5"      /* per user, per address */
#define NGX_CODEB_OIDC_FAIL_WINDOW  "900"    /* s */
#define NGX_CODEB_OIDC_MAX_BODY     8192     /* bytes of a token request */
/* what an unknown user's password is checked against (a random one) */
#define NGX_CODEB_OIDC_DUMMY                                                 \
    "$y$j9T$z44poZ.STeF8vHl/lGgL/.$awFw1/fNG8fyHc2552lOMIgBr4FEeP.oKvSLL6ZfffA"


typedef struct {
    ngx_str_t                   grant_type;
    ngx_str_t                   client_id;
    ngx_str_t                   username;
    ngx_str_t                   password;
    ngx_str_t                   scope;
    ngx_str_t                   refresh_token;
} ngx_codeb_oidc_form_t;


typedef struct {
    ngx_codeb_tenant_t         *tenant;
    ngx_codeb_oidc_form_t       form;
    ngx_codeb_api_admin_t      *admin;       /* the user, NULL: unknown */
    ngx_str_t                   fail_user;   /* P loginfail:u:<user> */
    ngx_str_t                   fail_addr;   /* P loginfail:a:<address> */
    ngx_str_t                   user;        /* signed in as */
    ngx_str_t                   scope;
    /* the thread's work: crypt_r(password, setting) == hash */
    struct crypt_data          *crypt;
    char                       *password;
    char                       *setting;
    ngx_uint_t                  ok;
} ngx_codeb_oidc_ctx_t;


static ngx_int_t ngx_codeb_oidc_grant(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_oidc_token(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_codeb_oidc_refresh_grant(ngx_http_request_t *r,
    ngx_codeb_oidc_ctx_t *ctx);
static ngx_int_t ngx_codeb_oidc_password_grant(ngx_http_request_t *r,
    ngx_codeb_oidc_ctx_t *ctx);
static ngx_int_t ngx_codeb_oidc_form(ngx_http_request_t *r, ngx_str_t *body,
    ngx_codeb_oidc_form_t *f);
static ngx_int_t ngx_codeb_oidc_error(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *text);
static void ngx_codeb_oidc_limited(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_oidc_crypt(void *data, ngx_log_t *log);
static void ngx_codeb_oidc_checked(ngx_event_t *ev);
static void ngx_codeb_oidc_refreshed(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_oidc_issue(ngx_http_request_t *r,
    ngx_codeb_oidc_ctx_t *ctx);
static void ngx_codeb_oidc_issued(redisAsyncContext *ac, void *reply,
    void *data);
static char *ngx_codeb_oidc_jwt(ngx_http_request_t *r,
    ngx_codeb_oidc_ctx_t *ctx, ngx_uint_t id_token);
static ngx_uint_t ngx_codeb_oidc_has_scope(ngx_str_t *scope, char *name);
static ngx_codeb_api_admin_t *ngx_codeb_oidc_admin(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_int_t ngx_codeb_oidc_respond(ngx_http_request_t *r,
    ngx_codeb_oidc_ctx_t *ctx, ngx_uint_t refresh);


/* fails a user's and an address's sign-ins; their counts (max), or -1 */
static ngx_codeb_redis_script_t  ngx_codeb_oidc_fail_script = {
    ngx_string(
        "if ARGV[1] == 'check' then\n"
        "  return math.max(tonumber(redis.call('GET', KEYS[1]) or 0),\n"
        "                  tonumber(redis.call('GET', KEYS[2]) or 0))\n"
        "end\n"
        "if ARGV[1] == 'ok' then\n"
        "  redis.call('DEL', KEYS[1])\n"
        "  return 0\n"
        "end\n"
        "for i = 1, 2 do\n"
        "  redis.call('INCR', KEYS[i])\n"
        "  redis.call('EXPIRE', KEYS[i], ARGV[2])\n"
        "end\n"
        "return 0\n"),
    ""
};


ngx_int_t
ngx_codeb_api_oidc_init(ngx_conf_t *cf)
{
    return ngx_codeb_redis_add_script(cf, &ngx_codeb_oidc_fail_script);
}


ngx_int_t
ngx_codeb_api_oidc_handler(ngx_http_request_t *r)
{
    size_t              len;
    u_char             *path;
    ngx_int_t           rc;
    ngx_codeb_tenant_t *t;

    t = ngx_codeb_tenant(r);

    path = r->uri.data + sizeof("/oidc.ashx") - 1;
    len = r->uri.len >= sizeof("/oidc.ashx") - 1
          ? r->uri.len - (sizeof("/oidc.ashx") - 1) : 0;

    if (t && len == sizeof("/token") - 1
        && ngx_strncmp(path, "/token", len) == 0)
    {
        if (r->method != NGX_HTTP_POST) {
            goto not_allowed;
        }

        return ngx_codeb_http_read_body(r, NGX_CODEB_OIDC_MAX_BODY,
                                        ngx_codeb_oidc_token);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (t && t->oidc_key
        && len == sizeof("/.well-known/openid-configuration") - 1
        && ngx_strncmp(path, "/.well-known/openid-configuration", len) == 0)
    {
        return (r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))
               ? ngx_codeb_api_oidc_discovery(r)
               : ngx_codeb_http_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed", "GET only");
    }

    if (t && t->oidc_key && len == sizeof("/jwks") - 1
        && ngx_strncmp(path, "/jwks", len) == 0)
    {
        return (r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))
               ? ngx_codeb_api_oidc_jwks(r)
               : ngx_codeb_http_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed", "GET only");
    }

    return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                "no such endpoint");

not_allowed:

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_codeb_http_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                                "POST only");
}


/* POST /oidc.ashx/token with its form body */
static ngx_int_t
ngx_codeb_oidc_token(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_codeb_oidc_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_codeb_oidc_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_codeb_api_module);
    ctx->tenant = ngx_codeb_tenant(r);

    if (ctx->tenant->oidc_key == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "codeb_oidc: tenant \"%V\" has no "
                      "codeb_oidc_signing_key", &ctx->tenant->name);
        return ngx_codeb_oidc_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "temporarily_unavailable",
                                    "no signing key is configured");
    }

    if (ngx_codeb_oidc_form(r, body, &ctx->form) != NGX_OK) {
        return ngx_codeb_oidc_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "the body is not a valid form");
    }

    if (ctx->form.client_id.len != sizeof(NGX_CODEB_OIDC_CLIENT) - 1
        || ngx_strncmp(ctx->form.client_id.data, NGX_CODEB_OIDC_CLIENT,
                       ctx->form.client_id.len) != 0)
    {
        return ngx_codeb_oidc_error(r, NGX_HTTP_UNAUTHORIZED,
                                    "invalid_client",
                                    "client_id must be codeb-admin");
    }

    ctx->scope = ctx->form.scope;

    /* the grants need Redis: right after a start its links may not be up */
    return ngx_codeb_http_with_redis(r, ngx_codeb_oidc_grant);
}


/* the grant of the form, once the Redis links are up (or have timed out) */
static ngx_int_t
ngx_codeb_oidc_grant(ngx_http_request_t *r)
{
    ngx_codeb_oidc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (ctx->form.grant_type.len == 13
        && ngx_strncmp(ctx->form.grant_type.data, "refresh_token", 13) == 0)
    {
        return ngx_codeb_oidc_refresh_grant(r, ctx);
    }

    if (ctx->form.grant_type.len == 8
        && ngx_strncmp(ctx->form.grant_type.data, "password", 8) == 0)
    {
        return ngx_codeb_oidc_password_grant(r, ctx);
    }

    return ngx_codeb_oidc_error(r, NGX_HTTP_BAD_REQUEST,
                                "unsupported_grant_type",
                                "grant_type must be password or "
                                "refresh_token");
}


/* RFC 6749 §6: the refresh token's record, taken from Redis */
static ngx_int_t
ngx_codeb_oidc_refresh_grant(ngx_http_request_t *r, ngx_codeb_oidc_ctx_t *ctx)
{
    u_char                 *p;
    ngx_str_t               key;
    ngx_codeb_redis_args_t  args;

    if (ctx->form.refresh_token.len == 0
        || ctx->form.refresh_token.len > 128)
    {
        return ngx_codeb_oidc_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "refresh_token is required");
    }

    p = ngx_pnalloc(r->pool, 65);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_sha256_hex(ctx->form.refresh_token.data,
                         ctx->form.refresh_token.len, p);

    if (ngx_codeb_key(r->pool, &ctx->tenant->name, "refresh:", p, 64, &key)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args.argc = 0;
    ngx_codeb_redis_arg_lit(&args, "GETDEL");
    ngx_codeb_redis_arg_str(&args, &key);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_oidc_refreshed, 0, &args);
}


/* RFC 6749 §4.3: the failure counts first (ngx_codeb_oidc_limited) */
static ngx_int_t
ngx_codeb_oidc_password_grant(ngx_http_request_t *r,
    ngx_codeb_oidc_ctx_t *ctx)
{
    ngx_codeb_redis_args_t  args;

    if (ctx->form.username.len == 0 || ctx->form.username.len > 128
        || ctx->form.password.len == 0 || ctx->form.password.len > 1024)
    {
        return ngx_codeb_oidc_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "username and password are required");
    }

    ctx->admin = ngx_codeb_oidc_admin(r, &ctx->form.username);

    if (ngx_codeb_key(r->pool, &ctx->tenant->name, "loginfail:u:",
                      ctx->form.username.data, ctx->form.username.len,
                      &ctx->fail_user)
        != NGX_OK
        || ngx_codeb_key(r->pool, &ctx->tenant->name, "loginfail:a:",
                         r->connection->addr_text.data,
                         r->connection->addr_text.len, &ctx->fail_addr)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args.argc = 0;
    ngx_codeb_redis_arg_str(&args, &ctx->fail_user);
    ngx_codeb_redis_arg_str(&args, &ctx->fail_addr);
    ngx_codeb_redis_arg_lit(&args, "check");

    return ngx_codeb_http_redis(r, &ngx_codeb_oidc_fail_script,
                                ngx_codeb_oidc_limited, 2, &args);
}


/* the failure counts known: refuse, or check the password in a thread */
static void
ngx_codeb_oidc_limited(redisAsyncContext *ac, void *reply, void *data)
{
    ngx_str_t              s;
    redisReply            *rep = reply;
    ngx_table_elt_t       *h;
    ngx_thread_task_t     *task;
    ngx_http_request_t    *r = data;
    ngx_codeb_oidc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    if (rep->integer >= ngx_atoi((u_char *) NGX_CODEB_OIDC_MAX_FAILS,
                                 sizeof(NGX_CODEB_OIDC_MAX_FAILS) - 1))
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h) {
            h->hash = 1;
            ngx_str_set(&h->key, "Retry-After");
            ngx_str_set(&h->value, NGX_CODEB_OIDC_FAIL_WINDOW);
        }

        ngx_http_finalize_request(r,
            ngx_codeb_oidc_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                 "temporarily_unavailable",
                                 "too many failed sign-ins; try again "
                                 "later"));
        return;
    }

    /* an unknown user costs the same crypt(3) as a known one */

    task = ngx_thread_task_alloc(r->pool, 0);
    ctx->crypt = ngx_pcalloc(r->pool, sizeof(struct crypt_data));
    s = ctx->form.password;
    ctx->password = (char *) ngx_pnalloc(r->pool, s.len + 1);

    if (task == NULL || ctx->crypt == NULL || ctx->password == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    (void) ngx_cpystrn((u_char *) ctx->password, s.data, s.len + 1);
    ctx->setting = ctx->admin ? (char *) ctx->admin->hash.data
                              : NGX_CODEB_OIDC_DUMMY;

    task->ctx = ctx;
    task->handler = ngx_codeb_oidc_crypt;
    task->event.handler = ngx_codeb_oidc_checked;
    task->event.data = r;

    if (ngx_thread_task_post(ngx_codeb_api_thread_pool(), task) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->main->count++;
    ngx_http_finalize_request(r, NGX_DONE);
}


/* in a thread of the pool: nothing here touches nginx's memory */
static void
ngx_codeb_oidc_crypt(void *data, ngx_log_t *log)
{
    char                  *out;
    size_t                 n;
    ngx_codeb_oidc_ctx_t  *ctx = data;

    out = crypt_r(ctx->password, ctx->setting, ctx->crypt);
    n = ngx_strlen(ctx->setting);

    ctx->ok = out != NULL && out[0] != '*'
              && ngx_codeb_equal_secret((u_char *) out, ngx_strlen(out),
                                        (u_char *) ctx->setting, n);
}


/* back on the event loop with the outcome */
static void
ngx_codeb_oidc_checked(ngx_event_t *ev)
{
    ngx_int_t               rc;
    ngx_connection_t       *c;
    ngx_http_request_t     *r = ev->data;
    ngx_codeb_oidc_ctx_t   *ctx;
    ngx_codeb_redis_args_t  args;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    ngx_explicit_memzero(ctx->password, ngx_strlen(ctx->password));

    args.argc = 0;
    ngx_codeb_redis_arg_str(&args, &ctx->fail_user);
    ngx_codeb_redis_arg_str(&args, &ctx->fail_addr);

    if (!(ctx->ok && ctx->admin)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "codeb_oidc: failed sign-in");

        ngx_codeb_redis_arg_lit(&args, "fail");
        ngx_codeb_redis_arg_lit(&args, NGX_CODEB_OIDC_FAIL_WINDOW);
        (void) ngx_codeb_redis_eval(&ngx_codeb_oidc_fail_script, NULL, NULL,
                                    2, &args);

        rc = ngx_codeb_oidc_error(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                                  "wrong username or password");

    } else {
        ngx_codeb_redis_arg_lit(&args, "ok");
        (void) ngx_codeb_redis_eval(&ngx_codeb_oidc_fail_script, NULL, NULL,
                                    2, &args);

        ctx->user = ctx->admin->name;
        rc = ngx_codeb_oidc_issue(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the refresh token's record {user, scope}, taken (rotation) */
static void
ngx_codeb_oidc_refreshed(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply               *rep = reply;
    ngx_array_t              *m;
    ngx_http_request_t       *r = data;
    ngx_codeb_oidc_ctx_t     *ctx;
    ngx_codeb_api_admin_t    *a;
    ngx_codeb_json_member_t  *user, *scope;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep == NULL
        || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL))
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    user = scope = NULL;

    if (rep->type == REDIS_REPLY_STRING
        && ngx_codeb_json_object(r->pool, (u_char *) rep->str, rep->len, &m)
           == NGX_OK)
    {
        user = ngx_codeb_json_get_type(m, "user", NGX_CODEB_JSON_STRING);
        scope = ngx_codeb_json_get_type(m, "scope", NGX_CODEB_JSON_STRING);
    }

    /* the user must still be an admin of the tenant */

    a = user ? ngx_codeb_oidc_admin(r, &user->str) : NULL;

    if (a) {
        ctx->user = a->name;
        ctx->scope = scope ? scope->str : ctx->scope;
        ngx_http_finalize_request(r, ngx_codeb_oidc_issue(r, ctx));
        return;
    }

    ngx_http_finalize_request(r,
        ngx_codeb_oidc_error(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                             "the refresh token is not valid"));
}


/*
 * the token response (RFC 6749 §5.1): an access token, an ID token with
 * scope openid, and with offline_access a refresh token stored first
 */
static ngx_int_t
ngx_codeb_oidc_issue(ngx_http_request_t *r, ngx_codeb_oidc_ctx_t *ctx)
{
    u_char                  *rt, *hash;
    yajl_gen                 g;
    ngx_str_t                rec, key;
    ngx_codeb_redis_args_t   args;

    if (!ngx_codeb_oidc_has_scope(&ctx->scope, "offline_access")) {
        return ngx_codeb_oidc_respond(r, ctx, 0);
    }

    rt = ngx_pnalloc(r->pool, 64 + 1 + 65);
    if (rt == NULL || ngx_codeb_random_hex(rt, 32) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rt[64] = '\0';
    hash = rt + 65;
    ngx_codeb_sha256_hex(rt, 64, hash);
    ctx->form.refresh_token.data = rt;
    ctx->form.refresh_token.len = 64;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_vstr(g, "user", &ctx->user);
    ngx_codeb_gen_vstr(g, "scope", &ctx->scope);
    rec = ngx_codeb_gen_done(g);
    rec.data = ngx_pstrdup(r->pool, &rec);

    if (rec.data == NULL
        || ngx_codeb_key(r->pool, &ctx->tenant->name, "refresh:", hash, 64,
                         &key)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args.argc = 0;
    ngx_codeb_redis_arg_lit(&args, "SET");
    ngx_codeb_redis_arg_str(&args, &key);
    ngx_codeb_redis_arg_str(&args, &rec);
    ngx_codeb_redis_arg_lit(&args, "EX");
    ngx_codeb_redis_arg_lit(&args, NGX_CODEB_OIDC_REFRESH_TTL);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_oidc_issued, 0, &args);
}


static void
ngx_codeb_oidc_issued(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply            *rep = reply;
    ngx_http_request_t    *r = data;
    ngx_codeb_oidc_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep == NULL || rep->type != REDIS_REPLY_STATUS) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    ngx_http_finalize_request(r, ngx_codeb_oidc_respond(r, ctx, 1));
}


/* 200 with the tokens; with refresh, ctx's refresh token too */
static ngx_int_t
ngx_codeb_oidc_respond(ngx_http_request_t *r, ngx_codeb_oidc_ctx_t *ctx,
    ngx_uint_t refresh)
{
    char             *access, *id;
    yajl_gen          g;
    ngx_uint_t        openid;
    ngx_table_elt_t  *h;

    openid = ngx_codeb_oidc_has_scope(&ctx->scope, "openid");
    access = ngx_codeb_oidc_jwt(r, ctx, 0);
    id = openid ? ngx_codeb_oidc_jwt(r, ctx, 1) : NULL;
    h = ngx_list_push(&r->headers_out.headers);

    if (access == NULL || h == NULL || (openid && id == NULL)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* RFC 6749 §5.1: Pragma: no-cache with Cache-Control: no-store */
    h->hash = 1;
    ngx_str_set(&h->key, "Pragma");
    ngx_str_set(&h->value, "no-cache");

    ngx_codeb_gen_cstr(g, "access_token", access);
    ngx_codeb_gen_cstr(g, "token_type", "Bearer");
    ngx_codeb_gen_int(g, "expires_in", NGX_CODEB_OIDC_TTL);
    ngx_codeb_gen_vstr(g, "scope", &ctx->scope);

    if (id) {
        ngx_codeb_gen_cstr(g, "id_token", id);
    }

    if (refresh) {
        ngx_codeb_gen_vstr(g, "refresh_token", &ctx->form.refresh_token);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "codeb_oidc: tokens issued to \"%V\"", &ctx->user);

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}


/*
 * an ES256 JWT for ctx->user: the access token (role admin, scope,
 * client_id) or the ID token; a string of r's pool, NULL on failure
 */
static char *
ngx_codeb_oidc_jwt(ngx_http_request_t *r, ngx_codeb_oidc_ctx_t *ctx,
    ngx_uint_t id_token)
{
    char        *out, *copy;
    jwt_t       *jwt;
    time_t       now;
    ngx_str_t    iss, user, scope;
    ngx_int_t    rc;

    if (ngx_codeb_api_oidc_issuer(r, &iss) != NGX_OK) {
        return NULL;
    }

    user.data = ngx_pnalloc(r->pool, ctx->user.len + 1);
    scope.data = ngx_pnalloc(r->pool, ctx->scope.len + 1);
    if (user.data == NULL || scope.data == NULL) {
        return NULL;
    }

    (void) ngx_cpystrn(user.data, ctx->user.data, ctx->user.len + 1);
    (void) ngx_cpystrn(scope.data, ctx->scope.data, ctx->scope.len + 1);

    if (jwt_new(&jwt) != 0) {
        return NULL;
    }

    now = ngx_time();

    rc = jwt_add_grant(jwt, "iss", (char *) iss.data)
         | jwt_add_grant(jwt, "sub", (char *) user.data)
         | jwt_add_grant(jwt, "preferred_username", (char *) user.data)
         | jwt_add_grant(jwt, "aud", NGX_CODEB_OIDC_CLIENT)
         | jwt_add_grant_int(jwt, "iat", (long) now)
         | jwt_add_grant_int(jwt, "exp", (long) now + NGX_CODEB_OIDC_TTL)
         | jwt_add_header(jwt, "kid",
                          (char *) ctx->tenant->oidc_key->kid.data);

    if (!id_token) {
        rc |= jwt_add_grant(jwt, "role", "admin")
              | jwt_add_grant(jwt, "client_id", NGX_CODEB_OIDC_CLIENT)
              | jwt_add_grant(jwt, "scope", (char *) scope.data);
    }

    rc |= jwt_set_alg(jwt, JWT_ALG_ES256,
                      ctx->tenant->oidc_key->private_pem.data,
                      (int) ctx->tenant->oidc_key->private_pem.len);

    out = rc == 0 ? jwt_encode_str(jwt) : NULL;
    jwt_free(jwt);

    if (out == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "codeb_oidc: signing a token failed");
        return NULL;
    }

    copy = (char *) ngx_pnalloc(r->pool, ngx_strlen(out) + 1);
    if (copy) {
        ngx_memcpy(copy, out, ngx_strlen(out) + 1);
    }

    free(out);

    return copy;
}


/*
 * application/x-www-form-urlencoded (the URL Standard): "+" is a space,
 * %XX escapes; the fields of a token request, each at most once
 */
static ngx_int_t
ngx_codeb_oidc_form(ngx_http_request_t *r, ngx_str_t *body,
    ngx_codeb_oidc_form_t *f)
{
    u_char      *p, *end, *amp, *eq, *dst, *src;
    ngx_str_t   *field, name;
    ngx_uint_t   i;

    static struct {
        char       *name;
        size_t      off;
    }  fields[] = {
        { "grant_type", offsetof(ngx_codeb_oidc_form_t, grant_type) },
        { "client_id", offsetof(ngx_codeb_oidc_form_t, client_id) },
        { "username", offsetof(ngx_codeb_oidc_form_t, username) },
        { "password", offsetof(ngx_codeb_oidc_form_t, password) },
        { "scope", offsetof(ngx_codeb_oidc_form_t, scope) },
        { "refresh_token", offsetof(ngx_codeb_oidc_form_t, refresh_token) },
        { NULL, 0 }
    };

    for (p = body->data; p < body->data + body->len; p++) {
        if (*p == '+') {
            *p = ' ';
        }
    }

    p = body->data;
    end = body->data + body->len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');
        if (eq == NULL) {
            return NGX_DECLINED;
        }

        name.data = p;
        name.len = eq - p;
        field = NULL;

        for (i = 0; fields[i].name; i++) {
            if (name.len == ngx_strlen(fields[i].name)
                && ngx_strncmp(name.data, fields[i].name, name.len) == 0)
            {
                field = (ngx_str_t *) ((u_char *) f + fields[i].off);
            }
        }

        if (field && field->data) {
            return NGX_DECLINED;         /* RFC 6749 §3.2: once at most */
        }

        if (field) {
            field->data = ngx_pnalloc(r->pool, amp - eq);
            if (field->data == NULL) {
                return NGX_ERROR;
            }

            dst = field->data;
            src = eq + 1;
            ngx_unescape_uri(&dst, &src, amp - eq - 1, 0);
            field->len = dst - field->data;
        }

        p = amp + 1;
    }

    return NGX_OK;
}


/* RFC 6749 §5.2 {error, error_description}, Pragma: no-cache */
static ngx_int_t
ngx_codeb_oidc_error(ngx_http_request_t *r, ngx_uint_t status, char *code,
    char *text)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Pragma");
    ngx_str_set(&h->value, "no-cache");

    return ngx_codeb_http_error(r, status, code, text);
}


/* name is one of the space-separated scopes */
static ngx_uint_t
ngx_codeb_oidc_has_scope(ngx_str_t *scope, char *name)
{
    u_char  *p, *end, *sp;
    size_t   n;

    n = ngx_strlen(name);
    p = scope->data;
    end = scope->data + scope->len;

    while (p && p < end) {
        sp = ngx_strlchr(p, end, ' ');
        if (sp == NULL) {
            sp = end;
        }

        if ((size_t) (sp - p) == n && ngx_strncmp(p, name, n) == 0) {
            return 1;
        }

        p = sp + 1;
    }

    return 0;
}


/* the tenant's codeb_admin_user of that name, or NULL */
static ngx_codeb_api_admin_t *
ngx_codeb_oidc_admin(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t              i;
    ngx_array_t            *admins;
    ngx_codeb_api_admin_t  *a;

    admins = ngx_codeb_api_admins(r);
    if (admins == NULL) {
        return NULL;
    }

    a = admins->elts;

    for (i = 0; i < admins->nelts; i++) {
        if (a[i].name.len == name->len
            && ngx_strncmp(a[i].name.data, name->data, name->len) == 0)
        {
            return &a[i];
        }
    }

    return NULL;
}

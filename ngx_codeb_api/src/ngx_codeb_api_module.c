/*
 * The codeb_api location: routing, the request body, the bearer
 * (docs/api.md "Conventions", "Authentication").
 */

#include "ngx_codeb_api.h"


typedef struct {
    ngx_flag_t                  scripts;     /* registered for this cycle */
    ngx_flag_t                  oidc_scripts;
    ngx_thread_pool_t          *thread_pool;
    ngx_array_t                 confs;       /* ngx_codeb_api_srv_conf_t *
                                                of the codeb_api servers */
} ngx_codeb_api_main_conf_t;


static ngx_int_t ngx_codeb_api_handler(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_api_route(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
static ngx_int_t ngx_codeb_api_match(char *tmpl, u_char *path, size_t len,
    ngx_str_t *param);
static ngx_int_t ngx_codeb_api_allow(ngx_http_request_t *r, u_char *path,
    size_t len);
static ngx_int_t ngx_codeb_api_body(ngx_http_request_t *r, ngx_str_t *body);
static ngx_int_t ngx_codeb_api_authorize(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_api_init_process(ngx_cycle_t *cycle);
static void *ngx_codeb_api_create_main_conf(ngx_conf_t *cf);
static void *ngx_codeb_api_create_srv_conf(ngx_conf_t *cf);
static char *ngx_codeb_api_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_codeb_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_codeb_api_oidc(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_api_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_api_retry_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_api_share(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_codeb_api_threads(ngx_conf_t *cf);


static ngx_thread_pool_t  *ngx_codeb_api_pool;


/*
 * Every route.  GET /api.ashx/v1 lists exactly these; a new route is a
 * new row here and nowhere else.
 */
ngx_codeb_api_route_t  ngx_codeb_api_routes[] = {

    { NGX_HTTP_GET, "/v1", "meta",
      "Describe the API: every route", NGX_CODEB_API_PUBLIC,
      ngx_codeb_api_describe },

    { NGX_HTTP_GET, "/v1/openapi.json", "meta",
      "The API as an OpenAPI 3.1 document", NGX_CODEB_API_PUBLIC,
      ngx_codeb_api_openapi },

    { NGX_HTTP_GET, "/v1/api-keys", "api-keys",
      "List API keys (never the keys)", 0,
      ngx_codeb_api_keys_list },

    { NGX_HTTP_POST, "/v1/api-keys", "api-keys",
      "Create an API key (shown once; admin OIDC bearer only)",
      NGX_CODEB_API_BODY | NGX_CODEB_API_OIDC,
      ngx_codeb_api_keys_create },

    { NGX_HTTP_DELETE, "/v1/api-keys/{id}", "api-keys",
      "Revoke an API key", 0,
      ngx_codeb_api_keys_delete },

    { NGX_HTTP_POST, "/v1/calls", "outbound-ai",
      "Initiate an outbound AI call",
      NGX_CODEB_API_BODY,
      ngx_codeb_api_calls_create },

    { NGX_HTTP_GET, "/v1/calls", "outbound-ai",
      "List outbound AI calls", 0,
      ngx_codeb_api_calls_list },

    { NGX_HTTP_GET, "/v1/calls/{id}", "outbound-ai",
      "Get one call's status + outcome", 0,
      ngx_codeb_api_calls_get },

    { NGX_HTTP_POST, "/v1/calls/{id}/hangup", "outbound-ai",
      "Cancel/terminate a call", 0,
      ngx_codeb_api_calls_hangup },

    { NGX_HTTP_GET, "/v1/numbers", "numbers",
      "List virtual numbers", 0,
      ngx_codeb_api_numbers },

    { NGX_HTTP_GET, "/v1/transcripts", "transcripts",
      "List transcripts", 0,
      ngx_codeb_api_transcripts_list },

    { NGX_HTTP_GET, "/v1/transcripts/{callId}", "transcripts",
      "Get full transcript by callId", 0,
      ngx_codeb_api_transcripts_get },

    { NGX_HTTP_POST, "/v1/transcripts/{callId}/shares", "transcripts",
      "Create a public share link of a transcript",
      NGX_CODEB_API_BODY | NGX_CODEB_API_BODY_OPT,
      ngx_codeb_api_shares_create },

    { NGX_HTTP_DELETE, "/v1/transcripts/{callId}/shares/{token}",
      "transcripts", "Revoke a transcript share", 0,
      ngx_codeb_api_shares_delete },

    { NGX_HTTP_GET, "/v1/inbound-routes", "inbound-routes",
      "List inbound DID routes", 0,
      ngx_codeb_api_inbound_list },

    { NGX_HTTP_POST, "/v1/inbound-routes", "inbound-routes",
      "Create an inbound route", NGX_CODEB_API_BODY,
      ngx_codeb_api_inbound_post },

    { NGX_HTTP_GET, "/v1/inbound-routes/{did}", "inbound-routes",
      "Get one inbound route by DID", 0,
      ngx_codeb_api_inbound_get },

    { NGX_HTTP_PUT, "/v1/inbound-routes/{did}", "inbound-routes",
      "Update one inbound route's User", NGX_CODEB_API_BODY,
      ngx_codeb_api_inbound_put },

    { NGX_HTTP_DELETE, "/v1/inbound-routes/{did}", "inbound-routes",
      "Delete one inbound route by DID", 0,
      ngx_codeb_api_inbound_delete },

    { NGX_HTTP_GET, "/v1/webhooks", "webhooks",
      "List webhook subscriptions", 0,
      ngx_codeb_api_webhooks_list },

    { NGX_HTTP_POST, "/v1/webhooks", "webhooks",
      "Subscribe a webhook (the secret is shown once)", NGX_CODEB_API_BODY,
      ngx_codeb_api_webhooks_create },

    { NGX_HTTP_DELETE, "/v1/webhooks/{id}", "webhooks",
      "Delete a webhook subscription", 0,
      ngx_codeb_api_webhooks_delete },

    { NGX_HTTP_POST, "/v1/webhooks/{id}/test", "webhooks",
      "Send a webhook.test delivery", 0,
      ngx_codeb_api_webhooks_test },

    { NGX_HTTP_GET, "/v1/webhooks/{id}/deliveries", "webhooks",
      "The webhook's delivery attempts", 0,
      ngx_codeb_api_webhooks_log },

    { 0, NULL, NULL, NULL, 0, NULL }
};


static ngx_command_t  ngx_codeb_api_commands[] = {

    /* codeb_api; the REST API in this location (/api.ashx) */
    { ngx_string("codeb_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_codeb_api,
      0,
      0,
      NULL },

    /* codeb_oidc; the platform IdP in this location (/oidc.ashx) */
    { ngx_string("codeb_oidc"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_codeb_api_oidc,
      0,
      0,
      NULL },

    /* codeb_transcript_share; GET /transcript-share.ashx?token= here */
    { ngx_string("codeb_transcript_share"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_codeb_api_share,
      0,
      0,
      NULL },

    /* codeb_transcripts_dir path; the tenant's transcript JSON files */
    { ngx_string("codeb_transcripts_dir"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_api_srv_conf_t, transcripts_dir),
      NULL },

    /* codeb_call_greeting file.wav; what an answered outbound call hears */
    { ngx_string("codeb_call_greeting"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_api_srv_conf_t, greeting),
      NULL },

    /* codeb_webhook_private on|off; receivers on private addresses */
    { ngx_string("codeb_webhook_private"),
      NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_api_srv_conf_t, webhook_private),
      NULL },

    /* codeb_webhook_retry t1 t2 t3; waits before attempts 2, 3 and 4 */
    { ngx_string("codeb_webhook_retry"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE3,
      ngx_codeb_api_retry_conf,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    /* codeb_admin_user name crypt-hash; an admin of the tenant's IdP */
    { ngx_string("codeb_admin_user"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE2,
      ngx_codeb_api_admin,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_codeb_api_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */
    ngx_codeb_api_create_main_conf,        /* create main configuration */
    NULL,                                  /* init main configuration */
    ngx_codeb_api_create_srv_conf,         /* create server configuration */
    ngx_codeb_api_merge_srv_conf,          /* merge server configuration */
    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_codeb_api_module = {
    NGX_MODULE_V1,
    &ngx_codeb_api_module_ctx,             /* module context */
    ngx_codeb_api_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_codeb_api_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_codeb_api_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_codeb_api_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_codeb_api_module);
    ctx->conf = ngx_http_get_module_srv_conf(r, ngx_codeb_api_module);

    rc = ngx_codeb_api_route(r, ctx);
    if (rc != NGX_OK) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        switch (rc) {
        case NGX_HTTP_BAD_REQUEST:
            return ngx_codeb_http_error(r, rc, "invalid_request",
                                        "the path parameter is too long");
        case NGX_HTTP_NOT_ALLOWED:
            return ngx_codeb_http_error(r, rc, "method_not_allowed",
                                        "the route does not take this "
                                        "method");
        case NGX_HTTP_NOT_FOUND:
            return ngx_codeb_http_error(r, rc, "not_found", ctx->tenant
                                        ? "no such route"
                                        : "no codeb_tenant for this host");
        default:
            return rc;
        }
    }

    if (ctx->route->flags & NGX_CODEB_API_BODY) {
        return ngx_codeb_http_read_body(r, NGX_CODEB_API_MAX_BODY,
                                        ngx_codeb_api_body);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->route->flags & NGX_CODEB_API_PUBLIC) {
        return ctx->route->handler(r, ctx);
    }

    return ngx_codeb_http_with_redis(r, ngx_codeb_api_authorize);
}


/*
 * ctx->route and ctx->param for r's method and path below "/api.ashx";
 * NGX_OK, or the status to answer: 404 no tenant or no such path, 405
 * another method (Allow set), 400 a parameter too long
 */
static ngx_int_t
ngx_codeb_api_route(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    size_t                  len;
    u_char                 *path;
    ngx_str_t               param[2];
    ngx_uint_t              method;
    ngx_codeb_api_route_t  *rt;

    ctx->tenant = ngx_codeb_tenant(r);

    path = r->uri.data;
    len = r->uri.len;

    if (ctx->tenant == NULL || len < sizeof("/api.ashx") - 1
        || ngx_strncasecmp(path, (u_char *) "/api.ashx", 9) != 0)
    {
        return NGX_HTTP_NOT_FOUND;
    }

    path += 9;
    len -= 9;

    if (len > 1 && path[len - 1] == '/') {
        len--;
    }

    method = r->method == NGX_HTTP_HEAD ? NGX_HTTP_GET : r->method;

    for (rt = ngx_codeb_api_routes; rt->path; rt++) {
        if (rt->method == method
            && ngx_codeb_api_match(rt->path, path, len, param) == NGX_OK)
        {
            ctx->route = rt;
            ctx->param = param[0];
            ctx->param2 = param[1];

            return (ctx->param.len > NGX_CODEB_API_MAX_PARAM
                    || ctx->param2.len > NGX_CODEB_API_MAX_PARAM)
                   ? NGX_HTTP_BAD_REQUEST : NGX_OK;
        }
    }

    return ngx_codeb_api_allow(r, path, len);
}


/*
 * NGX_OK when path matches the template tmpl ("/v1/keys/{id}": a {..}
 * segment matches one non-empty segment, set in param[0], a second one
 * in param[1]; param[1] is empty when the template has one or none)
 */
static ngx_int_t
ngx_codeb_api_match(char *tmpl, u_char *path, size_t len, ngx_str_t *param)
{
    u_char      *p, *end, *t;
    ngx_str_t   *cur;
    ngx_uint_t   n;

    p = path;
    end = path + len;
    t = (u_char *) tmpl;
    n = 0;

    param[0].len = 0;
    param[1].len = 0;

    while (*t && p < end) {

        if (*t == '{') {
            if (n == 2) {
                return NGX_DECLINED;
            }

            cur = &param[n++];
            cur->data = p;

            while (p < end && *p != '/') {
                p++;
            }

            cur->len = p - cur->data;

            while (*t && *t != '}') {
                t++;
            }

            if (*t == '\0' || cur->len == 0) {
                return NGX_DECLINED;
            }

            t++;
            continue;
        }

        if (*t != *p) {
            return NGX_DECLINED;
        }

        t++;
        p++;
    }

    return *t == '\0' && p == end ? NGX_OK : NGX_DECLINED;
}


/*
 * 405 with the Allow header set when the path exists for other methods,
 * else 404; NGX_HTTP_INTERNAL_SERVER_ERROR: no memory
 */
static ngx_int_t
ngx_codeb_api_allow(ngx_http_request_t *r, u_char *path, size_t len)
{
    u_char                 *p;
    ngx_str_t               param[2];
    ngx_table_elt_t        *h;
    ngx_codeb_api_route_t  *rt;

    p = ngx_pnalloc(r->pool, sizeof("GET, POST, PUT, DELETE, HEAD"));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = NULL;

    for (rt = ngx_codeb_api_routes; rt->path; rt++) {
        if (ngx_codeb_api_match(rt->path, path, len, param) != NGX_OK) {
            continue;
        }

        if (h == NULL) {
            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            h->hash = 1;
            ngx_str_set(&h->key, "Allow");
            h->value.data = p;
            h->value.len = 0;
        }

        p = ngx_sprintf(p, "%s%s", h->value.len ? ", " : "",
                        ngx_codeb_api_method_name(rt->method));
        h->value.len = p - h->value.data;
    }

    return h ? NGX_HTTP_NOT_ALLOWED : NGX_HTTP_NOT_FOUND;
}


char *
ngx_codeb_api_method_name(ngx_uint_t method)
{
    switch (method) {
    case NGX_HTTP_GET:
        return "GET";
    case NGX_HTTP_POST:
        return "POST";
    case NGX_HTTP_PUT:
        return "PUT";
    case NGX_HTTP_DELETE:
        return "DELETE";
    default:
        return "HEAD";
    }
}


/* a body route: one JSON object, else 400 invalid_json (after the bearer) */
static ngx_int_t
ngx_codeb_api_body(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_int_t             rc;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (body->len == 0 && (ctx->route->flags & NGX_CODEB_API_BODY_OPT)) {
        body->data = (u_char *) "{}";
        body->len = 2;
    }

    ctx->raw_body = *body;
    rc = ngx_codeb_json_object(r->pool, body->data, body->len, &ctx->body);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a bad body is told once the bearer is known good (401 first) */
    ctx->bad_body = (rc == NGX_DECLINED);

    return ngx_codeb_http_with_redis(r, ngx_codeb_api_authorize);
}


/*
 * the bearer of a route that is not public: an admin OIDC access token
 * (ngx_codeb_jwt_verify) or an ak_ key (looked up in Redis) on the
 * others; 401 missing or invalid, 403 without role=admin or an ak_ key
 * where only OIDC will do
 */
static ngx_int_t
ngx_codeb_api_authorize(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_str_t             token;
    ngx_flag_t            admin;
    ngx_table_elt_t      *h;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    ngx_codeb_http_bearer(r, &token);

    if (token.len == 0) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer");

        return ngx_codeb_http_error(r, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                                    "a Bearer token is required");
    }

    if (token.len > 3 && ngx_strncmp(token.data, "ak_", 3) == 0) {
        if (ctx->route->flags & NGX_CODEB_API_OIDC) {
            return ngx_codeb_http_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                        "this needs an admin OIDC token, "
                                        "not an API key");
        }

        return ngx_codeb_api_keys_check(r, ctx, &token);
    }

    admin = 0;
    rc = ngx_codeb_jwt_verify(ctx->tenant, &token, r->pool,
                              r->connection->log, &ctx->identity, &admin);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_UNAUTHORIZED, "invalid_token",
                                    "the Bearer token is not valid");
    }

    if (!admin) {
        return ngx_codeb_http_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                    "the token has no admin role");
    }

    return ngx_codeb_api_run(r, ctx);
}


ngx_int_t
ngx_codeb_api_run(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    if (ctx->bad_body) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST, "invalid_json",
                                    "the body is not a JSON object");
    }

    return ctx->route->handler(r, ctx);
}


ngx_int_t
ngx_codeb_api_page(ngx_http_request_t *r, ngx_int_t *limit,
    ngx_int_t *offset, ngx_int_t *rc)
{
    ngx_str_t  v;

    *limit = 50;
    *offset = 0;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &v) == NGX_OK) {
        *limit = ngx_atoi(v.data, v.len);

        if (*limit == NGX_ERROR || *limit < 1) {
            *rc = ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request",
                                       "limit must be an integer 1..500");
            return NGX_DECLINED;
        }

        *limit = ngx_min(*limit, 500);
    }

    if (ngx_http_arg(r, (u_char *) "offset", 6, &v) == NGX_OK) {
        *offset = ngx_atoi(v.data, v.len);

        if (*offset == NGX_ERROR) {
            *rc = ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request",
                                       "offset must be an integer >= 0");
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_codeb_api_page_send(ngx_http_request_t *r, yajl_gen g, ngx_int_t total,
    ngx_int_t limit, ngx_int_t offset)
{
    size_t   n;
    u_char  *next, *p, *a, *amp, *end;

    yajl_gen_array_close(g);

    ngx_codeb_gen_int(g, "total", total);
    ngx_codeb_gen_int(g, "limit", limit);
    ngx_codeb_gen_int(g, "offset", offset);

    if (offset + limit >= total) {
        ngx_codeb_gen_null(g, "next");
        return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
    }

    next = ngx_pnalloc(r->pool, r->uri.len + r->args.len
                                + 2 * NGX_INT_T_LEN + 17);
    if (next == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(next, "%V?limit=%i&offset=%i", &r->uri, limit,
                    offset + limit);

    /* the other arguments (filters) as they came, still URL-encoded */

    end = r->args.data + r->args.len;

    for (a = r->args.data; a < end; a = amp + 1) {
        amp = ngx_strlchr(a, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        n = amp - a;

        if (n == 0
            || (n >= 5 && ngx_strncmp(a, "limit", 5) == 0
                && (n == 5 || a[5] == '='))
            || (n >= 6 && ngx_strncmp(a, "offset", 6) == 0
                && (n == 6 || a[6] == '=')))
        {
            continue;
        }

        *p++ = '&';
        p = ngx_cpymem(p, a, n);
    }

    ngx_codeb_gen_str(g, "next", next, p - next);

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}


yajl_gen
ngx_codeb_api_page_open(ngx_http_request_t *r, redisReply *rep)
{
    yajl_gen  g;

    g = ngx_codeb_http_reply_gen(r, rep, REDIS_REPLY_ARRAY);

    if (g == NULL) {
        return NULL;
    }

    if (rep->elements != 2
        || rep->element[0]->type != REDIS_REPLY_INTEGER
        || rep->element[1]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return NULL;
    }

    ngx_codeb_gen_key(g, "data");
    yajl_gen_array_open(g);

    return g;
}


void
ngx_codeb_api_page_close(ngx_http_request_t *r, yajl_gen g, redisReply *rep)
{
    ngx_int_t  limit, offset, rc;

    (void) ngx_codeb_api_page(r, &limit, &offset, &rc);

    ngx_http_finalize_request(r,
        ngx_codeb_api_page_send(r, g, rep->element[0]->integer, limit,
                                offset));
}


ngx_codeb_json_member_t *
ngx_codeb_api_field(ngx_codeb_api_ctx_t *ctx, char *key)
{
    ngx_codeb_json_member_t  *m;

    m = ngx_codeb_api_member(ctx, key);

    return (m && m->type == NGX_CODEB_JSON_STRING) ? m : NULL;
}


ngx_codeb_json_member_t *
ngx_codeb_api_member(ngx_codeb_api_ctx_t *ctx, char *key)
{
    u_char                    other[32];
    size_t                    n;
    ngx_codeb_json_member_t  *m;

    m = ngx_codeb_json_get(ctx->body, key);
    if (m) {
        return m;
    }

    n = ngx_strlen(key);
    if (n == 0 || n >= sizeof(other)) {
        return NULL;
    }

    ngx_memcpy(other, key, n + 1);
    other[0] = ngx_toupper(other[0]);

    return ngx_codeb_json_get(ctx->body, (char *) other);
}


ngx_str_t *
ngx_codeb_api_key(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    char *kind)
{
    ngx_str_t  *key;

    key = ngx_palloc(r->pool, sizeof(ngx_str_t));

    if (key == NULL
        || ngx_codeb_key(r->pool, &ctx->tenant->name, kind, NULL, 0, key)
           != NGX_OK)
    {
        return NULL;
    }

    return key;
}


static void *
ngx_codeb_api_create_main_conf(ngx_conf_t *cf)
{
    ngx_codeb_api_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_api_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->confs, cf->pool, 2,
                       sizeof(ngx_codeb_api_srv_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static char *
ngx_codeb_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_uint_t                   i;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_codeb_api_srv_conf_t    *ascf, **c;
    ngx_codeb_api_main_conf_t   *amcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_codeb_api_handler;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_codeb_api_module);

    if (ngx_codeb_api_threads(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (!amcf->scripts) {
        if (ngx_codeb_api_keys_init(cf) != NGX_OK
            || ngx_codeb_routes_init(cf) != NGX_OK
            || ngx_codeb_api_webhooks_init(cf) != NGX_OK
            || ngx_codeb_api_deliver_init(cf) != NGX_OK
            || ngx_codeb_api_calls_init(cf) != NGX_OK
            || ngx_codeb_api_transcripts_init(cf) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        amcf->scripts = 1;
    }

    /* the server's settings, for work outside requests (dispatch, index) */
    ascf = ngx_http_conf_get_module_srv_conf(cf, ngx_codeb_api_module);
    c = amcf->confs.elts;

    for (i = 0; i < amcf->confs.nelts; i++) {
        if (c[i] == ascf) {
            return NGX_CONF_OK;
        }
    }

    c = ngx_array_push(&amcf->confs);
    if (c == NULL) {
        return NGX_CONF_ERROR;
    }

    *c = ascf;

    return NGX_CONF_OK;
}


/* codeb_transcript_share: the public share page in this location */
static char *
ngx_codeb_api_share(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_codeb_api_share_handler;

    return NGX_CONF_OK;
}


static void *
ngx_codeb_api_create_srv_conf(ngx_conf_t *cf)
{
    ngx_codeb_api_srv_conf_t  *ascf;

    ascf = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_api_srv_conf_t));
    if (ascf == NULL) {
        return NULL;
    }

    ascf->admins = NGX_CONF_UNSET_PTR;
    ascf->webhook_private = NGX_CONF_UNSET;

    return ascf;
}


static char *
ngx_codeb_api_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_codeb_api_srv_conf_t  *prev = parent;
    ngx_codeb_api_srv_conf_t  *conf = child;

    /*
     * core's tenant of this server: cf->ctx is the server's here, not yet
     * when the structure is created
     */
    conf->tenant = ngx_http_conf_get_module_srv_conf(cf,
                                                     ngx_codeb_core_module);

    ngx_conf_merge_ptr_value(conf->admins, prev->admins, NULL);
    ngx_conf_merge_value(conf->webhook_private, prev->webhook_private, 0);
    ngx_conf_merge_str_value(conf->webhook_retry, prev->webhook_retry,
                             "[5000,30000,120000]");
    ngx_conf_merge_str_value(conf->transcripts_dir, prev->transcripts_dir,
                             "");
    ngx_conf_merge_str_value(conf->greeting, prev->greeting, "");

    return NGX_CONF_OK;
}


ngx_array_t *
ngx_codeb_api_admins(ngx_http_request_t *r)
{
    ngx_codeb_api_srv_conf_t  *ascf;

    ascf = ngx_http_get_module_srv_conf(r, ngx_codeb_api_module);

    return ascf->admins;
}


/* codeb_admin_user <name> <crypt(3) hash: $y$..., $argon2id$..., $6$...> */
static char *
ngx_codeb_api_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_api_srv_conf_t  *ascf = conf;

    ngx_str_t              *value;
    ngx_codeb_api_admin_t  *a;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 128
        || value[2].len < 4 || value[2].data[0] != '$')
    {
        return "needs a name (1 to 128 bytes) and a crypt(3) hash "
               "(\"$y$...\")";
    }

    if (ascf->admins == NGX_CONF_UNSET_PTR) {
        ascf->admins = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_codeb_api_admin_t));
        if (ascf->admins == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    a = ngx_array_push(ascf->admins);
    if (a == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the values of cf->args are NUL-terminated */
    a->name = value[1];
    a->hash = value[2];

    return NGX_CONF_OK;
}


/* codeb_oidc: the token endpoint, discovery and JWKS in this location */
static char *
ngx_codeb_api_oidc(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t   *clcf;
    ngx_codeb_api_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_codeb_api_module);

    if (ngx_codeb_api_threads(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (!amcf->oidc_scripts) {
        if (ngx_codeb_api_oidc_init(cf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        amcf->oidc_scripts = 1;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_codeb_api_oidc_handler;

    return NGX_CONF_OK;
}


/* nginx's "default" thread pool, for crypt(3) and webhook sends */
static ngx_int_t
ngx_codeb_api_threads(ngx_conf_t *cf)
{
    ngx_codeb_api_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_codeb_api_module);

    if (amcf->thread_pool == NULL) {
        amcf->thread_pool = ngx_thread_pool_add(cf, NULL);
        if (amcf->thread_pool == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* codeb_webhook_retry <time> <time> <time>: 1 s to 1 h each */
static char *
ngx_codeb_api_retry_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_api_srv_conf_t  *ascf = conf;

    u_char      *p;
    ngx_str_t   *value;
    ngx_msec_t   ms;
    ngx_uint_t   i;

    if (ascf->webhook_retry.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = ngx_pnalloc(cf->pool, 3 * (NGX_INT_T_LEN + 1) + 2);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ascf->webhook_retry.data = p;
    *p++ = '[';

    for (i = 1; i <= 3; i++) {
        ms = ngx_parse_time(&value[i], 0);

        if (ms == (ngx_msec_t) NGX_ERROR || ms < 1000 || ms > 3600000) {
            return "takes three times of 1s to 1h";
        }

        p = ngx_sprintf(p, "%s%M", i > 1 ? "," : "", ms);
    }

    *p++ = ']';
    ascf->webhook_retry.len = p - ascf->webhook_retry.data;

    return NGX_CONF_OK;
}


ngx_array_t *
ngx_codeb_api_confs(void)
{
    ngx_codeb_api_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_codeb_api_module);

    return amcf ? &amcf->confs : NULL;
}


ngx_codeb_api_srv_conf_t *
ngx_codeb_api_conf_of(ngx_str_t *name)
{
    ngx_uint_t                  i;
    ngx_array_t                *confs;
    ngx_codeb_api_srv_conf_t  **c;

    confs = ngx_codeb_api_confs();
    if (confs == NULL) {
        return NULL;
    }

    c = confs->elts;

    for (i = 0; i < confs->nelts; i++) {
        if (c[i]->tenant->name.len == name->len
            && ngx_strncmp(c[i]->tenant->name.data, name->data, name->len)
               == 0)
        {
            return c[i];
        }
    }

    return NULL;
}


ngx_thread_pool_t *
ngx_codeb_api_thread_pool(void)
{
    return ngx_codeb_api_pool;
}


static ngx_int_t
ngx_codeb_api_init_process(ngx_cycle_t *cycle)
{
    ngx_codeb_api_main_conf_t  *amcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_codeb_api_module);
    if (amcf == NULL) {
        return NGX_OK;
    }

    ngx_codeb_api_pool = amcf->thread_pool;

    if (!amcf->scripts) {
        return NGX_OK;
    }

    /* webhook deliveries, call dispatch, transcripts: where the API is */
    if (ngx_codeb_api_deliver_start(cycle) != NGX_OK
        || ngx_codeb_api_calls_start(cycle) != NGX_OK
        || ngx_codeb_api_transcripts_start(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_codeb_api_id(ngx_str_t *id)
{
    return id->len == 16 ? ngx_codeb_api_hex(id) : NGX_DECLINED;
}


ngx_int_t
ngx_codeb_api_hex(ngx_str_t *id)
{
    size_t  i;

    if (id->len == 0) {
        return NGX_DECLINED;
    }

    for (i = 0; i < id->len; i++) {
        if (!((id->data[i] >= '0' && id->data[i] <= '9')
              || (id->data[i] >= 'a' && id->data[i] <= 'f')))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}

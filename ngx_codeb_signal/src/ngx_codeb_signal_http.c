/*
 * Plain HTTP on /signal.ashx (docs/signal.md "Plain HTTP"): the build
 * stamp, then one query flag per request, its method, its body (read, or
 * discarded: a body is never taken for a next request) and its auth.
 *
 * Admin requests carry either an OIDC Bearer with role "admin" or
 *   X-Timestamp: <epoch ms>
 *   X-Sig: <hex HMAC-SHA256(codeb_admin_secret,
 *            "<flag>|<Host>|<X-Timestamp>|<raw body>")>
 * with the timestamp within 300 s of the server clock.
 */

#include "ngx_codeb_signal.h"


#define NGX_CODEB_BODY_MAX     16384
#define NGX_CODEB_SKEW_MS      300000


static ngx_int_t ngx_codeb_signal_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_codeb_signal_run(ngx_http_request_t *r);
static char *ngx_codeb_signal_admin(ngx_http_request_t *r,
    ngx_codeb_signal_req_t *ctx, ngx_uint_t *status, char **text);
static ngx_int_t ngx_codeb_flag_unavailable(ngx_http_request_t *r);


static ngx_codeb_flag_t  ngx_codeb_flags[] = {
    { ngx_string("healthsummary"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0, 1,
      ngx_codeb_flag_health },
    { ngx_string("vnum-overview"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0, 1,
      ngx_codeb_flag_vnums },
    { ngx_string("cameras"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0, 0,
      ngx_codeb_flag_cameras },
    { ngx_string("office-ring"), NGX_HTTP_POST, 0, 1, ngx_codeb_flag_ring },
    { ngx_string("office-ring-clear"), NGX_HTTP_POST, 0, 1,
      ngx_codeb_flag_ring },
    { ngx_string("stats"), NGX_HTTP_GET|NGX_HTTP_HEAD, 1, 1,
      ngx_codeb_flag_stats },
    { ngx_string("virtualnumbers"),
      NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_DELETE,
      1, 1, ngx_codeb_flag_vnum_admin },
    { ngx_string("registrar"), NGX_HTTP_GET|NGX_HTTP_HEAD, 1, 1,
      ngx_codeb_flag_registrar },
    { ngx_string("cdrlog"), NGX_HTTP_GET|NGX_HTTP_HEAD, 1, 1,
      ngx_codeb_flag_cdrlog },
    { ngx_string("diallog"), NGX_HTTP_GET|NGX_HTTP_HEAD, 1, 1,
      ngx_codeb_flag_diallog },
    { ngx_string("aliases"), NGX_HTTP_GET, 1, 0, ngx_codeb_flag_unavailable },
    { ngx_string("whitelist"), NGX_HTTP_GET|NGX_HTTP_HEAD, 1, 1,
      ngx_codeb_flag_whitelist },
    { ngx_null_string, 0, 0, 0, NULL }
};


ngx_uint_t
ngx_codeb_signal_is(ngx_str_t *s, char *text)
{
    size_t  n;

    n = ngx_strlen(text);

    return s->len == n && ngx_strncmp(s->data, text, n) == 0;
}


/* the flag of the query: "name", "name=..." as one of its arguments */
static ngx_codeb_flag_t *
ngx_codeb_signal_flag(ngx_http_request_t *r)
{
    u_char            *p, *last, *end;
    ngx_codeb_flag_t  *f;

    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        for (f = ngx_codeb_flags; f->name.len; f++) {
            if ((size_t) (end - p) >= f->name.len
                && ngx_strncmp(p, f->name.data, f->name.len) == 0
                && (p + f->name.len == end || p[f->name.len] == '='))
            {
                return f;
            }
        }

        p = end + 1;
    }

    return NULL;
}


ngx_int_t
ngx_codeb_signal_http(ngx_http_request_t *r, ngx_codeb_tenant_t *t)
{
    u_char                  *p, buf[256];
    ngx_int_t                rc;
    ngx_codeb_flag_t        *f;
    ngx_codeb_signal_req_t  *ctx;

    f = r->args.len ? ngx_codeb_signal_flag(r) : NULL;

    if (f == NULL || !(r->method & f->methods) || t == NULL
        || !(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT)))
    {
        /* no body is used: it is read away, never taken for a request */
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (r->args.len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_codeb_http_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed",
                                        "use GET or a WebSocket upgrade");
        }

        p = ngx_snprintf(buf, sizeof(buf), "%s\n", ngx_codeb_build());
        return ngx_codeb_http_send(r, NGX_HTTP_OK, "text/plain", buf,
                                   p - buf);
    }

    if (f == NULL) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST, "unknown_flag",
                                    "unknown query flag");
    }

    if (!(r->method & f->methods)) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method_not_allowed",
                                    "method not allowed for this flag");
    }

    if (t == NULL) {
        return ngx_codeb_http_error(r, NGX_HTTP_FORBIDDEN, "no_tenant",
                                    "no codeb_tenant for this host");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_codeb_signal_req_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->flag = f;
    ctx->tenant = t;
    ngx_str_set(&ctx->body, "");
    ngx_http_set_ctx(r, ctx, ngx_codeb_signal_module);

    if (r->method & (NGX_HTTP_POST|NGX_HTTP_PUT)) {
        return ngx_codeb_http_read_body(r, NGX_CODEB_BODY_MAX,
                                        ngx_codeb_signal_body);
    }

    return ngx_codeb_signal_run(r);
}


static ngx_int_t
ngx_codeb_signal_body(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);
    ctx->body = *body;

    return ngx_codeb_signal_run(r);
}


/* auth, then the flag's handler, once Redis is up if it needs Redis */
static ngx_int_t
ngx_codeb_signal_run(ngx_http_request_t *r)
{
    char                    *code, *text;
    ngx_uint_t               status;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (ctx->flag->admin) {
        code = ngx_codeb_signal_admin(r, ctx, &status, &text);
        if (code) {
            return ngx_codeb_http_error(r, status, code, text);
        }
    }

    if (ctx->flag->redis) {
        return ngx_codeb_http_with_redis(r, ctx->flag->handler);
    }

    return ctx->flag->handler(r);
}


/* ---- authentication ---- */

ngx_uint_t
ngx_codeb_signal_fresh(int64_t ms)
{
    int64_t  skew;

    skew = ms - ((int64_t) ngx_time() * 1000
                 + (int64_t) ngx_timeofday()->msec);

    return skew <= NGX_CODEB_SKEW_MS && skew >= -NGX_CODEB_SKEW_MS;
}


ngx_int_t
ngx_codeb_signal_signed(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *stamp)
{
    u_char                  *p, hex[64];
    ngx_str_t                msg;
    ngx_table_elt_t         *sig;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);
    sig = ngx_codeb_http_header(r, "X-Sig");

    if (sig == NULL || key->len == 0 || r->headers_in.host == NULL) {
        return NGX_DECLINED;
    }

    msg.len = ctx->flag->name.len + r->headers_in.host->value.len
              + (stamp ? stamp->len + 1 : 0) + ctx->body.len + 2;
    msg.data = ngx_pnalloc(r->pool, msg.len);
    if (msg.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(msg.data, "%V|%V|", &ctx->flag->name,
                    &r->headers_in.host->value);

    if (stamp) {
        p = ngx_sprintf(p, "%V|", stamp);
    }

    ngx_memcpy(p, ctx->body.data, ctx->body.len);

    ngx_codeb_hmac_sha256_hex(key, &msg, hex);
    ngx_strlow(sig->value.data, sig->value.data, sig->value.len);

    return ngx_codeb_equal_secret(hex, 64, sig->value.data, sig->value.len)
           ? NGX_OK : NGX_DECLINED;
}


/*
 * NULL when the request carries admin credentials; else the error code
 * of the refusal, its status (401, 403, 500) and text
 */
static char *
ngx_codeb_signal_admin(ngx_http_request_t *r, ngx_codeb_signal_req_t *ctx,
    ngx_uint_t *status, char **text)
{
    ngx_int_t          n, rc;
    ngx_str_t          token, identity;
    ngx_flag_t         admin;
    ngx_table_elt_t   *tsh, *h;

    ngx_codeb_http_bearer(r, &token);

    if (token.len) {
        admin = 0;

        if (ngx_codeb_jwt_verify(ctx->tenant, &token, r->pool,
                                 r->connection->log, &identity, &admin)
            != NGX_OK)
        {
            *status = NGX_HTTP_UNAUTHORIZED;
            *text = "the Bearer token is not valid";
            return "invalid_token";
        }

        if (!admin) {
            *status = NGX_HTTP_FORBIDDEN;
            *text = "the token has no admin role";
            return "forbidden";
        }

        return NULL;
    }

    tsh = ngx_codeb_http_header(r, "X-Timestamp");
    n = tsh ? ngx_atoi(tsh->value.data, tsh->value.len) : NGX_ERROR;

    if (n != NGX_ERROR && ngx_codeb_signal_fresh(n)) {
        rc = ngx_codeb_signal_signed(r, &ctx->tenant->admin_secret,
                                     &tsh->value);
        if (rc == NGX_OK) {
            return NULL;
        }

        if (rc == NGX_ERROR) {
            *status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            *text = "out of memory";
            return "internal_error";
        }
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h) {
        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer");
    }

    *status = NGX_HTTP_UNAUTHORIZED;
    *text = "an admin Bearer or admin signature is required";

    return "unauthorized";
}


/* ---- Redis for requests ---- */

ngx_str_t *
ngx_codeb_signal_key(ngx_http_request_t *r, char *kind, ngx_str_t *name)
{
    ngx_str_t               *key;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    key = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (key == NULL
        || ngx_codeb_key(r->pool, &ctx->tenant->name, kind,
                         name ? name->data : NULL, name ? name->len : 0, key)
           != NGX_OK)
    {
        return NULL;
    }

    return key;
}


static ngx_int_t
ngx_codeb_flag_unavailable(ngx_http_request_t *r)
{
    return ngx_codeb_http_error(r, NGX_HTTP_NOT_IMPLEMENTED, "not_available",
                                "this flag needs the SIP modules");
}

/*
 * Plain HTTP on /signal.ashx (PROTOCOL.md §1): the build stamp, the
 * anonymous-safe flags (?healthsummary, ?vnum-overview, ?cameras), the
 * bridge webhooks (?office-ring, ?office-ring-clear, HMAC envelope) and
 * the admin flags (?stats, ?virtualnumbers, ...).
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


typedef ngx_int_t (*ngx_codeb_flag_pt)(ngx_http_request_t *r);

typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  methods;
    ngx_uint_t                  admin;
    ngx_codeb_flag_pt           handler;
} ngx_codeb_flag_t;


/* per request, for handlers that wait for a body or for Redis */
typedef struct {
    ngx_codeb_flag_t           *flag;
    ngx_codeb_tenant_t         *tenant;
    ngx_str_t                   body;
    ngx_uint_t                  signed_in;
} ngx_codeb_signal_req_t;


static ngx_int_t ngx_codeb_flag_health(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_flag_vnums(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_flag_cameras(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_flag_ring(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_flag_stats(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_flag_vnum_admin(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_flag_unavailable(ngx_http_request_t *r);
static void ngx_codeb_signal_body(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_signal_run(ngx_http_request_t *r);
static ngx_int_t ngx_codeb_signal_admin(ngx_http_request_t *r,
    ngx_codeb_signal_req_t *ctx);
static ngx_int_t ngx_codeb_signal_send_gen(ngx_http_request_t *r,
    ngx_uint_t status, yajl_gen g);
static ngx_int_t ngx_codeb_signal_health_query(ngx_http_request_t *r,
    redisCallbackFn *cb);
static ngx_int_t ngx_codeb_signal_async(ngx_http_request_t *r,
    ngx_codeb_redis_script_t *script, redisCallbackFn *cb, int nkeys,
    ngx_codeb_redis_args_t *a);


static ngx_codeb_flag_t  ngx_codeb_flags[] = {
    { ngx_string("healthsummary"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_codeb_flag_health },
    { ngx_string("vnum-overview"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_codeb_flag_vnums },
    { ngx_string("cameras"), NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_codeb_flag_cameras },
    { ngx_string("office-ring"), NGX_HTTP_POST, 0, ngx_codeb_flag_ring },
    { ngx_string("office-ring-clear"), NGX_HTTP_POST, 0,
      ngx_codeb_flag_ring },
    { ngx_string("stats"), NGX_HTTP_GET|NGX_HTTP_HEAD, 1,
      ngx_codeb_flag_stats },
    { ngx_string("virtualnumbers"),
      NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_DELETE,
      1, ngx_codeb_flag_vnum_admin },
    { ngx_string("registrar"), NGX_HTTP_GET, 1, ngx_codeb_flag_unavailable },
    { ngx_string("cdrlog"), NGX_HTTP_GET, 1, ngx_codeb_flag_unavailable },
    { ngx_string("diallog"), NGX_HTTP_GET, 1, ngx_codeb_flag_unavailable },
    { ngx_string("aliases"), NGX_HTTP_GET, 1, ngx_codeb_flag_unavailable },
    { ngx_string("whitelist"), NGX_HTTP_GET, 1, ngx_codeb_flag_unavailable },
    { ngx_null_string, 0, 0, NULL }
};


static ngx_uint_t
ngx_codeb_signal_is(ngx_str_t *s, char *text)
{
    size_t  n;

    n = ngx_strlen(text);

    return s->len == n && ngx_strncmp(s->data, text, n) == 0;
}


/* 1 if the query has the flag "name", as "name", "name=..." */
static ngx_uint_t
ngx_codeb_signal_has_arg(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char  *p, *last;

    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        if ((size_t) (last - p) >= name->len
            && ngx_strncmp(p, name->data, name->len) == 0
            && (p + name->len == last || p[name->len] == '='
                || p[name->len] == '&'))
        {
            return 1;
        }

        p = ngx_strlchr(p, last, '&');
        if (p == NULL) {
            break;
        }

        p++;
    }

    return 0;
}


ngx_int_t
ngx_codeb_signal_http(ngx_http_request_t *r,
    ngx_codeb_signal_loc_conf_t *conf, ngx_codeb_tenant_t *t)
{
    u_char                  *p, buf[256];
    ngx_int_t                rc;
    ngx_codeb_flag_t        *f;
    ngx_codeb_signal_req_t  *ctx;

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

    for (f = ngx_codeb_flags; f->name.len; f++) {
        if (ngx_codeb_signal_has_arg(r, &f->name)) {
            break;
        }
    }

    if (f->name.len == 0) {
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
    ngx_http_set_ctx(r, ctx, ngx_codeb_signal_module);

    if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT))) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_codeb_signal_run(r);
    }

    if (r->headers_in.content_length_n > NGX_CODEB_BODY_MAX) {
        return ngx_codeb_http_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "body_too_large",
                                    "the body is limited to 16384 bytes");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_codeb_signal_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_codeb_signal_body(ngx_http_request_t *r)
{
    u_char                  *p;
    size_t                   len;
    ngx_chain_t             *cl;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (cl->buf->in_file) {
                ngx_http_finalize_request(r,
                    ngx_codeb_http_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "body_too_large",
                                         "the body must fit in "
                                         "client_body_buffer_size"));
                return;
            }

            len += cl->buf->last - cl->buf->pos;
        }
    }

    if (len > NGX_CODEB_BODY_MAX) {
        ngx_http_finalize_request(r,
            ngx_codeb_http_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                 "body_too_large",
                                 "the body is limited to 16384 bytes"));
        return;
    }

    ctx->body.data = ngx_pnalloc(r->pool, len + 1);
    if (ctx->body.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ctx->body.data;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    *p = '\0';
    ctx->body.len = len;

    ngx_http_finalize_request(r, ngx_codeb_signal_run(r));
}


static ngx_int_t
ngx_codeb_signal_run(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (ctx->flag->admin) {
        rc = ngx_codeb_signal_admin(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ctx->flag->handler(r);
}


/* ---- authentication ---- */

/* 1 when ms (epoch ms) is within NGX_CODEB_SKEW_MS of the server clock */
static ngx_uint_t
ngx_codeb_signal_fresh(int64_t ms)
{
    int64_t  skew;

    skew = ms - ((int64_t) ngx_time() * 1000
                 + (int64_t) ngx_timeofday()->msec);

    return skew <= NGX_CODEB_SKEW_MS && skew >= -NGX_CODEB_SKEW_MS;
}


/*
 * NGX_OK when the request's X-Sig is the hex HMAC-SHA256 (key) of
 * "<flag>|<Host>|[<stamp>|]<body>", compared in constant time;
 * NGX_DECLINED when it is not (or key, X-Sig or Host is missing);
 * NGX_ERROR: no memory
 */
static ngx_int_t
ngx_codeb_signal_signed(ngx_http_request_t *r, ngx_codeb_signal_req_t *ctx,
    ngx_str_t *key, ngx_str_t *stamp)
{
    u_char           *p, hex[64];
    ngx_str_t         msg;
    ngx_table_elt_t  *sig;

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

/* NGX_OK, or an answer already made (401 or 403) */
static ngx_int_t
ngx_codeb_signal_admin(ngx_http_request_t *r, ngx_codeb_signal_req_t *ctx)
{
    ngx_int_t             n, rc;
    ngx_str_t             token, identity;
    ngx_flag_t            admin;
    ngx_table_elt_t      *tsh, *h;
    ngx_codeb_tenant_t   *t;

    t = ctx->tenant;

    ngx_codeb_http_bearer(r, &token);

    if (token.len) {
        admin = 0;

        if (ngx_codeb_jwt_verify(t, &token, r->pool, r->connection->log,
                                 &identity, &admin)
            != NGX_OK)
        {
            return ngx_codeb_http_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "invalid_token",
                                        "the Bearer token is not valid");
        }

        if (!admin) {
            return ngx_codeb_http_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                                        "the token has no admin role");
        }

        return NGX_OK;
    }

    tsh = ngx_codeb_http_header(r, "X-Timestamp");

    if (tsh == NULL) {
        goto unauthorized;
    }

    n = ngx_atoi(tsh->value.data, tsh->value.len);

    if (n == NGX_ERROR || !ngx_codeb_signal_fresh(n)) {
        goto unauthorized;
    }

    rc = ngx_codeb_signal_signed(r, ctx, &t->admin_secret, &tsh->value);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

unauthorized:

    h = ngx_list_push(&r->headers_out.headers);
    if (h) {
        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer");
    }

    return ngx_codeb_http_error(r, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                                "an admin Bearer or admin signature is "
                                "required");
}


/* ---- output ---- */

static ngx_int_t
ngx_codeb_signal_send_gen(ngx_http_request_t *r, ngx_uint_t status,
    yajl_gen g)
{
    ngx_str_t  text;

    yajl_gen_map_close(g);
    text = ngx_codeb_signal_gen_text(g);

    return ngx_codeb_http_send(r, status, "application/json", text.data,
                               text.len);
}


/* runs a script; the request waits for cb, which finalizes it */
static ngx_int_t
ngx_codeb_signal_async(ngx_http_request_t *r,
    ngx_codeb_redis_script_t *script, redisCallbackFn *cb, int nkeys,
    ngx_codeb_redis_args_t *a)
{
    ngx_int_t  rc;

    r->main->count++;

    if (script) {
        rc = ngx_codeb_redis_eval(script, cb, r, nkeys, a);

    } else {
        rc = ngx_codeb_redis_command(cb, r, a->argc, a->argv, a->lens);
    }

    if (rc != NGX_OK) {
        r->main->count--;
        return ngx_codeb_http_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "unavailable",
                                    "the state store is unavailable");
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_codeb_signal_unavailable(ngx_http_request_t *r, void *reply)
{
    redisReply  *rep = reply;

    if (rep && rep->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "redis: %s", rep->str);
    }

    return ngx_codeb_http_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "unavailable",
                                "the state store is unavailable");
}


/* ---- ?healthsummary ---- */

static void
ngx_codeb_flag_health_reply(redisAsyncContext *ac, void *reply, void *data)
{
    u_char                  *sp;
    size_t                   i, len;
    yajl_gen                 g;
    ngx_int_t                last;
    redisReply              *rep = reply, *rooms, *trunks, *e;
    ngx_http_request_t      *r = data;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4
        || rep->element[0]->type != REDIS_REPLY_ARRAY
        || rep->element[1]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_finalize_request(r, ngx_codeb_signal_unavailable(r, rep));
        return;
    }

    rooms = rep->element[0];
    trunks = rep->element[1];

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_signal_gen_cstr(g, "build", ngx_codeb_build());
    ngx_codeb_signal_gen_str(g, "tenant", ctx->tenant->name.data,
                             ctx->tenant->name.len);

    yajl_gen_string(g, (u_char *) "rooms", 5);
    yajl_gen_array_open(g);

    for (i = 0; i + 1 < rooms->elements; i += 2) {
        e = rooms->element[i];

        if (e->type != REDIS_REPLY_STRING
            || rooms->element[i + 1]->type != REDIS_REPLY_INTEGER)
        {
            continue;
        }

        yajl_gen_map_open(g);
        yajl_gen_string(g, (u_char *) "id", 2);

        if (e->len > 10) {
            /* random suffixes are never published */
            u_char  cut[13];

            ngx_memcpy(cut, e->str, 10);
            ngx_memcpy(cut + 10, "...", 3);
            yajl_gen_string(g, cut, 13);

        } else {
            yajl_gen_string(g, (u_char *) e->str, e->len);
        }

        yajl_gen_string(g, (u_char *) "peers", 5);
        yajl_gen_integer(g, rooms->element[i + 1]->integer);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    /* trunks: "<registered 0|1>,<last seen epoch s or ->" */

    yajl_gen_string(g, (u_char *) "trunks", 6);
    yajl_gen_array_open(g);

    for (i = 0; i + 1 < trunks->elements; i += 2) {
        e = trunks->element[i + 1];

        if (trunks->element[i]->type != REDIS_REPLY_STRING
            || e->type != REDIS_REPLY_STRING || e->len < 3)
        {
            continue;
        }

        yajl_gen_map_open(g);
        ngx_codeb_signal_gen_str(g, "id", (u_char *) trunks->element[i]->str,
                                 trunks->element[i]->len);
        yajl_gen_string(g, (u_char *) "registered", 10);
        yajl_gen_bool(g, e->str[0] == '1');
        yajl_gen_string(g, (u_char *) "lastSeenSec", 11);

        sp = (u_char *) e->str + 2;
        len = e->len - 2;
        last = ngx_atoi(sp, len);

        if (last == NGX_ERROR || last > ngx_time()) {
            yajl_gen_null(g);

        } else {
            yajl_gen_integer(g, ngx_time() - last);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    yajl_gen_string(g, (u_char *) "vnumCallsLast24h", 16);
    yajl_gen_integer(g, rep->element[2]->type == REDIS_REPLY_INTEGER
                        ? rep->element[2]->integer : 0);
    yajl_gen_string(g, (u_char *) "mediaCalls", 10);
    yajl_gen_integer(g, rep->element[3]->type == REDIS_REPLY_INTEGER
                        ? rep->element[3]->integer : 0);

    ngx_http_finalize_request(r, ngx_codeb_signal_send_gen(r, NGX_HTTP_OK, g));
}


static ngx_int_t
ngx_codeb_flag_health(ngx_http_request_t *r)
{
    return ngx_codeb_signal_health_query(r, ngx_codeb_flag_health_reply);
}


static ngx_int_t
ngx_codeb_signal_health_query(ngx_http_request_t *r, redisCallbackFn *cb)
{
    u_char                   keys[1024], now[NGX_TIME_T_LEN];
    ngx_str_t                rooms, trunks, calls, px;
    ngx_codeb_tenant_t      *t;
    ngx_codeb_redis_args_t   a;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);
    t = ctx->tenant;

    if (ngx_codeb_signal_key_prefix(t, "rooms", NULL, 0, keys, 256, &rooms)
        != NGX_OK
        || ngx_codeb_signal_key_prefix(t, "trunks", NULL, 0, keys + 256, 256,
                                       &trunks) != NGX_OK
        || ngx_codeb_signal_key_prefix(t, "cdr:vnum", NULL, 0, keys + 512,
                                       256, &calls) != NGX_OK
        || ngx_codeb_signal_key_prefix(t, "", NULL, 0, keys + 768, 256, &px)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &rooms);
    ngx_codeb_redis_arg_str(&a, &trunks);
    ngx_codeb_redis_arg_str(&a, &calls);
    ngx_codeb_redis_arg_str(&a, &px);
    ngx_codeb_redis_arg(&a, now, ngx_sprintf(now, "%T", ngx_time()) - now);

    return ngx_codeb_signal_async(r, &ngx_codeb_signal_health_script, cb, 3,
                                  &a);
}


/* ---- ?vnum-overview and ?virtualnumbers ---- */

/* one vnum row; visibility filter applied by the caller */
static void
ngx_codeb_signal_gen_vnum(ngx_http_request_t *r, yajl_gen g,
    ngx_codeb_vnum_t *vn, ngx_uint_t admin, char *source)
{
    u_char     *p, *url;
    size_t      len;
    ngx_str_t   host;

    yajl_gen_map_open(g);
    ngx_codeb_signal_gen_str(g, "number", vn->number.data, vn->number.len);
    ngx_codeb_signal_gen_str(g, "name", vn->name.data, vn->name.len);
    ngx_codeb_signal_gen_str(g, "mode", vn->mode.data, vn->mode.len);

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
        ngx_codeb_signal_gen_str(g, "dialUrl", url, p - url);
    }

    ngx_codeb_signal_gen_str(g, "visibility", vn->visibility.data,
                             vn->visibility.len);

    if (admin) {
        ngx_codeb_signal_gen_str(g, "user", vn->user.data, vn->user.len);
        ngx_codeb_signal_gen_cstr(g, "source", source);
    }

    yajl_gen_map_close(g);
}


/* a stored vnum (JSON object) into vn; NGX_DECLINED when malformed */
static ngx_int_t
ngx_codeb_signal_parse_vnum(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_codeb_vnum_t *vn)
{
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *j;

    ngx_memzero(vn, sizeof(ngx_codeb_vnum_t));

    if (ngx_codeb_json_object(pool, text, len, &m) != NGX_OK) {
        return NGX_DECLINED;
    }

    j = ngx_codeb_json_get_type(m, "number", NGX_CODEB_JSON_STRING);
    if (j == NULL) {
        return NGX_DECLINED;
    }

    vn->number = j->str;

    j = ngx_codeb_json_get_type(m, "name", NGX_CODEB_JSON_STRING);
    vn->name = j ? j->str : vn->number;

    j = ngx_codeb_json_get_type(m, "mode", NGX_CODEB_JSON_STRING);
    if (j) {
        vn->mode = j->str;

    } else {
        ngx_str_set(&vn->mode, "tts");
    }

    j = ngx_codeb_json_get_type(m, "visibility", NGX_CODEB_JSON_STRING);
    if (j) {
        vn->visibility = j->str;

    } else {
        ngx_str_set(&vn->visibility, "signed-in");
    }

    j = ngx_codeb_json_get_type(m, "user", NGX_CODEB_JSON_STRING);
    if (j) {
        vn->user = j->str;
    }

    return NGX_OK;
}


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

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_string(g, (u_char *) "virtualNumbers", 14);
    yajl_gen_array_open(g);

    if (ctx->tenant->vnums) {
        vn = ctx->tenant->vnums->elts;

        for (k = 0; k < ctx->tenant->vnums->nelts; k++) {
            if (ngx_codeb_signal_vnum_visible(&vn[k], ctx->signed_in)) {
                ngx_codeb_signal_gen_vnum(r, g, &vn[k], admin, "config");
            }
        }
    }

    /* Redis unavailable: the configured rows are still an answer */

    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i + 1 < rep->elements; i += 2) {
            e = rep->element[i + 1];

            if (e->type != REDIS_REPLY_STRING
                || ngx_codeb_signal_parse_vnum(r->pool, (u_char *) e->str,
                                               e->len, &stored)
                   != NGX_OK)
            {
                continue;
            }

            if (ngx_codeb_signal_vnum_visible(&stored, ctx->signed_in)) {
                ngx_codeb_signal_gen_vnum(r, g, &stored, admin, "redis");
            }
        }
    }

    yajl_gen_array_close(g);

    return ngx_codeb_signal_send_gen(r, NGX_HTTP_OK, g);
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
    u_char                   keys[256];
    ngx_str_t                vk;
    ngx_codeb_redis_args_t   a;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (ngx_codeb_signal_key_prefix(ctx->tenant, "vnums", NULL, 0, keys,
                                    sizeof(keys), &vk) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg(&a, "HGETALL", 7);
    ngx_codeb_redis_arg_str(&a, &vk);

    r->main->count++;

    if (ngx_codeb_redis_command(ngx_codeb_flag_vnums_reply, r, a.argc,
                                a.argv, a.lens)
        != NGX_OK)
    {
        r->main->count--;
        return ngx_codeb_signal_vnums_send(r, NULL);
    }

    return NGX_DONE;
}


static ngx_int_t
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


static void
ngx_codeb_flag_vnum_write_reply(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply          *rep = reply;
    ngx_int_t            rc;
    ngx_http_request_t  *r = data;

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        ngx_http_finalize_request(r, ngx_codeb_signal_unavailable(r, rep));
        return;
    }

    switch (r->method) {

    case NGX_HTTP_POST:
        rc = rep->integer == 1
             ? ngx_codeb_http_send(r, NGX_HTTP_CREATED, "application/json",
                                   (u_char *) "{\"ok\":true}\n", 12)
             : ngx_codeb_http_error(r, NGX_HTTP_CONFLICT, "exists",
                                    "the virtual number exists");
        break;

    default:
        rc = rep->integer == 1
             ? ngx_codeb_http_send(r, NGX_HTTP_OK, "application/json",
                                   (u_char *) "{\"ok\":true}\n", 12)
             : ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "no such virtual number");
        break;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * ?virtualnumbers: GET lists every row; POST creates, PUT replaces
 * ({number, name?, mode?, visibility?, user?}); DELETE takes
 * &number=<n>.  Rows from nginx.conf are read-only.
 */
static ngx_int_t
ngx_codeb_flag_vnum_admin(ngx_http_request_t *r)
{
    u_char                   keys[256];
    yajl_gen                 g;
    ngx_str_t                vk, number, text, value;
    ngx_uint_t               k;
    ngx_codeb_vnum_t         vn, *cv;
    ngx_codeb_redis_args_t   a;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        ctx->signed_in = 1;
        return ngx_codeb_signal_vnum_list(r);
    }

    if (r->method == NGX_HTTP_DELETE) {
        if (ngx_http_arg(r, (u_char *) "number", 6, &number) != NGX_OK
            || number.len == 0)
        {
            return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_request",
                                        "DELETE needs &number=");
        }

    } else {
        if (ngx_codeb_signal_parse_vnum(r->pool, ctx->body.data,
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

    for (k = 0; k < number.len; k++) {
        if ((number.data[k] < '0' || number.data[k] > '9')
            && !(k == 0 && number.data[k] == '+'))
        {
            return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_request",
                                        "number must be digits");
        }
    }

    if (number.len == 0 || number.len > 32) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "number must be 1-32 digits");
    }

    if (ctx->tenant->vnums) {
        cv = ctx->tenant->vnums->elts;

        for (k = 0; k < ctx->tenant->vnums->nelts; k++) {
            if (cv[k].number.len == number.len
                && ngx_strncmp(cv[k].number.data, number.data, number.len)
                   == 0)
            {
                return ngx_codeb_http_error(r, NGX_HTTP_CONFLICT,
                                            "read_only",
                                            "defined in nginx.conf");
            }
        }
    }

    if (ngx_codeb_signal_key_prefix(ctx->tenant, "vnums", NULL, 0, keys,
                                    sizeof(keys), &vk) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;

    if (r->method == NGX_HTTP_DELETE) {
        ngx_codeb_redis_arg(&a, "HDEL", 4);
        ngx_codeb_redis_arg_str(&a, &vk);
        ngx_codeb_redis_arg_str(&a, &number);
        return ngx_codeb_signal_async(r, NULL,
                                      ngx_codeb_flag_vnum_write_reply, 0, &a);
    }

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_signal_gen_str(g, "number", vn.number.data, vn.number.len);
    ngx_codeb_signal_gen_str(g, "name", vn.name.data, vn.name.len);
    ngx_codeb_signal_gen_str(g, "mode", vn.mode.data, vn.mode.len);
    ngx_codeb_signal_gen_str(g, "visibility", vn.visibility.data,
                             vn.visibility.len);
    ngx_codeb_signal_gen_str(g, "user", vn.user.data, vn.user.len);
    yajl_gen_map_close(g);
    text = ngx_codeb_signal_gen_text(g);

    value.data = ngx_pnalloc(r->pool, text.len);
    if (value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(value.data, text.data, text.len);
    value.len = text.len;

    if (r->method == NGX_HTTP_POST) {
        ngx_codeb_redis_arg(&a, "HSETNX", 6);
        ngx_codeb_redis_arg_str(&a, &vk);
        ngx_codeb_redis_arg_str(&a, &number);
        ngx_codeb_redis_arg_str(&a, &value);

        return ngx_codeb_signal_async(r, NULL,
                                      ngx_codeb_flag_vnum_write_reply, 0, &a);
    }

    /* PUT replaces an existing row only */

    ngx_codeb_redis_arg_str(&a, &vk);
    ngx_codeb_redis_arg_str(&a, &number);
    ngx_codeb_redis_arg_str(&a, &value);

    return ngx_codeb_signal_async(r, &ngx_codeb_signal_vnum_put_script,
                                  ngx_codeb_flag_vnum_write_reply, 1, &a);
}


/* ---- ?cameras ---- */

static ngx_int_t
ngx_codeb_flag_cameras(ngx_http_request_t *r)
{
    yajl_gen                 g;
    ngx_uint_t               i;
    ngx_codeb_camera_t      *cam;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_string(g, (u_char *) "cameras", 7);
    yajl_gen_array_open(g);

    if (ctx->tenant->cameras) {
        cam = ctx->tenant->cameras->elts;

        for (i = 0; i < ctx->tenant->cameras->nelts; i++) {
            yajl_gen_map_open(g);
            ngx_codeb_signal_gen_str(g, "name", cam[i].name.data,
                                     cam[i].name.len);
            ngx_codeb_signal_gen_str(g, "streamId", cam[i].stream_id.data,
                                     cam[i].stream_id.len);
            yajl_gen_map_close(g);
        }
    }

    yajl_gen_array_close(g);

    return ngx_codeb_signal_send_gen(r, NGX_HTTP_OK, g);
}


/* ---- ?office-ring, ?office-ring-clear: bridge webhooks ---- */

static void
ngx_codeb_flag_ring_reply(redisAsyncContext *ac, void *reply, void *data)
{
    u_char                  *p, buf[64];
    redisReply              *rep = reply;
    ngx_http_request_t      *r = data;
    ngx_codeb_signal_req_t  *ctx;

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        ngx_http_finalize_request(r, ngx_codeb_signal_unavailable(r, rep));
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (ctx->flag->name.len == sizeof("office-ring") - 1) {
        p = ngx_sprintf(buf, "{\"delivered\":%L}\n",
                        rep->integer < 0 ? (int64_t) 0
                                         : (int64_t) rep->integer);

    } else {
        p = ngx_cpymem(buf, "{\"ok\":true}\n", sizeof("{\"ok\":true}\n") - 1);
    }

    ngx_http_finalize_request(r, ngx_codeb_http_send(r, NGX_HTTP_OK,
                                                     "application/json",
                                                     buf, p - buf));
}


/* PROTOCOL.md §1: the user a call to did from caller rings */
static ngx_str_t *
ngx_codeb_signal_route(ngx_codeb_tenant_t *t, ngx_str_t *did,
    ngx_str_t *from)
{
    ngx_uint_t          i;
    ngx_str_t           anon = ngx_string("anonymous"), *caller;
    ngx_codeb_route_t  *rt;

    if (t->routes == NULL) {
        return NULL;
    }

    caller = from->len ? from : &anon;
    rt = t->routes->elts;

    for (i = 0; i < t->routes->nelts; i++) {
        if (!(rt[i].did.len == 1 && rt[i].did.data[0] == '*')
            && !(rt[i].did.len == did->len
                 && ngx_strncmp(rt[i].did.data, did->data, did->len) == 0))
        {
            continue;
        }

        if ((rt[i].from.len == 1 && rt[i].from.data[0] == '*')
            || (rt[i].from.len == caller->len
                && ngx_strncmp(rt[i].from.data, caller->data, caller->len)
                   == 0))
        {
            return &rt[i].user;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_codeb_flag_ring(ngx_http_request_t *r)
{
    u_char                    keys[512], prefix[256], hb[300];
    int64_t                   ts;
    yajl_gen                  g;
    ngx_int_t                 rc;
    ngx_str_t                 did, from, reason, user, frame;
    ngx_str_t                 rk, vk, px, head, *routed;
    ngx_uint_t                ring;
    ngx_array_t              *m;
    ngx_codeb_tenant_t       *t;
    ngx_codeb_redis_args_t    a;
    ngx_codeb_json_member_t  *jcall, *jm;
    ngx_codeb_signal_req_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);
    t = ctx->tenant;
    ring = (ctx->flag->name.len == sizeof("office-ring") - 1);

    /* authentication first: X-Sig over "<flag>|<Host>|<body>" */

    rc = ngx_codeb_signal_signed(r, ctx, &t->bridge_secret, NULL);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK
        || ngx_codeb_json_object(r->pool, ctx->body.data, ctx->body.len, &m)
           != NGX_OK
        || ngx_codeb_json_int(m, "ts", &ts) != NGX_OK
        || !ngx_codeb_signal_fresh(ts))
    {
        goto unauthorized;
    }

    /* then the body */

    jcall = ngx_codeb_json_get_type(m, "callId", NGX_CODEB_JSON_STRING);

    if (jcall == NULL || jcall->str.len == 0 || jcall->str.len > 128) {
        return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request", "missing \"callId\"");
    }

    ngx_str_null(&did);
    ngx_str_null(&from);
    ngx_str_null(&user);
    ngx_str_null(&reason);

    if ((jm = ngx_codeb_json_get_type(m, "did", NGX_CODEB_JSON_STRING))) {
        did = jm->str;
    }

    if ((jm = ngx_codeb_json_get_type(m, "fromNumber",
                                      NGX_CODEB_JSON_STRING)))
    {
        from = jm->str;
    }

    if ((jm = ngx_codeb_json_get_type(m, "user", NGX_CODEB_JSON_STRING))) {
        user = jm->str;
    }

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ring) {
        if (user.len == 0) {
            routed = ngx_codeb_signal_route(t, &did, &from);

            if (routed == NULL) {
                return ngx_codeb_http_send(r, NGX_HTTP_OK, "application/json",
                                           (u_char *) "{\"delivered\":0}\n",
                                           sizeof("{\"delivered\":0}\n") - 1);
            }

            user = *routed;
        }

        ngx_codeb_signal_gen_cstr(g, "type", "ring");
        ngx_codeb_signal_gen_str(g, "callId", jcall->str.data,
                                 jcall->str.len);

        if (did.len) {
            ngx_codeb_signal_gen_str(g, "did", did.data, did.len);
            ngx_codeb_signal_gen_str(g, "number", did.data, did.len);
        }

        if (from.len) {
            ngx_codeb_signal_gen_str(g, "fromNumber", from.data, from.len);
        }

    } else {
        if ((jm = ngx_codeb_json_get_type(m, "reason",
                                          NGX_CODEB_JSON_STRING)))
        {
            reason = jm->str;
        }

        if (!ngx_codeb_signal_is(&reason, "cancelled")
            && !ngx_codeb_signal_is(&reason, "hangup")
            && !ngx_codeb_signal_is(&reason, "answered-elsewhere"))
        {
            return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_request",
                                        "\"reason\" must be cancelled, "
                                        "hangup or answered-elsewhere");
        }

        ngx_codeb_signal_gen_cstr(g, "type", "ring-cleared");
        ngx_codeb_signal_gen_str(g, "callId", jcall->str.data,
                                 jcall->str.len);
        ngx_codeb_signal_gen_str(g, "reason", reason.data, reason.len);
    }

    frame = ngx_codeb_signal_gen_text(g);

    if (ngx_codeb_signal_key_prefix(t, "ring:", jcall->str.data,
                                    jcall->str.len, keys, 256, &rk) != NGX_OK
        || ngx_codeb_signal_key_prefix(t, "vnums", NULL, 0, keys + 256, 256,
                                       &vk) != NGX_OK
        || ngx_codeb_signal_key_prefix(t, "", NULL, 0, prefix,
                                       sizeof(prefix), &px) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    head.data = hb;
    head.len = ngx_snprintf(hb, sizeof(hb), "office %V ", &t->name) - hb;

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &rk);
    ngx_codeb_redis_arg_str(&a, &vk);
    ngx_codeb_redis_arg_str(&a, &px);
    ngx_codeb_redis_arg_str(&a, &user);
    ngx_codeb_redis_arg_str(&a, &head);
    ngx_codeb_redis_arg_str(&a, &frame);
    ngx_codeb_redis_arg(&a, NULL, 0);

    if (ring) {
        ngx_codeb_redis_arg(&a, "ring", 4);

    } else {
        ngx_codeb_redis_arg(&a, "clear", 5);
    }

    ngx_codeb_redis_arg(&a, "3600", 4);

    return ngx_codeb_signal_async(r, &ngx_codeb_signal_ring_script,
                                  ngx_codeb_flag_ring_reply, 2, &a);

unauthorized:

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "codeb: ?%V refused: bad or stale signature",
                  &ctx->flag->name);

    return ngx_codeb_http_error(r, NGX_HTTP_UNAUTHORIZED, "unauthorized",
                                "signature mismatch or stale timestamp");
}


/* ---- ?stats ---- */

static void
ngx_codeb_flag_stats_reply(redisAsyncContext *ac, void *reply, void *data)
{
    size_t                   i;
    int64_t                  peers;
    yajl_gen                 g;
    ngx_uint_t               lpeers, lrooms, ldetached;
    redisReply              *rep = reply, *rooms;
    ngx_http_request_t      *r = data;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_signal_gen_cstr(g, "build", ngx_codeb_build());
    ngx_codeb_signal_gen_str(g, "tenant", ctx->tenant->name.data,
                             ctx->tenant->name.len);
    ngx_codeb_signal_gen_cstr(g, "redis", rep && rep->type == REDIS_REPLY_ARRAY
                                          ? "up" : "down");

    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 4
        && rep->element[0]->type == REDIS_REPLY_ARRAY)
    {
        rooms = rep->element[0];
        peers = 0;

        for (i = 1; i < rooms->elements; i += 2) {
            if (rooms->element[i]->type == REDIS_REPLY_INTEGER) {
                peers += rooms->element[i]->integer;
            }
        }

        yajl_gen_string(g, (u_char *) "rooms", 5);
        yajl_gen_integer(g, rooms->elements / 2);
        yajl_gen_string(g, (u_char *) "peers", 5);
        yajl_gen_integer(g, peers);
        yajl_gen_string(g, (u_char *) "mediaCalls", 10);
        yajl_gen_integer(g, rep->element[3]->type == REDIS_REPLY_INTEGER
                            ? rep->element[3]->integer : 0);
    }

    ngx_codeb_signal_local_counts(&lpeers, &lrooms, &ldetached);

    yajl_gen_string(g, (u_char *) "worker", 6);
    yajl_gen_map_open(g);
    ngx_codeb_signal_gen_str(g, "id", ngx_codeb_worker_id()->data,
                             ngx_codeb_worker_id()->len);
    yajl_gen_string(g, (u_char *) "peers", 5);
    yajl_gen_integer(g, lpeers);
    yajl_gen_string(g, (u_char *) "rooms", 5);
    yajl_gen_integer(g, lrooms);
    yajl_gen_string(g, (u_char *) "detached", 8);
    yajl_gen_integer(g, ldetached);
    yajl_gen_map_close(g);

    ngx_http_finalize_request(r, ngx_codeb_signal_send_gen(r, NGX_HTTP_OK, g));
}


/* the health script counts the tenant's rooms and peers */
static ngx_int_t
ngx_codeb_flag_stats(ngx_http_request_t *r)
{
    return ngx_codeb_signal_health_query(r, ngx_codeb_flag_stats_reply);
}


static ngx_int_t
ngx_codeb_flag_unavailable(ngx_http_request_t *r)
{
    return ngx_codeb_http_error(r, NGX_HTTP_NOT_IMPLEMENTED, "not_available",
                                "this flag needs the SIP modules");
}

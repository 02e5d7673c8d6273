/*
 * Plain HTTP answers of the CodeB modules: every one carries
 * Cache-Control: no-store (docs/signal.md "Plain HTTP"), JSON ones come
 * from the generator; request bodies are read or discarded by every
 * handler (no request smuggling).
 */

#include "ngx_codeb_core.h"


typedef struct {
    size_t                      max;
    ngx_codeb_http_body_pt      handler;
} ngx_codeb_http_body_ctx_t;


typedef struct {
    ngx_codeb_redis_wait_t      wait;
    ngx_http_handler_pt         handler;
} ngx_codeb_http_redis_ctx_t;


static void ngx_codeb_http_body_read(ngx_http_request_t *r);
static void ngx_codeb_http_redis_up(ngx_codeb_redis_wait_t *w, ngx_int_t rc);
static void ngx_codeb_http_redis_cleanup(void *data);


/* one context slot per request for the core's own waits */
#define ngx_codeb_http_get_ctx(r)                                            \
    ngx_http_get_module_ctx(r, ngx_codeb_core_module)


ngx_int_t
ngx_codeb_http_send(ngx_http_request_t *r, ngx_uint_t status,
    char *content_type, u_char *body, size_t len)
{
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.len = ngx_strlen(content_type);
    r->headers_out.content_type.data = (u_char *) content_type;
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->pos, body, len);
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_codeb_http_json(ngx_http_request_t *r, ngx_uint_t status, yajl_gen g)
{
    ngx_str_t  text;

    text = ngx_codeb_gen_done(g);

    return ngx_codeb_http_send(r, status, "application/json", text.data,
                               text.len);
}


ngx_int_t
ngx_codeb_http_error(ngx_http_request_t *r, ngx_uint_t status, char *code,
    char *text)
{
    yajl_gen  g;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_cstr(g, "error", code);
    ngx_codeb_gen_cstr(g, "error_description", text);

    return ngx_codeb_http_json(r, status, g);
}


ngx_table_elt_t *
ngx_codeb_http_header(ngx_http_request_t *r, char *name)
{
    size_t            n;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    n = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == n
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, n) == 0)
        {
            return &h[i];
        }
    }

    return NULL;
}


void
ngx_codeb_http_bearer(ngx_http_request_t *r, ngx_str_t *token)
{
    ngx_table_elt_t  *h;

    token->len = 0;
    token->data = NULL;

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len <= 7
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return;
    }

    token->data = h->value.data + 7;
    token->len = h->value.len - 7;

    while (token->len && token->data[0] == ' ') {
        token->data++;
        token->len--;
    }
}


ngx_int_t
ngx_codeb_http_read_body(ngx_http_request_t *r, size_t max,
    ngx_codeb_http_body_pt handler)
{
    ngx_int_t                   rc;
    ngx_codeb_http_body_ctx_t  *ctx;

    if (r->headers_in.content_length_n > (off_t) max) {
        /* discarded, so the connection stays in step */
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_codeb_http_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "body_too_large",
                                    "the request body is too large");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_codeb_http_body_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->max = max;
    ctx->handler = handler;
    ngx_http_set_ctx(r, ctx, ngx_codeb_core_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_codeb_http_body_read);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_codeb_http_body_read(ngx_http_request_t *r)
{
    u_char                     *p;
    size_t                      len;
    ngx_str_t                   body;
    ngx_chain_t                *cl;
    ngx_codeb_http_body_ctx_t  *ctx;

    ctx = ngx_codeb_http_get_ctx(r);
    ngx_http_set_ctx(r, NULL, ngx_codeb_core_module);

    len = 0;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        if (cl->buf->in_file || len + ngx_buf_size(cl->buf) > ctx->max) {
            /* a chunked body can turn out larger than announced */
            ngx_http_finalize_request(r,
                ngx_codeb_http_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "body_too_large",
                                     "the request body is too large"));
            return;
        }

        len += ngx_buf_size(cl->buf);
    }

    body.data = ngx_pnalloc(r->pool, len + 1);
    if (body.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body.data;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';
    body.len = len;

    ngx_http_finalize_request(r, ctx->handler(r, &body));
}


ngx_int_t
ngx_codeb_http_with_redis(ngx_http_request_t *r, ngx_http_handler_pt handler)
{
    ngx_pool_cleanup_t          *cln;
    ngx_codeb_http_redis_ctx_t  *ctx;

    if (ngx_codeb_redis_ready()) {
        return handler(r);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_codeb_http_redis_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (ctx == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->handler = handler;
    ctx->wait.handler = ngx_codeb_http_redis_up;
    ctx->wait.data = r;

    cln->handler = ngx_codeb_http_redis_cleanup;
    cln->data = ctx;

    ngx_codeb_redis_wait(&ctx->wait, r->connection->log);
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_codeb_http_redis_up(ngx_codeb_redis_wait_t *w, ngx_int_t rc)
{
    ngx_connection_t            *c;
    ngx_http_request_t          *r = w->data;
    ngx_codeb_http_redis_ctx_t  *ctx;

    ctx = (ngx_codeb_http_redis_ctx_t *) w;
    c = r->connection;

    /* rc NGX_ERROR: still down; the handler answers as it does then */

    ngx_http_finalize_request(r, ctx->handler(r));
    ngx_http_run_posted_requests(c);
}


static void
ngx_codeb_http_redis_cleanup(void *data)
{
    ngx_codeb_http_redis_ctx_t  *ctx = data;

    ngx_codeb_redis_cancel(&ctx->wait);
}


ngx_int_t
ngx_codeb_http_redis(ngx_http_request_t *r, ngx_codeb_redis_script_t *script,
    redisCallbackFn *cb, int nkeys, ngx_codeb_redis_args_t *a)
{
    ngx_int_t  rc;

    r->main->count++;

    if (script) {
        rc = ngx_codeb_redis_eval(script, cb, r, nkeys, a);

    } else {
        rc = ngx_codeb_redis_command(cb, r, a);
    }

    if (rc != NGX_OK) {
        r->main->count--;
        return ngx_codeb_http_unavailable(r, NULL);
    }

    return NGX_DONE;
}


ngx_int_t
ngx_codeb_http_unavailable(ngx_http_request_t *r, void *reply)
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


yajl_gen
ngx_codeb_http_reply_gen(ngx_http_request_t *r, void *reply, int type)
{
    yajl_gen     g;
    redisReply  *rep = reply;

    if (rep == NULL || rep->type != type) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return NULL;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    return g;
}

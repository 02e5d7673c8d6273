/*
 * The WebSocket opening handshake, server side (RFC 6455 §4.2): the
 * request is checked, the subprotocol negotiated (§4.2.2; RFC 7118 §4 for
 * "sip"), and the 101 goes out through nginx's header filters like any
 * other response header.
 */

#include "ngx_codeb_core.h"
#include <openssl/sha.h>


#define NGX_CODEB_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


static ngx_int_t ngx_codeb_ws_check(ngx_http_request_t *r,
    ngx_codeb_ws_conf_t *conf, ngx_table_elt_t **key);
static ngx_int_t ngx_codeb_ws_header_out(ngx_http_request_t *r, char *name,
    u_char *value, size_t len);
static ngx_uint_t ngx_codeb_ws_token(ngx_table_elt_t *h, char *token,
    size_t n);


ngx_uint_t
ngx_codeb_ws_is_upgrade(ngx_http_request_t *r)
{
    return r->headers_in.upgrade != NULL;
}


ngx_int_t
ngx_codeb_ws_accept(ngx_http_request_t *r, ngx_codeb_ws_conf_t *conf,
    ngx_codeb_ws_t **wsp)
{
    u_char            sha[SHA_DIGEST_LENGTH], *accept;
    ngx_int_t         rc;
    ngx_str_t         src, dst;
    SHA_CTX           ctx;
    ngx_table_elt_t  *key;
    ngx_codeb_ws_t   *ws;

    rc = ngx_codeb_ws_check(r, conf, &key);
    if (rc != NGX_OK) {
        return rc;
    }

    /* §4.2.2: Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) */

    SHA1_Init(&ctx);
    SHA1_Update(&ctx, key->value.data, key->value.len);
    SHA1_Update(&ctx, NGX_CODEB_WS_GUID, sizeof(NGX_CODEB_WS_GUID) - 1);
    SHA1_Final(sha, &ctx);

    accept = ngx_pnalloc(r->pool,
                         ngx_base64_encoded_length(SHA_DIGEST_LENGTH));
    ws = ngx_pcalloc(r->pool, sizeof(ngx_codeb_ws_t));
    if (accept == NULL || ws == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    src.data = sha;
    src.len = SHA_DIGEST_LENGTH;
    dst.data = accept;
    ngx_encode_base64(&dst, &src);

    if (ngx_codeb_ws_header_out(r, "Upgrade", (u_char *) "websocket", 9)
        != NGX_OK
        || ngx_codeb_ws_header_out(r, "Sec-WebSocket-Accept", dst.data,
                                   dst.len) != NGX_OK
        || (conf->subprotocol.len
            && ngx_codeb_ws_header_out(r, "Sec-WebSocket-Protocol",
                                       conf->subprotocol.data,
                                       conf->subprotocol.len) != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the header filter writes "Connection: upgrade" for a 101 */

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;
    r->lingering_close = 0;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* out now, also through a TLS buffer; the rest waits in r->out */
    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ws->request = r;
    ws->connection = r->connection;
    ws->conf = conf;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "codeb ws: 101 for \"%V\", subprotocol \"%V\"",
                   &r->uri, &conf->subprotocol);

    ngx_codeb_ws_start(ws);

    *wsp = ws;

    return NGX_OK;
}


/*
 * §4.2.1: a GET of HTTP/1.1 with Upgrade: websocket, Connection: upgrade,
 * version 13, a key of 16 bytes, and the configured subprotocol among the
 * offered ones.  NGX_OK with the key, or the status of the refusal.
 */
static ngx_int_t
ngx_codeb_ws_check(ngx_http_request_t *r, ngx_codeb_ws_conf_t *conf,
    ngx_table_elt_t **key)
{
    u_char            buf[ngx_base64_decoded_length(24)];
    ngx_int_t         rc;
    ngx_str_t         dst;
    ngx_table_elt_t  *h;

    if (r->method != NGX_HTTP_GET) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->http_version != NGX_HTTP_VERSION_11 || r != r->main
#if (NGX_HTTP_V2)
        || r->stream
#endif
       )
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    /* a body would be taken for frames: refused, and read away */

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        rc = ngx_http_discard_request_body(r);
        return rc == NGX_OK ? NGX_HTTP_BAD_REQUEST : rc;
    }

    /* nginx 1.22 does not keep the Connection header in headers_in */

    if (!ngx_codeb_ws_token(r->headers_in.upgrade, "websocket", 9)
        || !ngx_codeb_ws_token(ngx_codeb_http_header(r, "Connection"),
                               "upgrade", 7))
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    h = ngx_codeb_http_header(r, "Sec-WebSocket-Version");
    if (h == NULL || h->value.len != 2
        || ngx_strncmp(h->value.data, "13", 2) != 0)
    {
        /* §4.4: the version we speak is advertised */
        if (ngx_codeb_ws_header_out(r, "Sec-WebSocket-Version",
                                    (u_char *) "13", 2)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_UPGRADE_REQUIRED;
    }

    h = ngx_codeb_http_header(r, "Sec-WebSocket-Key");
    if (h == NULL || h->value.len != 24) {
        return NGX_HTTP_BAD_REQUEST;
    }

    /* 24 characters decode to at most 18 bytes: the key must be 16 */
    dst.data = buf;
    if (ngx_decode_base64(&dst, &h->value) != NGX_OK || dst.len != 16) {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (conf->subprotocol.len
        && !ngx_codeb_ws_token(ngx_codeb_http_header(r,
                                                     "Sec-WebSocket-Protocol"),
                               (char *) conf->subprotocol.data,
                               conf->subprotocol.len))
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    *key = h;

    return NGX_OK;
}


ngx_int_t
ngx_codeb_ws_refuse(ngx_http_request_t *r, ngx_int_t status)
{
    switch (status) {

    case NGX_HTTP_NOT_ALLOWED:
        return ngx_codeb_http_error(r, status, "bad_handshake",
                                    "a WebSocket upgrade must be a GET");

    case NGX_HTTP_UPGRADE_REQUIRED:
        return ngx_codeb_http_error(r, status, "bad_handshake",
                                    "Sec-WebSocket-Version must be 13");

    case NGX_HTTP_BAD_REQUEST:
        return ngx_codeb_http_error(r, status, "bad_handshake",
                                    "invalid WebSocket handshake "
                                    "(RFC 6455 section 4.2.1)");

    default:
        return status;
    }
}


static ngx_int_t
ngx_codeb_ws_header_out(ngx_http_request_t *r, char *name, u_char *value,
    size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


/* 1 if the comma-separated header value contains token (any case) */
static ngx_uint_t
ngx_codeb_ws_token(ngx_table_elt_t *h, char *token, size_t n)
{
    u_char  *p, *last, *s;

    if (h == NULL) {
        return 0;
    }

    p = h->value.data;
    last = p + h->value.len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        s = p;

        while (p < last && *p != ',' && *p != ' ' && *p != '\t') {
            p++;
        }

        if ((size_t) (p - s) == n
            && ngx_strncasecmp(s, (u_char *) token, n) == 0)
        {
            return 1;
        }
    }

    return 0;
}

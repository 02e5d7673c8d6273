/*
 * WebSocket frames, RFC 6455 §5, on a connection after its 101
 * (ngx_codeb_ws_handshake.c).
 *
 * The upgraded HTTP/1.1 connection is driven directly with c->recv and
 * c->send_chain (plain or TLS), once the 101 left nginx's output chain.
 * Input: frames are parsed from a worker-wide read buffer; only an
 * incomplete frame is copied into a per-connection buffer, so an idle
 * connection holds no input buffer.  Output: one heap block per frame in
 * a queue bounded by max_queue bytes; a peer that lets it fill up is
 * disconnected.  The connection is finalized only from its own event
 * handlers (never from inside a caller's send or close), so the owner may
 * call send/close from any callback.  `error_log ... debug` traces frames
 * in and out.
 */

#include "ngx_codeb_core.h"


#define NGX_CODEB_WS_RBUF        16384
#define NGX_CODEB_WS_LINGER      2000       /* ms to wait for the peer's EOF */
#define NGX_CODEB_WS_IOV         64         /* frames per send_chain() */


struct ngx_codeb_ws_out_s {
    ngx_codeb_ws_out_t         *next;
    u_char                     *pos;
    u_char                     *last;
    u_char                      data[];
};


static void ngx_codeb_ws_read_handler(ngx_http_request_t *r);
static void ngx_codeb_ws_write_handler(ngx_http_request_t *r);
static void ngx_codeb_ws_timer_handler(ngx_event_t *ev);
static void ngx_codeb_ws_cleanup(void *data);
static ngx_int_t ngx_codeb_ws_input(ngx_codeb_ws_t *ws, u_char *start,
    u_char *end, u_char **pos);
static ngx_int_t ngx_codeb_ws_frame(ngx_codeb_ws_t *ws, ngx_uint_t fin,
    ngx_uint_t opcode, u_char *payload, size_t len);
static ngx_int_t ngx_codeb_ws_enqueue(ngx_codeb_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len, ngx_uint_t force);
static ngx_int_t ngx_codeb_ws_flush(ngx_codeb_ws_t *ws);
static ngx_int_t ngx_codeb_ws_send_batch(ngx_codeb_ws_t *ws);
static void ngx_codeb_ws_linger(ngx_codeb_ws_t *ws);
static ngx_int_t ngx_codeb_ws_parse(ngx_codeb_ws_t *ws, u_char *pos,
    u_char *end);
static ngx_int_t ngx_codeb_ws_header(ngx_codeb_ws_t *ws, u_char *p,
    size_t avail, size_t *hlen, uint64_t *len);
static ngx_int_t ngx_codeb_ws_close_frame(ngx_codeb_ws_t *ws,
    u_char *payload, size_t len);
static ngx_int_t ngx_codeb_ws_fragment(ngx_codeb_ws_t *ws, ngx_uint_t fin,
    u_char *payload, size_t len);
static ngx_int_t ngx_codeb_ws_message(ngx_codeb_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len);
static void ngx_codeb_ws_fail(ngx_codeb_ws_t *ws, ngx_uint_t status,
    char *reason);
static void ngx_codeb_ws_finish(ngx_codeb_ws_t *ws);
static ngx_int_t ngx_codeb_ws_in_alloc(ngx_codeb_ws_t *ws, size_t size);
static void ngx_codeb_ws_in_free(ngx_codeb_ws_t *ws);
static ngx_uint_t ngx_codeb_ws_utf8(u_char *p, size_t len);


static u_char  ngx_codeb_ws_rbuf[NGX_CODEB_WS_RBUF];


void
ngx_codeb_ws_start(ngx_codeb_ws_t *ws)
{
    size_t               len;
    ngx_connection_t    *c;
    ngx_pool_cleanup_t  *cln;
    ngx_http_request_t  *r;

    r = ws->request;
    c = ws->connection;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ws->closing = 1;
        ws->done = 1;

    } else {
        cln->handler = ngx_codeb_ws_cleanup;
        cln->data = ws;
    }

    ws->out_last = &ws->out;
    ws->last_seen = ngx_current_msec;
    ws->next_ping = ngx_current_msec + ws->conf->ping_interval;

    ws->timer.handler = ngx_codeb_ws_timer_handler;
    ws->timer.data = ws;
    ws->timer.log = c->log;

    ngx_http_set_ctx(r, ws, ngx_codeb_core_module);

    r->read_event_handler = ngx_codeb_ws_read_handler;
    r->write_event_handler = ngx_codeb_ws_write_handler;
    r->main->count++;
    c->log->action = "relaying WebSocket frames";

    (void) ngx_tcp_nodelay(c);

    ngx_add_timer(&ws->timer, ws->conf->ping_interval);

    /* bytes the client sent right after its handshake */

    len = r->header_in->last - r->header_in->pos;

    if (len) {
        if (len > ws->conf->max_message + 14
            || ngx_codeb_ws_in_alloc(ws, len) != NGX_OK)
        {
            ws->closing = 1;
            ws->done = 1;

        } else {
            ws->in.last = ngx_cpymem(ws->in.pos, r->header_in->pos, len);
            ws->unparsed = 1;
        }

        r->header_in->pos = r->header_in->last;
        ngx_post_event(c->read, &ngx_posted_events);
    }

    /* the 101 may still sit in nginx's output chain: flushed first */
    ngx_post_event(c->write, &ngx_posted_events);
}


ngx_int_t
ngx_codeb_ws_send(ngx_codeb_ws_t *ws, ngx_uint_t opcode, u_char *data,
    size_t len)
{
    ngx_int_t  rc;

    if (ws->closing) {
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                   "codeb ws: send opcode %ui, %uz bytes", opcode, len);

    rc = ngx_codeb_ws_enqueue(ws, opcode, data, len, 0);

    if (rc == NGX_OK && !ws->busy && !ws->connection->write->posted) {
        ngx_post_event(ws->connection->write, &ngx_posted_events);
    }

    return rc;
}


void
ngx_codeb_ws_close(ngx_codeb_ws_t *ws, ngx_uint_t status, char *reason)
{
    size_t  len;
    u_char  payload[125];

    if (ws->closing) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                   "codeb ws: close %ui", status);

    len = 0;

    if (status) {
        payload[0] = (u_char) (status >> 8);
        payload[1] = (u_char) (status & 0xff);
        len = 2;

        if (reason) {
            len = ngx_cpymem(payload + 2, reason,
                             ngx_min(ngx_strlen(reason), 123))
                  - payload;
        }
    }

    (void) ngx_codeb_ws_enqueue(ws, NGX_CODEB_WS_CLOSE, payload, len, 1);
    ws->closing = 1;

    if (!ws->connection->write->posted) {
        ngx_post_event(ws->connection->write, &ngx_posted_events);
    }
}


/*
 * appends one frame; force: control frames that must go out even when the
 * queue is over its bound
 */
static ngx_int_t
ngx_codeb_ws_enqueue(ngx_codeb_ws_t *ws, ngx_uint_t opcode, u_char *data,
    size_t len, ngx_uint_t force)
{
    u_char              *p;
    size_t               hlen;
    ngx_codeb_ws_out_t  *out;

    hlen = len < 126 ? 2 : (len < 65536 ? 4 : 10);

    if (!force && ws->out_bytes + hlen + len > ws->conf->max_queue) {
        ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                      "WebSocket peer reads too slowly: %uz bytes queued, "
                      "closing", ws->out_bytes);
        ws->closing = 1;
        ws->done = 1;

        if (!ws->connection->write->posted) {
            ngx_post_event(ws->connection->write, &ngx_posted_events);
        }

        return NGX_DECLINED;
    }

    out = ngx_alloc(sizeof(ngx_codeb_ws_out_t) + hlen + len,
                    ws->connection->log);
    if (out == NULL) {
        return NGX_ERROR;
    }

    p = out->data;
    *p++ = (u_char) (0x80 | opcode);

    if (len < 126) {
        *p++ = (u_char) len;

    } else if (len < 65536) {
        *p++ = 126;
        *p++ = (u_char) (len >> 8);
        *p++ = (u_char) (len & 0xff);

    } else {
        *p++ = 127;
        *p++ = 0; *p++ = 0; *p++ = 0; *p++ = 0;
        *p++ = (u_char) ((len >> 24) & 0xff);
        *p++ = (u_char) ((len >> 16) & 0xff);
        *p++ = (u_char) ((len >> 8) & 0xff);
        *p++ = (u_char) (len & 0xff);
    }

    out->next = NULL;
    out->pos = out->data;
    out->last = ngx_cpymem(p, data, len);

    *ws->out_last = out;
    ws->out_last = &out->next;
    ws->out_bytes += hlen + len;

    return NGX_OK;
}


static void
ngx_codeb_ws_write_handler(ngx_http_request_t *r)
{
    ngx_codeb_ws_t  *ws;

    ws = ngx_http_get_module_ctx(r, ngx_codeb_core_module);

    if (ws == NULL || ngx_codeb_ws_flush(ws) == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        return;
    }

    if (ws->done) {
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
    }
}


/*
 * NGX_OK: queue empty; NGX_AGAIN: waiting for the socket; NGX_ERROR.
 * The rest of the 101 goes first, then the queued frames.
 */
static ngx_int_t
ngx_codeb_ws_flush(ngx_codeb_ws_t *ws)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = ws->connection;

    if (ws->done) {
        return NGX_OK;
    }

    if (ws->request->out) {
        if (ngx_http_output_filter(ws->request, NULL) == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (ws->request->out) {
            return ngx_handle_write_event(c->write, 0) == NGX_OK
                   ? NGX_AGAIN : NGX_ERROR;
        }
    }

    while (ws->out) {
        rc = ngx_codeb_ws_send_batch(ws);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_AGAIN) {
            return ngx_handle_write_event(c->write, 0) == NGX_OK
                   ? NGX_AGAIN : NGX_ERROR;
        }
    }

    if (ws->closing && !ws->lingering) {
        ngx_codeb_ws_linger(ws);
    }

    return NGX_OK;
}


/*
 * Up to NGX_CODEB_WS_IOV queued frames in one send_chain() call (one
 * writev, or one TLS record batch); the frames sent are freed.  NGX_OK:
 * all of them went; NGX_AGAIN: the socket is full; NGX_ERROR.
 */
static ngx_int_t
ngx_codeb_ws_send_batch(ngx_codeb_ws_t *ws)
{
    ngx_uint_t           i, n;
    ngx_buf_t            bufs[NGX_CODEB_WS_IOV];
    ngx_chain_t          cl[NGX_CODEB_WS_IOV], *rest;
    ngx_connection_t    *c;
    ngx_codeb_ws_out_t  *out, *next;

    c = ws->connection;
    n = 0;

    for (out = ws->out; out && n < NGX_CODEB_WS_IOV; out = out->next) {
        ngx_memzero(&bufs[n], sizeof(ngx_buf_t));
        bufs[n].pos = out->pos;
        bufs[n].last = out->last;
        bufs[n].memory = 1;

        cl[n].buf = &bufs[n];
        cl[n].next = NULL;

        if (n) {
            cl[n - 1].next = &cl[n];
        }

        n++;
    }

    /* a TLS connection buffers until a flush */
    bufs[n - 1].flush = 1;

    rest = c->send_chain(c, cl, 0);

    if (rest == NGX_CHAIN_ERROR) {
        return NGX_ERROR;
    }

    out = ws->out;

    for (i = 0; i < n; i++) {
        ws->out_bytes -= bufs[i].pos - out->pos;
        out->pos = bufs[i].pos;

        if (out->pos < out->last) {
            break;
        }

        next = out->next;
        ngx_free(out);
        out = next;
    }

    ws->out = out;

    if (out == NULL) {
        ws->out_last = &ws->out;
    }

    return rest ? NGX_AGAIN : NGX_OK;
}


/*
 * RFC 6455 §7.1.1: the server closes TCP first; it waits briefly for the
 * client's EOF so that the client's close frame is not answered by RST
 */
static void
ngx_codeb_ws_linger(ngx_codeb_ws_t *ws)
{
    ws->lingering = 1;

    if (ws->connection->ssl == NULL) {
        (void) shutdown(ws->connection->fd, SHUT_WR);
    }

    if (ws->timer.timer_set) {
        ngx_del_timer(&ws->timer);
    }

    ngx_add_timer(&ws->timer, NGX_CODEB_WS_LINGER);
}


static void
ngx_codeb_ws_read_handler(ngx_http_request_t *r)
{
    u_char            *buf;
    size_t             size;
    ssize_t            n;
    ngx_codeb_ws_t    *ws;
    ngx_connection_t  *c;

    c = r->connection;
    ws = ngx_http_get_module_ctx(r, ngx_codeb_core_module);

    if (ws == NULL || c->close) {
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        return;
    }

    ws->busy = 1;

    if (ws->unparsed) {
        /* frames that came with the handshake */
        ws->unparsed = 0;
        (void) ngx_codeb_ws_parse(ws, ws->in.pos, ws->in.last);
    }

    while (!ws->done && !ws->closing) {

        if (ws->in.start) {
            buf = ws->in.last;
            size = ws->in.end - ws->in.last;

        } else {
            buf = ngx_codeb_ws_rbuf;
            size = NGX_CODEB_WS_RBUF;
        }

        n = c->recv(c, buf, size);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ws->done = 1;
            }
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ws->closing = 1;
            ws->done = 1;
            break;
        }

        ws->last_seen = ngx_current_msec;

        if (ws->in.start) {
            ws->in.last += n;
            buf = ws->in.pos;
            n = ws->in.last - buf;
        }

        if (ngx_codeb_ws_parse(ws, buf, buf + n) != NGX_OK) {
            break;
        }
    }

    /* once closing, the client's bytes are read away until its EOF */

    while (ws->closing && !ws->done) {
        n = c->recv(c, ngx_codeb_ws_rbuf, NGX_CODEB_WS_RBUF);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ws->done = 1;
            }
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ws->done = 1;
        }
    }

    ws->busy = 0;

    if (ws->done) {
        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        return;
    }

    if (ws->out && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


/*
 * The frames in [pos, end); an incomplete frame at the end is kept in
 * ws->in.  NGX_OK: go on reading; NGX_DECLINED: the connection is
 * closing; NGX_ERROR: no memory.
 */
static ngx_int_t
ngx_codeb_ws_parse(ngx_codeb_ws_t *ws, u_char *pos, u_char *end)
{
    u_char     *buf;
    size_t      size;
    ngx_int_t   need;

    need = ngx_codeb_ws_input(ws, pos, end, &pos);

    if (need == NGX_ERROR || ws->closing) {
        return NGX_DECLINED;
    }

    if (pos == end) {
        ngx_codeb_ws_in_free(ws);
        return NGX_OK;
    }

    /* the incomplete frame [pos, end), in a buffer that will hold it all */

    if (ws->in.start && (ngx_int_t) (ws->in.end - ws->in.start) >= need) {
        ws->in.last = ngx_movemem(ws->in.start, pos, end - pos);
        ws->in.pos = ws->in.start;
        return NGX_OK;
    }

    size = ngx_max((size_t) need, 4096);

    buf = ngx_alloc(size, ws->connection->log);
    if (buf == NULL) {
        ws->done = 1;
        return NGX_ERROR;
    }

    end = ngx_cpymem(buf, pos, end - pos);
    ngx_codeb_ws_in_free(ws);

    ws->in.start = buf;
    ws->in.pos = buf;
    ws->in.last = end;
    ws->in.end = buf + size;

    return NGX_OK;
}


static ngx_int_t
ngx_codeb_ws_in_alloc(ngx_codeb_ws_t *ws, size_t size)
{
    size = ngx_max(size, 4096);

    ws->in.start = ngx_alloc(size, ws->connection->log);
    if (ws->in.start == NULL) {
        return NGX_ERROR;
    }

    ws->in.pos = ws->in.start;
    ws->in.last = ws->in.start;
    ws->in.end = ws->in.start + size;

    return NGX_OK;
}


static void
ngx_codeb_ws_in_free(ngx_codeb_ws_t *ws)
{
    if (ws->in.start) {
        ngx_free(ws->in.start);
        ngx_memzero(&ws->in, sizeof(ngx_buf_t));
    }
}


/*
 * Parses frames in [start, end).  Returns NGX_ERROR when the connection
 * is being closed, else the number of bytes the incomplete frame at *pos
 * needs in all (>= end - *pos), or 0 when nothing is left.
 */
static ngx_int_t
ngx_codeb_ws_input(ngx_codeb_ws_t *ws, u_char *start, u_char *end,
    u_char **pos)
{
    u_char      *p, *mask;
    size_t       i, hlen;
    uint64_t     len;
    ngx_int_t    rc;

    p = start;

    while (p < end && !ws->closing) {
        rc = ngx_codeb_ws_header(ws, p, end - p, &hlen, &len);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_AGAIN || (uint64_t) (end - p) < hlen + len) {
            /* the header's own size is at most 14 bytes */
            *pos = p;
            return rc == NGX_AGAIN ? 14 : (ngx_int_t) (hlen + len);
        }

        mask = p + hlen - 4;
        p += hlen;

        for (i = 0; i < len; i++) {
            p[i] ^= mask[i & 3];
        }

        if (ngx_codeb_ws_frame(ws, start[0] & 0x80, start[0] & 0x0f, p,
                               (size_t) len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        p += len;
        start = p;
    }

    *pos = p;

    return 0;
}


/*
 * The header of the frame at p (RFC 6455 §5.2): its size in *hlen
 * (masking key included) and the payload length in *len.  NGX_AGAIN:
 * fewer than the header's bytes are there; NGX_ERROR: a protocol
 * violation, the connection is being closed.
 */
static ngx_int_t
ngx_codeb_ws_header(ngx_codeb_ws_t *ws, u_char *p, size_t avail,
    size_t *hlen, uint64_t *len)
{
    size_t      i;
    ngx_uint_t  fin, opcode;

    if (avail < 2) {
        return NGX_AGAIN;
    }

    fin = p[0] & 0x80;
    opcode = p[0] & 0x0f;

    if (p[0] & 0x70) {
        ngx_codeb_ws_fail(ws, 1002, "reserved bits set");
        return NGX_ERROR;
    }

    if (!(p[1] & 0x80)) {
        ngx_codeb_ws_fail(ws, 1002, "unmasked client frame");
        return NGX_ERROR;
    }

    if (opcode >= NGX_CODEB_WS_CLOSE && opcode <= NGX_CODEB_WS_PONG) {
        if (!fin || (p[1] & 0x7f) > 125) {
            ngx_codeb_ws_fail(ws, 1002, "invalid control frame");
            return NGX_ERROR;
        }

    } else if (opcode > NGX_CODEB_WS_BINARY) {
        ngx_codeb_ws_fail(ws, 1002, "reserved opcode");
        return NGX_ERROR;
    }

    *len = p[1] & 0x7f;
    *hlen = 2;

    if (*len == 126) {
        *hlen = 4;

    } else if (*len == 127) {
        *hlen = 10;
    }

    if (avail < *hlen) {
        return NGX_AGAIN;
    }

    if (*hlen > 2) {
        for (*len = 0, i = 2; i < *hlen; i++) {
            *len = (*len << 8) | p[i];
        }

        if (*len >> 63) {
            ngx_codeb_ws_fail(ws, 1002, "invalid length");
            return NGX_ERROR;
        }
    }

    if (opcode < NGX_CODEB_WS_CLOSE
        && *len + ws->msg_len > ws->conf->max_message)
    {
        ngx_codeb_ws_fail(ws, 1009, "message too large");
        return NGX_ERROR;
    }

    *hlen += 4;

    return NGX_OK;
}


static ngx_int_t
ngx_codeb_ws_frame(ngx_codeb_ws_t *ws, ngx_uint_t fin, ngx_uint_t opcode,
    u_char *payload, size_t len)
{
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                   "codeb ws: frame opcode %ui fin %ui, %uz bytes",
                   opcode, fin != 0, len);

    switch (opcode) {

    case NGX_CODEB_WS_PING:
        return ngx_codeb_ws_enqueue(ws, NGX_CODEB_WS_PONG, payload, len, 1);

    case NGX_CODEB_WS_PONG:
        return NGX_OK;

    case NGX_CODEB_WS_CLOSE:
        return ngx_codeb_ws_close_frame(ws, payload, len);

    case NGX_CODEB_WS_CONT:
        if (ws->msg_opcode == 0) {
            ngx_codeb_ws_fail(ws, 1002, "unexpected continuation frame");
            return NGX_ERROR;
        }

        return ngx_codeb_ws_fragment(ws, fin, payload, len);

    default:
        if (ws->msg_opcode != 0) {
            ngx_codeb_ws_fail(ws, 1002, "expected continuation frame");
            return NGX_ERROR;
        }

        if (!fin) {
            ws->msg_opcode = opcode;
            return ngx_codeb_ws_fragment(ws, fin, payload, len);
        }

        return ngx_codeb_ws_message(ws, opcode, payload, len);
    }
}


/* the client's close frame (RFC 6455 §5.5.1, §7.4): echoed, then close */
static ngx_int_t
ngx_codeb_ws_close_frame(ngx_codeb_ws_t *ws, u_char *payload, size_t len)
{
    ngx_uint_t  status;

    status = 1000;

    if (len) {
        status = (payload[0] << 8) | (len > 1 ? payload[1] : 0);

        if (len == 1
            || status < 1000 || status == 1004 || status == 1005
            || status == 1006 || (status > 1011 && status < 3000)
            || status > 4999)
        {
            ngx_codeb_ws_fail(ws, 1002, "invalid close frame");
            return NGX_ERROR;
        }

        if (!ngx_codeb_ws_utf8(payload + 2, len - 2)) {
            ngx_codeb_ws_fail(ws, 1007, "invalid UTF-8 in close reason");
            return NGX_ERROR;
        }
    }

    ws->client_closed = 1;
    ngx_codeb_ws_close(ws, status, NULL);

    return NGX_OK;
}


/* a fragment is joined; the total is bounded by max_message */
static ngx_int_t
ngx_codeb_ws_fragment(ngx_codeb_ws_t *ws, ngx_uint_t fin, u_char *payload,
    size_t len)
{
    u_char     *msg;
    size_t      size;
    ngx_int_t   rc;
    ngx_uint_t  opcode;

    if (ws->msg_len + len > ws->msg_size) {
        size = ngx_max(ws->msg_size * 2, ws->msg_len + len);
        size = ngx_min(size, ws->conf->max_message);
        size = ngx_max(size, 256);

        msg = ngx_alloc(size, ws->connection->log);
        if (msg == NULL) {
            return NGX_ERROR;
        }

        if (ws->msg) {
            ngx_memcpy(msg, ws->msg, ws->msg_len);
            ngx_free(ws->msg);
        }

        ws->msg = msg;
        ws->msg_size = size;
    }

    ngx_memcpy(ws->msg + ws->msg_len, payload, len);
    ws->msg_len += len;

    if (!fin) {
        return NGX_OK;
    }

    opcode = ws->msg_opcode;
    msg = ws->msg;
    len = ws->msg_len;

    ws->msg = NULL;
    ws->msg_len = 0;
    ws->msg_size = 0;
    ws->msg_opcode = 0;

    rc = ngx_codeb_ws_message(ws, opcode, msg, len);
    ngx_free(msg);

    return rc;
}


/* a whole message to the owner; a text message must be UTF-8 (§8.1) */
static ngx_int_t
ngx_codeb_ws_message(ngx_codeb_ws_t *ws, ngx_uint_t opcode, u_char *data,
    size_t len)
{
    if (opcode == NGX_CODEB_WS_TEXT && !ngx_codeb_ws_utf8(data, len)) {
        ngx_codeb_ws_fail(ws, 1007, "invalid UTF-8");
        return NGX_ERROR;
    }

    ws->on_message(ws, opcode, data, len);
    ngx_codeb_scratch_reset();

    return NGX_OK;
}


/* a protocol error: logged at info (it is the client's fault), then close */
static void
ngx_codeb_ws_fail(ngx_codeb_ws_t *ws, ngx_uint_t status, char *reason)
{
    ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                  "WebSocket: %s, closing with %ui", reason, status);

    if (ws->on_failed) {
        ws->on_failed(ws, status);
    }

    ngx_codeb_ws_close(ws, status, reason);
}


/*
 * from a timer, not from the request's own event handler: the posted
 * termination of the request must be run here
 */
static void
ngx_codeb_ws_terminate(ngx_codeb_ws_t *ws)
{
    ngx_connection_t  *c;

    c = ws->connection;

    ngx_http_finalize_request(ws->request, NGX_HTTP_CLOSE);
    ngx_http_run_posted_requests(c);
}


static void
ngx_codeb_ws_timer_handler(ngx_event_t *ev)
{
    ngx_msec_t       deadline, next;
    ngx_codeb_ws_t  *ws = ev->data;

    if (ws->lingering || ws->done) {
        ngx_codeb_ws_terminate(ws);
        return;
    }

    deadline = ws->last_seen + ws->conf->ping_timeout;

    if ((ngx_msec_int_t) (ngx_current_msec - deadline) >= 0) {
        ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                      "WebSocket peer silent for %M ms, closing",
                      ngx_current_msec - ws->last_seen);
        ngx_codeb_ws_terminate(ws);
        return;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - ws->next_ping) >= 0) {
        ws->next_ping = ngx_current_msec + ws->conf->ping_interval;

        if (ngx_codeb_ws_enqueue(ws, NGX_CODEB_WS_PING, NULL, 0, 1) != NGX_OK
            || ngx_codeb_ws_flush(ws) == NGX_ERROR)
        {
            ngx_codeb_ws_terminate(ws);
            return;
        }

        if (ws->on_tick) {
            ws->on_tick(ws);
            ngx_codeb_scratch_reset();
        }
    }

    next = ws->next_ping;
    if ((ngx_msec_int_t) (deadline - next) < 0) {
        next = deadline;
    }

    ngx_add_timer(ev, next - ngx_current_msec + 1);
}


static void
ngx_codeb_ws_cleanup(void *data)
{
    ngx_codeb_ws_t  *ws = data;

    ngx_codeb_ws_finish(ws);
}


static void
ngx_codeb_ws_finish(ngx_codeb_ws_t *ws)
{
    ngx_codeb_ws_out_t  *out, *next;

    ws->closing = 1;
    ws->done = 1;

    if (ws->timer.timer_set) {
        ngx_del_timer(&ws->timer);
    }

    if (ws->timer.posted) {
        ngx_delete_posted_event(&ws->timer);
    }

    if (ws->on_closed) {
        ws->on_closed(ws);
        ngx_codeb_scratch_reset();
        ws->on_closed = NULL;
    }

    for (out = ws->out; out; out = next) {
        next = out->next;
        ngx_free(out);
    }

    ws->out = NULL;

    if (ws->msg) {
        ngx_free(ws->msg);
        ws->msg = NULL;
    }

    ngx_codeb_ws_in_free(ws);
}


/* RFC 3629 well-formed UTF-8: no overlongs, surrogates or > U+10FFFF */
static ngx_uint_t
ngx_codeb_ws_utf8(u_char *p, size_t len)
{
    u_char  *end, c;
    size_t   n, i;
    uint32_t cp, min;

    end = p + len;

    while (p < end) {
        c = *p++;

        if (c < 0x80) {
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            n = 1; cp = c & 0x1f; min = 0x80;

        } else if ((c & 0xf0) == 0xe0) {
            n = 2; cp = c & 0x0f; min = 0x800;

        } else if ((c & 0xf8) == 0xf0) {
            n = 3; cp = c & 0x07; min = 0x10000;

        } else {
            return 0;
        }

        if ((size_t) (end - p) < n) {
            return 0;
        }

        for (i = 0; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3f);
        }

        p += n;

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}

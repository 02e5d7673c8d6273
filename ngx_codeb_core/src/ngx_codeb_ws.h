/*
 * WebSocket server side, RFC 6455 (docs/design.md "WebSocket"): the
 * handshake (ngx_codeb_ws_handshake.c) and the frames (ngx_codeb_ws.c).
 */

#ifndef _NGX_CODEB_WS_H_INCLUDED_
#define _NGX_CODEB_WS_H_INCLUDED_


/* RFC 6455 §5.2 opcodes */
#define NGX_CODEB_WS_CONT        0x0
#define NGX_CODEB_WS_TEXT        0x1
#define NGX_CODEB_WS_BINARY      0x2
#define NGX_CODEB_WS_CLOSE       0x8
#define NGX_CODEB_WS_PING        0x9
#define NGX_CODEB_WS_PONG        0xa

/* not in nginx 1.22's list */
#define NGX_HTTP_UPGRADE_REQUIRED  426


typedef struct ngx_codeb_ws_s      ngx_codeb_ws_t;
typedef struct ngx_codeb_ws_out_s  ngx_codeb_ws_out_t;

typedef struct {
    size_t                      max_message;     /* bytes, after reassembly */
    size_t                      max_queue;       /* bytes queued for output */
    ngx_msec_t                  ping_interval;   /* ms */
    ngx_msec_t                  ping_timeout;    /* ms without any frame */
    ngx_str_t                   subprotocol;     /* required and echoed if
                                                    set (RFC 6455 §4.2.2) */
} ngx_codeb_ws_conf_t;

/* a complete message: opcode TEXT (valid UTF-8) or BINARY */
typedef void (*ngx_codeb_ws_message_pt)(ngx_codeb_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len);
/* called once when the connection is gone; ws is freed afterwards */
typedef void (*ngx_codeb_ws_closed_pt)(ngx_codeb_ws_t *ws);
/* called at every ping interval while the peer is alive */
typedef void (*ngx_codeb_ws_tick_pt)(ngx_codeb_ws_t *ws);
/*
 * called when the peer broke the protocol, before the close frame with
 * status (1002, 1007, 1009) is queued: a last message may still be sent
 */
typedef void (*ngx_codeb_ws_failed_pt)(ngx_codeb_ws_t *ws, ngx_uint_t status);

struct ngx_codeb_ws_s {
    ngx_http_request_t         *request;
    ngx_connection_t           *connection;
    ngx_codeb_ws_conf_t        *conf;
    void                       *data;            /* owner */

    ngx_codeb_ws_message_pt     on_message;
    ngx_codeb_ws_closed_pt      on_closed;
    ngx_codeb_ws_tick_pt        on_tick;
    ngx_codeb_ws_failed_pt      on_failed;

    ngx_buf_t                   in;              /* incomplete frame */
    u_char                     *msg;             /* fragments being joined */
    size_t                      msg_len;
    size_t                      msg_size;
    ngx_uint_t                  msg_opcode;

    ngx_codeb_ws_out_t         *out;             /* queued frames */
    ngx_codeb_ws_out_t        **out_last;
    size_t                      out_bytes;

    ngx_event_t                 timer;           /* ping / timeout / linger */
    ngx_msec_t                  last_seen;
    ngx_msec_t                  next_ping;

    unsigned                    closing:1;       /* no more messages */
    unsigned                    lingering:1;     /* close frame flushed */
    unsigned                    busy:1;          /* inside a handler */
    unsigned                    unparsed:1;      /* in holds new bytes */
    unsigned                    done:1;          /* finalize when idle */
    unsigned                    client_closed:1; /* the client sent a close
                                                    frame first */
};

/*
 * Checks the upgrade request (RFC 6455 §4.2.1) and answers it through
 * nginx's header filters:
 * NGX_OK: ws is set, the 101 is on its way, the request is owned by the
 *   WebSocket (the content handler must return NGX_DONE);
 * an HTTP status (400, 405, 426, 500): the handshake is refused, nothing
 *   sent; ngx_codeb_ws_refuse() answers it.  A body (which a handshake
 *   may not have) is discarded and refused with 400.
 */
ngx_int_t ngx_codeb_ws_accept(ngx_http_request_t *r, ngx_codeb_ws_conf_t *conf,
    ngx_codeb_ws_t **ws);
/* the JSON error answer for a status ngx_codeb_ws_accept() returned */
ngx_int_t ngx_codeb_ws_refuse(ngx_http_request_t *r, ngx_int_t status);
/* 1 if the request asks for a protocol upgrade */
ngx_uint_t ngx_codeb_ws_is_upgrade(ngx_http_request_t *r);
/*
 * Queues one message as one frame, opcode NGX_CODEB_WS_TEXT (data must be
 * UTF-8) or NGX_CODEB_WS_BINARY.  NGX_DECLINED: the peer is too slow (the
 * queue would exceed max_queue) and the connection is being closed;
 * NGX_ERROR: the connection is closing, or no memory.
 */
ngx_int_t ngx_codeb_ws_send(ngx_codeb_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len);
/*
 * sends a close frame (RFC 6455 §7.4 status, 0 for none; reason at most
 * 123 bytes) and closes the connection
 */
void ngx_codeb_ws_close(ngx_codeb_ws_t *ws, ngx_uint_t status, char *reason);

/* internal to ngx_codeb_ws*.c: the connection after its 101 */
void ngx_codeb_ws_start(ngx_codeb_ws_t *ws);


#endif /* _NGX_CODEB_WS_H_INCLUDED_ */

/*
 * ngx_codeb_core: shared pieces of the CodeB modules.
 *
 * Loaded first (load_module order); the other CodeB modules resolve these
 * symbols at dlopen() time (nginx opens modules RTLD_GLOBAL).
 */

#ifndef _NGX_CODEB_CORE_H_INCLUDED_
#define _NGX_CODEB_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/* ---- tenant configuration (server{} level, ngx_codeb_core_module) ---- */

typedef struct {
    ngx_str_t                   number;
    ngx_str_t                   name;
    ngx_str_t                   mode;        /* e.g. "gemini-live", "tts" */
    ngx_str_t                   visibility;  /* "anonymous" | "signed-in" */
    ngx_str_t                   user;        /* office user it rings */
} ngx_codeb_vnum_t;


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   stream_id;
} ngx_codeb_camera_t;


/* an inbound route row: PROTOCOL.md §1 "Bridge HMAC envelope" */
typedef struct {
    ngx_str_t                   did;         /* "*" matches any */
    ngx_str_t                   from;        /* "*", "anonymous" or a number */
    ngx_str_t                   user;
} ngx_codeb_route_t;


typedef struct {
    ngx_str_t                   name;            /* codeb_tenant */

    ngx_array_t                *turn_uris;       /* ngx_str_t */
    ngx_array_t                *stun_uris;       /* ngx_str_t */
    ngx_str_t                   turn_secret;
    time_t                      turn_ttl;        /* s */

    ngx_str_t                   bridge_secret;
    ngx_str_t                   admin_secret;

    ngx_str_t                   oidc_issuer;
    ngx_str_t                   oidc_audience;
    ngx_str_t                   oidc_hs256_secret;
    ngx_str_t                   oidc_rs256_key;  /* PEM contents */

    ngx_array_t                *vnums;           /* ngx_codeb_vnum_t */
    ngx_array_t                *cameras;         /* ngx_codeb_camera_t */
    ngx_array_t                *routes;          /* ngx_codeb_route_t */
} ngx_codeb_tenant_t;


typedef struct {
    ngx_str_t                   redis;           /* unix:/path or host:port */
    ngx_str_t                   host_id;         /* default: gethostname() */
    ngx_msec_t                  redis_timeout;   /* ms, connect + reply */
    ngx_str_t                   worker_id;       /* "<host_id>:<pid>" */

    ngx_array_t                *scripts;    /* ngx_codeb_redis_script_t * */
    ngx_array_t                *up_handlers;     /* ngx_codeb_redis_up_pt */
    ngx_array_t                *bus_handlers;    /* ngx_codeb_bus_kind_t */
} ngx_codeb_main_conf_t;


extern ngx_module_t  ngx_codeb_core_module;


/* the tenant a request belongs to; NULL when none is configured */
ngx_codeb_tenant_t *ngx_codeb_tenant(ngx_http_request_t *r);

/* the build stamp: "<git describe> <UTC date>" */
char *ngx_codeb_build(void);

/* "<host_id>:<pid>", valid in worker processes */
ngx_str_t *ngx_codeb_worker_id(void);


/* ---- Redis (ngx_codeb_redis.c) ---- */

/*
 * A Lua script the modules register at configuration time; it is loaded
 * (SCRIPT LOAD) on every (re)connect and run with EVALSHA.
 */
typedef struct {
    ngx_str_t                   body;
    u_char                      sha1[41];        /* hex, NUL-terminated */
} ngx_codeb_redis_script_t;

/* called (in the worker) whenever both Redis links are up again */
typedef void (*ngx_codeb_redis_up_pt)(void);

ngx_int_t ngx_codeb_redis_add_script(ngx_conf_t *cf,
    ngx_codeb_redis_script_t *script);
ngx_int_t ngx_codeb_redis_on_up(ngx_conf_t *cf, ngx_codeb_redis_up_pt handler);

/* command arguments, filled with ngx_codeb_redis_arg() */
#define NGX_CODEB_REDIS_MAX_ARGS  24

typedef struct {
    int                         argc;
    const char                 *argv[NGX_CODEB_REDIS_MAX_ARGS];
    size_t                      lens[NGX_CODEB_REDIS_MAX_ARGS];
} ngx_codeb_redis_args_t;

/* appends one argument (not copied: it must live until the call) */
void ngx_codeb_redis_arg(ngx_codeb_redis_args_t *a, void *data, size_t len);
#define ngx_codeb_redis_arg_str(a, s)                                        \
    ngx_codeb_redis_arg(a, (s)->data, (s)->len)

/* 1 when the command link is connected and usable */
ngx_uint_t ngx_codeb_redis_ready(void);

/*
 * Queues a command on the worker's command link.  cb may be NULL; it is
 * called with reply NULL when the link drops before the reply arrives.
 * Returns NGX_ERROR when Redis is not connected (nothing is queued).
 */
ngx_int_t ngx_codeb_redis_command(redisCallbackFn *cb, void *data, int argc,
    const char **argv, const size_t *argvlen);
/* EVALSHA of a registered script; a holds KEYS then ARGV */
ngx_int_t ngx_codeb_redis_eval(ngx_codeb_redis_script_t *script,
    redisCallbackFn *cb, void *data, int nkeys, ngx_codeb_redis_args_t *a);


/* ---- bus: messages between workers and hosts (ngx_codeb_bus.c) ---- */

/*
 * A bus message is "<kind> <header words...>\n<body>".  Every worker
 * subscribes to its own channel "codeb:w:<host_id>:<pid>"; room fan-out is
 * done by the publishing Lua scripts, which know the workers of a room.
 * Handlers get the whole message; they are registered by kind at
 * configuration time.
 */
typedef void (*ngx_codeb_bus_handler_pt)(ngx_str_t *header, ngx_str_t *body);

ngx_int_t ngx_codeb_bus_on(ngx_conf_t *cf, ngx_str_t *kind,
    ngx_codeb_bus_handler_pt handler);
/* publishes to the worker channel of worker_id ("<host>:<pid>") */
ngx_int_t ngx_codeb_bus_send(ngx_str_t *worker_id, ngx_str_t *msg);
/* delivers one message received on this worker's channel */
void ngx_codeb_bus_dispatch(u_char *msg, size_t len);
/* channel name of this worker, for the subscriber link */
ngx_str_t *ngx_codeb_bus_channel(void);


/* ---- WebSocket, RFC 6455 server side (ngx_codeb_ws.c) ---- */

typedef struct ngx_codeb_ws_s      ngx_codeb_ws_t;
typedef struct ngx_codeb_ws_out_s  ngx_codeb_ws_out_t;

typedef struct {
    size_t                      max_message;     /* bytes, after reassembly */
    size_t                      max_queue;       /* bytes queued for output */
    ngx_msec_t                  ping_interval;   /* ms */
    ngx_msec_t                  ping_timeout;    /* ms without any frame */
    ngx_str_t                   subprotocol;     /* required if set */
} ngx_codeb_ws_conf_t;

/* a complete message: opcode 0x1 (text, valid UTF-8) or 0x2 (binary) */
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
};

/*
 * Checks the upgrade request (RFC 6455 §4.2.1) and answers it:
 * NGX_OK: ws is set, the 101 has been sent, the request is owned by the
 *   WebSocket (the content handler must return NGX_DONE);
 * an HTTP status (400, 405, 426): the handshake is refused, nothing sent.
 */
ngx_int_t ngx_codeb_ws_accept(ngx_http_request_t *r, ngx_codeb_ws_conf_t *conf,
    ngx_codeb_ws_t **ws);
/* 1 if the request asks for a WebSocket upgrade */
ngx_uint_t ngx_codeb_ws_is_upgrade(ngx_http_request_t *r);
/*
 * Queues one text frame.  NGX_DECLINED: the peer is too slow (the queue
 * would exceed max_queue) and the connection is being closed;
 * NGX_ERROR: the connection is closing.
 */
ngx_int_t ngx_codeb_ws_send(ngx_codeb_ws_t *ws, u_char *data, size_t len);
/* sends a close frame (RFC 6455 §7.4 status) and closes the connection */
void ngx_codeb_ws_close(ngx_codeb_ws_t *ws, ngx_uint_t status, char *reason);


/* ---- JSON with yajl (ngx_codeb_json.c) ---- */

typedef enum {
    NGX_CODEB_JSON_NONE = 0,
    NGX_CODEB_JSON_NULL,
    NGX_CODEB_JSON_BOOL,
    NGX_CODEB_JSON_NUMBER,
    NGX_CODEB_JSON_STRING,
    NGX_CODEB_JSON_OBJECT,
    NGX_CODEB_JSON_ARRAY
} ngx_codeb_json_type_e;

/* one member of a parsed object; raw is the exact source text of the value */
typedef struct {
    ngx_str_t                   key;
    ngx_codeb_json_type_e       type;
    ngx_str_t                   raw;
    ngx_str_t                   str;     /* unescaped, for strings */
    ngx_flag_t                  boolean;
} ngx_codeb_json_member_t;

/*
 * Parses text as one JSON object (RFC 8259) and returns its top-level
 * members in order; nested values are available as raw text.
 * NGX_DECLINED: not valid JSON or not an object; NGX_ERROR: no memory.
 */
ngx_int_t ngx_codeb_json_object(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_array_t **members);
/* the member named key, or NULL */
ngx_codeb_json_member_t *ngx_codeb_json_get(ngx_array_t *members, char *key);
/* the member named key if it has the given type, else NULL */
ngx_codeb_json_member_t *ngx_codeb_json_get_type(ngx_array_t *members,
    char *key, ngx_codeb_json_type_e type);
/* number member as an integer; NGX_ERROR if absent or not an integer */
ngx_int_t ngx_codeb_json_int(ngx_array_t *members, char *key, int64_t *value);


/* ---- crypto (ngx_codeb_crypto.c) ---- */

/* 1 when a and b are equal; time depends only on the lengths */
ngx_uint_t ngx_codeb_equal_secret(u_char *a, size_t alen, u_char *b,
    size_t blen);
/* HMAC-SHA256 of data as 64 lowercase hex chars into hex */
void ngx_codeb_hmac_sha256_hex(ngx_str_t *key, ngx_str_t *data, u_char *hex);
/* HMAC-SHA1 of data, base64 (28 chars) into out */
void ngx_codeb_hmac_sha1_base64(ngx_str_t *key, ngx_str_t *data,
    ngx_str_t *out);
/* n random bytes as 2n lowercase hex chars; NGX_ERROR if no entropy */
ngx_int_t ngx_codeb_random_hex(u_char *out, size_t n);
/* n random chars of [a-z0-9] */
ngx_int_t ngx_codeb_random_alnum(u_char *out, size_t n);
/* SHA-1 of data as hex (41 bytes with NUL) */
void ngx_codeb_sha1_hex(u_char *data, size_t len, u_char *hex);


/* ---- OIDC tokens (ngx_codeb_jwt.c) ---- */

/*
 * Validates a compact JWS against the tenant's OIDC settings: algorithm
 * pinned to the configured key (HS256 secret or RS256 public key), `exp`
 * required and in the future, `iss` / `aud` equal to the configured ones
 * when set.  On NGX_OK, identity is the token's preferred_username, else
 * email, else sub (allocated from pool) and admin tells whether the token
 * carries role "admin" (claim "role" or an element of "roles").
 * NGX_DECLINED: invalid token (reason logged at info); NGX_ERROR: no memory.
 */
ngx_int_t ngx_codeb_jwt_verify(ngx_codeb_tenant_t *t, ngx_str_t *token,
    ngx_pool_t *pool, ngx_log_t *log, ngx_str_t *identity, ngx_flag_t *admin);


/* ---- small HTTP helpers (ngx_codeb_http.c) ---- */

/* sends a complete response with Cache-Control: no-store */
ngx_int_t ngx_codeb_http_send(ngx_http_request_t *r, ngx_uint_t status,
    char *content_type, u_char *body, size_t len);
/* {"error":code,"error_description":text} with status */
ngx_int_t ngx_codeb_http_error(ngx_http_request_t *r, ngx_uint_t status,
    char *code, char *text);
/* value of request header name, or NULL */
ngx_table_elt_t *ngx_codeb_http_header(ngx_http_request_t *r, char *name);
/* the token of "Authorization: Bearer <token>", or an empty string */
void ngx_codeb_http_bearer(ngx_http_request_t *r, ngx_str_t *token);


#endif /* _NGX_CODEB_CORE_H_INCLUDED_ */

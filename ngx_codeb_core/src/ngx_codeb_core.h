/*
 * ngx_codeb_core: the platform the other CodeB modules stand on
 * (docs/design.md "Core").
 *
 * One shared object, loaded first (load_module order), holding two
 * modules: ngx_codeb_module (a core module: Redis, the bus, the worker
 * identity; usable from http{} and stream{} modules alike) and
 * ngx_codeb_core_module (an http module: the http{} Redis directives and
 * the server{}-level tenant directives).  The other CodeB modules resolve
 * these symbols at dlopen() time (nginx opens modules RTLD_GLOBAL).
 */

#ifndef _NGX_CODEB_CORE_H_INCLUDED_
#define _NGX_CODEB_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


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


/* an inbound route row: docs/signal.md "Bridge webhooks" */
typedef struct {
    ngx_str_t                   did;         /* "*" matches any */
    ngx_str_t                   from;        /* "*", "anonymous" or a number */
    ngx_str_t                   user;
} ngx_codeb_route_t;


/* the platform IdP's signing key (docs/api.md "Token endpoint") */
typedef struct {
    ngx_str_t                   private_pem;     /* EC P-256, PKCS#8 */
    ngx_str_t                   public_pem;      /* SubjectPublicKeyInfo */
    ngx_str_t                   x;               /* JWK, base64url */
    ngx_str_t                   y;
    ngx_str_t                   kid;             /* RFC 7638 thumbprint */
} ngx_codeb_oidc_key_t;


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
    ngx_str_t                   oidc_signing_pem;
    ngx_codeb_oidc_key_t       *oidc_key;        /* from oidc_signing_pem */

    ngx_array_t                *vnums;           /* ngx_codeb_vnum_t */
    ngx_array_t                *cameras;         /* ngx_codeb_camera_t */
    ngx_array_t                *routes;          /* ngx_codeb_route_t */
} ngx_codeb_tenant_t;


/* ---- cycle-level settings (ngx_codeb_module) ---- */

typedef struct {
    ngx_str_t                   redis;           /* as configured, for logs */
    u_char                     *redis_path;      /* unix socket, or NULL */
    u_char                     *redis_host;      /* numeric address */
    int                         redis_port;
    ngx_str_t                   host_id;         /* default: gethostname() */
    ngx_msec_t                  redis_timeout;   /* ms, connect + reply */

    ngx_array_t                *scripts;    /* ngx_codeb_redis_script_t * */
    ngx_array_t                *up_handlers;     /* ngx_codeb_redis_up_pt */
    ngx_array_t                *bus_handlers;    /* ngx_codeb_bus_kind_t */

    ngx_str_t                   required_by;     /* "<directive> in f:l" */
} ngx_codeb_conf_t;


extern ngx_module_t  ngx_codeb_module;
extern ngx_module_t  ngx_codeb_core_module;


/* the cycle-level settings while the configuration is read */
#define ngx_codeb_conf(cf)                                                   \
    ((ngx_codeb_conf_t *) ngx_get_conf((cf)->cycle->conf_ctx, ngx_codeb_module))

/*
 * Records that the directive being read needs codeb_redis; a configuration
 * without one is refused once it is read whole (the directives may come in
 * any order).  Use from any context (http{}, stream{}).
 */
ngx_int_t ngx_codeb_require_redis(ngx_conf_t *cf);

/* the tenant a request belongs to; NULL when none is configured */
ngx_codeb_tenant_t *ngx_codeb_tenant(ngx_http_request_t *r);

/*
 * a virtual number row as stored in Redis (P vnums: number -> JSON
 * {number, name, mode, visibility, user}; docs/signal.md "Plain HTTP"):
 * name defaults to the number, mode to "tts", visibility to "signed-in";
 * strings point into text's copy in pool.  NGX_DECLINED: not an object
 * with a string number.
 */
ngx_int_t ngx_codeb_vnum_parse(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_codeb_vnum_t *vn);

/* the build stamp: "<git describe> <UTC date>" */
char *ngx_codeb_build(void);

/* epoch ms now (nginx's cached time, ngx_timeofday()) */
uint64_t ngx_codeb_now_ms(void);

/* "<host_id>:<pid>", valid in worker processes */
ngx_str_t *ngx_codeb_worker_id(void);


#include "ngx_codeb_redis.h"
#include "ngx_codeb_json.h"
#include "ngx_codeb_ws.h"


/* ---- outbound calls placed by ngx_codeb_sipws for other modules ---- */

/*
 * A call from the platform to a number through the tenant's trunk
 * (docs/sip.md "Calls placed by the platform").  The caller fills the
 * "in" members and keeps o alive until its handler gets
 * NGX_CODEB_ORIGINATE_ENDED, after which ngx_codeb_sipws no longer
 * touches it.  All times are epoch ms.
 */
typedef struct ngx_codeb_originate_s  ngx_codeb_originate_t;

typedef enum {
    NGX_CODEB_ORIGINATE_PROGRESS = 0,   /* the trunk's first answer came
                                           (o->status): it is reachable */
    NGX_CODEB_ORIGINATE_ANSWERED,       /* 2xx: media up, greeting on */
    NGX_CODEB_ORIGINATE_ENDED           /* over: o->outcome, o->status */
} ngx_codeb_originate_event_e;

typedef void (*ngx_codeb_originate_pt)(ngx_codeb_originate_t *o,
    ngx_codeb_originate_event_e event);

struct ngx_codeb_originate_s {
    /* in */
    ngx_str_t                   tenant;      /* the tenant's name */
    ngx_str_t                   number;      /* E.164, "+" and digits */
    ngx_str_t                   display;     /* From display name; no
                                                quotes or controls */
    ngx_str_t                   greeting;    /* WAV path, NUL-terminated */
    ngx_msec_t                  max_talk;    /* ms after the answer */
    ngx_codeb_originate_pt      handler;
    void                       *data;

    /* out */
    int                         status;      /* the last SIP status; 0:
                                                none came */
    char const                 *reason;      /* its phrase, or why not;
                                                valid in the handler */
    ngx_str_t                   trunk;       /* the trunk's name */
    uint64_t                    invite_ms;
    uint64_t                    answer_ms;   /* 0: not answered */
    uint64_t                    end_ms;
    char                       *outcome;     /* ENDED: "finished",
                                                "far-hangup", "max-duration",
                                                "no-answer", "cancelled" */
    void                       *call;        /* ngx_codeb_sipws's, while
                                                it goes on */
};

/*
 * Set by ngx_codeb_sipws in worker processes; NULL where it is not
 * loaded.  start: NGX_OK, the call is placed (events follow, never from
 * within start); NGX_DECLINED: the tenant has no trunk for the number or
 * no SIP settings; NGX_ERROR: no memory.  stop: cancels a call that rings
 * or hangs up one that was answered (outcome "cancelled"); ENDED follows.
 */
extern ngx_int_t (*ngx_codeb_originate_start)(ngx_codeb_originate_t *o);
extern void (*ngx_codeb_originate_stop)(ngx_codeb_originate_t *o);


/* ---- inbound routes (ngx_codeb_routes.c) ---- */

/*
 * The inbound routes in Redis (ngx_codeb_routes.c, docs/api.md "Inbound
 * routes"): ngx_codeb_routes_init() registers the script (from any
 * module's configuration, once); ngx_codeb_routes_run() runs op ("match",
 * "list", "post", "put", "delete") with its n args for tenant t, the
 * table seeded from t's codeb_inbound_route rows when Redis has none yet.
 * NGX_ERROR: no memory or Redis down (cb is not called).
 */
ngx_int_t ngx_codeb_routes_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_routes_run(ngx_codeb_tenant_t *t, ngx_pool_t *pool,
    char *op, ngx_str_t *args, ngx_uint_t n, redisCallbackFn *cb,
    void *data);


/* ---- crypto (ngx_codeb_crypto.c) ---- */

/* 1 when a and b are equal; time depends only on the lengths */
ngx_uint_t ngx_codeb_equal_secret(u_char *a, size_t alen, u_char *b,
    size_t blen);
/* HMAC-SHA256 (RFC 2104) of data as 64 lowercase hex chars into hex */
void ngx_codeb_hmac_sha256_hex(ngx_str_t *key, ngx_str_t *data, u_char *hex);
/* HMAC-SHA1 of data, base64 (28 chars) into out */
void ngx_codeb_hmac_sha1_base64(ngx_str_t *key, ngx_str_t *data,
    ngx_str_t *out);
/* n (<= 64) random bytes as 2n lowercase hex chars; NGX_ERROR: no entropy */
ngx_int_t ngx_codeb_random_hex(u_char *out, size_t n);
/* n random chars of [a-z0-9], each equally likely; NGX_ERROR: no entropy */
ngx_int_t ngx_codeb_random_alnum(u_char *out, size_t n);
/* SHA-1 of data as hex (41 bytes with NUL) */
void ngx_codeb_sha1_hex(u_char *data, size_t len, u_char *hex);
/* SHA-256 of data as hex (65 bytes with NUL) */
void ngx_codeb_sha256_hex(u_char *data, size_t len, u_char *hex);
/*
 * the IdP key of a PEM EC P-256 private key: its public PEM, JWK x / y
 * and kid (RFC 7517, RFC 7638), from pool; NULL with *err set
 */
ngx_codeb_oidc_key_t *ngx_codeb_oidc_key(ngx_pool_t *pool, ngx_str_t *pem,
    char **err);


/* ---- OIDC tokens (ngx_codeb_jwt.c) ---- */

/*
 * Validates a compact JWS (RFC 7515) against the tenant's OIDC settings:
 * algorithm pinned to the configured key (HS256 secret or RS256 public
 * key), `exp` required and in the future, `iss` / `aud` equal to the
 * configured ones when set; or ES256 with the tenant's own IdP key
 * (codeb_oidc_signing_key), `exp` and `aud` NGX_CODEB_OIDC_CLIENT.  On
 * NGX_OK, identity is the token's preferred_username, else email, else
 * sub (allocated from pool) and admin
 * tells whether the token carries role "admin" (claim "role" or an element
 * of "roles").  NGX_DECLINED: invalid token (reason logged at info);
 * NGX_ERROR: no memory.
 */
ngx_int_t ngx_codeb_jwt_verify(ngx_codeb_tenant_t *t, ngx_str_t *token,
    ngx_pool_t *pool, ngx_log_t *log, ngx_str_t *identity, ngx_flag_t *admin);

/* the audience of the platform IdP's tokens (its one client) */
#define NGX_CODEB_OIDC_CLIENT  "codeb-admin"


/* ---- HTTP helpers (ngx_codeb_http.c) ---- */

/*
 * Sends a complete response with Cache-Control: no-store (docs/signal.md
 * "Plain HTTP").  Returns what a content handler returns.
 */
ngx_int_t ngx_codeb_http_send(ngx_http_request_t *r, ngx_uint_t status,
    char *content_type, u_char *body, size_t len);
/*
 * Closes the object open in g (ngx_codeb_gen()) and sends it as
 * application/json with status.
 */
ngx_int_t ngx_codeb_http_json(ngx_http_request_t *r, ngx_uint_t status,
    yajl_gen g);
/* {"error": code, "error_description": text} with status, via yajl */
ngx_int_t ngx_codeb_http_error(ngx_http_request_t *r, ngx_uint_t status,
    char *code, char *text);
/* the request header name (any case), or NULL */
ngx_table_elt_t *ngx_codeb_http_header(ngx_http_request_t *r, char *name);
/* the token of "Authorization: Bearer <token>", or an empty string */
void ngx_codeb_http_bearer(ngx_http_request_t *r, ngx_str_t *token);

/* called with the whole request body in one piece (NUL-terminated) */
typedef ngx_int_t (*ngx_codeb_http_body_pt)(ngx_http_request_t *r,
    ngx_str_t *body);

/*
 * Reads the request body (at most max bytes, held in memory) and then
 * runs handler(r, body), finalizing the request with its result.  A larger
 * body is answered 413 without reading it.  Returns what the content
 * handler returns (NGX_DONE while reading).
 */
ngx_int_t ngx_codeb_http_read_body(ngx_http_request_t *r, size_t max,
    ngx_codeb_http_body_pt handler);

/*
 * Runs a Redis command (script NULL) or a registered script for r with
 * cb(ac, reply, r) as its reply handler, r kept alive meanwhile (cb
 * finalizes it).  Returns NGX_DONE, or the 503 answer when Redis is not
 * connected.
 */
ngx_int_t ngx_codeb_http_redis(ngx_http_request_t *r,
    ngx_codeb_redis_script_t *script, redisCallbackFn *cb, int nkeys,
    ngx_codeb_redis_args_t *a);
/*
 * 503 {"error": "unavailable"}: the state store could not answer (reply
 * NULL, or a Redis error, which is logged)
 */
ngx_int_t ngx_codeb_http_unavailable(ngx_http_request_t *r, void *reply);
/*
 * The worker's generator for the answer to r, once the Redis reply has
 * type (REDIS_REPLY_*); else NULL, r finalized: 503 as
 * ngx_codeb_http_unavailable() (no reply, an error, another type), 500
 * (no memory).  For reply handlers.
 */
yajl_gen ngx_codeb_http_reply_gen(ngx_http_request_t *r, void *reply,
    int type);

/*
 * Runs handler(r) once the worker's Redis links are up: at once when they
 * are, else when they come up, or after codeb_redis_timeout when they do
 * not (the handler then finds Redis down and answers as it does then).
 * The request waits meanwhile and is finalized with the handler's result.
 * For requests that need Redis right after a start or a reconnect.
 */
ngx_int_t ngx_codeb_http_with_redis(ngx_http_request_t *r,
    ngx_http_handler_pt handler);


#endif /* _NGX_CODEB_CORE_H_INCLUDED_ */

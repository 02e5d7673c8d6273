/*
 * ngx_codeb_api: the platform REST API under /api.ashx/v1 (docs/api.md).
 *
 * One location handler (codeb_api) routes by method and path through one
 * table (ngx_codeb_api_routes), which is also what GET /api.ashx/v1 and
 * the OpenAPI document describe, so the description cannot drift from
 * what exists.  Every answer comes from core's JSON generator with
 * Cache-Control: no-store; every request body is read (bounded) or
 * discarded.
 */

#ifndef _NGX_CODEB_API_H_INCLUDED_
#define _NGX_CODEB_API_H_INCLUDED_


#include "ngx_codeb_core.h"

#if !(NGX_THREADS)
#error "ngx_codeb_api needs nginx built with threads (--with-threads)"
#endif

#include <ngx_thread_pool.h>


/* a request body larger than this is 413 (bytes) */
#define NGX_CODEB_API_MAX_BODY      65536
/* a path parameter longer than this is 400 (bytes, decoded) */
#define NGX_CODEB_API_MAX_PARAM     128

/* route flags */
#define NGX_CODEB_API_PUBLIC        0x01     /* no bearer needed */
#define NGX_CODEB_API_BODY          0x02     /* a JSON object body */
#define NGX_CODEB_API_OIDC          0x04     /* an OIDC bearer, not ak_ */
#define NGX_CODEB_API_BODY_OPT      0x08     /* with BODY: may be empty */


typedef struct ngx_codeb_api_ctx_s  ngx_codeb_api_ctx_t;

/* codeb_admin_user: an admin of the tenant's own IdP */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   hash;        /* crypt(3), NUL-terminated */
} ngx_codeb_api_admin_t;

/* the API settings of a tenant's server{} (the one with codeb_api) */
typedef struct {
    ngx_codeb_tenant_t         *tenant;      /* core's, of that server */
    ngx_array_t                *admins;      /* ngx_codeb_api_admin_t */
    ngx_flag_t                  webhook_private;
    ngx_str_t                   webhook_retry;   /* "[5000,30000,120000]" */
    ngx_str_t                   transcripts_dir; /* NUL-terminated; or "" */
    ngx_str_t                   greeting;    /* WAV path, NUL-terminated */
} ngx_codeb_api_srv_conf_t;

typedef ngx_int_t (*ngx_codeb_api_handler_pt)(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);

typedef struct {
    ngx_uint_t                  method;      /* NGX_HTTP_GET, ... */
    char                       *path;        /* "/v1/api-keys/{id}" */
    char                       *area;
    char                       *description;
    ngx_uint_t                  flags;
    ngx_codeb_api_handler_pt    handler;
} ngx_codeb_api_route_t;

struct ngx_codeb_api_ctx_s {
    ngx_codeb_tenant_t         *tenant;
    ngx_codeb_api_route_t      *route;
    ngx_str_t                   param;       /* the first {..} segment */
    ngx_str_t                   param2;      /* the second one, if any */
    ngx_codeb_api_srv_conf_t   *conf;        /* of the request's server */
    ngx_array_t                *body;        /* ngx_codeb_json_member_t */
    ngx_str_t                   raw_body;    /* its bytes */
    ngx_str_t                   identity;    /* the token's user, or the
                                                API key's name */
    unsigned                    by_key:1;    /* authorized by an ak_ key */
    unsigned                    bad_body:1;  /* not a JSON object */
    void                       *data;        /* the handler's, while it
                                                waits for Redis */
};


extern ngx_module_t            ngx_codeb_api_module;
extern ngx_codeb_api_route_t   ngx_codeb_api_routes[];


/* the route's handler once the bearer is good (400 for a bad body) */
ngx_int_t ngx_codeb_api_run(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx);
/* NGX_OK for the form of our ids (API keys, webhooks): 16 lowercase hex */
ngx_int_t ngx_codeb_api_id(ngx_str_t *id);
/* NGX_OK when id is lowercase hex digits only (and not empty) */
ngx_int_t ngx_codeb_api_hex(ngx_str_t *id);
/* the body's member key of any type, either case of its first letter */
ngx_codeb_json_member_t *ngx_codeb_api_member(ngx_codeb_api_ctx_t *ctx,
    char *key);
/* "GET", "POST", ... of an NGX_HTTP_* method */
char *ngx_codeb_api_method_name(ngx_uint_t method);

/*
 * ?limit= (1..500, default 50) and ?offset= (>= 0, default 0) of r;
 * NGX_DECLINED after answering 400 naming the bad one (*rc holds the
 * answer).
 */
ngx_int_t ngx_codeb_api_page(ngx_http_request_t *r, ngx_int_t *limit,
    ngx_int_t *offset, ngx_int_t *rc);
/*
 * closes the "data" array open in g and writes total, limit, offset and
 * next (the relative URL of the next page, with r's other arguments, or
 * null), then sends it 200
 */
ngx_int_t ngx_codeb_api_page_send(ngx_http_request_t *r, yajl_gen g,
    ngx_int_t total, ngx_int_t limit, ngx_int_t offset);
/*
 * A page script's answer {total, records}: _open() checks it (else r is
 * finalized with 503) and returns the worker's generator with "data": [
 * open, NULL when r is finalized; the caller writes the items of
 * rep->element[1], then _close() sends the envelope and finalizes r.
 */
yajl_gen ngx_codeb_api_page_open(ngx_http_request_t *r, redisReply *rep);
void ngx_codeb_api_page_close(ngx_http_request_t *r, yajl_gen g,
    redisReply *rep);
/*
 * the string member key of the body, matched in either case of its first
 * letter ("name" or "Name"); NULL when absent or not a string
 */
ngx_codeb_json_member_t *ngx_codeb_api_field(ngx_codeb_api_ctx_t *ctx,
    char *key);
/* the tenant's Redis key "codeb:{tenant}:<kind>" from r's pool, or NULL */
ngx_str_t *ngx_codeb_api_key(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    char *kind);

/* GET /api.ashx/v1 and GET /api.ashx/v1/openapi.json */
ngx_int_t ngx_codeb_api_describe(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_openapi(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);

/* GET /v1/numbers: docs/api.md "Numbers" */
ngx_int_t ngx_codeb_api_numbers(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);

/* inbound routes: docs/api.md "Inbound routes" */
ngx_int_t ngx_codeb_api_inbound_list(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_inbound_get(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_inbound_post(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_inbound_put(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_inbound_delete(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);

/* API keys: docs/api.md "API keys" */
ngx_int_t ngx_codeb_api_keys_create(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_keys_list(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_keys_delete(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
/*
 * looks the ak_ key token up by its SHA-256: known, the route's handler
 * runs with ctx->identity the key's name and ctx->by_key set; else 401
 * (503 when Redis cannot answer).  Returns NGX_DONE or an answer.
 */
ngx_int_t ngx_codeb_api_keys_check(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_str_t *token);
/* the tenant's codeb_admin_user rows (ngx_codeb_api_admin_t), or NULL */
ngx_array_t *ngx_codeb_api_admins(ngx_http_request_t *r);
/* the thread pool ("default") for password checks and webhook sends */
ngx_thread_pool_t *ngx_codeb_api_thread_pool(void);
/*
 * the API settings of every tenant served by codeb_api
 * (ngx_codeb_api_srv_conf_t *), valid in worker processes
 */
ngx_array_t *ngx_codeb_api_confs(void);
/* the API settings of tenant name, or NULL */
ngx_codeb_api_srv_conf_t *ngx_codeb_api_conf_of(ngx_str_t *name);

/* webhooks: docs/api.md "Webhooks" */
ngx_int_t ngx_codeb_api_webhooks_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_api_webhooks_list(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_webhooks_create(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_webhooks_delete(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_webhooks_test(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_webhooks_log(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
/*
 * An event for the subscriptions of conf's tenant:
 * ngx_codeb_api_envelope() opens {event, tenant, ts, data: {...}}, the
 * caller writes data's members, then
 * ngx_codeb_api_fire() queues it for every active subscription that
 * wants it (only: for that webhook id alone, active or not); cb gets the
 * number queued (-1: no such webhook).  NGX_ERROR: Redis down.
 */
yajl_gen ngx_codeb_api_envelope(ngx_codeb_tenant_t *t, char *event);
ngx_int_t ngx_codeb_api_fire(ngx_codeb_api_srv_conf_t *conf, char *event,
    yajl_gen g, ngx_str_t *only, redisCallbackFn *cb, void *data);
/* the deliveries: scripts (configuration), claims (worker start) */
ngx_int_t ngx_codeb_api_deliver_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_api_deliver_start(ngx_cycle_t *cycle);

/* outbound calls: docs/api.md "Outbound calls" */

/* the cluster-wide keys of the dispatcher (members "<tenant> <callId>") */
#define NGX_CODEB_CALLS_DUE         "codeb:calls:due"
#define NGX_CODEB_CALLS_ACTIVE      "codeb:calls:active"
#define NGX_CODEB_CALLS_LEASE       "codeb:calls:lease"
/*
 * ms after maxSeconds by which a dispatched call must have ended (the
 * ring time and a minute for the ends), else it is lost; in C and in
 * the claim script
 */
#define NGX_CODEB_CALL_SLACK        120000
#define NGX_CODEB_CALL_SLACK_LUA    "120000"

/* Lua: move(calls key, record, status) keeps P calls:s:<status> true */
#define NGX_CODEB_CALL_LUA_MOVE                                              \
    "local function move(k, rec, st)\n"                                      \
    "  redis.call('ZREM', k .. ':s:' .. rec.status, rec.callId)\n"           \
    "  redis.call('ZADD', k .. ':s:' .. st, rec.created, rec.callId)\n"      \
    "  rec.status = st\n"                                                    \
    "end\n"

ngx_int_t ngx_codeb_api_calls_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_api_calls_start(ngx_cycle_t *cycle);
ngx_int_t ngx_codeb_api_calls_create(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_calls_list(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_calls_get(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_calls_hangup(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
/* a stored record (JSON) as the API shows it, into the open object of g */
void ngx_codeb_api_call_gen(yajl_gen g, ngx_pool_t *pool, u_char *text,
    size_t len);
/*
 * the answer to POST /v1/calls (g's object), kept for its
 * Idempotency-Key; returns what a handler returns
 */
ngx_int_t ngx_codeb_api_call_answer(ngx_http_request_t *r, ngx_uint_t status,
    yajl_gen g);
/* 404 naming ctx->param when it is a call id */
ngx_int_t ngx_codeb_api_call_missing(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
/* NGX_OK for an outbound call's id: "oac-" and 12 lowercase hex digits */
ngx_int_t ngx_codeb_api_oac_id(ngx_str_t *id);

/* dialing (ngx_codeb_api_dial.c): docs/api.md "Dialing" */
ngx_int_t ngx_codeb_api_dial_init(ngx_conf_t *cf);
/*
 * NGX_OK when an immediate call can be placed, else NGX_DECLINED with *rc
 * the answer (503 bridge_not_configured)
 */
ngx_int_t ngx_codeb_api_dial_check(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_int_t *rc);
/*
 * dials the stored record (id) now; r is answered once the trunk has
 * answered (200), or 502 when it did not within 4 s
 */
ngx_int_t ngx_codeb_api_dial_now(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_str_t *record, ngx_str_t *id);
/*
 * a call was cancelled through the API (the record after, the status
 * before): its dialing worker lets it go, outbound-ai.finished fires
 */
void ngx_codeb_api_dial_cancelled(ngx_codeb_api_srv_conf_t *conf,
    ngx_str_t *before, ngx_str_t *record);

/*
 * transcripts: docs/api.md "Transcripts".  _init registers the scripts
 * (configuration), _start the indexer of codeb_transcripts_dir (worker
 * start); the share handler is the codeb_transcript_share location
 * (GET /transcript-share.ashx?token=, no bearer).
 */
ngx_int_t ngx_codeb_api_transcripts_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_api_transcripts_start(ngx_cycle_t *cycle);
ngx_int_t ngx_codeb_api_transcripts_list(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_transcripts_get(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_shares_create(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_shares_delete(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx);
ngx_int_t ngx_codeb_api_share_handler(ngx_http_request_t *r);
/* the shares' scripts (from ngx_codeb_api_transcripts_init) */
ngx_int_t ngx_codeb_api_shares_init(ngx_conf_t *cf);
/*
 * NGX_OK for the form of a callId we index: 1 to 128 of [A-Za-z0-9._:-],
 * not "." or ".." (so never a path)
 */
ngx_int_t ngx_codeb_api_call_id(ngx_str_t *id);
/*
 * 404 {"error": "not_found", "error_description": "No transcript for
 * callId=<id>"}, the id echoed only when it is 1 to 64 of [A-Za-z0-9_-]
 */
ngx_int_t ngx_codeb_api_transcript_404(ngx_http_request_t *r, ngx_str_t *id);
/* the index's scripts (from ngx_codeb_api_transcripts_init) */
ngx_int_t ngx_codeb_api_transcripts_index_init(ngx_conf_t *cf);
#define ngx_codeb_api_alnum(c)                                               \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z')                \
     || ((c) >= 'a' && (c) <= 'z'))
/* the tenant's Redis keys of the index (docs/api.md "Transcripts") */
#define NGX_CODEB_API_TR_SUMMARY    "transcripts"        /* hash */
#define NGX_CODEB_API_TR_BODY       "transcripts:body"   /* hash */

/* the codeb_oidc location: docs/api.md "Token endpoint" */
ngx_int_t ngx_codeb_api_oidc_handler(ngx_http_request_t *r);
ngx_int_t ngx_codeb_api_oidc_init(ngx_conf_t *cf);
/* the issuer "<scheme>://<Host>/oidc.ashx" of r, NUL-terminated */
ngx_int_t ngx_codeb_api_oidc_issuer(ngx_http_request_t *r, ngx_str_t *iss);
/* GET /oidc.ashx/.well-known/openid-configuration, GET /oidc.ashx/jwks */
ngx_int_t ngx_codeb_api_oidc_discovery(ngx_http_request_t *r);
ngx_int_t ngx_codeb_api_oidc_jwks(ngx_http_request_t *r);

/* registers the API keys' scripts (from the codeb_api directive) */
ngx_int_t ngx_codeb_api_keys_init(ngx_conf_t *cf);


#endif /* _NGX_CODEB_API_H_INCLUDED_ */

/*
 * ngx_codeb_signal: WebRTC conference signaling on /signal.ashx
 * (docs/signal.md).
 *
 * Files: _module.c directives and the content handler; _frames.c client
 * frames and their validation; _join.c join, welcome and leave;
 * _resume.c resume on any worker or host; _deliver.c server frames with
 * seq and the kept-frame ring; _local.c this worker's tables of peers and
 * rooms; _peer.c a peer's life; _relay.c signal and dial; _sweep.c peers
 * of dead workers; _http.c the plain HTTP flags and their auth; _flags.c
 * the read-only flags; _vnum.c virtual numbers; _ring.c rings and the
 * bridge webhooks; _scripts.c the Lua scripts run in Redis.
 */

#ifndef _NGX_CODEB_SIGNAL_H_INCLUDED_
#define _NGX_CODEB_SIGNAL_H_INCLUDED_


#include <ngx_codeb_core.h>


#define NGX_CODEB_PEER_ID_LEN    18          /* "p_" + 16 hex */
#define NGX_CODEB_ROOM_MAX       64
#define NGX_CODEB_NAME_MAX       64          /* characters */
#define NGX_CODEB_NUMBER_MAX     32          /* digits of a number */
#define NGX_CODEB_TOKEN_LEN      32          /* resume token, hex */
#define NGX_CODEB_KEPT_MAX       128         /* frames kept per peer */
#define NGX_CODEB_PENDING_MAX    256         /* frames held while resuming */
#define NGX_CODEB_RING_TTL       3600        /* s, a ring's Redis state */

/* random room ids: this prefix, then 8 of [a-z0-9] (docs/signal.md) */
#define NGX_CODEB_RANDOM_ROOM    "codeb-room-"
#define NGX_CODEB_RANDOM_LEN     8


typedef struct {
    ngx_flag_t                  enable;
    ngx_codeb_ws_conf_t         ws;          /* max_message, queue, pings */
    ngx_uint_t                  room_size;   /* peers per room */
    ngx_uint_t                  rate;        /* messages per second */
    ngx_uint_t                  burst;
    ngx_msec_t                  grace;       /* resume grace, ms; 0: off */
    size_t                      resume_buffer;  /* bytes kept per peer */
    time_t                      state_ttl;   /* s, Redis keys of a peer */
} ngx_codeb_signal_loc_conf_t;


typedef struct {
    ngx_array_t                 locations;   /* loc confs with codeb_signal */
    ngx_msec_t                  sweep_interval;  /* ms, min over them */
} ngx_codeb_signal_main_conf_t;


typedef struct ngx_codeb_peer_s  ngx_codeb_peer_t;

/* the peers of one room on this worker */
typedef struct {
    ngx_str_node_t              sn;          /* "<tenant> <room>" */
    ngx_queue_t                 peers;
    ngx_codeb_tenant_t         *tenant;
    ngx_str_t                   room;
    ngx_uint_t                  n;
} ngx_codeb_room_t;

/* a server frame kept for resume: the complete text, seq included */
typedef struct {
    uint64_t                    seq;
    size_t                      len;
    u_char                     *data;
} ngx_codeb_kept_t;

typedef enum {
    NGX_CODEB_PEER_NEW = 0,      /* connected, no join yet */
    NGX_CODEB_PEER_WAITING,      /* join waits for the Redis links */
    NGX_CODEB_PEER_JOINING,      /* join sent to Redis */
    NGX_CODEB_PEER_RESUMING,     /* waiting for the old worker's frames */
    NGX_CODEB_PEER_JOINED,
    NGX_CODEB_PEER_GONE          /* left; waiting to be freed */
} ngx_codeb_peer_state_e;

struct ngx_codeb_peer_s {
    ngx_str_node_t              id_node;     /* by peerId, when joined */
    ngx_queue_t                 room_link;   /* in room->peers */
    ngx_codeb_room_t           *room_index;
    ngx_queue_t                 office_link; /* office tabs of the worker */

    ngx_codeb_ws_t             *ws;          /* NULL while detached */
    ngx_codeb_tenant_t         *tenant;
    ngx_codeb_signal_loc_conf_t *conf;

    ngx_codeb_peer_state_e      state;

    u_char                      id[NGX_CODEB_PEER_ID_LEN];
    u_char                      room[NGX_CODEB_ROOM_MAX];
    size_t                      room_len;
    ngx_str_t                   name;        /* heap */
    ngx_str_t                   identity;    /* heap; verified, or empty */
    u_char                      token[NGX_CODEB_TOKEN_LEN];

    uint64_t                    seq;         /* last seq sent */
    uint64_t                    resume_from; /* lastSeq of a resume */
    ngx_codeb_kept_t           *kept;        /* ring of kept_size */
    ngx_uint_t                  kept_size;   /* 8 .. NGX_CODEB_KEPT_MAX */
    ngx_uint_t                  kept_head;   /* oldest */
    ngx_uint_t                  kept_n;
    size_t                      kept_bytes;
    ngx_str_t                  *pending;     /* heap, while resuming */
    ngx_uint_t                  npending;
    ngx_str_t                   old_worker;  /* heap, while resuming */
    ngx_uint_t                  inflight;    /* Redis replies awaited */

    ngx_event_t                 timer;       /* grace or resume wait */
    ngx_codeb_redis_wait_t      wait;        /* join before Redis is up */

    ngx_msec_t                  rate_at;     /* token bucket, ms */
    ngx_uint_t                  rate_tokens; /* x 1000 */
    ngx_msec_t                  limited_at;  /* last rate_limited error */

    unsigned                    office:1;
    unsigned                    dial:1;      /* joined with dial */
    unsigned                    resume:1;    /* the join asks for a resume */
    unsigned                    linked:1;    /* in the id tree and room */
};


/* the Redis keys of a peer (ngx_codeb_signal_peer_keys()) */
typedef struct {
    ngx_str_t                   room;        /* P room:<room> */
    ngx_str_t                   peer;        /* P peer:<peerId> */
    ngx_str_t                   rooms;       /* P rooms */
    ngx_str_t                   prefix;      /* P */
} ngx_codeb_peer_keys_t;


/* _peer.c */
void ngx_codeb_signal_peer_start(ngx_codeb_ws_t *ws,
    ngx_codeb_signal_loc_conf_t *conf, ngx_codeb_tenant_t *t);
ngx_int_t ngx_codeb_signal_peer_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_signal_peer_init_process(ngx_cycle_t *cycle,
    ngx_msec_t sweep_interval);
void ngx_codeb_signal_peer_exit_process(ngx_cycle_t *cycle);
ngx_log_t *ngx_codeb_peer_log(ngx_codeb_peer_t *peer);
ngx_int_t ngx_codeb_peer_set_str(ngx_str_t *dst, ngx_str_t *src,
    ngx_log_t *log);
/* the Redis keys of peer from the scratch pool */
ngx_int_t ngx_codeb_peer_keys(ngx_codeb_peer_t *peer,
    ngx_codeb_peer_keys_t *keys);
/* EVALSHA for peer: the peer outlives the call until cb ran */
ngx_int_t ngx_codeb_peer_eval(ngx_codeb_peer_t *peer,
    ngx_codeb_redis_script_t *script, redisCallbackFn *cb, int nkeys,
    ngx_codeb_redis_args_t *a);
/* a reply for peer arrived: the peer, or NULL when it is gone */
ngx_codeb_peer_t *ngx_codeb_peer_replied(void *data);
void ngx_codeb_peer_release(ngx_codeb_peer_t *peer);
void ngx_codeb_peer_free(ngx_codeb_peer_t *peer);
void ngx_codeb_peer_detach_ws(ngx_codeb_peer_t *peer);
void ngx_codeb_peer_tick_detached(ngx_codeb_peer_t *peer);

/* _frames.c */
void ngx_codeb_peer_message(ngx_codeb_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len);
ngx_uint_t ngx_codeb_peer_valid_id(ngx_str_t *id);
ngx_uint_t ngx_codeb_peer_valid_name(ngx_str_t *name, size_t max);
ngx_uint_t ngx_codeb_peer_valid_number(ngx_str_t *n);

/* _join.c */
void ngx_codeb_peer_join_start(ngx_codeb_peer_t *peer);
ngx_int_t ngx_codeb_peer_register(ngx_codeb_peer_t *peer,
    ngx_uint_t announce);
void ngx_codeb_peer_welcome(ngx_codeb_peer_t *peer, redisReply *rep,
    ngx_uint_t resumed);
void ngx_codeb_peer_leave(ngx_codeb_peer_t *peer, char *reason);

/* _resume.c */
void ngx_codeb_peer_resume(ngx_codeb_peer_t *peer);
void ngx_codeb_peer_resume_done(ngx_codeb_peer_t *peer, uint64_t seq);
void ngx_codeb_peer_bus_handover(ngx_str_t *header, ngx_str_t *body);
void ngx_codeb_peer_bus_replay(ngx_str_t *header, ngx_str_t *body);
void ngx_codeb_peer_bus_done(ngx_str_t *header, ngx_str_t *body);

/* _deliver.c */
/* frame: a server frame without its closing brace; ,"seq":N} is added */
void ngx_codeb_peer_deliver(ngx_codeb_peer_t *peer, u_char *frame,
    size_t len);
void ngx_codeb_peer_send_kept(ngx_codeb_peer_t *peer, u_char *frame,
    size_t len, uint64_t seq);
void ngx_codeb_peer_error(ngx_codeb_peer_t *peer, char *code,
    char *message);
void ngx_codeb_peer_room_deliver(ngx_str_t *tenant, ngx_str_t *room,
    ngx_str_t *exclude, u_char *frame, size_t len);
void ngx_codeb_peer_bus_room(ngx_str_t *header, ngx_str_t *body);
void ngx_codeb_peer_bus_peer(ngx_str_t *header, ngx_str_t *body);
void ngx_codeb_peer_bus_office(ngx_str_t *header, ngx_str_t *body);
void ngx_codeb_signal_deliver_exit(void);

/* _local.c */
void ngx_codeb_signal_local_init(void);
void ngx_codeb_peer_link(ngx_codeb_peer_t *peer);
void ngx_codeb_peer_unlink(ngx_codeb_peer_t *peer);
ngx_codeb_peer_t *ngx_codeb_peer_find(ngx_str_t *tenant, u_char *id,
    size_t len);
ngx_codeb_room_t *ngx_codeb_peer_room(ngx_str_t *tenant, ngx_str_t *room);
/* the first (then next) local peer, NULL at the end */
ngx_codeb_peer_t *ngx_codeb_peer_first(void);
ngx_codeb_peer_t *ngx_codeb_peer_next(ngx_codeb_peer_t *peer);
/* the first (then next) local room, NULL at the end */
ngx_codeb_room_t *ngx_codeb_room_first(void);
ngx_codeb_room_t *ngx_codeb_room_next(ngx_codeb_room_t *room);
ngx_queue_t *ngx_codeb_office_tabs(void);
void ngx_codeb_detached(ngx_int_t n);
/* peers and rooms of this worker, for ?stats */
void ngx_codeb_signal_local_counts(ngx_uint_t *peers, ngx_uint_t *rooms,
    ngx_uint_t *detached);

/* _relay.c */
void ngx_codeb_peer_signal(ngx_codeb_peer_t *peer, ngx_array_t *m);
void ngx_codeb_peer_dial(ngx_codeb_peer_t *peer, ngx_str_t *number);

/* _sweep.c: every interval ms, the peers of dead workers leave */
void ngx_codeb_signal_sweep_start(ngx_cycle_t *cycle, ngx_msec_t interval);

/* _http.c: plain HTTP query flags */

typedef ngx_int_t (*ngx_codeb_flag_pt)(ngx_http_request_t *r);

typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  methods;
    ngx_uint_t                  admin;       /* admin Bearer or signature */
    ngx_uint_t                  redis;       /* waits for the Redis links */
    ngx_codeb_flag_pt           handler;
} ngx_codeb_flag_t;

/* per request */
typedef struct {
    ngx_codeb_flag_t           *flag;
    ngx_codeb_tenant_t         *tenant;
    ngx_str_t                   body;        /* POST and PUT */
    ngx_uint_t                  signed_in;
    ngx_int_t                   limit;       /* ?diallog: dials wanted;
                                                ?cdrlog: 0 */
    ngx_str_t                   call;        /* ?office-ring while the */
    ngx_str_t                   frame;       /* routes are asked */
} ngx_codeb_signal_req_t;

ngx_int_t ngx_codeb_signal_http(ngx_http_request_t *r,
    ngx_codeb_tenant_t *t);
/*
 * NGX_OK when X-Sig is the hex HMAC-SHA256 (key) of
 * "<flag>|<Host>|[<stamp>|]<body>" (docs/signal.md "Bridge webhooks");
 * NGX_DECLINED when not; NGX_ERROR: no memory
 */
ngx_int_t ngx_codeb_signal_signed(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *stamp);
/* 1 when ms (epoch ms) is within 300 s of the server clock */
ngx_uint_t ngx_codeb_signal_fresh(int64_t ms);
/* a key of the request's tenant from r->pool, or NULL */
ngx_str_t *ngx_codeb_signal_key(ngx_http_request_t *r, char *kind,
    ngx_str_t *name);
ngx_uint_t ngx_codeb_signal_is(ngx_str_t *s, char *text);

/* _cdr.c */
ngx_int_t ngx_codeb_flag_cdrlog(ngx_http_request_t *r);
ngx_int_t ngx_codeb_flag_diallog(ngx_http_request_t *r);

/* _flags.c */
ngx_int_t ngx_codeb_flag_health(ngx_http_request_t *r);
ngx_int_t ngx_codeb_flag_stats(ngx_http_request_t *r);
ngx_int_t ngx_codeb_flag_cameras(ngx_http_request_t *r);
ngx_int_t ngx_codeb_flag_registrar(ngx_http_request_t *r);
ngx_int_t ngx_codeb_flag_whitelist(ngx_http_request_t *r);

/* _vnum.c */
ngx_int_t ngx_codeb_flag_vnums(ngx_http_request_t *r);
ngx_int_t ngx_codeb_flag_vnum_admin(ngx_http_request_t *r);

/* _ring.c: ?office-ring, ?office-ring-clear */
ngx_int_t ngx_codeb_flag_ring(ngx_http_request_t *r);

/* _ring.c */
/*
 * Rings (ring 1) or clears (ring 0) the office tabs of user (empty: the
 * user the ring of call went to) for call: stores the ring state and
 * publishes frame (an open server frame) to the workers holding the
 * user's tabs, in one script; keys come from pool.  With not_vnum,
 * nothing happens when that number is a virtual number stored in Redis.
 * cb gets an integer: the tabs reached, or -1 for a virtual number.
 * NGX_ERROR: Redis unavailable.
 */
ngx_int_t ngx_codeb_signal_ring(ngx_pool_t *pool, ngx_codeb_tenant_t *t,
    ngx_str_t *call, ngx_str_t *user, ngx_str_t *frame, ngx_str_t *not_vnum,
    ngx_uint_t ring, redisCallbackFn *cb, void *data);

/* _scripts.c: Lua scripts run in Redis */
extern ngx_codeb_redis_script_t  ngx_codeb_signal_join_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_leave_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_route_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_refresh_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_sweep_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_claim_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_health_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_ring_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_vnum_put_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_registrar_script;
ngx_int_t ngx_codeb_signal_scripts_init(ngx_conf_t *cf);


extern ngx_module_t  ngx_codeb_signal_module;


#endif /* _NGX_CODEB_SIGNAL_H_INCLUDED_ */

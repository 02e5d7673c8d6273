/*
 * ngx_codeb_signal: WebRTC conference signaling on /signal.ashx
 * (PROTOCOL.md §1, seeds/signal-ashx.txt).
 */

#ifndef _NGX_CODEB_SIGNAL_H_INCLUDED_
#define _NGX_CODEB_SIGNAL_H_INCLUDED_


#include <ngx_codeb_core.h>
#include <yajl/yajl_gen.h>


#define NGX_CODEB_PEER_ID_LEN    18          /* "p_" + 16 hex */
#define NGX_CODEB_ROOM_MAX       64
#define NGX_CODEB_NAME_MAX       64          /* characters */
#define NGX_CODEB_TOKEN_LEN      32          /* resume token, hex */
#define NGX_CODEB_KEPT_MAX       128         /* frames kept per peer */
#define NGX_CODEB_PENDING_MAX    256         /* frames held while resuming */


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
    ngx_log_t                  *log;

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

    ngx_msec_t                  rate_at;     /* token bucket, ms */
    ngx_uint_t                  rate_tokens; /* x 1000 */
    ngx_msec_t                  limited_at;  /* last rate_limited error */

    unsigned                    office:1;
    unsigned                    dial:1;      /* joined with dial */
    unsigned                    linked:1;    /* in the id tree and room */
};


/* ngx_codeb_signal_peer.c */
void ngx_codeb_signal_peer_start(ngx_codeb_ws_t *ws,
    ngx_codeb_signal_loc_conf_t *conf, ngx_codeb_tenant_t *t);
ngx_int_t ngx_codeb_signal_peer_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_signal_peer_init_process(ngx_cycle_t *cycle);
/* frees what the worker still holds: detached peers, rooms, buffers */
void ngx_codeb_signal_peer_exit_process(ngx_cycle_t *cycle);
/* peers and rooms of this worker, for ?stats */
void ngx_codeb_signal_local_counts(ngx_uint_t *peers, ngx_uint_t *rooms,
    ngx_uint_t *detached);

/* ngx_codeb_signal_http.c: plain HTTP query flags */
ngx_int_t ngx_codeb_signal_http(ngx_http_request_t *r,
    ngx_codeb_signal_loc_conf_t *conf, ngx_codeb_tenant_t *t);

/* ngx_codeb_signal_scripts.c: Lua scripts run in Redis */
extern ngx_codeb_redis_script_t  ngx_codeb_signal_join_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_leave_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_route_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_refresh_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_sweep_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_claim_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_health_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_ring_script;
extern ngx_codeb_redis_script_t  ngx_codeb_signal_vnum_put_script;
ngx_int_t ngx_codeb_signal_scripts_init(ngx_conf_t *cf);

/* ngx_codeb_signal_json.c: frames built with yajl_gen */
yajl_gen ngx_codeb_signal_gen(void);
void ngx_codeb_signal_gen_free(void);
void ngx_codeb_signal_gen_str(yajl_gen g, char *key, u_char *s, size_t len);
void ngx_codeb_signal_gen_cstr(yajl_gen g, char *key, char *s);
/* the generated text, open object included (no closing brace) */
ngx_str_t ngx_codeb_signal_gen_text(yajl_gen g);
ngx_int_t ngx_codeb_signal_key_prefix(ngx_codeb_tenant_t *t, char *kind,
    u_char *name, size_t len, u_char *buf, size_t size, ngx_str_t *key);


extern ngx_module_t  ngx_codeb_signal_module;
/* ms between sweeps for peers of dead workers: min(10 s, state TTL / 3) */
extern ngx_msec_t    ngx_codeb_signal_sweep_interval;


#endif /* _NGX_CODEB_SIGNAL_H_INCLUDED_ */

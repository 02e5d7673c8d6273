/*
 * Peers of /signal.ashx: the WebSocket frames of PROTOCOL.md §1, rooms
 * across workers and hosts, resume.
 *
 * A peer lives in the worker that holds its socket.  Frames for a peer on
 * this worker are delivered directly; others go through Redis: the scripts
 * of ngx_codeb_signal_scripts.c publish bus messages to the workers
 * concerned, which deliver them to their local peers:
 *
 *   room <tenant> <room> <excluded peerId>\n<frame>   to a room
 *   peer <tenant> <peerId>\n<frame>                   to one peer
 *   office <tenant> <user>\n<frame>                   to a user's tabs
 *   handover <tenant> <peerId> <lastSeq> <worker>     resume elsewhere
 *   replay <tenant> <peerId>\n<frame with seq>        kept frame
 *   handover-done <tenant> <peerId> <seq>             end of replay
 *
 * <frame> is a server frame without its closing brace; delivery appends
 * ,"seq":N} with the receiver's next seq and keeps the frame (bounded) so
 * a resumed socket can be given what it missed.
 */

#include "ngx_codeb_signal.h"


#define NGX_CODEB_RESUME_WAIT     3000       /* ms for the old worker */
#define NGX_CODEB_RING_TTL        "3600"     /* s */


static void ngx_codeb_peer_message(ngx_codeb_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len);
static void ngx_codeb_peer_closed(ngx_codeb_ws_t *ws);
static void ngx_codeb_peer_tick(ngx_codeb_ws_t *ws);
static void ngx_codeb_peer_failed(ngx_codeb_ws_t *ws, ngx_uint_t status);
static void ngx_codeb_peer_tick_detached(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_join(ngx_codeb_peer_t *peer, ngx_array_t *m);
static ngx_int_t ngx_codeb_peer_register(ngx_codeb_peer_t *peer,
    ngx_uint_t announce);
static void ngx_codeb_peer_join_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_peer_welcome(ngx_codeb_peer_t *peer, redisReply *rep,
    ngx_uint_t resumed);
static void ngx_codeb_peer_resume(ngx_codeb_peer_t *peer,
    ngx_codeb_json_member_t *resume);
static void ngx_codeb_peer_resume_state(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_peer_claim_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_peer_resume_done(ngx_codeb_peer_t *peer, uint64_t seq);
static void ngx_codeb_peer_bus_handover_local(ngx_codeb_peer_t *old,
    ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_free(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_detach_ws(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_signal(ngx_codeb_peer_t *peer, ngx_array_t *m);
static void ngx_codeb_peer_route_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_peer_dial(ngx_codeb_peer_t *peer, ngx_str_t *number);
static void ngx_codeb_peer_dial_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_peer_leave(ngx_codeb_peer_t *peer, char *reason);
static void ngx_codeb_peer_release(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_unlink(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_link(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_timer(ngx_event_t *ev);
static void ngx_codeb_peer_deliver(ngx_codeb_peer_t *peer, u_char *prefix,
    size_t len);
static ngx_int_t ngx_codeb_peer_kept_room(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_send_kept(ngx_codeb_peer_t *peer, u_char *frame,
    size_t len, uint64_t seq);
static void ngx_codeb_peer_error(ngx_codeb_peer_t *peer, char *code,
    char *message);
static void ngx_codeb_peer_room_deliver(ngx_str_t *tenant, ngx_str_t *room,
    ngx_str_t *exclude, u_char *prefix, size_t len);
static ngx_int_t ngx_codeb_peer_joined_frame(ngx_codeb_peer_t *peer,
    ngx_str_t *frame);
static void ngx_codeb_peer_announce(ngx_codeb_peer_t *peer);
static ngx_int_t ngx_codeb_peer_room_msg(ngx_codeb_peer_t *peer,
    ngx_str_t *frame, ngx_str_t *msg);
static ngx_codeb_peer_t *ngx_codeb_peer_find(ngx_str_t *tenant,
    u_char *id, size_t len);
static ngx_int_t ngx_codeb_peer_eval(ngx_codeb_peer_t *peer,
    ngx_codeb_redis_script_t *script, redisCallbackFn *cb, int nkeys,
    ngx_codeb_redis_args_t *a);
static ngx_int_t ngx_codeb_peer_keys(ngx_codeb_peer_t *peer, u_char *buf,
    ngx_str_t *room_key, ngx_str_t *peer_key, ngx_str_t *rooms_key,
    ngx_str_t *prefix);
static ngx_uint_t ngx_codeb_peer_limited(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_bus_room(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_peer_bus_peer(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_peer_bus_office(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_peer_bus_handover(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_peer_bus_replay(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_peer_bus_done(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_peer_redis_up(void);
static void ngx_codeb_peer_sweep(ngx_event_t *ev);
static void ngx_codeb_peer_sweep_reply(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_uint_t ngx_codeb_peer_words(ngx_str_t *header, ngx_str_t *words,
    ngx_uint_t n);


ngx_msec_t                ngx_codeb_signal_sweep_interval = 10000;

static ngx_rbtree_t       ngx_codeb_peer_ids;
static ngx_rbtree_node_t  ngx_codeb_peer_ids_sentinel;
static ngx_rbtree_t       ngx_codeb_rooms;
static ngx_rbtree_node_t  ngx_codeb_rooms_sentinel;
static ngx_queue_t        ngx_codeb_office_tabs;
static ngx_uint_t         ngx_codeb_peer_count;
static ngx_uint_t         ngx_codeb_room_count;
static ngx_uint_t         ngx_codeb_detached_count;
static ngx_event_t        ngx_codeb_sweep_timer;
static ngx_connection_t   ngx_codeb_sweep_dummy;
static ngx_pool_t        *ngx_codeb_peer_pool;     /* per message, reset */
static u_char            *ngx_codeb_frame;         /* scratch for frames */
static size_t             ngx_codeb_frame_size;


static ngx_str_t  ngx_codeb_bus_kinds[] = {
    ngx_string("room"),
    ngx_string("peer"),
    ngx_string("office"),
    ngx_string("handover"),
    ngx_string("replay"),
    ngx_string("handover-done")
};

static ngx_codeb_bus_handler_pt  ngx_codeb_bus_handlers[] = {
    ngx_codeb_peer_bus_room,
    ngx_codeb_peer_bus_peer,
    ngx_codeb_peer_bus_office,
    ngx_codeb_peer_bus_handover,
    ngx_codeb_peer_bus_replay,
    ngx_codeb_peer_bus_done
};


ngx_int_t
ngx_codeb_signal_peer_init(ngx_conf_t *cf)
{
    ngx_uint_t  i;

    for (i = 0; i < sizeof(ngx_codeb_bus_kinds) / sizeof(ngx_str_t); i++) {
        if (ngx_codeb_bus_on(cf, &ngx_codeb_bus_kinds[i],
                             ngx_codeb_bus_handlers[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_codeb_redis_on_up(cf, ngx_codeb_peer_redis_up) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_codeb_signal_scripts_init(cf);
}


ngx_int_t
ngx_codeb_signal_peer_init_process(ngx_cycle_t *cycle)
{
    ngx_rbtree_init(&ngx_codeb_peer_ids, &ngx_codeb_peer_ids_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&ngx_codeb_rooms, &ngx_codeb_rooms_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&ngx_codeb_office_tabs);

    ngx_codeb_peer_pool = ngx_create_pool(4096, cycle->log);
    if (ngx_codeb_peer_pool == NULL) {
        return NGX_ERROR;
    }

    ngx_codeb_sweep_dummy.fd = (ngx_socket_t) -1;
    ngx_codeb_sweep_timer.handler = ngx_codeb_peer_sweep;
    ngx_codeb_sweep_timer.data = &ngx_codeb_sweep_dummy;
    ngx_codeb_sweep_timer.log = cycle->log;
    ngx_codeb_sweep_timer.cancelable = 1;
    ngx_add_timer(&ngx_codeb_sweep_timer, ngx_codeb_signal_sweep_interval);

    return NGX_OK;
}


void
ngx_codeb_signal_peer_exit_process(ngx_cycle_t *cycle)
{
    ngx_rbtree_node_t  *node;
    ngx_codeb_peer_t   *peer;

    /* sockets are closed by now; peers waiting for a resume remain */

    while (ngx_codeb_peer_ids.root != ngx_codeb_peer_ids.sentinel) {
        node = ngx_rbtree_min(ngx_codeb_peer_ids.root,
                              ngx_codeb_peer_ids.sentinel);
        peer = (ngx_codeb_peer_t *) node;

        if (peer->ws) {
            peer->ws->data = NULL;
            peer->ws = NULL;
        }

        peer->inflight = 0;
        ngx_codeb_peer_free(peer);
    }

    if (ngx_codeb_frame) {
        ngx_free(ngx_codeb_frame);
        ngx_codeb_frame = NULL;
    }

    if (ngx_codeb_peer_pool) {
        ngx_destroy_pool(ngx_codeb_peer_pool);
        ngx_codeb_peer_pool = NULL;
    }

    ngx_codeb_signal_gen_free();
}


void
ngx_codeb_signal_local_counts(ngx_uint_t *peers, ngx_uint_t *rooms,
    ngx_uint_t *detached)
{
    *peers = ngx_codeb_peer_count;
    *rooms = ngx_codeb_room_count;
    *detached = ngx_codeb_detached_count;
}


static ngx_log_t *
ngx_codeb_peer_log(ngx_codeb_peer_t *peer)
{
    return peer->ws ? peer->ws->connection->log : ngx_cycle->log;
}


void
ngx_codeb_signal_peer_start(ngx_codeb_ws_t *ws,
    ngx_codeb_signal_loc_conf_t *conf, ngx_codeb_tenant_t *t)
{
    ngx_codeb_peer_t  *peer;

    peer = ngx_calloc(sizeof(ngx_codeb_peer_t), ws->connection->log);
    if (peer == NULL) {
        ngx_codeb_ws_close(ws, 1011, "out of memory");
        return;
    }

    peer->ws = ws;
    peer->conf = conf;
    peer->tenant = t;
    peer->state = NGX_CODEB_PEER_NEW;
    peer->rate_tokens = conf->burst * 1000;
    peer->rate_at = ngx_current_msec;

    peer->timer.handler = ngx_codeb_peer_timer;
    peer->timer.data = peer;
    peer->timer.log = ngx_cycle->log;
    /* a worker that shuts down does not wait for a resume */
    peer->timer.cancelable = 1;

    ngx_queue_init(&peer->office_link);

    ws->data = peer;
    ws->on_message = ngx_codeb_peer_message;
    ws->on_closed = ngx_codeb_peer_closed;
    ws->on_tick = ngx_codeb_peer_tick;
    ws->on_failed = ngx_codeb_peer_failed;
}


/* PROTOCOL.md §1: an oversized message is frame_too_large, then 1009 */
static void
ngx_codeb_peer_failed(ngx_codeb_ws_t *ws, ngx_uint_t status)
{
    ngx_codeb_peer_t  *peer = ws->data;

    if (peer && status == 1009) {
        ngx_codeb_peer_error(peer, "frame_too_large",
                             "the message exceeds the size limit");
    }
}


/* ---- client frames ---- */

static void
ngx_codeb_peer_message(ngx_codeb_ws_t *ws, ngx_uint_t opcode, u_char *data,
    size_t len)
{
    ngx_str_t                *type;
    ngx_int_t                 rc;
    ngx_array_t              *m;
    ngx_codeb_peer_t         *peer;
    ngx_codeb_json_member_t  *jm;

    peer = ws->data;
    if (peer == NULL) {
        return;
    }

    if (ngx_codeb_peer_limited(peer)) {
        return;
    }

    if (opcode != 0x1) {
        ngx_codeb_peer_error(peer, "bad_frame", "binary frames are not used");
        return;
    }

    rc = ngx_codeb_json_object(ngx_codeb_peer_pool, data, len, &m);

    if (rc != NGX_OK) {
        ngx_reset_pool(ngx_codeb_peer_pool);

        if (rc == NGX_ERROR) {
            ngx_codeb_ws_close(ws, 1011, "out of memory");
            return;
        }

        ngx_codeb_peer_error(peer, "bad_frame", "expected a JSON object");
        return;
    }

    jm = ngx_codeb_json_get_type(m, "type", NGX_CODEB_JSON_STRING);
    type = jm ? &jm->str : NULL;

    if (type == NULL) {
        ngx_codeb_peer_error(peer, "bad_frame", "missing \"type\"");

    } else if (ngx_strcmp(type->data, "join") == 0) {
        ngx_codeb_peer_join(peer, m);

    } else if (ngx_strcmp(type->data, "signal") != 0
               && ngx_strcmp(type->data, "dial") != 0
               && ngx_strcmp(type->data, "leave") != 0
               && ngx_strcmp(type->data, "ping") != 0)
    {
        ngx_codeb_peer_error(peer, "bad_frame", "unknown \"type\"");

    } else if (peer->state != NGX_CODEB_PEER_JOINED) {
        ngx_codeb_peer_error(peer, "not_joined", "send join first");

    } else if (type->data[0] == 's') {
        ngx_codeb_peer_signal(peer, m);

    } else if (type->data[0] == 'd') {
        jm = ngx_codeb_json_get_type(m, "number", NGX_CODEB_JSON_STRING);

        if (jm == NULL) {
            ngx_codeb_peer_error(peer, "bad_frame", "missing \"number\"");

        } else {
            ngx_codeb_peer_dial(peer, &jm->str);
        }

    } else if (type->data[0] == 'l') {
        ngx_codeb_peer_leave(peer, "left");
        ngx_codeb_ws_close(ws, 1000, NULL);

    } else {
        ngx_codeb_peer_deliver(peer, (u_char *) "{\"type\":\"pong\"",
                               sizeof("{\"type\":\"pong\"") - 1);
    }

    ngx_reset_pool(ngx_codeb_peer_pool);
}


/* token bucket: conf->rate per second, conf->burst deep */
static ngx_uint_t
ngx_codeb_peer_limited(ngx_codeb_peer_t *peer)
{
    ngx_msec_t  elapsed;
    ngx_uint_t  cap;

    cap = peer->conf->burst * 1000;
    elapsed = ngx_current_msec - peer->rate_at;
    peer->rate_at = ngx_current_msec;

    peer->rate_tokens += elapsed * peer->conf->rate;
    if (peer->rate_tokens > cap) {
        peer->rate_tokens = cap;
    }

    if (peer->rate_tokens >= 1000) {
        peer->rate_tokens -= 1000;
        return 0;
    }

    if (ngx_current_msec - peer->limited_at >= 1000
        || peer->limited_at == 0)
    {
        peer->limited_at = ngx_current_msec;
        ngx_codeb_peer_error(peer, "rate_limited",
                             "too many messages; some were dropped");
    }

    return 1;
}


static ngx_uint_t
ngx_codeb_peer_valid_room(ngx_str_t *room)
{
    size_t  i;
    u_char  c;

    if (room->len == 0 || room->len > NGX_CODEB_ROOM_MAX) {
        return 0;
    }

    for (i = 0; i < room->len; i++) {
        c = room->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* 1-64 characters of UTF-8 (already validated), no control characters */
static ngx_uint_t
ngx_codeb_peer_valid_name(ngx_str_t *name, size_t max)
{
    size_t  i, chars;
    u_char  c;

    chars = 0;

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (c < 0x20 || c == 0x7f) {
            return 0;
        }

        if ((c & 0xc0) != 0x80) {
            chars++;
        }
    }

    return chars >= 1 && chars <= max;
}


static ngx_uint_t
ngx_codeb_peer_valid_number(ngx_str_t *n)
{
    size_t  i;

    if (n->len == 0 || n->len > 32) {
        return 0;
    }

    for (i = 0; i < n->len; i++) {
        if ((n->data[i] < '0' || n->data[i] > '9')
            && !(i == 0 && n->data[i] == '+'))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_codeb_peer_set_str(ngx_str_t *dst, ngx_str_t *src, ngx_log_t *log)
{
    if (dst->data) {
        ngx_free(dst->data);
        dst->data = NULL;
        dst->len = 0;
    }

    if (src->len == 0) {
        return NGX_OK;
    }

    dst->data = ngx_alloc(src->len, log);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src->data, src->len);
    dst->len = src->len;

    return NGX_OK;
}


static void
ngx_codeb_peer_join(ngx_codeb_peer_t *peer, ngx_array_t *m)
{
    u_char                   *p;
    ngx_str_t                 room, identity;
    ngx_log_t                *log;
    ngx_flag_t                admin;
    ngx_codeb_json_member_t  *jroom, *jname, *jdial, *jtoken, *joffice,
                             *jresume;

    log = ngx_codeb_peer_log(peer);

    if (peer->state != NGX_CODEB_PEER_NEW) {
        ngx_codeb_peer_error(peer, "already_joined", "already joined");
        return;
    }

    jroom = ngx_codeb_json_get_type(m, "room", NGX_CODEB_JSON_STRING);
    jname = ngx_codeb_json_get_type(m, "name", NGX_CODEB_JSON_STRING);
    jdial = ngx_codeb_json_get(m, "dial");
    jtoken = ngx_codeb_json_get(m, "token");
    joffice = ngx_codeb_json_get(m, "office");
    jresume = ngx_codeb_json_get(m, "resume");

    if (jroom == NULL
        || (!ngx_codeb_peer_valid_room(&jroom->str)
            && ngx_strcmp(jroom->str.data, "random") != 0))
    {
        ngx_codeb_peer_error(peer, "bad_frame",
                             "\"room\" must be 1-64 of [A-Za-z0-9_.-]");
        return;
    }

    if (jname == NULL
        || !ngx_codeb_peer_valid_name(&jname->str, NGX_CODEB_NAME_MAX))
    {
        ngx_codeb_peer_error(peer, "bad_frame",
                             "\"name\" must be 1-64 characters");
        return;
    }

    if (jdial && jdial->type != NGX_CODEB_JSON_NULL
        && (jdial->type != NGX_CODEB_JSON_STRING
            || !ngx_codeb_peer_valid_number(&jdial->str)))
    {
        ngx_codeb_peer_error(peer, "bad_frame",
                             "\"dial\" must be a virtual number");
        return;
    }

    if (joffice && joffice->type != NGX_CODEB_JSON_BOOL
        && joffice->type != NGX_CODEB_JSON_NULL)
    {
        ngx_codeb_peer_error(peer, "bad_frame", "\"office\" must be boolean");
        return;
    }

    if (jresume && jresume->type != NGX_CODEB_JSON_OBJECT
        && jresume->type != NGX_CODEB_JSON_NULL)
    {
        ngx_codeb_peer_error(peer, "bad_frame", "\"resume\" must be an object");
        return;
    }

    identity.len = 0;
    admin = 0;

    if (jtoken && jtoken->type != NGX_CODEB_JSON_NULL) {
        if (jtoken->type != NGX_CODEB_JSON_STRING
            || peer->tenant == NULL
            || ngx_codeb_jwt_verify(peer->tenant, &jtoken->str,
                                    ngx_codeb_peer_pool, log, &identity,
                                    &admin)
               != NGX_OK
            || !ngx_codeb_peer_valid_name(&identity, 256))
        {
            ngx_codeb_peer_error(peer, "forbidden", "invalid token");
            return;
        }
    }

    if (joffice && joffice->boolean && identity.len == 0) {
        ngx_codeb_peer_error(peer, "forbidden",
                             "office tabs need a verified identity");
        return;
    }

    /* the room: given, random, or a fresh one for a dial */

    room = jroom->str;

    if (jdial && jdial->type == NGX_CODEB_JSON_STRING) {
        if (jdial->str.len + sizeof("vnum--12345678") > NGX_CODEB_ROOM_MAX) {
            ngx_codeb_peer_error(peer, "bad_frame", "\"dial\" too long");
            return;
        }

        p = ngx_sprintf(peer->room, "vnum-%V-", &jdial->str);
        if (ngx_codeb_random_alnum(p, 8) != NGX_OK) {
            ngx_codeb_ws_close(peer->ws, 1011, "no entropy");
            return;
        }

        peer->room_len = p + 8 - peer->room;
        peer->dial = 1;

    } else if (ngx_strcmp(room.data, "random") == 0) {
        if (ngx_codeb_random_alnum(peer->room, 8) != NGX_OK) {
            ngx_codeb_ws_close(peer->ws, 1011, "no entropy");
            return;
        }

        peer->room_len = 8;

    } else {
        ngx_memcpy(peer->room, room.data, room.len);
        peer->room_len = room.len;
    }

    if (ngx_codeb_peer_set_str(&peer->name, &jname->str, log) != NGX_OK
        || ngx_codeb_peer_set_str(&peer->identity, &identity, log) != NGX_OK)
    {
        ngx_codeb_ws_close(peer->ws, 1011, "out of memory");
        return;
    }

    peer->office = (joffice && joffice->boolean);

    if (peer->tenant == NULL) {
        ngx_codeb_peer_error(peer, "forbidden", "no tenant on this host");
        return;
    }

    if (jresume && jresume->type == NGX_CODEB_JSON_OBJECT
        && peer->conf->grace)
    {
        ngx_codeb_peer_resume(peer, jresume);
        return;
    }

    if (ngx_codeb_peer_register(peer, 1) != NGX_OK) {
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
        return;
    }

    peer->state = NGX_CODEB_PEER_JOINING;
}


/*
 * Writes the peer into Redis (join script).  announce: tell the room
 * (a fresh join); else the peer is put back after Redis lost it.
 */
static ngx_int_t
ngx_codeb_peer_register(ngx_codeb_peer_t *peer, ngx_uint_t announce)
{
    u_char                  keys[1024], max[NGX_INT_T_LEN];
    u_char                  ttl[NGX_TIME_T_LEN];
    u_char                  tok[2 * SHA256_DIGEST_LENGTH];
    u_char                  md[SHA256_DIGEST_LENGTH];
    ngx_str_t               rk, pk, sk, px, frame, msg;
    ngx_codeb_redis_args_t  a;

    if (peer->id[0] == '\0') {
        peer->id[0] = 'p';
        peer->id[1] = '_';

        if (ngx_codeb_random_hex(peer->id + 2, 8) != NGX_OK
            || ngx_codeb_random_hex(peer->token, NGX_CODEB_TOKEN_LEN / 2)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_codeb_peer_keys(peer, keys, &rk, &pk, &sk, &px) != NGX_OK) {
        return NGX_ERROR;
    }

    SHA256(peer->token, NGX_CODEB_TOKEN_LEN, md);
    ngx_hex_dump(tok, md, SHA256_DIGEST_LENGTH);

    msg.len = 0;
    msg.data = NULL;

    if (announce) {
        if (ngx_codeb_peer_joined_frame(peer, &frame) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_codeb_peer_room_msg(peer, &frame, &msg) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &rk);
    ngx_codeb_redis_arg_str(&a, &pk);
    ngx_codeb_redis_arg_str(&a, &sk);
    ngx_codeb_redis_arg(&a, peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg(&a, peer->room, peer->room_len);
    ngx_codeb_redis_arg_str(&a, &peer->name);
    ngx_codeb_redis_arg_str(&a, &peer->identity);
    ngx_codeb_redis_arg(&a, tok, sizeof(tok));
    ngx_codeb_redis_arg(&a, max,
                        ngx_sprintf(max, "%ui", announce
                                                ? peer->conf->room_size
                                                : (ngx_uint_t) 1000000)
                        - max);
    ngx_codeb_redis_arg(&a, ttl,
                        ngx_sprintf(ttl, "%T", peer->conf->state_ttl) - ttl);
    ngx_codeb_redis_arg_str(&a, &px);
    ngx_codeb_redis_arg_str(&a, &msg);

    if (peer->office) {
        ngx_codeb_redis_arg_str(&a, &peer->identity);

    } else {
        ngx_codeb_redis_arg(&a, NULL, 0);
    }

    return ngx_codeb_peer_eval(peer, &ngx_codeb_signal_join_script,
                               announce ? ngx_codeb_peer_join_reply : NULL,
                               3, &a);
}


/* the Redis keys of a peer, written into buf (1024 bytes) */
static ngx_int_t
ngx_codeb_peer_keys(ngx_codeb_peer_t *peer, u_char *buf, ngx_str_t *room_key,
    ngx_str_t *peer_key, ngx_str_t *rooms_key, ngx_str_t *prefix)
{
    if (ngx_codeb_signal_key_prefix(peer->tenant, "room:", peer->room,
                                    peer->room_len, buf, 256, room_key)
        != NGX_OK
        || ngx_codeb_signal_key_prefix(peer->tenant, "peer:", peer->id,
                                       NGX_CODEB_PEER_ID_LEN, buf + 256, 256,
                                       peer_key) != NGX_OK
        || ngx_codeb_signal_key_prefix(peer->tenant, "rooms", NULL, 0,
                                       buf + 512, 256, rooms_key) != NGX_OK
        || ngx_codeb_signal_key_prefix(peer->tenant, "", NULL, 0, buf + 768,
                                       256, prefix) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a script whose reply concerns peer: the peer outlives the call */
static ngx_int_t
ngx_codeb_peer_eval(ngx_codeb_peer_t *peer, ngx_codeb_redis_script_t *script,
    redisCallbackFn *cb, int nkeys, ngx_codeb_redis_args_t *a)
{
    if (ngx_codeb_redis_eval(script, cb, cb ? peer : NULL, nkeys, a)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cb) {
        peer->inflight++;
    }

    return NGX_OK;
}


/* a reply for peer arrived: NULL when the peer is gone meanwhile */
static ngx_codeb_peer_t *
ngx_codeb_peer_replied(void *data)
{
    ngx_codeb_peer_t  *peer = data;

    peer->inflight--;

    if (peer->state == NGX_CODEB_PEER_GONE) {
        ngx_codeb_peer_release(peer);
        return NULL;
    }

    return peer;
}


static void
ngx_codeb_peer_join_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply        *rep = reply;
    ngx_codeb_peer_t  *peer = data;

    peer->inflight--;

    if (peer->state == NGX_CODEB_PEER_GONE) {
        /* the socket closed while joining: the others saw it come */
        if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements
            && ngx_strcmp(rep->element[0]->str, "ok") == 0)
        {
            peer->state = NGX_CODEB_PEER_JOINED;
            ngx_codeb_peer_leave(peer, "disconnected");
        }

        ngx_codeb_peer_release(peer);
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0
        || rep->element[0]->type != REDIS_REPLY_STRING)
    {
        if (rep && rep->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_codeb_peer_log(peer), 0,
                          "redis join script failed: %s", rep->str);
        }

        peer->state = NGX_CODEB_PEER_NEW;
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
        return;
    }

    if (ngx_strcmp(rep->element[0]->str, "full") == 0) {
        peer->state = NGX_CODEB_PEER_NEW;
        peer->dial = 0;
        ngx_codeb_peer_error(peer, "room_full", "the room is full");
        return;
    }

    peer->state = NGX_CODEB_PEER_JOINED;
    ngx_codeb_peer_link(peer);
    ngx_codeb_peer_welcome(peer, rep, 0);

    if (peer->ws == NULL) {
        return;
    }

    ngx_codeb_peer_announce(peer);

    if (peer->dial) {
        ngx_codeb_peer_error(peer, "bridge_unavailable",
                             "the media bridge is not available");
    }
}


/*
 * the bus message of frame to the other peers of peer's room:
 * "room <tenant> <room> <peerId>\n<frame>" (from the per-message pool)
 */
static ngx_int_t
ngx_codeb_peer_room_msg(ngx_codeb_peer_t *peer, ngx_str_t *frame,
    ngx_str_t *msg)
{
    u_char  *p;

    msg->data = ngx_pnalloc(ngx_codeb_peer_pool,
                            frame->len + peer->tenant->name.len
                            + NGX_CODEB_ROOM_MAX + NGX_CODEB_PEER_ID_LEN + 16);
    if (msg->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(msg->data, "room %V %*s %*s\n%V", &peer->tenant->name,
                    peer->room_len, peer->room,
                    (size_t) NGX_CODEB_PEER_ID_LEN, peer->id, frame);
    msg->len = p - msg->data;

    return NGX_OK;
}


/* {"type":"peer-joined",... of peer, in the worker's generator */
static ngx_int_t
ngx_codeb_peer_joined_frame(ngx_codeb_peer_t *peer, ngx_str_t *frame)
{
    yajl_gen  g;

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        return NGX_ERROR;
    }

    ngx_codeb_signal_gen_cstr(g, "type", "peer-joined");
    ngx_codeb_signal_gen_str(g, "peerId", peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_signal_gen_str(g, "name", peer->name.data, peer->name.len);

    if (peer->identity.len) {
        ngx_codeb_signal_gen_str(g, "verifiedIdentity", peer->identity.data,
                                 peer->identity.len);
    }

    *frame = ngx_codeb_signal_gen_text(g);

    return NGX_OK;
}


/* peer-joined to the room's peers on this worker */
static void
ngx_codeb_peer_announce(ngx_codeb_peer_t *peer)
{
    ngx_str_t  frame, room, id;

    if (ngx_codeb_peer_joined_frame(peer, &frame) != NGX_OK) {
        return;
    }

    room.data = peer->room;
    room.len = peer->room_len;
    id.data = peer->id;
    id.len = NGX_CODEB_PEER_ID_LEN;

    ngx_codeb_peer_room_deliver(&peer->tenant->name, &room, &id, frame.data,
                                frame.len);
}


/*
 * welcome (PROTOCOL.md §1): rep is the join or claim script's answer,
 * {"ok", peerId, name, vid, ...}
 */
static void
ngx_codeb_peer_welcome(ngx_codeb_peer_t *peer, redisReply *rep,
    ngx_uint_t resumed)
{
    u_char               user[NGX_TIME_T_LEN + NGX_CODEB_PEER_ID_LEN + 2];
    u_char               cred[64], *p;
    size_t               i;
    yajl_gen             g;
    ngx_str_t            text, username, credential, *uri;
    ngx_uint_t           k;
    redisReply          *id, *name, *vid;
    ngx_codeb_tenant_t  *t;

    t = peer->tenant;
    g = ngx_codeb_signal_gen();

    if (g == NULL || peer->ws == NULL) {
        return;
    }

    ngx_codeb_signal_gen_cstr(g, "type", "welcome");
    ngx_codeb_signal_gen_str(g, "peerId", peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_signal_gen_str(g, "room", peer->room, peer->room_len);

    if (resumed) {
        yajl_gen_string(g, (u_char *) "resumed", 7);
        yajl_gen_bool(g, 1);
    }

    yajl_gen_string(g, (u_char *) "peers", 5);
    yajl_gen_array_open(g);

    for (i = 1; i + 2 < rep->elements; i += 3) {
        id = rep->element[i];
        name = rep->element[i + 1];
        vid = rep->element[i + 2];

        if (id->type != REDIS_REPLY_STRING
            || name->type != REDIS_REPLY_STRING
            || vid->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        yajl_gen_map_open(g);
        ngx_codeb_signal_gen_str(g, "peerId", (u_char *) id->str, id->len);
        ngx_codeb_signal_gen_str(g, "name", (u_char *) name->str, name->len);

        if (vid->len) {
            ngx_codeb_signal_gen_str(g, "verifiedIdentity",
                                     (u_char *) vid->str, vid->len);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    /* ICE servers; TURN credentials per coturn use-auth-secret */

    yajl_gen_string(g, (u_char *) "iceServers", 10);
    yajl_gen_array_open(g);

    if (t->stun_uris) {
        uri = t->stun_uris->elts;

        for (k = 0; k < t->stun_uris->nelts; k++) {
            yajl_gen_map_open(g);
            ngx_codeb_signal_gen_str(g, "urls", uri[k].data, uri[k].len);
            yajl_gen_map_close(g);
        }
    }

    if (t->turn_uris) {
        username.data = user;
        p = ngx_sprintf(user, "%T:%*s", ngx_time() + t->turn_ttl,
                        (size_t) NGX_CODEB_PEER_ID_LEN, peer->id);
        username.len = p - user;

        credential.data = cred;
        ngx_codeb_hmac_sha1_base64(&t->turn_secret, &username, &credential);

        yajl_gen_map_open(g);
        yajl_gen_string(g, (u_char *) "urls", 4);
        yajl_gen_array_open(g);

        uri = t->turn_uris->elts;

        for (k = 0; k < t->turn_uris->nelts; k++) {
            yajl_gen_string(g, uri[k].data, uri[k].len);
        }

        yajl_gen_array_close(g);
        ngx_codeb_signal_gen_str(g, "username", username.data, username.len);
        ngx_codeb_signal_gen_str(g, "credential", credential.data,
                                 credential.len);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_codeb_signal_gen_cstr(g, "build", ngx_codeb_build());
    ngx_codeb_signal_gen_str(g, "resumeToken", peer->token,
                             NGX_CODEB_TOKEN_LEN);
    yajl_gen_string(g, (u_char *) "pingInterval", 12);
    yajl_gen_integer(g, peer->conf->ws.ping_interval / 1000);
    yajl_gen_string(g, (u_char *) "pingTimeout", 11);
    yajl_gen_integer(g, peer->conf->ws.ping_timeout / 1000);
    yajl_gen_map_close(g);

    text = ngx_codeb_signal_gen_text(g);

    (void) ngx_codeb_ws_send(peer->ws, text.data, text.len);
}


/* ---- resume (PROTOCOL.md §1 "Resume") ---- */

static void
ngx_codeb_peer_resume(ngx_codeb_peer_t *peer, ngx_codeb_json_member_t *resume)
{
    u_char                   *p;
    int64_t                   last;
    ngx_str_t                 pk, px;
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *jid, *jtok;
    ngx_codeb_redis_args_t    a;
    u_char                    keys[512];

    if (ngx_codeb_json_object(ngx_codeb_peer_pool, resume->raw.data,
                              resume->raw.len, &m)
        != NGX_OK)
    {
        ngx_codeb_peer_error(peer, "bad_frame", "invalid \"resume\"");
        return;
    }

    jid = ngx_codeb_json_get_type(m, "peerId", NGX_CODEB_JSON_STRING);
    jtok = ngx_codeb_json_get_type(m, "resumeToken", NGX_CODEB_JSON_STRING);

    if (jid == NULL || jid->str.len != NGX_CODEB_PEER_ID_LEN
        || jtok == NULL || jtok->str.len != NGX_CODEB_TOKEN_LEN
        || ngx_codeb_json_int(m, "lastSeq", &last) != NGX_OK || last < 0)
    {
        ngx_codeb_peer_error(peer, "bad_frame",
                             "\"resume\" needs peerId, resumeToken, lastSeq");
        return;
    }

    for (p = jid->str.data + 2; p < jid->str.data + jid->str.len; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            ngx_codeb_peer_error(peer, "bad_frame", "invalid \"peerId\"");
            return;
        }
    }

    ngx_memcpy(peer->id, jid->str.data, NGX_CODEB_PEER_ID_LEN);
    ngx_memcpy(peer->token, jtok->str.data, NGX_CODEB_TOKEN_LEN);
    peer->resume_from = (uint64_t) last;

    if (ngx_codeb_signal_key_prefix(peer->tenant, "peer:", peer->id,
                                    NGX_CODEB_PEER_ID_LEN, keys, 256, &pk)
        != NGX_OK
        || ngx_codeb_signal_key_prefix(peer->tenant, "", NULL, 0, keys + 256,
                                       256, &px) != NGX_OK)
    {
        ngx_codeb_ws_close(peer->ws, 1011, "internal error");
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg(&a, "HMGET", 5);
    ngx_codeb_redis_arg_str(&a, &pk);
    ngx_codeb_redis_arg(&a, "room", 4);
    ngx_codeb_redis_arg(&a, "w", 1);
    ngx_codeb_redis_arg(&a, "tok", 3);
    ngx_codeb_redis_arg(&a, "name", 4);
    ngx_codeb_redis_arg(&a, "vid", 3);
    ngx_codeb_redis_arg(&a, "office", 6);

    if (ngx_codeb_redis_command(ngx_codeb_peer_resume_state, peer, a.argc,
                                a.argv, a.lens)
        != NGX_OK)
    {
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
        return;
    }

    peer->inflight++;
    peer->state = NGX_CODEB_PEER_RESUMING;
}


/* the stored state of the peer to resume: room, w, tok, name, vid, office */
static void
ngx_codeb_peer_resume_state(redisAsyncContext *ac, void *reply, void *data)
{
    u_char                  md[SHA256_DIGEST_LENGTH];
    u_char                  tok[2 * SHA256_DIGEST_LENGTH];
    u_char                  keys[1024], ttl[NGX_TIME_T_LEN];
    ngx_str_t               rk, pk, sk, px, v;
    ngx_log_t              *log;
    redisReply             *rep = reply, **e;
    ngx_codeb_peer_t       *peer;
    ngx_codeb_redis_args_t  a;

    peer = ngx_codeb_peer_replied(data);
    if (peer == NULL) {
        return;
    }

    log = ngx_codeb_peer_log(peer);

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 6) {
        peer->state = NGX_CODEB_PEER_NEW;
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
        return;
    }

    e = rep->element;

    if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING
        || e[2]->type != REDIS_REPLY_STRING)
    {
        /* the grace period is over: a fresh join with the frame's room */
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "resume of an expired peer: joining afresh");

        ngx_memzero(peer->id, NGX_CODEB_PEER_ID_LEN);

        if (ngx_codeb_peer_register(peer, 1) != NGX_OK) {
            peer->state = NGX_CODEB_PEER_NEW;
            ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
            return;
        }

        peer->state = NGX_CODEB_PEER_JOINING;
        return;
    }

    SHA256(peer->token, NGX_CODEB_TOKEN_LEN, md);
    ngx_hex_dump(tok, md, SHA256_DIGEST_LENGTH);

    if (!ngx_codeb_equal_secret(tok, sizeof(tok), (u_char *) e[2]->str,
                                e[2]->len)
        || e[0]->len > NGX_CODEB_ROOM_MAX || e[1]->len > 256)
    {
        ngx_log_error(NGX_LOG_INFO, log, 0, "resume refused: wrong token");
        ngx_memzero(peer->id, NGX_CODEB_PEER_ID_LEN);
        peer->state = NGX_CODEB_PEER_NEW;
        ngx_codeb_peer_error(peer, "forbidden", "resume refused");
        return;
    }

    /* the peer takes its stored room, name and identity */

    ngx_memcpy(peer->room, e[0]->str, e[0]->len);
    peer->room_len = e[0]->len;
    peer->dial = 0;

    v.data = (u_char *) e[3]->str;
    v.len = e[3]->type == REDIS_REPLY_STRING ? e[3]->len : 0;
    if (v.len && ngx_codeb_peer_set_str(&peer->name, &v, log) != NGX_OK) {
        goto failed;
    }

    v.data = (u_char *) e[4]->str;
    v.len = e[4]->type == REDIS_REPLY_STRING ? e[4]->len : 0;
    if (ngx_codeb_peer_set_str(&peer->identity, &v, log) != NGX_OK) {
        goto failed;
    }

    peer->office = (e[5]->type == REDIS_REPLY_STRING && e[5]->len > 0);

    v.data = (u_char *) e[1]->str;
    v.len = e[1]->len;
    if (ngx_codeb_peer_set_str(&peer->old_worker, &v, log) != NGX_OK) {
        goto failed;
    }

    if (ngx_codeb_peer_keys(peer, keys, &rk, &pk, &sk, &px) != NGX_OK) {
        goto failed;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &pk);
    ngx_codeb_redis_arg_str(&a, &rk);
    ngx_codeb_redis_arg_str(&a, &peer->old_worker);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg(&a, peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_redis_arg_str(&a, &px);
    ngx_codeb_redis_arg(&a, ttl,
                        ngx_sprintf(ttl, "%T", peer->conf->state_ttl) - ttl);

    if (ngx_codeb_peer_eval(peer, &ngx_codeb_signal_claim_script,
                            ngx_codeb_peer_claim_reply, 2, &a)
        == NGX_OK)
    {
        return;
    }

failed:

    peer->state = NGX_CODEB_PEER_NEW;
    ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
}


static void
ngx_codeb_peer_claim_reply(redisAsyncContext *ac, void *reply, void *data)
{
    u_char             *p;
    ngx_str_t           msg, *me;
    redisReply         *rep = reply;
    ngx_codeb_peer_t   *peer, *old;

    peer = ngx_codeb_peer_replied(data);
    if (peer == NULL) {
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0
        || rep->element[0]->type != REDIS_REPLY_STRING)
    {
        peer->state = NGX_CODEB_PEER_NEW;
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
        return;
    }

    if (ngx_strcmp(rep->element[0]->str, "ok") != 0) {
        ngx_memzero(peer->id, NGX_CODEB_PEER_ID_LEN);
        peer->state = NGX_CODEB_PEER_NEW;
        ngx_codeb_peer_error(peer, "forbidden", "resume refused");
        return;
    }

    me = ngx_codeb_worker_id();

    /*
     * the welcome goes first; frames for the peer that arrive from now on
     * wait in "pending" until the old socket's kept frames are replayed
     */

    ngx_codeb_peer_welcome(peer, rep, 1);

    old = ngx_codeb_peer_find(&peer->tenant->name, peer->id,
                              NGX_CODEB_PEER_ID_LEN);

    if (old && old != peer) {
        /* resumed on the same worker: the old peer hands over directly */
        ngx_codeb_peer_bus_handover_local(old, peer);
        return;
    }

    if (peer->old_worker.len == me->len
        && ngx_strncmp(peer->old_worker.data, me->data, me->len) == 0)
    {
        /* ours, but already gone: nothing to replay */
        ngx_codeb_peer_resume_done(peer, peer->resume_from);
        return;
    }

    msg.data = ngx_pnalloc(ngx_codeb_peer_pool, 64 + peer->tenant->name.len
                                                + me->len);
    if (msg.data == NULL) {
        ngx_codeb_peer_resume_done(peer, peer->resume_from);
        return;
    }

    p = ngx_sprintf(msg.data, "handover %V %*s %uL %V", &peer->tenant->name,
                    (size_t) NGX_CODEB_PEER_ID_LEN, peer->id,
                    peer->resume_from, me);
    msg.len = p - msg.data;

    ngx_codeb_peer_link(peer);

    if (ngx_codeb_bus_send(&peer->old_worker, &msg) != NGX_OK) {
        ngx_codeb_peer_resume_done(peer, peer->resume_from);
        return;
    }

    ngx_add_timer(&peer->timer, NGX_CODEB_RESUME_WAIT);
}


/* closes the peer's socket without consequences for the peer */
static void
ngx_codeb_peer_detach_ws(ngx_codeb_peer_t *peer)
{
    ngx_codeb_ws_t  *ws;

    ws = peer->ws;
    if (ws == NULL) {
        return;
    }

    peer->ws = NULL;
    ws->data = NULL;
    ws->on_closed = NULL;
    ngx_codeb_ws_close(ws, 4000, "resumed on another connection");
}


/* a resume on the worker that holds the peer: the socket moves over */
static void
ngx_codeb_peer_bus_handover_local(ngx_codeb_peer_t *old, ngx_codeb_peer_t *peer)
{
    ngx_uint_t         i, n;
    ngx_codeb_ws_t    *ws;
    ngx_codeb_kept_t  *k;

    ws = peer->ws;

    if (old->ws) {
        ngx_codeb_peer_detach_ws(old);

    } else {
        ngx_codeb_detached_count--;
    }

    if (old->timer.timer_set) {
        ngx_del_timer(&old->timer);
    }

    old->ws = ws;
    ws->data = old;
    peer->ws = NULL;

    n = old->kept_n;

    for (i = 0; i < n; i++) {
        k = &old->kept[(old->kept_head + i) % old->kept_size];

        if (k->seq > peer->resume_from) {
            (void) ngx_codeb_ws_send(ws, k->data, k->len);
        }
    }

    ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                  "peer %*s resumed", (size_t) NGX_CODEB_PEER_ID_LEN,
                  old->id);

    ngx_codeb_peer_free(peer);
}


/* the old worker has replayed up to seq: pending frames follow */
static void
ngx_codeb_peer_resume_done(ngx_codeb_peer_t *peer, uint64_t seq)
{
    ngx_uint_t   i;

    if (peer->timer.timer_set) {
        ngx_del_timer(&peer->timer);
    }

    ngx_codeb_peer_link(peer);

    peer->seq = ngx_max(seq, peer->resume_from);
    peer->state = NGX_CODEB_PEER_JOINED;

    if (peer->pending) {
        for (i = 0; i < peer->npending; i++) {
            ngx_codeb_peer_deliver(peer, peer->pending[i].data,
                                   peer->pending[i].len);
            ngx_free(peer->pending[i].data);
        }

        ngx_free(peer->pending);
        peer->pending = NULL;
        peer->npending = 0;
    }

    if (peer->old_worker.data) {
        ngx_free(peer->old_worker.data);
        ngx_str_null(&peer->old_worker);
    }
}


/* ---- signal, dial, leave ---- */

static ngx_uint_t
ngx_codeb_peer_valid_id(ngx_str_t *id)
{
    size_t  i;
    u_char  c;

    if (id->len != NGX_CODEB_PEER_ID_LEN || id->data[0] != 'p'
        || id->data[1] != '_')
    {
        return 0;
    }

    for (i = 2; i < id->len; i++) {
        c = id->data[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


static void
ngx_codeb_peer_signal(ngx_codeb_peer_t *peer, ngx_array_t *m)
{
    u_char                   *p;
    size_t                    len;
    ngx_str_t                 msg, keys;
    ngx_codeb_peer_t         *to;
    ngx_codeb_json_member_t  *jto, *jdata;
    ngx_codeb_redis_args_t    a;
    u_char                    key[256];

    jto = ngx_codeb_json_get_type(m, "to", NGX_CODEB_JSON_STRING);
    jdata = ngx_codeb_json_get(m, "data");

    if (jto == NULL || jdata == NULL) {
        ngx_codeb_peer_error(peer, "bad_frame",
                             "signal needs \"to\" and \"data\"");
        return;
    }

    if (!ngx_codeb_peer_valid_id(&jto->str)) {
        ngx_codeb_peer_error(peer, "unknown_peer", "no such peer");
        return;
    }

    /* the frame, with data copied byte for byte */

    len = sizeof("room  \n{\"type\":\"signal\",\"from\":\"\",\"data\":") + 64
          + peer->tenant->name.len + NGX_CODEB_PEER_ID_LEN * 2
          + jdata->raw.len;

    msg.data = ngx_pnalloc(ngx_codeb_peer_pool, len);
    if (msg.data == NULL) {
        return;
    }

    p = ngx_sprintf(msg.data, "peer %V %V\n", &peer->tenant->name,
                    &jto->str);
    msg.len = p - msg.data;

    p = ngx_sprintf(p, "{\"type\":\"signal\",\"from\":\"%*s\",\"data\":%V",
                    (size_t) NGX_CODEB_PEER_ID_LEN, peer->id, &jdata->raw);

    to = ngx_codeb_peer_find(&peer->tenant->name, jto->str.data,
                             jto->str.len);

    if (to && to->state != NGX_CODEB_PEER_GONE) {
        if (to->room_len != peer->room_len
            || ngx_strncmp(to->room, peer->room, peer->room_len) != 0)
        {
            ngx_codeb_peer_error(peer, "unknown_peer", "no such peer");
            return;
        }

        ngx_codeb_peer_deliver(to, msg.data + msg.len, p - msg.data - msg.len);
        return;
    }

    msg.len = p - msg.data;

    if (ngx_codeb_signal_key_prefix(peer->tenant, "peer:", jto->str.data,
                                    jto->str.len, key, sizeof(key), &keys)
        != NGX_OK)
    {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &keys);
    ngx_codeb_redis_arg(&a, peer->room, peer->room_len);
    ngx_codeb_redis_arg_str(&a, &msg);

    if (ngx_codeb_peer_eval(peer, &ngx_codeb_signal_route_script,
                            ngx_codeb_peer_route_reply, 1, &a)
        != NGX_OK)
    {
        ngx_codeb_peer_error(peer, "unknown_peer",
                             "peer unreachable: state store unavailable");
    }
}


static void
ngx_codeb_peer_route_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply        *rep = reply;
    ngx_codeb_peer_t  *peer;

    peer = ngx_codeb_peer_replied(data);
    if (peer == NULL) {
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER || rep->integer != 1) {
        ngx_codeb_peer_error(peer, "unknown_peer", "no such peer");
    }
}


/*
 * dial from a room: a virtual number needs the media bridge; any other
 * number is an office user whose tabs ring
 */
static void
ngx_codeb_peer_dial(ngx_codeb_peer_t *peer, ngx_str_t *number)
{
    u_char                  *p, call[33], keys[512];
    yajl_gen                 g;
    ngx_str_t                frame, rk, vk, px, head;
    ngx_uint_t               i;
    ngx_codeb_vnum_t        *vn;
    ngx_codeb_redis_args_t   a;
    u_char                   prefix[256], hbuf[300];

    if (number->len == 0 || number->len > 256
        || !ngx_codeb_peer_valid_name(number, 256))
    {
        ngx_codeb_peer_error(peer, "bad_frame", "invalid \"number\"");
        return;
    }

    if (peer->tenant->vnums) {
        vn = peer->tenant->vnums->elts;

        for (i = 0; i < peer->tenant->vnums->nelts; i++) {
            if (vn[i].number.len == number->len
                && ngx_strncmp(vn[i].number.data, number->data, number->len)
                   == 0)
            {
                ngx_codeb_peer_error(peer, "bridge_unavailable",
                                     "the media bridge is not available");
                return;
            }
        }
    }

    if (ngx_codeb_random_hex(call, 16) != NGX_OK) {
        return;
    }

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        return;
    }

    ngx_codeb_signal_gen_cstr(g, "type", "ring");
    ngx_codeb_signal_gen_str(g, "callId", call, 32);
    ngx_codeb_signal_gen_str(g, "number", number->data, number->len);
    ngx_codeb_signal_gen_str(g, "room", peer->room, peer->room_len);
    frame = ngx_codeb_signal_gen_text(g);

    if (ngx_codeb_signal_key_prefix(peer->tenant, "ring:", call, 32, keys,
                                    256, &rk) != NGX_OK
        || ngx_codeb_signal_key_prefix(peer->tenant, "vnums", NULL, 0,
                                       keys + 256, 256, &vk) != NGX_OK
        || ngx_codeb_signal_key_prefix(peer->tenant, "", NULL, 0, prefix,
                                       sizeof(prefix), &px) != NGX_OK)
    {
        return;
    }

    p = ngx_snprintf(hbuf, sizeof(hbuf), "office %V ", &peer->tenant->name);
    head.data = hbuf;
    head.len = p - hbuf;

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &rk);
    ngx_codeb_redis_arg_str(&a, &vk);
    ngx_codeb_redis_arg_str(&a, &px);
    ngx_codeb_redis_arg_str(&a, number);
    ngx_codeb_redis_arg_str(&a, &head);
    ngx_codeb_redis_arg_str(&a, &frame);
    ngx_codeb_redis_arg_str(&a, number);
    ngx_codeb_redis_arg(&a, "ring", 4);
    ngx_codeb_redis_arg(&a, NGX_CODEB_RING_TTL, sizeof(NGX_CODEB_RING_TTL) - 1);

    if (ngx_codeb_peer_eval(peer, &ngx_codeb_signal_ring_script,
                            ngx_codeb_peer_dial_reply, 2, &a)
        != NGX_OK)
    {
        ngx_codeb_peer_error(peer, "unknown_peer",
                             "nobody to ring: state store unavailable");
    }
}


static void
ngx_codeb_peer_dial_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply        *rep = reply;
    ngx_codeb_peer_t  *peer;

    peer = ngx_codeb_peer_replied(data);
    if (peer == NULL) {
        return;
    }

    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == -1) {
        ngx_codeb_peer_error(peer, "bridge_unavailable",
                             "the media bridge is not available");
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER || rep->integer < 1) {
        ngx_codeb_peer_error(peer, "unknown_peer", "nobody to ring");
    }
}


/* the peer leaves its room: peer-left to the others, state removed */
static void
ngx_codeb_peer_leave(ngx_codeb_peer_t *peer, char *reason)
{
    u_char                   keys[1024];
    yajl_gen                 g;
    ngx_str_t                frame, msg, room, id, rk, pk, sk, px;
    ngx_codeb_redis_args_t   a;

    if (peer->state != NGX_CODEB_PEER_JOINED
        && peer->state != NGX_CODEB_PEER_RESUMING)
    {
        peer->state = NGX_CODEB_PEER_GONE;
        return;
    }

    if (peer->ws == NULL && peer->linked) {
        ngx_codeb_detached_count--;
    }

    ngx_codeb_peer_unlink(peer);
    peer->state = NGX_CODEB_PEER_GONE;

    if (peer->timer.timer_set) {
        ngx_del_timer(&peer->timer);
    }

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        return;
    }

    ngx_codeb_signal_gen_cstr(g, "type", "peer-left");
    ngx_codeb_signal_gen_str(g, "peerId", peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_signal_gen_cstr(g, "reason", reason);
    frame = ngx_codeb_signal_gen_text(g);

    room.data = peer->room;
    room.len = peer->room_len;
    id.data = peer->id;
    id.len = NGX_CODEB_PEER_ID_LEN;

    ngx_codeb_peer_room_deliver(&peer->tenant->name, &room, &id, frame.data,
                                frame.len);

    if (ngx_codeb_peer_room_msg(peer, &frame, &msg) != NGX_OK
        || ngx_codeb_peer_keys(peer, keys, &rk, &pk, &sk, &px) != NGX_OK)
    {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &rk);
    ngx_codeb_redis_arg_str(&a, &pk);
    ngx_codeb_redis_arg_str(&a, &sk);
    ngx_codeb_redis_arg_str(&a, &id);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg_str(&a, &room);
    ngx_codeb_redis_arg_str(&a, &msg);
    ngx_codeb_redis_arg_str(&a, &px);

    if (ngx_codeb_redis_eval(&ngx_codeb_signal_leave_script, NULL, NULL, 3,
                             &a)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_codeb_peer_log(peer), 0,
                      "peer %V left while Redis is down: its state expires "
                      "with its TTL", &id);
    }
}


/* the socket is gone */
static void
ngx_codeb_peer_closed(ngx_codeb_ws_t *ws)
{
    ngx_codeb_peer_t  *peer = ws->data;

    if (peer == NULL) {
        return;
    }

    peer->ws = NULL;

    switch (peer->state) {

    case NGX_CODEB_PEER_JOINED:
        if (peer->conf->grace) {
            /* PROTOCOL.md §1 "Resume": the peer keeps its place a while */
            ngx_codeb_detached_count++;
            ngx_add_timer(&peer->timer, peer->conf->grace);
            ngx_codeb_peer_tick_detached(peer);
            return;
        }

        ngx_codeb_peer_leave(peer, "disconnected");
        break;

    case NGX_CODEB_PEER_RESUMING:
        ngx_codeb_peer_leave(peer, "disconnected");
        break;

    case NGX_CODEB_PEER_JOINING:
        /* the join reply finishes the job */
        peer->state = NGX_CODEB_PEER_GONE;
        break;

    default:
        peer->state = NGX_CODEB_PEER_GONE;
        break;
    }

    ngx_codeb_peer_release(peer);
}


static void
ngx_codeb_peer_timer(ngx_event_t *ev)
{
    ngx_codeb_peer_t  *peer = ev->data;

    if (peer->state == NGX_CODEB_PEER_RESUMING) {
        ngx_log_error(NGX_LOG_INFO, ngx_codeb_peer_log(peer), 0,
                      "resume: the previous worker did not answer");
        ngx_codeb_peer_resume_done(peer, peer->resume_from);
        return;
    }

    if (peer->ws == NULL) {
        /* the grace period is over */
        ngx_codeb_peer_leave(peer, "disconnected");
        ngx_codeb_peer_release(peer);
    }
}


/* frees the peer once nothing refers to it any more */
static void
ngx_codeb_peer_release(ngx_codeb_peer_t *peer)
{
    if (peer->state != NGX_CODEB_PEER_GONE || peer->ws || peer->inflight) {
        return;
    }

    ngx_codeb_peer_free(peer);
}


static void
ngx_codeb_peer_free(ngx_codeb_peer_t *peer)
{
    ngx_uint_t  i;

    ngx_codeb_peer_unlink(peer);

    if (peer->timer.timer_set) {
        ngx_del_timer(&peer->timer);
    }

    if (peer->kept) {
        for (i = 0; i < peer->kept_n; i++) {
            ngx_free(peer->kept[(peer->kept_head + i)
                                % peer->kept_size].data);
        }

        ngx_free(peer->kept);
        peer->kept = NULL;
        peer->kept_n = 0;
    }

    if (peer->pending) {
        for (i = 0; i < peer->npending; i++) {
            ngx_free(peer->pending[i].data);
        }

        ngx_free(peer->pending);
        peer->pending = NULL;
        peer->npending = 0;
    }

    if (peer->name.data) {
        ngx_free(peer->name.data);
    }

    if (peer->identity.data) {
        ngx_free(peer->identity.data);
    }

    if (peer->old_worker.data) {
        ngx_free(peer->old_worker.data);
    }

    if (peer->inflight) {
        /* replies still due: they find the peer GONE and free it */
        peer->state = NGX_CODEB_PEER_GONE;
        ngx_str_null(&peer->name);
        ngx_str_null(&peer->identity);
        ngx_str_null(&peer->old_worker);
        return;
    }

    ngx_free(peer);
}


/* ---- keepalive of the Redis state ---- */

static void
ngx_codeb_peer_refresh(ngx_codeb_peer_t *peer, time_t ttl)
{
    u_char                  keys[1024], sttl[NGX_TIME_T_LEN];
    ngx_str_t               rk, pk, sk, px;
    ngx_codeb_redis_args_t  a;

    if (ngx_codeb_peer_keys(peer, keys, &rk, &pk, &sk, &px) != NGX_OK) {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &rk);
    ngx_codeb_redis_arg_str(&a, &pk);
    ngx_codeb_redis_arg(&a, sttl, ngx_sprintf(sttl, "%T", ttl) - sttl);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg_str(&a, &px);

    if (peer->office) {
        ngx_codeb_redis_arg_str(&a, &peer->identity);

    } else {
        ngx_codeb_redis_arg(&a, NULL, 0);
    }

    (void) ngx_codeb_redis_eval(&ngx_codeb_signal_refresh_script, NULL, NULL,
                                2, &a);
}


static void
ngx_codeb_peer_tick(ngx_codeb_ws_t *ws)
{
    ngx_codeb_peer_t  *peer = ws->data;

    if (peer && peer->state == NGX_CODEB_PEER_JOINED) {
        ngx_codeb_peer_refresh(peer, peer->conf->state_ttl);
    }
}


/* a detached peer's state must outlive the grace period */
static void
ngx_codeb_peer_tick_detached(ngx_codeb_peer_t *peer)
{
    ngx_codeb_peer_refresh(peer, ngx_max(peer->conf->state_ttl,
                                         (time_t) (peer->conf->grace / 1000)
                                         + 10));
}


/* after Redis came back (maybe empty): every local peer is put back */
static void
ngx_codeb_peer_redis_up(void)
{
    ngx_rbtree_node_t  *node, *root, *sentinel;
    ngx_codeb_peer_t   *peer;

    root = ngx_codeb_peer_ids.root;
    sentinel = ngx_codeb_peer_ids.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&ngx_codeb_peer_ids, node))
    {
        peer = (ngx_codeb_peer_t *) node;

        if (peer->state == NGX_CODEB_PEER_JOINED) {
            (void) ngx_codeb_peer_register(peer, 0);
        }
    }

    ngx_reset_pool(ngx_codeb_peer_pool);
}


/* ---- local tables: peers by id, rooms of this worker ---- */

static void
ngx_codeb_peer_link(ngx_codeb_peer_t *peer)
{
    u_char             *p;
    uint32_t            hash;
    ngx_str_t           key;
    ngx_codeb_room_t   *room;

    if (peer->linked) {
        return;
    }

    peer->id_node.str.data = peer->id;
    peer->id_node.str.len = NGX_CODEB_PEER_ID_LEN;
    peer->id_node.node.key = ngx_crc32_short(peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_rbtree_insert(&ngx_codeb_peer_ids, &peer->id_node.node);

    /* "<tenant> <room>" */

    key.len = peer->tenant->name.len + 1 + peer->room_len;
    key.data = ngx_pnalloc(ngx_codeb_peer_pool, key.len);
    if (key.data == NULL) {
        return;
    }

    ngx_sprintf(key.data, "%V %*s", &peer->tenant->name, peer->room_len,
                peer->room);
    hash = ngx_crc32_short(key.data, key.len);

    room = (ngx_codeb_room_t *) ngx_str_rbtree_lookup(&ngx_codeb_rooms, &key,
                                                      hash);
    if (room == NULL) {
        room = ngx_alloc(sizeof(ngx_codeb_room_t) + key.len, ngx_cycle->log);
        if (room == NULL) {
            return;
        }

        p = (u_char *) (room + 1);
        ngx_memcpy(p, key.data, key.len);

        room->sn.str.data = p;
        room->sn.str.len = key.len;
        room->sn.node.key = hash;
        room->tenant = peer->tenant;
        room->room.data = p + peer->tenant->name.len + 1;
        room->room.len = peer->room_len;
        room->n = 0;
        ngx_queue_init(&room->peers);

        ngx_rbtree_insert(&ngx_codeb_rooms, &room->sn.node);
        ngx_codeb_room_count++;
    }

    ngx_queue_insert_tail(&room->peers, &peer->room_link);
    room->n++;
    peer->room_index = room;

    if (peer->office) {
        ngx_queue_insert_tail(&ngx_codeb_office_tabs, &peer->office_link);
    }

    peer->linked = 1;
    ngx_codeb_peer_count++;
}


static void
ngx_codeb_peer_unlink(ngx_codeb_peer_t *peer)
{
    ngx_codeb_room_t  *room;

    if (!peer->linked) {
        return;
    }

    peer->linked = 0;
    ngx_codeb_peer_count--;

    ngx_rbtree_delete(&ngx_codeb_peer_ids, &peer->id_node.node);

    if (peer->office) {
        ngx_queue_remove(&peer->office_link);
        ngx_queue_init(&peer->office_link);
    }

    room = peer->room_index;
    peer->room_index = NULL;

    if (room == NULL) {
        return;
    }

    ngx_queue_remove(&peer->room_link);

    if (--room->n == 0) {
        ngx_rbtree_delete(&ngx_codeb_rooms, &room->sn.node);
        ngx_free(room);
        ngx_codeb_room_count--;
    }
}


static ngx_codeb_peer_t *
ngx_codeb_peer_find(ngx_str_t *tenant, u_char *id, size_t len)
{
    ngx_str_t          key;
    ngx_codeb_peer_t  *peer;

    key.data = id;
    key.len = len;

    peer = (ngx_codeb_peer_t *) ngx_str_rbtree_lookup(&ngx_codeb_peer_ids,
                                         &key, ngx_crc32_short(id, len));

    /* peerIds are random: the same id in two tenants is not expected */

    if (peer == NULL || peer->tenant->name.len != tenant->len
        || ngx_strncmp(peer->tenant->name.data, tenant->data, tenant->len)
           != 0)
    {
        return NULL;
    }

    return peer;
}


static ngx_codeb_room_t *
ngx_codeb_peer_room(ngx_str_t *tenant, ngx_str_t *room)
{
    u_char     buf[NGX_CODEB_ROOM_MAX + 256];
    ngx_str_t  key;

    if (tenant->len + 1 + room->len > sizeof(buf)) {
        return NULL;
    }

    key.data = buf;
    key.len = ngx_sprintf(buf, "%V %V", tenant, room) - buf;

    return (ngx_codeb_room_t *) ngx_str_rbtree_lookup(&ngx_codeb_rooms, &key,
                                         ngx_crc32_short(key.data, key.len));
}


/* ---- delivery ---- */

/*
 * one server frame to peer: prefix is the frame without its closing
 * brace; ,"seq":N} is appended.  The frame is kept for a resume.
 */
static void
ngx_codeb_peer_deliver(ngx_codeb_peer_t *peer, u_char *prefix, size_t len)
{
    u_char     *p;
    size_t      size;
    ngx_str_t  *f;

    if (peer->state == NGX_CODEB_PEER_GONE) {
        return;
    }

    if (peer->state == NGX_CODEB_PEER_RESUMING) {
        /* held until the old worker's kept frames are out */
        if (peer->npending >= NGX_CODEB_PENDING_MAX) {
            return;
        }

        if (peer->pending == NULL) {
            peer->pending = ngx_alloc(NGX_CODEB_PENDING_MAX
                                      * sizeof(ngx_str_t), ngx_cycle->log);
            if (peer->pending == NULL) {
                return;
            }
        }

        f = &peer->pending[peer->npending];
        f->data = ngx_alloc(len, ngx_cycle->log);
        if (f->data == NULL) {
            return;
        }

        ngx_memcpy(f->data, prefix, len);
        f->len = len;
        peer->npending++;
        return;
    }

    size = len + sizeof(",\"seq\":}") + NGX_INT64_LEN;

    if (size > ngx_codeb_frame_size) {
        p = ngx_alloc(ngx_max(size, 4096), ngx_cycle->log);
        if (p == NULL) {
            return;
        }

        if (ngx_codeb_frame) {
            ngx_free(ngx_codeb_frame);
        }

        ngx_codeb_frame = p;
        ngx_codeb_frame_size = ngx_max(size, 4096);
    }

    peer->seq++;

    p = ngx_cpymem(ngx_codeb_frame, prefix, len);
    p = ngx_sprintf(p, ",\"seq\":%uL}", peer->seq);

    ngx_codeb_peer_send_kept(peer, ngx_codeb_frame, p - ngx_codeb_frame,
                             peer->seq);
}


/*
 * the ring of kept frames grows from 8 to NGX_CODEB_KEPT_MAX entries as
 * needed: a quiet peer holds a small one
 */
static ngx_int_t
ngx_codeb_peer_kept_room(ngx_codeb_peer_t *peer)
{
    ngx_uint_t         i, size;
    ngx_codeb_kept_t  *ring;

    if (peer->kept && (peer->kept_n < peer->kept_size
                       || peer->kept_size == NGX_CODEB_KEPT_MAX))
    {
        return NGX_OK;
    }

    size = peer->kept ? peer->kept_size * 2 : 8;

    ring = ngx_alloc(size * sizeof(ngx_codeb_kept_t), ngx_cycle->log);
    if (ring == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < peer->kept_n; i++) {
        ring[i] = peer->kept[(peer->kept_head + i) % peer->kept_size];
    }

    if (peer->kept) {
        ngx_free(peer->kept);
    }

    peer->kept = ring;
    peer->kept_size = size;
    peer->kept_head = 0;

    return NGX_OK;
}


/* sends a complete frame and keeps a copy (bounded) for a resume */
static void
ngx_codeb_peer_send_kept(ngx_codeb_peer_t *peer, u_char *frame, size_t len,
    uint64_t seq)
{
    ngx_codeb_kept_t  *k;

    if (peer->conf->grace && len <= peer->conf->resume_buffer
        && ngx_codeb_peer_kept_room(peer) == NGX_OK)
    {
        while (peer->kept_n
               && (peer->kept_n == peer->kept_size
                   || peer->kept_bytes + len > peer->conf->resume_buffer))
        {
            k = &peer->kept[peer->kept_head];
            peer->kept_bytes -= k->len;
            ngx_free(k->data);
            peer->kept_head = (peer->kept_head + 1) % peer->kept_size;
            peer->kept_n--;
        }

        k = &peer->kept[(peer->kept_head + peer->kept_n) % peer->kept_size];
        k->data = ngx_alloc(len, ngx_cycle->log);

        if (k->data) {
            ngx_memcpy(k->data, frame, len);
            k->len = len;
            k->seq = seq;
            peer->kept_n++;
            peer->kept_bytes += len;
        }
    }

    if (peer->ws) {
        (void) ngx_codeb_ws_send(peer->ws, frame, len);
    }
}


/* an error frame; with seq once the peer is joined */
static void
ngx_codeb_peer_error(ngx_codeb_peer_t *peer, char *code, char *message)
{
    yajl_gen   g;
    ngx_str_t  frame;

    g = ngx_codeb_signal_gen();
    if (g == NULL) {
        return;
    }

    ngx_codeb_signal_gen_cstr(g, "type", "error");
    ngx_codeb_signal_gen_cstr(g, "code", code);
    ngx_codeb_signal_gen_cstr(g, "message", message);

    if (peer->state == NGX_CODEB_PEER_JOINED) {
        frame = ngx_codeb_signal_gen_text(g);
        ngx_codeb_peer_deliver(peer, frame.data, frame.len);
        return;
    }

    if (peer->ws) {
        yajl_gen_map_close(g);
        frame = ngx_codeb_signal_gen_text(g);
        (void) ngx_codeb_ws_send(peer->ws, frame.data, frame.len);
    }
}


static void
ngx_codeb_peer_room_deliver(ngx_str_t *tenant, ngx_str_t *room,
    ngx_str_t *exclude, u_char *prefix, size_t len)
{
    ngx_queue_t       *q, *next;
    ngx_codeb_room_t  *r;
    ngx_codeb_peer_t  *peer;

    r = ngx_codeb_peer_room(tenant, room);
    if (r == NULL) {
        return;
    }

    for (q = ngx_queue_head(&r->peers);
         q != ngx_queue_sentinel(&r->peers);
         q = next)
    {
        next = ngx_queue_next(q);
        peer = ngx_queue_data(q, ngx_codeb_peer_t, room_link);

        if (exclude && exclude->len == NGX_CODEB_PEER_ID_LEN
            && ngx_strncmp(peer->id, exclude->data, exclude->len) == 0)
        {
            continue;
        }

        ngx_codeb_peer_deliver(peer, prefix, len);
    }
}


/* ---- bus messages from other workers ---- */

/* splits the header into n words; the last takes the rest of the line */
static ngx_uint_t
ngx_codeb_peer_words(ngx_str_t *header, ngx_str_t *words, ngx_uint_t n)
{
    u_char      *p, *last, *sp;
    ngx_uint_t   i;

    p = header->data;
    last = p + header->len;

    for (i = 0; i < n; i++) {
        sp = (i == n - 1) ? last : ngx_strlchr(p, last, ' ');
        if (sp == NULL || sp == p) {
            return 0;
        }

        words[i].data = p;
        words[i].len = sp - p;
        p = sp + 1;
    }

    return 1;
}


/* room <tenant> <room> <excluded peerId> */
static void
ngx_codeb_peer_bus_room(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t  w[4];

    if (ngx_codeb_peer_words(header, w, 4)) {
        ngx_codeb_peer_room_deliver(&w[1], &w[2], &w[3], body->data,
                                    body->len);
    }
}


/* peer <tenant> <peerId> */
static void
ngx_codeb_peer_bus_peer(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t          w[3];
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_peer_words(header, w, 3)) {
        return;
    }

    peer = ngx_codeb_peer_find(&w[1], w[2].data, w[2].len);
    if (peer) {
        ngx_codeb_peer_deliver(peer, body->data, body->len);
    }
}


/* office <tenant> <user> */
static void
ngx_codeb_peer_bus_office(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t          w[3];
    ngx_queue_t       *q, *next;
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_peer_words(header, w, 3)) {
        return;
    }

    for (q = ngx_queue_head(&ngx_codeb_office_tabs);
         q != ngx_queue_sentinel(&ngx_codeb_office_tabs);
         q = next)
    {
        next = ngx_queue_next(q);
        peer = ngx_queue_data(q, ngx_codeb_peer_t, office_link);

        if (peer->identity.len == w[2].len
            && ngx_strncmp(peer->identity.data, w[2].data, w[2].len) == 0
            && peer->tenant->name.len == w[1].len
            && ngx_strncmp(peer->tenant->name.data, w[1].data, w[1].len) == 0)
        {
            ngx_codeb_peer_deliver(peer, body->data, body->len);
        }
    }
}


/* handover <tenant> <peerId> <lastSeq> <worker>: give the peer away */
static void
ngx_codeb_peer_bus_handover(ngx_str_t *header, ngx_str_t *body)
{
    u_char            *p, *buf;
    uint64_t           last;
    ngx_str_t          w[5], msg;
    ngx_int_t          n;
    ngx_uint_t         i;
    ngx_codeb_kept_t  *k;
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_peer_words(header, w, 5)) {
        return;
    }

    n = ngx_atoi(w[3].data, w[3].len);
    if (n == NGX_ERROR) {
        return;
    }

    last = (uint64_t) n;
    peer = ngx_codeb_peer_find(&w[1], w[2].data, w[2].len);

    buf = ngx_pnalloc(ngx_codeb_peer_pool, 128 + w[1].len);
    if (buf == NULL) {
        return;
    }

    if (peer) {
        for (i = 0; i < peer->kept_n; i++) {
            k = &peer->kept[(peer->kept_head + i) % peer->kept_size];

            if (k->seq <= last) {
                continue;
            }

            msg.data = ngx_pnalloc(ngx_codeb_peer_pool, k->len + 128
                                                        + w[1].len);
            if (msg.data == NULL) {
                break;
            }

            p = ngx_sprintf(msg.data, "replay %V %V\n", &w[1], &w[2]);
            p = ngx_cpymem(p, k->data, k->len);
            msg.len = p - msg.data;

            (void) ngx_codeb_bus_send(&w[4], &msg);
        }

        last = ngx_max(last, peer->seq);
    }

    msg.data = buf;
    msg.len = ngx_sprintf(buf, "handover-done %V %V %uL", &w[1], &w[2], last)
              - buf;
    (void) ngx_codeb_bus_send(&w[4], &msg);

    ngx_reset_pool(ngx_codeb_peer_pool);

    if (peer == NULL) {
        return;
    }

    /* the peer lives on elsewhere: no peer-left */

    if (peer->ws) {
        ngx_codeb_peer_detach_ws(peer);

    } else {
        ngx_codeb_detached_count--;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "peer %V resumed on worker %V", &w[2], &w[4]);

    peer->state = NGX_CODEB_PEER_GONE;
    ngx_codeb_peer_unlink(peer);
    ngx_codeb_peer_release(peer);
}


/* replay <tenant> <peerId>: a frame the resumed socket missed */
static void
ngx_codeb_peer_bus_replay(ngx_str_t *header, ngx_str_t *body)
{
    int64_t            seq;
    ngx_str_t          w[3];
    ngx_array_t       *m;
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_peer_words(header, w, 3)) {
        return;
    }

    peer = ngx_codeb_peer_find(&w[1], w[2].data, w[2].len);
    if (peer == NULL || peer->state != NGX_CODEB_PEER_RESUMING) {
        return;
    }

    seq = 0;

    if (ngx_codeb_json_object(ngx_codeb_peer_pool, body->data, body->len, &m)
        == NGX_OK)
    {
        (void) ngx_codeb_json_int(m, "seq", &seq);
    }

    ngx_reset_pool(ngx_codeb_peer_pool);

    ngx_codeb_peer_send_kept(peer, body->data, body->len, (uint64_t) seq);
}


/* handover-done <tenant> <peerId> <seq> */
static void
ngx_codeb_peer_bus_done(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t          w[4];
    ngx_int_t          n;
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_peer_words(header, w, 4)) {
        return;
    }

    n = ngx_atoi(w[3].data, w[3].len);
    peer = ngx_codeb_peer_find(&w[1], w[2].data, w[2].len);

    if (peer == NULL || peer->state != NGX_CODEB_PEER_RESUMING
        || n == NGX_ERROR)
    {
        return;
    }

    ngx_codeb_peer_resume_done(peer, (uint64_t) n);
}


/* ---- ghosts: peers of a dead worker ---- */

typedef struct {
    ngx_str_t   tenant;
    ngx_str_t   room;
} ngx_codeb_sweep_t;


static void
ngx_codeb_peer_sweep(ngx_event_t *ev)
{
    u_char                  *p, keys[1024], *buf;
    ngx_str_t                rk, sk, px, head, tail;
    ngx_rbtree_node_t       *node, *root, *sentinel;
    ngx_codeb_room_t        *room;
    ngx_codeb_sweep_t       *sw;
    ngx_codeb_redis_args_t   a;
    static char              tail_text[] = "\",\"reason\":\"timeout\"";

    ngx_add_timer(ev, ngx_codeb_signal_sweep_interval);

    root = ngx_codeb_rooms.root;
    sentinel = ngx_codeb_rooms.sentinel;

    if (root == sentinel || !ngx_codeb_redis_ready()) {
        return;
    }

    tail.data = (u_char *) tail_text;
    tail.len = sizeof(tail_text) - 1;

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&ngx_codeb_rooms, node))
    {
        room = (ngx_codeb_room_t *) node;

        if (ngx_codeb_signal_key_prefix(room->tenant, "room:",
                                        room->room.data, room->room.len,
                                        keys, 256, &rk) != NGX_OK
            || ngx_codeb_signal_key_prefix(room->tenant, "rooms", NULL, 0,
                                           keys + 256, 256, &sk) != NGX_OK
            || ngx_codeb_signal_key_prefix(room->tenant, "", NULL, 0,
                                           keys + 512, 256, &px) != NGX_OK)
        {
            continue;
        }

        buf = ngx_pnalloc(ngx_codeb_peer_pool, 512);
        sw = ngx_alloc(sizeof(ngx_codeb_sweep_t) + room->sn.str.len,
                       ngx_cycle->log);
        if (buf == NULL || sw == NULL) {
            if (sw) {
                ngx_free(sw);
            }
            break;
        }

        /* the room outlives the call only by its name */
        p = (u_char *) (sw + 1);
        ngx_memcpy(p, room->sn.str.data, room->sn.str.len);
        sw->tenant.data = p;
        sw->tenant.len = room->tenant->name.len;
        sw->room.data = p + sw->tenant.len + 1;
        sw->room.len = room->room.len;

        head.data = buf;
        head.len = ngx_snprintf(buf, 512,
                                "room %V %V -\n{\"type\":\"peer-left\","
                                "\"peerId\":\"", &sw->tenant, &sw->room)
                   - buf;

        a.argc = 0;
        ngx_codeb_redis_arg_str(&a, &rk);
        ngx_codeb_redis_arg_str(&a, &sk);
        ngx_codeb_redis_arg_str(&a, &px);
        ngx_codeb_redis_arg_str(&a, &room->room);
        ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
        ngx_codeb_redis_arg_str(&a, &head);
        ngx_codeb_redis_arg_str(&a, &tail);

        if (ngx_codeb_redis_eval(&ngx_codeb_signal_sweep_script,
                                 ngx_codeb_peer_sweep_reply, sw, 2, &a)
            != NGX_OK)
        {
            ngx_free(sw);
            break;
        }
    }

    ngx_reset_pool(ngx_codeb_peer_pool);
}


static void
ngx_codeb_peer_sweep_reply(redisAsyncContext *ac, void *reply, void *data)
{
    u_char             *p, buf[128];
    size_t              i;
    redisReply         *rep = reply, *id;
    ngx_codeb_sweep_t  *sw = data;

    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < rep->elements; i++) {
            id = rep->element[i];

            if (id->type != REDIS_REPLY_STRING
                || id->len != NGX_CODEB_PEER_ID_LEN)
            {
                continue;
            }

            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "peer %*s expired (its worker is gone)",
                          id->len, id->str);

            p = ngx_snprintf(buf, sizeof(buf),
                             "{\"type\":\"peer-left\",\"peerId\":\"%*s\","
                             "\"reason\":\"timeout\"", id->len, id->str);

            ngx_codeb_peer_room_deliver(&sw->tenant, &sw->room, NULL, buf,
                                        p - buf);
        }
    }

    ngx_free(sw);
}

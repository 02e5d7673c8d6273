/*
 * Joining a room and leaving it (docs/signal.md "WebSocket"): the peer's
 * state goes into Redis with the join script, which also tells the
 * room's other workers; the welcome lists the peers already there and the
 * ICE servers; peer-left goes out when the peer leaves.
 */

#include "ngx_codeb_signal.h"
#include <openssl/sha.h>


static void ngx_codeb_peer_redis_wait(ngx_codeb_redis_wait_t *w,
    ngx_int_t rc);
static void ngx_codeb_peer_join_reply(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_peer_room_msg(ngx_codeb_peer_t *peer,
    ngx_str_t *frame, ngx_str_t *msg);
static ngx_int_t ngx_codeb_peer_joined_frame(ngx_codeb_peer_t *peer,
    ngx_str_t *frame);
static void ngx_codeb_peer_announce(ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_ice_servers(ngx_codeb_peer_t *peer, yajl_gen g);


/*
 * The join goes to Redis; right after a start or during a reconnect it
 * waits for the links (bounded by codeb_redis_timeout) instead of
 * failing.
 */
void
ngx_codeb_peer_join_start(ngx_codeb_peer_t *peer)
{
    if (!ngx_codeb_redis_ready()) {
        peer->state = NGX_CODEB_PEER_WAITING;
        peer->wait.handler = ngx_codeb_peer_redis_wait;
        peer->wait.data = peer;
        ngx_codeb_redis_wait(&peer->wait, ngx_codeb_peer_log(peer));
        return;
    }

    if (peer->resume) {
        ngx_codeb_peer_resume(peer);
        return;
    }

    if (ngx_codeb_peer_register(peer, 1) != NGX_OK) {
        peer->state = NGX_CODEB_PEER_NEW;
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
        return;
    }

    peer->state = NGX_CODEB_PEER_JOINING;
}


static void
ngx_codeb_peer_redis_wait(ngx_codeb_redis_wait_t *w, ngx_int_t rc)
{
    ngx_codeb_peer_t  *peer = w->data;

    peer->state = NGX_CODEB_PEER_NEW;

    if (rc == NGX_OK) {
        ngx_codeb_peer_join_start(peer);

    } else {
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
    }

    ngx_codeb_scratch_reset();
}


/*
 * Writes the peer into Redis (join script).  announce: tell the room
 * (a fresh join); else the peer is put back after Redis lost it.
 */
ngx_int_t
ngx_codeb_peer_register(ngx_codeb_peer_t *peer, ngx_uint_t announce)
{
    u_char                  max[NGX_INT_T_LEN], ttl[NGX_TIME_T_LEN];
    u_char                  tok[2 * SHA256_DIGEST_LENGTH];
    u_char                  md[SHA256_DIGEST_LENGTH];
    ngx_str_t               frame, msg;
    ngx_codeb_peer_keys_t   keys;
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

    if (ngx_codeb_peer_keys(peer, &keys) != NGX_OK) {
        return NGX_ERROR;
    }

    /* Redis keeps only the token's SHA-256 */

    SHA256(peer->token, NGX_CODEB_TOKEN_LEN, md);
    ngx_hex_dump(tok, md, SHA256_DIGEST_LENGTH);

    ngx_str_null(&msg);

    if (announce
        && (ngx_codeb_peer_joined_frame(peer, &frame) != NGX_OK
            || ngx_codeb_peer_room_msg(peer, &frame, &msg) != NGX_OK))
    {
        return NGX_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &keys.room);
    ngx_codeb_redis_arg_str(&a, &keys.peer);
    ngx_codeb_redis_arg_str(&a, &keys.rooms);
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
    ngx_codeb_redis_arg_str(&a, &keys.prefix);
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


static ngx_uint_t
ngx_codeb_peer_reply_is(redisReply *rep, char *word)
{
    return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements
           && rep->element[0]->type == REDIS_REPLY_STRING
           && ngx_strcmp(rep->element[0]->str, word) == 0;
}


/* the join script answered {"full"} or {"ok", peers...} */
static void
ngx_codeb_peer_join_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply        *rep = reply;
    ngx_codeb_peer_t  *peer = data;

    peer->inflight--;

    if (peer->state == NGX_CODEB_PEER_GONE) {
        /* the socket closed while joining: the others saw it come */
        if (ngx_codeb_peer_reply_is(rep, "ok")) {
            peer->state = NGX_CODEB_PEER_JOINED;
            ngx_codeb_peer_leave(peer, "disconnected");
        }

        ngx_codeb_peer_release(peer);
        return;
    }

    if (ngx_codeb_peer_reply_is(rep, "full")) {
        peer->state = NGX_CODEB_PEER_NEW;
        peer->dial = 0;
        ngx_codeb_peer_error(peer, "room_full", "the room is full");
        return;
    }

    if (!ngx_codeb_peer_reply_is(rep, "ok")) {
        if (rep && rep->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_codeb_peer_log(peer), 0,
                          "redis join script failed: %s", rep->str);
        }

        peer->state = NGX_CODEB_PEER_NEW;
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
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
 * "room <tenant> <room> <peerId>\n<frame>" (from the scratch pool)
 */
static ngx_int_t
ngx_codeb_peer_room_msg(ngx_codeb_peer_t *peer, ngx_str_t *frame,
    ngx_str_t *msg)
{
    u_char  *p;

    msg->data = ngx_pnalloc(ngx_codeb_scratch(),
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

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_ERROR;
    }

    ngx_codeb_gen_cstr(g, "type", "peer-joined");
    ngx_codeb_gen_str(g, "peerId", peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_gen_vstr(g, "name", &peer->name);

    if (peer->identity.len) {
        ngx_codeb_gen_vstr(g, "verifiedIdentity", &peer->identity);
    }

    *frame = ngx_codeb_gen_text(g);

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
 * welcome (docs/signal.md): rep is the join or claim script's answer,
 * {"ok", peerId, name, vid, ...}
 */
void
ngx_codeb_peer_welcome(ngx_codeb_peer_t *peer, redisReply *rep,
    ngx_uint_t resumed)
{
    size_t       i;
    yajl_gen     g;
    ngx_str_t    text;
    redisReply  *id, *name, *vid;

    g = ngx_codeb_gen();

    if (g == NULL || peer->ws == NULL) {
        return;
    }

    ngx_codeb_gen_cstr(g, "type", "welcome");
    ngx_codeb_gen_str(g, "peerId", peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_gen_str(g, "room", peer->room, peer->room_len);

    if (resumed) {
        ngx_codeb_gen_bool(g, "resumed", 1);
    }

    ngx_codeb_gen_key(g, "peers");
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
        ngx_codeb_gen_str(g, "peerId", (u_char *) id->str, id->len);
        ngx_codeb_gen_str(g, "name", (u_char *) name->str, name->len);

        if (vid->len) {
            ngx_codeb_gen_str(g, "verifiedIdentity", (u_char *) vid->str,
                              vid->len);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_codeb_peer_ice_servers(peer, g);

    ngx_codeb_gen_cstr(g, "build", ngx_codeb_build());
    ngx_codeb_gen_str(g, "resumeToken", peer->token, NGX_CODEB_TOKEN_LEN);
    ngx_codeb_gen_int(g, "pingInterval", peer->conf->ws.ping_interval / 1000);
    ngx_codeb_gen_int(g, "pingTimeout", peer->conf->ws.ping_timeout / 1000);

    text = ngx_codeb_gen_done(g);

    (void) ngx_codeb_ws_send(peer->ws, NGX_CODEB_WS_TEXT, text.data,
                             text.len);
}


/*
 * "iceServers": the STUN URIs, then the TURN URIs with a credential of
 * coturn's use-auth-secret scheme: username "<expiry>:<peerId>",
 * credential base64(HMAC-SHA1(secret, username)) (docs/signal.md)
 */
static void
ngx_codeb_peer_ice_servers(ngx_codeb_peer_t *peer, yajl_gen g)
{
    u_char               user[NGX_TIME_T_LEN + NGX_CODEB_PEER_ID_LEN + 2];
    u_char               cred[64];
    ngx_str_t            username, credential, *uri;
    ngx_uint_t           k;
    ngx_codeb_tenant_t  *t;

    t = peer->tenant;

    ngx_codeb_gen_key(g, "iceServers");
    yajl_gen_array_open(g);

    if (t->stun_uris) {
        uri = t->stun_uris->elts;

        for (k = 0; k < t->stun_uris->nelts; k++) {
            yajl_gen_map_open(g);
            ngx_codeb_gen_vstr(g, "urls", &uri[k]);
            yajl_gen_map_close(g);
        }
    }

    if (t->turn_uris) {
        username.data = user;
        username.len = ngx_sprintf(user, "%T:%*s", ngx_time() + t->turn_ttl,
                                   (size_t) NGX_CODEB_PEER_ID_LEN, peer->id)
                       - user;

        credential.data = cred;
        ngx_codeb_hmac_sha1_base64(&t->turn_secret, &username, &credential);

        yajl_gen_map_open(g);
        ngx_codeb_gen_key(g, "urls");
        yajl_gen_array_open(g);

        uri = t->turn_uris->elts;

        for (k = 0; k < t->turn_uris->nelts; k++) {
            yajl_gen_string(g, uri[k].data, uri[k].len);
        }

        yajl_gen_array_close(g);
        ngx_codeb_gen_vstr(g, "username", &username);
        ngx_codeb_gen_vstr(g, "credential", &credential);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
}


/* the peer leaves its room: peer-left to the others, state removed */
void
ngx_codeb_peer_leave(ngx_codeb_peer_t *peer, char *reason)
{
    yajl_gen                 g;
    ngx_str_t                frame, msg, room, id;
    ngx_codeb_peer_keys_t    keys;
    ngx_codeb_redis_args_t   a;

    if (peer->state != NGX_CODEB_PEER_JOINED
        && peer->state != NGX_CODEB_PEER_RESUMING)
    {
        peer->state = NGX_CODEB_PEER_GONE;
        return;
    }

    if (peer->ws == NULL && peer->linked) {
        ngx_codeb_detached(-1);
    }

    ngx_codeb_peer_unlink(peer);
    peer->state = NGX_CODEB_PEER_GONE;

    if (peer->timer.timer_set) {
        ngx_del_timer(&peer->timer);
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        return;
    }

    ngx_codeb_gen_cstr(g, "type", "peer-left");
    ngx_codeb_gen_str(g, "peerId", peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_gen_cstr(g, "reason", reason);
    frame = ngx_codeb_gen_text(g);

    room.data = peer->room;
    room.len = peer->room_len;
    id.data = peer->id;
    id.len = NGX_CODEB_PEER_ID_LEN;

    ngx_codeb_peer_room_deliver(&peer->tenant->name, &room, &id, frame.data,
                                frame.len);

    if (ngx_codeb_peer_room_msg(peer, &frame, &msg) != NGX_OK
        || ngx_codeb_peer_keys(peer, &keys) != NGX_OK)
    {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &keys.room);
    ngx_codeb_redis_arg_str(&a, &keys.peer);
    ngx_codeb_redis_arg_str(&a, &keys.rooms);
    ngx_codeb_redis_arg_str(&a, &id);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg_str(&a, &room);
    ngx_codeb_redis_arg_str(&a, &msg);
    ngx_codeb_redis_arg_str(&a, &keys.prefix);

    if (ngx_codeb_redis_eval(&ngx_codeb_signal_leave_script, NULL, NULL, 3,
                             &a)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_codeb_peer_log(peer), 0,
                      "peer %V left while Redis is down: its state expires "
                      "with its TTL", &id);
    }
}

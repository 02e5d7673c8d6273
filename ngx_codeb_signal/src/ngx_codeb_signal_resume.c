/*
 * Resume (docs/signal.md "Resume"): a new socket takes over a peer whose
 * socket was lost, on this worker or any other of any host.  The stored
 * token is checked, the claim script moves the peer to this worker, the
 * old worker hands over the frames the client missed (bus: handover ->
 * replay... -> handover-done), and frames that arrive meanwhile wait in
 * "pending" so that the order is kept.
 */

#include "ngx_codeb_signal.h"
#include <openssl/sha.h>


#define NGX_CODEB_RESUME_WAIT     3000       /* ms for the old worker */


static void ngx_codeb_peer_resume_state(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_peer_claim(ngx_codeb_peer_t *peer,
    redisReply **e);
static void ngx_codeb_peer_claim_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_peer_handover_local(ngx_codeb_peer_t *old,
    ngx_codeb_peer_t *peer);
static void ngx_codeb_peer_resume_failed(ngx_codeb_peer_t *peer,
    ngx_uint_t refused);


/* reads the stored state of the peer to resume */
void
ngx_codeb_peer_resume(ngx_codeb_peer_t *peer)
{
    ngx_str_t               pk;
    ngx_codeb_redis_args_t  a;

    if (ngx_codeb_key(ngx_codeb_scratch(), &peer->tenant->name, "peer:",
                      peer->id, NGX_CODEB_PEER_ID_LEN, &pk)
        != NGX_OK)
    {
        ngx_codeb_ws_close(peer->ws, 1011, "internal error");
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HMGET");
    ngx_codeb_redis_arg_str(&a, &pk);
    ngx_codeb_redis_arg_lit(&a, "room");
    ngx_codeb_redis_arg_lit(&a, "w");
    ngx_codeb_redis_arg_lit(&a, "tok");
    ngx_codeb_redis_arg_lit(&a, "name");
    ngx_codeb_redis_arg_lit(&a, "vid");
    ngx_codeb_redis_arg_lit(&a, "office");

    if (ngx_codeb_redis_command(ngx_codeb_peer_resume_state, peer, &a)
        != NGX_OK)
    {
        ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
        return;
    }

    peer->inflight++;
    peer->state = NGX_CODEB_PEER_RESUMING;
}


/* refused: error forbidden, the client may join afresh; else close 1013 */
static void
ngx_codeb_peer_resume_failed(ngx_codeb_peer_t *peer, ngx_uint_t refused)
{
    peer->state = NGX_CODEB_PEER_NEW;
    peer->resume = 0;

    if (refused) {
        ngx_memzero(peer->id, NGX_CODEB_PEER_ID_LEN);
        ngx_codeb_peer_error(peer, "forbidden", "resume refused");
        return;
    }

    ngx_codeb_ws_close(peer->ws, 1013, "state store unavailable");
}


/* the stored state: room, w, tok, name, vid, office */
static void
ngx_codeb_peer_resume_state(redisAsyncContext *ac, void *reply, void *data)
{
    u_char             md[SHA256_DIGEST_LENGTH];
    u_char             tok[2 * SHA256_DIGEST_LENGTH];
    redisReply        *rep = reply, **e;
    ngx_codeb_peer_t  *peer;

    peer = ngx_codeb_peer_replied(data);
    if (peer == NULL) {
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 6) {
        ngx_codeb_peer_resume_failed(peer, 0);
        return;
    }

    e = rep->element;

    if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING
        || e[2]->type != REDIS_REPLY_STRING)
    {
        /* the grace period is over: a fresh join with the frame's room */
        ngx_log_error(NGX_LOG_INFO, ngx_codeb_peer_log(peer), 0,
                      "resume of an expired peer: joining afresh");

        ngx_memzero(peer->id, NGX_CODEB_PEER_ID_LEN);
        peer->resume = 0;
        peer->state = NGX_CODEB_PEER_NEW;
        ngx_codeb_peer_join_start(peer);
        return;
    }

    SHA256(peer->token, NGX_CODEB_TOKEN_LEN, md);
    ngx_hex_dump(tok, md, SHA256_DIGEST_LENGTH);

    if (!ngx_codeb_equal_secret(tok, sizeof(tok), (u_char *) e[2]->str,
                                e[2]->len)
        || e[0]->len > NGX_CODEB_ROOM_MAX || e[1]->len > 256)
    {
        ngx_log_error(NGX_LOG_INFO, ngx_codeb_peer_log(peer), 0,
                      "resume refused: wrong token");
        ngx_codeb_peer_resume_failed(peer, 1);
        return;
    }

    if (ngx_codeb_peer_claim(peer, e) != NGX_OK) {
        ngx_codeb_peer_resume_failed(peer, 0);
    }
}


/* the peer takes its stored room, name and identity, then claims itself */
static ngx_int_t
ngx_codeb_peer_claim(ngx_codeb_peer_t *peer, redisReply **e)
{
    u_char                  ttl[NGX_TIME_T_LEN];
    ngx_str_t               v;
    ngx_log_t              *log;
    ngx_codeb_peer_keys_t   keys;
    ngx_codeb_redis_args_t  a;

    log = ngx_codeb_peer_log(peer);

    ngx_memcpy(peer->room, e[0]->str, e[0]->len);
    peer->room_len = e[0]->len;
    peer->dial = 0;

    v.data = (u_char *) e[3]->str;
    v.len = e[3]->type == REDIS_REPLY_STRING ? e[3]->len : 0;
    if (v.len && ngx_codeb_peer_set_str(&peer->name, &v, log) != NGX_OK) {
        return NGX_ERROR;
    }

    v.data = (u_char *) e[4]->str;
    v.len = e[4]->type == REDIS_REPLY_STRING ? e[4]->len : 0;
    if (ngx_codeb_peer_set_str(&peer->identity, &v, log) != NGX_OK) {
        return NGX_ERROR;
    }

    peer->office = (e[5]->type == REDIS_REPLY_STRING && e[5]->len > 0);

    v.data = (u_char *) e[1]->str;
    v.len = e[1]->len;
    if (ngx_codeb_peer_set_str(&peer->old_worker, &v, log) != NGX_OK
        || ngx_codeb_peer_keys(peer, &keys) != NGX_OK)
    {
        return NGX_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &keys.peer);
    ngx_codeb_redis_arg_str(&a, &keys.room);
    ngx_codeb_redis_arg_str(&a, &peer->old_worker);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg(&a, peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_redis_arg_str(&a, &keys.prefix);
    ngx_codeb_redis_arg(&a, ttl,
                        ngx_sprintf(ttl, "%T", peer->conf->state_ttl) - ttl);

    return ngx_codeb_peer_eval(peer, &ngx_codeb_signal_claim_script,
                               ngx_codeb_peer_claim_reply, 2, &a);
}


static void
ngx_codeb_peer_claim_reply(redisAsyncContext *ac, void *reply, void *data)
{
    u_char            *p;
    ngx_str_t          msg, *me;
    redisReply        *rep = reply;
    ngx_codeb_peer_t  *peer, *old;

    peer = ngx_codeb_peer_replied(data);
    if (peer == NULL) {
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0
        || rep->element[0]->type != REDIS_REPLY_STRING)
    {
        ngx_codeb_peer_resume_failed(peer, 0);
        return;
    }

    if (ngx_strcmp(rep->element[0]->str, "ok") != 0) {
        ngx_codeb_peer_resume_failed(peer, 1);
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
        ngx_codeb_peer_handover_local(old, peer);
        return;
    }

    if (peer->old_worker.len == me->len
        && ngx_strncmp(peer->old_worker.data, me->data, me->len) == 0)
    {
        /* ours, but already gone: nothing to replay */
        ngx_codeb_peer_resume_done(peer, peer->resume_from);
        return;
    }

    msg.data = ngx_pnalloc(ngx_codeb_scratch(),
                           64 + peer->tenant->name.len + me->len);
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


/* a resume on the worker that holds the peer: the socket moves over */
static void
ngx_codeb_peer_handover_local(ngx_codeb_peer_t *old, ngx_codeb_peer_t *peer)
{
    ngx_uint_t         i;
    ngx_codeb_ws_t    *ws;
    ngx_codeb_kept_t  *k;

    ws = peer->ws;

    if (old->ws) {
        ngx_codeb_peer_detach_ws(old);

    } else {
        ngx_codeb_detached(-1);
    }

    if (old->timer.timer_set) {
        ngx_del_timer(&old->timer);
    }

    old->ws = ws;
    ws->data = old;
    peer->ws = NULL;

    for (i = 0; i < old->kept_n; i++) {
        k = &old->kept[(old->kept_head + i) % old->kept_size];

        if (k->seq > peer->resume_from) {
            (void) ngx_codeb_ws_send(ws, NGX_CODEB_WS_TEXT, k->data, k->len);
        }
    }

    ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                  "peer %*s resumed", (size_t) NGX_CODEB_PEER_ID_LEN,
                  old->id);

    ngx_codeb_peer_free(peer);
}


/* the old worker has replayed up to seq: pending frames follow */
void
ngx_codeb_peer_resume_done(ngx_codeb_peer_t *peer, uint64_t seq)
{
    ngx_uint_t  i;

    if (peer->timer.timer_set) {
        ngx_del_timer(&peer->timer);
    }

    ngx_codeb_peer_link(peer);

    peer->seq = ngx_max(seq, peer->resume_from);
    peer->state = NGX_CODEB_PEER_JOINED;
    peer->resume = 0;

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


/* ---- the old worker's side, over the bus ---- */

/* handover <tenant> <peerId> <lastSeq> <worker>: give the peer away */
void
ngx_codeb_peer_bus_handover(ngx_str_t *header, ngx_str_t *body)
{
    u_char            *p;
    uint64_t           last;
    ngx_str_t          w[5], msg;
    ngx_int_t          n;
    ngx_uint_t         i;
    ngx_codeb_kept_t  *k;
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_bus_words(header, w, 5)) {
        return;
    }

    n = ngx_atoi(w[3].data, w[3].len);
    if (n == NGX_ERROR) {
        return;
    }

    last = (uint64_t) n;
    peer = ngx_codeb_peer_find(&w[1], w[2].data, w[2].len);

    for (i = 0; peer && i < peer->kept_n; i++) {
        k = &peer->kept[(peer->kept_head + i) % peer->kept_size];

        if (k->seq <= last) {
            continue;
        }

        msg.data = ngx_pnalloc(ngx_codeb_scratch(),
                               k->len + 128 + w[1].len);
        if (msg.data == NULL) {
            break;
        }

        p = ngx_sprintf(msg.data, "replay %V %V\n", &w[1], &w[2]);
        p = ngx_cpymem(p, k->data, k->len);
        msg.len = p - msg.data;

        (void) ngx_codeb_bus_send(&w[4], &msg);
    }

    if (peer) {
        last = ngx_max(last, peer->seq);
    }

    msg.data = ngx_pnalloc(ngx_codeb_scratch(), 128 + w[1].len);
    if (msg.data) {
        msg.len = ngx_sprintf(msg.data, "handover-done %V %V %uL", &w[1],
                              &w[2], last)
                  - msg.data;
        (void) ngx_codeb_bus_send(&w[4], &msg);
    }

    if (peer == NULL) {
        return;
    }

    /* the peer lives on elsewhere: no peer-left */

    if (peer->ws) {
        ngx_codeb_peer_detach_ws(peer);

    } else {
        ngx_codeb_detached(-1);
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "peer %V resumed on worker %V", &w[2], &w[4]);

    peer->state = NGX_CODEB_PEER_GONE;
    ngx_codeb_peer_unlink(peer);
    ngx_codeb_peer_release(peer);
}


/* replay <tenant> <peerId>: a frame the resumed socket missed */
void
ngx_codeb_peer_bus_replay(ngx_str_t *header, ngx_str_t *body)
{
    int64_t            seq;
    ngx_str_t          w[3];
    ngx_array_t       *m;
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_bus_words(header, w, 3)) {
        return;
    }

    peer = ngx_codeb_peer_find(&w[1], w[2].data, w[2].len);
    if (peer == NULL || peer->state != NGX_CODEB_PEER_RESUMING) {
        return;
    }

    seq = 0;

    if (ngx_codeb_json_object(ngx_codeb_scratch(), body->data, body->len, &m)
        == NGX_OK)
    {
        (void) ngx_codeb_json_int(m, "seq", &seq);
    }

    ngx_codeb_peer_send_kept(peer, body->data, body->len, (uint64_t) seq);
}


/* handover-done <tenant> <peerId> <seq> */
void
ngx_codeb_peer_bus_done(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t          w[4];
    ngx_int_t          n;
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_bus_words(header, w, 4)) {
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

/*
 * A peer's life (docs/signal.md): created with its WebSocket, joined,
 * detached for the resume grace when its socket is lost, freed once it
 * left and no Redis reply refers to it any more.
 *
 * A peer lives in the worker that holds its socket.  Frames for a peer on
 * this worker are delivered directly; others go through Redis: the
 * scripts of ngx_codeb_signal_scripts.c publish bus messages to the
 * workers concerned, which deliver them to their local peers:
 *
 *   room <tenant> <room> <excluded peerId>\n<frame>   to a room
 *   peer <tenant> <peerId>\n<frame>                   to one peer
 *   office <tenant> <user>\n<frame>                   to a user's tabs
 *   handover <tenant> <peerId> <lastSeq> <worker>     resume elsewhere
 *   replay <tenant> <peerId>\n<frame with seq>        kept frame
 *   handover-done <tenant> <peerId> <seq>             end of replay
 *
 * <frame> is a server frame without its closing brace; delivery appends
 * ,"seq":N} with the receiver's next seq (ngx_codeb_signal_deliver.c).
 */

#include "ngx_codeb_signal.h"


static void ngx_codeb_peer_closed(ngx_codeb_ws_t *ws);
static void ngx_codeb_peer_tick(ngx_codeb_ws_t *ws);
static void ngx_codeb_peer_failed(ngx_codeb_ws_t *ws, ngx_uint_t status);
static void ngx_codeb_peer_timer(ngx_event_t *ev);
static void ngx_codeb_peer_redis_up(void);


static ngx_uint_t  ngx_codeb_signal_running;


static ngx_codeb_bus_kind_t  ngx_codeb_signal_bus[] = {
    { ngx_string("room"), ngx_codeb_peer_bus_room },
    { ngx_string("peer"), ngx_codeb_peer_bus_peer },
    { ngx_string("office"), ngx_codeb_peer_bus_office },
    { ngx_string("handover"), ngx_codeb_peer_bus_handover },
    { ngx_string("replay"), ngx_codeb_peer_bus_replay },
    { ngx_string("handover-done"), ngx_codeb_peer_bus_done }
};


ngx_int_t
ngx_codeb_signal_peer_init(ngx_conf_t *cf)
{
    ngx_uint_t  i;

    for (i = 0; i < sizeof(ngx_codeb_signal_bus)
                    / sizeof(ngx_codeb_bus_kind_t); i++)
    {
        if (ngx_codeb_bus_on(cf, &ngx_codeb_signal_bus[i].kind,
                             ngx_codeb_signal_bus[i].handler)
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
ngx_codeb_signal_peer_init_process(ngx_cycle_t *cycle,
    ngx_msec_t sweep_interval)
{
    ngx_codeb_signal_local_init();
    ngx_codeb_signal_sweep_start(cycle, sweep_interval);

    ngx_codeb_signal_running = 1;

    return NGX_OK;
}


void
ngx_codeb_signal_peer_exit_process(ngx_cycle_t *cycle)
{
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_signal_running) {
        return;
    }

    /* sockets are closed by now; peers waiting for a resume remain */

    while ((peer = ngx_codeb_peer_first()) != NULL) {
        if (peer->ws) {
            peer->ws->data = NULL;
            peer->ws = NULL;
        }

        peer->inflight = 0;
        ngx_codeb_peer_free(peer);
    }

    ngx_codeb_signal_deliver_exit();
}


ngx_log_t *
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


/* docs/signal.md: an oversized message is frame_too_large, then 1009 */
static void
ngx_codeb_peer_failed(ngx_codeb_ws_t *ws, ngx_uint_t status)
{
    ngx_codeb_peer_t  *peer = ws->data;

    if (peer && status == 1009) {
        ngx_codeb_peer_error(peer, "frame_too_large",
                             "the message exceeds the size limit");
    }
}


ngx_int_t
ngx_codeb_peer_set_str(ngx_str_t *dst, ngx_str_t *src, ngx_log_t *log)
{
    if (dst->data) {
        ngx_free(dst->data);
        ngx_str_null(dst);
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


ngx_int_t
ngx_codeb_peer_keys(ngx_codeb_peer_t *peer, ngx_codeb_peer_keys_t *keys)
{
    ngx_pool_t  *pool;
    ngx_str_t   *t;

    pool = ngx_codeb_scratch();
    t = &peer->tenant->name;

    if (ngx_codeb_key(pool, t, "room:", peer->room, peer->room_len,
                      &keys->room) != NGX_OK
        || ngx_codeb_key(pool, t, "peer:", peer->id, NGX_CODEB_PEER_ID_LEN,
                         &keys->peer) != NGX_OK
        || ngx_codeb_key(pool, t, "rooms", NULL, 0, &keys->rooms) != NGX_OK
        || ngx_codeb_key(pool, t, "", NULL, 0, &keys->prefix) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
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


ngx_codeb_peer_t *
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


/*
 * The socket is gone.  docs/signal.md "Resume": a joined peer whose
 * socket was lost (or closed by us) keeps its place for the grace period;
 * a client that closed on purpose (its own close frame) leaves at once.
 */
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
        if (peer->conf->grace && !ws->client_closed) {
            ngx_codeb_detached(1);
            ngx_add_timer(&peer->timer, peer->conf->grace);
            ngx_codeb_peer_tick_detached(peer);
            return;
        }

        ngx_codeb_peer_leave(peer, ws->client_closed ? "left"
                                                     : "disconnected");
        break;

    case NGX_CODEB_PEER_RESUMING:
        ngx_codeb_peer_leave(peer, "disconnected");
        break;

    case NGX_CODEB_PEER_WAITING:
        ngx_codeb_redis_cancel(&peer->wait);
        peer->state = NGX_CODEB_PEER_GONE;
        break;

    default:
        /* NEW, or JOINING: then the join reply finishes the job */
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

    } else if (peer->ws == NULL) {
        /* the grace period is over */
        ngx_codeb_peer_leave(peer, "disconnected");
        ngx_codeb_peer_release(peer);
    }

    ngx_codeb_scratch_reset();
}


/* closes the peer's socket without consequences for the peer */
void
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


/* frees the peer once nothing refers to it any more */
void
ngx_codeb_peer_release(ngx_codeb_peer_t *peer)
{
    if (peer->state != NGX_CODEB_PEER_GONE || peer->ws || peer->inflight) {
        return;
    }

    ngx_codeb_peer_free(peer);
}


static void
ngx_codeb_peer_free_frames(ngx_codeb_peer_t *peer)
{
    ngx_uint_t  i;

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
}


void
ngx_codeb_peer_free(ngx_codeb_peer_t *peer)
{
    ngx_str_t  empty = ngx_null_string;

    ngx_codeb_peer_unlink(peer);

    if (peer->timer.timer_set) {
        ngx_del_timer(&peer->timer);
    }

    ngx_codeb_redis_cancel(&peer->wait);
    ngx_codeb_peer_free_frames(peer);

    (void) ngx_codeb_peer_set_str(&peer->name, &empty, NULL);
    (void) ngx_codeb_peer_set_str(&peer->identity, &empty, NULL);
    (void) ngx_codeb_peer_set_str(&peer->old_worker, &empty, NULL);

    if (peer->inflight) {
        /* replies still due: they find the peer GONE and free it */
        peer->state = NGX_CODEB_PEER_GONE;
        return;
    }

    ngx_free(peer);
}


/* ---- keepalive of the Redis state ---- */

static void
ngx_codeb_peer_refresh(ngx_codeb_peer_t *peer, time_t ttl)
{
    u_char                  sttl[NGX_TIME_T_LEN];
    ngx_codeb_peer_keys_t   keys;
    ngx_codeb_redis_args_t  a;

    if (ngx_codeb_peer_keys(peer, &keys) != NGX_OK) {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &keys.room);
    ngx_codeb_redis_arg_str(&a, &keys.peer);
    ngx_codeb_redis_arg(&a, sttl, ngx_sprintf(sttl, "%T", ttl) - sttl);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg_str(&a, &keys.prefix);

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
void
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
    ngx_codeb_peer_t  *peer;

    for (peer = ngx_codeb_peer_first();
         peer;
         peer = ngx_codeb_peer_next(peer))
    {
        if (peer->state == NGX_CODEB_PEER_JOINED) {
            (void) ngx_codeb_peer_register(peer, 0);
        }
    }
}

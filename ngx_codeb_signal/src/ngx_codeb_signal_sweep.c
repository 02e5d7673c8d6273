/*
 * Ghosts: peers of a worker that died (its Redis keys expired with their
 * TTL, nobody said peer-left).  Every worker sweeps the rooms where it
 * has peers; the sweep script removes the ghosts from the room and names
 * them and the room's other workers, which get peer-left with reason
 * "timeout" (docs/signal.md "WebSocket").
 */

#include "ngx_codeb_signal.h"


typedef struct {
    ngx_str_t                   tenant;
    ngx_str_t                   room;
} ngx_codeb_sweep_t;


static void ngx_codeb_signal_sweep(ngx_event_t *ev);
static void ngx_codeb_signal_sweep_room(ngx_codeb_room_t *room);
static void ngx_codeb_signal_sweep_reply(redisAsyncContext *ac, void *reply,
    void *data);


static ngx_event_t       ngx_codeb_sweep_timer;
static ngx_connection_t  ngx_codeb_sweep_dummy;
static ngx_msec_t        ngx_codeb_sweep_interval;


void
ngx_codeb_signal_sweep_start(ngx_cycle_t *cycle, ngx_msec_t interval)
{
    ngx_codeb_sweep_interval = interval;

    ngx_codeb_sweep_dummy.fd = (ngx_socket_t) -1;
    ngx_codeb_sweep_timer.handler = ngx_codeb_signal_sweep;
    ngx_codeb_sweep_timer.data = &ngx_codeb_sweep_dummy;
    ngx_codeb_sweep_timer.log = cycle->log;
    ngx_codeb_sweep_timer.cancelable = 1;

    ngx_add_timer(&ngx_codeb_sweep_timer, interval);
}


static void
ngx_codeb_signal_sweep(ngx_event_t *ev)
{
    ngx_codeb_room_t  *room;

    ngx_add_timer(ev, ngx_codeb_sweep_interval);

    if (!ngx_codeb_redis_ready()) {
        return;
    }

    for (room = ngx_codeb_room_first();
         room;
         room = ngx_codeb_room_next(room))
    {
        ngx_codeb_signal_sweep_room(room);
    }

    ngx_codeb_scratch_reset();
}


static void
ngx_codeb_signal_sweep_room(ngx_codeb_room_t *room)
{
    u_char                  *p;
    ngx_str_t                rk, sk, px;
    ngx_pool_t              *pool;
    ngx_codeb_sweep_t       *sw;
    ngx_codeb_redis_args_t   a;

    pool = ngx_codeb_scratch();

    if (ngx_codeb_key(pool, &room->tenant->name, "room:", room->room.data,
                      room->room.len, &rk) != NGX_OK
        || ngx_codeb_key(pool, &room->tenant->name, "rooms", NULL, 0, &sk)
           != NGX_OK
        || ngx_codeb_key(pool, &room->tenant->name, "", NULL, 0, &px)
           != NGX_OK)
    {
        return;
    }

    /* the room may be gone when the reply comes: its name is copied */

    sw = ngx_alloc(sizeof(ngx_codeb_sweep_t) + room->sn.str.len,
                   ngx_cycle->log);
    if (sw == NULL) {
        return;
    }

    p = (u_char *) (sw + 1);
    ngx_memcpy(p, room->sn.str.data, room->sn.str.len);
    sw->tenant.data = p;
    sw->tenant.len = room->tenant->name.len;
    sw->room.data = p + sw->tenant.len + 1;
    sw->room.len = room->room.len;

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &rk);
    ngx_codeb_redis_arg_str(&a, &sk);
    ngx_codeb_redis_arg_str(&a, &px);
    ngx_codeb_redis_arg_str(&a, &room->room);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());

    if (ngx_codeb_redis_eval(&ngx_codeb_signal_sweep_script,
                             ngx_codeb_signal_sweep_reply, sw, 2, &a)
        != NGX_OK)
    {
        ngx_free(sw);
    }
}


/* {{removed peerIds}, {other workers of the room}} */
static void
ngx_codeb_signal_sweep_reply(redisAsyncContext *ac, void *reply, void *data)
{
    u_char             *p;
    size_t              i, k;
    yajl_gen            g;
    ngx_str_t           frame, msg, worker;
    redisReply         *rep = reply, *gone, *workers, *id;
    ngx_codeb_sweep_t  *sw = data;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2
        || rep->element[0]->type != REDIS_REPLY_ARRAY
        || rep->element[1]->type != REDIS_REPLY_ARRAY)
    {
        goto done;
    }

    gone = rep->element[0];
    workers = rep->element[1];

    for (i = 0; i < gone->elements; i++) {
        id = gone->element[i];

        if (id->type != REDIS_REPLY_STRING
            || id->len != NGX_CODEB_PEER_ID_LEN)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "peer %*s expired (its worker is gone)",
                      id->len, id->str);

        g = ngx_codeb_gen();
        if (g == NULL) {
            goto done;
        }

        ngx_codeb_gen_cstr(g, "type", "peer-left");
        ngx_codeb_gen_str(g, "peerId", (u_char *) id->str, id->len);
        ngx_codeb_gen_cstr(g, "reason", "timeout");
        frame = ngx_codeb_gen_text(g);

        msg.data = ngx_pnalloc(ngx_codeb_scratch(), sizeof("room   -\n")
                               + sw->tenant.len + sw->room.len + frame.len);
        if (msg.data == NULL) {
            goto done;
        }

        p = ngx_sprintf(msg.data, "room %V %V -\n%V", &sw->tenant, &sw->room,
                        &frame);
        msg.len = p - msg.data;

        for (k = 0; k < workers->elements; k++) {
            if (workers->element[k]->type == REDIS_REPLY_STRING) {
                worker.data = (u_char *) workers->element[k]->str;
                worker.len = workers->element[k]->len;
                (void) ngx_codeb_bus_send(&worker, &msg);
            }
        }

        ngx_codeb_peer_room_deliver(&sw->tenant, &sw->room, NULL, frame.data,
                                    frame.len);
    }

done:

    ngx_free(sw);
}

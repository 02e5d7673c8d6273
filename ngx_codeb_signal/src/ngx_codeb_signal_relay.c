/*
 * signal and dial frames (docs/signal.md "WebSocket"): a signal goes to
 * one peer of the same room, on this worker directly, else through the
 * route script to the worker that holds it; a dial of a number that is
 * not a virtual number rings the office tabs of the user of that name.
 */

#include "ngx_codeb_signal.h"


static void ngx_codeb_peer_route_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_peer_dial_reply(redisAsyncContext *ac, void *reply,
    void *data);


void
ngx_codeb_peer_signal(ngx_codeb_peer_t *peer, ngx_array_t *m)
{
    u_char                   *p;
    yajl_gen                  g;
    ngx_str_t                 frame, msg, key, *tenant;
    ngx_codeb_peer_t         *to;
    ngx_codeb_redis_args_t    a;
    ngx_codeb_json_member_t  *jto, *jdata;

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

    tenant = &peer->tenant->name;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return;
    }

    /*
     * data is relayed byte for byte: its text, checked by the parser, is
     * written as is (yajl_gen_number writes text without touching it)
     */

    ngx_codeb_gen_cstr(g, "type", "signal");
    ngx_codeb_gen_str(g, "from", peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_codeb_gen_key(g, "data");
    yajl_gen_number(g, (char *) jdata->raw.data, jdata->raw.len);
    frame = ngx_codeb_gen_text(g);

    to = ngx_codeb_peer_find(tenant, jto->str.data, jto->str.len);

    if (to && to->state != NGX_CODEB_PEER_GONE) {
        if (to->room_len != peer->room_len
            || ngx_strncmp(to->room, peer->room, peer->room_len) != 0)
        {
            ngx_codeb_peer_error(peer, "unknown_peer", "no such peer");
            return;
        }

        ngx_codeb_peer_deliver(to, frame.data, frame.len);
        return;
    }

    /* "peer <tenant> <peerId>\n<frame>" to the worker of the target */

    msg.data = ngx_pnalloc(ngx_codeb_scratch(), sizeof("peer  \n")
                           + tenant->len + jto->str.len + frame.len);
    if (msg.data == NULL
        || ngx_codeb_key(ngx_codeb_scratch(), tenant, "peer:", jto->str.data,
                         jto->str.len, &key) != NGX_OK)
    {
        return;
    }

    p = ngx_sprintf(msg.data, "peer %V %V\n%V", tenant, &jto->str, &frame);
    msg.len = p - msg.data;

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &key);
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
void
ngx_codeb_peer_dial(ngx_codeb_peer_t *peer, ngx_str_t *number)
{
    u_char             hex[32];
    yajl_gen           g;
    ngx_str_t          frame, call;
    ngx_uint_t         i;
    ngx_codeb_vnum_t  *vn;

    if (number->len == 0 || number->len > 256
        || !ngx_codeb_peer_valid_name(number, 256))
    {
        ngx_codeb_peer_error(peer, "bad_frame", "invalid \"number\"");
        return;
    }

    vn = peer->tenant->vnums ? peer->tenant->vnums->elts : NULL;

    for (i = 0; vn && i < peer->tenant->vnums->nelts; i++) {
        if (vn[i].number.len == number->len
            && ngx_strncmp(vn[i].number.data, number->data, number->len) == 0)
        {
            ngx_codeb_peer_error(peer, "bridge_unavailable",
                                 "the media bridge is not available");
            return;
        }
    }

    if (ngx_codeb_random_hex(hex, 16) != NGX_OK) {
        return;
    }

    call.data = hex;
    call.len = 32;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return;
    }

    ngx_codeb_gen_cstr(g, "type", "ring");
    ngx_codeb_gen_vstr(g, "callId", &call);
    ngx_codeb_gen_vstr(g, "number", number);
    ngx_codeb_gen_str(g, "room", peer->room, peer->room_len);
    frame = ngx_codeb_gen_text(g);

    if (ngx_codeb_signal_ring(ngx_codeb_scratch(), peer->tenant, &call,
                              number, &frame, number, 1,
                              ngx_codeb_peer_dial_reply, peer)
        != NGX_OK)
    {
        ngx_codeb_peer_error(peer, "unknown_peer",
                             "nobody to ring: state store unavailable");
        return;
    }

    peer->inflight++;
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

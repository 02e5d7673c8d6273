/*
 * Server frames to peers of this worker (docs/signal.md "Resume"): every
 * frame after welcome gets the receiver's next "seq" and is kept in a
 * bounded ring so that a resumed socket can be given what it missed.
 * Frames come from this worker or from the bus (room, peer, office
 * messages).
 */

#include "ngx_codeb_signal.h"


static ngx_int_t ngx_codeb_peer_hold(ngx_codeb_peer_t *peer, u_char *frame,
    size_t len);
static ngx_int_t ngx_codeb_peer_kept_room(ngx_codeb_peer_t *peer);


static u_char  *ngx_codeb_frame;         /* worker's buffer for one frame */
static size_t   ngx_codeb_frame_size;


void
ngx_codeb_signal_deliver_exit(void)
{
    if (ngx_codeb_frame) {
        ngx_free(ngx_codeb_frame);
        ngx_codeb_frame = NULL;
        ngx_codeb_frame_size = 0;
    }
}


void
ngx_codeb_peer_deliver(ngx_codeb_peer_t *peer, u_char *frame, size_t len)
{
    u_char  *p;
    size_t   size;

    if (peer->state == NGX_CODEB_PEER_GONE) {
        return;
    }

    if (peer->state == NGX_CODEB_PEER_RESUMING) {
        /* held until the old worker's kept frames are out */
        (void) ngx_codeb_peer_hold(peer, frame, len);
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

    /* the number is written next to the generator's text of the frame */

    p = ngx_cpymem(ngx_codeb_frame, frame, len);
    p = ngx_sprintf(p, ",\"seq\":%uL}", peer->seq);

    ngx_codeb_peer_send_kept(peer, ngx_codeb_frame, p - ngx_codeb_frame,
                             peer->seq);
}


/* a frame for a resuming peer, held (at most NGX_CODEB_PENDING_MAX) */
static ngx_int_t
ngx_codeb_peer_hold(ngx_codeb_peer_t *peer, u_char *frame, size_t len)
{
    ngx_str_t  *f;

    if (peer->npending >= NGX_CODEB_PENDING_MAX) {
        return NGX_DECLINED;
    }

    if (peer->pending == NULL) {
        peer->pending = ngx_alloc(NGX_CODEB_PENDING_MAX * sizeof(ngx_str_t),
                                  ngx_cycle->log);
        if (peer->pending == NULL) {
            return NGX_ERROR;
        }
    }

    f = &peer->pending[peer->npending];
    f->data = ngx_alloc(len, ngx_cycle->log);
    if (f->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(f->data, frame, len);
    f->len = len;
    peer->npending++;

    return NGX_OK;
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
void
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
        (void) ngx_codeb_ws_send(peer->ws, NGX_CODEB_WS_TEXT, frame, len);
    }
}


/* an error frame; with seq once the peer is joined */
void
ngx_codeb_peer_error(ngx_codeb_peer_t *peer, char *code, char *message)
{
    yajl_gen   g;
    ngx_str_t  frame;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return;
    }

    ngx_codeb_gen_cstr(g, "type", "error");
    ngx_codeb_gen_cstr(g, "code", code);
    ngx_codeb_gen_cstr(g, "message", message);

    if (peer->state == NGX_CODEB_PEER_JOINED) {
        frame = ngx_codeb_gen_text(g);
        ngx_codeb_peer_deliver(peer, frame.data, frame.len);
        return;
    }

    if (peer->ws) {
        frame = ngx_codeb_gen_done(g);
        (void) ngx_codeb_ws_send(peer->ws, NGX_CODEB_WS_TEXT, frame.data,
                                 frame.len);
    }
}


/* frame to the local peers of a room, but exclude (a peerId) */
void
ngx_codeb_peer_room_deliver(ngx_str_t *tenant, ngx_str_t *room,
    ngx_str_t *exclude, u_char *frame, size_t len)
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

        ngx_codeb_peer_deliver(peer, frame, len);
    }
}


/* ---- bus messages from other workers ---- */

/* room <tenant> <room> <excluded peerId or "-"> */
void
ngx_codeb_peer_bus_room(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t  w[4];

    if (ngx_codeb_bus_words(header, w, 4)) {
        ngx_codeb_peer_room_deliver(&w[1], &w[2], &w[3], body->data,
                                    body->len);
    }
}


/* peer <tenant> <peerId> */
void
ngx_codeb_peer_bus_peer(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t          w[3];
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_bus_words(header, w, 3)) {
        return;
    }

    peer = ngx_codeb_peer_find(&w[1], w[2].data, w[2].len);
    if (peer) {
        ngx_codeb_peer_deliver(peer, body->data, body->len);
    }
}


/* office <tenant> <user>: to the user's office tabs on this worker */
void
ngx_codeb_peer_bus_office(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t          w[3];
    ngx_queue_t       *q, *next, *tabs;
    ngx_codeb_peer_t  *peer;

    if (!ngx_codeb_bus_words(header, w, 3)) {
        return;
    }

    tabs = ngx_codeb_office_tabs();

    for (q = ngx_queue_head(tabs); q != ngx_queue_sentinel(tabs); q = next) {
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

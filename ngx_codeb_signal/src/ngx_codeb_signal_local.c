/*
 * This worker's tables: joined peers by peerId, rooms by
 * "<tenant> <room>" with their local peers, and office tabs.  A peer is
 * in them ("linked") from its welcome until it leaves or moves away.
 */

#include "ngx_codeb_signal.h"


static ngx_rbtree_t       ngx_codeb_peer_ids;
static ngx_rbtree_node_t  ngx_codeb_peer_ids_sentinel;
static ngx_rbtree_t       ngx_codeb_rooms;
static ngx_rbtree_node_t  ngx_codeb_rooms_sentinel;
static ngx_queue_t        ngx_codeb_office_list;
static ngx_uint_t         ngx_codeb_peer_count;
static ngx_uint_t         ngx_codeb_room_count;
static ngx_uint_t         ngx_codeb_detached_count;


void
ngx_codeb_signal_local_init(void)
{
    ngx_rbtree_init(&ngx_codeb_peer_ids, &ngx_codeb_peer_ids_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&ngx_codeb_rooms, &ngx_codeb_rooms_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&ngx_codeb_office_list);
}


void
ngx_codeb_signal_local_counts(ngx_uint_t *peers, ngx_uint_t *rooms,
    ngx_uint_t *detached)
{
    *peers = ngx_codeb_peer_count;
    *rooms = ngx_codeb_room_count;
    *detached = ngx_codeb_detached_count;
}


/* a peer lost (n = 1) or got back (n = -1) its socket */
void
ngx_codeb_detached(ngx_int_t n)
{
    ngx_codeb_detached_count += n;
}


ngx_queue_t *
ngx_codeb_office_tabs(void)
{
    return &ngx_codeb_office_list;
}


static ngx_codeb_room_t *
ngx_codeb_room_get(ngx_codeb_peer_t *peer)
{
    u_char            *p;
    uint32_t           hash;
    ngx_str_t          key;
    ngx_codeb_room_t  *room;

    /* "<tenant> <room>" */

    key.len = peer->tenant->name.len + 1 + peer->room_len;
    key.data = ngx_pnalloc(ngx_codeb_scratch(), key.len);
    if (key.data == NULL) {
        return NULL;
    }

    ngx_sprintf(key.data, "%V %*s", &peer->tenant->name, peer->room_len,
                peer->room);
    hash = ngx_crc32_short(key.data, key.len);

    room = (ngx_codeb_room_t *) ngx_str_rbtree_lookup(&ngx_codeb_rooms, &key,
                                                      hash);
    if (room) {
        return room;
    }

    room = ngx_alloc(sizeof(ngx_codeb_room_t) + key.len, ngx_cycle->log);
    if (room == NULL) {
        return NULL;
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

    return room;
}


void
ngx_codeb_peer_link(ngx_codeb_peer_t *peer)
{
    ngx_codeb_room_t  *room;

    if (peer->linked) {
        return;
    }

    room = ngx_codeb_room_get(peer);
    if (room == NULL) {
        return;
    }

    peer->id_node.str.data = peer->id;
    peer->id_node.str.len = NGX_CODEB_PEER_ID_LEN;
    peer->id_node.node.key = ngx_crc32_short(peer->id, NGX_CODEB_PEER_ID_LEN);
    ngx_rbtree_insert(&ngx_codeb_peer_ids, &peer->id_node.node);

    ngx_queue_insert_tail(&room->peers, &peer->room_link);
    room->n++;
    peer->room_index = room;

    if (peer->office) {
        ngx_queue_insert_tail(&ngx_codeb_office_list, &peer->office_link);
    }

    peer->linked = 1;
    ngx_codeb_peer_count++;
}


void
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

    ngx_queue_remove(&peer->room_link);

    if (--room->n == 0) {
        ngx_rbtree_delete(&ngx_codeb_rooms, &room->sn.node);
        ngx_free(room);
        ngx_codeb_room_count--;
    }
}


ngx_codeb_peer_t *
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


ngx_codeb_room_t *
ngx_codeb_peer_room(ngx_str_t *tenant, ngx_str_t *room)
{
    ngx_str_t  key;

    key.len = tenant->len + 1 + room->len;
    key.data = ngx_pnalloc(ngx_codeb_scratch(), key.len);
    if (key.data == NULL) {
        return NULL;
    }

    ngx_sprintf(key.data, "%V %V", tenant, room);

    return (ngx_codeb_room_t *) ngx_str_rbtree_lookup(&ngx_codeb_rooms, &key,
                                         ngx_crc32_short(key.data, key.len));
}


static ngx_rbtree_node_t *
ngx_codeb_tree_first(ngx_rbtree_t *tree)
{
    if (tree->root == tree->sentinel) {
        return NULL;
    }

    return ngx_rbtree_min(tree->root, tree->sentinel);
}


ngx_codeb_peer_t *
ngx_codeb_peer_first(void)
{
    return (ngx_codeb_peer_t *) ngx_codeb_tree_first(&ngx_codeb_peer_ids);
}


ngx_codeb_peer_t *
ngx_codeb_peer_next(ngx_codeb_peer_t *peer)
{
    return (ngx_codeb_peer_t *) ngx_rbtree_next(&ngx_codeb_peer_ids,
                                                &peer->id_node.node);
}


ngx_codeb_room_t *
ngx_codeb_room_first(void)
{
    return (ngx_codeb_room_t *) ngx_codeb_tree_first(&ngx_codeb_rooms);
}


ngx_codeb_room_t *
ngx_codeb_room_next(ngx_codeb_room_t *room)
{
    return (ngx_codeb_room_t *) ngx_rbtree_next(&ngx_codeb_rooms,
                                                &room->sn.node);
}

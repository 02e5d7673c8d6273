/*
 * Client frames of /signal.ashx (docs/signal.md "WebSocket"): one JSON
 * object per text message, dispatched by "type"; the rate limit; the
 * checks of join's fields.
 */

#include "ngx_codeb_signal.h"


typedef void (*ngx_codeb_frame_pt)(ngx_codeb_peer_t *peer, ngx_array_t *m);

typedef struct {
    ngx_str_t                   type;
    ngx_uint_t                  joined;      /* needs a joined peer */
    ngx_codeb_frame_pt          handler;
} ngx_codeb_frame_type_t;


static void ngx_codeb_frame_join(ngx_codeb_peer_t *peer, ngx_array_t *m);
static void ngx_codeb_frame_signal(ngx_codeb_peer_t *peer, ngx_array_t *m);
static void ngx_codeb_frame_dial(ngx_codeb_peer_t *peer, ngx_array_t *m);
static void ngx_codeb_frame_leave(ngx_codeb_peer_t *peer, ngx_array_t *m);
static void ngx_codeb_frame_ping(ngx_codeb_peer_t *peer, ngx_array_t *m);
static ngx_uint_t ngx_codeb_peer_limited(ngx_codeb_peer_t *peer);
static ngx_int_t ngx_codeb_frame_join_room(ngx_codeb_peer_t *peer,
    ngx_codeb_json_member_t *jroom, ngx_codeb_json_member_t *jdial);
static ngx_int_t ngx_codeb_frame_join_resume(ngx_codeb_peer_t *peer,
    ngx_codeb_json_member_t *jresume);


static ngx_codeb_frame_type_t  ngx_codeb_frame_types[] = {
    { ngx_string("join"), 0, ngx_codeb_frame_join },
    { ngx_string("signal"), 1, ngx_codeb_frame_signal },
    { ngx_string("dial"), 1, ngx_codeb_frame_dial },
    { ngx_string("leave"), 1, ngx_codeb_frame_leave },
    { ngx_string("ping"), 1, ngx_codeb_frame_ping },
    { ngx_null_string, 0, NULL }
};


void
ngx_codeb_peer_message(ngx_codeb_ws_t *ws, ngx_uint_t opcode, u_char *data,
    size_t len)
{
    ngx_int_t                 rc;
    ngx_array_t              *m;
    ngx_codeb_peer_t         *peer;
    ngx_codeb_frame_type_t   *ft;
    ngx_codeb_json_member_t  *jtype;

    peer = ws->data;
    if (peer == NULL || ngx_codeb_peer_limited(peer)) {
        return;
    }

    if (opcode != NGX_CODEB_WS_TEXT) {
        ngx_codeb_peer_error(peer, "bad_frame", "binary frames are not used");
        return;
    }

    rc = ngx_codeb_json_object(ngx_codeb_scratch(), data, len, &m);

    if (rc == NGX_ERROR) {
        ngx_codeb_ws_close(ws, 1011, "out of memory");
        return;
    }

    if (rc != NGX_OK) {
        ngx_codeb_peer_error(peer, "bad_frame", "expected a JSON object");
        return;
    }

    jtype = ngx_codeb_json_get_type(m, "type", NGX_CODEB_JSON_STRING);
    if (jtype == NULL) {
        ngx_codeb_peer_error(peer, "bad_frame", "missing \"type\"");
        return;
    }

    for (ft = ngx_codeb_frame_types; ft->type.len; ft++) {
        if (ft->type.len == jtype->str.len
            && ngx_strncmp(ft->type.data, jtype->str.data, jtype->str.len)
               == 0)
        {
            break;
        }
    }

    if (ft->handler == NULL) {
        ngx_codeb_peer_error(peer, "bad_frame", "unknown \"type\"");
        return;
    }

    if (ft->joined && peer->state != NGX_CODEB_PEER_JOINED) {
        ngx_codeb_peer_error(peer, "not_joined", "send join first");
        return;
    }

    ft->handler(peer, m);
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


/* ---- field checks ---- */

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


/* 1..max characters of UTF-8 (already validated), no control characters */
ngx_uint_t
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


/* 1-32 digits, a leading '+' allowed */
ngx_uint_t
ngx_codeb_peer_valid_number(ngx_str_t *n)
{
    size_t  i;

    if (n->len == 0 || n->len > NGX_CODEB_NUMBER_MAX) {
        return 0;
    }

    for (i = 0; i < n->len; i++) {
        if ((n->data[i] < '0' || n->data[i] > '9')
            && !(i == 0 && n->data[i] == '+' && n->len > 1))
        {
            return 0;
        }
    }

    return 1;
}


/* "p_" + 16 lowercase hex (docs/signal.md "Types") */
ngx_uint_t
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


/* ---- the frames ---- */

/* NULL when join's fields have the right types and values, else why */
static char *
ngx_codeb_frame_join_check(ngx_array_t *m)
{
    ngx_codeb_json_member_t  *j;

    j = ngx_codeb_json_get_type(m, "room", NGX_CODEB_JSON_STRING);

    if (j == NULL
        || (!ngx_codeb_peer_valid_room(&j->str)
            && ngx_strcmp(j->str.data, "random") != 0))
    {
        return "\"room\" must be 1-64 of [A-Za-z0-9_.-]";
    }

    j = ngx_codeb_json_get_type(m, "name", NGX_CODEB_JSON_STRING);

    if (j == NULL || !ngx_codeb_peer_valid_name(&j->str, NGX_CODEB_NAME_MAX)) {
        return "\"name\" must be 1-64 characters";
    }

    j = ngx_codeb_json_get(m, "dial");

    if (j && j->type != NGX_CODEB_JSON_NULL
        && (j->type != NGX_CODEB_JSON_STRING
            || !ngx_codeb_peer_valid_number(&j->str)))
    {
        return "\"dial\" must be a virtual number";
    }

    j = ngx_codeb_json_get(m, "office");

    if (j && j->type != NGX_CODEB_JSON_BOOL && j->type != NGX_CODEB_JSON_NULL)
    {
        return "\"office\" must be boolean";
    }

    j = ngx_codeb_json_get(m, "resume");

    if (j && j->type != NGX_CODEB_JSON_OBJECT && j->type != NGX_CODEB_JSON_NULL)
    {
        return "\"resume\" must be an object";
    }

    return NULL;
}


static void
ngx_codeb_frame_join(ngx_codeb_peer_t *peer, ngx_array_t *m)
{
    char                     *why;
    ngx_str_t                 identity;
    ngx_log_t                *log;
    ngx_flag_t                admin;
    ngx_codeb_json_member_t  *jtoken, *joffice, *jresume;

    if (peer->state != NGX_CODEB_PEER_NEW) {
        ngx_codeb_peer_error(peer, "already_joined", "already joined");
        return;
    }

    why = ngx_codeb_frame_join_check(m);
    if (why) {
        ngx_codeb_peer_error(peer, "bad_frame", why);
        return;
    }

    log = ngx_codeb_peer_log(peer);
    jtoken = ngx_codeb_json_get(m, "token");
    joffice = ngx_codeb_json_get(m, "office");
    jresume = ngx_codeb_json_get(m, "resume");

    identity.len = 0;
    admin = 0;

    if (jtoken && jtoken->type != NGX_CODEB_JSON_NULL
        && (jtoken->type != NGX_CODEB_JSON_STRING
            || ngx_codeb_jwt_verify(peer->tenant, &jtoken->str,
                                    ngx_codeb_scratch(), log, &identity,
                                    &admin)
               != NGX_OK
            || !ngx_codeb_peer_valid_name(&identity, 256)))
    {
        ngx_codeb_peer_error(peer, "forbidden", "invalid token");
        return;
    }

    if (joffice && joffice->boolean && identity.len == 0) {
        ngx_codeb_peer_error(peer, "forbidden",
                             "office tabs need a verified identity");
        return;
    }

    if (ngx_codeb_frame_join_room(peer,
            ngx_codeb_json_get_type(m, "room", NGX_CODEB_JSON_STRING),
            ngx_codeb_json_get(m, "dial"))
        != NGX_OK)
    {
        return;
    }

    if (ngx_codeb_peer_set_str(&peer->name,
            &ngx_codeb_json_get_type(m, "name", NGX_CODEB_JSON_STRING)->str,
            log) != NGX_OK
        || ngx_codeb_peer_set_str(&peer->identity, &identity, log) != NGX_OK)
    {
        ngx_codeb_ws_close(peer->ws, 1011, "out of memory");
        return;
    }

    peer->office = (joffice && joffice->boolean);

    if (jresume && jresume->type == NGX_CODEB_JSON_OBJECT
        && peer->conf->grace
        && ngx_codeb_frame_join_resume(peer, jresume) != NGX_OK)
    {
        return;
    }

    ngx_codeb_peer_join_start(peer);
}


/*
 * the room: the one given, a random one (a fixed prefix and 8 random
 * characters), or a fresh one for a dial ("vnum-<number>-" and 8)
 */
static ngx_int_t
ngx_codeb_frame_join_room(ngx_codeb_peer_t *peer,
    ngx_codeb_json_member_t *jroom, ngx_codeb_json_member_t *jdial)
{
    u_char  *p;

    p = peer->room;

    if (jdial && jdial->type == NGX_CODEB_JSON_STRING) {
        p = ngx_sprintf(p, "vnum-%V-", &jdial->str);
        peer->dial = 1;

    } else if (ngx_strcmp(jroom->str.data, "random") == 0) {
        p = ngx_cpymem(p, NGX_CODEB_RANDOM_ROOM,
                       sizeof(NGX_CODEB_RANDOM_ROOM) - 1);

    } else {
        peer->room_len = ngx_cpymem(p, jroom->str.data, jroom->str.len)
                         - peer->room;
        return NGX_OK;
    }

    /* NGX_CODEB_ROOM_MAX holds "vnum-" + 32 digits + "-" + 8 */

    if (ngx_codeb_random_alnum(p, NGX_CODEB_RANDOM_LEN) != NGX_OK) {
        ngx_codeb_ws_close(peer->ws, 1011, "no entropy");
        return NGX_ERROR;
    }

    peer->room_len = p + NGX_CODEB_RANDOM_LEN - peer->room;

    return NGX_OK;
}


/* resume: {peerId, resumeToken, lastSeq} (docs/signal.md "Resume") */
static ngx_int_t
ngx_codeb_frame_join_resume(ngx_codeb_peer_t *peer,
    ngx_codeb_json_member_t *jresume)
{
    int64_t                   last;
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *jid, *jtok;

    if (ngx_codeb_json_object(ngx_codeb_scratch(), jresume->raw.data,
                              jresume->raw.len, &m)
        != NGX_OK)
    {
        ngx_codeb_peer_error(peer, "bad_frame", "invalid \"resume\"");
        return NGX_ERROR;
    }

    jid = ngx_codeb_json_get_type(m, "peerId", NGX_CODEB_JSON_STRING);
    jtok = ngx_codeb_json_get_type(m, "resumeToken", NGX_CODEB_JSON_STRING);

    if (jid == NULL || !ngx_codeb_peer_valid_id(&jid->str)
        || jtok == NULL || jtok->str.len != NGX_CODEB_TOKEN_LEN
        || ngx_codeb_json_int(m, "lastSeq", &last) != NGX_OK || last < 0)
    {
        ngx_codeb_peer_error(peer, "bad_frame",
                             "\"resume\" needs peerId, resumeToken, lastSeq");
        return NGX_ERROR;
    }

    ngx_memcpy(peer->id, jid->str.data, NGX_CODEB_PEER_ID_LEN);
    ngx_memcpy(peer->token, jtok->str.data, NGX_CODEB_TOKEN_LEN);
    peer->resume_from = (uint64_t) last;
    peer->resume = 1;

    return NGX_OK;
}


static void
ngx_codeb_frame_signal(ngx_codeb_peer_t *peer, ngx_array_t *m)
{
    ngx_codeb_peer_signal(peer, m);
}


static void
ngx_codeb_frame_dial(ngx_codeb_peer_t *peer, ngx_array_t *m)
{
    ngx_codeb_json_member_t  *jm;

    jm = ngx_codeb_json_get_type(m, "number", NGX_CODEB_JSON_STRING);

    if (jm == NULL) {
        ngx_codeb_peer_error(peer, "bad_frame", "missing \"number\"");
        return;
    }

    ngx_codeb_peer_dial(peer, &jm->str);
}


static void
ngx_codeb_frame_leave(ngx_codeb_peer_t *peer, ngx_array_t *m)
{
    ngx_codeb_ws_t  *ws;

    ws = peer->ws;

    ngx_codeb_peer_leave(peer, "left");
    ngx_codeb_ws_close(ws, 1000, NULL);
}


static void
ngx_codeb_frame_ping(ngx_codeb_peer_t *peer, ngx_array_t *m)
{
    yajl_gen   g;
    ngx_str_t  frame;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return;
    }

    ngx_codeb_gen_cstr(g, "type", "pong");
    frame = ngx_codeb_gen_text(g);

    ngx_codeb_peer_deliver(peer, frame.data, frame.len);
}

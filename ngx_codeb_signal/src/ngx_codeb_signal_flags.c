/*
 * The read-only flags (docs/signal.md "Plain HTTP"): ?healthsummary
 * (anonymous-safe: no caller numbers, no addresses, no secret room ids),
 * ?stats, ?registrar and ?whitelist (admin) and ?cameras.
 */

#include "ngx_codeb_signal.h"


#define NGX_CODEB_ROOM_SHOWN   10    /* characters of a room id published */


static ngx_int_t ngx_codeb_signal_health_query(ngx_http_request_t *r,
    redisCallbackFn *cb);
static void ngx_codeb_flag_health_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_flag_stats_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_flag_whitelist_reply(redisAsyncContext *ac,
    void *reply, void *data);
static int ngx_libc_cdecl ngx_codeb_whitelist_cmp(const void *one,
    const void *two);


ngx_int_t
ngx_codeb_flag_health(ngx_http_request_t *r)
{
    return ngx_codeb_signal_health_query(r, ngx_codeb_flag_health_reply);
}


/*
 * the health script counts the tenant's rooms and peers; with Redis still
 * down after the wait, the answer says so ("redis": "down")
 */
ngx_int_t
ngx_codeb_flag_stats(ngx_http_request_t *r)
{
    if (!ngx_codeb_redis_ready()) {
        r->main->count++;
        ngx_codeb_flag_stats_reply(NULL, NULL, r);
        return NGX_DONE;
    }

    return ngx_codeb_signal_health_query(r, ngx_codeb_flag_stats_reply);
}


static ngx_int_t
ngx_codeb_signal_health_query(ngx_http_request_t *r, redisCallbackFn *cb)
{
    u_char                  now[NGX_TIME_T_LEN];
    ngx_str_t              *rooms, *trunks, *calls, *px;
    ngx_codeb_redis_args_t  a;

    rooms = ngx_codeb_signal_key(r, "rooms", NULL);
    trunks = ngx_codeb_signal_key(r, "trunks", NULL);
    calls = ngx_codeb_signal_key(r, "cdr:vnum", NULL);
    px = ngx_codeb_signal_key(r, "", NULL);

    if (rooms == NULL || trunks == NULL || calls == NULL || px == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, rooms);
    ngx_codeb_redis_arg_str(&a, trunks);
    ngx_codeb_redis_arg_str(&a, calls);
    ngx_codeb_redis_arg_str(&a, px);
    ngx_codeb_redis_arg(&a, now, ngx_sprintf(now, "%T", ngx_time()) - now);

    return ngx_codeb_http_redis(r, &ngx_codeb_signal_health_script, cb, 3,
                                  &a);
}


/*
 * How much of a room id ?healthsummary shows: ids longer than 10
 * characters are cut to 10; a dial room "vnum-<number>-<8 random>" with
 * a short number is cut before its random part (docs/signal.md).
 */
static size_t
ngx_codeb_room_shown(u_char *id, size_t len)
{
    size_t  i, prefix;

    if (len <= NGX_CODEB_ROOM_SHOWN) {
        return len;
    }

    prefix = len - NGX_CODEB_RANDOM_LEN;

    if (len > sizeof("vnum--") - 1 + NGX_CODEB_RANDOM_LEN
        && ngx_strncmp(id, "vnum-", 5) == 0 && id[prefix - 1] == '-')
    {
        for (i = 5; i < prefix - 1; i++) {
            if ((id[i] < '0' || id[i] > '9') && id[i] != '+') {
                return NGX_CODEB_ROOM_SHOWN;
            }
        }

        return ngx_min(prefix, NGX_CODEB_ROOM_SHOWN);
    }

    return NGX_CODEB_ROOM_SHOWN;
}


static void
ngx_codeb_health_rooms(yajl_gen g, redisReply *rooms)
{
    u_char      cut[NGX_CODEB_ROOM_SHOWN + 3];
    size_t      i, n;
    redisReply  *e;

    ngx_codeb_gen_key(g, "rooms");
    yajl_gen_array_open(g);

    for (i = 0; i + 1 < rooms->elements; i += 2) {
        e = rooms->element[i];

        if (e->type != REDIS_REPLY_STRING
            || rooms->element[i + 1]->type != REDIS_REPLY_INTEGER)
        {
            continue;
        }

        yajl_gen_map_open(g);

        n = ngx_codeb_room_shown((u_char *) e->str, e->len);

        if (n < e->len) {
            ngx_memcpy(cut, e->str, n);
            ngx_memcpy(cut + n, "...", 3);
            ngx_codeb_gen_str(g, "id", cut, n + 3);

        } else {
            ngx_codeb_gen_str(g, "id", (u_char *) e->str, e->len);
        }

        ngx_codeb_gen_int(g, "peers", rooms->element[i + 1]->integer);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
}


/* trunks: "<registered 0|1>,<last seen epoch s or ->"; names only */
static void
ngx_codeb_health_trunks(yajl_gen g, redisReply *trunks)
{
    size_t       i;
    ngx_int_t    last;
    redisReply  *id, *e;

    ngx_codeb_gen_key(g, "trunks");
    yajl_gen_array_open(g);

    for (i = 0; i + 1 < trunks->elements; i += 2) {
        id = trunks->element[i];
        e = trunks->element[i + 1];

        if (id->type != REDIS_REPLY_STRING || e->type != REDIS_REPLY_STRING
            || e->len < 3)
        {
            continue;
        }

        yajl_gen_map_open(g);
        ngx_codeb_gen_str(g, "id", (u_char *) id->str, id->len);
        ngx_codeb_gen_bool(g, "registered", e->str[0] == '1');
        ngx_codeb_gen_key(g, "lastSeenSec");

        last = ngx_atoi((u_char *) e->str + 2, e->len - 2);

        if (last == NGX_ERROR || last > ngx_time()) {
            yajl_gen_null(g);

        } else {
            yajl_gen_integer(g, ngx_time() - last);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
}


static int64_t
ngx_codeb_reply_int(redisReply *e)
{
    return e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
}


static void
ngx_codeb_flag_health_reply(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen                 g;
    redisReply              *rep = reply;
    ngx_http_request_t      *r = data;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4
        || rep->element[0]->type != REDIS_REPLY_ARRAY
        || rep->element[1]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_cstr(g, "build", ngx_codeb_build());
    ngx_codeb_gen_vstr(g, "tenant", &ctx->tenant->name);
    ngx_codeb_health_rooms(g, rep->element[0]);
    ngx_codeb_health_trunks(g, rep->element[1]);
    ngx_codeb_gen_int(g, "vnumCallsLast24h",
                      ngx_codeb_reply_int(rep->element[2]));
    ngx_codeb_gen_int(g, "mediaCalls", ngx_codeb_reply_int(rep->element[3]));

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


static void
ngx_codeb_flag_stats_reply(redisAsyncContext *ac, void *reply, void *data)
{
    size_t                   i;
    int64_t                  peers;
    yajl_gen                 g;
    ngx_uint_t               lpeers, lrooms, ldetached, up;
    redisReply              *rep = reply, *rooms;
    ngx_http_request_t      *r = data;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    up = (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 4
          && rep->element[0]->type == REDIS_REPLY_ARRAY);

    ngx_codeb_gen_cstr(g, "build", ngx_codeb_build());
    ngx_codeb_gen_vstr(g, "tenant", &ctx->tenant->name);
    ngx_codeb_gen_cstr(g, "redis", up ? "up" : "down");

    if (up) {
        rooms = rep->element[0];
        peers = 0;

        for (i = 1; i < rooms->elements; i += 2) {
            peers += ngx_codeb_reply_int(rooms->element[i]);
        }

        ngx_codeb_gen_int(g, "rooms", rooms->elements / 2);
        ngx_codeb_gen_int(g, "peers", peers);
        ngx_codeb_gen_int(g, "mediaCalls",
                          ngx_codeb_reply_int(rep->element[3]));
    }

    ngx_codeb_signal_local_counts(&lpeers, &lrooms, &ldetached);

    ngx_codeb_gen_key(g, "worker");
    yajl_gen_map_open(g);
    ngx_codeb_gen_vstr(g, "id", ngx_codeb_worker_id());
    ngx_codeb_gen_int(g, "peers", lpeers);
    ngx_codeb_gen_int(g, "rooms", lrooms);
    ngx_codeb_gen_int(g, "detached", ldetached);
    yajl_gen_map_close(g);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


ngx_int_t
ngx_codeb_flag_cameras(ngx_http_request_t *r)
{
    yajl_gen                 g;
    ngx_uint_t               i;
    ngx_codeb_camera_t      *cam;
    ngx_codeb_signal_req_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_key(g, "cameras");
    yajl_gen_array_open(g);

    cam = ctx->tenant->cameras ? ctx->tenant->cameras->elts : NULL;

    for (i = 0; cam && i < ctx->tenant->cameras->nelts; i++) {
        yajl_gen_map_open(g);
        ngx_codeb_gen_vstr(g, "name", &cam[i].name);
        ngx_codeb_gen_vstr(g, "streamId", &cam[i].stream_id);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    return ngx_codeb_http_json(r, NGX_HTTP_OK, g);
}


static void
ngx_codeb_flag_registrar_binding(yajl_gen g, redisReply *e)
{
    int64_t                   n;
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *j;
    static char              *fields[] = { "contact", "transport", "source",
                                           "instance", "userAgent" };
    ngx_uint_t                i;

    if (e->type != REDIS_REPLY_STRING
        || ngx_codeb_json_object(ngx_codeb_scratch(), (u_char *) e->str,
                                 e->len, &m) != NGX_OK)
    {
        return;
    }

    /* what a binding says, but its flow (which worker holds it) */

    yajl_gen_map_open(g);

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        j = ngx_codeb_json_get_type(m, fields[i], NGX_CODEB_JSON_STRING);
        if (j) {
            ngx_codeb_gen_vstr(g, fields[i], &j->str);
        }
    }

    if (ngx_codeb_json_int(m, "port", &n) == NGX_OK) {
        ngx_codeb_gen_int(g, "port", n);
    }

    if (ngx_codeb_json_int(m, "expires", &n) == NGX_OK) {
        ngx_codeb_gen_int(g, "expiresInSec", ngx_max(n - ngx_time(), 0));
    }

    yajl_gen_map_close(g);
}


/* {user, {binding JSON...}, ...} -> {"registrations": [{user, bindings}]} */
static void
ngx_codeb_flag_registrar_reply(redisAsyncContext *ac, void *reply,
    void *data)
{
    size_t               i, k;
    yajl_gen             g;
    redisReply          *rep = reply, *b;
    ngx_http_request_t  *r = data;

    g = ngx_codeb_http_reply_gen(r, rep, REDIS_REPLY_ARRAY);
    if (g == NULL) {
        return;
    }

    ngx_codeb_gen_key(g, "registrations");
    yajl_gen_array_open(g);

    for (i = 0; i + 1 < rep->elements; i += 2) {
        b = rep->element[i + 1];

        if (rep->element[i]->type != REDIS_REPLY_STRING
            || b->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        yajl_gen_map_open(g);
        ngx_codeb_gen_str(g, "user", (u_char *) rep->element[i]->str,
                          rep->element[i]->len);
        ngx_codeb_gen_key(g, "bindings");
        yajl_gen_array_open(g);

        for (k = 0; k < b->elements; k++) {
            ngx_codeb_flag_registrar_binding(g, b->element[k]);
        }

        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


/* ?registrar: the SIP bindings of the tenant (ngx_codeb_sipws) */
ngx_int_t
ngx_codeb_flag_registrar(ngx_http_request_t *r)
{
    u_char                  now[NGX_TIME_T_LEN];
    ngx_str_t              *regs, *px;
    ngx_codeb_redis_args_t  a;

    regs = ngx_codeb_signal_key(r, "regs", NULL);
    px = ngx_codeb_signal_key(r, "", NULL);

    if (regs == NULL || px == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, regs);
    ngx_codeb_redis_arg_str(&a, px);
    ngx_codeb_redis_arg(&a, now, ngx_sprintf(now, "%T", ngx_time()) - now);

    return ngx_codeb_http_redis(r, &ngx_codeb_signal_registrar_script,
                                  ngx_codeb_flag_registrar_reply, 1, &a);
}


/*
 * ?whitelist: the numbers outbound calls may dial, the set
 * codeb:{tenant}:whitelist that POST /api.ashx/v1/calls adds to (SADD)
 */
ngx_int_t
ngx_codeb_flag_whitelist(ngx_http_request_t *r)
{
    ngx_str_t               *key;
    ngx_codeb_redis_args_t   a;

    key = ngx_codeb_signal_key(r, "whitelist", NULL);
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "SMEMBERS");
    ngx_codeb_redis_arg_str(&a, key);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_flag_whitelist_reply, 0,
                                  &a);
}


/* byte order, a shorter number before the longer one it begins */
static int ngx_libc_cdecl
ngx_codeb_whitelist_cmp(const void *one, const void *two)
{
    int          rc;
    redisReply  *a, *b;

    a = *(redisReply **) one;
    b = *(redisReply **) two;

    rc = ngx_memcmp(a->str, b->str, ngx_min(a->len, b->len));

    if (rc != 0) {
        return rc;
    }

    return (a->len > b->len) - (a->len < b->len);
}


/* {number, ...} (unordered) -> {"data": [number, ...] ascending, "total"} */
static void
ngx_codeb_flag_whitelist_reply(redisAsyncContext *ac, void *reply,
    void *data)
{
    size_t               i, n;
    yajl_gen             g;
    redisReply          *rep = reply, **nums;
    ngx_http_request_t  *r = data;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    /* pointers into the reply (freed by hiredis once this returns) */

    nums = ngx_palloc(r->pool, (rep->elements + 1) * sizeof(redisReply *));
    if (nums == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0, n = 0; i < rep->elements; i++) {
        if (rep->element[i]->type == REDIS_REPLY_STRING) {
            nums[n++] = rep->element[i];
        }
    }

    ngx_qsort(nums, n, sizeof(redisReply *), ngx_codeb_whitelist_cmp);

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_key(g, "data");
    yajl_gen_array_open(g);

    for (i = 0; i < n; i++) {
        yajl_gen_string(g, (u_char *) nums[i]->str, nums[i]->len);
    }

    yajl_gen_array_close(g);
    ngx_codeb_gen_int(g, "total", n);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}

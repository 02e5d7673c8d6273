/*
 * ?cdrlog and ?diallog (admin, docs/signal.md): the call records that
 * ngx_codeb_sipws writes when a call is over (P cdrs, newest first;
 * docs/sip.md "Call records").
 *   ?cdrlog[&limit=N]   {cdrs: [record, ...]}, every member of a record
 *   ?diallog[&limit=N]  {dials: [{time, user, number, direction, trunk,
 *                        status, cause, durationSec}]}: the calls users
 *                        placed (outbound and internal), time = start
 * limit: 1-1000, default 100.
 */

#include "ngx_codeb_signal.h"


#define NGX_CODEB_CDR_LIMIT       100
#define NGX_CODEB_CDR_LIMIT_MAX   1000


static ngx_int_t ngx_codeb_flag_records(ngx_http_request_t *r,
    ngx_uint_t dials);
static void ngx_codeb_flag_records_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_flag_dial(yajl_gen g, ngx_array_t *m);


/* ?cdrlog: the newest records, whole */
ngx_int_t
ngx_codeb_flag_cdrlog(ngx_http_request_t *r)
{
    return ngx_codeb_flag_records(r, 0);
}


/* ?diallog: the newest calls placed by users */
ngx_int_t
ngx_codeb_flag_diallog(ngx_http_request_t *r)
{
    return ngx_codeb_flag_records(r, 1);
}


/*
 * the limit= of the query (400 when bad); LRANGE of that many records, of
 * all there are for the dials (inbound calls are left out)
 */
static ngx_int_t
ngx_codeb_flag_records(ngx_http_request_t *r, ngx_uint_t dials)
{
    u_char                   last[NGX_INT_T_LEN];
    ngx_int_t                limit;
    ngx_str_t               *key, arg;
    ngx_codeb_redis_args_t   a;
    ngx_codeb_signal_req_t  *ctx;

    limit = NGX_CODEB_CDR_LIMIT;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &arg) == NGX_OK) {
        limit = ngx_atoi(arg.data, arg.len);

        if (limit < 1 || limit > NGX_CODEB_CDR_LIMIT_MAX) {
            return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                        "bad_request",
                                        "limit is 1 to 1000");
        }
    }

    key = ngx_codeb_signal_key(r, "cdrs", NULL);
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);
    ctx->limit = dials ? limit : 0;

    if (dials) {
        limit = NGX_CODEB_CDR_LIMIT_MAX;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "LRANGE");
    ngx_codeb_redis_arg_str(&a, key);
    ngx_codeb_redis_arg_lit(&a, "0");
    ngx_codeb_redis_arg(&a, last, ngx_sprintf(last, "%i", limit - 1) - last);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_flag_records_reply, 0,
                                  &a);
}


/*
 * the records, newest first: every one whole (?cdrlog, ctx->limit 0), or
 * the first ctx->limit calls placed by users (?diallog)
 */
static void
ngx_codeb_flag_records_reply(redisAsyncContext *ac, void *reply, void *data)
{
    size_t                    i;
    yajl_gen                  g;
    ngx_int_t                 n;
    redisReply               *rep = reply, *e;
    ngx_array_t              *m;
    ngx_http_request_t       *r = data;
    ngx_codeb_signal_req_t   *ctx;
    ngx_codeb_json_member_t  *dir;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_signal_module);

    g = ngx_codeb_http_reply_gen(r, rep, REDIS_REPLY_ARRAY);
    if (g == NULL) {
        return;
    }

    ngx_codeb_gen_key(g, ctx->limit ? "dials" : "cdrs");
    yajl_gen_array_open(g);

    for (i = 0, n = 0;
         i < rep->elements && (ctx->limit == 0 || n < ctx->limit);
         i++)
    {
        e = rep->element[i];

        if (e->type != REDIS_REPLY_STRING
            || ngx_codeb_json_object(r->pool, (u_char *) e->str, e->len, &m)
               != NGX_OK)
        {
            continue;
        }

        if (ctx->limit == 0) {
            yajl_gen_map_open(g);
            ngx_codeb_gen_members(g, m);
            yajl_gen_map_close(g);
            continue;
        }

        dir = ngx_codeb_json_get_type(m, "direction", NGX_CODEB_JSON_STRING);

        if (dir && !ngx_codeb_signal_is(&dir->str, "inbound")) {
            ngx_codeb_flag_dial(g, m);
            n++;
        }
    }

    yajl_gen_array_close(g);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


/* one dial: the members of a record under the names of the dial log */
static void
ngx_codeb_flag_dial(yajl_gen g, ngx_array_t *m)
{
    int64_t                   n;
    ngx_uint_t                i;
    ngx_codeb_json_member_t  *j;
    static char              *names[][2] = {
        { "user", "from" }, { "number", "to" }, { "direction", "direction" },
        { "trunk", "trunk" }, { "cause", "cause" }
    };

    yajl_gen_map_open(g);

    if (ngx_codeb_json_int(m, "start", &n) == NGX_OK) {
        ngx_codeb_gen_int(g, "time", n);
    }

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        j = ngx_codeb_json_get_type(m, names[i][1], NGX_CODEB_JSON_STRING);

        if (j) {
            ngx_codeb_gen_vstr(g, names[i][0], &j->str);

        } else {
            ngx_codeb_gen_null(g, names[i][0]);
        }
    }

    if (ngx_codeb_json_int(m, "status", &n) == NGX_OK) {
        ngx_codeb_gen_int(g, "status", n);
    }

    if (ngx_codeb_json_int(m, "durationSec", &n) == NGX_OK) {
        ngx_codeb_gen_int(g, "durationSec", n);
    }

    yajl_gen_map_close(g);
}

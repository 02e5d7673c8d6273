/*
 * Transcripts (docs/api.md "Transcripts"): the list, filtered and paged in
 * one Lua script, and one transcript, from the index in Redis that
 * ngx_codeb_api_transcripts_index.c keeps; the shares are in
 * ngx_codeb_api_shares.c.
 */

#include "ngx_codeb_api.h"


#define NGX_CODEB_TR_Q_MAX       128            /* bytes of ?q= */


/*
 * A page, newest first.  KEYS: P transcripts, P transcripts:t.  ARGV:
 * min score ("-inf" or epoch ms), source ("", "vnum", "outbound-ai"), q
 * (lower case, or ""), offset, limit.  {total, summaries}.
 */
static ngx_codeb_redis_script_t  ngx_codeb_tr_list_script = {
    ngx_string(
        "local min, src, q = ARGV[1], ARGV[2], ARGV[3]\n"
        "local from, n = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
        "if src == '' and q == '' then\n"
        "  local ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', min,\n"
        "                         'LIMIT', from, n)\n"
        "  local recs = {}\n"
        "  if #ids > 0 then recs = redis.call('HMGET', KEYS[1], unpack(ids))"
        " end\n"
        "  return {redis.call('ZCOUNT', KEYS[2], min, '+inf'), recs}\n"
        "end\n"
        "local fields = {'caller', 'number', 'displayName', 'rule', 'phone'}\n"
        "local ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', min)\n"
        "local total, page = 0, {}\n"
        "for i = 1, #ids, 500 do\n"
        "  local recs = redis.call('HMGET', KEYS[1],\n"
        "                         unpack(ids, i, math.min(i + 499, #ids)))\n"
        "  for _, s in ipairs(recs) do\n"
        "    local t = s and cjson.decode(s)\n"
        "    local ok = t and true or false\n"
        "    if ok and src == 'vnum' then\n"
        "      ok = t.callerSource == 'vnum'\n"
        "           or t.callerSource == 'office-tab'\n"
        "    elseif ok and src ~= '' then\n"
        "      ok = t.callerSource == src\n"
        "    end\n"
        "    if ok and q ~= '' then\n"
        "      ok = false\n"
        "      for _, f in ipairs(fields) do\n"
        "        local v = t[f]\n"
        "        if (type(v) == 'string' or type(v) == 'number')\n"
        "           and string.find(string.lower(tostring(v)), q, 1, true)\n"
        "        then ok = true end\n"
        "      end\n"
        "    end\n"
        "    if ok then\n"
        "      if total >= from and total < from + n then\n"
        "        page[#page + 1] = s\n"
        "      end\n"
        "      total = total + 1\n"
        "    end\n"
        "  end\n"
        "end\n"
        "return {total, page}\n"),
    ""
};


static void ngx_codeb_tr_listed(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_tr_got(redisAsyncContext *ac, void *reply,
    void *data);


ngx_int_t
ngx_codeb_api_transcripts_init(ngx_conf_t *cf)
{
    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_tr_list_script)
        != NGX_OK
        || ngx_codeb_api_transcripts_index_init(cf) != NGX_OK
        || ngx_codeb_api_shares_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_codeb_api_call_id(ngx_str_t *id)
{
    size_t  i;

    if (id->len == 0 || id->len > 128
        || (id->len <= 2 && id->data[0] == '.'
            && id->data[id->len - 1] == '.'))
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < id->len; i++) {
        if (!(ngx_codeb_api_alnum(id->data[i]) || id->data[i] == '.'
              || id->data[i] == '_' || id->data[i] == '-'
              || id->data[i] == ':'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_codeb_api_transcript_404(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char  *text;
    size_t   i;

    for (i = 0; i < id->len && id->len <= 64; i++) {
        if (!(ngx_codeb_api_alnum(id->data[i]) || id->data[i] == '_'
              || id->data[i] == '-'))
        {
            break;
        }
    }

    if (id->len == 0 || id->len > 64 || i < id->len) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "No transcript for that callId");
    }

    text = ngx_pnalloc(r->pool, sizeof("No transcript for callId=") + 64);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_sprintf(text, "No transcript for callId=%V%Z", id);

    return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                (char *) text);
}


/*
 * GET /v1/transcripts?source=&q=&since=: the list envelope of summaries,
 * newest first (by startedUtc); 400 naming a bad source, q or since
 */
ngx_int_t
ngx_codeb_api_transcripts_list(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx)
{
    u_char                  *p, *dst, *src;
    int64_t                  since;
    ngx_int_t                limit, offset, rc;
    ngx_str_t                v, args[5], *sum, *order;
    ngx_uint_t               i;
    ngx_codeb_redis_args_t   a;

    if (ngx_codeb_api_page(r, &limit, &offset, &rc) != NGX_OK) {
        return rc;
    }

    p = ngx_pnalloc(r->pool, 3 * NGX_INT64_LEN + 3 * NGX_CODEB_TR_Q_MAX);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&args[0], "-inf");
    ngx_str_null(&args[1]);
    ngx_str_null(&args[2]);

    if (ngx_http_arg(r, (u_char *) "since", 5, &v) == NGX_OK && v.len) {
        /* "...T12:00:00Z" or "...T12%3A00%3A00Z" */
        dst = p;
        src = v.data;

        if (v.len > 64) {
            goto bad_since;
        }

        ngx_unescape_uri(&dst, &src, v.len, 0);

        if (ngx_codeb_parse_time(p, dst - p, &since) != NGX_OK) {
            goto bad_since;
        }

        args[0].data = p;
        args[0].len = ngx_sprintf(p, "%L", since) - p;
        p += NGX_INT64_LEN;
    }

    if (ngx_http_arg(r, (u_char *) "source", 6, &v) == NGX_OK && v.len) {
        if (!(v.len == 4 && ngx_strncmp(v.data, "vnum", 4) == 0)
            && !(v.len == 11 && ngx_strncmp(v.data, "outbound-ai", 11) == 0))
        {
            return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_request",
                                        "source: \"vnum\" or "
                                        "\"outbound-ai\"");
        }

        args[1] = v;
    }

    if (ngx_http_arg(r, (u_char *) "q", 1, &v) == NGX_OK && v.len) {
        if (v.len > 3 * NGX_CODEB_TR_Q_MAX) {
            goto bad_q;
        }

        /* "+" is a space in a query, then %XX; r->args stays as it is */
        src = ngx_pnalloc(r->pool, v.len);
        if (src == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < v.len; i++) {
            src[i] = v.data[i] == '+' ? ' ' : v.data[i];
        }

        dst = p;
        ngx_unescape_uri(&dst, &src, v.len, 0);

        if ((size_t) (dst - p) > NGX_CODEB_TR_Q_MAX) {
            goto bad_q;
        }

        args[2].data = p;
        args[2].len = dst - p;
        ngx_strlow(p, p, args[2].len);
        p = dst;
    }

    args[3].data = p;
    args[3].len = ngx_sprintf(p, "%i", offset) - p;
    args[4].data = p + args[3].len;
    args[4].len = ngx_sprintf(args[4].data, "%i", limit) - args[4].data;

    sum = ngx_codeb_api_key(r, ctx, NGX_CODEB_API_TR_SUMMARY);
    order = ngx_codeb_api_key(r, ctx, "transcripts:t");
    if (sum == NULL || order == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, sum);
    ngx_codeb_redis_arg_str(&a, order);

    for (i = 0; i < 5; i++) {
        ngx_codeb_redis_arg_str(&a, &args[i]);
    }

    return ngx_codeb_http_redis(r, &ngx_codeb_tr_list_script,
                                ngx_codeb_tr_listed, 2, &a);

bad_since:

    return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                "since: an ISO 8601 UTC time "
                                "(2026-01-01T12:00:00.000Z or 2026-01-01)");

bad_q:

    return ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                "q: at most 128 bytes");
}


static void
ngx_codeb_tr_listed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t               i;
    yajl_gen             g;
    redisReply          *rep = reply, *recs, *e;
    ngx_array_t         *m;
    ngx_http_request_t  *r = data;

    g = ngx_codeb_api_page_open(r, rep);
    if (g == NULL) {
        return;
    }

    recs = rep->element[1];

    for (i = 0; i < recs->elements; i++) {
        e = recs->element[i];

        /* a summary is flat: our own strings and numbers */
        if (e->type == REDIS_REPLY_STRING
            && ngx_codeb_json_object(r->pool, (u_char *) e->str, e->len, &m)
               == NGX_OK)
        {
            yajl_gen_map_open(g);
            ngx_codeb_gen_members(g, m);
            yajl_gen_map_close(g);
        }
    }

    ngx_codeb_api_page_close(r, g, rep);
}


/* GET /v1/transcripts/{callId}: the transcript as indexed, or 404 */
ngx_int_t
ngx_codeb_api_transcripts_get(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx)
{
    ngx_str_t               *body;
    ngx_codeb_redis_args_t   a;

    /* never a path: the transcript comes from Redis, not the directory */
    if (ngx_codeb_api_call_id(&ctx->param) != NGX_OK) {
        return ngx_codeb_api_transcript_404(r, &ctx->param);
    }

    body = ngx_codeb_api_key(r, ctx, NGX_CODEB_API_TR_BODY);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HGET");
    ngx_codeb_redis_arg_str(&a, body);
    ngx_codeb_redis_arg_str(&a, &ctx->param);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_tr_got, 0, &a);
}


static void
ngx_codeb_tr_got(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen                  g;
    ngx_uint_t                i;
    redisReply               *rep = reply;
    ngx_array_t              *m;
    ngx_http_request_t       *r = data;
    ngx_codeb_api_ctx_t      *ctx;
    ngx_codeb_json_member_t  *j;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep == NULL
        || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL))
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    if (rep->type == REDIS_REPLY_NIL
        || ngx_codeb_json_object(r->pool, (u_char *) rep->str, rep->len, &m)
           != NGX_OK)
    {
        ngx_http_finalize_request(r,
            ngx_codeb_api_transcript_404(r, &ctx->param));
        return;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    j = m->elts;

    for (i = 0; i < m->nelts; i++) {
        yajl_gen_string(g, j[i].key.data, j[i].key.len);

        if (ngx_codeb_gen_json(g, j[i].raw.data, j[i].raw.len) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


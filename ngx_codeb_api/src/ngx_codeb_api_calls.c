/*
 * Outbound calls, the HTTP side (docs/api.md "Outbound calls"): POST
 * /v1/calls with its field table and Idempotency-Key, the list with its
 * status filter, one call, hangup.  The dialing, the scheduler and the
 * status machine's later steps are in ngx_codeb_api_dial.c.
 *
 * Redis (docs/design.md "State in Redis"): P calls, a hash callId ->
 * the record (JSON, times in epoch ms); P calls:t, the ids by creation;
 * P calls:s:<status>, the ids of each status; P whitelist, the numbers
 * called; P idem:<SHA-256 of the key>, {h: SHA-256 of the body, callId,
 * code, answer} for 24 h; codeb:calls:due (scheduled, by due ms) and
 * codeb:calls:active (dialing, by deadline ms), members "<tenant> <id>".
 */

#include "ngx_codeb_api.h"


#define NGX_CODEB_CALL_IDEM_TTL   "86400"  /* s an Idempotency-Key is kept */
#define NGX_CODEB_CALL_IDEM_MAX   255      /* bytes of an Idempotency-Key */


/* one field of the POST body (the seed's table) */
typedef struct {
    char                       *name;
    ngx_uint_t                  required;
    ngx_int_t                   min;         /* bytes, or the int's range */
    ngx_int_t                   max;
    ngx_uint_t                  integer;
    char                       *rule;        /* for the 400 */
} ngx_codeb_call_field_t;


typedef struct {
    ngx_str_t                   id;
    ngx_str_t                   record;
    ngx_str_t                   idem;        /* its key, or empty */
    u_char                      hash[65];    /* the body's SHA-256 */
    ngx_uint_t                  immediate;
    uint64_t                    due;         /* ms; scheduled */
    int64_t                     max;         /* maxSeconds */
} ngx_codeb_call_new_t;


static ngx_codeb_call_field_t  ngx_codeb_call_fields[] = {
    { "phone", 1, 8, 16, 0, "an E.164 number, e.g. +15551234567" },
    { "displayName", 0, 1, 64, 0,
      "1 to 64 bytes without quotes, backslashes or controls" },
    { "email", 1, 3, 254, 0, "an e-mail address" },
    { "systemPrompt", 1, 1, 20000, 0, "1 to 20000 bytes" },
    { "apiKey", 1, 1, 512, 0, "1 to 512 bytes" },
    { "model", 0, 1, 128, 0, "1 to 128 bytes" },
    { "voice", 0, 1, 64, 0, "1 to 64 bytes" },
    { "language", 0, 2, 35, 0, "a language tag, e.g. en-US" },
    { "maxSeconds", 0, 10, 3600, 1, "an integer 10..3600" },
    { "retries", 0, 0, 10, 1, "an integer 0..10" },
    { "retryDelayMinutes", 0, 1, 1440, 1, "an integer 1..1440" },
    { "scheduleAtUtc", 0, 20, 30, 0,
      "ISO-8601 UTC, e.g. 2026-01-01T12:00:00Z" },
    { NULL, 0, 0, 0, 0, NULL }
};


/* KEYS calls, calls:t, due, active, whitelist, idem.  ARGV id, record,
 * created ms, status, due or deadline ms, member, phone, body hash or "" */
static ngx_codeb_redis_script_t  ngx_codeb_call_new_script = {
    ngx_string(
        "if ARGV[8] ~= '' then\n"
        "  local v = redis.call('GET', KEYS[6])\n"
        "  if v then\n"
        "    local d = cjson.decode(v)\n"
        "    if d.h ~= ARGV[8] then return {'conflict'} end\n"
        "    return {'dup', d.answer or '', tostring(d.code or 0)}\n"
        "  end\n"
        "  redis.call('SET', KEYS[6], cjson.encode({h = ARGV[8],\n"
        "             callId = ARGV[1]}), 'EX', " NGX_CODEB_CALL_IDEM_TTL ")\n"
        "end\n"
        "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
        "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])\n"
        "redis.call('ZADD', KEYS[1] .. ':s:' .. ARGV[4], ARGV[3], ARGV[1])\n"
        "if ARGV[4] == 'scheduled' then\n"
        "  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])\n"
        "else\n"
        "  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])\n"
        "end\n"
        "redis.call('SADD', KEYS[5], ARGV[7])\n"
        "return {'ok'}\n"),
    ""
};

/* KEYS idem.  ARGV code, answer: the first answer, kept with the key */
static ngx_codeb_redis_script_t  ngx_codeb_call_idem_script = {
    ngx_string(
        "local v = redis.call('GET', KEYS[1])\n"
        "if not v then return 0 end\n"
        "local d = cjson.decode(v)\n"
        "d.code = tonumber(ARGV[1])\n"
        "d.answer = ARGV[2]\n"
        "redis.call('SET', KEYS[1], cjson.encode(d), 'KEEPTTL')\n"
        "return 1\n"),
    ""
};

/* KEYS calls, calls:t.  ARGV offset, count, statuses ("a,b" or ""):
 * {total, records newest first} */
static ngx_codeb_redis_script_t  ngx_codeb_call_page_script = {
    ngx_string(
        "local from = tonumber(ARGV[1])\n"
        "local src = KEYS[2]\n"
        "if ARGV[3] ~= '' then\n"
        "  local keys = {}\n"
        "  for s in string.gmatch(ARGV[3], '[^,]+') do\n"
        "    keys[#keys + 1] = KEYS[1] .. ':s:' .. s\n"
        "  end\n"
        "  src = KEYS[1] .. ':page'\n"
        "  redis.call('ZUNIONSTORE', src, #keys, unpack(keys))\n"
        "end\n"
        "local total = redis.call('ZCARD', src)\n"
        "local ids = redis.call('ZREVRANGE', src, from,\n"
        "                       from + tonumber(ARGV[2]) - 1)\n"
        "if src ~= KEYS[2] then redis.call('DEL', src) end\n"
        "local recs = {}\n"
        "if #ids > 0 then recs = redis.call('HMGET', KEYS[1], unpack(ids))"
        " end\n"
        "return {total, recs}\n"),
    ""
};

/* KEYS calls, due, active.  ARGV id, now, actor, member: {'cancelled' |
 * 'noop', the status before, the record} or nil */
static ngx_codeb_redis_script_t  ngx_codeb_call_hangup_script = {
    ngx_string(
        NGX_CODEB_CALL_LUA_MOVE
        "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
        "if not v then return false end\n"
        "local rec = cjson.decode(v)\n"
        "local st = rec.status\n"
        "if st ~= 'scheduled' and st ~= 'ended-failed-retry-pending'\n"
        "   and st ~= 'dispatching' and st ~= 'in-flight' then\n"
        "  return {'noop', st, v}\n"
        "end\n"
        "move(KEYS[1], rec, 'cancelled')\n"
        "rec.ended = tonumber(ARGV[2])\n"
        "rec.endedReason = 'cancelled'\n"
        "rec.cancelledBy = ARGV[3]\n"
        "if type(rec.answered) == 'number' then\n"
        "  rec.durationSec = math.floor((rec.ended - rec.answered) / 1000)\n"
        "end\n"
        "redis.call('ZREM', KEYS[2], ARGV[4])\n"
        "redis.call('ZREM', KEYS[3], ARGV[4])\n"
        "local enc = cjson.encode(rec)\n"
        "redis.call('HSET', KEYS[1], ARGV[1], enc)\n"
        "return {'cancelled', st, enc}\n"),
    ""
};


static ngx_int_t ngx_codeb_call_validate(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_codeb_call_new_t *nc, ngx_int_t *rc);
static ngx_int_t ngx_codeb_call_record(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_codeb_call_new_t *nc);
static ngx_int_t ngx_codeb_call_idem(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_codeb_call_new_t *nc, ngx_int_t *rc);
static ngx_int_t ngx_codeb_call_store(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_codeb_call_new_t *nc);
static ngx_int_t ngx_codeb_call_replay(ngx_http_request_t *r,
    ngx_int_t code, u_char *text, size_t len);
static ngx_int_t ngx_codeb_call_text(char *field, ngx_str_t *v);
static void ngx_codeb_call_stored(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_call_listed(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_call_got(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_call_hung(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_call_status_arg(ngx_http_request_t *r,
    ngx_str_t *list, ngx_int_t *rc);
static ngx_int_t ngx_codeb_call_keys(ngx_http_request_t *r,
    ngx_codeb_api_ctx_t *ctx, ngx_codeb_redis_args_t *a, ngx_uint_t order);


ngx_int_t
ngx_codeb_api_calls_init(ngx_conf_t *cf)
{
    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_call_new_script) != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_call_idem_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_call_page_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_call_hangup_script)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_codeb_api_dial_init(cf);
}


/* POST /v1/calls: docs/api.md "Outbound calls" */
ngx_int_t
ngx_codeb_api_calls_create(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_int_t              rc;
    ngx_codeb_call_new_t  *nc;

    nc = ngx_pcalloc(r->pool, sizeof(ngx_codeb_call_new_t));
    if (nc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* each check answers r itself when it fails (NGX_DECLINED, rc) */

    if (ngx_codeb_call_validate(r, ctx, nc, &rc) != NGX_OK
        || (nc->immediate
            /* never a call that cannot be placed, never a fake success */
            && ngx_codeb_api_dial_check(r, ctx, &rc) != NGX_OK)
        || ngx_codeb_call_idem(r, ctx, nc, &rc) != NGX_OK)
    {
        return rc;
    }

    rc = ngx_codeb_call_record(r, ctx, nc);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->data = nc;

    return ngx_codeb_call_store(r, ctx, nc);
}


/*
 * NGX_OK, or NGX_DECLINED with *rc the 400 naming the first field that
 * breaks the seed's table
 */
static ngx_int_t
ngx_codeb_call_validate(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_codeb_call_new_t *nc, ngx_int_t *rc)
{
    u_char                    buf[160];
    int64_t                   n, due;
    ngx_uint_t                ok;
    ngx_codeb_json_member_t  *m;
    ngx_codeb_call_field_t   *f;

    for (f = ngx_codeb_call_fields; f->name; f++) {
        m = ngx_codeb_api_member(ctx, f->name);

        if (m == NULL || m->type == NGX_CODEB_JSON_NULL) {
            if (!f->required) {
                continue;
            }

            ok = 0;

        } else if (f->integer) {
            ok = m->type == NGX_CODEB_JSON_NUMBER
                 && ngx_codeb_json_member_int(m, &n) == NGX_OK
                 && n >= f->min && n <= f->max;

        } else {
            ok = m->type == NGX_CODEB_JSON_STRING
                 && m->str.len >= (size_t) f->min
                 && m->str.len <= (size_t) f->max
                 && ngx_codeb_call_text(f->name, &m->str) == NGX_OK;
        }

        if (!ok) {
            (void) ngx_snprintf(buf, sizeof(buf) - 1, "%s: %s%Z", f->name,
                                f->rule);
            *rc = ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request", (char *) buf);
            return NGX_DECLINED;
        }
    }

    nc->immediate = 1;
    m = ngx_codeb_api_member(ctx, "scheduleAtUtc");

    if (m && m->type == NGX_CODEB_JSON_STRING) {
        if (ngx_codeb_parse_time(m->str.data, m->str.len, &due) != NGX_OK) {
            *rc = ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request",
                                       "scheduleAtUtc: ISO-8601 UTC, e.g. "
                                       "2026-01-01T12:00:00Z");
            return NGX_DECLINED;
        }

        /* a time that has come already: at once */
        if ((uint64_t) due > ngx_codeb_now_ms()) {
            nc->immediate = 0;
            nc->due = (uint64_t) due;
        }
    }

    return NGX_OK;
}


/*
 * the text rules beyond lengths: phone "+" and 7 to 15 digits, the first
 * not 0; an e-mail with one "@" between two non-empty parts; a display
 * name without quotes or backslashes; no field with control characters
 */
static ngx_int_t
ngx_codeb_call_text(char *field, ngx_str_t *v)
{
    size_t   i, at;

    for (i = 0; i < v->len; i++) {
        if ((v->data[i] < 0x20 && ngx_strcmp(field, "systemPrompt") != 0)
            || v->data[i] == 0x7f)
        {
            return NGX_DECLINED;
        }
    }

    if (ngx_strcmp(field, "phone") == 0) {
        if (v->data[0] != '+' || v->data[1] < '1' || v->data[1] > '9') {
            return NGX_DECLINED;
        }

        for (i = 1; i < v->len; i++) {
            if (v->data[i] < '0' || v->data[i] > '9') {
                return NGX_DECLINED;
            }
        }

        return NGX_OK;
    }

    if (ngx_strcmp(field, "email") == 0) {
        at = 0;

        for (i = 0; i < v->len; i++) {
            if (v->data[i] == ' ') {
                return NGX_DECLINED;
            }

            if (v->data[i] == '@') {
                if (at) {
                    return NGX_DECLINED;
                }

                at = i;
            }
        }

        return (at > 0 && at < v->len - 1) ? NGX_OK : NGX_DECLINED;
    }

    if (ngx_strcmp(field, "displayName") == 0) {
        return (ngx_strlchr(v->data, v->data + v->len, '"') == NULL
                && ngx_strlchr(v->data, v->data + v->len, '\\') == NULL)
               ? NGX_OK : NGX_DECLINED;
    }

    if (ngx_strcmp(field, "language") == 0) {
        for (i = 0; i < v->len; i++) {
            if (!(ngx_codeb_api_alnum(v->data[i]) || v->data[i] == '-')) {
                return NGX_DECLINED;
            }
        }
    }

    return NGX_OK;
}


/* nc->id "oac-<12 hex>" and nc->record, the call as stored */
static ngx_int_t
ngx_codeb_call_record(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_codeb_call_new_t *nc)
{
    u_char                   *p;
    int64_t                   n;
    yajl_gen                  g;
    ngx_str_t                 text;
    ngx_uint_t                i;
    ngx_codeb_json_member_t  *m, *phone;

    static struct {
        char    *name;
        char    *dflt;
    }  strs[] = {
        { "email", "" }, { "systemPrompt", "" }, { "apiKey", "" },
        { "model", "" }, { "voice", "Aoede" }, { "language", "en-US" },
        { NULL, NULL }
    };

    static struct {
        char    *name;
        int64_t  dflt;
    }  ints[] = {
        { "maxSeconds", 300 }, { "retries", 0 }, { "retryDelayMinutes", 5 },
        { NULL, 0 }
    };

    p = ngx_pnalloc(r->pool, 16);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, "oac-", 4);

    if (ngx_codeb_random_hex(p + 4, 6) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nc->id.data = p;
    nc->id.len = 16;

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    phone = ngx_codeb_api_member(ctx, "phone");
    m = ngx_codeb_api_member(ctx, "displayName");

    ngx_codeb_gen_vstr(g, "callId", &nc->id);
    ngx_codeb_gen_vstr(g, "tenant", &ctx->tenant->name);
    ngx_codeb_gen_vstr(g, "requestedBy", &ctx->identity);
    ngx_codeb_gen_vstr(g, "phone", &phone->str);
    ngx_codeb_gen_vstr(g, "displayName",
                       (m && m->type == NGX_CODEB_JSON_STRING)
                       ? &m->str : &phone->str);

    for (i = 0; strs[i].name; i++) {
        m = ngx_codeb_api_member(ctx, strs[i].name);

        if (m && m->type == NGX_CODEB_JSON_STRING) {
            ngx_codeb_gen_vstr(g, strs[i].name, &m->str);

        } else {
            ngx_codeb_gen_cstr(g, strs[i].name, strs[i].dflt);
        }
    }

    for (i = 0; ints[i].name; i++) {
        m = ngx_codeb_api_member(ctx, ints[i].name);

        if (m == NULL || ngx_codeb_json_member_int(m, &n) != NGX_OK) {
            n = ints[i].dflt;
        }

        ngx_codeb_gen_int(g, ints[i].name, n);

        if (i == 0) {
            nc->max = n;
        }

        if (i == 1) {
            ngx_codeb_gen_int(g, "retriesLeft", n);
        }
    }

    ngx_codeb_gen_cstr(g, "status", nc->immediate ? "dispatching"
                                                  : "scheduled");
    ngx_codeb_gen_int(g, "created", (int64_t) ngx_codeb_now_ms());

    if (nc->immediate) {
        ngx_codeb_gen_null(g, "scheduledFor");
        ngx_codeb_gen_int(g, "dispatched", (int64_t) ngx_codeb_now_ms());
        ngx_codeb_gen_int(g, "attempt", 1);
        ngx_codeb_gen_vstr(g, "owner", ngx_codeb_worker_id());

    } else {
        ngx_codeb_gen_int(g, "scheduledFor", (int64_t) nc->due);
        ngx_codeb_gen_null(g, "dispatched");
        ngx_codeb_gen_int(g, "attempt", 0);
        ngx_codeb_gen_cstr(g, "owner", "");
    }

    ngx_codeb_gen_null(g, "answered");
    ngx_codeb_gen_null(g, "ended");
    ngx_codeb_gen_cstr(g, "endedReason", "");
    ngx_codeb_gen_int(g, "durationSec", 0);
    ngx_codeb_gen_cstr(g, "trunkId", "");
    ngx_codeb_gen_cstr(g, "transcriptPath", "");
    ngx_codeb_gen_cstr(g, "errorDetail", "");

    /* the generator is the worker's: the record is copied */
    text = ngx_codeb_gen_done(g);
    nc->record.data = ngx_pstrdup(r->pool, &text);
    nc->record.len = text.len;

    return nc->record.data ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * Idempotency-Key: its Redis key and the body's SHA-256; NGX_DECLINED
 * with *rc the answer (400) when it is malformed
 */
static ngx_int_t
ngx_codeb_call_idem(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_codeb_call_new_t *nc, ngx_int_t *rc)
{
    u_char           hash[65];
    size_t           i;
    ngx_table_elt_t *h;

    h = ngx_codeb_http_header(r, "Idempotency-Key");
    if (h == NULL) {
        return NGX_OK;
    }

    for (i = 0; i < h->value.len; i++) {
        if (h->value.data[i] < 0x21 || h->value.data[i] > 0x7e) {
            break;
        }
    }

    if (h->value.len == 0 || h->value.len > NGX_CODEB_CALL_IDEM_MAX
        || i != h->value.len)
    {
        *rc = ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request",
                                   "Idempotency-Key: 1 to 255 printable "
                                   "characters");
        return NGX_DECLINED;
    }

    /* the key is the client's: only its hash is stored */
    ngx_codeb_sha256_hex(h->value.data, h->value.len, hash);

    if (ngx_codeb_key(r->pool, &ctx->tenant->name, "idem:", hash, 64,
                      &nc->idem)
        != NGX_OK)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    ngx_codeb_sha256_hex(ctx->raw_body.data, ctx->raw_body.len, nc->hash);

    return NGX_OK;
}


/*
 * the record into Redis with its indexes, the number on the whitelist and
 * the Idempotency-Key taken (or found: its first answer, or 409)
 */
static ngx_int_t
ngx_codeb_call_store(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_codeb_call_new_t *nc)
{
    u_char                  *p, *when, *created, *member;
    uint64_t                 now, due;
    ngx_str_t                whitelist, dummy;
    ngx_codeb_redis_args_t   a;

    when = ngx_pnalloc(r->pool, 2 * NGX_INT64_LEN + ctx->tenant->name.len
                                + nc->id.len + 1);
    if (when == NULL
        || ngx_codeb_key(r->pool, &ctx->tenant->name, "whitelist", NULL, 0,
                         &whitelist) != NGX_OK
        || ngx_codeb_key(r->pool, &ctx->tenant->name, "idem:-", NULL, 0,
                         &dummy) != NGX_OK
        || ngx_codeb_call_keys(r, ctx, &a, 1) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    now = ngx_codeb_now_ms();

    /* scheduled: when it is due; dialed now: when it must have ended */
    due = nc->immediate
          ? now + (uint64_t) nc->max * 1000 + NGX_CODEB_CALL_SLACK
          : nc->due;
    created = ngx_sprintf(when, "%uL", due);
    member = ngx_sprintf(created, "%uL", now);
    p = ngx_sprintf(member, "%V %V", &ctx->tenant->name, &nc->id);

    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_DUE);
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_ACTIVE);
    ngx_codeb_redis_arg_str(&a, &whitelist);
    ngx_codeb_redis_arg_str(&a, nc->idem.len ? &nc->idem : &dummy);
    ngx_codeb_redis_arg_str(&a, &nc->id);
    ngx_codeb_redis_arg_str(&a, &nc->record);
    ngx_codeb_redis_arg(&a, created, member - created);

    if (nc->immediate) {
        ngx_codeb_redis_arg_lit(&a, "dispatching");

    } else {
        ngx_codeb_redis_arg_lit(&a, "scheduled");
    }

    ngx_codeb_redis_arg(&a, when, created - when);
    ngx_codeb_redis_arg(&a, member, p - member);
    ngx_codeb_redis_arg_str(&a, &ngx_codeb_api_member(ctx, "phone")->str);
    ngx_codeb_redis_arg(&a, nc->hash, nc->idem.len ? 64 : 0);

    return ngx_codeb_http_redis(r, &ngx_codeb_call_new_script,
                                ngx_codeb_call_stored, 6, &a);
}


static void
ngx_codeb_call_stored(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen               g;
    ngx_int_t              code;
    redisReply            *rep = reply;
    ngx_http_request_t    *r = data;
    ngx_codeb_api_ctx_t   *ctx;
    ngx_codeb_call_new_t  *nc;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);
    nc = ctx->data;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0
        || rep->element[0]->type != REDIS_REPLY_STRING)
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    if (ngx_strcmp(rep->element[0]->str, "conflict") == 0) {
        ngx_http_finalize_request(r, ngx_codeb_http_error(r,
            NGX_HTTP_CONFLICT, "idempotency_conflict",
            "this Idempotency-Key came with another body within 24 h"));
        return;
    }

    if (ngx_strcmp(rep->element[0]->str, "dup") == 0
        && rep->elements == 3)
    {
        code = ngx_atoi((u_char *) rep->element[2]->str,
                        rep->element[2]->len);

        if (code < 200 || rep->element[1]->len == 0) {
            ngx_http_finalize_request(r, ngx_codeb_http_error(r,
                NGX_HTTP_CONFLICT, "idempotency_in_progress",
                "the first request with this Idempotency-Key is still "
                "being answered"));
            return;
        }

        ngx_http_finalize_request(r, ngx_codeb_call_replay(r, code,
                                  (u_char *) rep->element[1]->str,
                                  rep->element[1]->len));
        return;
    }

    if (nc->immediate) {
        /* answered once the trunk has (ngx_codeb_api_dial.c) */
        ngx_http_finalize_request(r, ngx_codeb_api_dial_now(r, ctx,
                                                            &nc->record,
                                                            &nc->id));
        return;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_bool(g, "ok", 1);
    ngx_codeb_gen_vstr(g, "callId", &nc->id);
    ngx_codeb_gen_vstr(g, "tenant", &ctx->tenant->name);
    ngx_codeb_gen_cstr(g, "status", "scheduled");
    ngx_codeb_gen_time(g, "scheduledForUtc", nc->due);
    ngx_codeb_gen_bool(g, "whitelistAdded", 1);
    ngx_codeb_gen_null(g, "whitelistError");
    ngx_codeb_gen_null(g, "bridgeReply");

    ngx_http_finalize_request(r, ngx_codeb_api_call_answer(r, NGX_HTTP_OK,
                                                           g));
}


ngx_int_t
ngx_codeb_api_call_answer(ngx_http_request_t *r, ngx_uint_t status,
    yajl_gen g)
{
    u_char                  code[NGX_INT_T_LEN];
    ngx_str_t               text, *idem;
    ngx_codeb_api_ctx_t    *ctx;
    ngx_codeb_call_new_t   *nc;
    ngx_codeb_redis_args_t  a;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);
    nc = ctx->data;
    idem = &nc->idem;

    text = ngx_codeb_gen_done(g);

    if (idem->len) {
        a.argc = 0;
        ngx_codeb_redis_arg_str(&a, idem);
        ngx_codeb_redis_arg(&a, code, ngx_sprintf(code, "%ui", status)
                                      - code);
        ngx_codeb_redis_arg_str(&a, &text);

        /* the answer stands if Redis cannot keep it: the key then expires
           without one and a repeat is told to wait (409) */
        (void) ngx_codeb_redis_eval(&ngx_codeb_call_idem_script, NULL, NULL,
                                    1, &a);
    }

    return ngx_codeb_http_send(r, status, "application/json", text.data,
                               text.len);
}


/* the first answer to an Idempotency-Key again, through the generator */
static ngx_int_t
ngx_codeb_call_replay(ngx_http_request_t *r, ngx_int_t code,
    u_char *text, size_t len)
{
    yajl_gen      g;
    ngx_array_t  *m;

    if (ngx_codeb_json_object(r->pool, text, len, &m) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_CONFLICT,
                                    "idempotency_in_progress",
                                    "the first answer was not kept");
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_gen_members(g, m);

    return ngx_codeb_http_json(r, (ngx_uint_t) code, g);
}


/* GET /v1/calls?status=a,b&limit=&offset= */
ngx_int_t
ngx_codeb_api_calls_list(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char                  *p;
    ngx_int_t                limit, offset, rc;
    ngx_str_t                status;
    ngx_codeb_redis_args_t   a;

    if (ngx_codeb_api_page(r, &limit, &offset, &rc) != NGX_OK) {
        return rc;
    }

    if (ngx_codeb_call_status_arg(r, &status, &rc) != NGX_OK) {
        return rc;
    }

    p = ngx_pnalloc(r->pool, 2 * NGX_INT_T_LEN);
    if (p == NULL || ngx_codeb_call_keys(r, ctx, &a, 1) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_redis_arg(&a, p, ngx_sprintf(p, "%i", offset) - p);
    p += NGX_INT_T_LEN;
    ngx_codeb_redis_arg(&a, p, ngx_sprintf(p, "%i", limit) - p);
    ngx_codeb_redis_arg_str(&a, &status);

    return ngx_codeb_http_redis(r, &ngx_codeb_call_page_script,
                                ngx_codeb_call_listed, 2, &a);
}


/*
 * ?status=: a comma list of the seven statuses, checked ("" when absent);
 * NGX_DECLINED with *rc the answer (400) when it has another
 */
static ngx_int_t
ngx_codeb_call_status_arg(ngx_http_request_t *r, ngx_str_t *list,
    ngx_int_t *rc)
{
    u_char     *p, *end, *comma, *dst;
    ngx_str_t   v;
    ngx_uint_t  i, known;

    static ngx_str_t  statuses[] = {
        ngx_string("scheduled"), ngx_string("dispatching"),
        ngx_string("in-flight"), ngx_string("ended-success"),
        ngx_string("ended-failed-retry-pending"),
        ngx_string("ended-failed-final"), ngx_string("cancelled")
    };

    ngx_str_null(list);

    if (ngx_http_arg(r, (u_char *) "status", 6, &v) != NGX_OK) {
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, v.len + 1);
    if (dst == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    p = dst;
    ngx_unescape_uri(&p, &v.data, v.len, NGX_UNESCAPE_URI);
    end = p;
    list->data = dst;
    list->len = end - dst;

    for (p = dst; p < end; p = comma + 1) {
        comma = ngx_strlchr(p, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        known = 0;

        for (i = 0; i < sizeof(statuses) / sizeof(ngx_str_t); i++) {
            if ((size_t) (comma - p) == statuses[i].len
                && ngx_strncmp(p, statuses[i].data, statuses[i].len) == 0)
            {
                known = 1;
            }
        }

        if (!known) {
            *rc = ngx_codeb_http_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request",
                                       "status: a comma list of scheduled, "
                                       "dispatching, in-flight, "
                                       "ended-success, "
                                       "ended-failed-retry-pending, "
                                       "ended-failed-final, cancelled");
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static void
ngx_codeb_call_listed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t               i;
    yajl_gen             g;
    ngx_pool_t          *pool;
    redisReply          *rep = reply, *recs;
    ngx_http_request_t  *r = data;

    g = ngx_codeb_api_page_open(r, rep);
    if (g == NULL) {
        return;
    }

    /* each record is parsed in one pool, emptied after it */
    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, r->connection->log);
    if (pool == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    recs = rep->element[1];

    for (i = 0; i < recs->elements; i++) {
        if (recs->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        yajl_gen_map_open(g);
        ngx_codeb_api_call_gen(g, pool, (u_char *) recs->element[i]->str,
                               recs->element[i]->len);
        yajl_gen_map_close(g);
        ngx_reset_pool(pool);
    }

    ngx_destroy_pool(pool);

    ngx_codeb_api_page_close(r, g, rep);
}


/* GET /v1/calls/{id} */
ngx_int_t
ngx_codeb_api_calls_get(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    ngx_str_t               *key;
    ngx_codeb_redis_args_t   a;

    key = ngx_codeb_api_key(r, ctx, "calls");
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HGET");
    ngx_codeb_redis_arg_str(&a, key);
    ngx_codeb_redis_arg_str(&a, &ctx->param);

    return ngx_codeb_http_redis(r, NULL, ngx_codeb_call_got, 0, &a);
}


static void
ngx_codeb_call_got(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen              g;
    redisReply           *rep = reply;
    ngx_http_request_t   *r = data;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep && rep->type == REDIS_REPLY_NIL) {
        ngx_http_finalize_request(r, ngx_codeb_api_call_missing(r, ctx));
        return;
    }

    g = ngx_codeb_http_reply_gen(r, rep, REDIS_REPLY_STRING);
    if (g == NULL) {
        return;
    }

    ngx_codeb_api_call_gen(g, r->pool, (u_char *) rep->str, rep->len);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


/* 404 {"error": "not_found", "error_description": "No call with id=..."} */
ngx_int_t
ngx_codeb_api_call_missing(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char  buf[64];

    if (ngx_codeb_api_oac_id(&ctx->param) != NGX_OK) {
        return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                    "No call with that id");
    }

    (void) ngx_snprintf(buf, sizeof(buf) - 1, "No call with id=%V%Z",
                        &ctx->param);

    return ngx_codeb_http_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                (char *) buf);
}


/* "oac-" and 12 lowercase hex digits */
ngx_int_t
ngx_codeb_api_oac_id(ngx_str_t *id)
{
    ngx_str_t  hex;

    if (id->len != 16 || ngx_strncmp(id->data, "oac-", 4) != 0) {
        return NGX_DECLINED;
    }

    hex.data = id->data + 4;
    hex.len = 12;

    return ngx_codeb_api_hex(&hex);
}


/* POST /v1/calls/{id}/hangup: cancels it, or a no-op when it has ended */
ngx_int_t
ngx_codeb_api_calls_hangup(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx)
{
    u_char                  *p, *now;
    ngx_codeb_redis_args_t   a;

    if (ngx_codeb_api_oac_id(&ctx->param) != NGX_OK) {
        return ngx_codeb_api_call_missing(r, ctx);
    }

    now = ngx_pnalloc(r->pool, NGX_INT64_LEN + ctx->tenant->name.len
                               + ctx->param.len + 1);
    if (now == NULL || ngx_codeb_call_keys(r, ctx, &a, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_DUE);
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_ACTIVE);
    ngx_codeb_redis_arg_str(&a, &ctx->param);
    p = ngx_sprintf(now, "%uL", ngx_codeb_now_ms());
    ngx_codeb_redis_arg(&a, now, p - now);
    ngx_codeb_redis_arg_str(&a, &ctx->identity);
    ngx_codeb_redis_arg(&a, p, ngx_sprintf(p, "%V %V", &ctx->tenant->name,
                                           &ctx->param) - p);

    return ngx_codeb_http_redis(r, &ngx_codeb_call_hangup_script,
                                ngx_codeb_call_hung, 3, &a);
}


static void
ngx_codeb_call_hung(redisAsyncContext *ac, void *reply, void *data)
{
    yajl_gen              g;
    ngx_str_t             before, rec;
    ngx_uint_t            noop;
    redisReply           *rep = reply;
    ngx_http_request_t   *r = data;
    ngx_codeb_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_codeb_api_module);

    if (rep && rep->type == REDIS_REPLY_NIL) {
        ngx_http_finalize_request(r, ngx_codeb_api_call_missing(r, ctx));
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3
        || rep->element[1]->type != REDIS_REPLY_STRING
        || rep->element[2]->type != REDIS_REPLY_STRING)
    {
        ngx_http_finalize_request(r, ngx_codeb_http_unavailable(r, rep));
        return;
    }

    noop = (ngx_strcmp(rep->element[0]->str, "noop") == 0);
    before.data = (u_char *) rep->element[1]->str;
    before.len = rep->element[1]->len;
    rec.data = (u_char *) rep->element[2]->str;
    rec.len = rep->element[2]->len;

    if (!noop) {
        /* the dialing worker lets go of it; the event fires here, once */
        ngx_codeb_api_dial_cancelled(ctx->conf, &before, &rec);
        ngx_codeb_scratch_reset();
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_codeb_gen_bool(g, "ok", 1);
    ngx_codeb_gen_vstr(g, "callId", &ctx->param);

    if (noop) {
        ngx_codeb_gen_bool(g, "wasNoop", 1);
        ngx_codeb_gen_vstr(g, "status", &before);

    } else {
        ngx_codeb_gen_bool(g, "wasNoop", 0);
        ngx_codeb_gen_cstr(g, "newStatus", "cancelled");
        ngx_codeb_gen_vstr(g, "previousStatus", &before);
    }

    ngx_codeb_gen_vstr(g, "actor", &ctx->identity);

    ngx_http_finalize_request(r, ngx_codeb_http_json(r, NGX_HTTP_OK, g));
}


/* KEYS P calls and (order) P calls:t into a, emptied first */
static ngx_int_t
ngx_codeb_call_keys(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_codeb_redis_args_t *a, ngx_uint_t order)
{
    ngx_str_t  *calls, *by_time;

    calls = ngx_codeb_api_key(r, ctx, "calls");
    by_time = ngx_codeb_api_key(r, ctx, "calls:t");
    if (calls == NULL || by_time == NULL) {
        return NGX_ERROR;
    }

    a->argc = 0;
    ngx_codeb_redis_arg_str(a, calls);

    if (order) {
        ngx_codeb_redis_arg_str(a, by_time);
    }

    return NGX_OK;
}


void
ngx_codeb_api_call_gen(yajl_gen g, ngx_pool_t *pool, u_char *text,
    size_t len)
{
    int64_t                   v;
    ngx_uint_t                i;
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *s;

    /* 's' string, 't' time (ms in, ISO 8601 out), 'i' integer */
    static struct {
        char    *in;
        char    *out;
        char     kind;
    }  fields[] = {
        { "callId", "callId", 's' }, { "tenant", "tenant", 's' },
        { "requestedBy", "requestedBy", 's' }, { "phone", "phone", 's' },
        { "displayName", "displayName", 's' }, { "email", "email", 's' },
        { "voice", "voice", 's' }, { "language", "language", 's' },
        { "model", "model", 's' }, { "status", "status", 's' },
        { "created", "createdAtUtc", 't' },
        { "scheduledFor", "scheduledForUtc", 't' },
        { "dispatched", "dispatchedAtUtc", 't' },
        { "answered", "answeredAtUtc", 't' },
        { "ended", "endedAtUtc", 't' },
        { "endedReason", "endedReason", 's' },
        { "durationSec", "durationSec", 'i' },
        { "maxSeconds", "maxSeconds", 'i' },
        { "trunkId", "trunkId", 's' },
        { "transcriptPath", "transcriptPath", 's' },
        { "errorDetail", "errorDetail", 's' },
        { "attempt", "attempt", 'i' },
        { "retriesLeft", "retriesLeft", 'i' },
        { "retryDelayMinutes", "retryDelayMinutes", 'i' },
        { NULL, NULL, 0 }
    };

    if (ngx_codeb_json_object(pool, text, len, &m) != NGX_OK) {
        return;
    }

    for (i = 0; fields[i].in; i++) {
        switch (fields[i].kind) {

        case 's':
            s = ngx_codeb_json_get_type(m, fields[i].in,
                                        NGX_CODEB_JSON_STRING);
            if (s) {
                ngx_codeb_gen_vstr(g, fields[i].out, &s->str);

            } else {
                ngx_codeb_gen_cstr(g, fields[i].out, "");
            }

            break;

        case 't':
            if (ngx_codeb_json_int(m, fields[i].in, &v) == NGX_OK && v > 0) {
                ngx_codeb_gen_time(g, fields[i].out, (uint64_t) v);

            } else {
                ngx_codeb_gen_null(g, fields[i].out);
            }

            break;

        default:
            if (ngx_codeb_json_int(m, fields[i].in, &v) != NGX_OK) {
                v = 0;
            }

            ngx_codeb_gen_int(g, fields[i].out, v);
        }
    }
}

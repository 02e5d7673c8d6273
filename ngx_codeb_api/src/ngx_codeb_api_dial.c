/*
 * Outbound calls, the dialing (docs/api.md "Dialing"): a call is placed
 * through ngx_codeb_sipws (ngx_codeb_originate_start()) by the worker
 * that takes it -- the one that got the POST for an immediate call, the
 * scheduler for the others -- and its record follows its events:
 * dispatching, in-flight at the trunk's first answer, then ended-success
 * (answered), ended-failed-retry-pending (no-answer with retries left,
 * due again after retryDelayMinutes) or ended-failed-final.
 *
 * The scheduler: every worker tries each second to hold the lease
 * codeb:calls:lease (3 s); the holder claims the due calls in one script,
 * so no two workers or hosts ever dial the same call.  A call whose
 * worker went away is failed at its deadline (codeb:calls:active).
 * Hangup of a call another worker dials goes to it on the bus
 * ("codeb-call-stop <tenant> <callId>").
 */

#include "ngx_codeb_api.h"


#define NGX_CODEB_DIAL_PERIOD     1000     /* ms between scheduler turns */
#define NGX_CODEB_DIAL_LEASE      "3000"   /* ms the scheduler's lease */
#define NGX_CODEB_DIAL_BATCH      "20"     /* calls claimed per turn */
#define NGX_CODEB_DIAL_REACH      4000     /* ms for the trunk's first
                                              answer, else 502 */


typedef struct {
    ngx_codeb_originate_t       o;
    ngx_queue_t                 queue;       /* the worker's dials */
    ngx_codeb_api_srv_conf_t   *conf;
    ngx_str_t                   id;
    ngx_http_request_t         *r;           /* a POST waiting, or NULL */
    ngx_event_t                 reach;
    unsigned                    unreachable:1;
    unsigned                    told:1;      /* the POST got 502 */
    unsigned                    pending:1;   /* a Redis reply for it */
    unsigned                    linked:1;
} ngx_codeb_dial_t;


/* KEYS calls, due, active.  ARGV op, id, now, member, then the op's:
 * progress; answered trunk; ended outcome errorDetail trunk final.
 * {status, record} or nil */
static ngx_codeb_redis_script_t  ngx_codeb_dial_set_script = {
    ngx_string(
        NGX_CODEB_CALL_LUA_MOVE
        "local v = redis.call('HGET', KEYS[1], ARGV[2])\n"
        "if not v then return false end\n"
        "local rec = cjson.decode(v)\n"
        "local now = tonumber(ARGV[3])\n"
        "local st = rec.status\n"
        "local live = st == 'dispatching' or st == 'in-flight'\n"
        "if ARGV[1] == 'progress' and st == 'dispatching' then\n"
        "  move(KEYS[1], rec, 'in-flight')\n"
        "elseif ARGV[1] == 'answered' and live then\n"
        "  move(KEYS[1], rec, 'in-flight')\n"
        "  rec.answered = now\n"
        "  rec.trunkId = ARGV[7]\n"
        "elseif ARGV[1] == 'ended' then\n"
        "  redis.call('ZREM', KEYS[3], ARGV[4])\n"
        "  if ARGV[7] ~= '' then rec.trunkId = ARGV[7] end\n"
        "  if type(rec.answered) == 'number' then\n"
        "    rec.durationSec = math.floor((now - rec.answered) / 1000)\n"
        "  end\n"
        "  if live then\n"
        "    rec.ended = now\n"
        "    rec.endedReason = ARGV[5]\n"
        "    rec.errorDetail = ARGV[6]\n"
        "    if type(rec.answered) == 'number' then\n"
        "      move(KEYS[1], rec, 'ended-success')\n"
        "    elseif ARGV[5] == 'no-answer' and ARGV[8] == ''\n"
        "           and rec.retriesLeft > 0 then\n"
        "      rec.retriesLeft = rec.retriesLeft - 1\n"
        "      rec.scheduledFor = now + rec.retryDelayMinutes * 60000\n"
        "      move(KEYS[1], rec, 'ended-failed-retry-pending')\n"
        "      redis.call('ZADD', KEYS[2], rec.scheduledFor, ARGV[4])\n"
        "    else\n"
        "      move(KEYS[1], rec, 'ended-failed-final')\n"
        "    end\n"
        "  end\n"
        "else\n"
        "  return {st, v}\n"
        "end\n"
        "local enc = cjson.encode(rec)\n"
        "redis.call('HSET', KEYS[1], ARGV[2], enc)\n"
        "return {rec.status, enc}\n"),
    ""
};

/* KEYS lease.  ARGV worker, ms: 1 when this worker holds it */
static ngx_codeb_redis_script_t  ngx_codeb_dial_lease_script = {
    ngx_string(
        "local v = redis.call('GET', KEYS[1])\n"
        "if v == ARGV[1] then\n"
        "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
        "  return 1\n"
        "end\n"
        "if v then return 0 end\n"
        "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
        "return 1\n"),
    ""
};

/* KEYS due, active.  ARGV now, worker, batch: {n, tenant, record, ...}:
 * the first n after n, the calls this worker is to dial; the others, calls
 * whose worker went away, failed now */
static ngx_codeb_redis_script_t  ngx_codeb_dial_claim_script = {
    ngx_string(
        NGX_CODEB_CALL_LUA_MOVE
        "local now = tonumber(ARGV[1])\n"
        "local out = {}\n"
        "local function each(set, f)\n"
        "  for _, m in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', now,\n"
        "                    'LIMIT', 0, tonumber(ARGV[3]))) do\n"
        "    redis.call('ZREM', set, m)\n"
        "    local t, id = string.match(m, '^(%S+) (%S+)$')\n"
        "    local k = 'codeb:{' .. (t or '') .. '}:calls'\n"
        "    local v = t and redis.call('HGET', k, id)\n"
        "    if v then\n"
        "      local rec = cjson.decode(v)\n"
        "      if f(k, rec, m) then\n"
        "        local enc = cjson.encode(rec)\n"
        "        redis.call('HSET', k, id, enc)\n"
        "        out[#out + 1] = t\n"
        "        out[#out + 1] = enc\n"
        "      end\n"
        "    end\n"
        "  end\n"
        "end\n"
        "each(KEYS[1], function(k, rec, m)\n"
        "  if rec.status ~= 'scheduled'\n"
        "     and rec.status ~= 'ended-failed-retry-pending' then\n"
        "    return false\n"
        "  end\n"
        "  move(k, rec, 'dispatching')\n"
        "  rec.attempt = rec.attempt + 1\n"
        "  rec.dispatched = now\n"
        "  rec.answered = cjson.null\n"
        "  rec.ended = cjson.null\n"
        "  rec.endedReason = ''\n"
        "  rec.errorDetail = ''\n"
        "  rec.durationSec = 0\n"
        "  rec.owner = ARGV[2]\n"
        "  redis.call('ZADD', KEYS[2], now + rec.maxSeconds * 1000\n"
        "             + " NGX_CODEB_CALL_SLACK_LUA ", m)\n"
        "  return true\n"
        "end)\n"
        "local mine = #out\n"
        "each(KEYS[2], function(k, rec, m)\n"
        "  if rec.status ~= 'dispatching' and rec.status ~= 'in-flight' then\n"
        "    return false\n"
        "  end\n"
        "  move(k, rec, 'ended-failed-final')\n"
        "  rec.ended = now\n"
        "  rec.endedReason = 'no-answer'\n"
        "  rec.errorDetail = 'lost: the worker that dialed it went away'\n"
        "  return true\n"
        "end)\n"
        "table.insert(out, 1, mine)\n"
        "return out\n"),
    ""
};


static ngx_codeb_dial_t *ngx_codeb_dial_new(ngx_codeb_api_srv_conf_t *conf,
    ngx_str_t *record, ngx_pool_t *pool);
static ngx_int_t ngx_codeb_dial_start(ngx_codeb_dial_t *d);
static void ngx_codeb_dial_event(ngx_codeb_originate_t *o,
    ngx_codeb_originate_event_e event);
static void ngx_codeb_dial_unreachable(ngx_event_t *ev);
static void ngx_codeb_dial_answer(ngx_codeb_dial_t *d, ngx_uint_t status,
    char *error, char *text);
static ngx_int_t ngx_codeb_dial_set(ngx_codeb_api_srv_conf_t *conf,
    ngx_str_t *id, char *op, char *a1, char *a2, ngx_str_t *a3,
    ngx_uint_t final, redisCallbackFn *cb, void *data);
static void ngx_codeb_dial_ended(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_dial_answered(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_dial_fire(ngx_codeb_api_srv_conf_t *conf, char *event,
    u_char *record, size_t len);
static void ngx_codeb_dial_free(ngx_codeb_dial_t *d);
static void ngx_codeb_dial_tick(ngx_event_t *ev);
static void ngx_codeb_dial_leased(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_dial_claimed(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_dial_stop_msg(ngx_str_t *header, ngx_str_t *body);
static ngx_codeb_dial_t *ngx_codeb_dial_find(ngx_str_t *tenant,
    ngx_str_t *id);


static ngx_queue_t   ngx_codeb_dials;
static ngx_event_t   ngx_codeb_dial_timer;
static ngx_uint_t    ngx_codeb_dial_busy;


ngx_int_t
ngx_codeb_api_dial_init(ngx_conf_t *cf)
{
    static ngx_str_t  stop = ngx_string("codeb-call-stop");

    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_dial_set_script) != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_dial_lease_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_dial_claim_script)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_codeb_bus_on(cf, &stop, ngx_codeb_dial_stop_msg);
}


ngx_int_t
ngx_codeb_api_calls_start(ngx_cycle_t *cycle)
{
    ngx_queue_init(&ngx_codeb_dials);

    ngx_codeb_dial_timer.handler = ngx_codeb_dial_tick;
    ngx_codeb_dial_timer.log = cycle->log;
    ngx_codeb_dial_timer.data = cycle;
    ngx_codeb_dial_timer.cancelable = 1;

    ngx_add_timer(&ngx_codeb_dial_timer, NGX_CODEB_DIAL_PERIOD);

    return NGX_OK;
}


ngx_int_t
ngx_codeb_api_dial_check(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_int_t *rc)
{
    char  *why;

    if (ngx_codeb_originate_start == NULL) {
        why = "no SIP trunks here: ngx_codeb_sipws with a codeb_sip_trunk "
              "is needed";

    } else if (ctx->conf->greeting.len == 0) {
        why = "the tenant has no codeb_call_greeting";

    } else {
        return NGX_OK;
    }

    *rc = ngx_codeb_http_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                               "bridge_not_configured", why);

    return NGX_DECLINED;
}


ngx_int_t
ngx_codeb_api_dial_now(ngx_http_request_t *r, ngx_codeb_api_ctx_t *ctx,
    ngx_str_t *record, ngx_str_t *id)
{
    ngx_int_t          rc;
    ngx_codeb_dial_t  *d;

    d = ngx_codeb_dial_new(ctx->conf, record, r->pool);
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d->r = r;
    r->main->count++;

    rc = ngx_codeb_dial_start(d);

    if (rc == NGX_DECLINED) {
        ngx_codeb_dial_answer(d, NGX_HTTP_SERVICE_UNAVAILABLE,
                              "bridge_not_configured",
                              "no SIP trunk of the tenant takes this number");

        if (!d->pending) {
            ngx_codeb_dial_free(d);
        }
    }

    return NGX_DONE;
}


/*
 * a dial of the stored record (parsed in pool); NULL: no memory or a bad
 * record
 */
static ngx_codeb_dial_t *
ngx_codeb_dial_new(ngx_codeb_api_srv_conf_t *conf, ngx_str_t *record,
    ngx_pool_t *pool)
{
    u_char                   *p;
    int64_t                   max;
    ngx_array_t              *m;
    ngx_codeb_dial_t         *d;
    ngx_codeb_json_member_t  *id, *phone, *display;

    if (ngx_codeb_json_object(pool, record->data, record->len, &m) != NGX_OK)
    {
        return NULL;
    }

    id = ngx_codeb_json_get_type(m, "callId", NGX_CODEB_JSON_STRING);
    phone = ngx_codeb_json_get_type(m, "phone", NGX_CODEB_JSON_STRING);
    display = ngx_codeb_json_get_type(m, "displayName",
                                      NGX_CODEB_JSON_STRING);

    if (id == NULL || phone == NULL || display == NULL
        || ngx_codeb_json_int(m, "maxSeconds", &max) != NGX_OK)
    {
        return NULL;
    }

    d = ngx_calloc(sizeof(ngx_codeb_dial_t) + id->str.len + phone->str.len
                   + display->str.len, ngx_cycle->log);
    if (d == NULL) {
        return NULL;
    }

    p = (u_char *) (d + 1);

    d->conf = conf;
    d->id.data = p;
    d->id.len = id->str.len;
    p = ngx_cpymem(p, id->str.data, id->str.len);
    d->o.number.data = p;
    d->o.number.len = phone->str.len;
    p = ngx_cpymem(p, phone->str.data, phone->str.len);
    d->o.display.data = p;
    d->o.display.len = display->str.len;
    (void) ngx_cpymem(p, display->str.data, display->str.len);

    d->o.tenant = conf->tenant->name;
    d->o.greeting = conf->greeting;
    d->o.max_talk = (ngx_msec_t) max * 1000;
    d->o.handler = ngx_codeb_dial_event;
    d->o.data = d;

    d->reach.handler = ngx_codeb_dial_unreachable;
    d->reach.data = d;
    d->reach.log = ngx_cycle->log;
    d->reach.cancelable = 1;

    return d;
}


/* NGX_OK: placed; NGX_DECLINED: no trunk (the record fails, final) */
static ngx_int_t
ngx_codeb_dial_start(ngx_codeb_dial_t *d)
{
    ngx_int_t  rc;

    rc = (ngx_codeb_originate_start && d->conf->greeting.len)
         ? ngx_codeb_originate_start(&d->o) : NGX_DECLINED;

    if (rc == NGX_OK) {
        ngx_queue_insert_tail(&ngx_codeb_dials, &d->queue);
        d->linked = 1;
        ngx_add_timer(&d->reach, NGX_CODEB_DIAL_REACH);
        return NGX_OK;
    }

    d->pending = (ngx_codeb_dial_set(d->conf, &d->id, "ended", "no-answer",
                                     rc == NGX_DECLINED
                                     ? "bridge_not_configured: no SIP trunk "
                                       "takes this number, or no "
                                       "codeb_call_greeting"
                                     : "the call could not be placed",
                                     NULL, 1, ngx_codeb_dial_ended, d)
                  == NGX_OK);

    if (!d->pending && d->r == NULL) {
        ngx_codeb_dial_free(d);
    }

    return NGX_DECLINED;
}


static void
ngx_codeb_dial_event(ngx_codeb_originate_t *o,
    ngx_codeb_originate_event_e event)
{
    u_char             line[32], reason[96];
    char              *detail;
    ngx_codeb_dial_t  *d = o->data;

    switch (event) {

    case NGX_CODEB_ORIGINATE_PROGRESS:
        if (d->reach.timer_set) {
            ngx_del_timer(&d->reach);
        }

        (void) ngx_codeb_dial_set(d->conf, &d->id, "progress", NULL, NULL,
                                  NULL, 0, NULL, NULL);

        if (d->r) {
            (void) ngx_snprintf(line, sizeof(line) - 1, "SIP/2.0 %d%Z",
                                o->status);
            ngx_codeb_dial_answer(d, NGX_HTTP_OK, NULL, (char *) line);
        }

        ngx_codeb_scratch_reset();
        return;

    case NGX_CODEB_ORIGINATE_ANSWERED:
        (void) ngx_codeb_dial_set(d->conf, &d->id, "answered", NULL, NULL,
                                  &o->trunk, 0, ngx_codeb_dial_answered, d);
        ngx_codeb_scratch_reset();
        return;

    default:
        break;
    }

    /* ENDED */

    if (d->reach.timer_set) {
        ngx_del_timer(&d->reach);
    }

    ngx_queue_remove(&d->queue);
    d->linked = 0;

    if (d->unreachable) {
        detail = "the trunk did not answer the INVITE within 4 s";

    } else if (o->answer_ms == 0 || o->reason[0]) {
        (void) ngx_snprintf(reason, sizeof(reason) - 1, "SIP %d %s%Z",
                            o->status, o->reason);
        detail = (ngx_strcmp(o->outcome, "cancelled") == 0 && !o->answer_ms)
                 ? "" : (char *) reason;

    } else {
        detail = "";
    }

    if (d->r) {
        d->told = 1;
        ngx_codeb_dial_answer(d, NGX_HTTP_BAD_GATEWAY, "bridge_unreachable",
                              d->unreachable ? detail
                              : "the trunk could not be reached");
    }

    if (ngx_codeb_dial_set(d->conf, &d->id, "ended",
                           d->unreachable ? "no-answer" : o->outcome,
                           detail, &o->trunk, d->told,
                           ngx_codeb_dial_ended, d)
        != NGX_OK)
    {
        ngx_codeb_dial_free(d);
    }

    ngx_codeb_scratch_reset();
}


/* no first answer from the trunk in time: the POST gets 502 */
static void
ngx_codeb_dial_unreachable(ngx_event_t *ev)
{
    ngx_codeb_dial_t  *d = ev->data;

    d->unreachable = 1;
    ngx_codeb_originate_stop(&d->o);
}


/* the waiting POST's answer: 200 with bridgeReply text, or an error */
static void
ngx_codeb_dial_answer(ngx_codeb_dial_t *d, ngx_uint_t status, char *error,
    char *text)
{
    yajl_gen             g;
    ngx_http_request_t  *r;

    r = d->r;
    d->r = NULL;

    if (r == NULL) {
        return;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (error) {
        ngx_codeb_gen_cstr(g, "error", error);
        ngx_codeb_gen_cstr(g, "error_description", text);
        ngx_codeb_gen_vstr(g, "callId", &d->id);

    } else {
        ngx_codeb_gen_bool(g, "ok", 1);
        ngx_codeb_gen_vstr(g, "callId", &d->id);
        ngx_codeb_gen_vstr(g, "tenant", &d->conf->tenant->name);
        ngx_codeb_gen_cstr(g, "status", "in-flight");
        ngx_codeb_gen_bool(g, "whitelistAdded", 1);
        ngx_codeb_gen_null(g, "whitelistError");
        ngx_codeb_gen_cstr(g, "bridgeReply", text);
    }

    ngx_http_finalize_request(r, ngx_codeb_api_call_answer(r, status, g));
}


/*
 * the set script with op on call id of conf's tenant; a1, a2, a3 its
 * arguments (NULL: ""), final: no retry; cb(ac, reply, data)
 */
static ngx_int_t
ngx_codeb_dial_set(ngx_codeb_api_srv_conf_t *conf, ngx_str_t *id, char *op,
    char *a1, char *a2, ngx_str_t *a3, ngx_uint_t final, redisCallbackFn *cb,
    void *data)
{
    u_char                  *now, *member, *p;
    ngx_str_t                calls;
    ngx_codeb_redis_args_t   a;

    now = ngx_pnalloc(ngx_codeb_scratch(), NGX_INT64_LEN + 1
                      + conf->tenant->name.len + id->len);
    if (now == NULL
        || ngx_codeb_key(ngx_codeb_scratch(), &conf->tenant->name, "calls",
                         NULL, 0, &calls) != NGX_OK)
    {
        return NGX_ERROR;
    }

    member = ngx_sprintf(now, "%uL", ngx_codeb_now_ms());
    p = ngx_sprintf(member, "%V %V", &conf->tenant->name, id);

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &calls);
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_DUE);
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_ACTIVE);
    ngx_codeb_redis_arg(&a, op, ngx_strlen(op));
    ngx_codeb_redis_arg_str(&a, id);
    ngx_codeb_redis_arg(&a, now, member - now);
    ngx_codeb_redis_arg(&a, member, p - member);
    ngx_codeb_redis_arg(&a, a1, a1 ? ngx_strlen(a1) : 0);
    ngx_codeb_redis_arg(&a, a2, a2 ? ngx_strlen(a2) : 0);

    if (a3) {
        ngx_codeb_redis_arg_str(&a, a3);

    } else {
        ngx_codeb_redis_arg(&a, NULL, 0);
    }

    ngx_codeb_redis_arg(&a, "1", final ? 1 : 0);

    return ngx_codeb_redis_eval(&ngx_codeb_dial_set_script, cb, data, 3, &a);
}


/*
 * the record after "answered" (data NULL: call.answered, call.started)
 * or "ended" (data the dial, freed here: outbound-ai.finished unless it
 * was cancelled through the API, which fired it)
 */
static void
ngx_codeb_dial_ended(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply                *rep = reply;
    ngx_codeb_dial_t          *d = data;
    ngx_codeb_api_srv_conf_t  *conf;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2
        || rep->element[0]->type != REDIS_REPLY_STRING
        || rep->element[1]->type != REDIS_REPLY_STRING)
    {
        if (d) {
            ngx_codeb_dial_free(d);
        }

        return;
    }

    conf = d->conf;

    if (ngx_strcmp(rep->element[0]->str, "cancelled") != 0) {
        ngx_codeb_dial_fire(conf, "outbound-ai.finished",
                            (u_char *) rep->element[1]->str,
                            rep->element[1]->len);
    }

    ngx_codeb_dial_free(d);
    ngx_codeb_scratch_reset();
}


/* the record once answered: call.answered, then call.started (the
   greeting, in place of the AI, is playing) */
static void
ngx_codeb_dial_answered(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply        *rep = reply;
    ngx_codeb_dial_t  *d = data;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2
        || rep->element[1]->type != REDIS_REPLY_STRING
        || d->o.answer_ms == 0)
    {
        return;
    }

    ngx_codeb_dial_fire(d->conf, "call.answered",
                        (u_char *) rep->element[1]->str,
                        rep->element[1]->len);
    ngx_codeb_dial_fire(d->conf, "call.started",
                        (u_char *) rep->element[1]->str,
                        rep->element[1]->len);
    ngx_codeb_scratch_reset();
}


void
ngx_codeb_api_dial_cancelled(ngx_codeb_api_srv_conf_t *conf,
    ngx_str_t *before, ngx_str_t *record)
{
    u_char                   *p;
    ngx_str_t                 msg, *id;
    ngx_array_t              *m;
    ngx_codeb_dial_t         *d;
    ngx_codeb_json_member_t  *owner, *call;

    ngx_codeb_dial_fire(conf, "outbound-ai.finished", record->data,
                        record->len);

    if (ngx_strcmp(before->data, "dispatching") != 0
        && ngx_strcmp(before->data, "in-flight") != 0)
    {
        return;
    }

    if (ngx_codeb_json_object(ngx_codeb_scratch(), record->data,
                              record->len, &m)
        != NGX_OK)
    {
        return;
    }

    owner = ngx_codeb_json_get_type(m, "owner", NGX_CODEB_JSON_STRING);
    call = ngx_codeb_json_get_type(m, "callId", NGX_CODEB_JSON_STRING);

    if (owner == NULL || call == NULL) {
        return;
    }

    id = ngx_codeb_worker_id();

    if (owner->str.len == id->len
        && ngx_strncmp(owner->str.data, id->data, id->len) == 0)
    {
        d = ngx_codeb_dial_find(&conf->tenant->name, &call->str);
        if (d) {
            ngx_codeb_originate_stop(&d->o);
        }

        return;
    }

    p = ngx_pnalloc(ngx_codeb_scratch(), sizeof("codeb-call-stop  \n")
                    + conf->tenant->name.len + call->str.len);
    if (p == NULL) {
        return;
    }

    msg.data = p;
    msg.len = ngx_sprintf(p, "codeb-call-stop %V %V\n", &conf->tenant->name,
                          &call->str) - p;

    (void) ngx_codeb_bus_send(&owner->str, &msg);
}


/* "codeb-call-stop <tenant> <callId>": a call this worker dials ends */
static void
ngx_codeb_dial_stop_msg(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t          w[3];
    ngx_codeb_dial_t  *d;

    if (ngx_codeb_bus_words(header, w, 3) == 0) {
        return;
    }

    d = ngx_codeb_dial_find(&w[1], &w[2]);
    if (d) {
        ngx_codeb_originate_stop(&d->o);
    }
}


static ngx_codeb_dial_t *
ngx_codeb_dial_find(ngx_str_t *tenant, ngx_str_t *id)
{
    ngx_queue_t       *q;
    ngx_codeb_dial_t  *d;

    for (q = ngx_queue_head(&ngx_codeb_dials);
         q != ngx_queue_sentinel(&ngx_codeb_dials);
         q = ngx_queue_next(q))
    {
        d = ngx_queue_data(q, ngx_codeb_dial_t, queue);

        if (d->id.len == id->len
            && ngx_strncmp(d->id.data, id->data, id->len) == 0
            && d->conf->tenant->name.len == tenant->len
            && ngx_strncmp(d->conf->tenant->name.data, tenant->data,
                           tenant->len) == 0)
        {
            return d;
        }
    }

    return NULL;
}


/*
 * an event of a call from its record (the seed's payloads):
 * outbound-ai.finished, call.answered or call.started
 */
static void
ngx_codeb_dial_fire(ngx_codeb_api_srv_conf_t *conf, char *event,
    u_char *record, size_t len)
{
    int64_t                   v, answered, dispatched;
    yajl_gen                  g;
    ngx_uint_t                i, finished;
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *s;

    /* a member of the record under another name ("": the same) */
    static char  *fields[][3] = {
        { "callId", "", "*" }, { "phone", "", "*" },
        { "displayName", "", "*" }, { "endedReason", "outcome", "f" },
        { "trunkId", "trunk", "f" }, { "errorDetail", "", "f" },
        { "trunkId", "", "a" }, { NULL, NULL, NULL }
    };

    if (ngx_codeb_json_object(ngx_codeb_scratch(), record, len, &m)
        != NGX_OK)
    {
        return;
    }

    g = ngx_codeb_api_envelope(conf->tenant, event);
    if (g == NULL) {
        return;
    }

    finished = (ngx_strcmp(event, "outbound-ai.finished") == 0);

    for (i = 0; fields[i][0]; i++) {
        if (fields[i][2][0] != '*'
            && (fields[i][2][0] == 'f') != finished)
        {
            continue;
        }

        s = ngx_codeb_json_get_type(m, fields[i][0], NGX_CODEB_JSON_STRING);
        ngx_codeb_gen_str(g, fields[i][1][0] ? fields[i][1] : fields[i][0],
                          s ? s->str.data : NULL, s ? s->str.len : 0);
    }

    answered = 0;
    (void) ngx_codeb_json_int(m, "answered", &answered);

    if (finished) {
        ngx_codeb_gen_bool(g, "answered", answered > 0);
        v = 0;
        (void) ngx_codeb_json_int(m, "durationSec", &v);
        ngx_codeb_gen_int(g, "talkSec", v);
        ngx_codeb_gen_int(g, "inputTurns", 0);
        ngx_codeb_gen_int(g, "outputTurns", 0);
        v = 0;
        (void) ngx_codeb_json_int(m, "attempt", &v);
        ngx_codeb_gen_int(g, "attempt", v);

    } else {
        ngx_codeb_gen_cstr(g, "direction", "outbound");
        ngx_codeb_gen_cstr(g, "source", "outbound-ai");

        dispatched = answered;
        (void) ngx_codeb_json_int(m, "dispatched", &dispatched);

        if (ngx_strcmp(event, "call.answered") == 0) {
            /* ms from our INVITE to the 200 */
            ngx_codeb_gen_int(g, "answerMs", answered - dispatched);
        }
    }

    if (ngx_codeb_api_fire(conf, event, g, NULL, NULL, NULL) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "codeb calls: %s not queued: Redis is down", event);
    }
}


static void
ngx_codeb_dial_free(ngx_codeb_dial_t *d)
{
    if (d->reach.timer_set) {
        ngx_del_timer(&d->reach);
    }

    if (d->linked) {
        ngx_queue_remove(&d->queue);
    }

    ngx_free(d);
}


/* ---- the scheduler ---- */

static void
ngx_codeb_dial_tick(ngx_event_t *ev)
{
    ngx_codeb_redis_args_t  a;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(ev, NGX_CODEB_DIAL_PERIOD);

    if (ngx_codeb_dial_busy || !ngx_codeb_redis_ready()) {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_LEASE);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_DIAL_LEASE);

    if (ngx_codeb_redis_eval(&ngx_codeb_dial_lease_script,
                             ngx_codeb_dial_leased, NULL, 1, &a)
        == NGX_OK)
    {
        ngx_codeb_dial_busy = 1;
    }
}


static void
ngx_codeb_dial_leased(redisAsyncContext *ac, void *reply, void *data)
{
    u_char                   now[NGX_INT64_LEN];
    redisReply              *rep = reply;
    ngx_codeb_redis_args_t   a;

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER
        || rep->integer != 1)
    {
        ngx_codeb_dial_busy = 0;
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_DUE);
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_CALLS_ACTIVE);
    ngx_codeb_redis_arg(&a, now, ngx_sprintf(now, "%uL",
                                             ngx_codeb_now_ms()) - now);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_DIAL_BATCH);

    if (ngx_codeb_redis_eval(&ngx_codeb_dial_claim_script,
                             ngx_codeb_dial_claimed, NULL, 2, &a)
        != NGX_OK)
    {
        ngx_codeb_dial_busy = 0;
    }
}


static void
ngx_codeb_dial_claimed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t                     i;
    ngx_str_t                  tenant, record;
    redisReply                *rep = reply;
    ngx_codeb_dial_t          *d;
    ngx_codeb_api_srv_conf_t  *conf;

    ngx_codeb_dial_busy = 0;

    if (rep && rep->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "codeb calls: redis: %s", rep->str);
    }

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0
        || rep->element[0]->type != REDIS_REPLY_INTEGER)
    {
        return;
    }

    for (i = 1; i + 1 < rep->elements; i += 2) {
        tenant.data = (u_char *) rep->element[i]->str;
        tenant.len = rep->element[i]->len;
        record.data = (u_char *) rep->element[i + 1]->str;
        record.len = rep->element[i + 1]->len;

        conf = ngx_codeb_api_conf_of(&tenant);

        if (i > (size_t) rep->element[0]->integer) {
            /* lost with its worker: failed, and said so */
            if (conf) {
                ngx_codeb_dial_fire(conf, "outbound-ai.finished",
                                    record.data, record.len);
            }

            continue;
        }

        d = conf ? ngx_codeb_dial_new(conf, &record, ngx_codeb_scratch())
                 : NULL;

        if (d == NULL) {
            /* its deadline fails it (codeb:calls:active) */
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "codeb calls: a due call of tenant \"%V\" cannot "
                          "be dialed here", &tenant);
            continue;
        }

        (void) ngx_codeb_dial_start(d);
    }

    ngx_codeb_scratch_reset();
}

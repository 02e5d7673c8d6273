/*
 * A trunk's lines (docs/sip.md "Trunks"): the calls at a time through it,
 * inbound, outbound and in all (codeb_sip_trunk max_inbound=,
 * max_outbound=, max_total=), counted for every worker and host in Redis;
 * and the upstream's sibling forks: the same call delivered again within
 * 2 s (the same Call-ID, or the same caller number to the same DID) is
 * held at 180 instead of ringing twice.
 *   P tcalls:<trunk>:in   zset    member: our To tag of the call, score:
 *   P tcalls:<trunk>:out          when it stops counting (epoch ms, 4 h
 *                                 after its start; removed at its end)
 *   P fork:<SHA-1 hex>    string  the first delivery's, for 2 s
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_SIP_FORK_WINDOW   2000       /* ms */
#define NGX_CODEB_SIP_LINE_TTL      14400000   /* ms a call counts at most */


static void ngx_codeb_sip_admit_reply(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_sip_line_keys(ngx_codeb_sip_call_t *call,
    ngx_str_t *in, ngx_str_t *out);
static ngx_int_t ngx_codeb_sip_fork_key(ngx_codeb_sip_call_t *call,
    char const *a, char const *b, ngx_str_t *key);


/*
 * KEYS: P tcalls:<trunk>:in, P tcalls:<trunk>:out, then fork keys.
 * ARGV: now (epoch ms), "in" or "out", member, max in, max out, max total
 * (-1: none), fork window (ms), line TTL (ms).  Returns 0 for a sibling
 * (a fork key exists), -1 when a limit is reached, else 1 (counted).
 */
ngx_codeb_redis_script_t  ngx_codeb_sip_admit_script = {
    ngx_string(
    "for i = 3, #KEYS do\n"
    "  if not redis.call('SET', KEYS[i], ARGV[3], 'NX', 'PX', ARGV[7]) then\n"
    "    return 0\n"
    "  end\n"
    "end\n"
    "local now = tonumber(ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
    "local n = {['in'] = redis.call('ZCARD', KEYS[1]),\n"
    "           out = redis.call('ZCARD', KEYS[2])}\n"
    "local max = {['in'] = tonumber(ARGV[4]), out = tonumber(ARGV[5])}\n"
    "local total = tonumber(ARGV[6])\n"
    "if total >= 0 and n['in'] + n.out >= total then return -1 end\n"
    "local dir = ARGV[2]\n"
    "if max[dir] >= 0 and n[dir] >= max[dir] then return -1 end\n"
    "local key = KEYS[1]\n"
    "if dir == 'out' then key = KEYS[2] end\n"
    "redis.call('ZADD', key, now + tonumber(ARGV[8]), ARGV[3])\n"
    "redis.call('PEXPIRE', key, tonumber(ARGV[8]))\n"
    "return 1\n"),
    ""
};


/*
 * May call go through its trunk?  Inbound calls are checked for siblings
 * too.  NGX_OK: yes at once (nothing to count); NGX_AGAIN: done(call, rc)
 * follows with NGX_OK, NGX_DECLINED (a sibling), NGX_BUSY (a limit is
 * reached) or NGX_ERROR (Redis); NGX_ERROR: Redis is not there
 */
ngx_int_t
ngx_codeb_sip_trunk_admit(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_admit_pt done)
{
    u_char                   now[NGX_INT64_LEN], max[3][NGX_INT_T_LEN];
    u_char                   window[NGX_INT_T_LEN], ttl[NGX_INT_T_LEN];
    sip_t                   *rq;
    ngx_str_t                in, out, fork[2];
    ngx_time_t              *tp;
    ngx_uint_t               nforks, i;
    ngx_codeb_sip_trunk_t   *trunk;
    ngx_codeb_redis_args_t   a;

    trunk = call->trunk;
    nforks = 0;

    if (!call->outbound) {
        rq = sip_object(call->a.invite);

        if (ngx_codeb_sip_fork_key(call, rq->sip_call_id->i_id, "",
                                   &fork[nforks++])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* a B2BUA upstream forks with new Call-IDs: caller and DID */

        if (rq->sip_from->a_url->url_user
            && ngx_strcasecmp((u_char *) rq->sip_from->a_url->url_user,
                              (u_char *) "anonymous") != 0
            && rq->sip_request->rq_url->url_user
            && ngx_codeb_sip_fork_key(call, rq->sip_from->a_url->url_user,
                                      rq->sip_request->rq_url->url_user,
                                      &fork[nforks++])
               != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (trunk->max_outbound < 0 && trunk->max_total < 0) {
        return NGX_OK;
    }

    if (ngx_codeb_sip_line_keys(call, &in, &out) != NGX_OK) {
        return NGX_ERROR;
    }

    tp = ngx_timeofday();

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &in);
    ngx_codeb_redis_arg_str(&a, &out);

    for (i = 0; i < nforks; i++) {
        ngx_codeb_redis_arg_str(&a, &fork[i]);
    }

    ngx_codeb_redis_arg(&a, now, ngx_sprintf(now, "%M",
                                             (ngx_msec_t) tp->sec * 1000
                                             + tp->msec) - now);
    if (call->outbound) {
        ngx_codeb_redis_arg_lit(&a, "out");

    } else {
        ngx_codeb_redis_arg_lit(&a, "in");
    }

    ngx_codeb_redis_arg(&a, (u_char *) call->a.local_tag,
                        ngx_strlen(call->a.local_tag));
    ngx_codeb_redis_arg(&a, max[0], ngx_sprintf(max[0], "%i",
                                                trunk->max_inbound) - max[0]);
    ngx_codeb_redis_arg(&a, max[1], ngx_sprintf(max[1], "%i",
                                                trunk->max_outbound)
                                    - max[1]);
    ngx_codeb_redis_arg(&a, max[2], ngx_sprintf(max[2], "%i",
                                                trunk->max_total) - max[2]);
    ngx_codeb_redis_arg(&a, window, ngx_sprintf(window, "%d",
                                                NGX_CODEB_SIP_FORK_WINDOW)
                                    - window);
    ngx_codeb_redis_arg(&a, ttl, ngx_sprintf(ttl, "%d",
                                             NGX_CODEB_SIP_LINE_TTL) - ttl);

    call->admit = done;

    if (ngx_codeb_redis_eval(&ngx_codeb_sip_admit_script,
                             ngx_codeb_sip_admit_reply, call, 2 + nforks, &a)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    call->redis = 1;

    return NGX_AGAIN;
}


static void
ngx_codeb_sip_admit_reply(redisAsyncContext *ac, void *reply, void *data)
{
    ngx_int_t              rc;
    redisReply            *rep = reply;
    ngx_codeb_sip_call_t  *call = data;

    call->redis = 0;

    if (call->done) {
        /* it ended meanwhile; a line it took goes with it */
        call->counted = (rep && rep->type == REDIS_REPLY_INTEGER
                         && rep->integer == 1);
        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        rc = NGX_ERROR;

    } else if (rep->integer == 1) {
        call->counted = 1;
        rc = NGX_OK;

    } else {
        rc = (rep->integer == 0) ? NGX_DECLINED : NGX_BUSY;
    }

    call->admit(call, rc);
}


/* the call's line is free again (at its end) */
void
ngx_codeb_sip_trunk_release(ngx_codeb_sip_call_t *call)
{
    ngx_str_t                in, out;
    ngx_codeb_redis_args_t   a;

    if (!call->counted) {
        return;
    }

    call->counted = 0;

    if (ngx_codeb_sip_line_keys(call, &in, &out) != NGX_OK) {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "ZREM");

    if (call->outbound) {
        ngx_codeb_redis_arg_str(&a, &out);

    } else {
        ngx_codeb_redis_arg_str(&a, &in);
    }

    ngx_codeb_redis_arg(&a, (u_char *) call->a.local_tag,
                        ngx_strlen(call->a.local_tag));

    /* a lost reply leaves the entry to its expiry */
    (void) ngx_codeb_redis_command(NULL, NULL, &a);
}


static ngx_int_t
ngx_codeb_sip_line_keys(ngx_codeb_sip_call_t *call, ngx_str_t *in,
    ngx_str_t *out)
{
    u_char                 *p;
    size_t                  len;
    ngx_codeb_sip_trunk_t  *trunk;

    trunk = call->trunk;
    len = sizeof("tcalls::out") - 1 + trunk->name.len;

    p = ngx_pnalloc(ngx_codeb_scratch(), 2 * len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (ngx_codeb_key(ngx_codeb_scratch(), &call->sip->tenant->name,
                      "tcalls:", p, ngx_sprintf(p, "%V:in", &trunk->name) - p,
                      in)
        != NGX_OK
        || ngx_codeb_key(ngx_codeb_scratch(), &call->sip->tenant->name,
                         "tcalls:", p + len,
                         ngx_sprintf(p + len, "%V:out", &trunk->name)
                         - (p + len), out)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* P fork:<SHA-1 hex of "<a>\n<b>"> */
static ngx_int_t
ngx_codeb_sip_fork_key(ngx_codeb_sip_call_t *call, char const *a,
    char const *b, ngx_str_t *key)
{
    u_char     hex[41], *text;
    size_t     alen, blen;

    alen = ngx_strlen(a);
    blen = ngx_strlen(b);

    text = ngx_pnalloc(ngx_codeb_scratch(), alen + 1 + blen);
    if (text == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(text, a, alen), "\n", 1);
    ngx_memcpy(text + alen + 1, b, blen);

    ngx_codeb_sha1_hex(text, alen + 1 + blen, hex);

    return ngx_codeb_key(ngx_codeb_scratch(), &call->sip->tenant->name,
                         "fork:", hex, 40, key);
}

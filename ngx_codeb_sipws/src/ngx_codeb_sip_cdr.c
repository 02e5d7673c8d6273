/*
 * Call records (docs/sip.md "Call records"): one JSON object per call when
 * it is over, newest first in the list P cdrs (at most 10000), read by
 * ?cdrlog and ?diallog of ngx_codeb_signal:
 *   {callId, direction: "inbound" | "outbound" | "internal", trunk, from,
 *    to, did, start, answer, end (epoch ms; answer null when unanswered),
 *    durationSec, status (the caller's final status: 200 when answered),
 *    cause, hangup: "caller" | "callee" | "system" (answered calls)}
 * cause: normal, cancelled, busy, declined, no-answer, unavailable,
 * not-found, held, congestion, failed.
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_SIP_CDR_MAX     10000


static char *ngx_codeb_sip_cdr_cause(ngx_codeb_sip_call_t *call);


/* KEYS: P cdrs.  ARGV: the record, the most to keep. */
ngx_codeb_redis_script_t  ngx_codeb_sip_cdr_script = {
    ngx_string(
    "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)\n"
    "return 1\n"),
    ""
};


/* the record of call, written once when it is over (a lost one is lost) */
void
ngx_codeb_sip_cdr(ngx_codeb_sip_call_t *call)
{
    u_char                  max[NGX_INT_T_LEN];
    uint64_t                end;
    yajl_gen                g;
    ngx_str_t               key, text;
    sip_t                  *rq;
    ngx_codeb_redis_args_t  a;

    if (call->recorded) {
        return;
    }

    call->recorded = 1;
    end = ngx_codeb_now_ms();
    rq = sip_object(call->a.invite);

    g = ngx_codeb_gen();
    if (g == NULL) {
        return;
    }

    ngx_codeb_gen_cstr(g, "callId", (char *) call->a.call_id);
    ngx_codeb_gen_cstr(g, "direction", call->outbound ? "outbound"
                                       : call->trunk ? "inbound"
                                       : "internal");
    if (call->trunk) {
        ngx_codeb_gen_vstr(g, "trunk", &call->trunk->name);

    } else {
        ngx_codeb_gen_null(g, "trunk");
    }

    ngx_codeb_gen_cstr(g, "from", rq->sip_from->a_url->url_user
                                  ? (char *) rq->sip_from->a_url->url_user
                                  : "anonymous");
    ngx_codeb_gen_cstr(g, "to", (char *) call->callee);

    if (call->trunk && !call->outbound) {
        ngx_codeb_gen_cstr(g, "did", rq->sip_request->rq_url->url_user
                                     ? (char *) rq->sip_request->rq_url
                                                  ->url_user
                                     : "");
    }

    ngx_codeb_gen_int(g, "start", call->start_ms);

    if (call->answer_ms) {
        ngx_codeb_gen_int(g, "answer", call->answer_ms);

    } else {
        ngx_codeb_gen_null(g, "answer");
    }

    ngx_codeb_gen_int(g, "end", end);
    ngx_codeb_gen_int(g, "durationSec", call->answer_ms
                                        ? (end - call->answer_ms) / 1000 : 0);
    ngx_codeb_gen_int(g, "status", call->answer_ms ? 200 : call->status);
    ngx_codeb_gen_cstr(g, "cause", ngx_codeb_sip_cdr_cause(call));

    if (call->answer_ms) {
        ngx_codeb_gen_cstr(g, "hangup", call->hangup ? call->hangup
                                                     : "system");
    }

    text = ngx_codeb_gen_done(g);

    if (text.len == 0
        || ngx_codeb_key(ngx_codeb_scratch(), &call->sip->tenant->name,
                         "cdrs", NULL, 0, &key)
           != NGX_OK)
    {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &key);
    ngx_codeb_redis_arg_str(&a, &text);
    ngx_codeb_redis_arg(&a, max, ngx_sprintf(max, "%d",
                                             NGX_CODEB_SIP_CDR_MAX) - max);

    (void) ngx_codeb_redis_eval(&ngx_codeb_sip_cdr_script, NULL, NULL, 1, &a);
}


static char *
ngx_codeb_sip_cdr_cause(ngx_codeb_sip_call_t *call)
{
    if (call->answer_ms) {
        return "normal";
    }

    if (call->held) {
        return "held";
    }

    switch (call->status) {

    case 487:
        return "cancelled";

    case 486:
    case 600:
        return "busy";

    case 603:
        return "declined";

    case 404:
        return "not-found";

    case 408:
    case 480:
        /* no callee at all, or none answered */
        return (call->nbindings || call->outbound) ? "no-answer"
                                                   : "unavailable";

    case 503:
        return "congestion";

    default:
        return "failed";
    }
}

/*
 * How a call goes on and ends (RFC 3261 §12, §15): requests inside its
 * dialogs (ACK, CANCEL, BYE), hangup from either side or from us, a party
 * whose transport is gone, and the call freed once no answer is due.
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_SIP_LINGER      32000    /* ms a finished call waits for
                                              the last answers (64 T1) */


static void ngx_codeb_sip_call_linger(ngx_event_t *ev);


ngx_int_t
ngx_codeb_sip_call_request(ngx_codeb_sip_flow_t *flow, msg_t *req)
{
    sip_t                 *rq;
    ngx_codeb_sip_leg_t   *leg;
    ngx_codeb_sip_call_t  *call;

    rq = sip_object(req);
    leg = ngx_codeb_sip_leg_find_req(req);

    if (leg == NULL) {
        return NGX_DECLINED;
    }

    call = leg->call;

    switch (rq->sip_request->rq_method) {

    case sip_method_ack:
        /* the ACK of our final answer: no more retransmissions */
        ngx_codeb_sip_retrans_stop(&leg->rt_invite);
        ngx_codeb_sip_call_idle(call);
        break;

    case sip_method_cancel:
        (void) ngx_codeb_sip_reply(flow, req, 200, "OK");

        if (leg == &call->a && call->a.state < NGX_CODEB_SIP_LEG_CONFIRMED) {
            ngx_codeb_sip_call_end(call, 487, "Request Terminated");
        }

        break;

    case sip_method_bye:
        (void) ngx_codeb_sip_reply(flow, req, 200, "OK");

        if (leg != call->party[0] && leg != call->party[1]
            && call->a.state == NGX_CODEB_SIP_LEG_CONFIRMED)
        {
            /* a transferor leaves: the call goes on without it */
            leg->state = NGX_CODEB_SIP_LEG_DONE;
            leg->bye_pending = 0;
            ngx_codeb_sip_call_idle(call);
            break;
        }

        ngx_codeb_sip_hangup(call, leg);
        break;

    case sip_method_refer:
        ngx_codeb_sip_transfer_request(call, leg, req);
        return NGX_OK;

    case sip_method_update:
        if (rq->sip_payload == NULL || rq->sip_payload->pl_len == 0) {
            /* a session refresh (RFC 4028) of this dialog: ours to answer */
            (void) ngx_codeb_sip_reply(flow, req, 200, "OK");
            break;
        }

        /* fall through */

    default:
        if (ngx_codeb_sip_relay_request(call, leg, req) == NGX_OK) {
            return NGX_OK;
        }

        /* a request before the answer */
        (void) ngx_codeb_sip_reply(flow, req, 501, "Not Implemented");
        break;
    }

    msg_destroy(req);

    return NGX_OK;
}


/* one side hung up (from; NULL: we do): BYE to the other, media gone */
void
ngx_codeb_sip_hangup(ngx_codeb_sip_call_t *call, ngx_codeb_sip_leg_t *from)
{
    ngx_uint_t            i;
    ngx_codeb_sip_leg_t  *to[2];

    to[0] = (from == call->party[0]) ? NULL : call->party[0];
    to[1] = (from == call->party[1]) ? NULL : call->party[1];

    if (from) {
        from->state = NGX_CODEB_SIP_LEG_DONE;
    }

    if (!call->done && call->hangup == NULL) {
        call->hangup = (from == NULL) ? "system"
                       : (from == call->party[0]) ? "caller" : "callee";
    }

    for (i = 0; i < 2; i++) {
        ngx_codeb_sip_leg_bye(to[i]);
    }

    if (!call->done) {
        call->done = 1;
        (void) ngx_codeb_sip_media(call, "delete", NULL, NULL, 0);
        call->media = 0;
        call->ng = NULL;
    }

    ngx_codeb_sip_call_idle(call);
}


void
ngx_codeb_sip_call_lost(ngx_codeb_sip_call_t *call, ngx_codeb_sip_leg_t *leg)
{
    if (call->a.state == NGX_CODEB_SIP_LEG_CONFIRMED
        && (leg == call->party[0] || leg == call->party[1]))
    {
        ngx_codeb_sip_hangup(call, leg);
        return;
    }

    if (call->a.state == NGX_CODEB_SIP_LEG_CONFIRMED && !leg->transfer) {
        /* a transferor, or a callee that lost the race, is gone */
        leg->state = NGX_CODEB_SIP_LEG_DONE;
        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (leg == &call->a) {
        /* the caller went while it rang: no one to answer, callees stop */
        call->a.state = NGX_CODEB_SIP_LEG_DONE;
        ngx_codeb_sip_call_end(call, 487, "Request Terminated");
        return;
    }

    /* a callee went while it rang: the last one ends the call */
    if (leg == call->answered) {
        leg->state = NGX_CODEB_SIP_LEG_DONE;
        ngx_codeb_sip_hangup(call, leg);
        ngx_codeb_sip_call_end(call, 480, "Temporarily Unavailable");
        return;
    }

    if (leg->state != NGX_CODEB_SIP_LEG_DONE) {
        ngx_codeb_sip_leg_over(leg, 480, "Temporarily Unavailable");
    }
}


void
ngx_codeb_sip_call_end(ngx_codeb_sip_call_t *call, int status,
    char const *phrase)
{
    msg_t  *rsp;

    if (call->timer.timer_set) {
        ngx_del_timer(&call->timer);
    }

    if (!call->done && call->a.state < NGX_CODEB_SIP_LEG_CONFIRMED) {
        call->status = status;
        rsp = ngx_codeb_sip_response(call->a.invite, status, phrase,
                                     call->a.local_tag);

        /* RFC 3261 §21.5.4: when to try again */
        if (rsp && status == 503
            && sip_add_make(rsp, sip_object(rsp), sip_retry_after_class,
                            "5") < 0)
        {
            msg_destroy(rsp);
            rsp = NULL;
        }

        (void) ngx_codeb_sip_send_kept(call->a.flow, rsp, &call->a.rt_invite,
                                       1);
        call->a.state = NGX_CODEB_SIP_LEG_DONE;
    }

    if (!call->done) {
        call->done = 1;
        ngx_codeb_sip_cancel_others(call, NULL);

        if (call->media) {
            (void) ngx_codeb_sip_media(call, "delete", NULL, NULL, 0);
            call->media = 0;
            call->ng = NULL;
        }
    }

    ngx_codeb_sip_call_idle(call);
}


/*
 * a finished call is freed once no answer is due from its legs and no
 * message of ours is retransmitted, or NGX_CODEB_SIP_LINGER ms later
 */
void
ngx_codeb_sip_call_idle(ngx_codeb_sip_call_t *call)
{
    ngx_uint_t            busy;
    ngx_queue_t          *q;
    ngx_codeb_sip_leg_t  *leg;

    if (!call->done || call->ng || call->redis) {
        /* the reply's handler comes back here */
        return;
    }

    /* the trunk's line is free when the call is over, not when freed */
    ngx_codeb_sip_trunk_release(call);
    ngx_codeb_sip_cdr(call);

    if (call->origin) {
        ngx_codeb_sip_originate_over(call);
    }

    if (call->alive) {
        /* what lingers does not keep a worker that shuts down */
        call->alive = 0;
        ngx_codeb_sip_calls_count(-1);
    }

    busy = call->a.rt_invite.timer.timer_set
           || call->a.rt_request.timer.timer_set;

    for (q = ngx_queue_head(&call->b);
         q != ngx_queue_sentinel(&call->b) && !busy;
         q = ngx_queue_next(q))
    {
        leg = ngx_queue_data(q, ngx_codeb_sip_leg_t, queue);

        busy = leg->state != NGX_CODEB_SIP_LEG_DONE
               || leg->rt_request.timer.timer_set;
    }

    if (!busy) {
        ngx_codeb_sip_call_free(call);
        return;
    }

    if (!call->timer.timer_set) {
        call->timer.handler = ngx_codeb_sip_call_linger;
        ngx_add_timer(&call->timer, NGX_CODEB_SIP_LINGER);
    }
}


static void
ngx_codeb_sip_call_linger(ngx_event_t *ev)
{
    ngx_codeb_sip_call_t  *call = ev->data;

    if (call->redis) {
        /* its reply's handler needs it */
        ngx_add_timer(ev, NGX_CODEB_SIP_LINGER);
        return;
    }

    ngx_codeb_sip_call_free(call);
}


void
ngx_codeb_sip_call_free(ngx_codeb_sip_call_t *call)
{
    ngx_queue_t          *q;
    ngx_codeb_sip_leg_t  *leg;

    if (call->ng) {
        /* its reply finds nothing */
        ngx_codeb_sip_ng_cancel(call->ng);
    }

    if (call->relay) {
        ngx_codeb_sip_relay_free(call, call->relay);
    }

    ngx_codeb_sip_transfer_free(call);

    ngx_codeb_sip_trunk_release(call);

    if (call->timer.timer_set) {
        ngx_del_timer(&call->timer);
    }

    while (!ngx_queue_empty(&call->b)) {
        q = ngx_queue_head(&call->b);
        leg = ngx_queue_data(q, ngx_codeb_sip_leg_t, queue);
        ngx_queue_remove(q);

        ngx_codeb_sip_retrans_free(&leg->rt_invite);
        ngx_codeb_sip_retrans_free(&leg->rt_request);
        ngx_codeb_sip_leg_unlink(leg);
    }

    ngx_codeb_sip_retrans_free(&call->a.rt_invite);
    ngx_codeb_sip_retrans_free(&call->a.rt_request);
    ngx_codeb_sip_leg_unlink(&call->a);

    if (call->alive) {
        ngx_codeb_sip_calls_count(-1);
    }

    msg_destroy(call->a.invite);
    su_home_unref(call->home);
    ngx_free(call);
}

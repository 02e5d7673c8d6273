/*
 * Blind transfer (RFC 3515, RFC 5589 §6): a party of an answered call
 * (the transferor) sends REFER with Refer-To a user of the tenant.  It
 * gets 202, then NOTIFYs in the REFER's implicit subscription with a
 * sipfrag of the progress (100, then the outcome).  Every binding of the
 * target gets an INVITE without an offer; the first to answer offers
 * (RFC 3725 flow I): the media daemon turns that offer into one for the
 * other party (the transferee), which gets a re-INVITE with it, and the
 * transferee's answer goes, through the daemon, to the target in our
 * ACK.  The target then takes the transferor's place in the call and its
 * side in the daemon; the transferor gets BYE once it has the final
 * NOTIFY, unless it left already (its leaving does not stop the
 * transfer).  Attended transfer (Refer-To with Replaces) is 501.
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_SIP_TRANSFER_TIME   60000    /* ms the target may ring */


struct ngx_codeb_sip_transfer_s {
    ngx_codeb_sip_leg_t        *referrer;    /* the transferor */
    ngx_uint_t                  side;        /* its index in call->party */
    char                       *user;        /* the target */
    ngx_codeb_sip_leg_t        *target;      /* the target's leg answered */
    uint32_t                    cseq;        /* our re-INVITE to the other */
    char const                 *branch;
    ngx_event_t                 timer;
    int                         best;        /* the targets' best failure */
    unsigned                    acked:1;     /* the target has its answer */
};


static void ngx_codeb_sip_transfer_bindings(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_codeb_sip_transfer_offer_reply(void *data,
    ngx_codeb_sip_ng_reply_t *reply);
static void ngx_codeb_sip_transfer_answer_reply(void *data,
    ngx_codeb_sip_ng_reply_t *reply);
static void ngx_codeb_sip_transfer_end(ngx_codeb_sip_call_t *call,
    int status, char const *phrase);
static void ngx_codeb_sip_transfer_notify(ngx_codeb_sip_leg_t *leg,
    int status, char const *phrase, ngx_uint_t final);
static void ngx_codeb_sip_transfer_timer(ngx_event_t *ev);


/* REFER on leg of call (req is taken) */
void
ngx_codeb_sip_transfer_request(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_leg_t *leg, msg_t *req)
{
    msg_t                     *rsp;
    sip_t                     *rq;
    url_t                     *to;
    ngx_str_t                  key, user;
    ngx_codeb_redis_args_t     a;
    ngx_codeb_sip_transfer_t  *tr;

    rq = sip_object(req);
    to = rq->sip_refer_to ? rq->sip_refer_to->r_url : NULL;

    if (call->done || call->answered == NULL
        || call->a.state != NGX_CODEB_SIP_LEG_CONFIRMED
        || (leg != call->party[0] && leg != call->party[1]))
    {
        (void) ngx_codeb_sip_reply(leg->flow, req, 481,
                                   "Call/Transaction Does Not Exist");
        msg_destroy(req);
        return;
    }

    if (call->transfer || call->relay) {
        (void) ngx_codeb_sip_reply(leg->flow, req, 491, "Request Pending");
        msg_destroy(req);
        return;
    }

    if (to == NULL || to->url_user == NULL
        || (to->url_type != url_sip && to->url_type != url_sips))
    {
        (void) ngx_codeb_sip_reply(leg->flow, req, 400, "Bad Refer-To");
        msg_destroy(req);
        return;
    }

    if (to->url_headers
        && ngx_strcasestrn((u_char *) to->url_headers, "Replaces", 8 - 1))
    {
        (void) ngx_codeb_sip_reply(leg->flow, req, 501,
                                   "Attended Transfer Not Implemented");
        msg_destroy(req);
        return;
    }

    tr = su_zalloc(call->home, sizeof(ngx_codeb_sip_transfer_t));
    user.data = (u_char *) to->url_user;
    user.len = ngx_strlen(to->url_user);

    if (tr == NULL
        || (tr->user = su_strdup(call->home, to->url_user)) == NULL
        || ngx_codeb_key(ngx_codeb_scratch(), &call->sip->tenant->name,
                         "reg:", user.data, user.len, &key) != NGX_OK)
    {
        (void) ngx_codeb_sip_reply(leg->flow, req, 500,
                                   "Server Internal Error");
        msg_destroy(req);
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HVALS");
    ngx_codeb_redis_arg_str(&a, &key);

    if (ngx_codeb_redis_command(ngx_codeb_sip_transfer_bindings, call, &a)
        != NGX_OK)
    {
        (void) ngx_codeb_sip_reply(leg->flow, req, 503,
                                   "Service Unavailable");
        msg_destroy(req);
        return;
    }

    call->redis = 1;
    call->transfer = tr;
    tr->referrer = leg;
    tr->side = (leg == call->party[1]);
    tr->best = 480;

    tr->timer.handler = ngx_codeb_sip_transfer_timer;
    tr->timer.data = call;
    tr->timer.log = ngx_cycle->log;
    tr->timer.cancelable = 1;
    ngx_add_timer(&tr->timer, NGX_CODEB_SIP_TRANSFER_TIME);

    ngx_log_error(NGX_LOG_INFO, call->log, 0,
                  "codeb sip: call \"%s\" transferred to user \"%s\"",
                  call->a.call_id, tr->user);

    rsp = ngx_codeb_sip_response(req, 202, "Accepted", leg->local_tag);

    if (rsp
        && sip_add_make(rsp, sip_object(rsp), sip_contact_class,
                        ngx_codeb_sip_contact(leg->flow, msg_home(rsp))) < 0)
    {
        msg_destroy(rsp);
        rsp = NULL;
    }

    (void) ngx_codeb_sip_send(leg->flow, rsp);
    msg_destroy(req);

    ngx_codeb_sip_transfer_notify(leg, 100, "Trying", 0);
}


/* the target's bindings: an INVITE without an offer to each */
static void
ngx_codeb_sip_transfer_bindings(redisAsyncContext *ac, void *reply,
    void *data)
{
    size_t                     i;
    ngx_str_t                  b;
    redisReply                *rep = reply;
    ngx_uint_t                 n;
    ngx_codeb_sip_leg_t       *leg, *other;
    ngx_codeb_sip_call_t      *call = data;
    ngx_codeb_sip_transfer_t  *tr;

    call->redis = 0;
    tr = call->transfer;

    if (call->done || tr == NULL) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    /* the transferee is who the target sees calling */
    other = call->party[1 - tr->side];
    n = 0;

    for (i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements;
         i++)
    {
        if (rep->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        b.data = (u_char *) rep->element[i]->str;
        b.len = rep->element[i]->len;

        leg = ngx_codeb_sip_leg_create(call, &b, tr->user, 1);
        if (leg == NULL) {
            continue;
        }

        leg->transfer = 1;
        leg->local_uri = (other == &call->a) ? call->a.remote_uri
                                             : other->remote_uri;
        leg->local_display = (other == &call->a) ? call->a.remote_display
                                                 : NULL;

        if (ngx_codeb_sip_leg_invite(leg, NULL, NULL) == NGX_OK) {
            n++;
        }
    }

    if (n == 0) {
        ngx_codeb_sip_transfer_end(call, rep ? 480 : 503,
                                   rep ? "Temporarily Unavailable"
                                       : "Service Unavailable");
    }
}


/*
 * a target answered (its 2xx, with its offer): the others are
 * cancelled; its offer goes to the daemon as one from the transferor's
 * side
 */
void
ngx_codeb_sip_transfer_answered(ngx_codeb_sip_leg_t *leg, msg_t *rsp)
{
    sip_t                     *rs;
    ngx_str_t                  sdp;
    ngx_codeb_sip_call_t      *call;
    ngx_codeb_sip_transfer_t  *tr;

    call = leg->call;
    tr = call->transfer;
    rs = sip_object(rsp);

    if (tr == NULL || tr->target || call->done || rs->sip_payload == NULL) {
        /* too late, or no offer (we sent none): this leg ends */
        ngx_codeb_sip_leg_ack(leg, rsp);
        ngx_codeb_sip_leg_bye(leg);
        return;
    }

    tr->target = leg;
    ngx_codeb_sip_cancel_others(call, leg);

    sdp.data = (u_char *) rs->sip_payload->pl_data;
    sdp.len = rs->sip_payload->pl_len;

    if (ngx_codeb_sip_media(call, "offer", &sdp,
                            ngx_codeb_sip_transfer_offer_reply, tr->side)
        != NGX_OK)
    {
        ngx_codeb_sip_leg_ack(leg, rsp);
        ngx_codeb_sip_leg_bye(leg);
        ngx_codeb_sip_transfer_end(call, 503, "Service Unavailable");
    }
}


/* the target's offer as the transferee gets it: a re-INVITE to it */
static void
ngx_codeb_sip_transfer_offer_reply(void *data,
    ngx_codeb_sip_ng_reply_t *reply)
{
    msg_t                     *msg;
    ngx_codeb_sip_leg_t       *other;
    ngx_codeb_sip_call_t      *call = data;
    ngx_codeb_sip_transfer_t  *tr;

    call->ng = NULL;
    tr = call->transfer;

    if (call->done || tr == NULL) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    other = call->party[1 - tr->side];
    tr->cseq = ++other->cseq;
    tr->branch = ngx_codeb_sip_make_id(call->home, "z9hG4bK", 8);

    msg = (reply && reply->result.len == 2
           && ngx_strncmp(reply->result.data, "ok", 2) == 0
           && reply->sdp.len && tr->branch)
          ? ngx_codeb_sip_leg_request(other, sip_method_invite, "INVITE",
                                      tr->cseq, tr->branch)
          : NULL;

    if (msg == NULL
        || ngx_codeb_sip_set_body(msg, "application/sdp", reply->sdp.data,
                                  reply->sdp.len) != NGX_OK
        || ngx_codeb_sip_leg_send(other, msg, &other->rt_request) != NGX_OK)
    {
        ngx_codeb_sip_leg_bye(tr->target);
        ngx_codeb_sip_transfer_end(call, 503, "Service Unavailable");
    }
}


/*
 * rsp on leg answers our re-INVITE of a transfer; NGX_DECLINED: it does
 * not (rsp is left to the caller), else it is taken
 */
ngx_int_t
ngx_codeb_sip_transfer_response(ngx_codeb_sip_leg_t *leg, msg_t *rsp)
{
    int                        status;
    sip_t                     *rs;
    ngx_str_t                  sdp;
    ngx_codeb_sip_call_t      *call;
    ngx_codeb_sip_transfer_t  *tr;

    call = leg->call;
    tr = call->transfer;
    rs = sip_object(rsp);

    if (tr == NULL || tr->branch == NULL || tr->target == NULL
        || leg != call->party[1 - tr->side]
        || rs->sip_cseq->cs_seq != tr->cseq
        || rs->sip_cseq->cs_method != sip_method_invite)
    {
        return NGX_DECLINED;
    }

    status = rs->sip_status->st_status;
    ngx_codeb_sip_retrans_stop(&leg->rt_request);

    if (status < 200) {
        msg_destroy(rsp);
        return NGX_OK;
    }

    (void) ngx_codeb_sip_leg_send(leg,
               ngx_codeb_sip_leg_request(leg, sip_method_ack, "ACK",
                   tr->cseq,
                   status < 300 ? ngx_codeb_sip_make_id(msg_home(rsp),
                                                        "z9hG4bK", 8)
                                : tr->branch), NULL);

    if (status >= 300 || rs->sip_payload == NULL) {
        ngx_codeb_sip_leg_bye(tr->target);
        ngx_codeb_sip_transfer_end(call, status >= 300 ? status : 488,
                                   status >= 300 ? rs->sip_status->st_phrase
                                                 : "Not Acceptable Here");
        msg_destroy(rsp);
        return NGX_OK;
    }

    /* the target takes the transferor's side from here on */
    call->party[tr->side] = tr->target;
    tr->target->transfer = 1;

    sdp.data = (u_char *) rs->sip_payload->pl_data;
    sdp.len = rs->sip_payload->pl_len;

    if (ngx_codeb_sip_media(call, "answer", &sdp,
                            ngx_codeb_sip_transfer_answer_reply, tr->side)
        != NGX_OK)
    {
        ngx_codeb_sip_transfer_end(call, 503, "Service Unavailable");
        ngx_codeb_sip_hangup(call, NULL);
    }

    msg_destroy(rsp);

    return NGX_OK;
}


/* the transferee's answer as the target gets it: in our ACK */
static void
ngx_codeb_sip_transfer_answer_reply(void *data,
    ngx_codeb_sip_ng_reply_t *reply)
{
    msg_t                     *ack;
    ngx_codeb_sip_leg_t       *target;
    ngx_codeb_sip_call_t      *call = data;
    ngx_codeb_sip_transfer_t  *tr;

    call->ng = NULL;
    tr = call->transfer;

    if (call->done || tr == NULL) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    target = tr->target;
    ack = NULL;

    if (reply && reply->result.len == 2
        && ngx_strncmp(reply->result.data, "ok", 2) == 0 && reply->sdp.len)
    {
        ack = ngx_codeb_sip_leg_request(target, sip_method_ack, "ACK",
                                        target->cseq,
                                        ngx_codeb_sip_make_id(call->home,
                                                              "z9hG4bK", 8));
    }

    if (ack
        && ngx_codeb_sip_set_body(ack, "application/sdp", reply->sdp.data,
                                  reply->sdp.len) != NGX_OK)
    {
        ack = NULL;
    }

    if (ack == NULL) {
        ngx_codeb_sip_transfer_end(call, 503, "Service Unavailable");
        ngx_codeb_sip_hangup(call, NULL);
        return;
    }

    /* kept, not repeated: sent again for each 2xx sent again */
    (void) ngx_codeb_sip_send_kept(target->flow, ack, &target->rt_invite, 0);
    tr->acked = 1;

    ngx_codeb_sip_transfer_end(call, 200, "OK");
}


/* the target's 2xx came again: our ACK (with the answer) again */
void
ngx_codeb_sip_transfer_ack_again(ngx_codeb_sip_leg_t *leg)
{
    if (leg->call->party[0] == leg || leg->call->party[1] == leg
        || (leg->call->transfer && leg->call->transfer->acked))
    {
        ngx_codeb_sip_retrans_again(&leg->rt_invite);
    }
}


/*
 * a target failed (leg is done): when none is left, the transfer failed
 * with the best of their answers
 */
void
ngx_codeb_sip_transfer_failed(ngx_codeb_sip_leg_t *leg, int status,
    char const *phrase)
{
    ngx_queue_t               *q;
    ngx_codeb_sip_leg_t       *other;
    ngx_codeb_sip_call_t      *call;
    ngx_codeb_sip_transfer_t  *tr;

    call = leg->call;
    tr = call->transfer;

    if (tr == NULL || tr->target) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (status == 486 || status >= 600 || tr->best == 480) {
        tr->best = status;
    }

    for (q = ngx_queue_head(&call->b);
         q != ngx_queue_sentinel(&call->b);
         q = ngx_queue_next(q))
    {
        other = ngx_queue_data(q, ngx_codeb_sip_leg_t, queue);

        if (other->transfer && other->state < NGX_CODEB_SIP_LEG_CONFIRMED) {
            return;
        }
    }

    ngx_codeb_sip_transfer_end(call, tr->best,
                               tr->best == status ? phrase : "Failed");
}


/*
 * the transfer is over with status (200: the target has the
 * transferor's place): the final NOTIFY to the transferor, BYE after it;
 * a failed transfer whose transferor left ends the call
 */
static void
ngx_codeb_sip_transfer_end(ngx_codeb_sip_call_t *call, int status,
    char const *phrase)
{
    ngx_codeb_sip_leg_t       *referrer;
    ngx_codeb_sip_transfer_t  *tr;

    tr = call->transfer;
    call->transfer = NULL;
    referrer = tr->referrer;

    if (tr->timer.timer_set) {
        ngx_del_timer(&tr->timer);
    }

    ngx_log_error(NGX_LOG_INFO, call->log, 0,
                  "codeb sip: transfer of call \"%s\": %d",
                  call->a.call_id, status);

    if (referrer->state == NGX_CODEB_SIP_LEG_CONFIRMED) {
        ngx_codeb_sip_transfer_notify(referrer, status, phrase, 1);
        referrer->bye_pending = (status == 200);
        return;
    }

    if (status != 200) {
        ngx_codeb_sip_hangup(call, referrer);
    }
}


/* NOTIFY of the REFER's subscription: "SIP/2.0 <status> <phrase>" */
static void
ngx_codeb_sip_transfer_notify(ngx_codeb_sip_leg_t *leg, int status,
    char const *phrase, ngx_uint_t final)
{
    char         *frag;
    msg_t        *msg;
    sip_t        *sip;
    su_home_t    *home;
    char const   *branch;

    branch = ngx_codeb_sip_make_id(leg->call->home, "z9hG4bK", 8);
    leg->cseq++;

    msg = branch ? ngx_codeb_sip_leg_request(leg, sip_method_notify,
                                             "NOTIFY", leg->cseq, branch)
                 : NULL;
    if (msg == NULL) {
        return;
    }

    sip = sip_object(msg);
    home = msg_home(msg);
    frag = su_sprintf(home, "SIP/2.0 %d %s\r\n", status, phrase);

    if (frag == NULL
        || sip_add_make(msg, sip, sip_event_class, "refer") < 0
        || sip_add_make(msg, sip, sip_subscription_state_class,
                        final ? "terminated;reason=noresource"
                              : "active;expires=60") < 0)
    {
        msg_destroy(msg);
        return;
    }

    if (ngx_codeb_sip_set_body(msg, "message/sipfrag;version=2.0",
                               (u_char *) frag, ngx_strlen(frag))
        != NGX_OK)
    {
        return;
    }

    (void) ngx_codeb_sip_leg_send(leg, msg, &leg->rt_request);
}


/* the transferor's answer to our final NOTIFY: BYE, its part is over */
void
ngx_codeb_sip_transfer_notified(ngx_codeb_sip_leg_t *leg)
{
    if (!leg->bye_pending) {
        return;
    }

    leg->bye_pending = 0;

    if (leg->state == NGX_CODEB_SIP_LEG_CONFIRMED) {
        ngx_codeb_sip_leg_bye(leg);
    }
}


static void
ngx_codeb_sip_transfer_timer(ngx_event_t *ev)
{
    ngx_codeb_sip_call_t  *call = ev->data;

    if (call->transfer && call->transfer->target == NULL) {
        ngx_codeb_sip_cancel_others(call, NULL);
        ngx_codeb_sip_transfer_end(call, 408, "Request Timeout");
    }

    ngx_codeb_scratch_reset();
}


void
ngx_codeb_sip_transfer_free(ngx_codeb_sip_call_t *call)
{
    if (call->transfer && call->transfer->timer.timer_set) {
        ngx_del_timer(&call->transfer->timer);
    }

    call->transfer = NULL;
}

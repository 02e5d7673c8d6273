/*
 * Requests inside an answered call, relayed to the other party (RFC 3261
 * §14, RFC 3311, RFC 6086): a re-INVITE or an UPDATE with its offer
 * rewritten by the media daemon for the other side (hold, resume, codec
 * changes), INFO with its body as it is (DTMF of hardphones); the other
 * party's final answer goes back, its SDP rewritten too.  One at a time
 * per call: another re-INVITE or UPDATE meanwhile is 491 Request Pending
 * (§14.2), another request 500 with Retry-After.  A re-INVITE without an
 * offer is 488: we do not relay delayed offers.
 */

#include "ngx_codeb_sip.h"


struct ngx_codeb_sip_relay_s {
    ngx_codeb_sip_leg_t        *from;        /* the party that asked */
    ngx_codeb_sip_leg_t        *to;          /* the other party */
    msg_t                      *req;         /* its request */
    uint32_t                    cseq;        /* of ours to the other */
    char const                 *branch;
    msg_t                      *rsp;         /* the other's 2xx with SDP,
                                                while the daemon answers */
    ngx_uint_t                  reverse;     /* the callee offered */
};


static void ngx_codeb_sip_relay_send(ngx_codeb_sip_call_t *call,
    ngx_str_t *sdp);
static void ngx_codeb_sip_relay_offer_reply(void *data,
    ngx_codeb_sip_ng_reply_t *reply);
static void ngx_codeb_sip_relay_answer_reply(void *data,
    ngx_codeb_sip_ng_reply_t *reply);
static void ngx_codeb_sip_relay_answer(ngx_codeb_sip_call_t *call,
    int status, char const *phrase, msg_t *body, ngx_str_t *sdp);


/*
 * req came on leg of an answered call (INVITE with To tag, UPDATE,
 * INFO); NGX_DECLINED: not a request we relay (the caller answers it)
 */
ngx_int_t
ngx_codeb_sip_relay_request(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_leg_t *leg, msg_t *req)
{
    sip_t                  *rq;
    ngx_str_t               sdp;
    sip_method_t            method;
    msg_t                  *rsp;
    ngx_codeb_sip_relay_t  *relay;

    rq = sip_object(req);
    method = rq->sip_request->rq_method;

    if ((method != sip_method_invite && method != sip_method_update
         && method != sip_method_info)
        || call->done || call->answered == NULL
        || call->a.state != NGX_CODEB_SIP_LEG_CONFIRMED
        || (leg != call->party[0] && leg != call->party[1]))
    {
        return NGX_DECLINED;
    }

    if (call->relay || call->transfer) {
        rsp = ngx_codeb_sip_response(req, method == sip_method_info ? 500 : 491,
                                     "Request Pending", leg->local_tag);
        if (rsp && method == sip_method_info
            && sip_add_make(rsp, sip_object(rsp), sip_retry_after_class, "1")
               < 0)
        {
            msg_destroy(rsp);
            rsp = NULL;
        }

        (void) ngx_codeb_sip_send(leg->flow, rsp);
        msg_destroy(req);
        return NGX_OK;
    }

    if (method != sip_method_info && rq->sip_payload == NULL) {
        (void) ngx_codeb_sip_reply(leg->flow, req,
                                   method == sip_method_invite ? 488 : 200,
                                   method == sip_method_invite
                                   ? "Offer Required" : "OK");
        msg_destroy(req);
        return NGX_OK;
    }

    relay = ngx_calloc(sizeof(ngx_codeb_sip_relay_t), call->log);
    if (relay == NULL) {
        (void) ngx_codeb_sip_reply(leg->flow, req, 500,
                                   "Server Internal Error");
        msg_destroy(req);
        return NGX_OK;
    }

    relay->from = leg;
    relay->to = (leg == call->party[0]) ? call->party[1] : call->party[0];
    relay->req = req;
    relay->reverse = (leg == call->party[1]);
    call->relay = relay;

    if (method == sip_method_invite) {
        (void) ngx_codeb_sip_reply(leg->flow, req, 100, "Trying");
    }

    /* a target refresh (§12.2.2) */
    if (method != sip_method_info && rq->sip_contact) {
        leg->target = url_hdup(call->home, rq->sip_contact->m_url);
    }

    if (method == sip_method_info) {
        ngx_codeb_sip_relay_send(call, NULL);
        return NGX_OK;
    }

    sdp.data = (u_char *) rq->sip_payload->pl_data;
    sdp.len = rq->sip_payload->pl_len;

    if (ngx_codeb_sip_media(call, "offer", &sdp,
                            ngx_codeb_sip_relay_offer_reply, relay->reverse)
        != NGX_OK)
    {
        ngx_codeb_sip_relay_answer(call, 503, "Media Unavailable", NULL, NULL);
    }

    return NGX_OK;
}


static void
ngx_codeb_sip_relay_offer_reply(void *data, ngx_codeb_sip_ng_reply_t *reply)
{
    ngx_codeb_sip_call_t  *call = data;

    call->ng = NULL;

    if (call->done || call->relay == NULL) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (reply == NULL || reply->result.len != 2
        || ngx_strncmp(reply->result.data, "ok", 2) != 0
        || reply->sdp.len == 0)
    {
        ngx_codeb_sip_relay_answer(call, reply ? 488 : 503,
                                   reply ? "Not Acceptable Here"
                                         : "Media Unavailable", NULL, NULL);
        return;
    }

    ngx_codeb_sip_relay_send(call, &reply->sdp);
}


/* our request to the other party: the same method, sdp or the body */
static void
ngx_codeb_sip_relay_send(ngx_codeb_sip_call_t *call, ngx_str_t *sdp)
{
    msg_t                  *msg;
    sip_t                  *rq;
    ngx_codeb_sip_leg_t    *to;
    ngx_codeb_sip_relay_t  *relay;

    relay = call->relay;
    to = relay->to;
    rq = sip_object(relay->req);

    relay->cseq = ++to->cseq;
    relay->branch = ngx_codeb_sip_make_id(call->home, "z9hG4bK", 8);

    msg = relay->branch
          ? ngx_codeb_sip_leg_request(to, rq->sip_request->rq_method,
                                      rq->sip_request->rq_method_name,
                                      relay->cseq, relay->branch)
          : NULL;

    if (msg == NULL
        || (sdp && ngx_codeb_sip_set_body(msg, "application/sdp",
                                            sdp->data, sdp->len) != NGX_OK)
        || (sdp == NULL && rq->sip_payload
            && ngx_codeb_sip_set_body(msg,
                   rq->sip_content_type ? rq->sip_content_type->c_type
                                        : "application/octet-stream",
                   (u_char *) rq->sip_payload->pl_data,
                   rq->sip_payload->pl_len) != NGX_OK)
        || ngx_codeb_sip_leg_send(to, msg, &to->rt_request) != NGX_OK)
    {
        ngx_codeb_sip_relay_answer(call, 500, "Server Internal Error", NULL,
                                   NULL);
    }
}


/*
 * rsp is the other party's answer to our relayed request; NGX_DECLINED:
 * not one (rsp is left to the caller), else rsp is taken
 */
ngx_int_t
ngx_codeb_sip_relay_response(ngx_codeb_sip_leg_t *leg, msg_t *rsp)
{
    int                     status;
    sip_t                  *rs;
    ngx_str_t               sdp;
    ngx_codeb_sip_call_t   *call;
    ngx_codeb_sip_relay_t  *relay;

    call = leg->call;
    relay = call->relay;
    rs = sip_object(rsp);

    if (relay == NULL || relay->to != leg || relay->branch == NULL
        || rs->sip_cseq->cs_seq != relay->cseq
        || rs->sip_via->v_branch == NULL
        || ngx_strcmp(rs->sip_via->v_branch, relay->branch) != 0)
    {
        return NGX_DECLINED;
    }

    status = rs->sip_status->st_status;

    if (status < 200) {
        if (rs->sip_cseq->cs_method == sip_method_invite) {
            ngx_codeb_sip_retrans_stop(&leg->rt_request);

        } else {
            ngx_codeb_sip_retrans_slow(&leg->rt_request);
        }

        msg_destroy(rsp);
        return NGX_OK;
    }

    ngx_codeb_sip_retrans_stop(&leg->rt_request);

    if (rs->sip_cseq->cs_method == sip_method_invite) {
        /* §13.2.2.4 for a 2xx (a new branch), §17.1.1.3 else */
        (void) ngx_codeb_sip_leg_send(leg,
                   ngx_codeb_sip_leg_request(leg, sip_method_ack, "ACK",
                       relay->cseq,
                       status < 300 ? ngx_codeb_sip_make_id(msg_home(rsp),
                                                            "z9hG4bK", 8)
                                    : relay->branch), NULL);
    }

    if (status < 300 && rs->sip_contact
        && rs->sip_cseq->cs_method != sip_method_info)
    {
        leg->target = url_hdup(call->home, rs->sip_contact->m_url);
    }

    if (status >= 300 || rs->sip_cseq->cs_method == sip_method_info
        || rs->sip_payload == NULL)
    {
        ngx_codeb_sip_relay_answer(call, status, rs->sip_status->st_phrase,
                                   rsp, NULL);
        msg_destroy(rsp);
        return NGX_OK;
    }

    sdp.data = (u_char *) rs->sip_payload->pl_data;
    sdp.len = rs->sip_payload->pl_len;
    relay->rsp = rsp;

    if (ngx_codeb_sip_media(call, "answer", &sdp,
                            ngx_codeb_sip_relay_answer_reply, relay->reverse)
        != NGX_OK)
    {
        relay->rsp = NULL;
        ngx_codeb_sip_relay_answer(call, 503, "Media Unavailable", NULL, NULL);
        msg_destroy(rsp);
    }

    return NGX_OK;
}


static void
ngx_codeb_sip_relay_answer_reply(void *data, ngx_codeb_sip_ng_reply_t *reply)
{
    msg_t                  *rsp;
    ngx_codeb_sip_call_t   *call = data;
    ngx_codeb_sip_relay_t  *relay;

    call->ng = NULL;
    relay = call->relay;

    if (call->done || relay == NULL) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    rsp = relay->rsp;
    relay->rsp = NULL;

    if (reply == NULL || reply->result.len != 2
        || ngx_strncmp(reply->result.data, "ok", 2) != 0)
    {
        ngx_codeb_sip_relay_answer(call, 503, "Media Unavailable", NULL, NULL);

    } else {
        ngx_codeb_sip_relay_answer(call, sip_object(rsp)->sip_status->st_status,
                                   sip_object(rsp)->sip_status->st_phrase,
                                   NULL, &reply->sdp);
    }

    msg_destroy(rsp);
}


/*
 * the final answer to the party that asked: status, with sdp (a 2xx of a
 * re-INVITE or UPDATE) or the body of the other's answer (INFO); an
 * answer to an INVITE is sent again over UDP until its ACK; the relay
 * is over
 */
static void
ngx_codeb_sip_relay_answer(ngx_codeb_sip_call_t *call, int status,
    char const *phrase, msg_t *body, ngx_str_t *sdp)
{
    sip_t                  *bs;
    msg_t                  *rsp;
    ngx_codeb_sip_leg_t    *from;
    ngx_codeb_sip_relay_t  *relay;

    relay = call->relay;
    from = relay->from;
    call->relay = NULL;

    rsp = ngx_codeb_sip_response(relay->req, status, phrase, from->local_tag);
    bs = body ? sip_object(body) : NULL;

    if (rsp && status < 300
        && sip_object(relay->req)->sip_request->rq_method
           != sip_method_info
        && sip_add_make(rsp, sip_object(rsp), sip_contact_class,
                        ngx_codeb_sip_contact(from->flow, msg_home(rsp)))
           < 0)
    {
        msg_destroy(rsp);
        rsp = NULL;
    }

    if (rsp && sdp
        && ngx_codeb_sip_set_body(rsp, "application/sdp", sdp->data,
                                    sdp->len) != NGX_OK)
    {
        rsp = NULL;
    }

    if (rsp && bs && bs->sip_payload && bs->sip_content_type
        && ngx_codeb_sip_set_body(rsp, bs->sip_content_type->c_type,
                                    (u_char *) bs->sip_payload->pl_data,
                                    bs->sip_payload->pl_len) != NGX_OK)
    {
        rsp = NULL;
    }

    if (sip_object(relay->req)->sip_request->rq_method == sip_method_invite) {
        (void) ngx_codeb_sip_send_kept(from->flow, rsp, &from->rt_invite, 1);

    } else {
        (void) ngx_codeb_sip_send(from->flow, rsp);
    }

    ngx_codeb_sip_relay_free(call, relay);
}


/* the other party did not answer our relayed request: 408 to the asker */
ngx_int_t
ngx_codeb_sip_relay_timeout(ngx_codeb_sip_leg_t *leg)
{
    ngx_codeb_sip_call_t  *call;

    call = leg->call;

    if (call->relay == NULL || call->relay->to != leg) {
        return NGX_DECLINED;
    }

    ngx_codeb_sip_relay_answer(call, 408, "Request Timeout", NULL, NULL);

    return NGX_OK;
}


void
ngx_codeb_sip_relay_free(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_relay_t *relay)
{
    if (call->relay == relay) {
        call->relay = NULL;
    }

    if (relay->rsp) {
        msg_destroy(relay->rsp);
    }

    msg_destroy(relay->req);
    ngx_free(relay);
}

/*
 * The callee legs of a call (RFC 3261 §12-§15): our requests, the INVITEs
 * to the callee's bindings or to the trunk, their answers, CANCEL of the
 * others when one answers, ACK, and the 200 to the caller once the media
 * daemon has the callee's answer.  How calls end: ngx_codeb_sip_dialog.c.
 */

#include "ngx_codeb_sip.h"


static ngx_int_t ngx_codeb_sip_leg_challenged(ngx_codeb_sip_leg_t *leg,
    msg_t *rsp);
static void ngx_codeb_sip_answer_reply(void *data,
    ngx_codeb_sip_ng_reply_t *reply);
static void ngx_codeb_sip_leg_answered(ngx_codeb_sip_leg_t *leg, msg_t *rsp);
static void ngx_codeb_sip_leg_failed(ngx_codeb_sip_leg_t *leg, msg_t *rsp);
static ngx_int_t ngx_codeb_sip_rank(int status);


/* ---- requests of ours ---- */

/* our Contact on flow: "<sip:codeb@<host>;transport=<t>>" */
char *
ngx_codeb_sip_contact(ngx_codeb_sip_flow_t *flow, su_home_t *home)
{
    char const  *host;
    static char *names[] = { "udp", "tcp", "tls", "ws", "wss" };

    host = ngx_codeb_sip_flow_host(flow);
    if (host == NULL) {
        return NULL;
    }

    return su_sprintf(home, "<sip:codeb@%s;transport=%s>", host,
                      names[flow->transport]);
}


msg_t *
ngx_codeb_sip_leg_request(ngx_codeb_sip_leg_t *leg, sip_method_t method,
    char const *name, uint32_t cseq, char const *branch)
{
    char          *via, *contact;
    msg_t         *msg;
    sip_t         *sip;
    su_home_t     *home;
    char const    *host;

    if (leg->target == NULL) {
        return NULL;
    }

    host = ngx_codeb_sip_flow_host(leg->flow);
    if (host == NULL) {
        return NULL;
    }

    msg = msg_create(sip_default_mclass(), 0);
    if (msg == NULL) {
        return NULL;
    }

    sip = sip_object(msg);
    home = msg_home(msg);

    /* our sent-by: where the party reaches us (rport: RFC 3581) */

    via = su_sprintf(home, "SIP/2.0/%s %s;branch=%s%s",
                     ngx_codeb_sip_transport_name(leg->flow->transport),
                     host, branch,
                     /* a worker that shuts down sends from a port of
                        its own: the answer comes to the listener */
                     leg->flow->transport == NGX_CODEB_SIP_UDP && !ngx_exiting
                     ? ";rport" : "");
    contact = (method == sip_method_invite || method == sip_method_update)
              ? ngx_codeb_sip_contact(leg->flow, home) : NULL;

    if (msg_header_insert(msg, (msg_pub_t *) sip, (msg_header_t *)
                          sip_request_create(home, method, name,
                                             (url_string_t *) leg->target,
                                             NULL)) < 0
        || via == NULL
        || sip_add_make(msg, sip, sip_via_class, via) < 0
        || sip_add_make(msg, sip, sip_max_forwards_class, "70") < 0
        || sip_add_make(msg, sip, sip_from_class,
                        su_sprintf(home, "%s%s<%s>;tag=%s",
                                   leg->local_display
                                   ? leg->local_display : "",
                                   leg->local_display ? " " : "",
                                   leg->local_uri, leg->local_tag)) < 0
        || sip_add_make(msg, sip, sip_to_class,
                        leg->remote_tag && method != sip_method_cancel
                        ? su_sprintf(home, "<%s>;tag=%s", leg->remote_uri,
                                     leg->remote_tag)
                        : su_sprintf(home, "<%s>", leg->remote_uri)) < 0
        || sip_add_make(msg, sip, sip_call_id_class, leg->call_id) < 0
        || sip_add_make(msg, sip, sip_cseq_class,
                        su_sprintf(home, "%u %s", cseq, name)) < 0
        || ((method == sip_method_invite || method == sip_method_update)
            && (contact == NULL
                || sip_add_make(msg, sip, sip_contact_class, contact) < 0)))
    {
        msg_destroy(msg);
        return NULL;
    }

    return msg;
}


ngx_int_t
ngx_codeb_sip_leg_send(ngx_codeb_sip_leg_t *leg, msg_t *msg,
    ngx_codeb_sip_retrans_t *rt)
{
    if (msg == NULL) {
        return NGX_ERROR;
    }

    if (rt) {
        return ngx_codeb_sip_send_kept(leg->flow, msg, rt, 1);
    }

    return ngx_codeb_sip_send(leg->flow, msg);
}


void
ngx_codeb_sip_leg_retrans_init(ngx_codeb_sip_leg_t *leg)
{
    leg->rt_invite.owner = leg;
    leg->rt_invite.timeout = ngx_codeb_sip_leg_timeout;
    leg->rt_request.owner = leg;
    leg->rt_request.timeout = ngx_codeb_sip_leg_timeout;
}


/* a message of ours got no answer in 64*T1 over UDP (timers B, F, H) */
void
ngx_codeb_sip_leg_timeout(ngx_codeb_sip_retrans_t *rt)
{
    ngx_codeb_sip_leg_t   *leg = rt->owner;
    ngx_codeb_sip_call_t  *call;

    call = leg->call;

    if (rt == &leg->rt_request) {
        if (ngx_codeb_sip_relay_timeout(leg) == NGX_OK) {
            return;
        }

        /* our BYE or CANCEL: the leg is over anyway */
        leg->state = NGX_CODEB_SIP_LEG_DONE;
        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (leg == &call->a) {
        /* no ACK of our final answer (§13.3.1.4: a 2xx ends with BYE) */
        if (call->a.state == NGX_CODEB_SIP_LEG_CONFIRMED && !call->done) {
            ngx_codeb_sip_hangup(call, NULL);
            return;
        }

        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (leg->state == NGX_CODEB_SIP_LEG_CALLING) {
        ngx_codeb_sip_leg_over(leg, 408, "Request Timeout");
    }
}


/* ---- the callees ---- */

ngx_int_t
ngx_codeb_sip_call_bindings(ngx_codeb_sip_call_t *call, redisReply *rep)
{
    size_t        i;
    ngx_str_t    *b;
    ngx_array_t  *m;

    call->bindings = su_alloc(call->home, rep->elements * sizeof(ngx_str_t));
    if (call->bindings == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < rep->elements; i++) {
        if (rep->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        b = &call->bindings[call->nbindings++];
        b->len = rep->element[i]->len;
        b->data = su_alloc(call->home, b->len);

        if (b->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(b->data, rep->element[i]->str, b->len);
    }

    /*
     * one media offer for every callee: WebRTC when a binding is a
     * browser's (those ring), else plain RTP
     */

    call->b_plain = 1;

    for (i = 0; i < call->nbindings; i++) {
        if (ngx_codeb_json_object(ngx_codeb_scratch(), call->bindings[i].data,
                                  call->bindings[i].len, &m) == NGX_OK
            && !ngx_codeb_sip_binding_plain(m))
        {
            call->b_plain = 0;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_codeb_sip_fork(ngx_codeb_sip_call_t *call, ngx_str_t *sdp)
{
    ngx_uint_t            i, n;
    ngx_codeb_sip_leg_t  *leg;

    if (call->outbound) {
        leg = ngx_codeb_sip_trunk_leg(call);
        return (leg && ngx_codeb_sip_leg_invite(leg, sdp, NULL) == NGX_OK)
               ? NGX_OK : NGX_DECLINED;
    }

    n = 0;

    for (i = 0; i < call->nbindings; i++) {
        leg = ngx_codeb_sip_leg_create(call, &call->bindings[i],
                                       call->callee, 0);

        if (leg && ngx_codeb_sip_leg_invite(leg, sdp, NULL) == NGX_OK) {
            n++;
        }
    }

    return n ? NGX_OK : NGX_DECLINED;
}


/*
 * our INVITE with the offer sdp (NULL: none, the callee offers) on leg;
 * challenge: the trunk's 401 / 407 to answer with its credentials.
 * NGX_ERROR: the leg is done
 */
ngx_int_t
ngx_codeb_sip_leg_invite(ngx_codeb_sip_leg_t *leg, ngx_str_t *sdp,
    msg_t *challenge)
{
    msg_t                  *msg;
    ngx_codeb_sip_trunk_t  *trunk;

    msg = ngx_codeb_sip_leg_request(leg, sip_method_invite, "INVITE",
                                    leg->cseq, leg->branch);
    if (msg == NULL) {
        leg->state = NGX_CODEB_SIP_LEG_DONE;
        return NGX_ERROR;
    }

    trunk = leg->call->trunk;

    if (sdp
        && ngx_codeb_sip_set_body(msg, "application/sdp", sdp->data,
                                  sdp->len) != NGX_OK)
    {
        leg->state = NGX_CODEB_SIP_LEG_DONE;
        return NGX_ERROR;
    }

    if (challenge
        && ngx_codeb_sip_digest_authorize(msg, challenge, &trunk->username,
                                          &trunk->password) != NGX_OK)
    {
        msg_destroy(msg);
        leg->state = NGX_CODEB_SIP_LEG_DONE;
        return NGX_ERROR;
    }

    if (ngx_codeb_sip_leg_send(leg, msg, &leg->rt_invite) != NGX_OK) {
        leg->state = NGX_CODEB_SIP_LEG_DONE;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * the trunk challenged our INVITE (401 / 407, already ACKed): once, the
 * INVITE again with its credentials, the next CSeq and a new branch
 * (RFC 3261 §22.2).  NGX_DECLINED: not answered, the leg fails
 */
static ngx_int_t
ngx_codeb_sip_leg_challenged(ngx_codeb_sip_leg_t *leg, msg_t *rsp)
{
    int                     status;
    ngx_str_t               sdp;
    ngx_codeb_sip_call_t   *call;

    call = leg->call;
    status = sip_object(rsp)->sip_status->st_status;

    if (!call->outbound || (status != 401 && status != 407)
        || call->trunk->username.len == 0 || leg->authorized
        || call->offer == NULL)
    {
        return NGX_DECLINED;
    }

    leg->authorized = 1;
    leg->cseq++;
    leg->branch = ngx_codeb_sip_make_id(call->home, "z9hG4bK", 8);
    leg->state = NGX_CODEB_SIP_LEG_CALLING;
    leg->remote_tag = NULL;

    if (leg->branch == NULL) {
        return NGX_DECLINED;
    }

    sdp.data = (u_char *) call->offer;
    sdp.len = call->offer_len;

    return ngx_codeb_sip_leg_invite(leg, &sdp, rsp) == NGX_OK
           ? NGX_OK : NGX_DECLINED;
}


/*
 * a callee leg of user for one binding (JSON); any_kind: whatever it
 * speaks, else only the kind of the call's offer.  NULL: not reachable
 */
ngx_codeb_sip_leg_t *
ngx_codeb_sip_leg_create(ngx_codeb_sip_call_t *call, ngx_str_t *binding,
    char const *user, ngx_uint_t any_kind)
{
    char                     *uri;
    int64_t                   expires;
    ngx_array_t              *m;
    ngx_codeb_sip_flow_t     *flow;
    ngx_codeb_sip_leg_t      *leg;
    ngx_codeb_json_member_t  *jc, *jf, *jt, *jl;

    if (ngx_codeb_json_object(ngx_codeb_scratch(), binding->data,
                              binding->len, &m) != NGX_OK
        || (jc = ngx_codeb_json_get_type(m, "contact", NGX_CODEB_JSON_STRING))
           == NULL
        || (jf = ngx_codeb_json_get_type(m, "flow", NGX_CODEB_JSON_STRING))
           == NULL
        || ngx_codeb_json_int(m, "expires", &expires) != NGX_OK
        || expires <= ngx_time())
    {
        return NULL;
    }

    if (!any_kind && ngx_codeb_sip_binding_plain(m) != call->b_plain) {
        /* the media offer was made for the other kind of phone */
        ngx_log_error(NGX_LOG_INFO, call->log, 0,
                      "codeb sip: a %s binding of \"%s\" not rung in this "
                      "call", call->b_plain ? "WebRTC" : "plain RTP",
                      call->callee);
        return NULL;
    }

    flow = ngx_codeb_sip_flow_by_token(&jf->str, call->log);
    if (flow == NULL) {
        return NULL;
    }

    jt = ngx_codeb_json_get_type(m, "transport", NGX_CODEB_JSON_STRING);
    jl = ngx_codeb_json_get_type(m, "local", NGX_CODEB_JSON_STRING);

    if (flow->remote.len && jt
        && ngx_codeb_sip_flow_describe(flow, &jt->str, jl ? &jl->str : NULL)
           != NGX_OK)
    {
        ngx_codeb_sip_flow_close(flow);
        return NULL;
    }

    uri = su_sprintf(call->home, "sip:%s@%.*s", user,
                     (int) call->sip->realm.len, call->sip->realm.data);

    leg = ngx_codeb_sip_leg_new(call, flow,
                                flow->remote.len != 0 || flow->datagram,
                                uri, (char *) jc->str.data);

    if (leg && flow->remote.len) {
        /* the callee's connection is another worker's: hear when it goes */
        ngx_codeb_sip_flow_watch(flow, leg->call_id);
    }

    return leg;
}


/* 1 when the binding (its JSON members m) speaks plain RTP, not WebRTC */
ngx_uint_t
ngx_codeb_sip_binding_plain(ngx_array_t *m)
{
    ngx_codeb_json_member_t  *jt;

    jt = ngx_codeb_json_get_type(m, "transport", NGX_CODEB_JSON_STRING);

    return jt && !(jt->str.len >= 2
                   && ngx_strncmp(jt->str.data, "WS", 2) == 0);
}


/*
 * A callee leg of call on flow, to remote_uri at target (a Contact);
 * own: the leg frees flow, else holds it.  NULL: no memory, flow let go
 */
ngx_codeb_sip_leg_t *
ngx_codeb_sip_leg_new(ngx_codeb_sip_call_t *call, ngx_codeb_sip_flow_t *flow,
    ngx_uint_t own, char const *remote_uri, char const *target)
{
    su_home_t            *home;
    ngx_codeb_sip_leg_t  *leg;

    home = call->home;

    leg = su_zalloc(home, sizeof(ngx_codeb_sip_leg_t));
    if (leg == NULL) {
        if (own) {
            ngx_codeb_sip_flow_close(flow);
        }

        return NULL;
    }

    leg->call = call;
    leg->flow = flow;
    leg->own_flow = own;
    ngx_codeb_sip_leg_retrans_init(leg);

    if (!own) {
        ngx_codeb_sip_flow_hold(flow);
    }

    leg->call_id = ngx_codeb_sip_make_id(home, "", 12);
    leg->local_tag = ngx_codeb_sip_make_id(home, "", 4);
    leg->branch = ngx_codeb_sip_make_id(home, "z9hG4bK", 8);
    leg->local_uri = call->a.remote_uri;
    leg->local_display = call->a.remote_display;
    leg->remote_uri = remote_uri;
    leg->target = target ? url_make(home, target) : NULL;
    leg->cseq = 1;

    /* in the call's list from now on: freed with it, flow included */
    ngx_queue_insert_tail(&call->b, &leg->queue);

    if (leg->call_id == NULL || leg->local_tag == NULL || leg->branch == NULL
        || leg->remote_uri == NULL || leg->target == NULL)
    {
        leg->state = NGX_CODEB_SIP_LEG_DONE;
        return NULL;
    }

    ngx_codeb_sip_leg_link(leg);

    return leg;
}


void
ngx_codeb_sip_cancel_others(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_leg_t *keep)
{
    ngx_queue_t          *q;
    ngx_codeb_sip_leg_t  *leg;

    for (q = ngx_queue_head(&call->b);
         q != ngx_queue_sentinel(&call->b);
         q = ngx_queue_next(q))
    {
        leg = ngx_queue_data(q, ngx_codeb_sip_leg_t, queue);

        if (leg == keep || leg->state >= NGX_CODEB_SIP_LEG_CONFIRMED) {
            continue;
        }

        /* §9.1: the branch and CSeq number of the INVITE cancelled */
        (void) ngx_codeb_sip_leg_send(leg,
                   ngx_codeb_sip_leg_request(leg, sip_method_cancel, "CANCEL",
                                             leg->cseq, leg->branch),
                   &leg->rt_request);
    }
}


/* the callee's SDP as the caller gets it: 200 to the caller */
static void
ngx_codeb_sip_answer_reply(void *data, ngx_codeb_sip_ng_reply_t *reply)
{
    msg_t                 *rsp;
    ngx_codeb_sip_call_t  *call = data;

    call->ng = NULL;

    if (call->done) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (reply == NULL || reply->result.len != 2
        || ngx_strncmp(reply->result.data, "ok", 2) != 0)
    {
        ngx_codeb_sip_hangup(call, NULL);
        ngx_codeb_sip_call_end(call, 503, "Media Unavailable");
        return;
    }

    rsp = ngx_codeb_sip_response(call->a.invite, 200, "OK",
                                 call->a.local_tag);
    if (rsp == NULL) {
        return;
    }

    if (sip_add_make(rsp, sip_object(rsp), sip_contact_class,
                     ngx_codeb_sip_contact(call->a.flow, msg_home(rsp))) < 0)
    {
        msg_destroy(rsp);
        return;
    }

    if (ngx_codeb_sip_set_body(rsp, "application/sdp", reply->sdp.data,
                               reply->sdp.len) != NGX_OK)
    {
        return;
    }

    call->a.state = NGX_CODEB_SIP_LEG_CONFIRMED;
    call->answer_ms = ngx_codeb_now_ms();

    if (call->timer.timer_set) {
        ngx_del_timer(&call->timer);
    }

    /* sent again over UDP until the caller's ACK (§13.3.1.4) */
    (void) ngx_codeb_sip_send_kept(call->a.flow, rsp, &call->a.rt_invite, 1);
}


/* ---- answers of the callees ---- */

void
ngx_codeb_sip_call_response(ngx_codeb_sip_flow_t *flow, msg_t *rsp)
{
    int                   status;
    sip_t                *rs;
    ngx_codeb_sip_leg_t  *leg;

    rs = sip_object(rsp);
    leg = ngx_codeb_sip_leg_find(rs->sip_call_id->i_id);
    status = rs->sip_status->st_status;

    if (leg == NULL) {
        msg_destroy(rsp);
        return;
    }

    if (ngx_codeb_sip_relay_response(leg, rsp) == NGX_OK
        || ngx_codeb_sip_transfer_response(leg, rsp) == NGX_OK)
    {
        return;
    }

    if (rs->sip_cseq->cs_method != sip_method_invite) {
        /* the answer to our BYE, CANCEL or NOTIFY */
        if (status < 200) {
            ngx_codeb_sip_retrans_slow(&leg->rt_request);

        } else {
            ngx_codeb_sip_retrans_stop(&leg->rt_request);

            if (rs->sip_cseq->cs_method == sip_method_notify) {
                ngx_codeb_sip_transfer_notified(leg);
            }
        }

        if (status >= 200 && rs->sip_cseq->cs_method == sip_method_bye) {
            leg->state = NGX_CODEB_SIP_LEG_DONE;
            ngx_codeb_sip_call_idle(leg->call);
        }

        msg_destroy(rsp);
        return;
    }

    if (leg == &leg->call->a) {
        /* we send the caller no INVITE */
        msg_destroy(rsp);
        return;
    }

    /* any answer ends timer A (§17.1.1.2) */
    ngx_codeb_sip_retrans_stop(&leg->rt_invite);

    if (leg->call->origin) {
        ngx_codeb_sip_originate_progress(leg->call, status);
    }

    if (status < 200) {
        if (status > 100 && rs->sip_to->a_tag
            && leg->state == NGX_CODEB_SIP_LEG_CALLING)
        {
            leg->remote_tag = su_strdup(leg->call->home, rs->sip_to->a_tag);
            leg->state = NGX_CODEB_SIP_LEG_EARLY;
        }

    } else if (status < 300) {
        ngx_codeb_sip_leg_answered(leg, rsp);

    } else {
        ngx_codeb_sip_leg_failed(leg, rsp);
    }

    msg_destroy(rsp);
}


/* a 2xx: the first one wins the call, a later one is ended */
static void
ngx_codeb_sip_leg_answered(ngx_codeb_sip_leg_t *leg, msg_t *rsp)
{
    sip_t                 *rs;
    ngx_str_t              sdp;
    ngx_codeb_sip_call_t  *call;

    rs = sip_object(rsp);
    call = leg->call;

    if (leg->state == NGX_CODEB_SIP_LEG_CONFIRMED) {
        /* a retransmitted 2xx: ACK again (§13.2.2.4) */
        if (leg->transfer) {
            ngx_codeb_sip_transfer_ack_again(leg);

        } else {
            ngx_codeb_sip_leg_ack(leg, rsp);
        }

        return;
    }

    leg->remote_tag = su_strdup(call->home, rs->sip_to->a_tag);
    leg->state = NGX_CODEB_SIP_LEG_CONFIRMED;

    if (rs->sip_contact) {
        leg->target = url_hdup(call->home, rs->sip_contact->m_url);
    }

    if (leg->transfer) {
        /* its ACK carries our answer to its offer (RFC 3725) */
        ngx_codeb_sip_transfer_answered(leg, rsp);
        return;
    }

    ngx_codeb_sip_leg_ack(leg, rsp);

    if (call->answered || call->done || rs->sip_payload == NULL) {
        /* too late, or no answer to the offer: this leg ends */
        ngx_codeb_sip_leg_bye(leg);
        return;
    }

    call->answered = leg;
    call->party[1] = leg;
    ngx_codeb_sip_cancel_others(call, leg);

    sdp.data = (u_char *) rs->sip_payload->pl_data;
    sdp.len = rs->sip_payload->pl_len;

    if (ngx_codeb_sip_media(call, "answer", &sdp, ngx_codeb_sip_answer_reply,
                            0)
        != NGX_OK)
    {
        ngx_codeb_sip_hangup(call, NULL);
        ngx_codeb_sip_call_end(call, 503, "Media Unavailable");
    }
}


/* a final non-2xx: ACK (§17.1.1.3, part of the INVITE transaction) */
static void
ngx_codeb_sip_leg_failed(ngx_codeb_sip_leg_t *leg, msg_t *rsp)
{
    sip_t  *rs;

    rs = sip_object(rsp);

    if (rs->sip_to->a_tag) {
        leg->remote_tag = su_strdup(leg->call->home, rs->sip_to->a_tag);
    }

    (void) ngx_codeb_sip_leg_send(leg,
               ngx_codeb_sip_leg_request(leg, sip_method_ack, "ACK",
                                         leg->cseq, leg->branch), NULL);

    if (leg->state != NGX_CODEB_SIP_LEG_DONE && !leg->call->done
        && ngx_codeb_sip_leg_challenged(leg, rsp) == NGX_OK)
    {
        return;
    }

    if (leg->state != NGX_CODEB_SIP_LEG_DONE) {
        ngx_codeb_sip_leg_over(leg, rs->sip_status->st_status,
                               rs->sip_status->st_phrase);
    }
}


/* the leg failed with status; the last one ends the call */
void
ngx_codeb_sip_leg_over(ngx_codeb_sip_leg_t *leg, int status,
    char const *phrase)
{
    ngx_queue_t           *q;
    ngx_codeb_sip_call_t  *call;
    ngx_codeb_sip_leg_t   *other;

    call = leg->call;
    leg->state = NGX_CODEB_SIP_LEG_DONE;

    if (leg->transfer) {
        ngx_codeb_sip_transfer_failed(leg, status, phrase);
        return;
    }

    if (ngx_codeb_sip_rank(status) > ngx_codeb_sip_rank(call->best)) {
        call->best = status;
        call->best_phrase = su_strdup(call->home, phrase);
    }

    for (q = ngx_queue_head(&call->b);
         q != ngx_queue_sentinel(&call->b);
         q = ngx_queue_next(q))
    {
        other = ngx_queue_data(q, ngx_codeb_sip_leg_t, queue);

        if (other->state != NGX_CODEB_SIP_LEG_DONE) {
            return;
        }
    }

    if (call->answered == NULL) {
        ngx_codeb_sip_call_end(call, call->best, call->best_phrase);
        return;
    }

    ngx_codeb_sip_call_idle(call);
}


/*
 * the final answer the caller gets when no callee answered (§16.7 step
 * 6, as a proxy would choose): 6xx first, then busy, then the rest
 */
static ngx_int_t
ngx_codeb_sip_rank(int status)
{
    if (status >= 600) {
        return 5;
    }

    if (status == 486) {
        return 4;
    }

    if (status == 487) {
        return 0;
    }

    if (status == 480 || status == 408) {
        return 1;
    }

    return 3;
}


/* ACK of a 2xx: a transaction of its own, with a new branch (§13.2.2.4) */
void
ngx_codeb_sip_leg_ack(ngx_codeb_sip_leg_t *leg, msg_t *rsp)
{
    (void) ngx_codeb_sip_leg_send(leg,
               ngx_codeb_sip_leg_request(leg, sip_method_ack, "ACK",
                                         leg->cseq,
                                         ngx_codeb_sip_make_id(
                                             msg_home(rsp), "z9hG4bK", 8)),
               NULL);
}


/*
 * BYE on a confirmed leg, sent again over UDP until answered; a caller's
 * answer to it is not awaited (its leg is done at once)
 */
void
ngx_codeb_sip_leg_bye(ngx_codeb_sip_leg_t *leg)
{
    if (leg == NULL || leg->state != NGX_CODEB_SIP_LEG_CONFIRMED) {
        return;
    }

    leg->cseq++;
    (void) ngx_codeb_sip_leg_send(leg,
               ngx_codeb_sip_leg_request(leg, sip_method_bye, "BYE",
                                         leg->cseq,
                                         ngx_codeb_sip_make_id(leg->call->home,
                                                               "z9hG4bK", 8)),
               &leg->rt_request);

    if (leg == &leg->call->a) {
        leg->state = NGX_CODEB_SIP_LEG_DONE;
    }
}

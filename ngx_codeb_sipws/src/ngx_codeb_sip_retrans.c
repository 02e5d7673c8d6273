/*
 * Retransmissions over UDP (RFC 3261 §17): a request of ours is sent again
 * after T1, 2*T1, 4*T1, ... (INVITE: timer A; others: timer E, at most T2
 * apart) until an answer comes, and a final answer of ours to an INVITE is
 * sent again the same way until its ACK (timer G; for a 2xx §13.3.1.4).
 * After 64*T1 the owner hears of the timeout (timers B, F, H).  The last
 * message is kept, so that a retransmitted request is answered again with
 * it.  Reliable transports send once and arm nothing.
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_SIP_T1          500      /* ms, RFC 3261 §17.1.1.1 */
#define NGX_CODEB_SIP_T2          4000     /* ms */


static void ngx_codeb_sip_retrans_timer(ngx_event_t *ev);


/*
 * Sends msg on flow (ngx_codeb_sip_send()) and keeps its bytes in rt; arm:
 * retransmit it over UDP until ngx_codeb_sip_retrans_stop() or the
 * timeout, when rt->timeout(rt) is called
 */
ngx_int_t
ngx_codeb_sip_send_kept(ngx_codeb_sip_flow_t *flow, msg_t *msg,
    ngx_codeb_sip_retrans_t *rt, ngx_uint_t arm)
{
    ngx_str_t  text;

    if (ngx_codeb_sip_serialize(msg, &text) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_codeb_sip_retrans_free(rt);

    rt->data = ngx_alloc(text.len, ngx_cycle->log);
    if (rt->data == NULL) {
        msg_destroy(msg);
        return NGX_ERROR;
    }

    ngx_memcpy(rt->data, text.data, text.len);
    rt->len = text.len;
    rt->flow = flow;
    rt->invite = (sip_object(msg)->sip_cseq->cs_method == sip_method_invite);
    rt->answer = (sip_object(msg)->sip_status != NULL);

    msg_destroy(msg);

    if (arm && flow->transport == NGX_CODEB_SIP_UDP) {
        rt->interval = NGX_CODEB_SIP_T1;
        rt->elapsed = 0;
        rt->timer.handler = ngx_codeb_sip_retrans_timer;
        rt->timer.data = rt;
        rt->timer.log = ngx_cycle->log;
        rt->timer.cancelable = 1;
        ngx_add_timer(&rt->timer, rt->interval);
    }

    return ngx_codeb_sip_flow_send(flow, rt->data, rt->len);
}


static void
ngx_codeb_sip_retrans_timer(ngx_event_t *ev)
{
    ngx_codeb_sip_retrans_t  *rt = ev->data;

    rt->elapsed += rt->interval;

    if (rt->elapsed >= 64 * NGX_CODEB_SIP_T1) {
        if (rt->timeout) {
            rt->timeout(rt);
        }

        ngx_codeb_scratch_reset();
        return;
    }

    (void) ngx_codeb_sip_flow_send(rt->flow, rt->data, rt->len);

    rt->interval *= 2;

    if (!rt->invite || rt->answer) {
        rt->interval = ngx_min(rt->interval, NGX_CODEB_SIP_T2);
    }

    ngx_add_timer(&rt->timer, ngx_min(rt->interval,
                                      64 * NGX_CODEB_SIP_T1 - rt->elapsed));
}


/*
 * A provisional answer to a non-INVITE request: it is sent again every T2
 * until the final one (§17.1.2.2)
 */
void
ngx_codeb_sip_retrans_slow(ngx_codeb_sip_retrans_t *rt)
{
    if (rt->timer.timer_set && !rt->invite) {
        rt->interval = NGX_CODEB_SIP_T2;
    }
}


/* no more retransmissions; the message stays kept */
void
ngx_codeb_sip_retrans_stop(ngx_codeb_sip_retrans_t *rt)
{
    if (rt->timer.timer_set) {
        ngx_del_timer(&rt->timer);
    }
}


/* the kept message once more (the peer retransmitted its request) */
void
ngx_codeb_sip_retrans_again(ngx_codeb_sip_retrans_t *rt)
{
    if (rt->data) {
        (void) ngx_codeb_sip_flow_send(rt->flow, rt->data, rt->len);
    }
}


void
ngx_codeb_sip_retrans_free(ngx_codeb_sip_retrans_t *rt)
{
    ngx_codeb_sip_retrans_stop(rt);

    if (rt->data) {
        ngx_free(rt->data);
        rt->data = NULL;
        rt->len = 0;
    }
}

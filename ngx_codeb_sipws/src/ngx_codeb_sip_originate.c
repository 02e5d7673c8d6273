/*
 * Calls placed by the platform (docs/sip.md "Calls placed by the
 * platform"; ngx_codeb_originate_t in ngx_codeb_core.h).  A local caller
 * -- the media daemon's player -- sends an INVITE to the number, and the
 * call runs through the back-to-back user agent like a phone's: a line
 * of the trunk, the daemon's offer, our INVITE to the trunk (answering
 * its challenge).  The local caller is a flow inside this worker
 * (flow->deliver): what the agent sends it -- the 200, a final failure,
 * the trunk's BYE -- comes here.  Answered, the daemon plays the
 * tenant's greeting to the trunk ("play media") and we hang up once it
 * has played, or at max_talk.  Events reach the owner from a posted
 * event, never from within the agent's functions.
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_SIP_ORIGIN_HOST   "originate.invalid"
#define NGX_CODEB_SIP_ORIGIN_TAIL   400      /* ms after the greeting's
                                                end before the BYE */


static ngx_str_t  ngx_codeb_sip_origin_no_reply =
    ngx_string("no answer from the media daemon");


struct ngx_codeb_sip_origin_s {
    ngx_codeb_originate_t      *o;
    ngx_codeb_sip_call_t       *call;        /* NULL once over */
    ngx_codeb_sip_ng_t         *play;        /* "play media" under way */
    ngx_event_t                 timer;       /* the greeting's end, or
                                                max_talk */
    ngx_event_t                 post;        /* delivers the events */
    char                       *outcome;     /* decided here, or NULL */
    char                       *timer_outcome;
    u_char                      reason[64];
    unsigned                    progress:1;  /* PROGRESS due / given */
    unsigned                    progress_sent:1;
    unsigned                    answered:1;
    unsigned                    answered_sent:1;
    unsigned                    over:1;
};


static ngx_int_t ngx_codeb_sip_originate_start(ngx_codeb_originate_t *o);
static void ngx_codeb_sip_originate_stop(ngx_codeb_originate_t *o);
static msg_t *ngx_codeb_sip_originate_invite(ngx_codeb_sip_flow_t *flow,
    ngx_codeb_originate_t *o, char const *number,
    ngx_codeb_sip_trunk_t *trunk);
static ngx_int_t ngx_codeb_sip_originate_deliver(ngx_codeb_sip_flow_t *flow,
    u_char *data, size_t len);
static void ngx_codeb_sip_originate_play(ngx_codeb_sip_origin_t *og);
static void ngx_codeb_sip_originate_played(void *data,
    ngx_codeb_sip_ng_reply_t *reply);
static void ngx_codeb_sip_originate_timer(ngx_event_t *ev);
static void ngx_codeb_sip_originate_post(ngx_event_t *ev);
static void ngx_codeb_sip_originate_reason(ngx_codeb_sip_origin_t *og,
    char const *text);


void
ngx_codeb_sip_originate_init_process(void)
{
    ngx_codeb_originate_start = ngx_codeb_sip_originate_start;
    ngx_codeb_originate_stop = ngx_codeb_sip_originate_stop;
}


static ngx_int_t
ngx_codeb_sip_originate_start(ngx_codeb_originate_t *o)
{
    u_char                     number[33];
    msg_t                     *req;
    ngx_uint_t                 i;
    ngx_codeb_sip_flow_t      *flow;
    ngx_codeb_sip_call_t      *call;
    ngx_codeb_sip_trunk_t     *trunk;
    ngx_codeb_sip_origin_t    *og;
    ngx_codeb_sip_srv_conf_t  *sip;

    if (o->number.len < 2 || o->number.len >= sizeof(number)) {
        return NGX_DECLINED;
    }

    for (i = 0; i < o->number.len; i++) {
        if (!(o->number.data[i] >= '0' && o->number.data[i] <= '9')
            && !(i == 0 && o->number.data[i] == '+'))
        {
            return NGX_DECLINED;
        }
    }

    ngx_cpystrn(number, o->number.data, o->number.len + 1);

    sip = ngx_codeb_sip_tenant_by_host(&o->tenant);
    trunk = sip ? ngx_codeb_sip_trunk_for(sip, (char *) number) : NULL;

    if (trunk == NULL || trunk->flow == NULL) {
        return NGX_DECLINED;
    }

    og = ngx_calloc(sizeof(ngx_codeb_sip_origin_t), ngx_cycle->log);
    flow = ngx_codeb_sip_flow_create(NGX_CODEB_SIP_TCP, ngx_cycle->log);

    if (og == NULL || flow == NULL) {
        goto failed;
    }

    flow->sip = sip;
    flow->deliver = ngx_codeb_sip_originate_deliver;
    flow->deliver_data = og;
    flow->local.data = ngx_alloc(sizeof(NGX_CODEB_SIP_ORIGIN_HOST),
                                 ngx_cycle->log);
    if (flow->local.data == NULL) {
        goto failed;
    }

    ngx_memcpy(flow->local.data, NGX_CODEB_SIP_ORIGIN_HOST,
               sizeof(NGX_CODEB_SIP_ORIGIN_HOST));
    flow->local.len = sizeof(NGX_CODEB_SIP_ORIGIN_HOST) - 1;

    req = ngx_codeb_sip_originate_invite(flow, o, (char *) number, trunk);
    if (req == NULL) {
        goto failed;
    }

    call = ngx_codeb_sip_call_create(flow, req, sip, (char *) number, 0);
    if (call == NULL) {
        msg_destroy(req);
        goto failed;
    }

    /* the call's caller leg owns the flow: it is closed with the call */
    (void) ngx_codeb_sip_flow_release(flow);
    call->a.own_flow = 1;

    og->o = o;
    og->call = call;
    og->post.handler = ngx_codeb_sip_originate_post;
    og->post.data = og;
    og->post.log = ngx_cycle->log;
    og->timer.handler = ngx_codeb_sip_originate_timer;
    og->timer.data = og;
    og->timer.log = ngx_cycle->log;
    og->timer.cancelable = 1;

    o->call = call;
    o->trunk = trunk->name;
    o->invite_ms = ngx_codeb_now_ms();
    o->status = 0;
    o->reason = "";
    o->answer_ms = 0;

    call->origin = og;
    call->trunk = trunk;
    call->outbound = 1;
    call->b_plain = 1;

    ngx_log_error(NGX_LOG_INFO, call->log, 0,
                  "codeb sip: call placed by the platform through trunk "
                  "\"%V\"", &trunk->name);

    ngx_codeb_sip_call_out(call);

    return NGX_OK;

failed:

    if (flow) {
        ngx_codeb_sip_flow_close(flow);
    }

    if (og) {
        ngx_free(og);
    }

    return NGX_ERROR;
}


/*
 * The local caller's INVITE, as if received on flow: From the trunk's
 * user (or "codeb") with o->display, an offer of G.711 from the daemon's
 * player, which only sends (port 9, discard: what the trunk sends goes
 * nowhere until a bridge takes it)
 */
static msg_t *
ngx_codeb_sip_originate_invite(ngx_codeb_sip_flow_t *flow,
    ngx_codeb_originate_t *o, char const *number,
    ngx_codeb_sip_trunk_t *trunk)
{
    u_char      text[2048], sdp[512], id[24], tag[16], branch[16], *p, *s;
    msg_t      *msg;
    ngx_str_t   user, display;
    ngx_uint_t  i;

    if (ngx_codeb_random_hex(id, 12) != NGX_OK
        || ngx_codeb_random_hex(tag, 8) != NGX_OK
        || ngx_codeb_random_hex(branch, 8) != NGX_OK)
    {
        return NULL;
    }

    if (trunk->username.len) {
        user = trunk->username;

    } else {
        ngx_str_set(&user, "codeb");
    }

    /* a display name with a quote, a backslash or a control: none */
    display = o->display;

    for (i = 0; i < display.len && display.len <= 64; i++) {
        if (display.data[i] < 0x20 || display.data[i] == 0x7f
            || display.data[i] == '"' || display.data[i] == '\\')
        {
            break;
        }
    }

    if (i != display.len || display.len > 64) {
        display.len = 0;
    }

    s = ngx_snprintf(sdp, sizeof(sdp),
                     "v=0\r\n"
                     "o=- %*s 1 IN IP4 127.0.0.1\r\n"
                     "s=-\r\n"
                     "c=IN IP4 127.0.0.1\r\n"
                     "t=0 0\r\n"
                     "m=audio 9 RTP/AVP 8 0\r\n"
                     "a=rtpmap:8 PCMA/8000\r\n"
                     "a=rtpmap:0 PCMU/8000\r\n"
                     "a=sendrecv\r\n", (size_t) 8, id);

    p = ngx_snprintf(text, sizeof(text),
                     "INVITE sip:%s@%V SIP/2.0\r\n"
                     "Via: SIP/2.0/TCP " NGX_CODEB_SIP_ORIGIN_HOST
                     ";branch=z9hG4bK%*s\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: \"%V\" <sip:%V@" NGX_CODEB_SIP_ORIGIN_HOST
                     ">;tag=%*s\r\n"
                     "To: <sip:%s@%V>\r\n"
                     "Call-ID: %*s@" NGX_CODEB_SIP_ORIGIN_HOST "\r\n"
                     "CSeq: 1 INVITE\r\n"
                     "Contact: <sip:%V@" NGX_CODEB_SIP_ORIGIN_HOST
                     ";transport=tcp>\r\n"
                     "Content-Type: application/sdp\r\n"
                     "Content-Length: %uz\r\n\r\n%*s",
                     number, &trunk->domain, (size_t) 16, branch, &display,
                     &user, (size_t) 16, tag, number, &trunk->domain,
                     (size_t) 24, id, &user, (size_t) (s - sdp),
                     (size_t) (s - sdp), sdp);

    if (p == text + sizeof(text)) {
        return NULL;
    }

    if (ngx_codeb_sip_parse(flow, text, p - text, &msg) != NGX_OK) {
        return NULL;
    }

    return msg;
}


/* what the agent sends the local caller */
static ngx_int_t
ngx_codeb_sip_originate_deliver(ngx_codeb_sip_flow_t *flow, u_char *data,
    size_t len)
{
    int                      status;
    sip_t                   *sip;
    msg_t                   *msg;
    ngx_codeb_originate_t   *o;
    ngx_codeb_sip_origin_t  *og;

    og = flow->deliver_data;

    if (og == NULL || og->call == NULL
        || ngx_codeb_sip_parse(flow, data, len, &msg) != NGX_OK)
    {
        return NGX_OK;
    }

    o = og->o;
    sip = sip_object(msg);

    if (sip->sip_request) {
        if (sip->sip_request->rq_method == sip_method_bye
            && og->outcome == NULL)
        {
            /* the trunk hung up (its BYE is ours to answer: done) */
            og->outcome = "far-hangup";
        }

    } else if (sip->sip_cseq->cs_method == sip_method_invite) {
        status = sip->sip_status->st_status;

        if (status >= 200 && status < 300 && !og->answered) {
            og->answered = 1;
            o->status = status;
            o->answer_ms = ngx_codeb_now_ms();
            ngx_codeb_sip_originate_reason(og, "");

            og->timer_outcome = "max-duration";
            ngx_add_timer(&og->timer, o->max_talk);

            ngx_codeb_sip_originate_play(og);
            ngx_post_event(&og->post, &ngx_posted_events);

        } else if (status >= 300) {
            o->status = status;
            ngx_codeb_sip_originate_reason(og, sip->sip_status->st_phrase);
        }
    }

    msg_destroy(msg);

    return NGX_OK;
}


/* the greeting to the trunk's side (the NG to-tag towards our caller) */
static void
ngx_codeb_sip_originate_play(ngx_codeb_sip_origin_t *og)
{
    u_char                 buf[4096 + 512];
    ngx_codeb_benc_t       b;
    ngx_codeb_sip_call_t  *call;

    call = og->call;

    if (og->o->greeting.len == 0 || og->o->greeting.len > 4096) {
        ngx_codeb_sip_originate_reason(og, "no greeting to play");
        og->timer_outcome = "finished";
        ngx_add_timer(&og->timer, 1);
        return;
    }

    ngx_codeb_benc_init(&b, buf, sizeof(buf));
    ngx_codeb_benc_open(&b, 'd');
    ngx_codeb_benc_cstr(&b, "command");
    ngx_codeb_benc_cstr(&b, "play media");
    ngx_codeb_benc_cstr(&b, "call-id");
    ngx_codeb_benc_cstr(&b, (char *) call->a.call_id);
    ngx_codeb_benc_cstr(&b, "from-tag");
    ngx_codeb_benc_cstr(&b, (char *) call->a.local_tag);
    ngx_codeb_benc_cstr(&b, "file");
    ngx_codeb_benc_str(&b, og->o->greeting.data, og->o->greeting.len);
    ngx_codeb_benc_close(&b);

    og->play = ngx_codeb_sip_ng_request(&b, ngx_codeb_sip_originate_played,
                                        og, call->log);

    if (og->play == NULL) {
        ngx_codeb_sip_originate_reason(og, "the media daemon is "
                                           "unreachable");
        og->timer_outcome = "finished";
        ngx_add_timer(&og->timer, 1);
    }
}


/* played: the BYE once it has been heard (or at max_talk, if sooner) */
static void
ngx_codeb_sip_originate_played(void *data, ngx_codeb_sip_ng_reply_t *reply)
{
    ngx_msec_t               left, talked;
    ngx_codeb_sip_origin_t  *og = data;

    og->play = NULL;

    if (og->call == NULL || og->call->done) {
        return;
    }

    if (reply == NULL || reply->result.len != 2
        || ngx_strncmp(reply->result.data, "ok", 2) != 0
        || reply->duration < 0)
    {
        ngx_log_error(NGX_LOG_ERR, og->call->log, 0,
                      "codeb sip: the greeting was not played: %V",
                      reply ? &reply->error
                            : &ngx_codeb_sip_origin_no_reply);
        ngx_codeb_sip_originate_reason(og, "the greeting was not played");
        left = 1;

    } else {
        left = (ngx_msec_t) reply->duration + NGX_CODEB_SIP_ORIGIN_TAIL;
    }

    talked = (ngx_msec_t) (ngx_codeb_now_ms() - og->o->answer_ms);

    if (talked + left < og->o->max_talk) {
        og->timer_outcome = "finished";
        ngx_add_timer(&og->timer, left);
    }
}


/* the greeting has played, or max_talk: we hang up */
static void
ngx_codeb_sip_originate_timer(ngx_event_t *ev)
{
    ngx_codeb_sip_origin_t  *og = ev->data;

    if (og->call == NULL || og->call->done) {
        return;
    }

    if (og->outcome == NULL) {
        og->outcome = og->timer_outcome;
    }

    ngx_codeb_sip_hangup(og->call, &og->call->a);
}


static void
ngx_codeb_sip_originate_stop(ngx_codeb_originate_t *o)
{
    ngx_codeb_sip_call_t    *call;
    ngx_codeb_sip_origin_t  *og;

    call = o->call;

    if (call == NULL || call->done || call->origin == NULL) {
        return;
    }

    og = call->origin;

    if (og->outcome == NULL) {
        og->outcome = "cancelled";
    }

    if (!og->answered) {
        /* as a CANCEL from the caller: the trunk's INVITE is cancelled */
        ngx_codeb_sip_call_end(call, 487, "Request Terminated");
        return;
    }

    ngx_codeb_sip_hangup(call, &call->a);
}


void
ngx_codeb_sip_originate_progress(ngx_codeb_sip_call_t *call, int status)
{
    ngx_codeb_sip_origin_t  *og;

    og = call->origin;

    if (!og->progress) {
        og->progress = 1;
        og->o->status = status;
        ngx_post_event(&og->post, &ngx_posted_events);
    }
}


void
ngx_codeb_sip_originate_over(ngx_codeb_sip_call_t *call)
{
    ngx_codeb_originate_t   *o;
    ngx_codeb_sip_origin_t  *og;

    og = call->origin;
    o = og->o;

    call->origin = NULL;
    call->a.flow->deliver_data = NULL;
    og->call = NULL;
    og->over = 1;
    o->call = NULL;
    o->end_ms = ngx_codeb_now_ms();

    if (og->play) {
        ngx_codeb_sip_ng_cancel(og->play);
        og->play = NULL;
    }

    if (og->timer.timer_set) {
        ngx_del_timer(&og->timer);
    }

    if (og->outcome) {
        o->outcome = og->outcome;

    } else {
        o->outcome = og->answered ? "far-hangup" : "no-answer";
    }

    if (!og->answered && o->status < 300) {
        /* no final answer came from the trunk: ours to the caller */
        o->status = call->status ? call->status : 408;
        ngx_codeb_sip_originate_reason(og, call->best_phrase);

        if (!og->progress) {
            ngx_codeb_sip_originate_reason(og, "the trunk did not answer");
        }
    }

    ngx_post_event(&og->post, &ngx_posted_events);
}


/* the events due, in their order; after ENDED og is freed */
static void
ngx_codeb_sip_originate_post(ngx_event_t *ev)
{
    ngx_codeb_originate_t   *o;
    ngx_codeb_sip_origin_t  *og = ev->data;

    o = og->o;
    o->reason = (char *) og->reason;

    if (og->progress && !og->progress_sent) {
        og->progress_sent = 1;
        o->handler(o, NGX_CODEB_ORIGINATE_PROGRESS);
    }

    if (og->answered && !og->answered_sent) {
        og->answered_sent = 1;
        o->handler(o, NGX_CODEB_ORIGINATE_ANSWERED);
    }

    if (og->over) {
        o->handler(o, NGX_CODEB_ORIGINATE_ENDED);
        ngx_free(og);
    }
}


static void
ngx_codeb_sip_originate_reason(ngx_codeb_sip_origin_t *og, char const *text)
{
    (void) ngx_cpystrn(og->reason, (u_char *) (text ? text : ""),
                       sizeof(og->reason));
}

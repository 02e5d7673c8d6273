/*
 * Calls (docs/sip.md "Calls"): we are a back-to-back user agent.  The
 * caller's INVITE is answered 100 and, once authenticated, 180 at once;
 * the callee's bindings are looked up, the media goes through the NG
 * daemon (the caller's SDP offered, the callee's answered), and every
 * binding gets an INVITE of its own (ngx_codeb_sip_leg.c).  The final 200
 * to the caller waits for a callee's answer (RFC 3261 §13.3.1.4).
 *
 * A call lives in the worker that took its INVITE; its legs are found by
 * their Call-IDs (ours carry the worker's token, ngx_codeb_sip_route.c).
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_SIP_RING_TIME   60000    /* ms without an answer: 480 */


/* a trunk's INVITE while the inbound routes are asked */
typedef struct {
    ngx_codeb_sip_flow_t       *flow;        /* held */
    msg_t                      *req;
    ngx_codeb_sip_trunk_t      *trunk;
    ngx_uint_t                  sibling;
} ngx_codeb_sip_route_ctx_t;


static void ngx_codeb_sip_invite_auth(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_codeb_sip_user_t *user);
static void ngx_codeb_sip_invite_trunk(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_codeb_sip_trunk_t *trunk, ngx_uint_t sibling);
static void ngx_codeb_sip_routed(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_sip_admit(ngx_codeb_sip_call_t *call);
static void ngx_codeb_sip_admitted(ngx_codeb_sip_call_t *call, ngx_int_t rc);
static void ngx_codeb_sip_ringback(ngx_codeb_sip_call_t *call);
static void ngx_codeb_sip_call_ring(ngx_codeb_sip_call_t *call);
static void ngx_codeb_sip_call_offer(ngx_codeb_sip_call_t *call);
static void ngx_codeb_sip_bindings_reply(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_codeb_sip_offer_reply(void *data,
    ngx_codeb_sip_ng_reply_t *reply);
static void ngx_codeb_sip_call_timer(ngx_event_t *ev);
static void ngx_codeb_sip_keep(ngx_event_t *ev);
static char *ngx_codeb_sip_sibling_key(msg_t *req, ngx_pool_t *pool);


static ngx_rbtree_t       ngx_codeb_sip_legs;
static ngx_rbtree_node_t  ngx_codeb_sip_legs_sentinel;

/*
 * the calls of this worker not over; while there are some, a timer that is not
 * cancelable keeps a worker that shuts down (nginx -s reload, quit) alive
 * until they end, as open connections do, at most worker_shutdown_timeout
 * (else 4 h)
 */
static ngx_uint_t         ngx_codeb_sip_ncalls;
static ngx_event_t        ngx_codeb_sip_keeper;
static ngx_msec_t         ngx_codeb_sip_exiting_since;

#define NGX_CODEB_SIP_KEEPER      10000       /* ms */
#define NGX_CODEB_SIP_KEEP_MAX    14400000    /* ms */


void
ngx_codeb_sip_call_init_process(void)
{
    ngx_rbtree_init(&ngx_codeb_sip_legs, &ngx_codeb_sip_legs_sentinel,
                    ngx_str_rbtree_insert_value);

    ngx_codeb_sip_keeper.handler = ngx_codeb_sip_keep;
    ngx_codeb_sip_keeper.log = ngx_cycle->log;
    ngx_codeb_sip_keeper.data = &ngx_codeb_sip_ncalls;
}


/* a call starts or ends (delta 1 or -1) */
void
ngx_codeb_sip_calls_count(ngx_int_t delta)
{
    ngx_codeb_sip_ncalls += delta;

    if (ngx_codeb_sip_ncalls && !ngx_codeb_sip_keeper.timer_set) {
        ngx_add_timer(&ngx_codeb_sip_keeper, NGX_CODEB_SIP_KEEPER);

    } else if (ngx_codeb_sip_ncalls == 0 && ngx_codeb_sip_keeper.timer_set) {
        ngx_del_timer(&ngx_codeb_sip_keeper);
    }
}


static void
ngx_codeb_sip_keep(ngx_event_t *ev)
{
    ngx_msec_t        max;
    ngx_core_conf_t  *ccf;

    if (ngx_codeb_sip_ncalls == 0) {
        return;
    }

    if (ngx_exiting) {
        if (ngx_codeb_sip_exiting_since == 0) {
            ngx_codeb_sip_exiting_since = ngx_current_msec;
            ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                          "codeb sip: %ui call(s) go on in this worker "
                          "until they end", ngx_codeb_sip_ncalls);
        }

        ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                               ngx_core_module);
        max = ccf->shutdown_timeout ? ccf->shutdown_timeout
                                    : NGX_CODEB_SIP_KEEP_MAX;

        if (ngx_current_msec - ngx_codeb_sip_exiting_since >= max) {
            return;
        }
    }

    ngx_add_timer(ev, NGX_CODEB_SIP_KEEPER);
}


ngx_codeb_sip_leg_t *
ngx_codeb_sip_leg_find(char const *id)
{
    ngx_str_t  key;

    key.data = (u_char *) id;
    key.len = ngx_strlen(id);

    return (ngx_codeb_sip_leg_t *) ngx_str_rbtree_lookup(&ngx_codeb_sip_legs,
                                      &key, ngx_crc32_short(key.data, key.len));
}


/* "<Call-ID>;<top Via branch>" of req, from pool; NULL: no memory */
static char *
ngx_codeb_sip_sibling_key(msg_t *req, ngx_pool_t *pool)
{
    u_char       *key;
    size_t        len;
    sip_t        *rq;
    char const   *branch;

    rq = sip_object(req);
    branch = rq->sip_via->v_branch ? rq->sip_via->v_branch : "";
    len = ngx_strlen(rq->sip_call_id->i_id) + 1 + ngx_strlen(branch) + 1;

    key = ngx_pnalloc(pool, len);
    if (key == NULL) {
        return NULL;
    }

    ngx_sprintf(key, "%s;%s%Z", rq->sip_call_id->i_id, branch);

    return (char *) key;
}


ngx_codeb_sip_leg_t *
ngx_codeb_sip_leg_find_req(msg_t *req)
{
    char                 *key;
    ngx_codeb_sip_leg_t  *leg;

    key = ngx_codeb_sip_sibling_key(req, ngx_codeb_scratch());

    leg = key ? ngx_codeb_sip_leg_find(key) : NULL;

    return leg ? leg : ngx_codeb_sip_leg_find(sip_object(req)->sip_call_id
                                              ->i_id);
}


void
ngx_codeb_sip_leg_link(ngx_codeb_sip_leg_t *leg)
{
    char const  *key;

    key = leg->key ? leg->key : leg->call_id;

    leg->sn.str.data = (u_char *) key;
    leg->sn.str.len = ngx_strlen(key);
    leg->sn.node.key = ngx_crc32_short(leg->sn.str.data, leg->sn.str.len);

    ngx_rbtree_insert(&ngx_codeb_sip_legs, &leg->sn.node);
    leg->linked = 1;
}


void
ngx_codeb_sip_leg_unlink(ngx_codeb_sip_leg_t *leg)
{
    if (leg->linked) {
        ngx_rbtree_delete(&ngx_codeb_sip_legs, &leg->sn.node);
        leg->linked = 0;
    }

    if (leg->flow == NULL) {
        return;
    }

    if (leg->own_flow) {
        ngx_codeb_sip_flow_close(leg->flow);

    } else {
        (void) ngx_codeb_sip_flow_release(leg->flow);
    }

    leg->flow = NULL;
}


/*
 * a flow closed (a WebSocket went): the calls with a leg on it end as if
 * that party hung up
 */
void
ngx_codeb_sip_calls_flow_closed(ngx_codeb_sip_flow_t *flow)
{
    ngx_rbtree_node_t    *node, *root, *sentinel;
    ngx_codeb_sip_leg_t  *leg;

    sentinel = ngx_codeb_sip_legs.sentinel;

    for ( ;; ) {
        root = ngx_codeb_sip_legs.root;
        leg = NULL;

        if (root != sentinel) {
            for (node = ngx_rbtree_min(root, sentinel);
                 node;
                 node = ngx_rbtree_next(&ngx_codeb_sip_legs, node))
            {
                leg = (ngx_codeb_sip_leg_t *) node;

                if (leg->flow == flow && !leg->call->done
                    && leg->state != NGX_CODEB_SIP_LEG_DONE)
                {
                    break;
                }

                leg = NULL;
            }
        }

        if (leg == NULL) {
            return;
        }

        ngx_log_error(NGX_LOG_INFO, flow->log, 0,
                      "codeb sip: a party of call \"%s\" is gone",
                      leg->call->a.call_id);

        ngx_codeb_sip_call_lost(leg->call, leg);
    }
}


/*
 * a new call: from a trunk (trunk not NULL) it follows the inbound
 * routes; from a user, authentication first (407)
 */
void
ngx_codeb_sip_invite(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_codeb_sip_trunk_t *trunk)
{
    ngx_int_t              rc;
    ngx_uint_t             sibling;
    ngx_codeb_sip_leg_t   *leg;
    ngx_codeb_sip_call_t  *call;

    sibling = 0;
    leg = ngx_codeb_sip_leg_find_req(req);

    if (leg && leg == &leg->call->a) {
        call = leg->call;

        if (ngx_strcmp(sip_object(call->a.invite)->sip_via->v_branch
                       ? sip_object(call->a.invite)->sip_via->v_branch : "",
                       sip_object(req)->sip_via->v_branch
                       ? sip_object(req)->sip_via->v_branch : "")
            == 0)
        {
            /* a retransmission: our last answer to it again (§17.2.1) */
            ngx_codeb_sip_retrans_again(&leg->rt_invite);
            msg_destroy(req);
            return;
        }

        /* the same call again on another branch */
        sibling = (trunk != NULL);
    }

    if (leg && !sibling) {
        /* a merged request (RFC 3261 §8.2.2.2) */
        (void) ngx_codeb_sip_reply(flow, req, 482, "Loop Detected");
        msg_destroy(req);
        return;
    }

    (void) ngx_codeb_sip_reply(flow, req, 100, "Trying");

    if (trunk) {
        ngx_codeb_sip_invite_trunk(flow, req, trunk, sibling);
        return;
    }

    rc = ngx_codeb_sip_digest_check(flow, req, ngx_codeb_sip_invite_auth);

    switch (rc) {

    case NGX_AGAIN:
        return;

    case NGX_DECLINED:
        (void) ngx_codeb_sip_digest_challenge(flow, req, 0);
        break;

    default:
        (void) ngx_codeb_sip_reply(flow, req, 500, "Server Internal Error");
        break;
    }

    msg_destroy(req);
}


/* the caller is a user of the tenant: a user or a number is called */
static void
ngx_codeb_sip_invite_auth(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_codeb_sip_user_t *user)
{
    sip_t                  *rq;
    ngx_codeb_sip_call_t   *call;
    ngx_codeb_sip_trunk_t  *trunk;

    rq = sip_object(req);

    /* the caller may not call as another user */

    if (rq->sip_from->a_url->url_user == NULL
        || ngx_strlen(rq->sip_from->a_url->url_user) != user->name.len
        || ngx_strncmp(rq->sip_from->a_url->url_user, user->name.data,
                       user->name.len) != 0)
    {
        (void) ngx_codeb_sip_reply(flow, req, 403, "Not Your Identity");
        msg_destroy(req);
        return;
    }

    if (rq->sip_request->rq_url->url_user == NULL
        || rq->sip_payload == NULL)
    {
        /* an INVITE without an offer is not taken (§13.2.1 allows it) */
        (void) ngx_codeb_sip_reply(flow, req, rq->sip_payload ? 404 : 488,
                                   rq->sip_payload ? "Not Found"
                                                   : "Offer Required");
        msg_destroy(req);
        return;
    }

    trunk = ngx_codeb_sip_trunk_for(flow->sip,
                                    rq->sip_request->rq_url->url_user);

    call = ngx_codeb_sip_call_create(flow, req, flow->sip,
                                     rq->sip_request->rq_url->url_user, 0);
    if (call == NULL) {
        (void) ngx_codeb_sip_reply(flow, req, 500, "Server Internal Error");
        msg_destroy(req);
        return;
    }

    ngx_codeb_sip_ringback(call);

    if (trunk) {
        call->trunk = trunk;
        call->outbound = 1;
        call->b_plain = 1;
        ngx_codeb_sip_call_out(call);
        return;
    }

    ngx_codeb_sip_call_ring(call);
}


/* 180 at once, the 200 waits for the callee (kept: sent again if asked) */
static void
ngx_codeb_sip_ringback(ngx_codeb_sip_call_t *call)
{
    msg_t  *rsp;

    rsp = ngx_codeb_sip_response(call->a.invite, 180, "Ringing",
                                 call->a.local_tag);

    /* it makes an early dialog: our Contact (RFC 3261 §12.1.1) */

    if (rsp
        && sip_add_make(rsp, sip_object(rsp), sip_contact_class,
                        ngx_codeb_sip_contact(call->a.flow, msg_home(rsp)))
           < 0)
    {
        msg_destroy(rsp);
        rsp = NULL;
    }

    (void) ngx_codeb_sip_send_kept(call->a.flow, rsp, &call->a.rt_invite, 0);
}


/*
 * an INVITE from a trunk: the DID (Request-URI user) and the caller's
 * number (From user) choose the user by the tenant's inbound routes.  A
 * sibling of a call (the upstream forked it here twice) and any call when
 * the trunk takes none (max_inbound=0) are held at 180, so that the
 * upstream's fork arbitration goes on; the trunk's lines are counted.
 */
static void
ngx_codeb_sip_invite_trunk(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_codeb_sip_trunk_t *trunk, ngx_uint_t sibling)
{
    sip_t                      *rq;
    ngx_str_t                   args[2];
    ngx_codeb_sip_route_ctx_t  *ctx;

    rq = sip_object(req);

    args[0].data = (u_char *) (rq->sip_request->rq_url->url_user
                               ? rq->sip_request->rq_url->url_user
                               : rq->sip_to->a_url->url_user);
    args[0].len = args[0].data ? ngx_strlen(args[0].data) : 0;

    args[1].data = (u_char *) rq->sip_from->a_url->url_user;
    args[1].len = args[1].data ? ngx_strlen(args[1].data) : 0;

    if (args[1].len == 9
        && ngx_strncasecmp(args[1].data, (u_char *) "anonymous", 9) == 0)
    {
        args[1].len = 0;
    }

    ctx = ngx_alloc(sizeof(ngx_codeb_sip_route_ctx_t), ngx_cycle->log);

    if (ctx == NULL
        || ngx_codeb_routes_run(trunk->sip->tenant, ngx_codeb_scratch(),
                                "match", args, 2, ngx_codeb_sip_routed, ctx)
           != NGX_OK)
    {
        (void) ngx_codeb_sip_reply(flow, req, 500, "State Store Unavailable");
        msg_destroy(req);
        ngx_free(ctx);
        return;
    }

    ctx->flow = flow;
    ctx->req = req;
    ctx->trunk = trunk;
    ctx->sibling = sibling;

    ngx_codeb_sip_flow_hold(flow);
}


/* the inbound routes' user for a trunk's INVITE (nil or "": nobody) */
static void
ngx_codeb_sip_routed(redisAsyncContext *ac, void *reply, void *data)
{
    u_char                     *name;
    msg_t                      *req;
    redisReply                 *rep = reply;
    ngx_codeb_sip_flow_t       *flow;
    ngx_codeb_sip_call_t       *call;
    ngx_codeb_sip_trunk_t      *trunk;
    ngx_codeb_sip_route_ctx_t  *ctx = data;

    flow = ngx_codeb_sip_flow_release(ctx->flow);
    req = ctx->req;
    trunk = ctx->trunk;
    call = NULL;

    if (flow == NULL) {
        goto done;
    }

    if (rep == NULL
        || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL))
    {
        (void) ngx_codeb_sip_reply(flow, req, 500, "State Store Unavailable");
        goto done;
    }

    if (rep->type == REDIS_REPLY_NIL || rep->len == 0) {
        (void) ngx_codeb_sip_reply(flow, req, 404, "Not Found");
        goto done;
    }

    if (sip_object(req)->sip_payload == NULL) {
        (void) ngx_codeb_sip_reply(flow, req, 488, "Offer Required");
        goto done;
    }

    name = ngx_pnalloc(ngx_codeb_scratch(), rep->len + 1);

    if (name) {
        (void) ngx_cpystrn(name, (u_char *) rep->str, rep->len + 1);
        call = ngx_codeb_sip_call_create(flow, req, trunk->sip,
                                         (char *) name, ctx->sibling);
    }

    if (call == NULL) {
        (void) ngx_codeb_sip_reply(flow, req, 500, "Server Internal Error");
        goto done;
    }

    call->trunk = trunk;
    ngx_codeb_sip_ringback(call);

    if (ctx->sibling || trunk->max_inbound == 0) {
        ngx_codeb_sip_admitted(call, NGX_DECLINED);

    } else {
        ngx_codeb_sip_admit(call);
    }

    ngx_free(ctx);
    return;

done:

    msg_destroy(req);
    ngx_free(ctx);
}


/* the trunk is asked for a line (and, inbound, whether it is a sibling) */
static void
ngx_codeb_sip_admit(ngx_codeb_sip_call_t *call)
{
    switch (ngx_codeb_sip_trunk_admit(call, ngx_codeb_sip_admitted)) {

    case NGX_OK:
        ngx_codeb_sip_admitted(call, NGX_OK);
        return;

    case NGX_AGAIN:
        return;

    default:
        ngx_codeb_sip_admitted(call, NGX_ERROR);
        return;
    }
}


/* the trunk's answer for call (ngx_codeb_sip_trunk_admit()) */
static void
ngx_codeb_sip_admitted(ngx_codeb_sip_call_t *call, ngx_int_t rc)
{
    switch (rc) {

    case NGX_OK:
        if (call->outbound) {
            ngx_codeb_sip_call_offer(call);

        } else {
            ngx_log_error(NGX_LOG_INFO, call->log, 0,
                          "codeb sip: call from trunk \"%V\" rings user "
                          "\"%s\"", &call->trunk->name, call->callee);
            ngx_codeb_sip_call_ring(call);
        }

        return;

    case NGX_DECLINED:
        /* held at 180 until the upstream cancels it, or 480 at the end */
        call->held = 1;
        ngx_log_error(NGX_LOG_INFO, call->log, 0,
                      "codeb sip: call from trunk \"%V\" held at 180 (%s)",
                      &call->trunk->name,
                      call->trunk->max_inbound == 0
                      ? "max_inbound=0" : "a sibling fork");
        return;

    case NGX_BUSY:
        ngx_log_error(NGX_LOG_INFO, call->log, 0,
                      "codeb sip: trunk \"%V\" has no free line",
                      &call->trunk->name);
        ngx_codeb_sip_call_end(call, 503, "Trunk Lines Busy");
        return;

    default:
        ngx_codeb_sip_call_end(call, 503, "Service Unavailable");
        return;
    }
}


/* the callee's bindings are looked up; the caller hears ringback now */
static void
ngx_codeb_sip_call_ring(ngx_codeb_sip_call_t *call)
{
    ngx_str_t                key, callee;
    ngx_codeb_redis_args_t   a;

    callee.data = (u_char *) call->callee;
    callee.len = ngx_strlen(call->callee);

    if (ngx_codeb_key(ngx_codeb_scratch(), &call->sip->tenant->name, "reg:",
                      callee.data, callee.len, &key) != NGX_OK)
    {
        ngx_codeb_sip_call_end(call, 500, "Server Internal Error");
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "HVALS");
    ngx_codeb_redis_arg_str(&a, &key);

    if (ngx_codeb_redis_command(ngx_codeb_sip_bindings_reply, call, &a)
        != NGX_OK)
    {
        ngx_codeb_sip_call_end(call, 503, "Service Unavailable");
        return;
    }

    call->redis = 1;
}


/* a call to a number: out through the trunk when it has a line */
void
ngx_codeb_sip_call_out(ngx_codeb_sip_call_t *call)
{
    ngx_log_error(NGX_LOG_INFO, call->log, 0,
                  "codeb sip: call out through trunk \"%V\"",
                  &call->trunk->name);

    ngx_codeb_sip_admit(call);
}


/* the caller's offer to the media daemon; the callees follow its reply */
static void
ngx_codeb_sip_call_offer(ngx_codeb_sip_call_t *call)
{
    sip_t      *rq;
    ngx_str_t   sdp;

    rq = sip_object(call->a.invite);
    sdp.data = (u_char *) rq->sip_payload->pl_data;
    sdp.len = rq->sip_payload->pl_len;

    if (ngx_codeb_sip_media(call, "offer", &sdp, ngx_codeb_sip_offer_reply, 0)
        != NGX_OK)
    {
        ngx_codeb_sip_call_end(call, 503, "Media Unavailable");
    }
}


/*
 * the call of req received on flow; a UDP caller is answered from our
 * listener whatever worker reads its datagrams (a flow of the call's own)
 */
ngx_codeb_sip_call_t *
ngx_codeb_sip_call_create(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_codeb_sip_srv_conf_t *sip, char const *callee, ngx_uint_t sibling)
{
    sip_t                 *rq;
    su_home_t             *home;
    ngx_codeb_sip_flow_t  *own;
    ngx_codeb_sip_call_t  *call;

    rq = sip_object(req);

    call = ngx_calloc(sizeof(ngx_codeb_sip_call_t), flow->log);
    if (call == NULL) {
        return NULL;
    }

    home = su_home_new(sizeof(su_home_t));
    if (home == NULL) {
        ngx_free(call);
        return NULL;
    }

    call->home = home;
    call->sip = sip;
    call->log = ngx_cycle->log;
    ngx_queue_init(&call->b);

    call->a.call = call;
    call->a.flow = flow;
    call->a.invite = req;
    call->a.call_id = su_strdup(home, rq->sip_call_id->i_id);
    call->a.local_tag = ngx_codeb_sip_make_id(home, "", 4);
    call->a.remote_tag = su_strdup(home, rq->sip_from->a_tag);
    call->a.local_uri = url_as_string(home, rq->sip_to->a_url);
    call->a.remote_uri = url_as_string(home, rq->sip_from->a_url);
    call->a.remote_display = rq->sip_from->a_display
                             ? su_strdup(home, rq->sip_from->a_display)
                             : NULL;
    call->a.target = rq->sip_contact
                     ? url_hdup(home, rq->sip_contact->m_url) : NULL;
    call->a.cseq = 0;
    call->callee = su_strdup(home, callee);

    if (sibling) {
        /* its Call-ID is another call's: known by its branch too */
        call->a.key = su_strdup(home, ngx_codeb_sip_sibling_key(req,
                                                       ngx_codeb_scratch()));
        if (call->a.key == NULL) {
            su_home_unref(home);
            ngx_free(call);
            return NULL;
        }
    }

    if (call->a.call_id == NULL || call->a.local_tag == NULL
        || call->a.local_uri == NULL || call->a.remote_uri == NULL
        || call->callee == NULL)
    {
        su_home_unref(home);
        ngx_free(call);
        return NULL;
    }

    if (flow->transport == NGX_CODEB_SIP_UDP && !flow->datagram) {
        own = ngx_codeb_sip_flow_datagram(flow->sockaddr, flow->socklen,
                                          ngx_cycle->log);
        if (own == NULL) {
            su_home_unref(home);
            ngx_free(call);
            return NULL;
        }

        own->sip = sip;
        call->a.flow = own;
        call->a.own_flow = 1;

    } else {
        ngx_codeb_sip_flow_hold(flow);
    }

    ngx_codeb_sip_leg_link(&call->a);
    ngx_codeb_sip_leg_retrans_init(&call->a);
    call->party[0] = &call->a;

    call->timer.handler = ngx_codeb_sip_call_timer;
    call->timer.data = call;
    call->timer.log = ngx_cycle->log;
    call->timer.cancelable = 1;
    ngx_add_timer(&call->timer, NGX_CODEB_SIP_RING_TIME);

    call->best = 480;
    call->best_phrase = "Temporarily Unavailable";
    call->start_ms = ngx_codeb_now_ms();
    call->alive = 1;
    ngx_codeb_sip_calls_count(1);

    return call;
}


/* the callee's bindings (JSON); none: 480; else the media offer */
static void
ngx_codeb_sip_bindings_reply(redisAsyncContext *ac, void *reply, void *data)
{
    sip_t                 *rq;
    ngx_str_t              sdp;
    redisReply            *rep = reply;
    ngx_codeb_sip_call_t  *call = data;

    call->redis = 0;

    if (call->done) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        ngx_codeb_sip_call_end(call, rep ? 480 : 503,
                               rep ? "Temporarily Unavailable"
                                   : "Service Unavailable");
        return;
    }

    /* the bindings are copied into the call's home for the offer's reply */

    if (ngx_codeb_sip_call_bindings(call, rep) != NGX_OK) {
        ngx_codeb_sip_call_end(call, 500, "Server Internal Error");
        return;
    }

    rq = sip_object(call->a.invite);
    sdp.data = (u_char *) rq->sip_payload->pl_data;
    sdp.len = rq->sip_payload->pl_len;

    if (ngx_codeb_sip_media(call, "offer", &sdp, ngx_codeb_sip_offer_reply, 0)
        != NGX_OK)
    {
        ngx_codeb_sip_call_end(call, 503, "Media Unavailable");
    }
}


/* the caller's SDP as the callees get it: the INVITEs go out */
static void
ngx_codeb_sip_offer_reply(void *data, ngx_codeb_sip_ng_reply_t *reply)
{
    ngx_codeb_sip_call_t  *call = data;

    call->ng = NULL;

    if (call->done) {
        ngx_codeb_sip_call_idle(call);
        return;
    }

    if (reply == NULL || reply->result.len != 2
        || ngx_strncmp(reply->result.data, "ok", 2) != 0
        || reply->sdp.len == 0)
    {
        if (reply) {
            ngx_log_error(NGX_LOG_ERR, call->log, 0,
                          "codeb sip: media offer refused: %V %V",
                          &reply->result, &reply->error);
        }

        ngx_codeb_sip_call_end(call, reply ? 488 : 503,
                               reply ? "Not Acceptable Here"
                                     : "Media Unavailable");
        return;
    }

    call->media = 1;

    /* kept for an INVITE sent again with credentials */
    call->offer = su_strndup(call->home, (char *) reply->sdp.data,
                             reply->sdp.len);
    call->offer_len = reply->sdp.len;

    if (ngx_codeb_sip_fork(call, &reply->sdp) != NGX_OK) {
        ngx_codeb_sip_call_end(call, 480, "Temporarily Unavailable");
    }
}


static void
ngx_codeb_sip_call_timer(ngx_event_t *ev)
{
    ngx_codeb_sip_call_t  *call = ev->data;

    if (call->a.state == NGX_CODEB_SIP_LEG_CALLING
        || call->a.state == NGX_CODEB_SIP_LEG_EARLY)
    {
        ngx_codeb_sip_cancel_others(call, NULL);
        ngx_codeb_sip_call_end(call, 480, "No Answer");
    }

    ngx_codeb_scratch_reset();
}

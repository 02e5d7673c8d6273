/*
 * What a received SIP message leads to (docs/sip.md): keepalives are
 * answered, the message is parsed and checked, the top Via gets
 * received/rport (RFC 3261 §18.2.1, RFC 3581 §4), the tenant is found,
 * the ACL is applied to REGISTER and INVITE, and the request goes to its
 * handler.
 */

#include "ngx_codeb_sip.h"


static ngx_int_t ngx_codeb_sip_via_received(ngx_codeb_sip_flow_t *flow,
    msg_t *msg);
static ngx_codeb_sip_srv_conf_t *ngx_codeb_sip_tenant(
    ngx_codeb_sip_flow_t *flow, sip_t *sip);
static void ngx_codeb_sip_request(ngx_codeb_sip_flow_t *flow, msg_t *msg);
static void ngx_codeb_sip_options(ngx_codeb_sip_flow_t *flow, msg_t *msg);
static void ngx_codeb_sip_wait(ngx_codeb_sip_flow_t *flow, msg_t *msg);
static void ngx_codeb_sip_waited(ngx_codeb_redis_wait_t *w, ngx_int_t rc);


/* a request that needs Redis while the links are down */
typedef struct {
    ngx_codeb_redis_wait_t      wait;
    ngx_codeb_sip_flow_t       *flow;
    msg_t                      *msg;
} ngx_codeb_sip_waiting_t;


#define NGX_CODEB_SIP_ALLOW                                                  \
    "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, REFER, "     \
    "NOTIFY"


void
ngx_codeb_sip_receive(ngx_codeb_sip_flow_t *flow, u_char *data, size_t len)
{
    msg_t      *msg;
    sip_t      *sip;
    ngx_int_t   rc;

    /* RFC 5626 §4.4.1: a double CRLF ping is answered by one CRLF */

    if (len == 4 && ngx_strncmp(data, "\r\n\r\n", 4) == 0) {
        (void) ngx_codeb_sip_flow_send(flow, (u_char *) "\r\n", 2);
        return;
    }

    if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
        /* a pong, or a lone CRLF: nothing to do */
        return;
    }

    rc = ngx_codeb_sip_parse(flow, data, len, &msg);
    if (rc != NGX_OK) {
        return;
    }

    sip = sip_object(msg);

    /* a message of a call of another worker goes there */

    if (ngx_codeb_sip_route(flow, msg, data, len) == NGX_OK) {
        msg_destroy(msg);
        return;
    }

    if (sip->sip_status) {
        if (sip->sip_cseq->cs_method == sip_method_register) {
            /* we send REGISTER only for trunks (_trunk_reg.c) */
            ngx_codeb_sip_trunk_reg_response(flow, msg);
            return;
        }

        ngx_codeb_sip_call_response(flow, msg);
        return;
    }

    if (ngx_codeb_sip_via_received(flow, msg) != NGX_OK) {
        msg_destroy(msg);
        return;
    }

    ngx_codeb_sip_request(flow, msg);
}


/* received=<source address> when it differs, rport=<source port> */
static ngx_int_t
ngx_codeb_sip_via_received(ngx_codeb_sip_flow_t *flow, msg_t *msg)
{
    char        buf[NGX_SOCKADDR_STRLEN + 16];
    sip_t      *sip;
    su_home_t  *home;
    sip_via_t  *via;

    sip = sip_object(msg);
    home = msg_home(msg);
    via = sip->sip_via;

    if (ngx_strlen(via->v_host) != flow->addr_text.len
        || ngx_strncmp(via->v_host, flow->addr_text.data,
                       flow->addr_text.len) != 0)
    {
        ngx_sprintf((u_char *) buf, "received=%V%Z", &flow->addr_text);

        /* the parameter is kept by reference: a copy in the message */
        if (msg_header_replace_param(home, (msg_common_t *) via,
                                     su_strdup(home, buf)) < 0)
        {
            return NGX_ERROR;
        }
    }

    if (via->v_rport && via->v_rport[0] == '\0') {
        ngx_sprintf((u_char *) buf, "rport=%d%Z", (int) flow->port);

        if (msg_header_replace_param(home, (msg_common_t *) via,
                                     su_strdup(home, buf)) < 0)
        {
            return NGX_ERROR;
        }
    }

    msg_fragment_clear(via->v_common);

    return NGX_OK;
}


/*
 * The tenant of a request: the server{} of a WebSocket, the tenant of a
 * TCP connection's first request, else the one whose realm or name is the
 * Request-URI's host
 */
static ngx_codeb_sip_srv_conf_t *
ngx_codeb_sip_tenant(ngx_codeb_sip_flow_t *flow, sip_t *sip)
{
    ngx_str_t  host;

    if (flow->sip && flow->transport != NGX_CODEB_SIP_UDP) {
        return flow->sip;
    }

    if (sip->sip_request->rq_url->url_host == NULL) {
        return NULL;
    }

    host.data = (u_char *) sip->sip_request->rq_url->url_host;
    host.len = ngx_strlen(host.data);

    return ngx_codeb_sip_tenant_by_host(&host);
}


ngx_uint_t
ngx_codeb_sip_acl_allows(ngx_codeb_sip_srv_conf_t *sip,
    ngx_codeb_sip_flow_t *flow)
{
    ngx_uint_t            i;
    ngx_array_t           one;
    ngx_codeb_sip_acl_t  *rule;

    if (sip->acl == NULL || flow->sockaddr == NULL) {
        return 1;
    }

    rule = sip->acl->elts;

    one.nelts = 1;
    one.size = sizeof(ngx_cidr_t);
    one.nalloc = 1;
    one.pool = NULL;

    for (i = 0; i < sip->acl->nelts; i++) {
        one.elts = &rule[i].cidr;

        if (rule[i].cidr.family == 0
            || ngx_cidr_match(flow->sockaddr, &one) == NGX_OK)
        {
            return !rule[i].deny;
        }
    }

    /* as with nginx's allow and deny: no rule matched, allowed */
    return 1;
}


static void
ngx_codeb_sip_request(ngx_codeb_sip_flow_t *flow, msg_t *msg)
{
    sip_t                     *sip;
    sip_method_t               method;
    ngx_codeb_sip_trunk_t     *trunk;
    ngx_codeb_sip_srv_conf_t  *tenant;

    sip = sip_object(msg);
    method = sip->sip_request->rq_method;

    if ((sip->sip_to->a_tag || method == sip_method_ack
         || method == sip_method_cancel)
        && ngx_codeb_sip_call_request(flow, msg) == NGX_OK)
    {
        /* a request of a call of this worker */
        return;
    }

    if (method == sip_method_ack) {
        /* ACK of a final non-2xx answer of ours: the transaction ends */
        msg_destroy(msg);
        return;
    }

    /* a trunk is seen; what it sends belongs to its tenant */

    trunk = ngx_codeb_sip_trunk_by_addr(flow->sockaddr, flow->socklen);

    if (trunk) {
        ngx_codeb_sip_trunk_seen(trunk);
    }

    tenant = trunk ? trunk->sip : ngx_codeb_sip_tenant(flow, sip);

    if (tenant == NULL) {
        (void) ngx_codeb_sip_reply(flow, msg, 404, "Domain Not Served");
        msg_destroy(msg);
        return;
    }

    /* dialog-creating requests; those inside a dialog passed it already */

    if ((method == sip_method_register
         || (method == sip_method_invite && sip->sip_to->a_tag == NULL))
        && !ngx_codeb_sip_acl_allows(tenant, flow))
    {
        ngx_log_error(NGX_LOG_INFO, flow->log, 0,
                      "codeb sip: %s from %V refused by codeb_sip_acl",
                      sip->sip_request->rq_method_name, &flow->addr_text);
        (void) ngx_codeb_sip_reply(flow, msg, 403, "Forbidden");
        msg_destroy(msg);
        return;
    }

    if ((method == sip_method_register || method == sip_method_invite)
        && !ngx_codeb_redis_ready())
    {
        ngx_codeb_sip_wait(flow, msg);
        return;
    }

    if (flow->sip == NULL || flow->transport == NGX_CODEB_SIP_UDP) {
        /*
         * a TCP connection belongs to the tenant of its first request; a
         * UDP peer to the tenant of the request at hand
         */
        flow->sip = tenant;
    }

    switch (method) {

    case sip_method_register:
        ngx_codeb_sip_register(flow, msg);
        return;

    case sip_method_invite:
        if (sip->sip_to->a_tag == NULL) {
            ngx_codeb_sip_invite(flow, msg, trunk);
            return;
        }

        (void) ngx_codeb_sip_reply(flow, msg, 481,
                                   "Call/Transaction Does Not Exist");
        break;

    case sip_method_options:
        ngx_codeb_sip_options(flow, msg);
        break;

    case sip_method_cancel:
    case sip_method_bye:
    case sip_method_info:
    case sip_method_update:
    case sip_method_refer:
    case sip_method_notify:
    case sip_method_prack:
        (void) ngx_codeb_sip_reply(flow, msg, 481,
                                   "Call/Transaction Does Not Exist");
        break;

    default:
        (void) ngx_codeb_sip_reply(flow, msg, 501, "Not Implemented");
        break;
    }

    msg_destroy(msg);
}


/*
 * Right after a start or during a reconnect the request waits for the
 * Redis links (codeb_redis_timeout at most), then goes on; when they stay
 * down it is answered 503 with Retry-After (RFC 3261 §21.5.4)
 */
static void
ngx_codeb_sip_wait(ngx_codeb_sip_flow_t *flow, msg_t *msg)
{
    ngx_codeb_sip_waiting_t  *w;

    w = ngx_calloc(sizeof(ngx_codeb_sip_waiting_t), flow->log);
    if (w == NULL) {
        msg_destroy(msg);
        return;
    }

    w->flow = flow;
    w->msg = msg;
    w->wait.handler = ngx_codeb_sip_waited;
    w->wait.data = w;

    ngx_codeb_sip_flow_hold(flow);
    ngx_codeb_redis_wait(&w->wait, flow->log);
}


static void
ngx_codeb_sip_waited(ngx_codeb_redis_wait_t *wait, ngx_int_t rc)
{
    msg_t                    *rsp;
    ngx_codeb_sip_flow_t     *flow;
    ngx_codeb_sip_waiting_t  *w = wait->data;

    flow = ngx_codeb_sip_flow_release(w->flow);

    if (flow == NULL) {
        msg_destroy(w->msg);

    } else if (rc == NGX_OK) {
        ngx_codeb_sip_request(flow, w->msg);

    } else {
        rsp = ngx_codeb_sip_response(w->msg, 503, "Service Unavailable",
                                     ngx_codeb_sip_local_tag(w->msg));
        if (rsp
            && sip_add_make(rsp, sip_object(rsp), sip_retry_after_class, "5")
               == 0)
        {
            (void) ngx_codeb_sip_send(flow, rsp);

        } else if (rsp) {
            msg_destroy(rsp);
        }

        msg_destroy(w->msg);
    }

    ngx_free(w);
    ngx_codeb_scratch_reset();
}


/* OPTIONS to us (RFC 3261 §11.2): 200 with what we accept */
static void
ngx_codeb_sip_options(ngx_codeb_sip_flow_t *flow, msg_t *req)
{
    msg_t  *rsp;
    sip_t  *rs;

    rsp = ngx_codeb_sip_response(req, 200, "OK",
                                 ngx_codeb_sip_local_tag(req));
    if (rsp == NULL) {
        return;
    }

    rs = sip_object(rsp);

    if (sip_add_make(rsp, rs, sip_allow_class, NGX_CODEB_SIP_ALLOW) < 0
        || sip_add_make(rsp, rs, sip_accept_class, "application/sdp") < 0
        || sip_add_make(rsp, rs, sip_supported_class, "path, outbound")
           < 0)
    {
        msg_destroy(rsp);
        return;
    }

    (void) ngx_codeb_sip_send(flow, rsp);
}

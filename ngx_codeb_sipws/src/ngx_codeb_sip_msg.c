/*
 * SIP messages with sofia-sip's message library: a received message is
 * parsed and checked before anything uses it (RFC 3261 §7, §8.1.1, §20),
 * messages we build get a Content-Length equal to their body (the seed's
 * "wire-form correctness").
 */

#include "ngx_codeb_sip.h"


static char *ngx_codeb_sip_check(u_char *data, size_t len, sip_t *sip);
static size_t ngx_codeb_sip_head_len(u_char *data, size_t len);


ngx_int_t
ngx_codeb_sip_parse(ngx_codeb_sip_flow_t *flow, u_char *data, size_t len,
    msg_t **msgp)
{
    char   *why;
    msg_t  *msg;
    sip_t  *sip;

    if (len > NGX_CODEB_SIP_MAX_MESSAGE) {
        ngx_log_error(NGX_LOG_INFO, flow->log, 0,
                      "codeb sip: %uz byte message dropped", len);
        return NGX_DECLINED;
    }

    msg = msg_make(sip_default_mclass(), 0, data, len);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    sip = sip_object(msg);

    if (sip == NULL || (sip->sip_request == NULL && sip->sip_status == NULL))
    {
        /* nothing to answer to */
        ngx_log_error(NGX_LOG_INFO, flow->log, 0,
                      "codeb sip: not a SIP message, dropped");
        msg_destroy(msg);
        return NGX_DECLINED;
    }

    why = ngx_codeb_sip_check(data, len, sip);

    if (why == NULL) {
        *msgp = msg;
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, flow->log, 0,
                  "codeb sip: malformed %s: %s",
                  sip->sip_request ? "request" : "response", why);

    /*
     * §8.2: a request is answered 400 when a response can be made (Via,
     * From, To, Call-ID and CSeq understood); a response is dropped
     */

    if (sip->sip_request && sip->sip_request->rq_method != sip_method_ack
        && sip->sip_via && sip->sip_from && sip->sip_to && sip->sip_call_id
        && sip->sip_cseq)
    {
        (void) ngx_codeb_sip_reply(flow, msg, 400, why);
    }

    msg_destroy(msg);

    return NGX_DECLINED;
}


/* NULL for a well-formed message, else the reason phrase of a 400 */
static char *
ngx_codeb_sip_check(u_char *data, size_t len, sip_t *sip)
{
    size_t  head, body;

    if (sip->sip_request
        && (sip->sip_request->rq_version == NULL
            || ngx_strcmp(sip->sip_request->rq_version, "SIP/2.0") != 0))
    {
        return "Bad SIP Version";
    }

    if (sip->sip_status
        && (sip->sip_status->st_version == NULL
            || ngx_strcmp(sip->sip_status->st_version, "SIP/2.0") != 0))
    {
        return "Bad SIP Version";
    }

    /* unparsable or repeated single headers land in sip_error */

    if (sip->sip_error) {
        return "Malformed Or Repeated Header";
    }

    if (sip->sip_via == NULL || sip->sip_from == NULL || sip->sip_to == NULL
        || sip->sip_call_id == NULL || sip->sip_cseq == NULL)
    {
        return "Missing Mandatory Header";
    }

    if (sip->sip_request) {
        if (sip->sip_max_forwards == NULL) {
            return "Missing Max-Forwards";
        }

        if (sip->sip_cseq->cs_method != sip->sip_request->rq_method
            || (sip->sip_cseq->cs_method == sip_method_unknown
                && ngx_strcmp(sip->sip_cseq->cs_method_name,
                              sip->sip_request->rq_method_name) != 0))
        {
            return "CSeq Method Mismatch";
        }
    }

    head = ngx_codeb_sip_head_len(data, len);
    if (head == 0) {
        return "Incomplete Message";
    }

    /* one message per datagram or WebSocket message: nothing after it */

    body = len - head;

    if (sip->sip_content_length
        && sip->sip_content_length->l_length != body)
    {
        return "Content-Length Mismatch";
    }

    return NULL;
}


/* bytes up to and with the empty line after the headers; 0 if none */
static size_t
ngx_codeb_sip_head_len(u_char *data, size_t len)
{
    u_char  *p, *last;

    last = data + ngx_min(len, NGX_CODEB_SIP_MAX_HEADERS);

    for (p = data; p + 1 < last; p++) {
        if (p[0] != '\n') {
            continue;
        }

        if (p[1] == '\n') {
            return p + 2 - data;
        }

        if (p + 2 < last && p[1] == '\r' && p[2] == '\n') {
            return p + 3 - data;
        }
    }

    return 0;
}


char const *
ngx_codeb_sip_local_tag(msg_t *req)
{
    u_char        hex[41], *src;
    size_t        len;
    char         *tag;
    sip_t        *sip;
    su_home_t    *home;

    sip = sip_object(req);
    home = msg_home(req);

    if (sip->sip_to->a_tag) {
        return sip->sip_to->a_tag;
    }

    /*
     * the same request (a retransmission too) gets the same tag: derived
     * from Call-ID, From tag and the top Via branch
     */

    len = ngx_strlen(sip->sip_call_id->i_id)
          + (sip->sip_from->a_tag ? ngx_strlen(sip->sip_from->a_tag) : 0)
          + (sip->sip_via->v_branch ? ngx_strlen(sip->sip_via->v_branch) : 0);

    src = su_alloc(home, len + 1);
    tag = su_alloc(home, 17);
    if (src == NULL || tag == NULL) {
        return NULL;
    }

    ngx_sprintf(src, "%s%s%s%Z", sip->sip_call_id->i_id,
                sip->sip_from->a_tag ? sip->sip_from->a_tag : "",
                sip->sip_via->v_branch ? sip->sip_via->v_branch : "");

    ngx_codeb_sha1_hex(src, len, hex);
    ngx_memcpy(tag, hex, 16);
    tag[16] = '\0';

    return tag;
}


msg_t *
ngx_codeb_sip_response(msg_t *req, int status, char const *phrase,
    char const *to_tag)
{
    msg_t         *rsp;
    sip_t         *rq, *rs;
    su_home_t     *home;
    sip_to_t      *to;
    sip_status_t  *st;

    rq = sip_object(req);

    rsp = msg_create(sip_default_mclass(), 0);
    if (rsp == NULL) {
        return NULL;
    }

    rs = sip_object(rsp);
    home = msg_home(rsp);

    st = sip_status_create(home, status, phrase, NULL);
    to = sip_to_dup(home, rq->sip_to);

    if (st == NULL || to == NULL
        || (to_tag && to->a_tag == NULL && sip_to_tag(home, to, to_tag) < 0)
        || msg_header_insert(rsp, (msg_pub_t *) rs, (msg_header_t *) st) < 0
        || msg_header_add_dup(rsp, (msg_pub_t *) rs,
                              (msg_header_t *) rq->sip_via) < 0
        || msg_header_add_dup(rsp, (msg_pub_t *) rs,
                              (msg_header_t *) rq->sip_from) < 0
        || msg_header_insert(rsp, (msg_pub_t *) rs, (msg_header_t *) to) < 0
        || msg_header_add_dup(rsp, (msg_pub_t *) rs,
                              (msg_header_t *) rq->sip_call_id) < 0
        || msg_header_add_dup(rsp, (msg_pub_t *) rs,
                              (msg_header_t *) rq->sip_cseq) < 0)
    {
        msg_destroy(rsp);
        return NULL;
    }

    return rsp;
}


/* Content-Type type and the body data in msg; NGX_ERROR: msg is freed */
ngx_int_t
ngx_codeb_sip_set_body(msg_t *msg, char const *type, u_char *data,
    size_t len)
{
    sip_t  *sip;

    if (msg == NULL) {
        return NGX_ERROR;
    }

    sip = sip_object(msg);

    if (sip_add_make(msg, sip, sip_content_type_class, type) < 0
        || msg_header_insert(msg, (msg_pub_t *) sip, (msg_header_t *)
                             sip_payload_create(msg_home(msg), data, len))
           < 0)
    {
        msg_destroy(msg);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_codeb_sip_serialize(msg_t *msg, ngx_str_t *text)
{
    size_t                 len;
    sip_t                 *sip;
    su_home_t             *home;
    sip_content_length_t  *cl;

    if (msg == NULL) {
        return NGX_ERROR;
    }

    sip = sip_object(msg);
    home = msg_home(msg);

    /* Content-Length is what the body is, whatever it said before */

    cl = sip_content_length_create(home, sip->sip_payload
                                         ? sip->sip_payload->pl_len : 0);

    if (sip->sip_separator == NULL
        && msg_header_insert(msg, (msg_pub_t *) sip,
                             (msg_header_t *) sip_separator_create(home)) < 0)
    {
        msg_destroy(msg);
        return NGX_ERROR;
    }

    if (cl == NULL
        || (sip->sip_content_length
            ? msg_header_replace(msg, (msg_pub_t *) sip,
                                 (msg_header_t *) sip->sip_content_length,
                                 (msg_header_t *) cl)
            : msg_header_insert(msg, (msg_pub_t *) sip,
                                (msg_header_t *) cl)) < 0
        || msg_serialize(msg, (msg_pub_t *) sip) < 0)
    {
        msg_destroy(msg);
        return NGX_ERROR;
    }

    len = 0;
    text->data = (u_char *) msg_as_string(home, msg, NULL, 0, &len);
    text->len = len;

    if (text->data == NULL) {
        msg_destroy(msg);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_codeb_sip_send(ngx_codeb_sip_flow_t *flow, msg_t *msg)
{
    ngx_int_t  rc;
    ngx_str_t  text;

    if (ngx_codeb_sip_serialize(msg, &text) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_codeb_sip_flow_send(flow, text.data, text.len);

    msg_destroy(msg);

    return rc;
}


ngx_int_t
ngx_codeb_sip_reply(ngx_codeb_sip_flow_t *flow, msg_t *req, int status,
    char const *phrase)
{
    msg_t  *rsp;

    rsp = ngx_codeb_sip_response(req, status, phrase,
                                 status > 100 ? ngx_codeb_sip_local_tag(req)
                                              : NULL);
    if (rsp == NULL) {
        return NGX_ERROR;
    }

    return ngx_codeb_sip_send(flow, rsp);
}

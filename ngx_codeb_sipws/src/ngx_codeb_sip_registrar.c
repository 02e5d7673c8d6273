/*
 * The registrar (RFC 3261 §10.3, RFC 5626 §6): an authenticated REGISTER
 * adds, refreshes or removes the bindings of its AOR, kept in Redis
 *   P reg:<user>   hash  binding id -> JSON {contact, flow, transport,
 *                        expires (epoch s), callId, cseq, instance, regId}
 *   P regs         set   users with bindings (for ?registrar)
 * A binding id is "<+sip.instance>;reg-id=<n>" for an outbound client,
 * else the Contact URI.  Bindings made through a WebSocket or TCP
 * connection go when it closes; all of them expire with their expires.
 */

#include "ngx_codeb_sip.h"


/* a binding made through a flow, removed when the flow closes */
typedef struct {
    ngx_queue_t                 queue;
    ngx_codeb_tenant_t         *tenant;
    ngx_str_t                   user;
    ngx_str_t                   id;
    u_char                      data[];
} ngx_codeb_sip_binding_t;


typedef struct {
    ngx_codeb_sip_flow_t       *flow;
    msg_t                      *req;
    ngx_str_t                   user;
} ngx_codeb_sip_reg_ctx_t;


static void ngx_codeb_sip_register_auth(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_codeb_sip_user_t *user);
static ngx_int_t ngx_codeb_sip_register_args(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_codeb_redis_args_t *a);
static ngx_int_t ngx_codeb_sip_binding_value(ngx_codeb_sip_flow_t *flow,
    msg_t *req, sip_contact_t *m, time_t expires, ngx_str_t *value);
static time_t ngx_codeb_sip_contact_expires(ngx_codeb_sip_srv_conf_t *sip,
    sip_t *rq, sip_contact_t *m);
static ngx_int_t ngx_codeb_sip_binding_id(su_home_t *home, sip_contact_t *m,
    ngx_str_t *id);
static ngx_int_t ngx_codeb_sip_register_brief(ngx_codeb_sip_flow_t *flow,
    msg_t *req);
static void ngx_codeb_sip_register_reply(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_codeb_sip_register_ok(ngx_codeb_sip_flow_t *flow,
    msg_t *req, redisReply *rep);
static void ngx_codeb_sip_flow_remember(ngx_codeb_sip_flow_t *flow,
    ngx_str_t *user, msg_t *req);


void
ngx_codeb_sip_register(ngx_codeb_sip_flow_t *flow, msg_t *req)
{
    ngx_int_t  rc;

    rc = ngx_codeb_sip_digest_check(flow, req, ngx_codeb_sip_register_auth);

    switch (rc) {

    case NGX_AGAIN:
        /* ngx_codeb_sip_register_auth() follows, it owns req */
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


/* the digest was right: the bindings of the user change */
static void
ngx_codeb_sip_register_auth(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_codeb_sip_user_t *user)
{
    sip_t                    *rq;
    ngx_int_t                 rc;
    ngx_codeb_redis_args_t    a;
    ngx_codeb_sip_reg_ctx_t  *ctx;

    rq = sip_object(req);

    /* §10.3 step 3: the AOR is the authenticated user's */

    if (rq->sip_to->a_url->url_user == NULL
        || ngx_strlen(rq->sip_to->a_url->url_user) != user->name.len
        || ngx_strncmp(rq->sip_to->a_url->url_user, user->name.data,
                       user->name.len) != 0)
    {
        (void) ngx_codeb_sip_reply(flow, req, 403, "Not Your AOR");
        msg_destroy(req);
        return;
    }

    a.argc = 0;
    rc = ngx_codeb_sip_register_args(flow, req, &a);

    if (rc == NGX_DECLINED) {
        /* answered already (423, 400) */
        msg_destroy(req);
        return;
    }

    ctx = ngx_alloc(sizeof(ngx_codeb_sip_reg_ctx_t), flow->log);

    if (rc != NGX_OK || ctx == NULL
        || ngx_codeb_redis_eval(&ngx_codeb_sip_bind_script,
                                ngx_codeb_sip_register_reply, ctx, 2, &a)
           != NGX_OK)
    {
        if (ctx) {
            ngx_free(ctx);
        }

        (void) ngx_codeb_sip_reply(flow, req, 500, "State Store Unavailable");
        msg_destroy(req);
        return;
    }

    ctx->flow = flow;
    ctx->req = req;
    ctx->user = user->name;

    ngx_codeb_sip_flow_hold(flow);
}


/*
 * KEYS: P reg:<user>, P regs.  ARGV: user, now, Call-ID, CSeq, then per
 * Contact: binding id, expires (epoch s, 0: remove), JSON value; a lone
 * "*" removes them all.  NGX_DECLINED: answered here (423, 400).
 */
static ngx_int_t
ngx_codeb_sip_register_args(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_codeb_redis_args_t *a)
{
    u_char         *p;
    time_t          expires;
    sip_t          *rq;
    ngx_str_t       user, key, regs, id, value, num;
    ngx_pool_t     *pool;
    sip_contact_t  *m;

    rq = sip_object(req);
    pool = ngx_codeb_scratch();

    user.data = (u_char *) rq->sip_to->a_url->url_user;
    user.len = ngx_strlen(user.data);

    p = ngx_pnalloc(pool, 2 * NGX_INT64_LEN);
    if (p == NULL
        || ngx_codeb_key(pool, &flow->sip->tenant->name, "reg:", user.data,
                         user.len, &key) != NGX_OK
        || ngx_codeb_key(pool, &flow->sip->tenant->name, "regs", NULL, 0,
                         &regs) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_codeb_redis_arg_str(a, &key);
    ngx_codeb_redis_arg_str(a, &regs);
    ngx_codeb_redis_arg_str(a, &user);

    num.data = p;
    num.len = ngx_sprintf(p, "%T", ngx_time()) - p;
    ngx_codeb_redis_arg_str(a, &num);

    ngx_codeb_redis_arg(a, (void *) rq->sip_call_id->i_id,
                        ngx_strlen(rq->sip_call_id->i_id));
    ngx_codeb_redis_arg(a, p + NGX_INT64_LEN,
                        ngx_sprintf(p + NGX_INT64_LEN, "%uD",
                                    rq->sip_cseq->cs_seq)
                        - (p + NGX_INT64_LEN));

    for (m = rq->sip_contact; m; m = m->m_next) {
        if (m->m_url->url_type == url_any) {
            /* Contact: * only with Expires: 0 and alone (§10.3 step 6) */
            if (m != rq->sip_contact || m->m_next
                || rq->sip_expires == NULL || rq->sip_expires->ex_delta != 0)
            {
                (void) ngx_codeb_sip_reply(flow, req, 400,
                                           "Invalid Contact *");
                return NGX_DECLINED;
            }

            ngx_codeb_redis_arg_lit(a, "*");
            ngx_codeb_redis_arg_lit(a, "0");
            ngx_codeb_redis_arg_lit(a, "");
            break;
        }

        expires = ngx_codeb_sip_contact_expires(flow->sip, rq, m);

        if (expires < 0) {
            (void) ngx_codeb_sip_register_brief(flow, req);
            return NGX_DECLINED;
        }

        if (a->argc + 3 > NGX_CODEB_REDIS_MAX_ARGS - 3) {
            (void) ngx_codeb_sip_reply(flow, req, 403, "Too Many Contacts");
            return NGX_DECLINED;
        }

        if (ngx_codeb_sip_binding_id(msg_home(req), m, &id) != NGX_OK
            || ngx_codeb_sip_binding_value(flow, req, m, expires, &value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = ngx_pnalloc(pool, NGX_TIME_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_codeb_redis_arg_str(a, &id);
        ngx_codeb_redis_arg(a, p,
                            ngx_sprintf(p, "%T",
                                        expires ? ngx_time() + expires : 0)
                            - p);
        ngx_codeb_redis_arg_str(a, &value);
    }

    return NGX_OK;
}


/*
 * The lifetime asked for a Contact (its expires, else Expires, else the
 * default), at most the maximum; -1 when it is under the minimum (423)
 */
static time_t
ngx_codeb_sip_contact_expires(ngx_codeb_sip_srv_conf_t *sip, sip_t *rq,
    sip_contact_t *m)
{
    time_t  expires;

    if (m->m_expires) {
        expires = (time_t) strtoul(m->m_expires, NULL, 10);

    } else if (rq->sip_expires) {
        expires = (time_t) rq->sip_expires->ex_delta;

    } else {
        expires = sip->expires_default;
    }

    if (expires == 0) {
        return 0;
    }

    if (expires < sip->expires_min) {
        return -1;
    }

    return ngx_min(expires, sip->expires_max);
}


/* 423 Interval Too Brief with Min-Expires (§10.3 step 7) */
static ngx_int_t
ngx_codeb_sip_register_brief(ngx_codeb_sip_flow_t *flow, msg_t *req)
{
    char    buf[NGX_TIME_T_LEN + 1];
    msg_t  *rsp;

    rsp = ngx_codeb_sip_response(req, 423, "Interval Too Brief",
                                 ngx_codeb_sip_local_tag(req));
    if (rsp == NULL) {
        return NGX_ERROR;
    }

    *ngx_sprintf((u_char *) buf, "%T", flow->sip->expires_min) = '\0';

    if (sip_add_make(rsp, sip_object(rsp), sip_min_expires_class, buf) < 0) {
        msg_destroy(rsp);
        return NGX_ERROR;
    }

    return ngx_codeb_sip_send(flow, rsp);
}


/* the value of +sip.instance without its quotes (RFC 5626 §4.1), or NULL */
static char const *
ngx_codeb_sip_instance(su_home_t *home, sip_contact_t *m)
{
    char const  *v;

    v = msg_params_find(m->m_params, "+sip.instance=");

    if (v && v[0] == '"') {
        return msg_unquote_dup(home, v);
    }

    return v;
}


/*
 * "<+sip.instance>;reg-id=<n>" (RFC 5626 §6), else the Contact URI; from
 * the home of the request
 */
static ngx_int_t
ngx_codeb_sip_binding_id(su_home_t *home, sip_contact_t *m, ngx_str_t *id)
{
    char        *s;
    char const  *instance, *reg_id;

    instance = ngx_codeb_sip_instance(home, m);
    reg_id = msg_params_find(m->m_params, "reg-id=");

    if (instance && reg_id) {
        s = su_sprintf(home, "%s;reg-id=%s", instance, reg_id);

    } else {
        s = url_as_string(home, m->m_url);
    }

    if (s == NULL) {
        return NGX_ERROR;
    }

    id->data = (u_char *) s;
    id->len = ngx_strlen(s);

    return NGX_OK;
}


/* the binding's JSON, written by the generator, copied to the request */
static ngx_int_t
ngx_codeb_sip_binding_value(ngx_codeb_sip_flow_t *flow, msg_t *req,
    sip_contact_t *m, time_t expires, ngx_str_t *value)
{
    char        *uri;
    sip_t       *rq;
    yajl_gen     g;
    ngx_str_t    token, text;
    su_home_t   *home;
    char const  *instance, *reg_id;

    rq = sip_object(req);
    home = msg_home(req);
    uri = url_as_string(home, m->m_url);
    g = ngx_codeb_gen();

    if (uri == NULL || g == NULL
        || ngx_codeb_sip_flow_token(flow, ngx_codeb_scratch(), &token)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    instance = ngx_codeb_sip_instance(home, m);
    reg_id = msg_params_find(m->m_params, "reg-id=");

    ngx_codeb_gen_cstr(g, "contact", uri);
    ngx_codeb_gen_vstr(g, "flow", &token);
    ngx_codeb_gen_cstr(g, "transport",
                       ngx_codeb_sip_transport_name(flow->transport));
    ngx_codeb_gen_vstr(g, "source", &flow->addr_text);
    ngx_codeb_gen_int(g, "port", flow->port);

    /* our address on its connection, for a worker that sends through it */
    if (ngx_codeb_sip_flow_host(flow)) {
        ngx_codeb_gen_cstr(g, "local", (char *) ngx_codeb_sip_flow_host(flow));
    }
    ngx_codeb_gen_int(g, "expires", ngx_time() + expires);
    ngx_codeb_gen_cstr(g, "callId", (char *) rq->sip_call_id->i_id);
    ngx_codeb_gen_int(g, "cseq", rq->sip_cseq->cs_seq);

    if (instance) {
        ngx_codeb_gen_cstr(g, "instance", (char *) instance);
    }

    if (reg_id) {
        ngx_codeb_gen_cstr(g, "regId", (char *) reg_id);
    }

    if (rq->sip_user_agent && rq->sip_user_agent->g_string) {
        ngx_codeb_gen_cstr(g, "userAgent",
                           (char *) rq->sip_user_agent->g_string);
    }

    text = ngx_codeb_gen_done(g);

    value->data = su_alloc(home, text.len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, text.data, text.len);
    value->len = text.len;

    return NGX_OK;
}


/* {binding JSON, ...} after the change, or -1: out of order (§10.3 7) */
static void
ngx_codeb_sip_register_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply               *rep = reply;
    ngx_codeb_sip_flow_t     *flow;
    ngx_codeb_sip_reg_ctx_t  *ctx = data;

    flow = ngx_codeb_sip_flow_release(ctx->flow);

    if (flow == NULL) {
        /* the connection went meanwhile: its bindings go with it */

    } else if (rep && rep->type == REDIS_REPLY_ARRAY) {
        ngx_codeb_sip_flow_remember(flow, &ctx->user, ctx->req);
        ngx_codeb_sip_register_ok(flow, ctx->req, rep);

    } else if (rep && rep->type == REDIS_REPLY_INTEGER) {
        (void) ngx_codeb_sip_reply(flow, ctx->req, 500,
                                   "Out Of Order Request");

    } else {
        (void) ngx_codeb_sip_reply(flow, ctx->req, 500,
                                   "State Store Unavailable");
    }

    msg_destroy(ctx->req);
    ngx_free(ctx);
}


/* 200 with every current binding and its remaining lifetime (§10.3 8) */
static void
ngx_codeb_sip_register_ok(ngx_codeb_sip_flow_t *flow, msg_t *req,
    redisReply *rep)
{
    char                     *h;
    size_t                    i;
    int64_t                   expires;
    msg_t                    *rsp;
    sip_t                    *rs, *rq;
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *jc;

    rsp = ngx_codeb_sip_response(req, 200, "OK",
                                 ngx_codeb_sip_local_tag(req));
    if (rsp == NULL) {
        return;
    }

    rs = sip_object(rsp);
    rq = sip_object(req);

    for (i = 0; i < rep->elements; i++) {
        if (rep->element[i]->type != REDIS_REPLY_STRING
            || ngx_codeb_json_object(ngx_codeb_scratch(),
                                     (u_char *) rep->element[i]->str,
                                     rep->element[i]->len, &m) != NGX_OK
            || (jc = ngx_codeb_json_get_type(m, "contact",
                                             NGX_CODEB_JSON_STRING)) == NULL
            || ngx_codeb_json_int(m, "expires", &expires) != NGX_OK)
        {
            continue;
        }

        h = su_sprintf(msg_home(rsp), "<%s>;expires=%ld",
                       (char *) jc->str.data,
                       (long) ngx_max(expires - ngx_time(), 0));

        if (h == NULL || sip_add_make(rsp, rs, sip_contact_class, h) < 0) {
            msg_destroy(rsp);
            return;
        }
    }

    /* RFC 5626 §6: an outbound registration is confirmed */

    if (rq->sip_contact && rq->sip_contact->m_url->url_type != url_any
        && msg_params_find(rq->sip_contact->m_params, "reg-id=")
        && sip_has_supported(rq->sip_supported, "outbound")
        && sip_add_make(rsp, rs, sip_require_class, "outbound") < 0)
    {
        msg_destroy(rsp);
        return;
    }

    (void) ngx_codeb_sip_send(flow, rsp);
}


/* bindings through a WebSocket or TCP connection go when it closes */
static void
ngx_codeb_sip_flow_remember(ngx_codeb_sip_flow_t *flow, ngx_str_t *user,
    msg_t *req)
{
    time_t                    expires;
    sip_t                    *rq;
    ngx_str_t                 id;
    ngx_queue_t              *q, *next;
    sip_contact_t            *m;
    ngx_codeb_sip_binding_t  *b;

    if (flow->transport == NGX_CODEB_SIP_UDP) {
        return;
    }

    rq = sip_object(req);

    for (m = rq->sip_contact; m; m = m->m_next) {
        if (m->m_url->url_type == url_any) {
            id.len = 0;
            expires = 0;

        } else if (ngx_codeb_sip_binding_id(msg_home(req), m, &id) != NGX_OK)
        {
            return;

        } else {
            expires = ngx_codeb_sip_contact_expires(flow->sip, rq, m);
        }

        for (q = ngx_queue_head(&flow->bindings);
             q != ngx_queue_sentinel(&flow->bindings);
             q = next)
        {
            next = ngx_queue_next(q);
            b = ngx_queue_data(q, ngx_codeb_sip_binding_t, queue);

            if (b->user.len == user->len
                && ngx_strncmp(b->user.data, user->data, user->len) == 0
                && (id.len == 0
                    || (b->id.len == id.len
                        && ngx_strncmp(b->id.data, id.data, id.len) == 0)))
            {
                ngx_queue_remove(q);
                ngx_free(b);
            }
        }

        if (expires <= 0) {
            continue;
        }

        b = ngx_alloc(sizeof(ngx_codeb_sip_binding_t) + user->len + id.len,
                      flow->log);
        if (b == NULL) {
            return;
        }

        b->tenant = flow->sip->tenant;
        b->user.data = b->data;
        b->user.len = user->len;
        b->id.data = ngx_cpymem(b->data, user->data, user->len);
        b->id.len = id.len;
        ngx_memcpy(b->id.data, id.data, id.len);

        ngx_queue_insert_tail(&flow->bindings, &b->queue);
    }
}


void
ngx_codeb_sip_unbind_flow(ngx_codeb_sip_flow_t *flow)
{
    ngx_str_t                 key, regs, token;
    ngx_queue_t              *q;
    ngx_pool_t               *pool;
    ngx_codeb_redis_args_t    a;
    ngx_codeb_sip_binding_t  *b;

    pool = ngx_codeb_scratch();

    while (!ngx_queue_empty(&flow->bindings)) {
        q = ngx_queue_head(&flow->bindings);
        b = ngx_queue_data(q, ngx_codeb_sip_binding_t, queue);
        ngx_queue_remove(q);

        /* only if the binding still names this flow (not re-registered) */

        if (ngx_codeb_key(pool, &b->tenant->name, "reg:", b->user.data,
                          b->user.len, &key) == NGX_OK
            && ngx_codeb_key(pool, &b->tenant->name, "regs", NULL, 0, &regs)
               == NGX_OK
            && ngx_codeb_sip_flow_token(flow, pool, &token) == NGX_OK)
        {
            a.argc = 0;
            ngx_codeb_redis_arg_str(&a, &key);
            ngx_codeb_redis_arg_str(&a, &regs);
            ngx_codeb_redis_arg_str(&a, &b->user);
            ngx_codeb_redis_arg_str(&a, &b->id);
            ngx_codeb_redis_arg_str(&a, &token);

            if (ngx_codeb_redis_eval(&ngx_codeb_sip_unbind_script, NULL,
                                     NULL, 2, &a)
                != NGX_OK)
            {
                ngx_log_error(NGX_LOG_WARN, flow->log, 0,
                              "codeb sip: a binding of \"%V\" stays until "
                              "it expires: Redis is down", &b->user);
            }
        }

        ngx_free(b);
    }
}

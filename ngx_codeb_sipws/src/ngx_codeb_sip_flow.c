/*
 * Flows (RFC 5626 §3.1 uses the word for the same thing): the transport
 * connections SIP messages arrive on and leave by.  A WebSocket or TCP
 * flow lives in the worker that holds its connection and is known to the
 * others by its token "<worker id>/<flow id>"; a message for it from
 * another worker comes over the bus ("sip-send <flow id>\n<message>").
 * A worker whose call has a leg on another worker's flow asks to hear when
 * it closes ("sip-watch <flow id> <worker id>\n<Call-ID>"), and hears it
 * ("sip-gone\n<Call-ID>").  A UDP peer needs no owner: any worker sends
 * to it from the listener; its token is "udp:<address>:<port>".
 */

#include "ngx_codeb_sip.h"


static void ngx_codeb_sip_bus_send(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_sip_bus_watch(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_sip_bus_gone(ngx_str_t *header, ngx_str_t *body);
static void ngx_codeb_sip_flow_gone(ngx_codeb_sip_flow_t *flow);
static ngx_codeb_sip_flow_t *ngx_codeb_sip_flow_find(uint64_t id);
static void ngx_codeb_sip_flow_free(ngx_codeb_sip_flow_t *flow);
static ngx_int_t ngx_codeb_sip_flow_send_remote(ngx_codeb_sip_flow_t *flow,
    u_char *data, size_t len);


static ngx_rbtree_t       ngx_codeb_sip_flows;
static ngx_rbtree_node_t  ngx_codeb_sip_flows_sentinel;
static uint64_t           ngx_codeb_sip_flow_next;

static ngx_codeb_bus_kind_t  ngx_codeb_sip_bus_kinds[] = {
    { ngx_string("sip-send"), ngx_codeb_sip_bus_send },
    { ngx_string("sip-watch"), ngx_codeb_sip_bus_watch },
    { ngx_string("sip-gone"), ngx_codeb_sip_bus_gone }
};


ngx_int_t
ngx_codeb_sip_flow_init(ngx_conf_t *cf)
{
    ngx_uint_t  i;

    for (i = 0; i < 3; i++) {
        if (ngx_codeb_bus_on(cf, &ngx_codeb_sip_bus_kinds[i].kind,
                             ngx_codeb_sip_bus_kinds[i].handler)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_codeb_sip_route_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_codeb_sip_scripts_init(cf);
}


ngx_int_t
ngx_codeb_sip_flow_init_process(ngx_cycle_t *cycle)
{
    ngx_rbtree_init(&ngx_codeb_sip_flows, &ngx_codeb_sip_flows_sentinel,
                    ngx_rbtree_insert_value);

    return ngx_codeb_sip_route_init_process(cycle);
}


char *
ngx_codeb_sip_transport_name(ngx_codeb_sip_transport_e t)
{
    static char  *names[] = { "UDP", "TCP", "TLS", "WS", "WSS" };

    return names[t];
}


ngx_codeb_sip_flow_t *
ngx_codeb_sip_flow_create(ngx_codeb_sip_transport_e t, ngx_log_t *log)
{
    ngx_codeb_sip_flow_t  *flow;

    flow = ngx_calloc(sizeof(ngx_codeb_sip_flow_t), log);
    if (flow == NULL) {
        return NULL;
    }

    flow->id = ++ngx_codeb_sip_flow_next;
    flow->transport = t;
    flow->log = log;
    ngx_queue_init(&flow->bindings);

    flow->node.key = (ngx_rbtree_key_t) flow->id;
    ngx_rbtree_insert(&ngx_codeb_sip_flows, &flow->node);

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, log, 0, "codeb sip: flow %uL %s",
                   flow->id, ngx_codeb_sip_transport_name(t));

    return flow;
}


ngx_codeb_sip_flow_t *
ngx_codeb_sip_flow_datagram(struct sockaddr *sockaddr, socklen_t socklen,
    ngx_log_t *log)
{
    u_char                *p;
    ngx_codeb_sip_flow_t  *flow;

    flow = ngx_calloc(sizeof(ngx_codeb_sip_flow_t) + socklen
                      + NGX_SOCKADDR_STRLEN, log);
    if (flow == NULL) {
        return NULL;
    }

    p = (u_char *) (flow + 1);

    flow->sockaddr = (struct sockaddr *) p;
    flow->socklen = socklen;
    ngx_memcpy(p, sockaddr, socklen);

    flow->addr_text.data = p + socklen;
    flow->addr_text.len = ngx_sock_ntop(sockaddr, socklen, p + socklen,
                                        NGX_SOCKADDR_STRLEN, 0);
    flow->port = ngx_inet_get_port(sockaddr);

    flow->transport = NGX_CODEB_SIP_UDP;
    flow->datagram = 1;
    flow->log = log;
    ngx_queue_init(&flow->bindings);

    return flow;
}


/* "udp:<address>:<port>": a datagram flow; NULL when not one */
static ngx_codeb_sip_flow_t *
ngx_codeb_sip_flow_udp_token(ngx_str_t *token, ngx_log_t *log)
{
    ngx_addr_t  addr;

    if (token->len <= 4 || ngx_strncmp(token->data, "udp:", 4) != 0
        || ngx_parse_addr_port(ngx_codeb_scratch(), &addr, token->data + 4,
                               token->len - 4)
           != NGX_OK
        || ngx_inet_get_port(addr.sockaddr) == 0)
    {
        return NULL;
    }

    return ngx_codeb_sip_flow_datagram(addr.sockaddr, addr.socklen, log);
}


char const *
ngx_codeb_sip_flow_host(ngx_codeb_sip_flow_t *flow)
{
    u_char             buf[NGX_SOCKADDR_STRLEN];
    ngx_str_t          host;
    ngx_connection_t  *c;

    if (flow->local.len) {
        return (char *) flow->local.data;
    }

    if (flow->transport == NGX_CODEB_SIP_WS
        || flow->transport == NGX_CODEB_SIP_WSS || flow->remote.len)
    {
        /* a remote TCP flow without its address from the binding too */
        return "codeb.invalid";
    }

    host.data = buf;
    c = flow->connection;

    if (flow->datagram) {
        if (ngx_codeb_sip_stream_local(flow->sockaddr, flow->socklen, &host,
                                       sizeof(buf) - 1)
            != NGX_OK)
        {
            return NULL;
        }

    } else {
        /* a session: the address it came to (UDP: from IP_PKTINFO) */
        if (c == NULL
            || ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK)
        {
            return NULL;
        }

        host.len = ngx_sock_ntop(c->local_sockaddr, c->local_socklen, buf,
                                 sizeof(buf) - 1, 1);
    }

    flow->local.data = ngx_alloc(host.len + 1, flow->log);
    if (flow->local.data == NULL) {
        return NULL;
    }

    *ngx_cpymem(flow->local.data, host.data, host.len) = '\0';
    flow->local.len = host.len;

    return (char *) flow->local.data;
}


/*
 * what a binding says of a remote flow: its transport ("TCP", "WSS", ...)
 * and our "<host>:<port>" on it, for Via and Contact
 */
ngx_int_t
ngx_codeb_sip_flow_describe(ngx_codeb_sip_flow_t *flow, ngx_str_t *transport,
    ngx_str_t *local)
{
    ngx_uint_t  t;

    for (t = NGX_CODEB_SIP_UDP; t <= NGX_CODEB_SIP_WSS; t++) {
        if (transport->len == ngx_strlen(ngx_codeb_sip_transport_name(t))
            && ngx_strncmp(transport->data, ngx_codeb_sip_transport_name(t),
                           transport->len) == 0)
        {
            flow->transport = t;
        }
    }

    if (local == NULL || local->len == 0 || flow->transport >= NGX_CODEB_SIP_WS
        || flow->local.len)
    {
        return NGX_OK;
    }

    flow->local.data = ngx_alloc(local->len + 1, flow->log);
    if (flow->local.data == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(flow->local.data, local->data, local->len) = '\0';
    flow->local.len = local->len;

    return NGX_OK;
}


ngx_codeb_sip_flow_t *
ngx_codeb_sip_flow_remote(ngx_str_t *token, ngx_str_t *addr, in_port_t port,
    ngx_log_t *log)
{
    u_char                *p;
    ngx_codeb_sip_flow_t  *flow;

    flow = ngx_codeb_sip_flow_udp_token(token, log);
    if (flow) {
        return flow;
    }

    flow = ngx_calloc(sizeof(ngx_codeb_sip_flow_t) + token->len + addr->len,
                      log);
    if (flow == NULL) {
        return NULL;
    }

    p = (u_char *) (flow + 1);

    flow->remote.data = p;
    flow->remote.len = token->len;
    flow->addr_text.data = ngx_cpymem(p, token->data, token->len);
    flow->addr_text.len = addr->len;
    ngx_memcpy(flow->addr_text.data, addr->data, addr->len);

    flow->port = port;
    flow->transport = NGX_CODEB_SIP_WS;
    flow->log = log;
    ngx_queue_init(&flow->bindings);

    return flow;
}


void
ngx_codeb_sip_flow_close(ngx_codeb_sip_flow_t *flow)
{
    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, flow->log, 0,
                   "codeb sip: flow %uL closed", flow->id);

    flow->closed = 1;
    flow->ws = NULL;
    flow->connection = NULL;
    /* the connection's log goes with it */
    flow->log = ngx_cycle->log;

    /* the calls ended now let the flow go: it is freed here, not there */
    flow->pending++;

    if (flow->remote.len == 0 && !flow->datagram) {
        ngx_rbtree_delete(&ngx_codeb_sip_flows, &flow->node);
        ngx_codeb_sip_unbind_flow(flow);
        ngx_codeb_sip_calls_flow_closed(flow);
        ngx_codeb_sip_flow_gone(flow);
    }

    flow->pending--;

    if (flow->pending == 0) {
        ngx_codeb_sip_flow_free(flow);
    }
}


void
ngx_codeb_sip_flow_hold(ngx_codeb_sip_flow_t *flow)
{
    flow->pending++;
}


ngx_codeb_sip_flow_t *
ngx_codeb_sip_flow_release(ngx_codeb_sip_flow_t *flow)
{
    flow->pending--;

    if (!flow->closed) {
        return flow;
    }

    if (flow->pending == 0) {
        ngx_codeb_sip_flow_free(flow);
    }

    return NULL;
}


static void
ngx_codeb_sip_flow_free(ngx_codeb_sip_flow_t *flow)
{
    if (flow->local.data) {
        ngx_free(flow->local.data);
    }

    ngx_free(flow);
}


ngx_int_t
ngx_codeb_sip_flow_send(ngx_codeb_sip_flow_t *flow, u_char *data, size_t len)
{
    ssize_t  n;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, flow->log, 0,
                   "codeb sip: flow %uL out \"%*s\"", flow->id,
                   ngx_min(len, 80), data);

    if (flow->closed) {
        return NGX_ERROR;
    }

    if (flow->deliver) {
        return flow->deliver(flow, data, len);
    }

    if (flow->remote.len) {
        return ngx_codeb_sip_flow_send_remote(flow, data, len);
    }

    switch (flow->transport) {

    case NGX_CODEB_SIP_WS:
    case NGX_CODEB_SIP_WSS:
        return ngx_codeb_ws_send(flow->ws, flow->opcode, data, len) == NGX_OK
               ? NGX_OK : NGX_ERROR;

    case NGX_CODEB_SIP_UDP:
        if (flow->datagram) {
            return ngx_codeb_sip_stream_sendto(flow->sockaddr, flow->socklen,
                                               data, len);
        }

        n = flow->connection->send(flow->connection, data, len);
        return n == (ssize_t) len ? NGX_OK : NGX_ERROR;

    default:
        return ngx_codeb_sip_stream_send(flow, data, len);
    }
}


/* "<worker id>/<flow id>": "sip-send <flow id>\n<data>" to that worker */
static ngx_int_t
ngx_codeb_sip_flow_send_remote(ngx_codeb_sip_flow_t *flow, u_char *data,
    size_t len)
{
    u_char     *slash;
    ngx_str_t   worker, msg;
    ngx_int_t   rc;

    slash = flow->remote.data + flow->remote.len;

    while (slash > flow->remote.data && slash[-1] != '/') {
        slash--;
    }

    if (slash == flow->remote.data) {
        return NGX_ERROR;
    }

    worker.data = flow->remote.data;
    worker.len = slash - 1 - flow->remote.data;

    msg.len = sizeof("sip-send \n") - 1
              + (flow->remote.data + flow->remote.len - slash) + len;
    msg.data = ngx_alloc(msg.len, flow->log);
    if (msg.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_sprintf(msg.data, "sip-send %*s\n",
                           flow->remote.data + flow->remote.len - slash,
                           slash),
               data, len);

    rc = ngx_codeb_bus_send(&worker, &msg);
    ngx_free(msg.data);

    return rc;
}


ngx_int_t
ngx_codeb_sip_flow_token(ngx_codeb_sip_flow_t *flow, ngx_pool_t *pool,
    ngx_str_t *token)
{
    ngx_str_t  *wid;

    if (flow->remote.len) {
        *token = flow->remote;
        return NGX_OK;
    }

    if (flow->transport == NGX_CODEB_SIP_UDP) {
        token->data = ngx_pnalloc(pool, 4 + NGX_SOCKADDR_STRLEN);
        if (token->data == NULL) {
            return NGX_ERROR;
        }

        token->len = 4 + ngx_sock_ntop(flow->sockaddr, flow->socklen,
                                       ngx_cpymem(token->data, "udp:", 4),
                                       NGX_SOCKADDR_STRLEN, 1);
        return NGX_OK;
    }

    wid = ngx_codeb_worker_id();

    token->data = ngx_pnalloc(pool, wid->len + 1 + NGX_INT64_LEN);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    token->len = ngx_sprintf(token->data, "%V/%uL", wid, flow->id)
                 - token->data;

    return NGX_OK;
}


static ngx_codeb_sip_flow_t *
ngx_codeb_sip_flow_find(uint64_t id)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = ngx_codeb_sip_flows.root;
    sentinel = ngx_codeb_sip_flows.sentinel;

    while (node != sentinel) {
        if ((ngx_rbtree_key_t) id == node->key) {
            return (ngx_codeb_sip_flow_t *) node;
        }

        node = ((ngx_rbtree_key_t) id < node->key) ? node->left
                                                   : node->right;
    }

    return NULL;
}


ngx_codeb_sip_flow_t *
ngx_codeb_sip_flow_by_token(ngx_str_t *token, ngx_log_t *log)
{
    u_char                *slash;
    ngx_int_t              id;
    ngx_str_t             *wid, none = ngx_null_string;
    ngx_codeb_sip_flow_t  *flow;

    flow = ngx_codeb_sip_flow_udp_token(token, log);
    if (flow) {
        return flow;
    }

    wid = ngx_codeb_worker_id();
    slash = token->data + token->len;

    while (slash > token->data && slash[-1] != '/') {
        slash--;
    }

    if (slash == token->data) {
        return NULL;
    }

    if ((size_t) (slash - 1 - token->data) == wid->len
        && ngx_strncmp(token->data, wid->data, wid->len) == 0)
    {
        id = ngx_atoi(slash, token->data + token->len - slash);
        return id == NGX_ERROR ? NULL : ngx_codeb_sip_flow_find(id);
    }

    return ngx_codeb_sip_flow_remote(token, &none, 0, log);
}


void
ngx_codeb_sip_flow_watch(ngx_codeb_sip_flow_t *flow, char const *call_id)
{
    u_char     *slash;
    ngx_str_t   worker, msg, *me;

    slash = (u_char *) ngx_strlchr(flow->remote.data,
                                   flow->remote.data + flow->remote.len, '/');
    if (slash == NULL) {
        return;
    }

    /* the worker id has no '/': the first one ends it */

    worker.data = flow->remote.data;
    worker.len = slash - flow->remote.data;
    me = ngx_codeb_worker_id();

    msg.len = sizeof("sip-watch  \n") + flow->remote.len + me->len
              + ngx_strlen(call_id);
    msg.data = ngx_pnalloc(ngx_codeb_scratch(), msg.len);
    if (msg.data == NULL) {
        return;
    }

    msg.len = ngx_sprintf(msg.data, "sip-watch %*s %V\n%s",
                          flow->remote.data + flow->remote.len - slash - 1,
                          slash + 1, me, call_id)
              - msg.data;

    (void) ngx_codeb_bus_send(&worker, &msg);
}


/* sip-watch <flow id> <worker id>\n<Call-ID> */
static void
ngx_codeb_sip_bus_watch(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t              w[3], *e, gone;
    ngx_int_t              id;
    ngx_codeb_sip_flow_t  *flow;

    if (!ngx_codeb_bus_words(header, w, 3) || body->len == 0
        || body->len > 255)
    {
        return;
    }

    id = ngx_atoi(w[1].data, w[1].len);
    flow = (id == NGX_ERROR) ? NULL : ngx_codeb_sip_flow_find(id);

    if (flow == NULL) {
        /* closed already */
        gone.len = sizeof("sip-gone\n") - 1 + body->len;
        gone.data = ngx_pnalloc(ngx_codeb_scratch(), gone.len);

        if (gone.data) {
            ngx_memcpy(ngx_cpymem(gone.data, "sip-gone\n", 9), body->data,
                       body->len);
            (void) ngx_codeb_bus_send(&w[2], &gone);
        }

        return;
    }

    if (flow->watchers == NULL) {
        flow->watchers = ngx_array_create(ngx_cycle->pool, 2,
                                          sizeof(ngx_str_t));
        if (flow->watchers == NULL) {
            return;
        }
    }

    e = ngx_array_push(flow->watchers);
    if (e == NULL) {
        return;
    }

    /* "<worker> <Call-ID>" */

    e->len = w[2].len + 1 + body->len;
    e->data = ngx_alloc(e->len, ngx_cycle->log);

    if (e->data == NULL) {
        flow->watchers->nelts--;
        return;
    }

    ngx_sprintf(e->data, "%V %V", &w[2], body);
}


/* the flow closed: those who watch it hear it; the list is freed */
static void
ngx_codeb_sip_flow_gone(ngx_codeb_sip_flow_t *flow)
{
    u_char      *sp;
    ngx_str_t   *e, worker, msg;
    ngx_uint_t   i;

    if (flow->watchers == NULL) {
        return;
    }

    e = flow->watchers->elts;

    for (i = 0; i < flow->watchers->nelts; i++) {
        sp = ngx_strlchr(e[i].data, e[i].data + e[i].len, ' ');

        if (sp) {
            worker.data = e[i].data;
            worker.len = sp - e[i].data;

            msg.len = sizeof("sip-gone\n") - 1 + e[i].len - worker.len - 1;
            msg.data = ngx_pnalloc(ngx_codeb_scratch(), msg.len);

            if (msg.data) {
                ngx_memcpy(ngx_cpymem(msg.data, "sip-gone\n", 9), sp + 1,
                           e[i].len - worker.len - 1);
                (void) ngx_codeb_bus_send(&worker, &msg);
            }
        }

        ngx_free(e[i].data);
    }

    /* the array itself is in the cycle pool: left to it */
    flow->watchers = NULL;
}


/* sip-gone\n<Call-ID>: the remote flow of a leg of ours closed */
static void
ngx_codeb_sip_bus_gone(ngx_str_t *header, ngx_str_t *body)
{
    u_char                id[256];
    ngx_codeb_sip_leg_t  *leg;

    if (body->len == 0 || body->len >= sizeof(id)) {
        return;
    }

    *ngx_cpymem(id, body->data, body->len) = '\0';

    leg = ngx_codeb_sip_leg_find((char *) id);

    if (leg && !leg->call->done && leg->state != NGX_CODEB_SIP_LEG_DONE) {
        ngx_codeb_sip_call_lost(leg->call, leg);
    }
}


/* sip-send <flow id>\n<message>: to a flow of this worker */
static void
ngx_codeb_sip_bus_send(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t              w[2];
    ngx_int_t              id;
    ngx_codeb_sip_flow_t  *flow;

    if (!ngx_codeb_bus_words(header, w, 2)) {
        return;
    }

    id = ngx_atoi(w[1].data, w[1].len);
    flow = (id == NGX_ERROR) ? NULL : ngx_codeb_sip_flow_find(id);

    if (flow) {
        (void) ngx_codeb_sip_flow_send(flow, body->data, body->len);
    }
}

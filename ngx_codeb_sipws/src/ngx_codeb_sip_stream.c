/*
 * ngx_codeb_sip_stream_module: SIP over UDP and TCP (RFC 3261 §18) in a
 * stream{} server with `codeb_sip;`, for trunks and hardphones.  A UDP
 * peer is one stream session (nginx keeps one per source address), each
 * datagram one message; a TCP connection is framed by the empty line and
 * Content-Length (§18.3).  Needs Debian's ngx_stream_module.so loaded
 * first.
 */

#include "ngx_codeb_sip.h"
#include <ngx_stream.h>


#define NGX_CODEB_SIP_UDP_IDLE    180000    /* ms a silent UDP peer is kept */
#define NGX_CODEB_SIP_TCP_IDLE    600000    /* ms for a silent TCP peer */
#define NGX_CODEB_SIP_OUT_MAX     262144    /* bytes queued for TCP */


typedef struct {
    ngx_flag_t                  enable;
} ngx_codeb_sip_stream_srv_conf_t;


/* a UDP listener of a codeb_sip server */
typedef struct {
    struct sockaddr            *sockaddr;
    socklen_t                   socklen;
    in_port_t                   port;
    ngx_uint_t                  wildcard;
    ngx_listening_t            *ls;          /* this worker's socket; its
                                                fd is -1 once closed */
} ngx_codeb_sip_udp_listen_t;


typedef struct {
    ngx_array_t                 udp;         /* ngx_codeb_sip_udp_listen_t */
} ngx_codeb_sip_stream_main_conf_t;


static void ngx_codeb_sip_stream_handler(ngx_stream_session_t *s);
static void ngx_codeb_sip_stream_read(ngx_event_t *rev);
static void ngx_codeb_sip_stream_write(ngx_event_t *wev);
static ngx_int_t ngx_codeb_sip_stream_frames(ngx_codeb_sip_flow_t *flow);
static ngx_int_t ngx_codeb_sip_stream_length(u_char *p, u_char *end);
static void ngx_codeb_sip_stream_done(ngx_codeb_sip_flow_t *flow);
static ngx_codeb_sip_udp_listen_t *ngx_codeb_sip_stream_udp(
    struct sockaddr *to);
static ngx_socket_t ngx_codeb_sip_stream_fd(struct sockaddr *to);
static ngx_int_t ngx_codeb_sip_stream_init(ngx_conf_t *cf);
static ngx_int_t ngx_codeb_sip_stream_init_process(ngx_cycle_t *cycle);
static void *ngx_codeb_sip_stream_create_main_conf(ngx_conf_t *cf);
static void *ngx_codeb_sip_stream_create_srv_conf(ngx_conf_t *cf);
static char *ngx_codeb_sip_stream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_codeb_sip_stream_commands[] = {

    /* codeb_sip; -- SIP over the UDP or TCP listeners of this server */
    { ngx_string("codeb_sip"),
      NGX_STREAM_SRV_CONF|NGX_CONF_NOARGS,
      ngx_codeb_sip_stream,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_codeb_sip_stream_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_codeb_sip_stream_init,             /* postconfiguration */

    ngx_codeb_sip_stream_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_codeb_sip_stream_create_srv_conf,  /* create server configuration */
    NULL                                   /* merge server configuration */
};


ngx_module_t  ngx_codeb_sip_stream_module = {
    NGX_MODULE_V1,
    &ngx_codeb_sip_stream_module_ctx,      /* module context */
    ngx_codeb_sip_stream_commands,         /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_codeb_sip_stream_init_process,     /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void
ngx_codeb_sip_stream_handler(ngx_stream_session_t *s)
{
    ngx_connection_t      *c;
    ngx_codeb_sip_flow_t  *flow;

    c = s->connection;

    flow = ngx_codeb_sip_flow_create(c->type == SOCK_DGRAM
                                     ? NGX_CODEB_SIP_UDP : NGX_CODEB_SIP_TCP,
                                     c->log);
    if (flow == NULL) {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }

    flow->session = s;
    flow->connection = c;
    flow->sockaddr = c->sockaddr;
    flow->socklen = c->socklen;
    flow->addr_text = c->addr_text;
    flow->port = ngx_inet_get_port(c->sockaddr);

    c->data = flow;
    c->log->action = "exchanging SIP messages";
    c->read->handler = ngx_codeb_sip_stream_read;
    c->write->handler = ngx_codeb_sip_stream_write;

    if (flow->transport == NGX_CODEB_SIP_UDP) {
        /*
         * a worker that shuts down closes UDP sessions at once (its
         * listening socket is gone, nothing more can arrive)
         */
        c->idle = 1;

        /* nginx put the session's first datagram in c->buffer */
        if (c->buffer && c->buffer->last > c->buffer->pos) {
            ngx_codeb_sip_receive(flow, c->buffer->pos,
                                  c->buffer->last - c->buffer->pos);
            ngx_codeb_scratch_reset();
            c->buffer->pos = c->buffer->last;
        }

        if (flow->closed) {
            return;
        }

        ngx_add_timer(c->read, NGX_CODEB_SIP_UDP_IDLE);
        return;
    }

    flow->in = ngx_create_temp_buf(c->pool, NGX_CODEB_SIP_MAX_MESSAGE + 1);
    if (flow->in == NULL) {
        ngx_codeb_sip_stream_done(flow);
        return;
    }

    ngx_codeb_sip_stream_read(c->read);
}


static void
ngx_codeb_sip_stream_read(ngx_event_t *rev)
{
    u_char                 buf[NGX_CODEB_SIP_MAX_MESSAGE + 1];
    ssize_t                n;
    ngx_buf_t             *b;
    ngx_connection_t      *c;
    ngx_codeb_sip_flow_t  *flow;

    c = rev->data;
    flow = c->data;

    if (c->close) {
        ngx_codeb_sip_stream_done(flow);
        return;
    }

    if (rev->timedout) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "codeb sip: flow %uL idle, closed", flow->id);
        ngx_codeb_sip_stream_done(flow);
        return;
    }

    for ( ;; ) {
        if (flow->transport == NGX_CODEB_SIP_UDP) {
            /* one datagram, one message; a larger one is cut and dropped */
            n = c->recv(c, buf, sizeof(buf));

            if (n > 0) {
                ngx_codeb_sip_receive(flow, buf, (size_t) n);
                ngx_codeb_scratch_reset();

                if (flow->closed || c->close) {
                    break;
                }

                continue;
            }

        } else {
            b = flow->in;
            n = c->recv(c, b->last, b->end - b->last);

            if (n > 0) {
                b->last += n;

                if (ngx_codeb_sip_stream_frames(flow) != NGX_OK) {
                    ngx_codeb_sip_stream_done(flow);
                    return;
                }

                continue;
            }
        }

        if (n == NGX_AGAIN) {
            break;
        }

        /* EOF or an error */
        ngx_codeb_sip_stream_done(flow);
        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_codeb_sip_stream_done(flow);
        return;
    }

    ngx_add_timer(rev, flow->transport == NGX_CODEB_SIP_UDP
                       ? NGX_CODEB_SIP_UDP_IDLE : NGX_CODEB_SIP_TCP_IDLE);
}


/*
 * the whole messages in flow->in (RFC 3261 §18.3: the end of the headers,
 * then Content-Length bytes); an incomplete one stays.  NGX_ERROR: the
 * stream cannot be framed (no Content-Length, too large): closed
 */
static ngx_int_t
ngx_codeb_sip_stream_frames(ngx_codeb_sip_flow_t *flow)
{
    u_char     *end;
    size_t      head, total;
    ngx_int_t   body;
    ngx_buf_t  *b;

    b = flow->in;

    while (b->pos < b->last) {

        /* CRLF keepalives between messages (RFC 5626 §3.5.1) */

        if (b->last - b->pos >= 4 && ngx_strncmp(b->pos, "\r\n\r\n", 4) == 0)
        {
            ngx_codeb_sip_receive(flow, b->pos, 4);
            b->pos += 4;
            continue;
        }

        if (*b->pos == '\r' || *b->pos == '\n') {
            b->pos++;
            continue;
        }

        end = ngx_strlcasestrn(b->pos, b->last, (u_char *) "\r\n\r\n", 3);
        if (end == NULL) {
            if (b->last - b->pos > NGX_CODEB_SIP_MAX_HEADERS) {
                return NGX_ERROR;
            }
            break;
        }

        head = end + 4 - b->pos;
        body = ngx_codeb_sip_stream_length(b->pos, end);

        if (body < 0 || head + body > NGX_CODEB_SIP_MAX_MESSAGE) {
            return NGX_ERROR;
        }

        total = head + body;

        if ((size_t) (b->last - b->pos) < total) {
            break;
        }

        ngx_codeb_sip_receive(flow, b->pos, total);
        ngx_codeb_scratch_reset();
        b->pos += total;

        if (flow->closed) {
            return NGX_ERROR;
        }
    }

    /* what is left moves to the start of the buffer */

    if (b->pos == b->last) {
        b->pos = b->start;
        b->last = b->start;

    } else if (b->pos != b->start) {
        b->last = ngx_movemem(b->start, b->pos, b->last - b->pos);
        b->pos = b->start;
    }

    return b->last < b->end ? NGX_OK : NGX_ERROR;
}


/*
 * the value of Content-Length (or its compact form "l") in the headers
 * [p, end); 0 when there is none; NGX_ERROR when it is not a number
 */
static ngx_int_t
ngx_codeb_sip_stream_length(u_char *p, u_char *end)
{
    u_char     *eol, *v;
    ngx_int_t   n;

    for ( /* void */ ; p < end; p = eol + 1) {
        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        if (eol - p > 15
            && ngx_strncasecmp(p, (u_char *) "Content-Length", 14) == 0)
        {
            v = p + 14;

        } else if (eol - p > 2 && (p[0] == 'l' || p[0] == 'L')) {
            v = p + 1;

        } else {
            continue;
        }

        while (v < eol && (*v == ' ' || *v == '\t')) {
            v++;
        }

        if (v == eol || *v++ != ':') {
            continue;
        }

        while (v < eol && (*v == ' ' || *v == '\t')) {
            v++;
        }

        for (n = 0; v < eol && *v >= '0' && *v <= '9'; v++) {
            if (n > NGX_CODEB_SIP_MAX_MESSAGE) {
                return NGX_ERROR;
            }

            n = n * 10 + (*v - '0');
        }

        while (v < eol && (*v == ' ' || *v == '\t' || *v == '\r')) {
            v++;
        }

        return v == eol ? n : NGX_ERROR;
    }

    return 0;
}


ngx_int_t
ngx_codeb_sip_stream_send(ngx_codeb_sip_flow_t *flow, u_char *data,
    size_t len)
{
    u_char            *p;
    size_t             size;
    ssize_t            n;
    ngx_connection_t  *c;

    c = flow->connection;
    n = 0;

    if (flow->out_len == 0) {
        n = c->send(c, data, len);

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN) {
            n = 0;
        }

        if ((size_t) n == len) {
            return NGX_OK;
        }
    }

    /* the rest waits for the socket, at most NGX_CODEB_SIP_OUT_MAX */

    if (flow->out_len + len - n > NGX_CODEB_SIP_OUT_MAX) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "codeb sip: TCP peer reads too slowly, closing");
        c->close = 1;
        ngx_post_event(c->read, &ngx_posted_events);
        return NGX_ERROR;
    }

    if (flow->out_len + len - n > flow->out_size) {
        size = ngx_max(flow->out_size * 2, flow->out_len + len - n);

        p = ngx_alloc(size, c->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (flow->out) {
            ngx_memcpy(p, flow->out, flow->out_len);
            ngx_free(flow->out);
        }

        flow->out = p;
        flow->out_size = size;
    }

    ngx_memcpy(flow->out + flow->out_len, data + n, len - n);
    flow->out_len += len - n;

    return ngx_handle_write_event(c->write, 0) == NGX_OK ? NGX_OK : NGX_ERROR;
}


static void
ngx_codeb_sip_stream_write(ngx_event_t *wev)
{
    ssize_t                n;
    ngx_connection_t      *c;
    ngx_codeb_sip_flow_t  *flow;

    c = wev->data;
    flow = c->data;

    if (flow->out_len == 0) {
        return;
    }

    n = c->send(c, flow->out, flow->out_len);

    if (n == NGX_ERROR) {
        ngx_codeb_sip_stream_done(flow);
        return;
    }

    if (n > 0) {
        flow->out_len -= n;
        ngx_memmove(flow->out, flow->out + n, flow->out_len);
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        ngx_codeb_sip_stream_done(flow);
    }
}


/* the session ends; the flow goes (its bindings with it) */
static void
ngx_codeb_sip_stream_done(ngx_codeb_sip_flow_t *flow)
{
    ngx_stream_session_t  *s;

    s = flow->session;

    /* flow->in is in the connection's pool */
    flow->in = NULL;

    if (flow->out) {
        ngx_free(flow->out);
        flow->out = NULL;
        flow->out_len = 0;
    }

    ngx_codeb_sip_flow_close(flow);

    ngx_stream_finalize_session(s, NGX_STREAM_OK);
}


/*
 * Sends a datagram to "to" from this worker's UDP listener of a codeb_sip
 * server (so that answers come back to it): the one of the same address
 * family, the first configured; while the worker shuts down, from a port
 * of its own.  NGX_ERROR: no such listener, or sendto() failed (logged)
 */
ngx_int_t
ngx_codeb_sip_stream_sendto(struct sockaddr *to, socklen_t tolen,
    u_char *data, size_t len)
{
    ssize_t       n;
    ngx_socket_t  fd;

    fd = ngx_codeb_sip_stream_fd(to);
    if (fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "codeb sip: no UDP listener with codeb_sip to send "
                      "from");
        return NGX_ERROR;
    }

    n = sendto(fd, data, len, 0, to, tolen);

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, ngx_socket_errno,
                      "codeb sip: sendto() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "<address>:<port>" (IPv6 in brackets) under which "to" reaches the UDP
 * listener that ngx_codeb_sip_stream_sendto() sends from; for a wildcard
 * listener the address is the one the kernel routes to "to" from
 * (connect() of a UDP socket sends nothing).  NGX_ERROR: none
 */
ngx_int_t
ngx_codeb_sip_stream_local(struct sockaddr *to, socklen_t tolen,
    ngx_str_t *host, size_t size)
{
    ngx_socket_t                 s;
    ngx_sockaddr_t               sa;
    socklen_t                    len;
    ngx_codeb_sip_udp_listen_t  *u;

    u = ngx_codeb_sip_stream_udp(to);
    if (u == NULL) {
        return NGX_ERROR;
    }

    len = u->socklen;
    ngx_memcpy(&sa, u->sockaddr, len);

    if (u->wildcard) {
        s = ngx_socket(to->sa_family, SOCK_DGRAM, 0);
        if (s == (ngx_socket_t) -1) {
            return NGX_ERROR;
        }

        len = sizeof(ngx_sockaddr_t);

        if (connect(s, to, tolen) == -1
            || getsockname(s, &sa.sockaddr, &len) == -1)
        {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, ngx_socket_errno,
                          "codeb sip: no local address towards a peer");
            (void) ngx_close_socket(s);
            return NGX_ERROR;
        }

        (void) ngx_close_socket(s);
        ngx_inet_set_port(&sa.sockaddr, u->port);
    }

    host->len = ngx_sock_ntop(&sa.sockaddr, len, host->data, size, 1);

    return host->len ? NGX_OK : NGX_ERROR;
}


static ngx_codeb_sip_udp_listen_t *
ngx_codeb_sip_stream_udp(struct sockaddr *to)
{
    ngx_uint_t                         i;
    ngx_codeb_sip_udp_listen_t        *u;
    ngx_codeb_sip_stream_main_conf_t  *smcf;

    smcf = ngx_stream_cycle_get_module_main_conf(ngx_cycle,
                                                 ngx_codeb_sip_stream_module);
    if (smcf == NULL) {
        return NULL;
    }

    u = smcf->udp.elts;

    for (i = 0; i < smcf->udp.nelts; i++) {
        if (u[i].ls && u[i].sockaddr->sa_family == to->sa_family) {
            return &u[i];
        }
    }

    return NULL;
}


/*
 * the socket to send to "to" from: the listener's; once the worker shuts
 * down (its listeners are closed) a socket of its own on an ephemeral
 * port, so that the calls it still has can end.  -1: none
 */
static ngx_socket_t
ngx_codeb_sip_stream_fd(struct sockaddr *to)
{
    ngx_codeb_sip_udp_listen_t  *u;
    static ngx_socket_t          own[2] = { -1, -1 };
    ngx_uint_t                   v6;

    u = ngx_codeb_sip_stream_udp(to);
    if (u == NULL) {
        return (ngx_socket_t) -1;
    }

    if (u->ls->fd != (ngx_socket_t) -1) {
        return u->ls->fd;
    }

    v6 = (to->sa_family != AF_INET);

    if (own[v6] == (ngx_socket_t) -1) {
        own[v6] = ngx_socket(to->sa_family, SOCK_DGRAM, 0);
    }

    return own[v6];
}


/* the UDP listeners of codeb_sip servers (all servers are read now) */
static ngx_int_t
ngx_codeb_sip_stream_init(ngx_conf_t *cf)
{
    ngx_uint_t                         i;
    ngx_stream_listen_t               *ls;
    ngx_codeb_sip_udp_listen_t        *u;
    ngx_stream_core_main_conf_t       *cmcf;
    ngx_codeb_sip_stream_srv_conf_t   *sscf;
    ngx_codeb_sip_stream_main_conf_t  *smcf;

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);
    smcf = ngx_stream_conf_get_module_main_conf(cf,
                                                ngx_codeb_sip_stream_module);
    ls = cmcf->listen.elts;

    for (i = 0; i < cmcf->listen.nelts; i++) {
        sscf = ls[i].ctx->srv_conf[ngx_codeb_sip_stream_module.ctx_index];

        if (!sscf->enable || ls[i].type != SOCK_DGRAM) {
            continue;
        }

        if (!ls[i].reuseport) {
            /*
             * one socket read by every worker: a request sent again may
             * reach another worker than its transaction's
             */
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "codeb_sip: \"listen %V udp\" without "
                               "\"reuseport\": a peer's retransmissions "
                               "may reach another worker than its call",
                               &ls[i].addr_text);
        }

        u = ngx_array_push(&smcf->udp);
        if (u == NULL) {
            return NGX_ERROR;
        }

        u->sockaddr = ls[i].sockaddr;
        u->socklen = ls[i].socklen;
        u->port = ngx_inet_get_port(ls[i].sockaddr);
        u->wildcard = ls[i].wildcard;
        u->ls = NULL;
    }

    return NGX_OK;
}


/* this worker's socket of each UDP listener (reuseport: its own copy) */
static ngx_int_t
ngx_codeb_sip_stream_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i, j;
    ngx_listening_t                   *ls;
    ngx_codeb_sip_udp_listen_t        *u;
    ngx_codeb_sip_stream_main_conf_t  *smcf;

    smcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                 ngx_codeb_sip_stream_module);
    if (smcf == NULL) {
        return NGX_OK;
    }

    u = smcf->udp.elts;
    ls = cycle->listening.elts;

    for (i = 0; i < smcf->udp.nelts; i++) {
        for (j = 0; j < cycle->listening.nelts; j++) {
            if (ls[j].type == SOCK_DGRAM && ls[j].fd != (ngx_socket_t) -1
                && (!ls[j].reuseport || ls[j].worker == ngx_worker)
                && ngx_cmp_sockaddr(ls[j].sockaddr, ls[j].socklen,
                                    u[i].sockaddr, u[i].socklen, 1)
                   == NGX_OK)
            {
                u[i].ls = &ls[j];
                break;
            }
        }
    }

    return NGX_OK;
}


static void *
ngx_codeb_sip_stream_create_main_conf(ngx_conf_t *cf)
{
    ngx_codeb_sip_stream_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_sip_stream_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&smcf->udp, cf->pool, 2,
                       sizeof(ngx_codeb_sip_udp_listen_t))
        != NGX_OK)
    {
        return NULL;
    }

    return smcf;
}


static void *
ngx_codeb_sip_stream_create_srv_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_codeb_sip_stream_srv_conf_t));
}


static char *
ngx_codeb_sip_stream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_sip_stream_srv_conf_t  *sscf = conf;

    ngx_stream_core_srv_conf_t  *cscf;

    if (sscf->enable) {
        return "is duplicate";
    }

    if (ngx_codeb_require_redis(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    sscf->enable = 1;

    cscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_core_module);
    cscf->handler = ngx_codeb_sip_stream_handler;

    return NGX_CONF_OK;
}

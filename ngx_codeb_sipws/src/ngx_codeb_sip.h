/*
 * ngx_codeb_sipws: SIP over WebSocket (RFC 7118) and SIP over UDP/TCP for
 * trunks and hardphones (docs/sip.md).
 *
 * One shared object with two modules: ngx_codeb_sipws_module (http: the
 * WebSocket transport, the tenants' SIP settings in their server{}) and
 * ngx_codeb_sip_stream_module (stream: UDP and TCP on 5060).  SIP messages
 * are parsed and built with sofia-sip's message library (msg_t, sip_t);
 * transactions, registrar and routing are ours and run on the worker's
 * event loop.
 *
 * Files: _module.c http directives, tenants, the WebSocket handler;
 * _stream.c the stream module; _flow.c connections and sending;
 * _msg.c parsing, checks and building of messages; _core.c what a
 * received message leads to; _digest.c digest authentication (RFC 7616,
 * RFC 8760); _registrar.c REGISTER and bindings; _scripts.c Lua scripts.
 */

#ifndef _NGX_CODEB_SIP_H_INCLUDED_
#define _NGX_CODEB_SIP_H_INCLUDED_


#include <ngx_codeb_core.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>


#define NGX_CODEB_SIP_MAX_MESSAGE   65535    /* bytes of one SIP message */
#define NGX_CODEB_SIP_MAX_HEADERS   16384    /* bytes before the body */


typedef enum {
    NGX_CODEB_SIP_UDP = 0,
    NGX_CODEB_SIP_TCP,
    NGX_CODEB_SIP_TLS,
    NGX_CODEB_SIP_WS,
    NGX_CODEB_SIP_WSS
} ngx_codeb_sip_transport_e;


/* a user of a tenant: codeb_sip_user, or a line of codeb_sip_users_file */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   password;    /* empty: only ha1_md5 */
    u_char                      ha1_md5[32]; /* hex MD5(user:realm:pw) */
} ngx_codeb_sip_user_t;


/* codeb_sip_acl allow|deny <cidr> */
typedef struct {
    ngx_cidr_t                  cidr;
    ngx_uint_t                  deny;
} ngx_codeb_sip_acl_t;


/* a tenant's SIP settings (http server{} of the tenant) */
typedef struct {
    ngx_codeb_tenant_t         *tenant;      /* ngx_codeb_core's settings */
    ngx_str_t                   realm;       /* default: the tenant name */
    ngx_array_t                *users;       /* ngx_codeb_sip_user_t */
    ngx_array_t                *acl;         /* ngx_codeb_sip_acl_t */
    time_t                      expires_min; /* s */
    time_t                      expires_max;
    time_t                      expires_default;
    time_t                      nonce_ttl;   /* s */
} ngx_codeb_sip_srv_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_codeb_ws_conf_t         ws;
} ngx_codeb_sip_loc_conf_t;


typedef struct {
    ngx_array_t                 tenants;     /* ngx_codeb_sip_srv_conf_t * */
} ngx_codeb_sip_main_conf_t;


/* a transport connection: a WebSocket, a TCP connection, a UDP peer */
typedef struct ngx_codeb_sip_flow_s  ngx_codeb_sip_flow_t;

struct ngx_codeb_sip_flow_s {
    ngx_rbtree_node_t           node;        /* key: id, in the worker's tree */
    uint64_t                    id;
    ngx_codeb_sip_transport_e   transport;
    ngx_codeb_sip_srv_conf_t   *sip;         /* the tenant, when known */
    ngx_log_t                  *log;

    ngx_codeb_ws_t             *ws;          /* WS, WSS */
    ngx_connection_t           *connection;  /* TCP, UDP */
    ngx_uint_t                  opcode;      /* WS: the client's last one */

    struct sockaddr            *sockaddr;    /* the peer */
    socklen_t                   socklen;
    ngx_str_t                   addr_text;   /* "ip" */
    in_port_t                   port;

    void                       *session;     /* TCP, UDP: the stream one */
    ngx_buf_t                  *in;          /* TCP: an incomplete message */
    u_char                     *out;         /* TCP: bytes not yet sent */
    size_t                      out_len;
    size_t                      out_size;

    ngx_queue_t                 bindings;    /* registered through it */
    ngx_uint_t                  pending;     /* Redis replies awaited */
    unsigned                    closed:1;
};


/* _module.c */
extern ngx_module_t  ngx_codeb_sipws_module;

/* _stream.c: sends on a TCP flow (queued while the socket is full) */
ngx_int_t ngx_codeb_sip_stream_send(ngx_codeb_sip_flow_t *flow, u_char *data,
    size_t len);
/* the tenant whose realm or name is host, NULL if none */
ngx_codeb_sip_srv_conf_t *ngx_codeb_sip_tenant_by_host(ngx_str_t *host);

/* _flow.c */
ngx_codeb_sip_flow_t *ngx_codeb_sip_flow_create(ngx_codeb_sip_transport_e t,
    ngx_log_t *log);
/* the connection is gone: bindings through it are removed */
void ngx_codeb_sip_flow_close(ngx_codeb_sip_flow_t *flow);
/* a flow that is not freed while replies for it are due */
void ngx_codeb_sip_flow_hold(ngx_codeb_sip_flow_t *flow);
/* the reply came; NULL when the flow closed meanwhile (it is freed) */
ngx_codeb_sip_flow_t *ngx_codeb_sip_flow_release(ngx_codeb_sip_flow_t *flow);
/* sends one whole message; NGX_ERROR: the flow cannot take it */
ngx_int_t ngx_codeb_sip_flow_send(ngx_codeb_sip_flow_t *flow, u_char *data,
    size_t len);
/* "<worker id>/<flow id>" of this flow, from pool */
ngx_int_t ngx_codeb_sip_flow_token(ngx_codeb_sip_flow_t *flow,
    ngx_pool_t *pool, ngx_str_t *token);
/* "WS", "WSS", "UDP", "TCP", "TLS" */
char *ngx_codeb_sip_transport_name(ngx_codeb_sip_transport_e t);
ngx_int_t ngx_codeb_sip_flow_init(ngx_conf_t *cf);
void ngx_codeb_sip_flow_init_process(void);

/* _msg.c */
/*
 * Parses one message received on flow.  NGX_OK: *msg is a request or a
 * response with the mandatory headers (RFC 3261 §8.1.1, §20) and a body
 * that matches its Content-Length; NGX_DECLINED: malformed, answered 400
 * when a response could be made, else dropped; NGX_ERROR: no memory.
 */
ngx_int_t ngx_codeb_sip_parse(ngx_codeb_sip_flow_t *flow, u_char *data,
    size_t len, msg_t **msg);
/* a response to req: Via, From, To (with to_tag), Call-ID, CSeq copied */
msg_t *ngx_codeb_sip_response(msg_t *req, int status, char const *phrase,
    char const *to_tag);
/* Content-Length set to the body, serialized, sent on flow; msg freed */
ngx_int_t ngx_codeb_sip_send(ngx_codeb_sip_flow_t *flow, msg_t *msg);
/* a response to req sent on flow (no body) */
ngx_int_t ngx_codeb_sip_reply(ngx_codeb_sip_flow_t *flow, msg_t *req,
    int status, char const *phrase);
/* the tag this server puts in To of its responses to req */
char const *ngx_codeb_sip_local_tag(msg_t *req);

/* _core.c */
void ngx_codeb_sip_receive(ngx_codeb_sip_flow_t *flow, u_char *data,
    size_t len);
/* 1 when flow's peer may send REGISTER and INVITE (codeb_sip_acl) */
ngx_uint_t ngx_codeb_sip_acl_allows(ngx_codeb_sip_srv_conf_t *sip,
    ngx_codeb_sip_flow_t *flow);

/* _digest.c */
/*
 * Checks the Authorization of req against the tenant's users (RFC 7616
 * with qop=auth, MD5 or SHA-256 as RFC 8760 names them).  NGX_OK: *user
 * is set; NGX_DECLINED: no or wrong credentials (answer with a
 * challenge); NGX_AGAIN: the nonce check runs in Redis, done(flow, req,
 * user or NULL) follows; NGX_ERROR.
 */
typedef void (*ngx_codeb_sip_auth_pt)(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_codeb_sip_user_t *user);
ngx_int_t ngx_codeb_sip_digest_check(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_codeb_sip_auth_pt done);
/* 401 with WWW-Authenticate challenges (SHA-256, then MD5) and a nonce */
ngx_int_t ngx_codeb_sip_digest_challenge(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_uint_t stale);

/* _registrar.c */
void ngx_codeb_sip_register(ngx_codeb_sip_flow_t *flow, msg_t *req);
/* removes the bindings made through flow (its connection closed) */
void ngx_codeb_sip_unbind_flow(ngx_codeb_sip_flow_t *flow);

/* _scripts.c */
extern ngx_codeb_redis_script_t  ngx_codeb_sip_nonce_script;
extern ngx_codeb_redis_script_t  ngx_codeb_sip_bind_script;
extern ngx_codeb_redis_script_t  ngx_codeb_sip_unbind_script;
ngx_int_t ngx_codeb_sip_scripts_init(ngx_conf_t *cf);


#endif /* _NGX_CODEB_SIP_H_INCLUDED_ */

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
    ngx_str_t                   password;    /* empty: only the HA1s */
    u_char                      ha1_md5[32]; /* hex MD5(user:realm:pw) */
    u_char                      ha1_sha256[64];  /* hex SHA-256 of it */
    unsigned                    sha256:1;    /* ha1_sha256 is known */
} ngx_codeb_sip_user_t;


/* codeb_sip_acl allow|deny <cidr> */
typedef struct {
    ngx_cidr_t                  cidr;
    ngx_uint_t                  deny;
} ngx_codeb_sip_acl_t;


typedef struct ngx_codeb_sip_flow_s  ngx_codeb_sip_flow_t;
typedef struct ngx_codeb_sip_srv_conf_s  ngx_codeb_sip_srv_conf_t;


/* codeb_sip_trunk: a SIP trunk of a tenant (_trunk.c) */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   host;        /* as configured; never shown */
    ngx_addr_t                  addr;        /* resolved at configuration */
    ngx_str_t                   domain;      /* host of its URIs */
    ngx_array_t                *prefixes;    /* ngx_str_t: numbers it takes */
    ngx_str_t                   username;    /* digest of INVITE, REGISTER */
    ngx_str_t                   password;
    time_t                      expires;     /* s, of its registration */
    ngx_int_t                   max_inbound; /* calls at a time; -1: any */
    ngx_int_t                   max_outbound;
    ngx_int_t                   max_total;
    ngx_codeb_sip_srv_conf_t   *sip;
    ngx_codeb_sip_flow_t       *flow;        /* this worker's, to addr */
    unsigned                    reg:1;       /* register=on */
    struct ngx_codeb_sip_trunk_reg_s  *registration;  /* _trunk_reg.c */
} ngx_codeb_sip_trunk_t;


/* a tenant's SIP settings (http server{} of the tenant) */
struct ngx_codeb_sip_srv_conf_s {
    ngx_codeb_tenant_t         *tenant;      /* ngx_codeb_core's settings */
    ngx_str_t                   realm;       /* default: the tenant name */
    ngx_array_t                *users;       /* ngx_codeb_sip_user_t */
    ngx_array_t                *acl;         /* ngx_codeb_sip_acl_t */
    time_t                      expires_min; /* s */
    time_t                      expires_max;
    time_t                      expires_default;
    time_t                      nonce_ttl;   /* s */
    ngx_array_t                *trunks;      /* ngx_codeb_sip_trunk_t */
    ngx_flag_t                  ws;          /* a codeb_sip_ws location */
};


typedef struct {
    ngx_flag_t                  enable;
    ngx_codeb_ws_conf_t         ws;
} ngx_codeb_sip_loc_conf_t;


typedef struct {
    ngx_array_t                 tenants;     /* ngx_codeb_sip_srv_conf_t * */
    ngx_array_t                 trunks;      /* ngx_codeb_sip_trunk_t *, of
                                                every tenant */
    ngx_addr_t                 *media;       /* codeb_sip_media: NG */
} ngx_codeb_sip_main_conf_t;


/* a transport connection: a WebSocket, a TCP connection, a UDP peer */
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

    ngx_str_t                   remote;      /* a flow of another worker:
                                                its token */
    ngx_array_t                *watchers;    /* ngx_str_t: "<worker>
                                                <leg Call-ID>", heap */

    ngx_str_t                   local;       /* "<host>:<port>" of ours
                                                for Via and Contact, heap */
    ngx_queue_t                 bindings;    /* registered through it */
    ngx_uint_t                  pending;     /* Redis replies awaited */
    /* a flow inside this worker (_originate.c): what is sent on it */
    ngx_int_t                 (*deliver)(ngx_codeb_sip_flow_t *flow,
                                         u_char *data, size_t len);
    void                       *deliver_data;
    unsigned                    closed:1;
    unsigned                    datagram:1;  /* UDP to sockaddr from our
                                                listener, not a session */
};


/* _retrans.c: a message of ours sent again over UDP (RFC 3261 §17) */
typedef struct ngx_codeb_sip_retrans_s  ngx_codeb_sip_retrans_t;

struct ngx_codeb_sip_retrans_s {
    ngx_event_t                 timer;
    ngx_codeb_sip_flow_t       *flow;
    u_char                     *data;        /* the message, heap */
    size_t                      len;
    ngx_msec_t                  interval;    /* ms until the next sending */
    ngx_msec_t                  elapsed;     /* ms since the first one */
    void                      (*timeout)(ngx_codeb_sip_retrans_t *rt);
    void                       *owner;       /* the leg */
    unsigned                    invite:1;    /* of an INVITE transaction */
    unsigned                    answer:1;    /* a response of ours */
};


/* _ng.c: the NG client (docs/ng.md) */

typedef struct {
    u_char                     *start;
    u_char                     *pos;
    u_char                     *end;
    ngx_uint_t                  overflow;
} ngx_codeb_benc_t;

/* the members of an NG reply; valid during the handler only */
typedef struct {
    ngx_str_t                   result;      /* "ok", "pong", "error" */
    ngx_str_t                   error;       /* error-reason */
    ngx_str_t                   sdp;
    ngx_int_t                   duration;    /* ms; -1: none */
} ngx_codeb_sip_ng_reply_t;

typedef struct ngx_codeb_sip_ng_s  ngx_codeb_sip_ng_t;

/* reply NULL: no answer within 4 s, or not a dictionary */
typedef void (*ngx_codeb_sip_ng_pt)(void *data,
    ngx_codeb_sip_ng_reply_t *reply);


/* a call (docs/sip.md "Calls"): we are a back-to-back user agent */

typedef enum {
    NGX_CODEB_SIP_LEG_CALLING = 0,   /* INVITE under way, no answer */
    NGX_CODEB_SIP_LEG_EARLY,         /* a provisional answer came */
    NGX_CODEB_SIP_LEG_CONFIRMED,     /* 2xx and ACK */
    NGX_CODEB_SIP_LEG_DONE           /* final answer or BYE */
} ngx_codeb_sip_leg_state_e;

typedef struct ngx_codeb_sip_call_s  ngx_codeb_sip_call_t;
typedef struct ngx_codeb_sip_relay_s  ngx_codeb_sip_relay_t;
typedef struct ngx_codeb_sip_transfer_s  ngx_codeb_sip_transfer_t;
typedef struct ngx_codeb_sip_origin_s  ngx_codeb_sip_origin_t;

/* _lines.c: rc NGX_OK, NGX_DECLINED (a sibling), NGX_BUSY, NGX_ERROR */
typedef void (*ngx_codeb_sip_admit_pt)(ngx_codeb_sip_call_t *call,
    ngx_int_t rc);

/* one dialog of a call: the caller's (a), or one per callee binding (b) */
typedef struct {
    ngx_str_node_t              sn;          /* by Call-ID, in the worker */
    ngx_queue_t                 queue;       /* in call->b */
    ngx_codeb_sip_call_t       *call;
    ngx_codeb_sip_leg_state_e   state;
    ngx_codeb_sip_flow_t       *flow;        /* the party's transport */
    msg_t                      *invite;      /* a: received; b: sent */
    char const                 *call_id;
    char const                 *local_tag;
    char const                 *remote_tag;
    char const                 *local_uri;   /* our From / To URI */
    char const                 *remote_uri;
    char const                 *local_display;   /* b: the caller's name */
    char const                 *remote_display;  /* a: the caller's name */
    url_t                      *target;      /* the party's Contact */
    char const                 *branch;      /* b: our INVITE's branch */
    char const                 *key;         /* in the worker's table, when
                                                not call_id: a sibling's
                                                "<Call-ID>;<branch>" */
    uint32_t                    cseq;        /* our last CSeq */
    ngx_codeb_sip_retrans_t     rt_invite;   /* a: our final answer; b: our
                                                INVITE */
    ngx_codeb_sip_retrans_t     rt_request;  /* our BYE or CANCEL */
    unsigned                    linked:1;
    unsigned                    authorized:1;    /* b: a challenge answered */
    unsigned                    transfer:1;  /* b: to a transfer target */
    unsigned                    bye_pending:1;   /* BYE after the NOTIFY */
    unsigned                    own_flow:1;  /* a remote flow of the leg */
} ngx_codeb_sip_leg_t;

struct ngx_codeb_sip_call_s {
    su_home_t                  *home;
    ngx_codeb_sip_srv_conf_t   *sip;
    ngx_log_t                  *log;
    ngx_codeb_sip_leg_t         a;
    ngx_queue_t                 b;
    ngx_codeb_sip_leg_t        *answered;    /* the callee that answered */
    ngx_codeb_sip_leg_t        *party[2];    /* the two sides: the caller's
                                                (a) and the answered, until
                                                a transfer replaces one */
    ngx_codeb_sip_transfer_t   *transfer;    /* a REFER under way */
    ngx_codeb_sip_origin_t     *origin;      /* placed by the platform */
    ngx_codeb_sip_ng_t         *ng;          /* NG request under way */
    ngx_event_t                 timer;       /* no answer in time */
    int                         best;        /* best final status of b */
    char const                 *best_phrase;
    char const                 *callee;      /* the user or number called */
    ngx_codeb_sip_trunk_t      *trunk;       /* of a call from or to one */
    ngx_codeb_sip_admit_pt      admit;       /* the trunk's answer */
    ngx_codeb_sip_relay_t      *relay;       /* a request being relayed */
    char const                 *offer;       /* the callees' SDP, in home */
    size_t                      offer_len;
    ngx_str_t                  *bindings;    /* JSON, in home */
    ngx_uint_t                  nbindings;
    uint64_t                    start_ms;    /* epoch ms, of the INVITE */
    uint64_t                    answer_ms;   /* of our 200; 0: none */
    int                         status;      /* our final answer to a */
    char                       *hangup;      /* "caller", "callee", NULL */
    unsigned                    media:1;     /* the daemon knows the call */
    unsigned                    outbound:1;  /* to call->trunk */
    unsigned                    held:1;      /* kept at 180, rings no one */
    unsigned                    redis:1;     /* a Redis reply is due */
    unsigned                    counted:1;   /* holds a line of the trunk */
    unsigned                    recorded:1;  /* its CDR is written */
    unsigned                    alive:1;     /* counted as not over */
    unsigned                    b_plain:1;   /* callees speak plain RTP */
    unsigned                    cancelled:1;
    unsigned                    done:1;
};

/* _module.c */
extern ngx_module_t  ngx_codeb_sipws_module;

/* _stream.c: sends on a TCP flow (queued while the socket is full) */
ngx_int_t ngx_codeb_sip_stream_send(ngx_codeb_sip_flow_t *flow, u_char *data,
    size_t len);
ngx_int_t ngx_codeb_sip_stream_sendto(struct sockaddr *to, socklen_t tolen,
    u_char *data, size_t len);
ngx_int_t ngx_codeb_sip_stream_local(struct sockaddr *to, socklen_t tolen,
    ngx_str_t *host, size_t size);
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
/*
 * a UDP peer reached from our listener, whatever worker reads its
 * datagrams (RFC 3261 §18.2.2: responses go to the source); its token is
 * "udp:<address>:<port>"; sockaddr is copied
 */
ngx_codeb_sip_flow_t *ngx_codeb_sip_flow_datagram(struct sockaddr *sockaddr,
    socklen_t socklen, ngx_log_t *log);
/*
 * "<host>:<port>" that the peer of flow reaches us at, for Via sent-by
 * and Contact; "codeb.invalid" on WebSockets (RFC 7118 §5.2); NULL: none
 */
char const *ngx_codeb_sip_flow_host(ngx_codeb_sip_flow_t *flow);
/*
 * a flow held by another worker, named by its token: what is sent on it
 * goes over the bus; a "udp:" token gives a datagram flow; token and addr
 * are copied
 */
ngx_codeb_sip_flow_t *ngx_codeb_sip_flow_remote(ngx_str_t *token,
    ngx_str_t *addr, in_port_t port, ngx_log_t *log);
/*
 * the flow a binding names ("<worker id>/<flow id>"): this worker's own
 * (NULL when it closed), else a remote flow to be freed by its user
 */
ngx_codeb_sip_flow_t *ngx_codeb_sip_flow_by_token(ngx_str_t *token,
    ngx_log_t *log);
/*
 * the owner of leg wants to know when the remote flow of that leg closes
 * ("sip-watch" to the flow's worker, "sip-gone" back)
 */
void ngx_codeb_sip_flow_watch(ngx_codeb_sip_flow_t *flow, char const *call_id);
/* a remote flow's transport and our address on it, from its binding */
ngx_int_t ngx_codeb_sip_flow_describe(ngx_codeb_sip_flow_t *flow,
    ngx_str_t *transport, ngx_str_t *local);
/* "WS", "WSS", "UDP", "TCP", "TLS" */
char *ngx_codeb_sip_transport_name(ngx_codeb_sip_transport_e t);
ngx_int_t ngx_codeb_sip_flow_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_sip_flow_init_process(ngx_cycle_t *cycle);

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
/* Content-Type type and the body data in msg; NGX_ERROR: msg is freed */
ngx_int_t ngx_codeb_sip_set_body(msg_t *msg, char const *type, u_char *data,
    size_t len);
/*
 * Content-Length set to the body, serialized into text (valid while msg
 * lives); NGX_ERROR: msg freed
 */
ngx_int_t ngx_codeb_sip_serialize(msg_t *msg, ngx_str_t *text);
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
/*
 * 401 with WWW-Authenticate (REGISTER) or 407 with Proxy-Authenticate
 * (other requests): challenges for SHA-256, then MD5, with a new nonce
 */
ngx_int_t ngx_codeb_sip_digest_challenge(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_uint_t stale);
/*
 * The client side: Authorization (401) or Proxy-Authorization (407) in
 * req, a request of ours, for the challenges of the response challenge
 * (RFC 7616 qop=auth, or RFC 2069 without qop; SHA-256 before MD5, RFC
 * 8760).  NGX_OK; NGX_DECLINED: nothing this client can answer;
 * NGX_ERROR: no memory.  req is then sent with a new CSeq.
 */
ngx_int_t ngx_codeb_sip_digest_authorize(msg_t *req, msg_t *challenge,
    ngx_str_t *username, ngx_str_t *password);

/* _call.c */
/* an INVITE without To tag: a new call (from trunk, when not NULL) */
void ngx_codeb_sip_invite(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_codeb_sip_trunk_t *trunk);
/* a request in a dialog of a call of this worker; NGX_DECLINED: none */
ngx_int_t ngx_codeb_sip_call_request(ngx_codeb_sip_flow_t *flow,
    msg_t *req);
/* a response to a request of ours */
void ngx_codeb_sip_call_response(ngx_codeb_sip_flow_t *flow, msg_t *rsp);
/*
 * a call of req (an INVITE received on flow, or made by _originate.c) to
 * callee; sibling: its Call-ID is another call's.  NULL: no memory
 */
ngx_codeb_sip_call_t *ngx_codeb_sip_call_create(ngx_codeb_sip_flow_t *flow,
    msg_t *req, ngx_codeb_sip_srv_conf_t *sip, char const *callee,
    ngx_uint_t sibling);
/* call->trunk asked for a line, then the media offer and the INVITE */
void ngx_codeb_sip_call_out(ngx_codeb_sip_call_t *call);

/* _originate.c: calls placed by the platform (ngx_codeb_originate_t) */
void ngx_codeb_sip_originate_init_process(void);
/* the trunk answered the call's INVITE (status: 1xx to 6xx) */
void ngx_codeb_sip_originate_progress(ngx_codeb_sip_call_t *call,
    int status);
/* the call is over (once, from ngx_codeb_sip_call_idle()) */
void ngx_codeb_sip_originate_over(ngx_codeb_sip_call_t *call);
void ngx_codeb_sip_call_init_process(void);
/* a call starts (1) or ends (-1); a worker that shuts down waits for its */
void ngx_codeb_sip_calls_count(ngx_int_t delta);
/* a flow closed: the calls with a leg on it end as if that party hung up */
void ngx_codeb_sip_calls_flow_closed(ngx_codeb_sip_flow_t *flow);
/* the leg of Call-ID id in this worker, or NULL */
ngx_codeb_sip_leg_t *ngx_codeb_sip_leg_find(char const *id);
/* the leg a request is for: a held sibling's (Call-ID and branch) first */
ngx_codeb_sip_leg_t *ngx_codeb_sip_leg_find_req(msg_t *req);
void ngx_codeb_sip_leg_link(ngx_codeb_sip_leg_t *leg);
/* out of the worker's table; its flow let go */
void ngx_codeb_sip_leg_unlink(ngx_codeb_sip_leg_t *leg);
void ngx_codeb_sip_call_free(ngx_codeb_sip_call_t *call);

/* _retrans.c */
/*
 * sends msg on flow, its bytes kept in rt; arm: sent again over UDP until
 * ngx_codeb_sip_retrans_stop() or 64*T1, when rt->timeout(rt) is called
 */
ngx_int_t ngx_codeb_sip_send_kept(ngx_codeb_sip_flow_t *flow, msg_t *msg,
    ngx_codeb_sip_retrans_t *rt, ngx_uint_t arm);
/* a provisional answer to a non-INVITE request: every T2 from now on */
void ngx_codeb_sip_retrans_slow(ngx_codeb_sip_retrans_t *rt);
void ngx_codeb_sip_retrans_stop(ngx_codeb_sip_retrans_t *rt);
/* the kept message sent once more */
void ngx_codeb_sip_retrans_again(ngx_codeb_sip_retrans_t *rt);
void ngx_codeb_sip_retrans_free(ngx_codeb_sip_retrans_t *rt);

/* _leg.c */
/* our Contact on flow: "<sip:codeb@<host>;transport=<t>>"; NULL: none */
char *ngx_codeb_sip_contact(ngx_codeb_sip_flow_t *flow, su_home_t *home);
/* a request of ours in leg's dialog: INVITE, ACK, BYE, CANCEL */
msg_t *ngx_codeb_sip_leg_request(ngx_codeb_sip_leg_t *leg,
    sip_method_t method, char const *name, uint32_t cseq, char const *branch);
/* sends msg on leg; rt: kept and retransmitted over UDP (NULL: not) */
ngx_int_t ngx_codeb_sip_leg_send(ngx_codeb_sip_leg_t *leg, msg_t *msg,
    ngx_codeb_sip_retrans_t *rt);
/* the leg's retransmissions report their timeouts to it */
void ngx_codeb_sip_leg_retrans_init(ngx_codeb_sip_leg_t *leg);
/* rt->timeout of the legs' retransmissions (timers B, F, H) */
void ngx_codeb_sip_leg_timeout(ngx_codeb_sip_retrans_t *rt);
/* ACK of leg's 2xx rsp (a new branch) */
void ngx_codeb_sip_leg_ack(ngx_codeb_sip_leg_t *leg, msg_t *rsp);
/* BYE on a confirmed leg */
void ngx_codeb_sip_leg_bye(ngx_codeb_sip_leg_t *leg);
/* our INVITE on leg, with sdp (NULL: none) and credentials (challenge) */
ngx_int_t ngx_codeb_sip_leg_invite(ngx_codeb_sip_leg_t *leg, ngx_str_t *sdp,
    msg_t *challenge);
/* a callee leg of user for one binding; any_kind: whatever it speaks */
ngx_codeb_sip_leg_t *ngx_codeb_sip_leg_create(ngx_codeb_sip_call_t *call,
    ngx_str_t *binding, char const *user, ngx_uint_t any_kind);
/* a callee leg failed with status; the last one ends the call */
void ngx_codeb_sip_leg_over(ngx_codeb_sip_leg_t *leg, int status,
    char const *phrase);
/*
 * A callee leg of call on flow, to remote_uri at target (a Contact);
 * own: the leg frees flow, else holds it.  NULL: no memory, flow let go
 */
ngx_codeb_sip_leg_t *ngx_codeb_sip_leg_new(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_flow_t *flow, ngx_uint_t own, char const *remote_uri,
    char const *target);
/* 1 when a binding (its JSON members) speaks plain RTP, not WebRTC */
ngx_uint_t ngx_codeb_sip_binding_plain(ngx_array_t *m);
/*
 * the callee's bindings (JSON values of P reg:<user>) kept by the call;
 * call->b_plain: none of them is a browser's
 */
ngx_int_t ngx_codeb_sip_call_bindings(ngx_codeb_sip_call_t *call,
    redisReply *rep);
/* the callee legs, one INVITE per binding, with the SDP for them */
ngx_int_t ngx_codeb_sip_fork(ngx_codeb_sip_call_t *call, ngx_str_t *sdp);
/* CANCEL every b-leg that has no final answer, but keep */
void ngx_codeb_sip_cancel_others(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_leg_t *keep);

/* _dialog.c */
/*
 * the call ends: a caller without a final answer gets status (non-2xx),
 * the callees are cancelled, the media deleted; freed when idle
 */
void ngx_codeb_sip_call_end(ngx_codeb_sip_call_t *call, int status,
    char const *phrase);
/* one side hung up (from; NULL: we end it): BYE to the other, media gone */
void ngx_codeb_sip_hangup(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_leg_t *from);
/* the call is freed when done and no answer is due, or after a while */
void ngx_codeb_sip_call_idle(ngx_codeb_sip_call_t *call);
/* the transport of leg is gone: the call ends as if it hung up */
void ngx_codeb_sip_call_lost(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_leg_t *leg);

/* _relay.c */
/*
 * a re-INVITE, UPDATE or INFO on leg of an answered call, relayed to the
 * other party; NGX_DECLINED: not one to relay (req is not taken)
 */
ngx_int_t ngx_codeb_sip_relay_request(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_leg_t *leg, msg_t *req);
/* NGX_OK: rsp answered our relayed request on leg (it is taken) */
ngx_int_t ngx_codeb_sip_relay_response(ngx_codeb_sip_leg_t *leg, msg_t *rsp);
/* NGX_OK: our relayed request on leg got no answer (408 to the asker) */
ngx_int_t ngx_codeb_sip_relay_timeout(ngx_codeb_sip_leg_t *leg);
void ngx_codeb_sip_relay_free(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_relay_t *relay);

/* _transfer.c: blind transfer (REFER) */
void ngx_codeb_sip_transfer_request(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_leg_t *leg, msg_t *req);
/* a target's 2xx (with its offer), not yet ACKed */
void ngx_codeb_sip_transfer_answered(ngx_codeb_sip_leg_t *leg, msg_t *rsp);
/* a target's 2xx again: our ACK again once sent */
void ngx_codeb_sip_transfer_ack_again(ngx_codeb_sip_leg_t *leg);
/* a target leg failed with status */
void ngx_codeb_sip_transfer_failed(ngx_codeb_sip_leg_t *leg, int status,
    char const *phrase);
/* NGX_OK: rsp answered our re-INVITE of a transfer on leg (taken) */
ngx_int_t ngx_codeb_sip_transfer_response(ngx_codeb_sip_leg_t *leg,
    msg_t *rsp);
/* leg answered our final NOTIFY: BYE when due */
void ngx_codeb_sip_transfer_notified(ngx_codeb_sip_leg_t *leg);
void ngx_codeb_sip_transfer_free(ngx_codeb_sip_call_t *call);

/* _media.c: NG, the media of the call (offer, answer, delete) */
ngx_int_t ngx_codeb_sip_media(ngx_codeb_sip_call_t *call, char *command,
    ngx_str_t *sdp, ngx_codeb_sip_ng_pt handler, ngx_uint_t reverse);

/* _registrar.c */
void ngx_codeb_sip_register(ngx_codeb_sip_flow_t *flow, msg_t *req);
/* removes the bindings made through flow (its connection closed) */
void ngx_codeb_sip_unbind_flow(ngx_codeb_sip_flow_t *flow);

/* _trunk_reg.c: trunk registration, one worker of all per trunk */
typedef struct ngx_codeb_sip_trunk_reg_s  ngx_codeb_sip_trunk_reg_t;
/* after ngx_codeb_sip_trunks_init_process() */
ngx_int_t ngx_codeb_sip_trunk_reg_init_process(ngx_cycle_t *cycle,
    ngx_codeb_sip_main_conf_t *smcf);
/* the locks this worker holds let go (best effort) */
void ngx_codeb_sip_trunk_reg_exit_process(ngx_cycle_t *cycle);
/* a response whose CSeq method is REGISTER (it is freed) */
void ngx_codeb_sip_trunk_reg_response(ngx_codeb_sip_flow_t *flow,
    msg_t *rsp);
/*
 * a message came from trunk's address: its last seen time in P trunks
 * (at most one write per 10 s per trunk and worker)
 */
void ngx_codeb_sip_trunk_seen(ngx_codeb_sip_trunk_t *trunk);

/* _ng.c */
void ngx_codeb_benc_init(ngx_codeb_benc_t *b, u_char *buf, size_t size);
/* a string; d (dictionary) / l (list) open, close ends either */
void ngx_codeb_benc_str(ngx_codeb_benc_t *b, u_char *s, size_t len);
void ngx_codeb_benc_cstr(ngx_codeb_benc_t *b, char *s);
void ngx_codeb_benc_open(ngx_codeb_benc_t *b, u_char type);
void ngx_codeb_benc_close(ngx_codeb_benc_t *b);
/* sends the request in b; NULL: it could not be sent */
ngx_codeb_sip_ng_t *ngx_codeb_sip_ng_request(ngx_codeb_benc_t *b,
    ngx_codeb_sip_ng_pt handler, void *data, ngx_log_t *log);
void ngx_codeb_sip_ng_cancel(ngx_codeb_sip_ng_t *ng);
ngx_int_t ngx_codeb_sip_ng_init_process(ngx_cycle_t *cycle, ngx_addr_t *addr);
void ngx_codeb_sip_ng_exit_process(void);

/* _route.c: which worker a message belongs to */
ngx_int_t ngx_codeb_sip_route_init(ngx_conf_t *cf);
ngx_int_t ngx_codeb_sip_route_init_process(ngx_cycle_t *cycle);
/* "<prefix>cb<hex worker id>-<2n random hex>" from home; NULL: no memory */
char *ngx_codeb_sip_make_id(su_home_t *home, char *prefix, size_t n);
/*
 * NGX_DECLINED: msg is for this worker; NGX_OK: handed to the worker its
 * Via branch (a response) or To tag (a request) names, or dropped
 */
ngx_int_t ngx_codeb_sip_route(ngx_codeb_sip_flow_t *flow, msg_t *msg,
    u_char *data, size_t len);

/* _trunk.c */
char *ngx_codeb_sip_trunk_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_codeb_sip_trunks_init_process(ngx_codeb_sip_main_conf_t *smcf);
void ngx_codeb_sip_trunks_exit_process(ngx_codeb_sip_main_conf_t *smcf);
/* the trunk whose address and port are sockaddr; NULL: none */
ngx_codeb_sip_trunk_t *ngx_codeb_sip_trunk_by_addr(struct sockaddr *sockaddr,
    socklen_t socklen);
/* the callee leg of an outbound call, to its trunk; NULL: no memory */
ngx_codeb_sip_leg_t *ngx_codeb_sip_trunk_leg(ngx_codeb_sip_call_t *call);
/* the trunk a call to number goes out through (longest prefix); NULL */
ngx_codeb_sip_trunk_t *ngx_codeb_sip_trunk_for(ngx_codeb_sip_srv_conf_t *sip,
    char const *number);

/* _lines.c */
extern ngx_codeb_redis_script_t  ngx_codeb_sip_admit_script;
/*
 * may call go through its trunk (limits; inbound: siblings)?  NGX_OK: at
 * once; NGX_AGAIN: done(call, rc) follows; NGX_ERROR: no Redis
 */
ngx_int_t ngx_codeb_sip_trunk_admit(ngx_codeb_sip_call_t *call,
    ngx_codeb_sip_admit_pt done);
/* the call's line is free again */
void ngx_codeb_sip_trunk_release(ngx_codeb_sip_call_t *call);

/* _cdr.c */
extern ngx_codeb_redis_script_t  ngx_codeb_sip_cdr_script;
/* the call's record in P cdrs, once, when it is over */
void ngx_codeb_sip_cdr(ngx_codeb_sip_call_t *call);

/* _scripts.c */
extern ngx_codeb_redis_script_t  ngx_codeb_sip_nonce_script;
extern ngx_codeb_redis_script_t  ngx_codeb_sip_bind_script;
extern ngx_codeb_redis_script_t  ngx_codeb_sip_unbind_script;
ngx_int_t ngx_codeb_sip_scripts_init(ngx_conf_t *cf);


#endif /* _NGX_CODEB_SIP_H_INCLUDED_ */

/*
 * The NG client (docs/ng.md): requests to codeb-mediad, or to an
 * rtpengine, over UDP from each worker's own socket.  A request is
 * "<cookie> <bencoded dictionary>" (BEP 3); it is sent again after 1 s
 * and 2 s while unanswered (the daemon caches replies by cookie, so a
 * request runs once), and its handler gets the reply's top-level
 * dictionary, or NULL after 4 s without one.  Cookies are
 * "<16 random hex of the process>.<n>": no two workers, hosts or restarts
 * share one, since the daemon would answer a cookie it knows from cache.
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_NG_RETRY        1000     /* ms */
#define NGX_CODEB_NG_TRIES        3
#define NGX_CODEB_NG_WAIT         4000     /* ms in all */
#define NGX_CODEB_NG_MAX          65535    /* bytes of a datagram */


struct ngx_codeb_sip_ng_s {
    ngx_rbtree_node_t           node;        /* key: cookie number */
    ngx_event_t                 timer;
    ngx_codeb_sip_ng_pt         handler;
    void                       *data;
    ngx_uint_t                  tries;
    ngx_msec_t                  started;
    size_t                      len;
    u_char                      datagram[];
};


static void ngx_codeb_sip_ng_read(ngx_event_t *rev);
static void ngx_codeb_sip_ng_timer(ngx_event_t *ev);
static void ngx_codeb_sip_ng_done(ngx_codeb_sip_ng_t *ng,
    ngx_codeb_sip_ng_reply_t *reply);
static u_char *ngx_codeb_benc_skip(u_char *p, u_char *last, ngx_uint_t depth);
static u_char *ngx_codeb_benc_string(u_char *p, u_char *last, ngx_str_t *s);


static ngx_connection_t  *ngx_codeb_sip_ng_conn;
static ngx_rbtree_t       ngx_codeb_sip_ng_tree;
static ngx_rbtree_node_t  ngx_codeb_sip_ng_sentinel;
static uint64_t           ngx_codeb_sip_ng_cookie;
static u_char             ngx_codeb_sip_ng_prefix[16];


/* ---- the bencoded request ---- */

void
ngx_codeb_benc_init(ngx_codeb_benc_t *b, u_char *buf, size_t size)
{
    b->start = buf;
    b->pos = buf;
    b->end = buf + size;
    b->overflow = 0;
}


static void
ngx_codeb_benc_raw(ngx_codeb_benc_t *b, u_char *data, size_t len)
{
    if ((size_t) (b->end - b->pos) < len) {
        b->overflow = 1;
        return;
    }

    b->pos = ngx_cpymem(b->pos, data, len);
}


void
ngx_codeb_benc_str(ngx_codeb_benc_t *b, u_char *s, size_t len)
{
    u_char  num[NGX_SIZE_T_LEN + 1];

    ngx_codeb_benc_raw(b, num, ngx_sprintf(num, "%uz:", len) - num);
    ngx_codeb_benc_raw(b, s, len);
}


void
ngx_codeb_benc_cstr(ngx_codeb_benc_t *b, char *s)
{
    ngx_codeb_benc_str(b, (u_char *) s, ngx_strlen(s));
}


void
ngx_codeb_benc_open(ngx_codeb_benc_t *b, u_char type)
{
    ngx_codeb_benc_raw(b, &type, 1);
}


void
ngx_codeb_benc_close(ngx_codeb_benc_t *b)
{
    ngx_codeb_benc_raw(b, (u_char *) "e", 1);
}


/* ---- the reply ---- */

/* one value at p (string, integer, list or dictionary); NULL if broken */
static u_char *
ngx_codeb_benc_skip(u_char *p, u_char *last, ngx_uint_t depth)
{
    ngx_str_t  s;

    if (p >= last || depth > 16) {
        return NULL;
    }

    switch (*p) {

    case 'i':
        p = ngx_strlchr(p, last, 'e');
        return p ? p + 1 : NULL;

    case 'l':
    case 'd':
        p++;

        while (p < last && *p != 'e') {
            p = ngx_codeb_benc_skip(p, last, depth + 1);
            if (p == NULL) {
                return NULL;
            }
        }

        return p < last ? p + 1 : NULL;

    default:
        return ngx_codeb_benc_string(p, last, &s);
    }
}


/* "<length>:<bytes>" at p into s; NULL if it is not one */
static u_char *
ngx_codeb_benc_string(u_char *p, u_char *last, ngx_str_t *s)
{
    u_char     *colon;
    ngx_int_t   n;

    colon = ngx_strlchr(p, last, ':');
    if (colon == NULL || colon == p || colon - p > 5) {
        return NULL;
    }

    n = ngx_atoi(p, colon - p);
    if (n == NGX_ERROR || n > last - colon - 1) {
        return NULL;
    }

    s->data = colon + 1;
    s->len = n;

    return colon + 1 + n;
}


/* "i<digits>e" at p into *v (0 to 2^31); the byte after it, or NULL */
static u_char *
ngx_codeb_sip_ng_int(u_char *p, u_char *last, ngx_int_t *v)
{
    u_char  *q;

    for (q = ++p; q < last && *q >= '0' && *q <= '9'; q++) {
        if (q - p > 9) {
            return NULL;
        }
    }

    if (q == p || q >= last || *q != 'e') {
        return NULL;
    }

    *v = ngx_atoi(p, q - p);

    return *v == NGX_ERROR ? NULL : q + 1;
}


/*
 * The members of the top-level dictionary the handlers need: the strings
 * result, error-reason, sdp and the integer duration (ms, "play media";
 * -1 when absent).  NGX_ERROR: not a dictionary.
 */
static ngx_int_t
ngx_codeb_sip_ng_parse(u_char *p, u_char *last,
    ngx_codeb_sip_ng_reply_t *reply)
{
    u_char     *next;
    ngx_str_t   key, value;

    ngx_memzero(reply, sizeof(ngx_codeb_sip_ng_reply_t));
    reply->duration = -1;

    if (p >= last || *p++ != 'd') {
        return NGX_ERROR;
    }

    while (p < last && *p != 'e') {
        p = ngx_codeb_benc_string(p, last, &key);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (p < last && *p >= '0' && *p <= '9') {
            next = ngx_codeb_benc_string(p, last, &value);

            if (next && key.len == 6 && ngx_strncmp(key.data, "result", 6)
                                        == 0)
            {
                reply->result = value;

            } else if (next && key.len == 12
                       && ngx_strncmp(key.data, "error-reason", 12) == 0)
            {
                reply->error = value;

            } else if (next && key.len == 3
                       && ngx_strncmp(key.data, "sdp", 3) == 0)
            {
                reply->sdp = value;
            }

        } else if (p < last && *p == 'i' && key.len == 8
                   && ngx_strncmp(key.data, "duration", 8) == 0)
        {
            next = ngx_codeb_sip_ng_int(p, last, &reply->duration);

        } else {
            next = ngx_codeb_benc_skip(p, last, 1);
        }

        if (next == NULL) {
            return NGX_ERROR;
        }

        p = next;
    }

    return reply->result.len ? NGX_OK : NGX_ERROR;
}


/* ---- the client ---- */

ngx_int_t
ngx_codeb_sip_ng_init_process(ngx_cycle_t *cycle, ngx_addr_t *addr)
{
    ngx_socket_t       s;
    ngx_connection_t  *c;

    ngx_rbtree_init(&ngx_codeb_sip_ng_tree, &ngx_codeb_sip_ng_sentinel,
                    ngx_rbtree_insert_value);

    if (ngx_codeb_random_hex(ngx_codeb_sip_ng_prefix, 8) != NGX_OK) {
        return NGX_ERROR;
    }

    s = ngx_socket(addr->sockaddr->sa_family, SOCK_DGRAM, 0);
    if (s == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "codeb sip: NG socket failed");
        return NGX_ERROR;
    }

    if (ngx_nonblocking(s) == -1
        || connect(s, addr->sockaddr, addr->socklen) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "codeb sip: NG socket to %V failed", &addr->name);
        ngx_close_socket(s);
        return NGX_ERROR;
    }

    c = ngx_get_connection(s, cycle->log);
    if (c == NULL) {
        ngx_close_socket(s);
        return NGX_ERROR;
    }

    c->recv = ngx_udp_recv;
    c->send = ngx_send;
    c->read->handler = ngx_codeb_sip_ng_read;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->type = SOCK_DGRAM;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_free_connection(c);
        ngx_close_socket(s);
        return NGX_ERROR;
    }

    ngx_codeb_sip_ng_conn = c;

    return NGX_OK;
}


void
ngx_codeb_sip_ng_exit_process(void)
{
    if (ngx_codeb_sip_ng_conn) {
        ngx_close_connection(ngx_codeb_sip_ng_conn);
        ngx_codeb_sip_ng_conn = NULL;
    }
}


ngx_codeb_sip_ng_t *
ngx_codeb_sip_ng_request(ngx_codeb_benc_t *b, ngx_codeb_sip_ng_pt handler,
    void *data, ngx_log_t *log)
{
    u_char              *p;
    ngx_codeb_sip_ng_t  *ng;

    if (b->overflow || ngx_codeb_sip_ng_conn == NULL) {
        return NULL;
    }

    ng = ngx_alloc(sizeof(ngx_codeb_sip_ng_t) + sizeof(ngx_codeb_sip_ng_prefix)
                   + NGX_INT64_LEN + 2 + (b->pos - b->start), log);
    if (ng == NULL) {
        return NULL;
    }

    ngx_memzero(ng, sizeof(ngx_codeb_sip_ng_t));

    ng->node.key = (ngx_rbtree_key_t) ++ngx_codeb_sip_ng_cookie;
    ng->handler = handler;
    ng->data = data;
    ng->started = ngx_current_msec;

    p = ngx_sprintf(ng->datagram, "%*s.%uL ",
                    sizeof(ngx_codeb_sip_ng_prefix), ngx_codeb_sip_ng_prefix,
                    (uint64_t) ng->node.key);
    p = ngx_cpymem(p, b->start, b->pos - b->start);
    ng->len = p - ng->datagram;

    ng->timer.handler = ngx_codeb_sip_ng_timer;
    ng->timer.data = ng;
    ng->timer.log = log;
    ng->timer.cancelable = 1;

    ngx_rbtree_insert(&ngx_codeb_sip_ng_tree, &ng->node);

    ngx_codeb_sip_ng_timer(&ng->timer);

    return ng;
}


/* the caller no longer wants the reply (its call is gone) */
void
ngx_codeb_sip_ng_cancel(ngx_codeb_sip_ng_t *ng)
{
    ng->handler = NULL;
}


static void
ngx_codeb_sip_ng_timer(ngx_event_t *ev)
{
    ngx_codeb_sip_ng_t  *ng = ev->data;

    if (ng->tries == NGX_CODEB_NG_TRIES) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "codeb sip: the media daemon did not answer in %M ms",
                      ngx_current_msec - ng->started);
        ngx_codeb_sip_ng_done(ng, NULL);
        return;
    }

    ng->tries++;

    (void) ngx_codeb_sip_ng_conn->send(ngx_codeb_sip_ng_conn, ng->datagram,
                                       ng->len);

    ngx_add_timer(ev, ng->tries == NGX_CODEB_NG_TRIES
                      ? NGX_CODEB_NG_WAIT - (NGX_CODEB_NG_TRIES - 1)
                                            * NGX_CODEB_NG_RETRY
                      : NGX_CODEB_NG_RETRY);
}


static void
ngx_codeb_sip_ng_read(ngx_event_t *rev)
{
    u_char                     buf[NGX_CODEB_NG_MAX], *sp, *last;
    ssize_t                    n;
    ngx_int_t                  cookie;
    ngx_connection_t          *c;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_codeb_sip_ng_reply_t   reply;

    c = rev->data;

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN || n == NGX_ERROR) {
            /* ECONNREFUSED of an absent daemon: the timers handle it */
            return;
        }

        last = buf + n;
        sp = ngx_strlchr(buf, last, ' ');
        cookie = NGX_ERROR;

        if (sp && sp - buf > (ssize_t) sizeof(ngx_codeb_sip_ng_prefix) + 1
            && ngx_strncmp(buf, ngx_codeb_sip_ng_prefix,
                           sizeof(ngx_codeb_sip_ng_prefix)) == 0
            && buf[sizeof(ngx_codeb_sip_ng_prefix)] == '.')
        {
            cookie = ngx_atoi(buf + sizeof(ngx_codeb_sip_ng_prefix) + 1,
                              sp - buf - sizeof(ngx_codeb_sip_ng_prefix) - 1);
        }

        if (cookie == NGX_ERROR) {
            continue;
        }

        node = ngx_codeb_sip_ng_tree.root;
        sentinel = ngx_codeb_sip_ng_tree.sentinel;

        while (node != sentinel && node->key != (ngx_rbtree_key_t) cookie) {
            node = ((ngx_rbtree_key_t) cookie < node->key) ? node->left
                                                            : node->right;
        }

        if (node == sentinel) {
            /* a late or repeated reply */
            continue;
        }

        ngx_codeb_sip_ng_done((ngx_codeb_sip_ng_t *) node,
                              ngx_codeb_sip_ng_parse(sp + 1, last, &reply)
                              == NGX_OK ? &reply : NULL);
        ngx_codeb_scratch_reset();
    }
}


static void
ngx_codeb_sip_ng_done(ngx_codeb_sip_ng_t *ng, ngx_codeb_sip_ng_reply_t *reply)
{
    if (ng->timer.timer_set) {
        ngx_del_timer(&ng->timer);
    }

    ngx_rbtree_delete(&ngx_codeb_sip_ng_tree, &ng->node);

    if (ng->handler) {
        ng->handler(ng->data, reply);
    }

    ngx_free(ng);
}

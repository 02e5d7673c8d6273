/*
 * Per-worker Redis links driven by the nginx event loop: hiredis async
 * contexts whose sockets are wrapped in nginx connections (level-triggered
 * events, since hiredis reads once per call).  Two links: commands, and a
 * subscriber on this worker's bus channel.  hiredis 0.14 has no timers, so
 * connect and reply timeouts are one nginx timer (codeb_redis_timeout).  A
 * failure of either link drops both; they come back with exponential
 * back-off (100 ms .. 5 s), scripts are loaded again, the channel is
 * subscribed again, the "up" handlers run and the requests waiting for
 * the links go on.  `error_log ... debug` traces every state change.
 */

#include "ngx_codeb_core.h"
#include <sys/ioctl.h>


#define NGX_CODEB_REDIS_BACKOFF_MIN  100
#define NGX_CODEB_REDIS_BACKOFF_MAX  5000
#define NGX_CODEB_REDIS_TICK         500
#define NGX_CODEB_REDIS_READS        64     /* x 16 KB per read event */


typedef struct {
    redisAsyncContext          *ac;
    ngx_uint_t                  up;
    ngx_uint_t                  subscriber;
} ngx_codeb_redis_link_t;


typedef enum {
    NGX_CODEB_REDIS_DOWN = 0,
    NGX_CODEB_REDIS_CONNECTING,
    NGX_CODEB_REDIS_UP
} ngx_codeb_redis_state_e;


static void ngx_codeb_redis_connect(void);
static ngx_int_t ngx_codeb_redis_link_open(ngx_codeb_redis_link_t *link);
static void ngx_codeb_redis_fail(const char *reason);
static void ngx_codeb_redis_tick(ngx_event_t *ev);
static void ngx_codeb_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_codeb_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_codeb_redis_on_message(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_redis_on_script(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_redis_check_up(void);
static void ngx_codeb_redis_add_read(void *data);
static void ngx_codeb_redis_del_read(void *data);
static void ngx_codeb_redis_add_write(void *data);
static void ngx_codeb_redis_del_write(void *data);
static void ngx_codeb_redis_cleanup(void *data);
static void ngx_codeb_redis_read_handler(ngx_event_t *ev);
static void ngx_codeb_redis_write_handler(ngx_event_t *ev);
static void ngx_codeb_redis_wait_timer(ngx_event_t *ev);
static void ngx_codeb_redis_wake(void);


static ngx_codeb_conf_t        *ngx_codeb_redis_conf;
static ngx_codeb_redis_link_t   ngx_codeb_redis_cmd;
static ngx_codeb_redis_link_t   ngx_codeb_redis_sub = { NULL, 0, 1 };
static ngx_codeb_redis_state_e  ngx_codeb_redis_state;
static ngx_event_t              ngx_codeb_redis_timer;
static ngx_connection_t         ngx_codeb_redis_dummy;
static ngx_msec_t               ngx_codeb_redis_backoff;
static ngx_msec_t               ngx_codeb_redis_since;    /* state change */
static ngx_msec_t               ngx_codeb_redis_activity; /* last reply */
static ngx_uint_t               ngx_codeb_redis_exiting;
static u_char                   ngx_codeb_redis_errstr[128];
static ngx_uint_t               ngx_codeb_redis_was_up;
static ngx_queue_t              ngx_codeb_redis_waiting;

static char  *ngx_codeb_redis_states[] = { "down", "connecting", "up" };


char *
ngx_codeb_redis_set_addr(ngx_conf_t *cf, ngx_codeb_conf_t *ccf,
    ngx_str_t *addr)
{
    u_char     *p, text[NGX_SOCKADDR_STRLEN];
    size_t      len;
    ngx_url_t   u;

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = *addr;
    u.no_port = 0;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_redis \"%V\": %s (expected unix:/path or "
                           "host:port)", addr, u.err ? u.err : "invalid");
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_redis \"%V\": no address", addr);
        return NGX_CONF_ERROR;
    }

    if (u.family == AF_UNIX) {
        /* the path after "unix:" */
        len = u.url.len - 5;
        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, u.url.data + 5, len);
        p[len] = '\0';
        ccf->redis_path = p;

    } else {
        if (u.no_port) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "codeb_redis \"%V\": no port", addr);
            return NGX_CONF_ERROR;
        }

        /* the first address, numeric: hiredis never resolves a name */
        len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, text,
                            NGX_SOCKADDR_STRLEN, 0);
        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, text, len);
        p[len] = '\0';
        ccf->redis_host = p;
        ccf->redis_port = (int) u.port;
    }

    ccf->redis = *addr;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_codeb_redis_add_script(ngx_conf_t *cf, ngx_codeb_redis_script_t *script)
{
    ngx_codeb_conf_t           *cmcf;
    ngx_codeb_redis_script_t  **s;

    if (ngx_codeb_require_redis(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_codeb_conf(cf);

    if (cmcf->scripts == NULL) {
        cmcf->scripts = ngx_array_create(cf->pool, 8, sizeof(void *));
        if (cmcf->scripts == NULL) {
            return NGX_ERROR;
        }
    }

    s = ngx_array_push(cmcf->scripts);
    if (s == NULL) {
        return NGX_ERROR;
    }

    ngx_codeb_sha1_hex(script->body.data, script->body.len, script->sha1);
    *s = script;

    return NGX_OK;
}


ngx_int_t
ngx_codeb_redis_on_up(ngx_conf_t *cf, ngx_codeb_redis_up_pt handler)
{
    ngx_codeb_conf_t       *cmcf;
    ngx_codeb_redis_up_pt  *h;

    if (ngx_codeb_require_redis(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_codeb_conf(cf);

    if (cmcf->up_handlers == NULL) {
        cmcf->up_handlers = ngx_array_create(cf->pool, 4,
                                             sizeof(ngx_codeb_redis_up_pt));
        if (cmcf->up_handlers == NULL) {
            return NGX_ERROR;
        }
    }

    h = ngx_array_push(cmcf->up_handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = handler;

    return NGX_OK;
}


ngx_int_t
ngx_codeb_redis_init_process(ngx_cycle_t *cycle, ngx_codeb_conf_t *ccf)
{
    ngx_codeb_redis_conf = ccf;
    ngx_queue_init(&ngx_codeb_redis_waiting);

    ngx_codeb_redis_dummy.fd = (ngx_socket_t) -1;
    ngx_codeb_redis_timer.handler = ngx_codeb_redis_tick;
    ngx_codeb_redis_timer.data = &ngx_codeb_redis_dummy;
    ngx_codeb_redis_timer.log = cycle->log;
    ngx_codeb_redis_timer.cancelable = 1;

    ngx_codeb_redis_backoff = NGX_CODEB_REDIS_BACKOFF_MIN;
    ngx_codeb_redis_connect();

    return NGX_OK;
}


void
ngx_codeb_redis_exit_process(ngx_cycle_t *cycle)
{
    redisAsyncContext  *ac;

    if (ngx_codeb_redis_conf == NULL) {
        return;
    }

    ngx_codeb_redis_exiting = 1;

    if (ngx_codeb_redis_timer.timer_set) {
        ngx_del_timer(&ngx_codeb_redis_timer);
    }

    ac = ngx_codeb_redis_cmd.ac;
    ngx_codeb_redis_cmd.ac = NULL;
    if (ac) {
        redisAsyncFree(ac);
    }

    ac = ngx_codeb_redis_sub.ac;
    ngx_codeb_redis_sub.ac = NULL;
    if (ac) {
        redisAsyncFree(ac);
    }
}


ngx_uint_t
ngx_codeb_redis_ready(void)
{
    return ngx_codeb_redis_state == NGX_CODEB_REDIS_UP;
}


ngx_int_t
ngx_codeb_redis_command(redisCallbackFn *cb, void *data,
    ngx_codeb_redis_args_t *a)
{
    redisAsyncContext  *ac;

    ac = ngx_codeb_redis_cmd.ac;

    if (a->argc > NGX_CODEB_REDIS_MAX_ARGS) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "redis: %d arguments, at most %d", a->argc,
                      NGX_CODEB_REDIS_MAX_ARGS);
        return NGX_ERROR;
    }

    /*
     * not before the subscriber is up too: whatever a command announces
     * (a join, say) may be answered on this worker's channel
     */

    if (ac == NULL || ngx_codeb_redis_state != NGX_CODEB_REDIS_UP) {
        return NGX_ERROR;
    }

    if (ac->replies.head == NULL) {
        /* the reply timeout counts from the first outstanding command */
        ngx_codeb_redis_activity = ngx_current_msec;
    }

    if (redisAsyncCommandArgv(ac, cb, data, a->argc, a->argv, a->lens)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "codeb redis: %*s queued, %d arguments",
                   a->lens[0], a->argv[0], a->argc);

    return NGX_OK;
}


void
ngx_codeb_redis_arg(ngx_codeb_redis_args_t *a, void *data, size_t len)
{
    if (a->argc < NGX_CODEB_REDIS_MAX_ARGS) {
        a->argv[a->argc] = data ? (const char *) data : "";
        a->lens[a->argc] = len;
    }

    /* an overflow is caught by the caller of the command */
    a->argc++;
}


ngx_int_t
ngx_codeb_redis_eval(ngx_codeb_redis_script_t *script, redisCallbackFn *cb,
    void *data, int nkeys, ngx_codeb_redis_args_t *a)
{
    int                     i;
    u_char                  nk[NGX_INT_T_LEN];
    ngx_codeb_redis_args_t  cmd;

    if (a->argc + 3 > NGX_CODEB_REDIS_MAX_ARGS) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "redis: too many script arguments");
        return NGX_ERROR;
    }

    cmd.argc = 0;
    ngx_codeb_redis_arg_lit(&cmd, "EVALSHA");
    ngx_codeb_redis_arg(&cmd, script->sha1, 40);
    ngx_codeb_redis_arg(&cmd, nk, ngx_sprintf(nk, "%d", nkeys) - nk);

    for (i = 0; i < a->argc; i++) {
        ngx_codeb_redis_arg(&cmd, (void *) a->argv[i], a->lens[i]);
    }

    return ngx_codeb_redis_command(cb, data, &cmd);
}


static void
ngx_codeb_redis_set_state(ngx_codeb_redis_state_e state)
{
    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "codeb redis: %s -> %s after %M ms",
                   ngx_codeb_redis_states[ngx_codeb_redis_state],
                   ngx_codeb_redis_states[state],
                   ngx_current_msec - ngx_codeb_redis_since);

    ngx_codeb_redis_state = state;
    ngx_codeb_redis_since = ngx_current_msec;
}


static void
ngx_codeb_redis_connect(void)
{
    ngx_codeb_redis_set_state(NGX_CODEB_REDIS_CONNECTING);

    ngx_cpystrn(ngx_codeb_redis_errstr, (u_char *) "connect failed",
                sizeof(ngx_codeb_redis_errstr));

    if (ngx_codeb_redis_link_open(&ngx_codeb_redis_cmd) != NGX_OK
        || ngx_codeb_redis_link_open(&ngx_codeb_redis_sub) != NGX_OK)
    {
        ngx_codeb_redis_fail((const char *) ngx_codeb_redis_errstr);
        return;
    }

    ngx_add_timer(&ngx_codeb_redis_timer, NGX_CODEB_REDIS_TICK);
}


static ngx_int_t
ngx_codeb_redis_link_open(ngx_codeb_redis_link_t *link)
{
    ngx_log_t          *log;
    redisAsyncContext  *ac;
    ngx_connection_t   *c;

    log = ngx_cycle->log;

    if (ngx_codeb_redis_conf->redis_path) {
        ac = redisAsyncConnectUnix((char *) ngx_codeb_redis_conf->redis_path);

    } else {
        ac = redisAsyncConnect((char *) ngx_codeb_redis_conf->redis_host,
                               ngx_codeb_redis_conf->redis_port);
    }

    if (ac == NULL) {
        return NGX_ERROR;
    }

    if (ac->err) {
        /* logged (throttled) by ngx_codeb_redis_fail() */
        ngx_cpystrn(ngx_codeb_redis_errstr, (u_char *) ac->errstr,
                    sizeof(ngx_codeb_redis_errstr));
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    c->data = link;
    c->read->handler = ngx_codeb_redis_read_handler;
    c->write->handler = ngx_codeb_redis_write_handler;
    c->read->log = log;
    c->write->log = log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_codeb_redis_add_read;
    ac->ev.delRead = ngx_codeb_redis_del_read;
    ac->ev.addWrite = ngx_codeb_redis_add_write;
    ac->ev.delWrite = ngx_codeb_redis_del_write;
    ac->ev.cleanup = ngx_codeb_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_codeb_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_codeb_redis_on_disconnect);

    link->ac = ac;
    link->up = 0;

    /* the first write event completes the non-blocking connect */
    ngx_codeb_redis_add_write(c);

    return NGX_OK;
}


static void
ngx_codeb_redis_fail(const char *reason)
{
    redisAsyncContext  *ac;

    if (ngx_codeb_redis_state == NGX_CODEB_REDIS_UP) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "redis \"%V\": %s, reconnecting",
                      &ngx_codeb_redis_conf->redis, reason);

    } else if (ngx_codeb_redis_backoff >= NGX_CODEB_REDIS_BACKOFF_MAX
               || ngx_codeb_redis_backoff == NGX_CODEB_REDIS_BACKOFF_MIN)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "redis \"%V\": %s, retry in %M ms",
                      &ngx_codeb_redis_conf->redis, reason,
                      ngx_codeb_redis_backoff);
    }

    /*
     * links are detached before they are freed: hiredis then calls the
     * pending callbacks with a NULL reply, and those may not reach a
     * half-dead link
     */

    ngx_codeb_redis_set_state(NGX_CODEB_REDIS_DOWN);

    ac = ngx_codeb_redis_cmd.ac;
    ngx_codeb_redis_cmd.ac = NULL;
    ngx_codeb_redis_cmd.up = 0;

    if (ac) {
        redisAsyncFree(ac);
    }

    ac = ngx_codeb_redis_sub.ac;
    ngx_codeb_redis_sub.ac = NULL;
    ngx_codeb_redis_sub.up = 0;

    if (ac) {
        redisAsyncFree(ac);
    }

    if (!ngx_codeb_redis_exiting) {
        if (ngx_codeb_redis_timer.timer_set) {
            ngx_del_timer(&ngx_codeb_redis_timer);
        }

        ngx_add_timer(&ngx_codeb_redis_timer, ngx_codeb_redis_backoff);
    }

    ngx_codeb_redis_backoff = ngx_min(ngx_codeb_redis_backoff * 2,
                                      NGX_CODEB_REDIS_BACKOFF_MAX);
}


static void
ngx_codeb_redis_tick(ngx_event_t *ev)
{
    ngx_msec_t          timeout;
    redisAsyncContext  *ac;

    timeout = ngx_codeb_redis_conf->redis_timeout;

    switch (ngx_codeb_redis_state) {

    case NGX_CODEB_REDIS_DOWN:
        ngx_codeb_redis_connect();
        return;

    case NGX_CODEB_REDIS_CONNECTING:
        if (ngx_current_msec - ngx_codeb_redis_since >= timeout) {
            ngx_codeb_redis_fail("connect timed out");
            return;
        }
        break;

    case NGX_CODEB_REDIS_UP:
        ac = ngx_codeb_redis_cmd.ac;
        if (ac && ac->replies.head
            && ngx_current_msec - ngx_codeb_redis_activity >= timeout)
        {
            ngx_codeb_redis_fail("reply timed out");
            return;
        }
        break;
    }

    ngx_add_timer(ev, NGX_CODEB_REDIS_TICK);
}


static ngx_codeb_redis_link_t *
ngx_codeb_redis_link(const redisAsyncContext *ac)
{
    if (ac == ngx_codeb_redis_cmd.ac) {
        return &ngx_codeb_redis_cmd;
    }

    if (ac == ngx_codeb_redis_sub.ac) {
        return &ngx_codeb_redis_sub;
    }

    return NULL;
}


static void
ngx_codeb_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_uint_t                  i;
    ngx_str_t                  *chan;
    ngx_codeb_redis_link_t     *link;
    ngx_codeb_redis_script_t  **s;

    link = ngx_codeb_redis_link(ac);
    if (link == NULL) {
        return;
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        link->ac = NULL;
        ngx_codeb_redis_fail(ac->errstr ? ac->errstr : "connect failed");
        return;
    }

    if (link->subscriber) {
        chan = ngx_codeb_bus_channel();

        if (redisAsyncCommand(link->ac, ngx_codeb_redis_on_message, NULL,
                              "SUBSCRIBE %b", chan->data, chan->len)
            != REDIS_OK)
        {
            ngx_codeb_redis_fail("SUBSCRIBE failed");
        }

        return;
    }

    link->up = 1;
    ngx_codeb_redis_activity = ngx_current_msec;

    if (ngx_codeb_redis_conf->scripts) {
        s = ngx_codeb_redis_conf->scripts->elts;

        for (i = 0; i < ngx_codeb_redis_conf->scripts->nelts; i++) {
            if (redisAsyncCommand(link->ac, ngx_codeb_redis_on_script, s[i],
                                  "SCRIPT LOAD %b", s[i]->body.data,
                                  s[i]->body.len)
                != REDIS_OK)
            {
                ngx_codeb_redis_fail("SCRIPT LOAD failed");
                return;
            }
        }
    }

    ngx_codeb_redis_check_up();
}


static void
ngx_codeb_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_codeb_redis_link_t  *link;

    link = ngx_codeb_redis_link(ac);
    if (link == NULL) {
        /* detached by ngx_codeb_redis_fail() */
        return;
    }

    link->ac = NULL;
    link->up = 0;

    ngx_codeb_redis_fail(ac->errstr && ac->err ? ac->errstr
                                               : "connection closed");
}


static void
ngx_codeb_redis_on_script(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply                *rep = reply;
    ngx_codeb_redis_script_t  *s = data;

    if (rep == NULL) {
        return;
    }

    if (rep->type != REDIS_REPLY_STRING
        || rep->len != 40
        || ngx_strncmp(rep->str, s->sha1, 40) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "redis SCRIPT LOAD of %s failed: %*s", s->sha1,
                      rep->type == REDIS_REPLY_ERROR ? rep->len : 0,
                      rep->str);
    }
}


static void
ngx_codeb_redis_on_message(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply  *rep = reply, *kind, *payload;

    if (rep == NULL || ac != ngx_codeb_redis_sub.ac) {
        return;
    }

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
        if (rep->type == REDIS_REPLY_ERROR) {
            ngx_codeb_redis_fail("SUBSCRIBE refused");
        }
        return;
    }

    kind = rep->element[0];
    payload = rep->element[2];

    if (kind->type != REDIS_REPLY_STRING) {
        return;
    }

    if (kind->len == 9 && ngx_strncmp(kind->str, "subscribe", 9) == 0) {
        ngx_codeb_redis_sub.up = 1;
        ngx_codeb_redis_check_up();
        return;
    }

    if (kind->len == 7 && ngx_strncmp(kind->str, "message", 7) == 0
        && payload->type == REDIS_REPLY_STRING)
    {
        ngx_codeb_bus_dispatch((u_char *) payload->str, payload->len);
    }
}


static void
ngx_codeb_redis_check_up(void)
{
    ngx_uint_t              i;
    ngx_codeb_redis_up_pt  *h;

    if (!ngx_codeb_redis_cmd.up || !ngx_codeb_redis_sub.up
        || ngx_codeb_redis_state == NGX_CODEB_REDIS_UP)
    {
        return;
    }

    if (ngx_codeb_redis_was_up) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "redis \"%V\": connected again",
                      &ngx_codeb_redis_conf->redis);
    }

    ngx_codeb_redis_was_up = 1;

    ngx_codeb_redis_set_state(NGX_CODEB_REDIS_UP);
    ngx_codeb_redis_backoff = NGX_CODEB_REDIS_BACKOFF_MIN;

    if (ngx_codeb_redis_conf->up_handlers) {
        h = ngx_codeb_redis_conf->up_handlers->elts;

        for (i = 0; i < ngx_codeb_redis_conf->up_handlers->nelts; i++) {
            h[i]();
        }
    }

    ngx_codeb_redis_wake();
}


void
ngx_codeb_redis_wait(ngx_codeb_redis_wait_t *w, ngx_log_t *log)
{
    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, log, 0,
                   "codeb redis: waiting for the links");

    if (ngx_queue_next(&ngx_codeb_redis_waiting) == NULL) {
        /* Redis is not configured: the timer ends the wait */
        ngx_queue_init(&ngx_codeb_redis_waiting);
    }

    ngx_queue_insert_tail(&ngx_codeb_redis_waiting, &w->queue);

    ngx_memzero(&w->timer, sizeof(ngx_event_t));
    w->timer.handler = ngx_codeb_redis_wait_timer;
    w->timer.data = w;
    w->timer.log = log;
    w->timer.cancelable = 1;

    ngx_add_timer(&w->timer, ngx_codeb_redis_conf
                             ? ngx_codeb_redis_conf->redis_timeout : 0);
}


void
ngx_codeb_redis_cancel(ngx_codeb_redis_wait_t *w)
{
    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }

    if (ngx_queue_next(&w->queue)) {
        ngx_queue_remove(&w->queue);
        ngx_queue_next(&w->queue) = NULL;
    }
}


static void
ngx_codeb_redis_wait_timer(ngx_event_t *ev)
{
    ngx_codeb_redis_wait_t  *w = ev->data;

    ngx_queue_remove(&w->queue);
    ngx_queue_next(&w->queue) = NULL;

    w->handler(w, NGX_ERROR);
}


/* the links are up: every waiter goes on, in the order they came */
static void
ngx_codeb_redis_wake(void)
{
    ngx_queue_t             *q;
    ngx_codeb_redis_wait_t  *w;

    while (!ngx_queue_empty(&ngx_codeb_redis_waiting)
           && ngx_codeb_redis_state == NGX_CODEB_REDIS_UP)
    {
        q = ngx_queue_head(&ngx_codeb_redis_waiting);
        w = ngx_queue_data(q, ngx_codeb_redis_wait_t, queue);

        ngx_codeb_redis_cancel(w);
        w->handler(w, NGX_OK);
    }
}


ngx_int_t
ngx_codeb_key(ngx_pool_t *pool, ngx_str_t *tenant, char *kind, u_char *name,
    size_t len, ngx_str_t *key)
{
    size_t  klen;

    klen = ngx_strlen(kind);

    key->data = ngx_pnalloc(pool, sizeof("codeb:{}:") - 1 + tenant->len
                                  + klen + len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "codeb:{%V}:%*s%*s", tenant, klen,
                           kind, len, name)
               - key->data;

    return NGX_OK;
}


/* hiredis event hooks: data is the nginx connection wrapping the socket */

static void
ngx_codeb_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_codeb_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_codeb_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_codeb_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


static void
ngx_codeb_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    ngx_codeb_redis_del_read(c);
    ngx_codeb_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* hiredis closes the socket itself */
    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);
}


/*
 * hiredis reads at most 16 KB per call: keep reading while the socket has
 * more (bounded), so that a busy worker does not let its subscriber fall
 * behind its client connections
 */
static void
ngx_codeb_redis_read_handler(ngx_event_t *ev)
{
    int                      pending;
    ngx_uint_t               i;
    ngx_socket_t             fd;
    ngx_connection_t        *c = ev->data;
    redisAsyncContext       *ac;
    ngx_codeb_redis_link_t  *link = c->data;

    if (!link->subscriber) {
        ngx_codeb_redis_activity = ngx_current_msec;
    }

    for (i = 0; i < NGX_CODEB_REDIS_READS; i++) {
        ac = link->ac;
        if (ac == NULL) {
            break;
        }

        fd = ac->c.fd;
        redisAsyncHandleRead(ac);

        /* the context may be gone: then link->ac changed */
        if (link->ac != ac
            || ioctl(fd, FIONREAD, &pending) == -1 || pending == 0)
        {
            break;
        }
    }

    /* what the replies and bus messages allocated */
    ngx_codeb_scratch_reset();
}


static void
ngx_codeb_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t        *c = ev->data;
    ngx_codeb_redis_link_t  *link = c->data;

    if (link->ac == NULL) {
        return;
    }

    /* a completed connect runs the "up" handlers from here */
    redisAsyncHandleWrite(link->ac);
    ngx_codeb_scratch_reset();
}

/*
 * Trunk registration (docs/sip.md "Trunk registration"): a trunk with
 * register=on is registered with its registrar by exactly one worker of
 * all the hosts that share the Redis, the holder of a lock:
 *
 *   P trunkreg:<trunk>   string, "<host>:<pid>" of the holder; PX 30 s,
 *                        extended by the holder every 10 s
 *
 * Every worker tries every 10 s (SET NX PX in a script that also extends
 * the holder's own lock), so another worker or host takes over within
 * about 40 s of the holder's death, and within 10 s of its exit (it lets
 * the lock go).  The holder sends REGISTER (RFC 3261 §10.2) from our UDP
 * listener on the trunk's flow, with retransmissions (timer E, F):
 *
 *   REGISTER sip:<domain>, To/From sip:<username>@<domain>, Contact
 *   <sip:<username>@<our ip:port>;transport=udp>, Expires: <expires=>
 *
 * Call-ID and From tag are the holder's for as long as it holds the lock;
 * the CSeq grows by one per REGISTER.  A 401 or 407 is answered once (and
 * once more when it says stale=true) with the digest client; 423 is tried
 * again with its Min-Expires; a 200 gives the time granted (our Contact's
 * expires, else Expires, else what we asked) and the next REGISTER comes
 * after half of it; a failure or 32 s without an answer is tried again
 * after 30 s, doubling to 300 s.
 *
 * The state is in P trunks (hash, what ?healthsummary reads): field <trunk>
 * = "<registered 0|1>,<last seen epoch s or ->".  Every trunk gets "0,-"
 * when it has no field; the holder writes 1 and the time on a 200, 0 on a
 * failure and when the time granted runs out without a new 200;
 * ngx_codeb_sip_trunk_seen() writes the time a message came from the trunk.
 * With Redis down, nothing is written and the holder keeps registering
 * until its lock would have expired.
 */

#include "ngx_codeb_sip.h"
#include <hiredis/hiredis.h>


#define NGX_CODEB_SIP_REG_LOCK_TTL   30000    /* ms, of P trunkreg:<trunk> */
#define NGX_CODEB_SIP_REG_TICK       10000    /* ms, lock taken or extended */
#define NGX_CODEB_SIP_REG_IDLE_TICK  60000    /* ms, trunks that don't
                                                 register: "0,-" written */
#define NGX_CODEB_SIP_REG_WAIT       1000     /* ms, Redis not up yet */
#define NGX_CODEB_SIP_REG_RETRY      30       /* s, after a failure */
#define NGX_CODEB_SIP_REG_RETRY_MAX  300      /* s */
#define NGX_CODEB_SIP_REG_SEEN       10000    /* ms, between "seen" writes */


struct ngx_codeb_sip_trunk_reg_s {
    ngx_codeb_sip_trunk_t      *trunk;
    ngx_str_t                   lock_key;    /* P trunkreg:<trunk> */
    ngx_str_t                   state_key;   /* P trunks */
    ngx_event_t                 tick;        /* the lock */
    ngx_event_t                 timer;       /* the next REGISTER */
    ngx_event_t                 expire;      /* the time granted ends */
    ngx_codeb_sip_retrans_t     rt;          /* our REGISTER */
    char                       *call_id;     /* heap, while the holder */
    char                       *tag;
    char                       *branch;      /* of the last REGISTER */
    uint32_t                    cseq;
    time_t                      expires;     /* s asked for */
    time_t                      retry;       /* s, after the next failure */
    time_t                      last_ok;     /* epoch s of the last 200 */
    ngx_msec_t                  locked;      /* when the lock was last ours */
    ngx_msec_t                  seen;        /* when "seen" was written */
    ngx_uint_t                  auths;       /* challenges answered */
    unsigned                    holder:1;
    unsigned                    registered:1;
    unsigned                    busy:1;      /* a lock reply is due */
    unsigned                    seen_set:1;
    unsigned                    release:1;   /* let go at exit */
};


static ngx_int_t ngx_codeb_sip_reg_create(ngx_cycle_t *cycle,
    ngx_codeb_sip_trunk_t *trunk);
static void ngx_codeb_sip_reg_tick(ngx_event_t *ev);
static void ngx_codeb_sip_reg_locked(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_sip_reg_start(ngx_codeb_sip_trunk_reg_t *st);
static void ngx_codeb_sip_reg_stop(ngx_codeb_sip_trunk_reg_t *st);
static void ngx_codeb_sip_reg_release(ngx_codeb_sip_trunk_reg_t *st);
static void ngx_codeb_sip_reg_timer(ngx_event_t *ev);
static void ngx_codeb_sip_reg_expired(ngx_event_t *ev);
static ngx_int_t ngx_codeb_sip_reg_send(ngx_codeb_sip_trunk_reg_t *st,
    msg_t *challenge);
static msg_t *ngx_codeb_sip_reg_request(ngx_codeb_sip_trunk_reg_t *st);
static void ngx_codeb_sip_reg_timeout(ngx_codeb_sip_retrans_t *rt);
static void ngx_codeb_sip_reg_ok(ngx_codeb_sip_trunk_reg_t *st, sip_t *rs);
static time_t ngx_codeb_sip_reg_granted(ngx_codeb_sip_trunk_reg_t *st,
    sip_t *rs);
static void ngx_codeb_sip_reg_failed(ngx_codeb_sip_trunk_reg_t *st,
    int status);
static void ngx_codeb_sip_reg_state(ngx_codeb_sip_trunk_reg_t *st,
    char *registered, time_t seen);
static ngx_int_t ngx_codeb_sip_reg_dup(char **dst, char const *src);
static void ngx_codeb_sip_reg_sync_release(ngx_codeb_conf_t *ccf,
    ngx_codeb_sip_trunk_reg_t *st);


/* this worker's: every trunk's registration state */
static ngx_array_t  ngx_codeb_sip_regs;       /* ngx_codeb_sip_trunk_reg_t * */


/*
 * KEYS: P trunks, [P trunkreg:<trunk>]; ARGV: trunk, worker id, ttl (ms).
 * "0,-" for a trunk not in P trunks; the lock: 1 extended (ours), 2
 * taken (it was free), 0 another worker's; 0 without the lock key.
 */
static char  ngx_codeb_sip_reg_lock_lua[] =
    "redis.call('HSETNX', KEYS[1], ARGV[1], '0,-')\n"
    "if #KEYS < 2 then return 0 end\n"
    "local v = redis.call('GET', KEYS[2])\n"
    "if v == ARGV[2] then\n"
    "  redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "if v then return 0 end\n"
    "redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3], 'NX')\n"
    "return 2\n";

/*
 * KEYS: P trunks; ARGV: trunk, registered ("0", "1" or "": kept), last
 * seen (epoch s, or "": kept)
 */
static char  ngx_codeb_sip_reg_state_lua[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) or '0,-'\n"
    "local r, s = string.match(v, '^([01]),(.*)$')\n"
    "if not r then r, s = '0', '-' end\n"
    "if ARGV[2] ~= '' then r = ARGV[2] end\n"
    "if ARGV[3] ~= '' then s = ARGV[3] end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], r .. ',' .. s)\n"
    "return 1\n";

/* KEYS: P trunkreg:<trunk>; ARGV: worker id.  Deleted when it is ours */
static char  ngx_codeb_sip_reg_release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";


/* every trunk's state and lock timer; after the trunks' flows are made */
ngx_int_t
ngx_codeb_sip_trunk_reg_init_process(ngx_cycle_t *cycle,
    ngx_codeb_sip_main_conf_t *smcf)
{
    ngx_uint_t               i;
    ngx_codeb_sip_trunk_t  **trunk;

    if (ngx_array_init(&ngx_codeb_sip_regs, cycle->pool, 4, sizeof(void *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    trunk = smcf->trunks.elts;

    for (i = 0; i < smcf->trunks.nelts; i++) {
        if (ngx_codeb_sip_reg_create(cycle, trunk[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_codeb_sip_reg_create(ngx_cycle_t *cycle, ngx_codeb_sip_trunk_t *trunk)
{
    ngx_uint_t                  jitter;
    ngx_codeb_sip_trunk_reg_t  *st, **p;

    st = ngx_pcalloc(cycle->pool, sizeof(ngx_codeb_sip_trunk_reg_t));
    p = ngx_array_push(&ngx_codeb_sip_regs);

    if (st == NULL || p == NULL
        || ngx_codeb_key(cycle->pool, &trunk->sip->tenant->name, "trunks",
                         NULL, 0, &st->state_key) != NGX_OK
        || ngx_codeb_key(cycle->pool, &trunk->sip->tenant->name,
                         "trunkreg:", trunk->name.data, trunk->name.len,
                         &st->lock_key) != NGX_OK)
    {
        return NGX_ERROR;
    }

    *p = st;
    st->trunk = trunk;
    st->expires = trunk->expires;
    st->retry = NGX_CODEB_SIP_REG_RETRY;
    trunk->registration = st;

    st->tick.handler = ngx_codeb_sip_reg_tick;
    st->timer.handler = ngx_codeb_sip_reg_timer;
    st->expire.handler = ngx_codeb_sip_reg_expired;
    st->tick.data = st;
    st->timer.data = st;
    st->expire.data = st;
    st->tick.log = cycle->log;
    st->timer.log = cycle->log;
    st->expire.log = cycle->log;
    st->tick.cancelable = 1;
    st->timer.cancelable = 1;
    st->expire.cancelable = 1;

    st->rt.owner = st;
    st->rt.timeout = ngx_codeb_sip_reg_timeout;

    /* the workers of a host start together: spread their first tries */
    jitter = (ngx_uint_t) ngx_random() % 1000;
    ngx_add_timer(&st->tick, 1000 + jitter);

    return NGX_OK;
}


/*
 * The lock (and "0,-" for a trunk without a state); Redis down: the
 * holder stops once its lock has run out, and the lock is tried again in
 * a second.  A worker that is shutting down lets its lock go.
 */
static void
ngx_codeb_sip_reg_tick(ngx_event_t *ev)
{
    u_char                      ttl[NGX_INT_T_LEN];
    ngx_codeb_redis_args_t      a;
    ngx_codeb_sip_trunk_reg_t  *st = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        if (st->holder) {
            /* again at exit: this one may not leave before the worker */
            st->release = 1;
            ngx_codeb_sip_reg_release(st);
            ngx_codeb_sip_reg_stop(st);
        }

        return;
    }

    if (!ngx_codeb_redis_ready() || st->busy) {
        if (st->holder
            && ngx_current_msec - st->locked >= NGX_CODEB_SIP_REG_LOCK_TTL)
        {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "codeb sip: trunk \"%V\": registration lock "
                          "not renewed, registration stopped",
                          &st->trunk->name);
            ngx_codeb_sip_reg_stop(st);
        }

        ngx_add_timer(ev, NGX_CODEB_SIP_REG_WAIT);
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "EVAL");
    ngx_codeb_redis_arg_lit(&a, ngx_codeb_sip_reg_lock_lua);
    ngx_codeb_redis_arg(&a, st->trunk->reg ? "2" : "1", 1);
    ngx_codeb_redis_arg_str(&a, &st->state_key);

    if (st->trunk->reg) {
        ngx_codeb_redis_arg_str(&a, &st->lock_key);
    }

    ngx_codeb_redis_arg_str(&a, &st->trunk->name);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());
    ngx_codeb_redis_arg(&a, ttl, ngx_sprintf(ttl, "%d",
                                             NGX_CODEB_SIP_REG_LOCK_TTL)
                                 - ttl);

    if (ngx_codeb_redis_command(ngx_codeb_sip_reg_locked, st, &a) == NGX_OK)
    {
        st->busy = 1;
    }

    ngx_add_timer(ev, st->trunk->reg ? NGX_CODEB_SIP_REG_TICK
                                     : NGX_CODEB_SIP_REG_IDLE_TICK);
    ngx_codeb_scratch_reset();
}


/* 1: the lock extended, 2: taken, 0: another worker's; NULL: Redis gone */
static void
ngx_codeb_sip_reg_locked(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply                 *rep = reply;
    ngx_codeb_sip_trunk_reg_t  *st = data;

    st->busy = 0;

    if (!st->trunk->reg || rep == NULL || rep->type != REDIS_REPLY_INTEGER
        || ngx_exiting || ngx_terminate || ngx_quit)
    {
        return;
    }

    if (rep->integer == 0) {
        if (st->holder) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "codeb sip: trunk \"%V\": registration lock held "
                          "by another worker, registration stopped",
                          &st->trunk->name);
            ngx_codeb_sip_reg_stop(st);
        }

        return;
    }

    st->locked = ngx_current_msec;

    if (st->holder && rep->integer == 2 && st->registered) {
        /* Redis lost its keys (a restart, a flush): the state again */
        ngx_codeb_sip_reg_state(st, "1", st->last_ok);
        return;
    }

    if (!st->holder) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "codeb sip: trunk \"%V\": this worker registers it",
                      &st->trunk->name);
        ngx_codeb_sip_reg_start(st);
    }
}


/* this worker registers the trunk: a Call-ID and From tag of its own */
static void
ngx_codeb_sip_reg_start(ngx_codeb_sip_trunk_reg_t *st)
{
    char       *call_id, *tag;
    ngx_int_t   rc;
    su_home_t   home[1] = { SU_HOME_INIT(home) };

    call_id = ngx_codeb_sip_make_id(home, "", 8);
    tag = ngx_codeb_sip_make_id(home, "", 4);

    rc = (call_id && tag
          && ngx_codeb_sip_reg_dup(&st->call_id, call_id) == NGX_OK
          && ngx_codeb_sip_reg_dup(&st->tag, tag) == NGX_OK)
         ? NGX_OK : NGX_ERROR;

    su_home_deinit(home);

    if (rc != NGX_OK) {
        /* no memory: the next tick tries again */
        ngx_codeb_sip_reg_stop(st);
        return;
    }

    st->holder = 1;
    st->cseq = 0;
    st->auths = 0;
    st->expires = st->trunk->expires;
    st->retry = NGX_CODEB_SIP_REG_RETRY;

    if (ngx_codeb_sip_reg_send(st, NULL) != NGX_OK) {
        ngx_codeb_sip_reg_failed(st, 500);
    }
}


/* no more REGISTER from this worker; the registrar's binding stays */
static void
ngx_codeb_sip_reg_stop(ngx_codeb_sip_trunk_reg_t *st)
{
    st->holder = 0;
    st->registered = 0;

    ngx_codeb_sip_retrans_free(&st->rt);

    if (st->timer.timer_set) {
        ngx_del_timer(&st->timer);
    }

    if (st->expire.timer_set) {
        ngx_del_timer(&st->expire);
    }

    (void) ngx_codeb_sip_reg_dup(&st->call_id, NULL);
    (void) ngx_codeb_sip_reg_dup(&st->tag, NULL);
    (void) ngx_codeb_sip_reg_dup(&st->branch, NULL);
}


/* the lock let go by its holder (a worker that shuts down) */
static void
ngx_codeb_sip_reg_release(ngx_codeb_sip_trunk_reg_t *st)
{
    ngx_codeb_redis_args_t  a;

    if (!st->holder || !ngx_codeb_redis_ready()) {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "EVAL");
    ngx_codeb_redis_arg_lit(&a, ngx_codeb_sip_reg_release_lua);
    ngx_codeb_redis_arg_lit(&a, "1");
    ngx_codeb_redis_arg_str(&a, &st->lock_key);
    ngx_codeb_redis_arg_str(&a, ngx_codeb_worker_id());

    (void) ngx_codeb_redis_command(NULL, NULL, &a);
}


/* the next REGISTER: a refresh, or a try after a failure */
static void
ngx_codeb_sip_reg_timer(ngx_event_t *ev)
{
    ngx_codeb_sip_trunk_reg_t  *st = ev->data;

    if (!st->holder || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    st->auths = 0;

    if (ngx_codeb_sip_reg_send(st, NULL) != NGX_OK) {
        ngx_codeb_sip_reg_failed(st, 500);
    }

    ngx_codeb_scratch_reset();
}


/* the time granted ran out without a new 200 */
static void
ngx_codeb_sip_reg_expired(ngx_event_t *ev)
{
    ngx_codeb_sip_trunk_reg_t  *st = ev->data;

    if (!st->holder || !st->registered) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "codeb sip: trunk \"%V\": registration expired",
                  &st->trunk->name);

    st->registered = 0;
    ngx_codeb_sip_reg_state(st, "0", 0);
    ngx_codeb_scratch_reset();
}


/*
 * A REGISTER with the next CSeq and a new branch, answering challenge (a
 * 401 or 407) when not NULL; kept and sent again until an answer comes
 */
static ngx_int_t
ngx_codeb_sip_reg_send(ngx_codeb_sip_trunk_reg_t *st, msg_t *challenge)
{
    msg_t  *msg;

    st->cseq++;

    msg = ngx_codeb_sip_reg_request(st);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    if (challenge
        && ngx_codeb_sip_digest_authorize(msg, challenge,
                                          &st->trunk->username,
                                          &st->trunk->password)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "codeb sip: trunk \"%V\": no digest challenge this "
                      "server can answer", &st->trunk->name);
        msg_destroy(msg);
        return NGX_ERROR;
    }

    if (ngx_codeb_sip_send_kept(st->trunk->flow, msg, &st->rt, 1)
        != NGX_OK)
    {
        ngx_codeb_sip_retrans_free(&st->rt);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static msg_t *
ngx_codeb_sip_reg_request(ngx_codeb_sip_trunk_reg_t *st)
{
    char                   *branch, *aor, *uri;
    msg_t                  *msg;
    sip_t                  *sip;
    su_home_t              *home;
    char const             *host;
    ngx_codeb_sip_trunk_t  *trunk;

    trunk = st->trunk;

    host = ngx_codeb_sip_flow_host(trunk->flow);
    if (host == NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "codeb sip: trunk \"%V\": no codeb_sip UDP listener "
                      "to register from", &trunk->name);
        return NULL;
    }

    msg = msg_create(sip_default_mclass(), 0);
    if (msg == NULL) {
        return NULL;
    }

    sip = sip_object(msg);
    home = msg_home(msg);

    branch = ngx_codeb_sip_make_id(home, "z9hG4bK", 8);
    uri = su_sprintf(home, "sip:%.*s", (int) trunk->domain.len,
                     trunk->domain.data);
    aor = su_sprintf(home, "<sip:%.*s@%.*s>", (int) trunk->username.len,
                     trunk->username.data, (int) trunk->domain.len,
                     trunk->domain.data);

    if (branch == NULL || uri == NULL || aor == NULL
        || ngx_codeb_sip_reg_dup(&st->branch, branch) != NGX_OK
        || msg_header_insert(msg, (msg_pub_t *) sip, (msg_header_t *)
                             sip_request_create(home, sip_method_register,
                                                "REGISTER",
                                                (url_string_t *) uri, NULL))
           < 0
        || sip_add_make(msg, sip, sip_via_class,
                        su_sprintf(home, "SIP/2.0/UDP %s;branch=%s;rport",
                                   host, branch)) < 0
        || sip_add_make(msg, sip, sip_max_forwards_class, "70") < 0
        || sip_add_make(msg, sip, sip_from_class,
                        su_sprintf(home, "%s;tag=%s", aor, st->tag)) < 0
        || sip_add_make(msg, sip, sip_to_class, aor) < 0
        || sip_add_make(msg, sip, sip_call_id_class, st->call_id) < 0
        || sip_add_make(msg, sip, sip_cseq_class,
                        su_sprintf(home, "%u REGISTER", st->cseq)) < 0
        || sip_add_make(msg, sip, sip_contact_class,
                        su_sprintf(home, "<sip:%.*s@%s;transport=udp>",
                                   (int) trunk->username.len,
                                   trunk->username.data, host)) < 0
        || sip_add_make(msg, sip, sip_expires_class,
                        su_sprintf(home, "%ld", (long) st->expires)) < 0)
    {
        msg_destroy(msg);
        return NULL;
    }

    return msg;
}


/* 32 s without a final answer (timer F) */
static void
ngx_codeb_sip_reg_timeout(ngx_codeb_sip_retrans_t *rt)
{
    ngx_codeb_sip_trunk_reg_t  *st = rt->owner;

    ngx_codeb_sip_reg_failed(st, 408);
}


/*
 * A response whose CSeq method is REGISTER, in the worker its Via branch
 * names: ours when its Call-ID, CSeq and branch are those of a trunk's
 * last REGISTER.  rsp is freed.
 */
void
ngx_codeb_sip_trunk_reg_response(ngx_codeb_sip_flow_t *flow, msg_t *rsp)
{
    int                         status;
    sip_t                      *rs;
    ngx_uint_t                  i, stale;
    msg_auth_t                 *au;
    char const                 *stale_value;
    ngx_codeb_sip_trunk_reg_t  *st, **regs;

    rs = sip_object(rsp);
    regs = ngx_codeb_sip_regs.elts;
    st = NULL;

    for (i = 0; i < ngx_codeb_sip_regs.nelts; i++) {
        if (regs[i]->holder && regs[i]->call_id
            && ngx_strcmp(regs[i]->call_id, rs->sip_call_id->i_id) == 0)
        {
            st = regs[i];
            break;
        }
    }

    if (st == NULL || st->branch == NULL || rs->sip_via->v_branch == NULL
        || rs->sip_cseq->cs_seq != st->cseq
        || ngx_strcasecmp((u_char *) rs->sip_via->v_branch,
                          (u_char *) st->branch) != 0)
    {
        /* a stray or late answer: not the last REGISTER's */
        msg_destroy(rsp);
        return;
    }

    status = rs->sip_status->st_status;

    if (status < 200) {
        ngx_codeb_sip_retrans_slow(&st->rt);
        msg_destroy(rsp);
        return;
    }

    ngx_codeb_sip_retrans_stop(&st->rt);

    au = (status == 401) ? (msg_auth_t *) rs->sip_www_authenticate
                         : (msg_auth_t *) rs->sip_proxy_authenticate;
    stale_value = (au && au->au_params)
                  ? msg_params_find(au->au_params, "stale=") : NULL;
    stale = (stale_value
             && ngx_strcasecmp((u_char *) stale_value, (u_char *) "true")
                == 0);

    if (status >= 200 && status < 300) {
        ngx_codeb_sip_reg_ok(st, rs);

    } else if ((status == 401 || status == 407)
               && (st->auths == 0 || (st->auths == 1 && stale)))
    {
        st->auths++;

        if (ngx_codeb_sip_reg_send(st, rsp) != NGX_OK) {
            ngx_codeb_sip_reg_failed(st, status);
        }

    } else if (status == 423 && rs->sip_min_expires
               && (time_t) rs->sip_min_expires->me_delta > st->expires
               && rs->sip_min_expires->me_delta <= 86400)
    {
        /* RFC 3261 §10.2.8: again with the registrar's minimum */
        st->expires = rs->sip_min_expires->me_delta;
        st->auths = 0;

        if (ngx_codeb_sip_reg_send(st, NULL) != NGX_OK) {
            ngx_codeb_sip_reg_failed(st, status);
        }

    } else {
        ngx_codeb_sip_reg_failed(st, status);
    }

    msg_destroy(rsp);
}


/* 200: registered for the time granted; the next REGISTER after half */
static void
ngx_codeb_sip_reg_ok(ngx_codeb_sip_trunk_reg_t *st, sip_t *rs)
{
    time_t  granted, refresh;

    granted = ngx_codeb_sip_reg_granted(st, rs);
    refresh = ngx_max(granted / 2, 1);

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "codeb sip: trunk \"%V\" registered for %T s",
                  &st->trunk->name, granted);

    st->registered = 1;
    st->auths = 0;
    st->retry = NGX_CODEB_SIP_REG_RETRY;
    st->last_ok = ngx_time();

    ngx_codeb_sip_reg_state(st, "1", st->last_ok);

    ngx_add_timer(&st->timer, (ngx_msec_t) refresh * 1000);
    ngx_add_timer(&st->expire, (ngx_msec_t) granted * 1000);
}


/*
 * The time granted (s): the expires of our Contact in the 200 (RFC 3261
 * §10.2.4), else its Expires, else the only Contact's expires, else what
 * we asked for
 */
static time_t
ngx_codeb_sip_reg_granted(ngx_codeb_sip_trunk_reg_t *st, sip_t *rs)
{
    u_char          hp[NGX_SOCKADDR_STRLEN + 16], *p;
    url_t          *u;
    char const     *host;
    ngx_int_t       n;
    ngx_str_t      *user;
    sip_contact_t  *m, *mine;

    host = ngx_codeb_sip_flow_host(st->trunk->flow);
    user = &st->trunk->username;
    mine = NULL;

    for (m = rs->sip_contact; m && host; m = m->m_next) {
        u = m->m_url;

        if (u->url_user == NULL || u->url_host == NULL
            || ngx_strlen(u->url_user) != user->len
            || ngx_strncmp(u->url_user, user->data, user->len) != 0)
        {
            continue;
        }

        /* "<host>:<port>" as flow_host() writes ours */
        p = ngx_snprintf(hp, sizeof(hp) - 1, "%s:%s", u->url_host,
                         u->url_port ? u->url_port : "5060");
        *p = '\0';

        if (ngx_strcasecmp(hp, (u_char *) host) == 0) {
            mine = m;
            break;
        }
    }

    if (mine == NULL && rs->sip_expires == NULL && rs->sip_contact
        && rs->sip_contact->m_next == NULL)
    {
        mine = rs->sip_contact;
    }

    if (mine && mine->m_expires) {
        n = ngx_atoi((u_char *) mine->m_expires, ngx_strlen(mine->m_expires));
        if (n > 0) {
            return n;
        }
    }

    if (rs->sip_expires && rs->sip_expires->ex_delta > 0) {
        return rs->sip_expires->ex_delta;
    }

    return st->expires;
}


/* registered 0 in P trunks; the next try after 30 s, doubling to 300 s */
static void
ngx_codeb_sip_reg_failed(ngx_codeb_sip_trunk_reg_t *st, int status)
{
    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "codeb sip: trunk \"%V\": registration failed (%d), "
                  "next try in %T s", &st->trunk->name, status, st->retry);

    st->registered = 0;
    st->auths = 0;

    ngx_codeb_sip_retrans_stop(&st->rt);

    if (st->expire.timer_set) {
        ngx_del_timer(&st->expire);
    }

    ngx_codeb_sip_reg_state(st, "0", 0);

    ngx_add_timer(&st->timer, (ngx_msec_t) st->retry * 1000);
    st->retry = ngx_min(2 * st->retry, NGX_CODEB_SIP_REG_RETRY_MAX);
}


/* P trunks: registered ("0", "1", "": kept), last seen (epoch s; 0: kept) */
static void
ngx_codeb_sip_reg_state(ngx_codeb_sip_trunk_reg_t *st, char *registered,
    time_t seen)
{
    u_char                  now[NGX_TIME_T_LEN];
    ngx_codeb_redis_args_t  a;

    if (seen) {
        st->seen = ngx_current_msec;
        st->seen_set = 1;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "EVAL");
    ngx_codeb_redis_arg_lit(&a, ngx_codeb_sip_reg_state_lua);
    ngx_codeb_redis_arg_lit(&a, "1");
    ngx_codeb_redis_arg_str(&a, &st->state_key);
    ngx_codeb_redis_arg_str(&a, &st->trunk->name);
    ngx_codeb_redis_arg(&a, registered, ngx_strlen(registered));
    ngx_codeb_redis_arg(&a, now,
                        seen ? ngx_sprintf(now, "%T", seen) - now : 0);

    if (ngx_codeb_redis_command(NULL, NULL, &a) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "codeb sip: trunk \"%V\": state not written, Redis "
                      "down", &st->trunk->name);
    }
}


/*
 * A message came from the trunk's address: its last seen time in P
 * trunks, at most once per 10 s per trunk and worker
 */
void
ngx_codeb_sip_trunk_seen(ngx_codeb_sip_trunk_t *trunk)
{
    ngx_codeb_sip_trunk_reg_t  *st;

    st = trunk->registration;

    if (st == NULL || !ngx_codeb_redis_ready()
        || (st->seen_set
            && ngx_current_msec - st->seen < NGX_CODEB_SIP_REG_SEEN))
    {
        return;
    }

    ngx_codeb_sip_reg_state(st, "", ngx_time());
}


/* *dst freed, then a heap copy of src (NULL: none) */
static ngx_int_t
ngx_codeb_sip_reg_dup(char **dst, char const *src)
{
    size_t  len;

    if (*dst) {
        ngx_free(*dst);
        *dst = NULL;
    }

    if (src == NULL) {
        return NGX_OK;
    }

    len = ngx_strlen(src) + 1;

    *dst = ngx_alloc(len, ngx_cycle->log);
    if (*dst == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(*dst, src, len);

    return NGX_OK;
}


/*
 * The worker exits: the locks it holds are let go, so that a worker of
 * the new generation takes over at its next try rather than after 30 s.
 * The Redis links are closed by now (ngx_codeb_module exits first): a
 * connection of its own, blocking for at most 250 ms, after the event
 * loop has ended.  Best effort: a failure leaves the lock to expire.
 */
void
ngx_codeb_sip_trunk_reg_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_codeb_conf_t           *ccf;
    ngx_codeb_sip_trunk_reg_t **regs;

    if (ngx_codeb_sip_regs.elts == NULL) {
        return;
    }

    ccf = (ngx_codeb_conf_t *) ngx_get_conf(cycle->conf_ctx,
                                            ngx_codeb_module);
    regs = ngx_codeb_sip_regs.elts;

    for (i = 0; i < ngx_codeb_sip_regs.nelts; i++) {
        ngx_codeb_sip_retrans_free(&regs[i]->rt);

        if ((regs[i]->holder || regs[i]->release) && ccf) {
            ngx_codeb_sip_reg_sync_release(ccf, regs[i]);
        }

        ngx_codeb_sip_reg_stop(regs[i]);
    }
}


static void
ngx_codeb_sip_reg_sync_release(ngx_codeb_conf_t *ccf,
    ngx_codeb_sip_trunk_reg_t *st)
{
    redisReply      *rep;
    redisContext    *c;
    struct timeval   tv = { 0, 250000 };
    ngx_str_t       *wid;

    if (ccf->redis_path) {
        c = redisConnectUnixWithTimeout((char *) ccf->redis_path, tv);

    } else if (ccf->redis_host) {
        c = redisConnectWithTimeout((char *) ccf->redis_host,
                                    ccf->redis_port, tv);

    } else {
        return;
    }

    if (c == NULL || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        if (c) {
            redisFree(c);
        }

        return;
    }

    wid = ngx_codeb_worker_id();

    rep = redisCommand(c, "EVAL %s 1 %b %b", ngx_codeb_sip_reg_release_lua,
                       st->lock_key.data, st->lock_key.len,
                       wid->data, wid->len);
    if (rep) {
        freeReplyObject(rep);
    }

    redisFree(c);
}

/*
 * Redis for the CodeB modules (docs/design.md "State in Redis"): one pair
 * of links per worker (commands, and a subscriber on the worker's bus
 * channel) whichever modules use them, Lua scripts, the bus between
 * workers and hosts, and the key names.
 */

#ifndef _NGX_CODEB_REDIS_H_INCLUDED_
#define _NGX_CODEB_REDIS_H_INCLUDED_


#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/*
 * A Lua script the modules register at configuration time; it is loaded
 * (SCRIPT LOAD) on every (re)connect and run with EVALSHA.
 */
typedef struct {
    ngx_str_t                   body;
    u_char                      sha1[41];        /* hex, NUL-terminated */
} ngx_codeb_redis_script_t;

/* called (in the worker) whenever both Redis links are up again */
typedef void (*ngx_codeb_redis_up_pt)(void);

/*
 * Registration at configuration time, from any context (http{} or
 * stream{} directives and postconfiguration handlers).  Each marks the
 * configuration as needing codeb_redis.  NGX_ERROR: no memory.
 */
ngx_int_t ngx_codeb_redis_add_script(ngx_conf_t *cf,
    ngx_codeb_redis_script_t *script);
ngx_int_t ngx_codeb_redis_on_up(ngx_conf_t *cf, ngx_codeb_redis_up_pt handler);

/*
 * codeb_redis unix:/path | host:port: parsed with ngx_parse_url, names
 * resolved now (never on the event loop); NGX_CONF_ERROR with a message.
 */
char *ngx_codeb_redis_set_addr(ngx_conf_t *cf, ngx_codeb_conf_t *ccf,
    ngx_str_t *addr);

/* command arguments, filled with ngx_codeb_redis_arg() */
#define NGX_CODEB_REDIS_MAX_ARGS  24

typedef struct {
    int                         argc;
    const char                 *argv[NGX_CODEB_REDIS_MAX_ARGS];
    size_t                      lens[NGX_CODEB_REDIS_MAX_ARGS];
} ngx_codeb_redis_args_t;

/*
 * appends one argument; not copied: it must live until the command is
 * queued (hiredis copies it then).  An overflow fails the command.
 */
void ngx_codeb_redis_arg(ngx_codeb_redis_args_t *a, void *data, size_t len);
#define ngx_codeb_redis_arg_str(a, s)                                        \
    ngx_codeb_redis_arg(a, (s)->data, (s)->len)
#define ngx_codeb_redis_arg_lit(a, s)                                        \
    ngx_codeb_redis_arg(a, s, sizeof(s) - 1)

/* 1 when both links are connected and usable */
ngx_uint_t ngx_codeb_redis_ready(void);

/*
 * Queues a command on the worker's command link.  cb may be NULL; it is
 * called with reply NULL when the link drops before the reply arrives.
 * NGX_ERROR: Redis is not connected (nothing is queued).
 */
ngx_int_t ngx_codeb_redis_command(redisCallbackFn *cb, void *data,
    ngx_codeb_redis_args_t *a);
/* EVALSHA of a registered script; a holds KEYS then ARGV */
ngx_int_t ngx_codeb_redis_eval(ngx_codeb_redis_script_t *script,
    redisCallbackFn *cb, void *data, int nkeys, ngx_codeb_redis_args_t *a);


/*
 * Waiting for the links: a request that arrives while they are down
 * (right after a start, or during a reconnect) waits for them instead of
 * failing.  handler gets NGX_OK when the links are up, NGX_ERROR when
 * codeb_redis_timeout passed first.  The waiter must stay valid until its
 * handler ran or ngx_codeb_redis_cancel() was called.
 */
typedef struct ngx_codeb_redis_wait_s  ngx_codeb_redis_wait_t;

typedef void (*ngx_codeb_redis_wait_pt)(ngx_codeb_redis_wait_t *w,
    ngx_int_t rc);

struct ngx_codeb_redis_wait_s {
    ngx_queue_t                 queue;
    ngx_event_t                 timer;
    ngx_codeb_redis_wait_pt     handler;
    void                       *data;
};

void ngx_codeb_redis_wait(ngx_codeb_redis_wait_t *w, ngx_log_t *log);
void ngx_codeb_redis_cancel(ngx_codeb_redis_wait_t *w);


/*
 * Key names: "codeb:{<tenant>}:<kind><name>" (the braces keep a tenant in
 * one Redis Cluster slot), allocated from pool.  NGX_ERROR: no memory.
 */
ngx_int_t ngx_codeb_key(ngx_pool_t *pool, ngx_str_t *tenant, char *kind,
    u_char *name, size_t len, ngx_str_t *key);

/*
 * A pool for the short-lived allocations of one event (keys, bus
 * messages): whoever handles an event resets it when done with it
 * (ngx_codeb_scratch_reset()).  Valid in worker processes.
 */
ngx_pool_t *ngx_codeb_scratch(void);
void ngx_codeb_scratch_reset(void);


/* ---- bus: messages between workers and hosts (ngx_codeb_bus.c) ---- */

/*
 * A bus message is "<kind> <header words...>\n<body>".  Every worker
 * subscribes to its own channel "codeb:w:<host_id>:<pid>"; room fan-out is
 * done by the publishing Lua scripts, which know the workers of a room.
 * Handlers get the whole header line and the body; they are registered by
 * kind at configuration time, from any context.
 */
typedef void (*ngx_codeb_bus_handler_pt)(ngx_str_t *header, ngx_str_t *body);

typedef struct {
    ngx_str_t                   kind;
    ngx_codeb_bus_handler_pt    handler;
} ngx_codeb_bus_kind_t;

ngx_int_t ngx_codeb_bus_on(ngx_conf_t *cf, ngx_str_t *kind,
    ngx_codeb_bus_handler_pt handler);
/* publishes to the worker channel of worker_id ("<host>:<pid>") */
ngx_int_t ngx_codeb_bus_send(ngx_str_t *worker_id, ngx_str_t *msg);
/* delivers one message received on this worker's channel */
void ngx_codeb_bus_dispatch(u_char *msg, size_t len);
/* channel name of this worker, for the subscriber link */
ngx_str_t *ngx_codeb_bus_channel(void);
/*
 * splits a bus header into n space-separated words, the last one taking
 * the rest of the line; 0 when there are fewer
 */
ngx_uint_t ngx_codeb_bus_words(ngx_str_t *header, ngx_str_t *words,
    ngx_uint_t n);


#endif /* _NGX_CODEB_REDIS_H_INCLUDED_ */

/*
 * ngx_codeb_signal_module: the codeb_signal* directives (docs/
 * configuration.md) and the content handler of /signal.ashx: WebSocket
 * upgrade -> peer, otherwise the plain HTTP query flags (docs/signal.md).
 */

#include "ngx_codeb_signal.h"


static ngx_int_t ngx_codeb_signal_handler(ngx_http_request_t *r);
static void *ngx_codeb_signal_create_main_conf(ngx_conf_t *cf);
static void *ngx_codeb_signal_create_loc_conf(ngx_conf_t *cf);
static char *ngx_codeb_signal_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_codeb_signal(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_codeb_signal_init(ngx_conf_t *cf);
static ngx_int_t ngx_codeb_signal_init_process(ngx_cycle_t *cycle);
static void ngx_codeb_signal_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_codeb_signal_commands[] = {

    /* codeb_signal; -- serve /signal.ashx in this location */
    { ngx_string("codeb_signal"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_codeb_signal,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* bytes of one message after reassembly; default 65536 */
    { ngx_string("codeb_signal_max_message"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, ws.max_message),
      NULL },

    /* bytes queued for a slow reader before it is disconnected; 256k */
    { ngx_string("codeb_signal_send_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, ws.max_queue),
      NULL },

    /* WebSocket ping period; default 25s */
    { ngx_string("codeb_signal_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, ws.ping_interval),
      NULL },

    /* silence after which a peer is dead; default 60s */
    { ngx_string("codeb_signal_ping_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, ws.ping_timeout),
      NULL },

    /* peers per room; default 16 */
    { ngx_string("codeb_signal_room_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, room_size),
      NULL },

    /* messages per second per connection; default 50 */
    { ngx_string("codeb_signal_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, rate),
      NULL },

    /* messages allowed in a burst; default 100 */
    { ngx_string("codeb_signal_burst"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, burst),
      NULL },

    /* how long a dropped peer keeps its place; default 20s, 0 disables */
    { ngx_string("codeb_signal_resume_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, grace),
      NULL },

    /* bytes of sent frames kept per peer for a resume; default 256k */
    { ngx_string("codeb_signal_resume_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, resume_buffer),
      NULL },

    /* TTL of a peer's Redis state, refreshed by the keepalive; 90s */
    { ngx_string("codeb_signal_state_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_signal_loc_conf_t, state_ttl),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_codeb_signal_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_codeb_signal_init,                 /* postconfiguration */

    ngx_codeb_signal_create_main_conf,     /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_codeb_signal_create_loc_conf,      /* create location configuration */
    ngx_codeb_signal_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_codeb_signal_module = {
    NGX_MODULE_V1,
    &ngx_codeb_signal_module_ctx,          /* module context */
    ngx_codeb_signal_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_codeb_signal_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_codeb_signal_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_codeb_signal_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_codeb_ws_t               *ws;
    ngx_codeb_tenant_t           *t;
    ngx_codeb_signal_loc_conf_t  *conf;

    t = ngx_codeb_tenant(r);

    if (!ngx_codeb_ws_is_upgrade(r)) {
        return ngx_codeb_signal_http(r, t);
    }

    if (t == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_codeb_http_error(r, NGX_HTTP_FORBIDDEN, "no_tenant",
                                    "no codeb_tenant for this host");
    }

    conf = ngx_http_get_module_loc_conf(r, ngx_codeb_signal_module);

    rc = ngx_codeb_ws_accept(r, &conf->ws, &ws);
    if (rc != NGX_OK) {
        return ngx_codeb_ws_refuse(r, rc);
    }

    ngx_codeb_signal_peer_start(ws, conf, t);

    return NGX_DONE;
}


static void *
ngx_codeb_signal_create_main_conf(ngx_conf_t *cf)
{
    ngx_codeb_signal_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_signal_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&smcf->locations, cf->pool, 4, sizeof(void *))
        != NGX_OK)
    {
        return NULL;
    }

    return smcf;
}


static void *
ngx_codeb_signal_create_loc_conf(ngx_conf_t *cf)
{
    ngx_codeb_signal_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_signal_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->ws.max_message = NGX_CONF_UNSET_SIZE;
    conf->ws.max_queue = NGX_CONF_UNSET_SIZE;
    conf->ws.ping_interval = NGX_CONF_UNSET_MSEC;
    conf->ws.ping_timeout = NGX_CONF_UNSET_MSEC;
    conf->room_size = NGX_CONF_UNSET_UINT;
    conf->rate = NGX_CONF_UNSET_UINT;
    conf->burst = NGX_CONF_UNSET_UINT;
    conf->grace = NGX_CONF_UNSET_MSEC;
    conf->resume_buffer = NGX_CONF_UNSET_SIZE;
    conf->state_ttl = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_codeb_signal_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_codeb_signal_loc_conf_t  *prev = parent;
    ngx_codeb_signal_loc_conf_t  *conf = child;

    ngx_conf_merge_size_value(conf->ws.max_message, prev->ws.max_message,
                              65536);
    ngx_conf_merge_size_value(conf->ws.max_queue, prev->ws.max_queue,
                              262144);
    ngx_conf_merge_msec_value(conf->ws.ping_interval, prev->ws.ping_interval,
                              25000);
    ngx_conf_merge_msec_value(conf->ws.ping_timeout, prev->ws.ping_timeout,
                              60000);
    ngx_conf_merge_uint_value(conf->room_size, prev->room_size, 16);
    ngx_conf_merge_uint_value(conf->rate, prev->rate, 50);
    ngx_conf_merge_uint_value(conf->burst, prev->burst, 100);
    ngx_conf_merge_msec_value(conf->grace, prev->grace, 20000);
    ngx_conf_merge_size_value(conf->resume_buffer, prev->resume_buffer,
                              262144);
    ngx_conf_merge_sec_value(conf->state_ttl, prev->state_ttl, 90);

    if (conf->ws.ping_interval < 1000 || conf->ws.ping_timeout < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_signal ping interval and timeout must be "
                           "at least 1s");
        return NGX_CONF_ERROR;
    }

    if (conf->ws.max_message < 1024
        || conf->ws.max_queue < conf->ws.max_message)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_signal_max_message must be at least 1k and "
                           "codeb_signal_send_queue at least as large");
        return NGX_CONF_ERROR;
    }

    if (conf->room_size == 0 || conf->rate == 0 || conf->burst == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_signal_room_size, codeb_signal_rate and "
                           "codeb_signal_burst must be positive");
        return NGX_CONF_ERROR;
    }

    if (conf->state_ttl * 1000 < (time_t) conf->ws.ping_interval * 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_signal_state_ttl must be at least twice "
                           "codeb_signal_ping_interval");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_codeb_signal(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_signal_loc_conf_t  *scf = conf;

    ngx_http_core_loc_conf_t       *clcf;
    ngx_codeb_signal_loc_conf_t   **loc;
    ngx_codeb_signal_main_conf_t   *smcf;

    if (scf->enable) {
        return "is duplicate";
    }

    if (ngx_codeb_require_redis(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    scf->enable = 1;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_codeb_signal_module);
    loc = ngx_array_push(&smcf->locations);
    if (loc == NULL) {
        return NGX_CONF_ERROR;
    }

    *loc = scf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_codeb_signal_handler;

    return NGX_CONF_OK;
}


/*
 * after the merge: the dead-worker sweep runs a few times per state TTL
 * of any codeb_signal location, at least every 10 s
 */
static ngx_int_t
ngx_codeb_signal_init(ngx_conf_t *cf)
{
    ngx_uint_t                     i;
    ngx_codeb_signal_loc_conf_t  **loc;
    ngx_codeb_signal_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_codeb_signal_module);

    if (smcf->locations.nelts == 0) {
        return NGX_OK;
    }

    smcf->sweep_interval = 10000;
    loc = smcf->locations.elts;

    for (i = 0; i < smcf->locations.nelts; i++) {
        smcf->sweep_interval = ngx_min(smcf->sweep_interval,
                                       (ngx_msec_t) loc[i]->state_ttl
                                       * 1000 / 3);
    }

    return ngx_codeb_signal_peer_init(cf);
}


static ngx_int_t
ngx_codeb_signal_init_process(ngx_cycle_t *cycle)
{
    ngx_codeb_signal_main_conf_t  *smcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_codeb_signal_module);
    if (smcf == NULL || smcf->locations.nelts == 0) {
        return NGX_OK;
    }

    return ngx_codeb_signal_peer_init_process(cycle, smcf->sweep_interval);
}


static void
ngx_codeb_signal_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_process == NGX_PROCESS_WORKER
        || ngx_process == NGX_PROCESS_SINGLE)
    {
        ngx_codeb_signal_peer_exit_process(cycle);
    }
}

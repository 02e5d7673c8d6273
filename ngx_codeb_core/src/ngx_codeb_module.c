/*
 * ngx_codeb_module: the cycle-level part of ngx_codeb_core, a core module
 * so that http{} and stream{} modules share it: one pair of Redis links
 * per worker, the bus, the worker identity "<host_id>:<pid>", the
 * worker's JSON generator and scratch pool.  Its settings are written by
 * the http{} directives of ngx_codeb_core_module (ngx_codeb_core_module.c)
 * and checked here once the whole configuration is read, so the order of
 * directives does not matter.
 */

#include "ngx_codeb_core.h"


static void *ngx_codeb_create_conf(ngx_cycle_t *cycle);
static char *ngx_codeb_init_conf(ngx_cycle_t *cycle, void *conf);
static ngx_int_t ngx_codeb_init_process(ngx_cycle_t *cycle);
static void ngx_codeb_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_codeb_redis_init_process(ngx_cycle_t *cycle,
    ngx_codeb_conf_t *ccf);
void ngx_codeb_redis_exit_process(ngx_cycle_t *cycle);


static ngx_core_module_t  ngx_codeb_module_ctx = {
    ngx_string("codeb"),
    ngx_codeb_create_conf,
    ngx_codeb_init_conf
};


ngx_module_t  ngx_codeb_module = {
    NGX_MODULE_V1,
    &ngx_codeb_module_ctx,                 /* module context */
    NULL,                                  /* module directives */
    NGX_CORE_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_codeb_init_process,                /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_codeb_exit_process,                /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t    ngx_codeb_worker_id_str;
static ngx_pool_t  *ngx_codeb_scratch_pool;


ngx_str_t *
ngx_codeb_worker_id(void)
{
    return &ngx_codeb_worker_id_str;
}


ngx_pool_t *
ngx_codeb_scratch(void)
{
    return ngx_codeb_scratch_pool;
}


void
ngx_codeb_scratch_reset(void)
{
    if (ngx_codeb_scratch_pool) {
        ngx_reset_pool(ngx_codeb_scratch_pool);
    }
}


ngx_int_t
ngx_codeb_require_redis(ngx_conf_t *cf)
{
    size_t             len;
    ngx_str_t         *value;
    ngx_codeb_conf_t  *ccf;

    ccf = ngx_codeb_conf(cf);

    if (ccf->required_by.len) {
        return NGX_OK;
    }

    value = cf->args->elts;
    len = value[0].len + cf->conf_file->file.name.len + NGX_INT_T_LEN
          + sizeof("\"\" in :");

    ccf->required_by.data = ngx_pnalloc(cf->pool, len);
    if (ccf->required_by.data == NULL) {
        return NGX_ERROR;
    }

    ccf->required_by.len = ngx_sprintf(ccf->required_by.data,
                                       "\"%V\" in %V:%ui", &value[0],
                                       &cf->conf_file->file.name,
                                       cf->conf_file->line)
                           - ccf->required_by.data;

    return NGX_OK;
}


static void *
ngx_codeb_create_conf(ngx_cycle_t *cycle)
{
    ngx_codeb_conf_t  *ccf;

    ccf = ngx_pcalloc(cycle->pool, sizeof(ngx_codeb_conf_t));
    if (ccf == NULL) {
        return NULL;
    }

    ccf->redis_timeout = NGX_CONF_UNSET_MSEC;

    return ccf;
}


static char *
ngx_codeb_init_conf(ngx_cycle_t *cycle, void *conf)
{
    ngx_codeb_conf_t  *ccf = conf;

    u_char  *p;

    ngx_conf_init_msec_value(ccf->redis_timeout, 3000);

    if (ccf->host_id.len == 0) {
        ccf->host_id = cycle->hostname;
    }

    for (p = ccf->host_id.data; p < ccf->host_id.data + ccf->host_id.len;
         p++)
    {
        if (*p <= ' ' || *p == ':' || *p >= 0x7f) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "codeb_host_id \"%V\" may not contain spaces, "
                          "colons or control characters", &ccf->host_id);
            return NGX_CONF_ERROR;
        }
    }

    if (ccf->required_by.len && ccf->redis.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "%V requires \"codeb_redis\" in http{}",
                      &ccf->required_by);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_codeb_init_process(ngx_cycle_t *cycle)
{
    ngx_codeb_conf_t  *ccf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    ccf = (ngx_codeb_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_codeb_module);

    ngx_codeb_worker_id_str.data = ngx_pnalloc(cycle->pool,
                                               ccf->host_id.len + 1
                                               + NGX_INT64_LEN);
    if (ngx_codeb_worker_id_str.data == NULL) {
        return NGX_ERROR;
    }

    ngx_codeb_worker_id_str.len = ngx_sprintf(ngx_codeb_worker_id_str.data,
                                              "%V:%P", &ccf->host_id, ngx_pid)
                                  - ngx_codeb_worker_id_str.data;

    ngx_codeb_scratch_pool = ngx_create_pool(4096, cycle->log);
    if (ngx_codeb_scratch_pool == NULL) {
        return NGX_ERROR;
    }

    if (ccf->redis.len == 0) {
        return NGX_OK;
    }

    return ngx_codeb_redis_init_process(cycle, ccf);
}


static void
ngx_codeb_exit_process(ngx_cycle_t *cycle)
{
    ngx_codeb_redis_exit_process(cycle);
    ngx_codeb_gen_free();

    if (ngx_codeb_scratch_pool) {
        ngx_destroy_pool(ngx_codeb_scratch_pool);
        ngx_codeb_scratch_pool = NULL;
    }
}

/*
 * The bus between workers and hosts: Redis pub/sub on one channel per
 * worker, "codeb:w:<host_id>:<pid>".  A message is
 * "<kind> <header words...>\n<body>"; handlers are found by kind.
 * Messages are at-most-once (Redis pub/sub); per publisher connection and
 * channel they arrive in order.
 */

#include "ngx_codeb_core.h"


#define NGX_CODEB_BUS_PREFIX  "codeb:w:"


static ngx_str_t  ngx_codeb_bus_chan;


ngx_int_t
ngx_codeb_bus_on(ngx_conf_t *cf, ngx_str_t *kind,
    ngx_codeb_bus_handler_pt handler)
{
    ngx_codeb_conf_t      *cmcf;
    ngx_codeb_bus_kind_t  *k;

    if (ngx_codeb_require_redis(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_codeb_conf(cf);

    if (cmcf->bus_handlers == NULL) {
        cmcf->bus_handlers = ngx_array_create(cf->pool, 8,
                                              sizeof(ngx_codeb_bus_kind_t));
        if (cmcf->bus_handlers == NULL) {
            return NGX_ERROR;
        }
    }

    k = ngx_array_push(cmcf->bus_handlers);
    if (k == NULL) {
        return NGX_ERROR;
    }

    k->kind = *kind;
    k->handler = handler;

    return NGX_OK;
}


ngx_str_t *
ngx_codeb_bus_channel(void)
{
    ngx_str_t  *wid;

    if (ngx_codeb_bus_chan.data == NULL) {
        wid = ngx_codeb_worker_id();

        ngx_codeb_bus_chan.len = sizeof(NGX_CODEB_BUS_PREFIX) - 1 + wid->len;
        ngx_codeb_bus_chan.data = ngx_pnalloc(ngx_cycle->pool,
                                              ngx_codeb_bus_chan.len);
        if (ngx_codeb_bus_chan.data == NULL) {
            ngx_codeb_bus_chan.len = 0;
            return &ngx_codeb_bus_chan;
        }

        ngx_sprintf(ngx_codeb_bus_chan.data, NGX_CODEB_BUS_PREFIX "%V", wid);
    }

    return &ngx_codeb_bus_chan;
}


ngx_int_t
ngx_codeb_bus_send(ngx_str_t *worker_id, ngx_str_t *msg)
{
    u_char                  chan[sizeof(NGX_CODEB_BUS_PREFIX) + 256];
    ngx_codeb_redis_args_t  a;

    if (worker_id->len > 256) {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "codeb bus: to %V: \"%*s\"", worker_id,
                   ngx_min(msg->len, 64), msg->data);

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "PUBLISH");
    ngx_codeb_redis_arg(&a, chan,
                        ngx_sprintf(chan, NGX_CODEB_BUS_PREFIX "%V", worker_id)
                        - chan);
    ngx_codeb_redis_arg_str(&a, msg);

    return ngx_codeb_redis_command(NULL, NULL, &a);
}


void
ngx_codeb_bus_dispatch(u_char *msg, size_t len)
{
    u_char                 *nl, *sp;
    ngx_str_t               header, body;
    ngx_uint_t              i;
    ngx_codeb_conf_t       *cmcf;
    ngx_codeb_bus_kind_t   *k;

    cmcf = (ngx_codeb_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                             ngx_codeb_module);
    if (cmcf->bus_handlers == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "codeb bus: received \"%*s\"", ngx_min(len, 64), msg);

    nl = ngx_strlchr(msg, msg + len, '\n');
    if (nl == NULL) {
        nl = msg + len;
    }

    header.data = msg;
    header.len = nl - msg;
    body.data = nl < msg + len ? nl + 1 : nl;
    body.len = msg + len - body.data;

    sp = ngx_strlchr(msg, nl, ' ');
    if (sp == NULL) {
        sp = nl;
    }

    k = cmcf->bus_handlers->elts;

    for (i = 0; i < cmcf->bus_handlers->nelts; i++) {
        if (k[i].kind.len == (size_t) (sp - msg)
            && ngx_strncmp(k[i].kind.data, msg, sp - msg) == 0)
        {
            k[i].handler(&header, &body);
            return;
        }
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "codeb bus: message of unknown kind \"%*s\" ignored",
                  ngx_min((size_t) (sp - msg), 32), msg);
}


ngx_uint_t
ngx_codeb_bus_words(ngx_str_t *header, ngx_str_t *words, ngx_uint_t n)
{
    u_char      *p, *last, *sp;
    ngx_uint_t   i;

    p = header->data;
    last = p + header->len;

    for (i = 0; i < n; i++) {
        sp = (i == n - 1) ? last : ngx_strlchr(p, last, ' ');
        if (sp == NULL || sp == p) {
            return 0;
        }

        words[i].data = p;
        words[i].len = sp - p;
        p = sp + 1;
    }

    return 1;
}

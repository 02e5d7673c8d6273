/*
 * ngx_codeb_sipws_module: the tenant's SIP settings in its server{} and
 * SIP over WebSocket (RFC 7118) in a location: subprotocol "sip" required
 * and echoed (§4), one SIP message per WebSocket message, text or binary
 * (§5).  docs/configuration.md lists the directives.
 */

#include "ngx_codeb_sip.h"


static ngx_int_t ngx_codeb_sipws_handler(ngx_http_request_t *r);
static void ngx_codeb_sipws_message(ngx_codeb_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len);
static void ngx_codeb_sipws_closed(ngx_codeb_ws_t *ws);
static void *ngx_codeb_sipws_create_main_conf(ngx_conf_t *cf);
static void *ngx_codeb_sipws_create_srv_conf(ngx_conf_t *cf);
static char *ngx_codeb_sipws_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_codeb_sipws_create_loc_conf(ngx_conf_t *cf);
static char *ngx_codeb_sipws_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_codeb_sipws(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_codeb_sipws_user(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_sipws_users_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_sipws_acl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_sipws_expires(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_sipws_media(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_codeb_sipws_init(ngx_conf_t *cf);
static ngx_int_t ngx_codeb_sipws_init_process(ngx_cycle_t *cycle);
static void ngx_codeb_sipws_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_codeb_sipws_commands[] = {

    /* codeb_sip_media host:port; the NG daemon; 127.0.0.1:2223 */
    { ngx_string("codeb_sip_media"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_codeb_sipws_media,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* codeb_sip_ws; -- SIP over WebSocket in this location */
    { ngx_string("codeb_sip_ws"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_codeb_sipws,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* WebSocket ping period; default 25s */
    { ngx_string("codeb_sip_ws_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_sip_loc_conf_t, ws.ping_interval),
      NULL },

    /* silence after which a WebSocket is closed; default 60s */
    { ngx_string("codeb_sip_ws_ping_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_codeb_sip_loc_conf_t, ws.ping_timeout),
      NULL },

    /* codeb_sip_realm realm; digest realm; default: the tenant name */
    { ngx_string("codeb_sip_realm"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_sip_srv_conf_t, realm),
      NULL },

    /* codeb_sip_user name password=secret; */
    { ngx_string("codeb_sip_user"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE2,
      ngx_codeb_sipws_user,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    /* codeb_sip_users_file path; htdigest lines "user:realm:MD5 HA1" */
    { ngx_string("codeb_sip_users_file"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_codeb_sipws_users_file,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    /* codeb_sip_acl allow|deny cidr|all; REGISTER and INVITE, first match */
    { ngx_string("codeb_sip_acl"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE2,
      ngx_codeb_sipws_acl,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    /* codeb_sip_trunk name host=... [...]; a trunk (_trunk.c) */
    { ngx_string("codeb_sip_trunk"),
      NGX_HTTP_SRV_CONF|NGX_CONF_2MORE,
      ngx_codeb_sip_trunk_conf,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    /* codeb_sip_expires min default max; registration lifetimes (s) */
    { ngx_string("codeb_sip_expires"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE3,
      ngx_codeb_sipws_expires,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_codeb_sipws_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_codeb_sipws_init,                  /* postconfiguration */

    ngx_codeb_sipws_create_main_conf,      /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_codeb_sipws_create_srv_conf,       /* create server configuration */
    ngx_codeb_sipws_merge_srv_conf,        /* merge server configuration */

    ngx_codeb_sipws_create_loc_conf,       /* create location configuration */
    ngx_codeb_sipws_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_codeb_sipws_module = {
    NGX_MODULE_V1,
    &ngx_codeb_sipws_module_ctx,           /* module context */
    ngx_codeb_sipws_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_codeb_sipws_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_codeb_sipws_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_codeb_sipws_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_codeb_ws_t            *ws;
    ngx_codeb_sip_flow_t      *flow;
    ngx_codeb_sip_srv_conf_t  *sip;
    ngx_codeb_sip_loc_conf_t  *slcf;

    sip = ngx_http_get_module_srv_conf(r, ngx_codeb_sipws_module);

    if (!ngx_codeb_ws_is_upgrade(r) || sip->tenant == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (sip->tenant == NULL) {
            return ngx_codeb_http_error(r, NGX_HTTP_FORBIDDEN, "no_tenant",
                                        "no codeb_tenant for this host");
        }

        return ngx_codeb_http_error(r, NGX_HTTP_UPGRADE_REQUIRED,
                                    "upgrade_required",
                                    "SIP over WebSocket: upgrade with the "
                                    "subprotocol sip (RFC 7118)");
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_codeb_sipws_module);

    rc = ngx_codeb_ws_accept(r, &slcf->ws, &ws);
    if (rc != NGX_OK) {
        return ngx_codeb_ws_refuse(r, rc);
    }

    flow = ngx_codeb_sip_flow_create(r->connection->ssl ? NGX_CODEB_SIP_WSS
                                                        : NGX_CODEB_SIP_WS,
                                     r->connection->log);
    if (flow == NULL) {
        ngx_codeb_ws_close(ws, 1011, "out of memory");
        return NGX_DONE;
    }

    flow->sip = sip;
    flow->ws = ws;
    flow->opcode = NGX_CODEB_WS_TEXT;
    flow->sockaddr = r->connection->sockaddr;
    flow->socklen = r->connection->socklen;
    flow->addr_text = r->connection->addr_text;
    flow->port = ngx_inet_get_port(r->connection->sockaddr);

    ws->data = flow;
    ws->on_message = ngx_codeb_sipws_message;
    ws->on_closed = ngx_codeb_sipws_closed;

    return NGX_DONE;
}


static void
ngx_codeb_sipws_message(ngx_codeb_ws_t *ws, ngx_uint_t opcode, u_char *data,
    size_t len)
{
    ngx_codeb_sip_flow_t  *flow = ws->data;

    /* answers go out in the kind of frame the client uses (§5) */
    flow->opcode = opcode;

    ngx_codeb_sip_receive(flow, data, len);
}


static void
ngx_codeb_sipws_closed(ngx_codeb_ws_t *ws)
{
    ngx_codeb_sip_flow_t  *flow = ws->data;

    flow->ws = NULL;
    ngx_codeb_sip_flow_close(flow);
}


ngx_codeb_sip_srv_conf_t *
ngx_codeb_sip_tenant_by_host(ngx_str_t *host)
{
    ngx_uint_t                  i;
    ngx_codeb_sip_srv_conf_t  **t;
    ngx_codeb_sip_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_codeb_sipws_module);
    if (smcf == NULL) {
        return NULL;
    }

    t = smcf->tenants.elts;

    for (i = 0; i < smcf->tenants.nelts; i++) {
        if ((t[i]->realm.len == host->len
             && ngx_strncasecmp(t[i]->realm.data, host->data, host->len)
                == 0)
            || (t[i]->tenant->name.len == host->len
                && ngx_strncasecmp(t[i]->tenant->name.data, host->data,
                                   host->len) == 0))
        {
            return t[i];
        }
    }

    return NULL;
}


static void *
ngx_codeb_sipws_create_main_conf(ngx_conf_t *cf)
{
    ngx_codeb_sip_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_sip_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&smcf->tenants, cf->pool, 4, sizeof(void *))
        != NGX_OK
        || ngx_array_init(&smcf->trunks, cf->pool, 4, sizeof(void *))
           != NGX_OK)
    {
        return NULL;
    }

    return smcf;
}


static void *
ngx_codeb_sipws_create_srv_conf(ngx_conf_t *cf)
{
    ngx_codeb_sip_srv_conf_t  *sip;

    sip = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_sip_srv_conf_t));
    if (sip == NULL) {
        return NULL;
    }

    sip->expires_min = NGX_CONF_UNSET;
    sip->expires_max = NGX_CONF_UNSET;
    sip->expires_default = NGX_CONF_UNSET;
    sip->nonce_ttl = NGX_CONF_UNSET;

    return sip;
}


static char *
ngx_codeb_sipws_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_codeb_sip_srv_conf_t  *prev = parent;
    ngx_codeb_sip_srv_conf_t  *conf = child;

    ngx_uint_t                   i;
    ngx_codeb_tenant_t          *t;
    ngx_codeb_sip_trunk_t       *trunk, **tr;
    ngx_codeb_sip_srv_conf_t   **tp;
    ngx_codeb_sip_main_conf_t   *smcf;

    ngx_conf_merge_sec_value(conf->expires_min, prev->expires_min, 60);
    ngx_conf_merge_sec_value(conf->expires_default, prev->expires_default,
                             600);
    ngx_conf_merge_sec_value(conf->expires_max, prev->expires_max, 3600);
    ngx_conf_merge_sec_value(conf->nonce_ttl, prev->nonce_ttl, 300);

    t = ngx_http_conf_get_module_srv_conf(cf, ngx_codeb_core_module);

    if (t->name.len == 0) {
        if (conf->trunks) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "codeb_sip_trunk needs codeb_tenant in its "
                               "server");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    conf->tenant = t;

    if (conf->realm.len == 0) {
        conf->realm = t->name;
    }

    if (conf->users == NULL && conf->acl == NULL && conf->trunks == NULL
        && !conf->ws && conf->realm.data == t->name.data)
    {
        /* a tenant without SIP settings: no SIP here */
        return NGX_CONF_OK;
    }

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_codeb_sipws_module);
    tp = ngx_array_push(&smcf->tenants);
    if (tp == NULL) {
        return NGX_CONF_ERROR;
    }

    *tp = conf;

    /* every trunk of every tenant, for the workers' loops */

    trunk = conf->trunks ? conf->trunks->elts : NULL;

    for (i = 0; trunk && i < conf->trunks->nelts; i++) {
        tr = ngx_array_push(&smcf->trunks);
        if (tr == NULL) {
            return NGX_CONF_ERROR;
        }

        *tr = &trunk[i];
    }

    return NGX_CONF_OK;
}


static void *
ngx_codeb_sipws_create_loc_conf(ngx_conf_t *cf)
{
    ngx_codeb_sip_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_sip_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->ws.ping_interval = NGX_CONF_UNSET_MSEC;
    conf->ws.ping_timeout = NGX_CONF_UNSET_MSEC;

    return conf;
}


static char *
ngx_codeb_sipws_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_codeb_sip_loc_conf_t  *prev = parent;
    ngx_codeb_sip_loc_conf_t  *conf = child;

    ngx_conf_merge_msec_value(conf->ws.ping_interval, prev->ws.ping_interval,
                              25000);
    ngx_conf_merge_msec_value(conf->ws.ping_timeout, prev->ws.ping_timeout,
                              60000);

    conf->ws.max_message = NGX_CODEB_SIP_MAX_MESSAGE;
    conf->ws.max_queue = 262144;
    ngx_str_set(&conf->ws.subprotocol, "sip");

    if (conf->ws.ping_interval < 1000 || conf->ws.ping_timeout < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_sip_ws ping interval and timeout must be "
                           "at least 1s");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_codeb_sipws(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_sip_loc_conf_t  *slcf = conf;

    ngx_http_core_loc_conf_t  *clcf;
    ngx_codeb_sip_srv_conf_t  *sip;

    if (slcf->enable) {
        return "is duplicate";
    }

    if (ngx_codeb_require_redis(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    slcf->enable = 1;

    /* the server takes SIP even without users of its own */
    sip = ngx_http_conf_get_module_srv_conf(cf, ngx_codeb_sipws_module);
    sip->ws = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_codeb_sipws_handler;

    return NGX_CONF_OK;
}


/* codeb_sip_user <name> password=<secret> */
static char *
ngx_codeb_sipws_user(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_sip_srv_conf_t  *sip = conf;

    ngx_str_t             *value;
    ngx_codeb_sip_user_t  *u;

    value = cf->args->elts;

    if (value[2].len <= 9 || ngx_strncmp(value[2].data, "password=", 9) != 0)
    {
        return "expects name password=<secret>";
    }

    if (sip->users == NULL) {
        sip->users = ngx_array_create(cf->pool, 8,
                                      sizeof(ngx_codeb_sip_user_t));
        if (sip->users == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    u = ngx_array_push(sip->users);
    if (u == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(u, sizeof(ngx_codeb_sip_user_t));
    u->name = value[1];
    u->password.data = value[2].data + 9;
    u->password.len = value[2].len - 9;

    return NGX_CONF_OK;
}


/*
 * codeb_sip_users_file <path>: htdigest lines "user:realm:HA1"; lines of
 * another realm than the tenant's are skipped when the realm is known
 */
static char *
ngx_codeb_sipws_users_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_sip_srv_conf_t  *sip = conf;

    u_char                *p, *last, *line, *c1, *c2;
    ssize_t                n;
    ngx_str_t             *value, name;
    ngx_file_t             file;
    ngx_file_info_t        fi;
    ngx_codeb_sip_user_t  *u;

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = name;
    file.log = cf->log;
    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 4 * 1024 * 1024)
    {
        ngx_close_file(file.fd);
        return "file is unreadable or larger than 4M";
    }

    p = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (p == NULL) {
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, p, (size_t) ngx_file_size(&fi), 0);
    ngx_close_file(file.fd);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        return "could not be read";
    }

    last = p + n;

    if (sip->users == NULL) {
        sip->users = ngx_array_create(cf->pool, 8,
                                      sizeof(ngx_codeb_sip_user_t));
        if (sip->users == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (line = p; line < last; line = p + 1) {
        p = ngx_strlchr(line, last, '\n');
        if (p == NULL) {
            p = last;
        }

        c1 = ngx_strlchr(line, p, ':');
        c2 = c1 ? ngx_strlchr(c1 + 1, p, ':') : NULL;

        if (c2 == NULL || p - (c2 + 1) < 32 || c1 == line) {
            continue;
        }

        u = ngx_array_push(sip->users);
        if (u == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(u, sizeof(ngx_codeb_sip_user_t));
        u->name.data = line;
        u->name.len = c1 - line;
        ngx_memcpy(u->ha1_md5, c2 + 1, 32);
    }

    return NGX_CONF_OK;
}


/* codeb_sip_acl allow|deny <cidr>|all */
static char *
ngx_codeb_sipws_acl(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_sip_srv_conf_t  *sip = conf;

    ngx_int_t             rc;
    ngx_str_t            *value;
    ngx_codeb_sip_acl_t  *rule;

    value = cf->args->elts;

    if (sip->acl == NULL) {
        sip->acl = ngx_array_create(cf->pool, 4, sizeof(ngx_codeb_sip_acl_t));
        if (sip->acl == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(sip->acl);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_codeb_sip_acl_t));

    if (ngx_strcmp(value[1].data, "deny") == 0) {
        rule->deny = 1;

    } else if (ngx_strcmp(value[1].data, "allow") != 0) {
        return "expects allow or deny";
    }

    if (ngx_strcmp(value[2].data, "all") == 0) {
        rule->cidr.family = 0;
        return NGX_CONF_OK;
    }

    rc = ngx_ptocidr(&value[2], &rule->cidr);

    if (rc == NGX_ERROR) {
        return "has an invalid address";
    }

    return NGX_CONF_OK;
}


/* codeb_sip_expires <min> <default> <max> */
static char *
ngx_codeb_sipws_expires(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_sip_srv_conf_t  *sip = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    sip->expires_min = ngx_parse_time(&value[1], 1);
    sip->expires_default = ngx_parse_time(&value[2], 1);
    sip->expires_max = ngx_parse_time(&value[3], 1);

    if (sip->expires_min == (time_t) NGX_ERROR
        || sip->expires_default == (time_t) NGX_ERROR
        || sip->expires_max == (time_t) NGX_ERROR
        || sip->expires_min > sip->expires_default
        || sip->expires_default > sip->expires_max)
    {
        return "expects times min <= default <= max";
    }

    return NGX_CONF_OK;
}


/* codeb_sip_media <host:port>: where the NG requests go */
static char *
ngx_codeb_sipws_media(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_sip_main_conf_t  *smcf = conf;

    ngx_url_t   u;
    ngx_str_t  *value;

    if (smcf->media) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = value[1];

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0
        || u.no_port)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_sip_media \"%V\": %s", &value[1],
                           u.err ? u.err : "expected host:port");
        return NGX_CONF_ERROR;
    }

    smcf->media = &u.addrs[0];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_codeb_sipws_init(ngx_conf_t *cf)
{
    ngx_url_t                   u;
    ngx_codeb_sip_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf, ngx_codeb_sipws_module);

    if (smcf->tenants.nelts == 0) {
        return NGX_OK;
    }

    if (smcf->media == NULL) {
        ngx_memzero(&u, sizeof(ngx_url_t));
        ngx_str_set(&u.url, "127.0.0.1:2223");

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            return NGX_ERROR;
        }

        smcf->media = &u.addrs[0];
    }

    return ngx_codeb_sip_flow_init(cf);
}


static ngx_int_t
ngx_codeb_sipws_init_process(ngx_cycle_t *cycle)
{
    ngx_codeb_sip_main_conf_t  *smcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_codeb_sipws_module);
    if (smcf == NULL || smcf->tenants.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_codeb_sip_flow_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_codeb_sip_call_init_process();
    ngx_codeb_sip_originate_init_process();

    if (ngx_codeb_sip_trunks_init_process(smcf) != NGX_OK
        || ngx_codeb_sip_trunk_reg_init_process(cycle, smcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_codeb_sip_ng_init_process(cycle, smcf->media);
}


static void
ngx_codeb_sipws_exit_process(ngx_cycle_t *cycle)
{
    ngx_codeb_sip_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_codeb_sipws_module);

    if (smcf && smcf->tenants.nelts
        && (ngx_process == NGX_PROCESS_WORKER
            || ngx_process == NGX_PROCESS_SINGLE))
    {
        ngx_codeb_sip_trunks_exit_process(smcf);
    }

    ngx_codeb_sip_trunk_reg_exit_process(cycle);
    ngx_codeb_sip_ng_exit_process();
}

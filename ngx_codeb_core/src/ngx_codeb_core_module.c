/*
 * ngx_codeb_core_module: the http{} directives of ngx_codeb_module
 * (codeb_redis, codeb_host_id, codeb_redis_timeout) and the server{}-level
 * tenant directives shared by the CodeB modules (docs/configuration.md).
 */

#include "ngx_codeb_core.h"
#include "codeb_build.h"


static char *ngx_codeb_core_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_core_global(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_codeb_core_create_srv_conf(ngx_conf_t *cf);
static char *ngx_codeb_core_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_codeb_core_vnum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_core_camera(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_core_route(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_codeb_core_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* set by ngx_codeb_sipws in its workers (ngx_codeb_core.h) */
ngx_int_t (*ngx_codeb_originate_start)(ngx_codeb_originate_t *o);
void (*ngx_codeb_originate_stop)(ngx_codeb_originate_t *o);


static ngx_command_t  ngx_codeb_core_commands[] = {

    /* codeb_redis unix:/path | host:port; the Redis every worker shares */
    { ngx_string("codeb_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_codeb_core_redis,
      0,
      0,
      NULL },

    /* codeb_host_id name; this host in worker ids; default: hostname */
    { ngx_string("codeb_host_id"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_codeb_core_global,
      0,
      offsetof(ngx_codeb_conf_t, host_id),
      ngx_conf_set_str_slot },

    /* codeb_redis_timeout time; connect and reply timeout; default 3s */
    { ngx_string("codeb_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_codeb_core_global,
      0,
      offsetof(ngx_codeb_conf_t, redis_timeout),
      ngx_conf_set_msec_slot },

    { ngx_string("codeb_tenant"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, name),
      NULL },

    { ngx_string("codeb_turn_uri"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_array_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, turn_uris),
      NULL },

    { ngx_string("codeb_stun_uri"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_array_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, stun_uris),
      NULL },

    { ngx_string("codeb_turn_secret"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, turn_secret),
      NULL },

    { ngx_string("codeb_turn_ttl"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, turn_ttl),
      NULL },

    { ngx_string("codeb_bridge_secret"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, bridge_secret),
      NULL },

    { ngx_string("codeb_admin_secret"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, admin_secret),
      NULL },

    { ngx_string("codeb_oidc_issuer"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, oidc_issuer),
      NULL },

    { ngx_string("codeb_oidc_audience"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, oidc_audience),
      NULL },

    { ngx_string("codeb_oidc_hs256_secret"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, oidc_hs256_secret),
      NULL },

    { ngx_string("codeb_oidc_rs256_key"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_codeb_core_key_file,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, oidc_rs256_key),
      NULL },

    /*
     * codeb_oidc_signing_key file; the platform IdP's EC P-256 private key
     * (PEM): tokens of /oidc.ashx/token are ES256 with it
     */
    { ngx_string("codeb_oidc_signing_key"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_codeb_core_key_file,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_codeb_tenant_t, oidc_signing_pem),
      NULL },

    { ngx_string("codeb_vnum"),
      NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_codeb_core_vnum,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("codeb_camera"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE12,
      ngx_codeb_core_camera,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("codeb_inbound_route"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE3,
      ngx_codeb_core_route,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_codeb_core_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_codeb_core_create_srv_conf,        /* create server configuration */
    ngx_codeb_core_merge_srv_conf,         /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_codeb_core_module = {
    NGX_MODULE_V1,
    &ngx_codeb_core_module_ctx,            /* module context */
    ngx_codeb_core_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_codeb_tenant_t *
ngx_codeb_tenant(ngx_http_request_t *r)
{
    ngx_codeb_tenant_t  *t;

    t = ngx_http_get_module_srv_conf(r, ngx_codeb_core_module);

    return t->name.len ? t : NULL;
}


uint64_t
ngx_codeb_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


char *
ngx_codeb_build(void)
{
    return CODEB_BUILD;
}


static char *
ngx_codeb_core_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t         *value;
    ngx_codeb_conf_t  *ccf;

    ccf = ngx_codeb_conf(cf);

    if (ccf->redis.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_codeb_redis_set_addr(cf, ccf, &value[1]);
}


/* a directive of ngx_codeb_module's settings: cmd->post is its slot */
static char *
ngx_codeb_core_global(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char           *(*slot)(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
    ngx_command_t    c;

    /* the slot reads cmd->post itself: it gets a copy without ours */
    slot = cmd->post;
    c = *cmd;
    c.post = NULL;

    return slot(cf, &c, ngx_codeb_conf(cf));
}


static void *
ngx_codeb_core_create_srv_conf(ngx_conf_t *cf)
{
    ngx_codeb_tenant_t  *t;

    t = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_tenant_t));
    if (t == NULL) {
        return NULL;
    }

    t->turn_uris = NGX_CONF_UNSET_PTR;
    t->stun_uris = NGX_CONF_UNSET_PTR;
    t->turn_ttl = NGX_CONF_UNSET;
    t->oidc_key = NGX_CONF_UNSET_PTR;

    return t;
}


static char *
ngx_codeb_core_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    char                *err;
    ngx_codeb_tenant_t  *prev = parent;
    ngx_codeb_tenant_t  *conf = child;

    ngx_conf_merge_str_value(conf->name, prev->name, "");
    ngx_conf_merge_ptr_value(conf->turn_uris, prev->turn_uris, NULL);
    ngx_conf_merge_ptr_value(conf->stun_uris, prev->stun_uris, NULL);
    ngx_conf_merge_str_value(conf->turn_secret, prev->turn_secret, "");
    ngx_conf_merge_sec_value(conf->turn_ttl, prev->turn_ttl, 86400);
    ngx_conf_merge_str_value(conf->bridge_secret, prev->bridge_secret, "");
    ngx_conf_merge_str_value(conf->admin_secret, prev->admin_secret, "");
    ngx_conf_merge_str_value(conf->oidc_issuer, prev->oidc_issuer, "");
    ngx_conf_merge_str_value(conf->oidc_audience, prev->oidc_audience, "");
    ngx_conf_merge_str_value(conf->oidc_hs256_secret, prev->oidc_hs256_secret,
                             "");
    ngx_conf_merge_str_value(conf->oidc_rs256_key, prev->oidc_rs256_key, "");
    ngx_conf_merge_str_value(conf->oidc_signing_pem, prev->oidc_signing_pem,
                             "");
    ngx_conf_merge_ptr_value(conf->oidc_key, prev->oidc_key, NULL);

    if (conf->oidc_signing_pem.len && conf->oidc_key == NULL) {
        conf->oidc_key = ngx_codeb_oidc_key(cf->pool, &conf->oidc_signing_pem,
                                            &err);
        if (conf->oidc_key == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "codeb_oidc_signing_key: %s", err);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->vnums == NULL) {
        conf->vnums = prev->vnums;
    }

    if (conf->cameras == NULL) {
        conf->cameras = prev->cameras;
    }

    if (conf->routes == NULL) {
        conf->routes = prev->routes;
    }

    if (conf->turn_uris && conf->turn_secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_turn_uri requires codeb_turn_secret");
        return NGX_CONF_ERROR;
    }

    if (conf->oidc_hs256_secret.len && conf->oidc_rs256_key.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_oidc_hs256_secret and codeb_oidc_rs256_key "
                           "are mutually exclusive");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "key=value" argument: value into *v when the key matches */
static ngx_int_t
ngx_codeb_core_kv(ngx_str_t *arg, char *key, ngx_str_t *v)
{
    size_t  n;

    n = ngx_strlen(key);

    if (arg->len > n && arg->data[n] == '='
        && ngx_strncmp(arg->data, key, n) == 0)
    {
        v->data = arg->data + n + 1;
        v->len = arg->len - n - 1;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * codeb_vnum <number> [name=<text>] [mode=<mode>]
 *            [visibility=anonymous|signed-in] [user=<office user>];
 */
static char *
ngx_codeb_core_vnum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_tenant_t  *t = conf;

    ngx_str_t         *value;
    ngx_uint_t         i;
    ngx_codeb_vnum_t  *vn;

    if (t->vnums == NULL) {
        t->vnums = ngx_array_create(cf->pool, 4, sizeof(ngx_codeb_vnum_t));
        if (t->vnums == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    vn = ngx_array_push(t->vnums);
    if (vn == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(vn, sizeof(ngx_codeb_vnum_t));

    value = cf->args->elts;
    vn->number = value[1];
    ngx_str_set(&vn->mode, "tts");
    ngx_str_set(&vn->visibility, "signed-in");
    vn->name = value[1];

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_codeb_core_kv(&value[i], "name", &vn->name) == NGX_OK
            || ngx_codeb_core_kv(&value[i], "mode", &vn->mode) == NGX_OK
            || ngx_codeb_core_kv(&value[i], "user", &vn->user) == NGX_OK)
        {
            continue;
        }

        if (ngx_codeb_core_kv(&value[i], "visibility", &vn->visibility)
            == NGX_OK)
        {
            if (ngx_strcmp(vn->visibility.data, "anonymous") == 0
                || ngx_strcmp(vn->visibility.data, "signed-in") == 0)
            {
                continue;
            }
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid codeb_vnum parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* codeb_camera <name> [<stream id>]; */
static char *
ngx_codeb_core_camera(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_tenant_t  *t = conf;

    ngx_str_t           *value;
    ngx_codeb_camera_t  *cam;

    if (t->cameras == NULL) {
        t->cameras = ngx_array_create(cf->pool, 2, sizeof(ngx_codeb_camera_t));
        if (t->cameras == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    cam = ngx_array_push(t->cameras);
    if (cam == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;
    cam->name = value[1];
    cam->stream_id = cf->args->nelts > 2 ? value[2] : value[1];

    return NGX_CONF_OK;
}


/* codeb_inbound_route did=<did|*> from=<number|anonymous|*> user=<user>; */
static char *
ngx_codeb_core_route(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_tenant_t  *t = conf;

    ngx_str_t          *value;
    ngx_uint_t          i;
    ngx_codeb_route_t  *rt;

    if (t->routes == NULL) {
        t->routes = ngx_array_create(cf->pool, 4, sizeof(ngx_codeb_route_t));
        if (t->routes == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rt = ngx_array_push(t->routes);
    if (rt == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rt, sizeof(ngx_codeb_route_t));
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_codeb_core_kv(&value[i], "did", &rt->did) != NGX_OK
            && ngx_codeb_core_kv(&value[i], "from", &rt->from) != NGX_OK
            && ngx_codeb_core_kv(&value[i], "user", &rt->user) != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid codeb_inbound_route parameter \"%V\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (rt->did.len == 0 || rt->from.len == 0 || rt->user.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_inbound_route needs did=, from= and user=");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* reads a PEM file named by the argument into the ngx_str_t at offset */
static char *
ngx_codeb_core_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t        *field, *value, name;
    ngx_file_t        file;
    ngx_file_info_t   fi;
    ssize_t           n;

    field = (ngx_str_t *) ((u_char *) conf + cmd->offset);
    if (field->data) {
        return "is duplicate";
    }

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
        || ngx_file_size(&fi) > 65536 || ngx_file_size(&fi) == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" is empty, too large or unreadable",
                           &name);
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    field->len = (size_t) ngx_file_size(&fi);
    field->data = ngx_pnalloc(cf->pool, field->len + 1);
    if (field->data == NULL) {
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, field->data, field->len, 0);
    ngx_close_file(file.fd);

    if (n != (ssize_t) field->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" could not be read", &name);
        return NGX_CONF_ERROR;
    }

    field->data[field->len] = '\0';

    return NGX_CONF_OK;
}


ngx_int_t
ngx_codeb_vnum_parse(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_codeb_vnum_t *vn)
{
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *j;

    ngx_memzero(vn, sizeof(ngx_codeb_vnum_t));

    if (ngx_codeb_json_object(pool, text, len, &m) != NGX_OK) {
        return NGX_DECLINED;
    }

    j = ngx_codeb_json_get_type(m, "number", NGX_CODEB_JSON_STRING);
    if (j == NULL) {
        return NGX_DECLINED;
    }

    vn->number = j->str;

    j = ngx_codeb_json_get_type(m, "name", NGX_CODEB_JSON_STRING);
    vn->name = j ? j->str : vn->number;

    ngx_str_set(&vn->mode, "tts");
    ngx_str_set(&vn->visibility, "signed-in");

    if ((j = ngx_codeb_json_get_type(m, "mode", NGX_CODEB_JSON_STRING))) {
        vn->mode = j->str;
    }

    if ((j = ngx_codeb_json_get_type(m, "visibility",
                                     NGX_CODEB_JSON_STRING)))
    {
        vn->visibility = j->str;
    }

    if ((j = ngx_codeb_json_get_type(m, "user", NGX_CODEB_JSON_STRING))) {
        vn->user = j->str;
    }

    return NGX_OK;
}

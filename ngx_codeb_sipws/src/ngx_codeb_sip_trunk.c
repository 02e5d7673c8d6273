/*
 * SIP trunks (docs/sip.md "Trunks"): `codeb_sip_trunk` in a tenant's
 * server{}.  A call from a user to a number with one of the trunk's
 * prefixes goes out through it; an INVITE from the trunk's address comes
 * in without digest and rings the user the tenant's inbound routes name.
 * Trunks speak UDP: every worker sends to a trunk from the codeb_sip UDP
 * listener (ngx_codeb_sip_stream.c), so answers come back to 5060.
 */

#include "ngx_codeb_sip.h"


#define NGX_CODEB_SIP_TRUNK_NAME_MAX   32


static ngx_int_t ngx_codeb_sip_trunk_param(ngx_conf_t *cf,
    ngx_codeb_sip_trunk_t *trunk, ngx_str_t *v);
static ngx_int_t ngx_codeb_sip_trunk_limit(ngx_str_t *v, char *name,
    ngx_int_t *limit);
static ngx_int_t ngx_codeb_sip_trunk_name(ngx_str_t *name);


/*
 * codeb_sip_trunk <name> host=<host>[:<port>] [transport=udp]
 *     [prefix=<p>[,<p>...]] [domain=<host>] [username=<u> password=<p>]
 *     [register=on] [expires=<time>] [max_inbound=<n>] [max_outbound=<n>]
 *     [max_total=<n>];
 * name: [A-Za-z0-9._-], at most 32 (it shows in ?healthsummary); host is
 * resolved now, its first address used; port 5060; prefix "+"; domain:
 * host; expires 600s (REGISTER); limits: calls at a time, unset: none
 */
char *
ngx_codeb_sip_trunk_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_codeb_sip_srv_conf_t  *sip = conf;

    ngx_str_t              *value, *prefix;
    ngx_uint_t              i;
    ngx_codeb_sip_trunk_t  *trunk, *t;

    value = cf->args->elts;

    if (ngx_codeb_sip_trunk_name(&value[1]) != NGX_OK) {
        return "needs a name of at most 32 letters, digits, '.', '_', '-'";
    }

    if (sip->trunks == NULL) {
        sip->trunks = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_codeb_sip_trunk_t));

        /* its inbound calls follow the routes in Redis */
        if (sip->trunks == NULL || ngx_codeb_routes_init(cf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    t = sip->trunks->elts;

    for (i = 0; i < sip->trunks->nelts; i++) {
        if (t[i].name.len == value[1].len
            && ngx_strncmp(t[i].name.data, value[1].data, value[1].len) == 0)
        {
            return "has a duplicate name";
        }
    }

    trunk = ngx_array_push(sip->trunks);
    if (trunk == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(trunk, sizeof(ngx_codeb_sip_trunk_t));
    trunk->name = value[1];
    trunk->sip = sip;
    trunk->expires = 600;
    trunk->max_inbound = -1;
    trunk->max_outbound = -1;
    trunk->max_total = -1;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_codeb_sip_trunk_param(cf, trunk, &value[i]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (trunk->addr.sockaddr == NULL) {
        return "needs host=";
    }

    if ((trunk->username.len == 0) != (trunk->password.len == 0)
        || (trunk->reg && trunk->username.len == 0))
    {
        return "needs username= and password= together (and for register=)";
    }

    if (trunk->prefixes == NULL) {
        trunk->prefixes = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));
        prefix = trunk->prefixes ? ngx_array_push(trunk->prefixes) : NULL;
        if (prefix == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_str_set(prefix, "+");
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_codeb_sip_trunk_param(ngx_conf_t *cf, ngx_codeb_sip_trunk_t *trunk,
    ngx_str_t *v)
{
    u_char     *p, *last, *comma;
    time_t      expires;
    ngx_url_t   u;
    ngx_str_t  *prefix, s;

    if (v->len > 5 && ngx_strncmp(v->data, "host=", 5) == 0) {
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url.data = v->data + 5;
        u.url.len = v->len - 5;
        u.default_port = 5060;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "codeb_sip_trunk \"%V\": %s",
                               &trunk->name, u.err ? u.err : "no address");
            return NGX_ERROR;
        }

        trunk->addr = u.addrs[0];
        trunk->host = u.host;

        if (trunk->domain.len == 0) {
            trunk->domain = u.host;
        }

        return NGX_OK;
    }

    if (v->len > 7 && ngx_strncmp(v->data, "domain=", 7) == 0) {
        trunk->domain.data = v->data + 7;
        trunk->domain.len = v->len - 7;
        return NGX_OK;
    }

    if (v->len > 9 && ngx_strncmp(v->data, "username=", 9) == 0) {
        trunk->username.data = v->data + 9;
        trunk->username.len = v->len - 9;
        return NGX_OK;
    }

    if (v->len > 9 && ngx_strncmp(v->data, "password=", 9) == 0) {
        trunk->password.data = v->data + 9;
        trunk->password.len = v->len - 9;
        return NGX_OK;
    }

    if (v->len == 13 && ngx_strncmp(v->data, "transport=udp", 13) == 0) {
        return NGX_OK;
    }

    if (v->len == 11 && ngx_strncmp(v->data, "register=on", 11) == 0) {
        trunk->reg = 1;
        return NGX_OK;
    }

    if (v->len > 8 && ngx_strncmp(v->data, "expires=", 8) == 0) {
        s.data = v->data + 8;
        s.len = v->len - 8;
        expires = ngx_parse_time(&s, 1);
        if (expires == (time_t) NGX_ERROR || expires < 60) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "codeb_sip_trunk \"%V\": expires= is at "
                               "least 60s", &trunk->name);
            return NGX_ERROR;
        }

        trunk->expires = expires;
        return NGX_OK;
    }

    if (v->len > 7 && ngx_strncmp(v->data, "prefix=", 7) == 0) {
        trunk->prefixes = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (trunk->prefixes == NULL) {
            return NGX_ERROR;
        }

        last = v->data + v->len;

        for (p = v->data + 7; p < last; p = comma + 1) {
            comma = ngx_strlchr(p, last, ',');
            if (comma == NULL) {
                comma = last;
            }

            prefix = ngx_array_push(trunk->prefixes);
            if (prefix == NULL || comma == p) {
                return NGX_ERROR;
            }

            prefix->data = p;
            prefix->len = comma - p;
        }

        return NGX_OK;
    }

    if (ngx_codeb_sip_trunk_limit(v, "max_inbound=", &trunk->max_inbound)
        == NGX_OK
        || ngx_codeb_sip_trunk_limit(v, "max_outbound=",
                                     &trunk->max_outbound) == NGX_OK
        || ngx_codeb_sip_trunk_limit(v, "max_total=", &trunk->max_total)
           == NGX_OK)
    {
        return NGX_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "codeb_sip_trunk \"%V\": invalid parameter \"%V\"%s",
                       &trunk->name, v,
                       ngx_strncmp(v->data, "transport=", 10) == 0
                       ? " (trunks speak UDP only)" : "");

    return NGX_ERROR;
}


static ngx_int_t
ngx_codeb_sip_trunk_limit(ngx_str_t *v, char *name, ngx_int_t *limit)
{
    size_t  n;

    n = ngx_strlen(name);

    if (v->len <= n || ngx_strncmp(v->data, name, n) != 0) {
        return NGX_DECLINED;
    }

    *limit = ngx_atoi(v->data + n, v->len - n);

    return *limit == NGX_ERROR ? NGX_DECLINED : NGX_OK;
}


static ngx_int_t
ngx_codeb_sip_trunk_name(ngx_str_t *name)
{
    size_t  i;
    u_char  c;

    if (name->len == 0 || name->len > NGX_CODEB_SIP_TRUNK_NAME_MAX) {
        return NGX_ERROR;
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the trunks' flows of this worker: datagrams to their addresses */
ngx_int_t
ngx_codeb_sip_trunks_init_process(ngx_codeb_sip_main_conf_t *smcf)
{
    ngx_uint_t               i;
    ngx_codeb_sip_trunk_t  **trunk;

    trunk = smcf->trunks.elts;

    for (i = 0; i < smcf->trunks.nelts; i++) {
        trunk[i]->flow = ngx_codeb_sip_flow_datagram(trunk[i]->addr.sockaddr,
                                                     trunk[i]->addr.socklen,
                                                     ngx_cycle->log);
        if (trunk[i]->flow == NULL) {
            return NGX_ERROR;
        }

        trunk[i]->flow->sip = trunk[i]->sip;

        /* it lives as long as the worker: legs hold and release it */
        ngx_codeb_sip_flow_hold(trunk[i]->flow);
    }

    return NGX_OK;
}


/* the trunks' flows of this worker freed (at its exit) */
void
ngx_codeb_sip_trunks_exit_process(ngx_codeb_sip_main_conf_t *smcf)
{
    ngx_uint_t               i;
    ngx_codeb_sip_trunk_t  **trunk;

    trunk = smcf->trunks.elts;

    for (i = 0; i < smcf->trunks.nelts; i++) {
        if (trunk[i]->flow) {
            (void) ngx_codeb_sip_flow_release(trunk[i]->flow);
            ngx_codeb_sip_flow_close(trunk[i]->flow);
            trunk[i]->flow = NULL;
        }
    }
}


/*
 * The trunk a datagram from sockaddr comes from: the one with this address
 * and port (a phone on the trunk's host is not the trunk); NULL: none
 */
ngx_codeb_sip_trunk_t *
ngx_codeb_sip_trunk_by_addr(struct sockaddr *sockaddr, socklen_t socklen)
{
    ngx_uint_t                  i;
    ngx_codeb_sip_trunk_t     **trunk;
    ngx_codeb_sip_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_codeb_sipws_module);
    if (smcf == NULL || sockaddr == NULL) {
        return NULL;
    }

    trunk = smcf->trunks.elts;

    for (i = 0; i < smcf->trunks.nelts; i++) {
        if (ngx_cmp_sockaddr(sockaddr, socklen, trunk[i]->addr.sockaddr,
                             trunk[i]->addr.socklen, 1)
            == NGX_OK)
        {
            return trunk[i];
        }
    }

    return NULL;
}


/*
 * The trunk a user's call to number goes out through: the one with the
 * longest prefix of number, the first configured among equals; NULL: the
 * number is not for a trunk
 */
ngx_codeb_sip_trunk_t *
ngx_codeb_sip_trunk_for(ngx_codeb_sip_srv_conf_t *sip, char const *number)
{
    size_t                  len, best;
    ngx_str_t              *prefix;
    ngx_uint_t              i, j;
    ngx_codeb_sip_trunk_t  *trunk, *found;

    if (sip->trunks == NULL || number == NULL) {
        return NULL;
    }

    len = ngx_strlen(number);
    trunk = sip->trunks->elts;
    found = NULL;
    best = 0;

    for (i = 0; i < sip->trunks->nelts; i++) {
        prefix = trunk[i].prefixes->elts;

        for (j = 0; j < trunk[i].prefixes->nelts; j++) {
            if (prefix[j].len < len && prefix[j].len > best
                && ngx_strncmp(number, prefix[j].data, prefix[j].len) == 0)
            {
                found = &trunk[i];
                best = prefix[j].len;
            }
        }
    }

    return found;
}


/*
 * The callee leg of a call out through call->trunk: Request-URI and To
 * "sip:<number>@<domain>", From "sip:<caller>@<domain>"; sent to the
 * trunk's address on its flow
 */
ngx_codeb_sip_leg_t *
ngx_codeb_sip_trunk_leg(ngx_codeb_sip_call_t *call)
{
    char                   *uri, *caller;
    sip_t                  *rq;
    ngx_codeb_sip_leg_t    *leg;
    ngx_codeb_sip_trunk_t  *trunk;

    trunk = call->trunk;
    rq = sip_object(call->a.invite);

    uri = su_sprintf(call->home, "sip:%s@%.*s", call->callee,
                     (int) trunk->domain.len, trunk->domain.data);
    caller = su_sprintf(call->home, "sip:%s@%.*s",
                        rq->sip_from->a_url->url_user,
                        (int) trunk->domain.len, trunk->domain.data);

    if (uri == NULL || caller == NULL) {
        return NULL;
    }

    leg = ngx_codeb_sip_leg_new(call, trunk->flow, 0, uri, uri);
    if (leg) {
        leg->local_uri = caller;
    }

    return leg;
}

/*
 * The tenant's inbound routes in Redis (docs/design.md "State in Redis",
 * docs/api.md "Inbound routes"): P routes, a list of JSON rows {"did",
 * "from", "user"} in evaluation order, the catch-all (did and from "*")
 * always present and last.  The codeb_inbound_route directives seed it
 * the first time any script touches it; from then on it is what SIP
 * inbound routing, ?office-ring and the REST API read and change.
 */

#include "ngx_codeb_core.h"


/*
 * KEYS: P routes.  ARGV: op, seed ({"rows":[...]}), then per op:
 *   match  did, from ("" = anonymous)  -> the user, or nil
 *   list                               -> the rows (JSON texts)
 *   post   did, from, user             -> 1, or 0 when (did, from) exists
 *   put    did, from, user             -> the row changed, or nil
 *   delete did, from ("" = any)        -> the row removed, nil, or -1 for
 *                                         the catch-all
 * A row's from "*" is no filter.
 */
ngx_codeb_redis_script_t  ngx_codeb_routes_script = {
    ngx_string(
        "local key, op = KEYS[1], ARGV[1]\n"
        "local function catchall(r) return r.did == '*' and r.from == '*' end\n"
        "if redis.call('EXISTS', key) == 0 then\n"
        "  local seed, found = cjson.decode(ARGV[2]).rows, false\n"
        "  for _, r in ipairs(seed) do\n"
        "    redis.call('RPUSH', key, cjson.encode(r))\n"
        "    found = found or catchall(r)\n"
        "  end\n"
        "  if not found then\n"
        "    redis.call('RPUSH', key,\n"
        "               cjson.encode({did = '*', from = '*', user = ''}))\n"
        "  end\n"
        "end\n"
        "local rows = redis.call('LRANGE', key, 0, -1)\n"
        "if op == 'list' then return rows end\n"
        "local did, from = ARGV[3], ARGV[4]\n"
        "local function is(p, v) return p == '*' or p == v end\n"
        "for i, j in ipairs(rows) do\n"
        "  local r = cjson.decode(j)\n"
        "  if op == 'match' then\n"
        "    if is(r.did, did) and is(r.from, from ~= '' and from\n"
        "                                           or 'anonymous') then\n"
        "      return r.user\n"
        "    end\n"
        "  elseif r.did == did and (r.from == from\n"
        "                           or (op == 'delete' and from == '')) then\n"
        "    if op == 'post' then return 0 end\n"
        "    if op == 'put' then\n"
        "      r.user = ARGV[5]\n"
        "      local e = cjson.encode(r)\n"
        "      redis.call('LSET', key, i - 1, e)\n"
        "      return e\n"
        "    end\n"
        "    if catchall(r) then return -1 end\n"
        "    redis.call('LSET', key, i - 1, '')\n"
        "    redis.call('LREM', key, 1, '')\n"
        "    return j\n"
        "  end\n"
        "end\n"
        "if op ~= 'post' then return false end\n"
        "local new = cjson.encode({did = did, from = from, user = ARGV[5]})\n"
        "for i = #rows, 1, -1 do\n"
        "  if catchall(cjson.decode(rows[i])) then\n"
        "    redis.call('LINSERT', key, 'BEFORE', rows[i], new)\n"
        "    return 1\n"
        "  end\n"
        "end\n"
        "redis.call('RPUSH', key, new)\n"
        "return 1\n"),
    ""
};


ngx_int_t
ngx_codeb_routes_init(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_codeb_conf_t           *ccf;
    ngx_codeb_redis_script_t  **s;

    ccf = ngx_codeb_conf(cf);

    /* once per configuration, whichever modules use it */

    if (ccf->scripts) {
        s = ccf->scripts->elts;

        for (i = 0; i < ccf->scripts->nelts; i++) {
            if (s[i] == &ngx_codeb_routes_script) {
                return NGX_OK;
            }
        }
    }

    return ngx_codeb_redis_add_script(cf, &ngx_codeb_routes_script);
}


ngx_int_t
ngx_codeb_routes_run(ngx_codeb_tenant_t *t, ngx_pool_t *pool, char *op,
    ngx_str_t *args, ngx_uint_t n, redisCallbackFn *cb, void *data)
{
    yajl_gen                 g;
    ngx_str_t                key, seed;
    ngx_uint_t               i;
    ngx_codeb_route_t       *rt;
    ngx_codeb_redis_args_t   a;

    if (ngx_codeb_key(pool, &t->name, "routes", NULL, 0, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    g = ngx_codeb_gen();
    if (g == NULL) {
        return NGX_ERROR;
    }

    ngx_codeb_gen_key(g, "rows");
    yajl_gen_array_open(g);

    rt = t->routes ? t->routes->elts : NULL;

    for (i = 0; rt && i < t->routes->nelts; i++) {
        yajl_gen_map_open(g);
        ngx_codeb_gen_vstr(g, "did", &rt[i].did);
        ngx_codeb_gen_vstr(g, "from", &rt[i].from);
        ngx_codeb_gen_vstr(g, "user", &rt[i].user);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
    seed = ngx_codeb_gen_done(g);

    /* hiredis copies the arguments when the command is queued */

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &key);
    ngx_codeb_redis_arg(&a, op, ngx_strlen(op));
    ngx_codeb_redis_arg_str(&a, &seed);

    for (i = 0; i < n; i++) {
        ngx_codeb_redis_arg_str(&a, &args[i]);
    }

    return ngx_codeb_redis_eval(&ngx_codeb_routes_script, cb, data, 1, &a);
}

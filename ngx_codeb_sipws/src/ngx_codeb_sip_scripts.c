/*
 * SIP state in Redis, changed only by these scripts (docs/design.md
 * "State in Redis"; P = "codeb:{<tenant>}:"):
 *   P nonce:<nonce>  string  the last digest nonce count seen, with the
 *                            nonce's TTL
 *   P reg:<user>     hash    binding id -> binding JSON
 *                            (ngx_codeb_sip_registrar.c)
 *   P regs           set     users with bindings
 * and the trunks' lines (ngx_codeb_sip_lines.c), the call records
 * (ngx_codeb_sip_cdr.c).
 */

#include "ngx_codeb_sip.h"


/*
 * KEYS: P nonce:<nonce>.  ARGV: nonce count.  Returns -1 for an unknown
 * (expired) nonce, 0 when the count does not grow (a replay), else 1.
 */
ngx_codeb_redis_script_t  ngx_codeb_sip_nonce_script = {
    ngx_string(
    "local last = redis.call('GET', KEYS[1])\n"
    "if not last then return -1 end\n"
    "if tonumber(ARGV[1]) <= tonumber(last) then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')\n"
    "return 1\n"),
    ""
};


/*
 * KEYS: P reg:<user>, P regs.  ARGV: user, now (epoch s), Call-ID, CSeq,
 * then triples: binding id ("*": all), expires (epoch s; 0 removes),
 * JSON value.  Expired bindings are removed first.  Returns -1 when a
 * binding of the same Call-ID has a CSeq as high (RFC 3261 §10.3 step 7),
 * else the JSON values of the bindings after the change.
 */
ngx_codeb_redis_script_t  ngx_codeb_sip_bind_script = {
    ngx_string(
    "local now = tonumber(ARGV[2])\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "local keep = {}\n"
    "for i = 1, #all, 2 do\n"
    "  local ok, b = pcall(cjson.decode, all[i + 1])\n"
    "  if not ok or type(b) ~= 'table' or (tonumber(b.expires) or 0) <= now"
    " then\n"
    "    redis.call('HDEL', KEYS[1], all[i])\n"
    "  else\n"
    "    keep[all[i]] = b\n"
    "  end\n"
    "end\n"
    "for i = 5, #ARGV, 3 do\n"
    "  local b = keep[ARGV[i]]\n"
    "  if b and b.callId == ARGV[3] and tonumber(b.cseq) >= tonumber(ARGV[4])"
    " then return -1 end\n"
    "end\n"
    "local last = now\n"
    "for i = 5, #ARGV, 3 do\n"
    "  if ARGV[i] == '*' then\n"
    "    redis.call('DEL', KEYS[1])\n"
    "  elseif tonumber(ARGV[i + 1]) == 0 then\n"
    "    redis.call('HDEL', KEYS[1], ARGV[i])\n"
    "  else\n"
    "    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])\n"
    "  end\n"
    "end\n"
    "local out = {}\n"
    "local vals = redis.call('HGETALL', KEYS[1])\n"
    "for i = 2, #vals, 2 do\n"
    "  out[#out + 1] = vals[i]\n"
    "  local ok, b = pcall(cjson.decode, vals[i])\n"
    "  if ok and type(b) == 'table' and tonumber(b.expires) > last then\n"
    "    last = tonumber(b.expires)\n"
    "  end\n"
    "end\n"
    "if #out == 0 then\n"
    "  redis.call('SREM', KEYS[2], ARGV[1])\n"
    "else\n"
    "  redis.call('SADD', KEYS[2], ARGV[1])\n"
    "  redis.call('EXPIREAT', KEYS[1], last + 1)\n"
    "end\n"
    "return out\n"),
    ""
};


/*
 * KEYS: P reg:<user>, P regs.  ARGV: user, binding id, flow token.
 * Removes the binding if it was made through that flow.
 */
ngx_codeb_redis_script_t  ngx_codeb_sip_unbind_script = {
    ngx_string(
    "local v = redis.call('HGET', KEYS[1], ARGV[2])\n"
    "if not v then return 0 end\n"
    "local ok, b = pcall(cjson.decode, v)\n"
    "if ok and type(b) == 'table' and b.flow ~= ARGV[3] then return 0 end\n"
    "redis.call('HDEL', KEYS[1], ARGV[2])\n"
    "if redis.call('HLEN', KEYS[1]) == 0 then\n"
    "  redis.call('SREM', KEYS[2], ARGV[1])\n"
    "end\n"
    "return 1\n"),
    ""
};


ngx_int_t
ngx_codeb_sip_scripts_init(ngx_conf_t *cf)
{
    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_sip_nonce_script)
        != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_sip_bind_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_sip_unbind_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_sip_admit_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_sip_cdr_script)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}

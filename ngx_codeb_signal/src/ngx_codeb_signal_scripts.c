/*
 * Room state in Redis, changed only by these scripts so that every change
 * and its fan-out to the other workers is one atomic step.
 *
 * Keys (P = "codeb:{<tenant>}:", ngx_codeb_key(); the braces keep a
 * tenant in one Redis Cluster slot):
 *   P room:<room>     hash  peerId -> worker id ("<host>:<pid>")
 *   P peer:<peerId>   hash  room, name, vid, w (worker), tok (SHA-256 of
 *                           the resume token, hex), office (user or "")
 *   P rooms           set   room ids, for ?healthsummary
 *   P office:<user>   hash  peerId -> worker id of the user's office tabs
 * All carry the TTL codeb_signal_state_ttl, refreshed by the keepalive.
 * A worker's channel is "codeb:w:<worker id>"; the scripts publish bus
 * messages (ngx_codeb_core.h) to the workers that have peers concerned.
 */

#include "ngx_codeb_signal.h"


/*
 * KEYS: room, peer, rooms.  ARGV: peerId, worker, room, name, vid, tok,
 * max peers, ttl, P, bus message for the other workers ("" for none),
 * office user ("" for none).
 * Returns {"full"} or {"ok", peerId, name, vid, ...} of the peers already
 * there (peers whose key expired are left to the sweep).
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_join_script = {
    ngx_string(
    "local members = redis.call('HGETALL', KEYS[1])\n"
    "local out, workers, n = {'ok'}, {}, 0\n"
    "for i = 1, #members, 2 do\n"
    "  if members[i] ~= ARGV[1] then\n"
    "    local info = redis.call('HMGET', ARGV[9] .. 'peer:' .. members[i],"
    " 'name', 'vid')\n"
    "    if info[1] then\n"
    "      n = n + 1\n"
    "      out[#out + 1] = members[i]\n"
    "      out[#out + 1] = info[1]\n"
    "      out[#out + 1] = info[2] or ''\n"
    "      workers[members[i + 1]] = true\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if n >= tonumber(ARGV[7]) then return {'full'} end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[8])\n"
    "redis.call('HSET', KEYS[2], 'room', ARGV[3], 'name', ARGV[4],"
    " 'vid', ARGV[5], 'w', ARGV[2], 'tok', ARGV[6], 'office', ARGV[11])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[8])\n"
    "redis.call('SADD', KEYS[3], ARGV[3])\n"
    "if ARGV[11] ~= '' then\n"
    "  local ok = ARGV[9] .. 'office:' .. ARGV[11]\n"
    "  redis.call('HSET', ok, ARGV[1], ARGV[2])\n"
    "  redis.call('EXPIRE', ok, ARGV[8])\n"
    "end\n"
    "workers[ARGV[2]] = nil\n"
    "if ARGV[10] ~= '' then\n"
    "  for w in pairs(workers) do\n"
    "    redis.call('PUBLISH', 'codeb:w:' .. w, ARGV[10])\n"
    "  end\n"
    "end\n"
    "return out\n"),
    ""
};


/*
 * KEYS: room, peer, rooms.  ARGV: peerId, worker, room, bus message, P.
 * Returns 0 when the peer now belongs to another worker (resumed there).
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_leave_script = {
    ngx_string(
    "local w = redis.call('HGET', KEYS[2], 'w')\n"
    "if w and w ~= ARGV[2] then return 0 end\n"
    "local office = redis.call('HGET', KEYS[2], 'office')\n"
    "if office and office ~= '' then\n"
    "  redis.call('HDEL', ARGV[5] .. 'office:' .. office, ARGV[1])\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "local members = redis.call('HGETALL', KEYS[1])\n"
    "if #members == 0 then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('SREM', KEYS[3], ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "local workers = {}\n"
    "for i = 2, #members, 2 do workers[members[i]] = true end\n"
    "workers[ARGV[2]] = nil\n"
    "for wk in pairs(workers) do\n"
    "  redis.call('PUBLISH', 'codeb:w:' .. wk, ARGV[4])\n"
    "end\n"
    "return 1\n"),
    ""
};


/*
 * KEYS: target peer.  ARGV: room of the sender, bus message.
 * Returns 1 when the message reached the worker of a peer in that room.
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_route_script = {
    ngx_string(
    "local v = redis.call('HMGET', KEYS[1], 'room', 'w')\n"
    "if v[1] ~= ARGV[1] or not v[2] then return 0 end\n"
    "if redis.call('PUBLISH', 'codeb:w:' .. v[2], ARGV[2]) == 0 then\n"
    "  return 0\n"
    "end\n"
    "return 1\n"),
    ""
};


/*
 * KEYS: room, peer.  ARGV: ttl, worker, P, office user or "".
 * Returns 0 when the peer key is gone or owned by another worker.
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_refresh_script = {
    ngx_string(
    "if redis.call('HGET', KEYS[2], 'w') ~= ARGV[2] then return 0 end\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[1])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
    "if ARGV[4] ~= '' then\n"
    "  redis.call('EXPIRE', ARGV[3] .. 'office:' .. ARGV[4], ARGV[1])\n"
    "end\n"
    "return 1\n"),
    ""
};


/*
 * Removes the peers of a room whose key expired (their worker died).
 * KEYS: room, rooms.  ARGV: P, room, worker.  Returns {{removed peerIds},
 * {the room's other workers}}: the caller tells them.
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_sweep_script = {
    ngx_string(
    "local members = redis.call('HGETALL', KEYS[1])\n"
    "local gone, seen, workers = {}, {}, {}\n"
    "for i = 1, #members, 2 do\n"
    "  if redis.call('EXISTS', ARGV[1] .. 'peer:' .. members[i]) == 0 then\n"
    "    redis.call('HDEL', KEYS[1], members[i])\n"
    "    gone[#gone + 1] = members[i]\n"
    "  elseif members[i + 1] ~= ARGV[3] and not seen[members[i + 1]] then\n"
    "    seen[members[i + 1]] = true\n"
    "    workers[#workers + 1] = members[i + 1]\n"
    "  end\n"
    "end\n"
    "if #gone > 0 and redis.call('HLEN', KEYS[1]) == 0 then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('SREM', KEYS[2], ARGV[2])\n"
    "end\n"
    "return {gone, workers}\n"),
    ""
};


/*
 * Moves a peer to the worker of its resumed socket.
 * KEYS: peer, room.  ARGV: old worker, new worker, peerId, P, ttl.
 * Returns {"moved"} if the peer is no longer the old worker's, else
 * {"ok", peerId, name, vid, ...} of the other peers in the room.
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_claim_script = {
    ngx_string(
    "if redis.call('HGET', KEYS[1], 'w') ~= ARGV[1] then"
    " return {'moved'} end\n"
    "redis.call('HSET', KEYS[1], 'w', ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
    "redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[5])\n"
    "local office = redis.call('HGET', KEYS[1], 'office')\n"
    "if office and office ~= '' then\n"
    "  redis.call('HSET', ARGV[4] .. 'office:' .. office, ARGV[3], ARGV[2])\n"
    "end\n"
    "local out = {'ok'}\n"
    "local members = redis.call('HGETALL', KEYS[2])\n"
    "for i = 1, #members, 2 do\n"
    "  if members[i] ~= ARGV[3] then\n"
    "    local info = redis.call('HMGET', ARGV[4] .. 'peer:' .. members[i],"
    " 'name', 'vid')\n"
    "    if info[1] then\n"
    "      out[#out + 1] = members[i]\n"
    "      out[#out + 1] = info[1]\n"
    "      out[#out + 1] = info[2] or ''\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n"),
    ""
};


/*
 * KEYS: rooms, trunks (hash id -> "<registered 0|1>,<last seen epoch s
 * or ->"), vnum calls (zset scored by epoch s).  ARGV: P, now (epoch s).
 * Returns {{room, peers, ...}, {trunk, state, ...}, calls in 24 h,
 * calls up in the media daemons (codeb:media:<daemon>, written by
 * codeb-mediad --redis)}.
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_health_script = {
    ngx_string(
    "local rooms = {}\n"
    "for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local ids = redis.call('HKEYS', ARGV[1] .. 'room:' .. room)\n"
    "  local n = 0\n"
    "  for _, id in ipairs(ids) do\n"
    "    n = n + redis.call('EXISTS', ARGV[1] .. 'peer:' .. id)\n"
    "  end\n"
    "  if #ids == 0 then\n"
    "    redis.call('SREM', KEYS[1], room)\n"
    "  elseif n > 0 then\n"
    "    rooms[#rooms + 1] = room\n"
    "    rooms[#rooms + 1] = n\n"
    "  end\n"
    "end\n"
    "local calls = redis.call('ZCOUNT', KEYS[3], tonumber(ARGV[2]) - 86400,"
    " '+inf')\n"
    "local media = 0\n"
    "for _, d in ipairs(redis.call('SMEMBERS', 'codeb:media:daemons')) do\n"
    "  local n = redis.call('HLEN', 'codeb:media:' .. d)\n"
    "  if n == 0 then redis.call('SREM', 'codeb:media:daemons', d) end\n"
    "  media = media + n\n"
    "end\n"
    "return {rooms, redis.call('HGETALL', KEYS[2]), calls, media}\n"),
    ""
};


/*
 * Rings, or clears a ring on, a user's office tabs.
 * KEYS: P ring:<callId> (user rung, kept while ringing), P vnums.
 * ARGV: P, user ("" for the one the ring key names), bus head
 * ("office <tenant> "), frame text, number that must not be a virtual
 * number ("" for none), "ring" or "clear", ring TTL (s).
 * Returns -1 when the number is a virtual number, else the number of live
 * tabs reached.
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_ring_script = {
    ngx_string(
    "if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1"
    " then return -1 end\n"
    "local user = ARGV[2]\n"
    "if user == '' then\n"
    "  user = redis.call('GET', KEYS[1])\n"
    "  if not user then return 0 end\n"
    "end\n"
    "local ok = ARGV[1] .. 'office:' .. user\n"
    "local tabs = redis.call('HGETALL', ok)\n"
    "local workers, n = {}, 0\n"
    "for i = 1, #tabs, 2 do\n"
    "  if redis.call('EXISTS', ARGV[1] .. 'peer:' .. tabs[i]) == 1 then\n"
    "    n = n + 1\n"
    "    workers[tabs[i + 1]] = true\n"
    "  else\n"
    "    redis.call('HDEL', ok, tabs[i])\n"
    "  end\n"
    "end\n"
    "if ARGV[6] == 'ring' then\n"
    "  if n > 0 then redis.call('SET', KEYS[1], user, 'EX', ARGV[7]) end\n"
    "else\n"
    "  redis.call('DEL', KEYS[1])\n"
    "end\n"
    "for w in pairs(workers) do\n"
    "  redis.call('PUBLISH', 'codeb:w:' .. w,"
    " ARGV[3] .. user .. '\\n' .. ARGV[4])\n"
    "end\n"
    "return n\n"),
    ""
};


/*
 * KEYS: P regs (users with SIP bindings, ngx_codeb_sipws).  ARGV: P, now
 * (epoch s).  Returns {user, {binding JSON, ...}, ...} of the bindings
 * that have not expired.
 */
ngx_codeb_redis_script_t  ngx_codeb_signal_registrar_script = {
    ngx_string(
    "local out = {}\n"
    "for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local live = {}\n"
    "  for _, v in ipairs(redis.call('HVALS', ARGV[1] .. 'reg:' .. user)) do\n"
    "    local ok, b = pcall(cjson.decode, v)\n"
    "    if ok and type(b) == 'table'"
    " and (tonumber(b.expires) or 0) > tonumber(ARGV[2]) then\n"
    "      live[#live + 1] = v\n"
    "    end\n"
    "  end\n"
    "  if #live > 0 then\n"
    "    out[#out + 1] = user\n"
    "    out[#out + 1] = live\n"
    "  end\n"
    "end\n"
    "return out\n"),
    ""
};


/* KEYS: P vnums.  ARGV: number, JSON row.  Replaces an existing row. */
ngx_codeb_redis_script_t  ngx_codeb_signal_vnum_put_script = {
    ngx_string(
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "return 1\n"),
    ""
};


ngx_int_t
ngx_codeb_signal_scripts_init(ngx_conf_t *cf)
{
    ngx_uint_t                 i;
    ngx_codeb_redis_script_t  *scripts[] = {
        &ngx_codeb_signal_join_script,
        &ngx_codeb_signal_leave_script,
        &ngx_codeb_signal_route_script,
        &ngx_codeb_signal_refresh_script,
        &ngx_codeb_signal_sweep_script,
        &ngx_codeb_signal_claim_script,
        &ngx_codeb_signal_health_script,
        &ngx_codeb_signal_ring_script,
        &ngx_codeb_signal_registrar_script,
        &ngx_codeb_signal_vnum_put_script
    };

    for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        if (ngx_codeb_redis_add_script(cf, scripts[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* ?office-ring follows the inbound routes in Redis */
    return ngx_codeb_routes_init(cf);
}

#!/usr/bin/env bash
# REST API benchmark: ngx_codeb_api (nginx, WORKERS workers, Redis over a
# unix socket) against the ceiling, the same nginx serving the same JSON
# body as a static file, same machine, same run, same load generator
# (Debian's wrk).  Measured: requests/s and latency p50 / p99 of
#   keys    GET /api.ashx/v1/api-keys?limit=50 with KEYS API keys stored
#           (a page read through the sorted index)
#   routes  GET /api.ashx/v1/inbound-routes with ROUTES routes stored
#   calls   GET /api.ashx/v1/calls?limit=50 with CALLS scheduled calls,
#           made through POST /api.ashx/v1/calls first
# each with an admin Bearer token (HS256, checked on every request), and
# the static file with that request's exact answer body; plus the server's
# CPU per 1000 requests.
#
#   bench/api.sh                       about 1 minute
#
# Environment (defaults): DURATION=5 (s per measurement), CONNS=50 (wrk
# connections), WORKERS=2, KEYS=10000, ROUTES=50, CALLS=10000, PORT=18080, BUILD=0 skips
# ./build.sh build, KEEP=1 keeps the temporary directory.  Only 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
WORKERS=${WORKERS:-2}
KEYS=${KEYS:-10000}
CALLS=${CALLS:-10000}
ROUTES=${ROUTES:-50}
PORT=${PORT:-18080}

for v in DURATION CONNS WORKERS KEYS ROUTES PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be an integer" >&2; exit 2; }
done
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] || { echo "DURATION is 1..60" >&2; exit 2; }
[ "$KEYS" -le 100000 ] && [ "$ROUTES" -le 5000 ] || { echo "KEYS <= 100000, ROUTES <= 5000" >&2; exit 2; }

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

need=()
for p in wrk nginx redis-server redis-tools openssl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

TMP=$(mktemp -d /tmp/codeb-bench-api.XXXXXX)
mkdir -p "$TMP/logs" "$TMP/tmp" "$TMP/static"
REDIS_PID= NGINX_PID=
cleanup() {
    stop_pid "$NGINX_PID" QUIT
    stop_pid "$REDIS_PID"
    bench_remove_tmp
}
trap cleanup EXIT

bench_build "$ROOT/build/modules/ngx_codeb_api_module.so" "$ROOT/ngx_codeb_api" "$ROOT/ngx_codeb_core"

# ---- servers ------------------------------------------------------------------

redis-server --port 0 --unixsocket "$TMP/redis.sock" --unixsocketperm 777 --save '' \
    --appendonly no --dir "$TMP" --logfile "$TMP/logs/redis.log" &
REDIS_PID=$!
for _ in $(seq 50); do redis-cli -s "$TMP/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done

# KEYS API keys and ROUTES routes (the catch-all last), as the API stores them
log "storing $KEYS API keys and $ROUTES routes"
python3 - "$KEYS" "$ROUTES" >"$TMP/seed.redis" <<'EOF'
import json, sys, secrets
keys, routes = int(sys.argv[1]), int(sys.argv[2])
def cmd(*a):
    out = '*%d\r\n' % len(a)
    for x in a:
        b = x.encode()
        out += '$%d\r\n' % len(b) + x + '\r\n'
    return out
t = 1796000000000
for i in range(keys):
    kid = secrets.token_hex(8)
    h = secrets.token_hex(32)
    rec = json.dumps({'id': kid, 'name': 'key %d' % i, 'hash': h, 'created': t + i, 'by': 'bench'},
                     separators=(',', ':'))
    sys.stdout.write(cmd('HSET', 'codeb:{localhost}:apikeys', kid, rec))
    sys.stdout.write(cmd('HSET', 'codeb:{localhost}:apikeyhash', h, kid))
    sys.stdout.write(cmd('ZADD', 'codeb:{localhost}:apikeys:t', str(t + i), kid))
for i in range(routes - 1):
    sys.stdout.write(cmd('RPUSH', 'codeb:{localhost}:routes',
                         json.dumps({'did': '+49301%05d' % i, 'from': '*', 'user': 'user%d' % i},
                                    separators=(',', ':'))))
sys.stdout.write(cmd('RPUSH', 'codeb:{localhost}:routes',
                     json.dumps({'did': '*', 'from': '*', 'user': 'alice'}, separators=(',', ':'))))
EOF
redis-cli -s "$TMP/redis.sock" --pipe <"$TMP/seed.redis" >/dev/null

SECRET=bench-hs256-secret
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
HDR=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
PAY=$(printf '{"sub":"bench","role":"admin","exp":%d}' $(( $(date +%s) + 3600 )) | b64)
SIG=$(printf '%s.%s' "$HDR" "$PAY" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64)
TOKEN="$HDR.$PAY.$SIG"

user=$( [ "$(id -u)" = 0 ] && echo 'user root;' || true)
cat >"$TMP/nginx.conf" <<EOF
load_module $ROOT/build/modules/ngx_codeb_core_module.so;
load_module $ROOT/build/modules/ngx_codeb_api_module.so;
$user
worker_processes $WORKERS;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/tmp/body;
    proxy_temp_path $TMP/tmp/proxy;
    fastcgi_temp_path $TMP/tmp/fastcgi;
    uwsgi_temp_path $TMP/tmp/uwsgi;
    scgi_temp_path $TMP/tmp/scgi;
    codeb_redis unix:$TMP/redis.sock;
    server {
        listen 127.0.0.1:$PORT reuseport;
        codeb_tenant localhost;
        codeb_oidc_hs256_secret $SECRET;
        location /api.ashx { codeb_api; }
        location /static/ {
            root $TMP;
            default_type application/json;
            add_header Cache-Control no-store;
        }
    }
}
EOF
nginx -p "$TMP" -c "$TMP/nginx.conf" -g 'daemon off;' 2>"$TMP/logs/nginx.stderr" &
NGINX_PID=$!
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$PORT/api.ashx/v1" >/dev/null 2>&1 && break
    sleep 0.1
done

# CALLS scheduled calls, made through the API itself (POST /v1/calls)
log "scheduling $CALLS calls through POST /api.ashx/v1/calls"
python3 - "$PORT" "$TOKEN" "$CALLS" <<'EOF'
import http.client, json, sys, time
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection('127.0.0.1', port)
when = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() + 86400))
for i in range(n):
    body = json.dumps({'phone': '+4930%07d' % i, 'email': 'ops@example.com', 'systemPrompt': 'Remind them.',
                       'apiKey': 'bench', 'displayName': 'Bench %d' % i, 'scheduleAtUtc': when})
    c.request('POST', '/api.ashx/v1/calls', body, {'Authorization': 'Bearer ' + token,
                                                   'Content-Type': 'application/json'})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
EOF

# the static twins: each request's exact answer body
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api.ashx/v1/api-keys?limit=50" \
    >"$TMP/static/keys.json"
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api.ashx/v1/inbound-routes" \
    >"$TMP/static/routes.json"
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api.ashx/v1/calls?limit=50" \
    >"$TMP/static/calls.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['total']==int(sys.argv[2]), d['total']" \
    "$TMP/static/calls.json" "$CALLS"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['total']==int(sys.argv[2]), d['total']" \
    "$TMP/static/keys.json" "$KEYS"

# ---- measurements -------------------------------------------------------------

nginx_cpu() {      # CPU seconds of the nginx workers so far
    local t=0 p
    for p in $(pgrep -P "$NGINX_PID"); do
        t=$(awk -v t="$t" '{ print t + ($14 + $15) / 100 }' "/proc/$p/stat")
    done
    echo "$t"
}
redis_cpu() { awk '{ print ($14 + $15) / 100 }' "/proc/$REDIS_PID/stat"; }

# run NAME URL [auth]: "rps p50_ms p99_ms cpu_ms_per_1000" into $TMP/NAME
run() {
    local name=$1 url=$2 auth=${3:-} c0 r0 c1 r1 out
    c0=$(nginx_cpu); r0=$(redis_cpu)
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency ${auth:+-H "Authorization: Bearer $TOKEN"} "$url")
    c1=$(nginx_cpu); r1=$(redis_cpu)
    echo "$out" >"$TMP/logs/wrk-$name.txt"
    echo "$out" | awk -v c="$(echo "$c1 - $c0 + $r1 - $r0" | bc -l)" '
        / 50%/ { p50 = $2 } / 99%/ { p99 = $2 }
        /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF }
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; return v * 1000 }
        END { if (bad) { print "non-2xx answers: " bad > "/dev/stderr"; exit 1 }
              printf "%.0f %.2f %.2f %.2f\n", rps, ms(p50), ms(p99), c * 1000 / (rps * '"$DURATION"') * 1000 }
    ' >"$TMP/$name"
}

for round in 1 2; do
    log "round $round/2: api-keys, inbound-routes, calls, each with its static twin (${DURATION}s each)"
    run "keys$round" "http://127.0.0.1:$PORT/api.ashx/v1/api-keys?limit=50" auth
    run "skeys$round" "http://127.0.0.1:$PORT/static/keys.json"
    run "routes$round" "http://127.0.0.1:$PORT/api.ashx/v1/inbound-routes" auth
    run "sroutes$round" "http://127.0.0.1:$PORT/static/routes.json"
    run "calls$round" "http://127.0.0.1:$PORT/api.ashx/v1/calls?limit=50" auth
    run "scalls$round" "http://127.0.0.1:$PORT/static/calls.json"
done

best() { sort -k1,1nr "$TMP/${1}1" "$TMP/${1}2" | head -1; }

echo
echo "REST API benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores  $(nginx -v 2>&1 | cut -d' ' -f3)" \
     " build $(git -C "$ROOT" describe --always --dirty)"
echo "nginx $WORKERS workers, Redis over a unix socket; wrk 1 thread, $CONNS connections, ${DURATION}s per figure," \
     "the better of 2 rounds"
printf '%-44s %10s %9s %9s %14s\n' "" "req/s" "p50 ms" "p99 ms" "CPU ms/1000"
for pair in "keys:GET /v1/api-keys?limit=50 ($KEYS keys)" "routes:GET /v1/inbound-routes ($ROUTES routes)" \
            "calls:GET /v1/calls?limit=50 ($CALLS calls)"; do
    n=${pair%%:*}; label=${pair#*:}
    read -r a50 a1 a2 a3 < <(best "$n")
    read -r s50 s1 s2 s3 < <(best "s$n")
    printf '%-44s %10s %9s %9s %14s\n' "$label" "$a50" "$a1" "$a2" "$a3"
    printf '%-44s %10s %9s %9s %14s\n' "  the same body, static file" "$s50" "$s1" "$s2" "$s3"
    printf '%-44s %10.2f\n' "  API / static (req/s)" "$(echo "$a50 / $s50" | bc -l)"
done
echo "CPU ms/1000: nginx workers + Redis per 1000 requests; the API's bodies: $(stat -c %s "$TMP/static/keys.json")," \
     "$(stat -c %s "$TMP/static/routes.json") and $(stat -c %s "$TMP/static/calls.json") bytes"

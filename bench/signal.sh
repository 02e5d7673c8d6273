#!/usr/bin/env bash
# Signaling benchmark: /signal.ashx (ngx_codeb_signal, 1 and 2 nginx
# workers, Redis) against the reference relay bench/ref-relay.js (one Node
# process with `ws`, rooms in memory), same workload, same run.
#
#   bench/signal.sh                       defaults: ~1 min on 2 cores
#   ROOMS=1000 DURATION=10 bench/signal.sh
#
# Environment (defaults):
#   ROOMS=500          rooms of 2 peers for the relay runs (1000 connections)
#   DURATION=5         s of the saturation run
#   WINDOW=8           frames of its own a peer may have in flight (sat run)
#   RATE=5000          frames/s in total for the latency run
#   RATE_DURATION=3    s of the latency run
#   IDLE_CONNS=4000    connections (rooms of 2) that join on the fresh server:
#                      joins/s and join latency, then RSS when idle
#   CONCURRENCY=128    rooms joining at once
#   PORT=18480         ours; the Node relay uses PORT+10 (127.0.0.1 only)
#   KEEP=1             keep the temporary directory (logs, raw results)
#   BUILD=0            skip ./build.sh build, measure build/modules as they
#                      are; either way the modules are copied to the
#                      temporary directory and loaded from there
#
# The load generator is bench/loadgen.c (one thread, epoll), compiled here
# with cc -O2.  Its CPU time is printed next to the servers' for every stage.
# Only loopback traffic.  Everything started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

ROOMS=${ROOMS:-500}
DURATION=${DURATION:-5}
WINDOW=${WINDOW:-8}
RATE=${RATE:-5000}
RATE_DURATION=${RATE_DURATION:-3}
IDLE_CONNS=${IDLE_CONNS:-4000}
CONCURRENCY=${CONCURRENCY:-128}
PORT=${PORT:-18480}
NODE_PORT=$((PORT + 10))

for v in ROOMS WINDOW RATE IDLE_CONNS CONCURRENCY PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be an integer" >&2; exit 2; }
done
for v in DURATION RATE_DURATION; do
    [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "$v must be a number" >&2; exit 2; }
done
if [ "$ROOMS" -lt 1 ] || [ "$ROOMS" -gt 5000 ]; then
    echo "ROOMS must be 1..5000" >&2; exit 2
fi
if [ "$IDLE_CONNS" -lt 2 ] || [ "$IDLE_CONNS" -gt 20000 ]; then
    echo "IDLE_CONNS must be 2..20000" >&2; exit 2
fi
if awk -v d="$DURATION" -v r="$RATE_DURATION" 'BEGIN { exit !(d > 30 || r > 30) }'; then
    echo "DURATION and RATE_DURATION are at most 30 s" >&2; exit 2
fi

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---- file descriptors ---------------------------------------------------

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
need=$((IDLE_CONNS > 2 * ROOMS ? IDLE_CONNS : 2 * ROOMS))
if [ $((need + 200)) -gt "$NOFILE" ]; then
    IDLE_CONNS=$(((NOFILE - 200) / 2 * 2))
    [ $((2 * ROOMS + 200)) -gt "$NOFILE" ] && ROOMS=$(((NOFILE - 200) / 2))
    warn "open file limit $NOFILE: IDLE_CONNS lowered to $IDLE_CONNS, ROOMS $ROOMS"
    need=$((IDLE_CONNS > 2 * ROOMS ? IDLE_CONNS : 2 * ROOMS))
fi
# nginx starts closing idle connections when less than 1/16 are free
WORKER_CONNS=$((need + need / 4 + 512))

for p in "$PORT" "$NODE_PORT"; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
        echo "port $p is in use on this machine; choose another with PORT=" >&2
        exit 1
    fi
done

# ---- temporary directory and cleanup ------------------------------------

TMP=$(mktemp -d /tmp/codeb-bench.XXXXXX)
chmod 755 "$TMP"           # nginx workers (nobody) reach the Redis socket
mkdir -p "$TMP/logs" "$TMP/modules" "$TMP/results"

NGINX_MASTER=
BUILD_STAMP=
NODE_PID=
REDIS_PID=
LG_PID=

stop_nginx() {
    local pid=$NGINX_MASTER kids i
    [ -n "$pid" ] || return 0
    NGINX_MASTER=
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # workers left behind (only ours: the pid must still be an nginx worker)
    for i in $kids; do
        grep -q '^nginx: worker' "/proc/$i/cmdline" 2>/dev/null \
            && kill -KILL "$i" 2>/dev/null || true
    done
}

# TERM, up to 3 s, then KILL
stop_node() { stop_pid "$NODE_PID"; NODE_PID=; }
stop_redis() { stop_pid "$REDIS_PID"; REDIS_PID=; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LG_PID" ]; then
        kill -TERM "$LG_PID" 2>/dev/null || true
        wait "$LG_PID" 2>/dev/null || true
    fi
    stop_nginx
    stop_node
    stop_redis
    bench_remove_tmp
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build --------------------------------------------------------------

# BUILD=0 measures build/modules as they are (warning when older than the
# sources); otherwise ./build.sh build first (it installs by rename)
bench_build "$ROOT/build/modules/ngx_codeb_signal_module.so" \
    "$ROOT"/ngx_codeb_core "$ROOT"/ngx_codeb_signal
log "building the load generator"
# private copies: a rebuild in the checkout while we run cannot touch them
cp "$ROOT"/build/modules/ngx_codeb_core_module.so \
   "$ROOT"/build/modules/ngx_codeb_signal_module.so "$TMP/modules/"
cc -O2 -Wall -o "$TMP/loadgen" "$ROOT/bench/loadgen.c"

# ---- Redis ----------------------------------------------------------------

redis-server --port 0 --unixsocket "$TMP/redis.sock" --unixsocketperm 777 \
    --save "" --appendonly no --daemonize yes \
    --pidfile "$TMP/redis.pid" --logfile "$TMP/logs/redis.log" --dir "$TMP"
for _ in $(seq 50); do
    redis-cli -s "$TMP/redis.sock" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -s "$TMP/redis.sock" ping >/dev/null 2>&1 \
    || { echo "redis did not start" >&2; cat "$TMP/logs/redis.log" >&2; exit 1; }
REDIS_PID=$(cat "$TMP/redis.pid")

# ---- runs -----------------------------------------------------------------

LG_ARGS=(-p 0 -r "$ROOMS" -n "$IDLE_CONNS" -d "$DURATION" -w "$WINDOW"
         -R "$RATE" -t "$RATE_DURATION" -c "$CONCURRENCY")

run_loadgen() {     # name port -m groups...
    local name=$1 port=$2
    shift 2
    LG_ARGS[1]=$port
    log "$name: load generator running (idle $IDLE_CONNS conns, $ROOMS rooms, sat ${DURATION}s, rate $RATE/s)"
    local rc=0
    # in the background, so that a signal stops the run at once (see cleanup)
    timeout -k 5 150 "$TMP/loadgen" "${LG_ARGS[@]}" "$@" \
        >"$TMP/results/$name" 2>"$TMP/results/$name.err" &
    LG_PID=$!
    wait "$LG_PID" || rc=$?
    LG_PID=
    [ "$rc" = 0 ] || warn "$name: load generator exited with $rc"

    if [ -s "$TMP/results/$name.err" ]; then
        sed "s/^/  [$name] /" "$TMP/results/$name.err" | head -12
    fi
}

start_nginx() {     # workers
    local w=$1 i
    cat >"$TMP/nginx.conf" <<EOF
load_module $TMP/modules/ngx_codeb_core_module.so;
load_module $TMP/modules/ngx_codeb_signal_module.so;

worker_processes $w;
worker_rlimit_nofile $NOFILE;
pid $TMP/nginx.pid;
error_log $TMP/logs/error-${w}w.log notice;

events {
    worker_connections $WORKER_CONNS;
}

http {
    access_log off;
    client_body_temp_path $TMP/tmp-body;
    proxy_temp_path $TMP/tmp-proxy;
    fastcgi_temp_path $TMP/tmp-fastcgi;
    uwsgi_temp_path $TMP/tmp-uwsgi;
    scgi_temp_path $TMP/tmp-scgi;

    codeb_redis unix:$TMP/redis.sock;

    server {
        listen 127.0.0.1:$PORT reuseport;
        codeb_tenant bench;

        location = /signal.ashx {
            codeb_signal;
            # the rate limiter is not what is measured
            codeb_signal_rate 100000;
            codeb_signal_burst 100000;
        }
    }
}
EOF
    nginx -t -q -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/logs/error-${w}w.log"
    nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/logs/error-${w}w.log"
    for i in $(seq 50); do
        [ -s "$TMP/nginx.pid" ] && break
        sleep 0.1
    done
    NGINX_MASTER=$(cat "$TMP/nginx.pid")
    # ready: the workers answer and reach Redis
    for i in $(seq 100); do
        curl -sf --max-time 1 "http://127.0.0.1:$PORT/signal.ashx?healthsummary=1" 2>/dev/null \
            | grep -q '"tenant":"bench"' && break
        sleep 0.1
    done
    BUILD_STAMP=$(curl -s --max-time 1 "http://127.0.0.1:$PORT/signal.ashx" 2>/dev/null | head -1)
    NGINX_WORKERS=$(pgrep -P "$NGINX_MASTER" | paste -sd, -)
    [ "$(echo "$NGINX_WORKERS" | tr ',' '\n' | grep -c .)" = "$w" ] \
        || warn "expected $w nginx workers, found: $NGINX_WORKERS"
}

check_nginx_log() {     # workers
    local f=$TMP/logs/error-$1w.log n
    if grep -q 'exited on signal' "$f"; then
        warn "ours($1w): a worker crashed -- $(grep 'exited on signal' "$f" | head -3 | tr '\n' ' ')"
    fi
    n=$(grep -cE '\[(alert|crit|emerg|error)\]' "$f" || true)
    if [ "$n" -gt 0 ]; then
        warn "ours($1w): $n alert/crit/error lines in error.log, first ones:"
        grep -E '\[(alert|crit|emerg|error)\]' "$f" | head -5 | sed 's/^/  /'
    fi
}

for w in 1 2; do
    redis-cli -s "$TMP/redis.sock" flushall >/dev/null
    log "ours(${w}w): nginx with $w worker(s), worker_connections $WORKER_CONNS"
    start_nginx "$w"
    run_loadgen "ours${w}w" "$PORT" -m "nginx=$NGINX_WORKERS" -m "redis=$REDIS_PID"
    redis-cli -s "$TMP/redis.sock" info commandstats 2>/dev/null \
        | awk -F'[:=,]' '/^cmdstat_(publish|evalsha|eval):/ { printf "%s=%s ", $1, $3 }' \
        | sed 's/cmdstat_//g' >"$TMP/results/ours${w}w.redis" || true
    stop_nginx
    check_nginx_log "$w"
    redis-cli -s "$TMP/redis.sock" config resetstat >/dev/null 2>&1 || true
done

log "node-ws: bench/ref-relay.js ($(node --version))"
node "$ROOT/bench/ref-relay.js" "$NODE_PORT" >"$TMP/logs/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 50); do
    grep -q listening "$TMP/logs/node.log" 2>/dev/null && break
    sleep 0.1
done
grep -q listening "$TMP/logs/node.log" || { cat "$TMP/logs/node.log"; exit 1; }
run_loadgen node "$NODE_PORT" -m "node=$NODE_PID"
kill -0 "$NODE_PID" 2>/dev/null || warn "node-ws: the relay died: $(tail -3 "$TMP/logs/node.log")"
stop_node

# ---- report -------------------------------------------------------------
set +e      # a missing number prints "-", it does not end the report

val() { awk -v k="$2" '$1 == k { print $2; exit }' "$TMP/results/$1" 2>/dev/null; }

# name srv-group label
row() {
    local r=$1 g=$2 label=$3 rss redis
    rss=$(val "$r" "idle_rss_${g}_per_conn_kb")
    redis=$(val "$r" idle_rss_redis_per_conn_kb)
    printf '%-10s %9s %10s %8s %8s %8s %8s %8s %8s %9s %7s\n' "$label" \
        "$(val "$r" join_joins_per_s)" "$(val "$r" sat_frames_per_s)" \
        "$(val "$r" join_p50_ms)" "$(val "$r" join_p99_ms)" \
        "$(val "$r" rate_p50_ms)" "$(val "$r" rate_p99_ms)" \
        "$(val "$r" sat_p50_ms)" "$(val "$r" sat_p99_ms)" \
        "${rss:--}" "${redis:--}"
}

ratio() {   # label ours-result group
    local o=$2 g=$3
    awk -v label="$1" \
        -v j1="$(val "$o" join_joins_per_s)" -v j2="$(val node join_joins_per_s)" \
        -v f1="$(val "$o" sat_frames_per_s)" -v f2="$(val node sat_frames_per_s)" \
        -v a1="$(val "$o" join_p50_ms)" -v a2="$(val node join_p50_ms)" \
        -v b1="$(val "$o" join_p99_ms)" -v b2="$(val node join_p99_ms)" \
        -v c1="$(val "$o" rate_p50_ms)" -v c2="$(val node rate_p50_ms)" \
        -v d1="$(val "$o" rate_p99_ms)" -v d2="$(val node rate_p99_ms)" \
        -v e1="$(val "$o" sat_p50_ms)" -v e2="$(val node sat_p50_ms)" \
        -v h1="$(val "$o" sat_p99_ms)" -v h2="$(val node sat_p99_ms)" \
        -v r1="$(val "$o" "idle_rss_${g}_per_conn_kb")" -v rr="$(val "$o" idle_rss_redis_per_conn_kb)" \
        -v r2="$(val node idle_rss_node_per_conn_kb)" '
        function q(x, y) { return (x == "" || y == "" || y + 0 == 0) ? "-" : sprintf("%.2f", x / y) }
        BEGIN {
            printf "%-10s %9s %10s %8s %8s %8s %8s %8s %8s %9s %7s\n", label,
                q(j1, j2), q(f1, f2), q(a1, a2), q(b1, b2), q(c1, c2), q(d1, d2),
                q(e1, e2), q(h1, h2), q(r1, r2), (rr == "" ? "-" : q(r1 + rr, r2))
        }'
}

cpu_row() {     # result label stage groups...
    local r=$1 label=$2 st=$3 g out
    shift 3
    out=$(printf '%-10s %-5s wall %5ss  loadgen %5s%%' "$label" "$st" \
        "$(val "$r" "${st}_wall_s")" "$(val "$r" "${st}_cpu_loadgen_pct")")
    for g in "$@"; do
        out+=$(printf '  %s %5s%%' "$g" "$(val "$r" "${st}_cpu_${g}_pct")")
    done
    out+=$(printf '  other %5s%%' "$(val "$r" "${st}_cpu_other_pct")")
    echo "$out"
}

echo
echo "Signaling benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores  $(nginx -v 2>&1 | sed 's/.*: //')  node $(node --version)"
echo "join: $IDLE_CONNS connections (rooms of 2) on the freshly started server: TCP connect + WebSocket upgrade + join,"
echo "  $CONCURRENCY rooms at once, B joins after A's welcome; joins/s over the whole stage, join -> welcome latency."
echo "idle: those connections stay joined and idle 1.5 s; RSS then minus RSS before the first connection, / connections."
echo "relay: $ROOMS rooms x 2 peers, ~230-byte ICE-candidate data (JSON, send timestamp inside), A->B and B->A;"
echo "  saturation: closed loop, $WINDOW frames in flight per peer, ${DURATION}s; latency: $RATE frames/s in total, ${RATE_DURATION}s."
echo "ours: nginx + ngx_codeb_signal (build ${BUILD_STAMP:-?}), Redis over a unix socket, listen reuseport;"
echo "  codeb_signal_rate 100000 and codeb_signal_burst 100000, so the per-connection rate limiter (default"
echo "  50/s, burst 100) is not what is measured; resume on (default grace 20 s: every frame sent is also kept)."
echo "node-ws: bench/ref-relay.js, one Node process, ws $(node -p "require('$ROOT/node_modules/ws/package.json').version"), rooms in memory, JSON.parse/stringify per frame."
echo
printf '%-10s %9s %10s %8s %8s %8s %8s %8s %8s %9s %7s\n' "" "joins/s" "frames/s" \
    "join" "join" "deliver" "deliver" "sat" "sat" "RSS/conn" "+redis"
printf '%-10s %9s %10s %8s %8s %8s %8s %8s %8s %9s %7s\n' "" "" "(sat)" \
    "p50 ms" "p99 ms" "p50 ms" "p99 ms" "p50 ms" "p99 ms" "KB" "KB"
row ours1w nginx "ours(1w)"
row ours2w nginx "ours(2w)"
row node node "node-ws"
ratio "1w/node" ours1w nginx
ratio "2w/node" ours2w nginx
echo
echo "deliver p50/p99: send -> deliver at $RATE frames/s (moderate load); sat p50/p99: the same during the saturation"
echo "  run (queueing behind $WINDOW frames in flight per peer included).  RSS/conn: nginx workers (ours) or the node"
echo "  process; +redis: Redis's share for ours, separately; the last ratio compares nginx+Redis with node."
echo "ratios are ours / node: above 1 is better for joins/s and frames/s, below 1 is better for latencies and RSS."
echo
# per CPU-second of the server's processes: less sensitive to other load
eff() {     # result label groups...
    local r=$1 label=$2 g js=0 ss=0 v
    shift 2
    for g in "$@"; do
        v=$(val "$r" "join_cpu_${g}_s"); js=$(awk -v a="$js" -v b="${v:-0}" 'BEGIN { print a + b }')
        v=$(val "$r" "sat_cpu_${g}_s"); ss=$(awk -v a="$ss" -v b="${v:-0}" 'BEGIN { print a + b }')
    done
    awk -v label="$label" -v rooms="$(val "$r" join_joined_rooms)" -v js="$js" \
        -v fr="$(val "$r" sat_frames)" -v ss="$ss" -v who="$*" '
        BEGIN {
            printf "  %-9s %10s joins per CPU-s %10s frames per CPU-s   (%s)\n", label,
                (js > 0 ? sprintf("%.0f", 2 * rooms / js) : "-"),
                (ss > 0 ? sprintf("%.0f", fr / ss) : "-"), who
        }'
}
echo "per CPU-second of the server processes (nginx workers + Redis, or node); these are less disturbed by"
echo "other load on the machine than the rates above:"
eff ours1w "ours(1w)" nginx redis
eff ours2w "ours(2w)" nginx redis
eff node "node-ws" node
echo

echo "frames/s per room during the saturation run (min / p10 / p50 / p90 / max): equal shares or starved rooms?"
for r in ours1w ours2w node; do
    printf '  %-7s %s / %s / %s / %s / %s\n' "$r" "$(val "$r" sat_room_fps_min)" \
        "$(val "$r" sat_room_fps_p10)" "$(val "$r" sat_room_fps_p50)" \
        "$(val "$r" sat_room_fps_p90)" "$(val "$r" sat_room_fps_max)"
done
echo "join stage, connect -> 101 Switching Protocols (the part before join -> welcome), p50 / p99 ms:"
for r in ours1w ours2w node; do
    printf '  %-7s %s / %s\n' "$r" "$(val "$r" upgrade_p50_ms)" "$(val "$r" upgrade_p99_ms)"
done
echo "joins of the relay rooms ($ROOMS rooms, server already warm): joins/s, p50, p99 ms:"
for r in ours1w ours2w node; do
    printf '  %-7s %s  %s  %s\n' "$r" "$(val "$r" rjoin_joins_per_s)" \
        "$(val "$r" rjoin_p50_ms)" "$(val "$r" rjoin_p99_ms)"
done
echo
echo "CPU per stage, % of one core (from /proc; 'other' = the rest of the machine during the stage):"
echo "  load generator = $TMP/loadgen (bench/loadgen.c, one thread, epoll); pids: ours1w $(val ours1w loadgen_pid), ours2w $(val ours2w loadgen_pid), node $(val node loadgen_pid)"
for st in join sat rate; do
    cpu_row ours1w "ours(1w)" "$st" nginx redis
    cpu_row ours2w "ours(2w)" "$st" nginx redis
    cpu_row node "node-ws" "$st" node
done
for r in ours1w ours2w node; do
    echo "  load generator total CPU ($r): $(val "$r" loadgen_cpu_total_s) s"
done
for r in ours1w ours2w node; do
    for st in join sat; do
        o=$(val "$r" "${st}_cpu_other_pct")
        if [ -n "$o" ] && awk -v o="$o" 'BEGIN { exit !(o > 25) }'; then
            warn "$r $st: other processes used $o% of a core meanwhile; that number is disturbed"
        fi
    done
done
echo
echo "checks (every delivered frame: sender, data byte for byte, order, seq):"
for r in ours1w ours2w node; do
    printf '  %-7s delivered %s/%s sat, %s rate, lost %s; ' "$r" \
        "$(val "$r" sat_delivered)" "$(val "$r" sat_sent)" "$(val "$r" rate_delivered)" \
        "$(val "$r" lost_frames)"
    awk '/^err_/ && $2 != 0 { printf "%s=%s ", $1, $2; bad = 1 } END { if (!bad) printf "no errors" }' \
        "$TMP/results/$r" 2>/dev/null
    printf '; leave: %s+%s closed 1000' "$(val "$r" idle_leave_closed_1000)" "$(val "$r" leave_closed_1000)"
    [ -f "$TMP/results/$r.redis" ] && printf '; redis: %s' "$(cat "$TMP/results/$r.redis")"
    echo
    if ! grep -q '^lost_frames' "$TMP/results/$r" 2>/dev/null; then
        warn "$r: incomplete results (see above)"
    fi
done
for w in 1 2; do
    grep -q 'exited on signal' "$TMP/logs/error-${w}w.log" 2>/dev/null \
        && warn "ours(${w}w): 'exited on signal' in the nginx error log"
done
exit 0

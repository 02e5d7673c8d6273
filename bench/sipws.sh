#!/usr/bin/env bash
# SIP benchmark: ngx_codeb_sipws (nginx, 2 workers, Redis, codeb-mediad)
# against Debian's Kamailio 5.6 with its websocket module
# (bench/kamailio-sipws.cfg), same machine, same run, same load generator.
#
#   bench/sipws.sh                    defaults: about 3 minutes on 2 cores
#   ROUNDS=1 MEM_CONNS=1000 bench/sipws.sh
#
# Measured, for each server:
#   mem   MEM_CONNS WebSockets connect and register (digest), stay idle;
#         memory of the server's processes then minus before the first
#         connection, per registered WebSocket
#   reg   REGISTER/s with digest over WebSocket and over UDP: REG_PHONES
#         phones re-register in a closed loop, each
#         REGISTER -> 401 -> REGISTER with Authorization (MD5, qop=auth)
#         -> 200 counted as one registration
#   call  calls/s over WebSocket and over UDP: CALL_PAIRS callers each call
#         their own callee in a closed loop: INVITE -> 407
#         -> ACK, INVITE with Proxy-Authorization -> 100/180 -> 200 (the
#         callee answers at once, with SDP) -> ACK -> BYE -> 200
#   ours is a back-to-back user agent that puts every call through
#   codeb-mediad over NG (offer, answer, delete); Kamailio is a stateful
#   proxy without media, and is measured a second time with its rtpengine
#   module driving the same codeb-mediad (the same NG work per call).
#
# The memory stage runs on each server alone, freshly started.  For the
# rest the three (ours, Kamailio, Kamailio with media) run side by side on
# their own ports and every figure is measured in ROUNDS rounds of DURATION
# s, the servers taking turns (ours, kamailio, kamailio+media, ours, ...),
# so that what else runs on the machine weighs on all of them alike.
#
# Environment (defaults):
#   DURATION=2.5       s of one round of a figure (1..30)
#   ROUNDS=4           rounds per figure (1..10): each figure is ROUNDS x
#                      DURATION s of load per server
#   MEM_CONNS=2000     WebSockets of the memory stage (also the user count)
#   MEM_CONC=100       of them registering at once
#   REG_PHONES=200     phones of the REGISTER stages
#   CALL_PAIRS=100     caller/callee pairs of the call stages
#   WORKERS=2          nginx worker_processes; Kamailio gets children=WORKERS
#                      and tcp_children=WORKERS
#   JOBS=1             load generator processes (bench/sipload.c, -j)
#   PORT=15060         ours: UDP PORT, WebSocket PORT+6; Kamailio: UDP
#                      PORT+100, WebSocket PORT+106; Kamailio with media:
#                      UDP PORT+200, WebSocket PORT+206; codeb-mediad NG
#                      PORT+163, media ports MEDIA_MIN..MEDIA_MIN+1999
#   MEDIA_MIN=42000
#   UDP_RCVBUF=256k    nginx's "listen ... udp rcvbuf=" for ours: what
#                      Kamailio sets on its own UDP socket (maxbuffer 256 KB);
#                      UDP_RCVBUF= (empty): the kernel's default, as
#                      conf/nginx.conf has it
#   KEEP=1             keep the temporary directory (logs, raw results)
#   BUILD=0            skip ./build.sh build and measure build/ as it is
#
# Everything listens on and talks to 127.0.0.1 only.  Everything started
# here is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

DURATION=${DURATION:-2.5}
ROUNDS=${ROUNDS:-4}
MEM_CONNS=${MEM_CONNS:-2000}
MEM_CONC=${MEM_CONC:-100}
REG_PHONES=${REG_PHONES:-200}
CALL_PAIRS=${CALL_PAIRS:-100}
WORKERS=${WORKERS:-2}
JOBS=${JOBS:-1}
PORT=${PORT:-15060}
MEDIA_MIN=${MEDIA_MIN:-42000}
UDP_RCVBUF=${UDP_RCVBUF-256k}

for v in MEM_CONNS MEM_CONC REG_PHONES CALL_PAIRS WORKERS JOBS PORT MEDIA_MIN ROUNDS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be an integer" >&2; exit 2; }
done
[[ -z $UDP_RCVBUF || $UDP_RCVBUF =~ ^[0-9]+[km]?$ ]] \
    || { echo "UDP_RCVBUF must be a size (512k)" >&2; exit 2; }
[[ $DURATION =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "DURATION must be a number" >&2; exit 2; }
if awk -v d="$DURATION" 'BEGIN { exit !(d > 30 || d < 1) }'; then
    echo "DURATION is 1..30 s" >&2; exit 2
fi
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 10 ]; then
    echo "ROUNDS must be 1..10" >&2; exit 2
fi
if [ "$REG_PHONES" -lt 1 ] || [ "$REG_PHONES" -gt 5000 ] || [ "$CALL_PAIRS" -lt 1 ] \
    || [ "$CALL_PAIRS" -gt 2500 ]; then
    echo "REG_PHONES must be 1..5000, CALL_PAIRS 1..2500" >&2; exit 2
fi
if [ "$MEM_CONNS" -lt 10 ] || [ "$MEM_CONNS" -gt 20000 ]; then
    echo "MEM_CONNS must be 10..20000" >&2; exit 2
fi
if [ "$WORKERS" -lt 1 ] || [ "$WORKERS" -gt 16 ] || [ "$JOBS" -lt 1 ] || [ "$JOBS" -gt 8 ]; then
    echo "WORKERS must be 1..16, JOBS 1..8" >&2; exit 2
fi
if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 65000 ] || [ "$MEDIA_MIN" -lt 1024 ] \
    || [ "$MEDIA_MIN" -gt 63000 ]; then
    echo "PORT must be 1024..65000, MEDIA_MIN 1024..63000" >&2; exit 2
fi

OURS_UDP=$PORT
OURS_WS=$((PORT + 6))
KAM_UDP=$((PORT + 100))
KAM_WS=$((PORT + 106))
KAMM_UDP=$((PORT + 200))
KAMM_WS=$((PORT + 206))
NG_PORT=$((PORT + 163))
MEDIA_MAX=$((MEDIA_MIN + 1999))
DOMAIN=localhost
KAM_MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules

# users u0..u<USERS-1>, password pw-u<i>, listed in both servers; the reg and
# call stages spread their phones over the list (stride), each stage on its
# own users (offsets 0..3 within the stride), and the phones unregister at
# the end of every round (Contact: *, Expires: 0), so no stage or round
# meets another's bindings
biggest=$((REG_PHONES > 2 * CALL_PAIRS ? REG_PHONES : 2 * CALL_PAIRS))
USERS=$MEM_CONNS
[ $((USERS / biggest)) -ge 4 ] || USERS=$((4 * biggest))
STRIDE=$((USERS / biggest))

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---- packages ---------------------------------------------------------------

need=()
for p in kamailio kamailio-websocket-modules nginx libnginx-mod-stream \
         redis-server redis-tools libssl-dev gcc; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -e "$KAM_MODULES/websocket.so" ] \
    || { echo "kamailio's websocket module is missing ($KAM_MODULES)" >&2; exit 1; }

# ---- file descriptors ---------------------------------------------------------

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
want=$((MEM_CONNS + 2 * biggest + 1000))
if [ "$want" -gt "$NOFILE" ]; then
    echo "open file limit $NOFILE (hard $(ulimit -Hn)) is below the $want needed;" \
         "lower MEM_CONNS" >&2
    exit 1
fi
WORKER_CONNS=$((2 * (MEM_CONNS + 2 * biggest) + 1024))

for p in "$OURS_UDP" "$KAM_UDP" "$KAMM_UDP" "$NG_PORT"; do
    if ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then
        echo "UDP port $p is in use on this machine; choose another PORT=" >&2; exit 1
    fi
done
for p in "$OURS_WS" "$KAM_WS" "$KAMM_WS"; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
        echo "TCP port $p is in use on this machine; choose another PORT=" >&2; exit 1
    fi
done

# ---- is the machine quiet? ----------------------------------------------------------

# busy time of all cores over 2 s, in % of one core
machine_busy() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    sleep 2
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ");
        printf "%.0f", (y[2] - x[2]) ? 100 * n * (y[1] - x[1]) / (y[2] - x[2]) : 0 }'
}
BUSY_BEFORE=$(machine_busy)
if [ "$BUSY_BEFORE" -gt 25 ]; then
    warn "other processes use ${BUSY_BEFORE}% of a core before the run: the figures will be disturbed"
fi

# ---- temporary directory and cleanup -------------------------------------------

TMP=$(mktemp -d /tmp/codeb-bench-sip.XXXXXX)
chmod 755 "$TMP"        # nginx workers (nobody) reach the Redis socket
mkdir -p "$TMP/logs" "$TMP/modules" "$TMP/results" "$TMP/kamdb"

NGINX_MASTER=
MEDIAD_PID=
REDIS_PID=
LG_PID=
T_START=$(date +%s)

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
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    for i in $kids; do
        grep -q '^nginx: worker' "/proc/$i/cmdline" 2>/dev/null \
            && kill -KILL "$i" 2>/dev/null || true
    done
}

# stop_kamailio NAME: TERM to its process group, KILL to the group after 5 s
declare -A KPID=() KPIDS=()
stop_kamailio() {
    local pid=${KPID[$1]:-} i
    [ -n "$pid" ] || return 0
    KPID[$1]=
    kill -TERM -- "-$pid" 2>/dev/null || true
    for i in $(seq 50); do
        pgrep -g "$pid" >/dev/null 2>&1 || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LG_PID" ]; then
        kill -TERM "$LG_PID" 2>/dev/null || true
        wait "$LG_PID" 2>/dev/null || true
    fi
    stop_nginx
    for k in "${!KPID[@]}"; do
        stop_kamailio "$k"
    done
    stop_pid "$MEDIAD_PID" INT      # TERM would drain calls for up to 10 s
    stop_pid "$REDIS_PID"
    bench_remove_tmp
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----------------------------------------------------------------------

bench_build "$ROOT/build/modules/ngx_codeb_sipws_module.so" \
    "$ROOT"/ngx_codeb_core "$ROOT"/ngx_codeb_signal "$ROOT"/ngx_codeb_sipws "$ROOT"/media-daemon
[ -x "$ROOT/build/mediad/codeb-mediad" ] \
    || { echo "build/mediad/codeb-mediad is missing: ./build.sh build" >&2; exit 1; }
# private copies: a rebuild in the checkout while we run cannot touch them
cp "$ROOT"/build/modules/ngx_codeb_core_module.so \
   "$ROOT"/build/modules/ngx_codeb_signal_module.so \
   "$ROOT"/build/modules/ngx_codeb_sipws_module.so "$TMP/modules/"
cp "$ROOT/build/mediad/codeb-mediad" "$TMP/codeb-mediad"
log "building the load generator (bench/sipload.c)"
cc -O2 -Wall -o "$TMP/sipload" "$ROOT/bench/sipload.c" -lcrypto

# ---- users ------------------------------------------------------------------------

{
    for ((i = 0; i < USERS; i++)); do
        echo "codeb_sip_user u$i password=pw-u$i;"
    done
} >"$TMP/users.conf"
{
    echo "key_name(str) key_type(int) value_type(int) key_value(str) expires(int)"
    for ((i = 0; i < USERS; i++)); do
        echo "u$i:0:0:pw-u$i:0"
    done
} >"$TMP/kamdb/users"
printf 'table_name(str) table_version(int)\nusers:2\n' >"$TMP/kamdb/version"

# ---- Redis and the media daemon -------------------------------------------------------

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

# as t/102-sip-call.t starts it: NG and media ports of its own, one media
# thread (calls here carry no RTP: the daemon only answers NG)
"$TMP/codeb-mediad" --listen-ng "127.0.0.1:$NG_PORT" --interface 127.0.0.1 \
    --port-min "$MEDIA_MIN" --port-max "$MEDIA_MAX" --threads 1 --timeout 60 \
    --log-level warn >"$TMP/logs/mediad.log" 2>&1 &
MEDIAD_PID=$!
sleep 0.3
kill -0 "$MEDIAD_PID" 2>/dev/null \
    || { echo "codeb-mediad did not start:" >&2; cat "$TMP/logs/mediad.log" >&2; exit 1; }

# ---- the servers --------------------------------------------------------------------------

start_nginx() {
    local i
    cat >"$TMP/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $TMP/modules/ngx_codeb_core_module.so;
load_module $TMP/modules/ngx_codeb_signal_module.so;
load_module $TMP/modules/ngx_codeb_sipws_module.so;

worker_processes $WORKERS;
worker_rlimit_nofile $NOFILE;
pid $TMP/nginx.pid;
error_log $TMP/logs/nginx-error.log notice;

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
    codeb_sip_media 127.0.0.1:$NG_PORT;

    server {
        listen 127.0.0.1:$OURS_WS reuseport;
        server_name $DOMAIN;
        codeb_tenant $DOMAIN;
        include $TMP/users.conf;

        location = / {
            codeb_sip_ws;
        }
    }
}

stream {
    server {
        listen 127.0.0.1:$OURS_UDP udp reuseport${UDP_RCVBUF:+ rcvbuf=$UDP_RCVBUF};
        codeb_sip;
    }
}
EOF
    rm -f "$TMP/nginx.pid"
    nginx -t -q -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/logs/nginx-error.log"
    nginx -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/logs/nginx-error.log"
    for i in $(seq 50); do
        [ -s "$TMP/nginx.pid" ] && break
        sleep 0.1
    done
    NGINX_MASTER=$(cat "$TMP/nginx.pid")
    wait_ready ours "$OURS_UDP" "$OURS_WS"
    # the workers' Redis links (a REGISTER would wait for them)
    sleep 0.5
    NGINX_WORKERS=$(pgrep -P "$NGINX_MASTER" | paste -sd, -)
    [ "$(echo "$NGINX_WORKERS" | tr ',' '\n' | grep -c .)" = "$WORKERS" ] \
        || warn "expected $WORKERS nginx workers, found: $NGINX_WORKERS"
}

# start_kamailio NAME UDP-PORT WS-PORT [-A WITH_MEDIA]: in a process group of
# its own (setsid); KPID[NAME] its main process, KPIDS[NAME] all of them
start_kamailio() {
    local name=$1 udp=$2 ws=$3
    shift 3
    sed -e "s/@CHILDREN@/$WORKERS/g; s/@DOMAIN@/$DOMAIN/g" \
        -e "s/@UDP_PORT@/$udp/g; s/@WS_PORT@/$ws/g" \
        -e "s/@MAX_CONNS@/$WORKER_CONNS/g; s/@NOFILE@/$NOFILE/g" \
        -e "s#@MODULES@#$KAM_MODULES#g; s#@DBDIR@#$TMP/kamdb#g" \
        -e "s/@SECRET@/$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')/g" \
        -e "s/@NG_PORT@/$NG_PORT/g" \
        "$ROOT/bench/kamailio-sipws.cfg" >"$TMP/$name.cfg"
    mkdir -p "$TMP/run-$name"
    kamailio -c "$@" -f "$TMP/$name.cfg" -Y "$TMP/run-$name" -w "$TMP" \
        >"$TMP/logs/$name-check.log" 2>&1 \
        || { tail -20 "$TMP/logs/$name-check.log" >&2; exit 1; }
    # -m: shared memory; at ~1000 calls/s the transactions kept for their
    # wait timer and 2000 WebSockets need more than 256 MB
    setsid kamailio -DD -E "$@" -f "$TMP/$name.cfg" -Y "$TMP/run-$name" -w "$TMP" \
        -P "$TMP/run-$name/kamailio.pid" -m 1024 -M 16 -a no \
        >>"$TMP/logs/$name.log" 2>&1 </dev/null &
    KPID[$name]=$!
    wait_ready "$name" "$udp" "$ws"
    KPIDS[$name]=$(pgrep -g "${KPID[$name]}" | paste -sd, -)
    KAM_NPROC=$(echo "${KPIDS[$name]}" | tr ',' '\n' | grep -c .)
}

wait_ready() {          # name udp-port ws-port
    local i
    for i in $(seq 100); do
        if "$TMP/sipload" -s probe -t udp -p "$2" -D "$DOMAIN" -d 0.3 >/dev/null 2>&1 \
            && "$TMP/sipload" -s probe -t ws -p "$3" -D "$DOMAIN" -d 0.3 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "$1 did not answer OPTIONS on udp:$2 and ws:$3" >&2
    tail -20 "$TMP/logs/$1"*.log >&2 || true
    exit 1
}

# UDP datagrams the kernel dropped for a full receive buffer (whole machine)
udp_drops() { awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ { print $6; exit }' /proc/net/snmp 2>/dev/null || echo 0; }

# run_lg RESULT ARGS...: the load generator, in the background so that a
# signal stops it at once (see cleanup), bounded by timeout
run_lg() {
    local name=$1 rc=0 d0
    shift
    d0=$(udp_drops)
    timeout -k 5 "$(awk -v d="$DURATION" 'BEGIN { printf "%d", d + 90 }')" \
        "$TMP/sipload" -D "$DOMAIN" -j "$JOBS" "$@" \
        >"$TMP/results/$name" 2>"$TMP/results/$name.err" &
    LG_PID=$!
    wait "$LG_PID" || rc=$?
    LG_PID=
    [ "$rc" = 0 ] || warn "$name: the load generator exited with $rc"
    echo "udp_rcvbuf_drops $(($(udp_drops) - d0))" >>"$TMP/results/$name"
    if [ -s "$TMP/results/$name.err" ]; then
        sed "s/^/  [$name] /" "$TMP/results/$name.err" | head -8 >&2
    fi
}

# one figure, one round: stage server round ws-port udp-port groups...
# (each stage has users of its own: offset 0..3 within the stride)
measure() {
    local st=$1 s=$2 r=$3 ws=$4 udp=$5 off t kind
    shift 5
    case $st in
        reg-ws) off=0 ;; reg-udp) off=1 ;; call-ws) off=2 ;; call-udp) off=3 ;;
    esac
    kind=${st%-*}
    t=${st#*-}
    if [ "$kind" = reg ]; then
        run_lg "$s.$st.r$r" -s reg -t "$t" -p "$( [ "$t" = ws ] && echo "$ws" || echo "$udp")" \
            -n "$REG_PHONES" -c 100 -d "$DURATION" -u "$off" -S "$STRIDE" "$@"
    else
        run_lg "$s.$st.r$r" -s call -t "$t" -p "$( [ "$t" = ws ] && echo "$ws" || echo "$udp")" \
            -n "$CALL_PAIRS" -c 100 -d "$DURATION" -u "$off" -S "$STRIDE" "$@"
    fi
}

# the rounds' results of a figure added up into one result file: counts and
# CPU seconds summed, rates and CPU % over the summed time, latency
# percentiles the mean of the rounds' (and the rounds' rates listed)
aggregate() {   # server.stage
    local f=$1 files
    files=$(ls "$TMP/results/$f".r[0-9]* 2>/dev/null | grep -v '\.err$' || true)
    [ -n "$files" ] || return 0
    # shellcheck disable=SC2086
    awk '
        { v[$1] += $2; n[$1]++ }
        $1 ~ /_per_s$/ { rounds[$1] = rounds[$1] sprintf(" %.0f", $2) }
        $1 ~ /^setup_(registered|phones)$/ { if (!($1 in mn) || $2 < mn[$1]) mn[$1] = $2 }
        END {
            st = ("reg_wall_s" in v) ? "reg" : "call"
            wall = v[st "_wall_s"]
            for (k in v) {
                if (k ~ /_per_s$/ || k ~ /_pct$/) continue
                if (k ~ /_ms$/) printf "%s %.3f\n", k, v[k] / n[k]
                else if (k in mn) printf "%s %d\n", k, mn[k]
                else printf "%s %s\n", k, v[k]
            }
            if (wall > 0) {
                if ((st "_done") in v) printf "%s_per_s %.1f\n", st, v[st "_done"] / wall
                for (k in v) if (k ~ /_cpu_.*_s$/ && k != st "_wall_s") {
                    p = k; sub(/_s$/, "_pct", p)
                    printf "%s %.1f\n", p, 100 * v[k] / wall
                }
            }
            for (k in rounds) printf "%s_rounds%s\n", k, rounds[k]
        }' $files >"$TMP/results/$f"
    # all (the whole machine) and other are percentages in each round
    # shellcheck disable=SC2086
    awk -v st="$(basename "$f" | sed 's/.*\.\(reg\|call\).*/\1/')" '
        $1 == st "_wall_s" { w = $2 }
        $1 == st "_cpu_all_pct" { a += $2 * w; wa += w }
        $1 == st "_cpu_other_pct" { o += $2 * w; wo += w }
        END {
            if (wa) printf "%s_cpu_all_pct %.1f\n", st, a / wa
            if (wo) printf "%s_cpu_other_pct %.1f\n", st, o / wo
        }' $files >>"$TMP/results/$f"
}

mem_stage() {   # name ws-port groups...
    local s=$1 ws=$2
    shift 2
    log "$s: $MEM_CONNS WebSockets register and stay idle"
    run_lg "$s.mem" -s mem -t ws -p "$ws" -n "$MEM_CONNS" -c "$MEM_CONC" -i 2000 "$@"
    # the server drops the bindings of the closed WebSockets
    sleep 1
}

check_nginx_log() {
    local f=$TMP/logs/nginx-error.log n
    [ -f "$f" ] || return 0
    if grep -q 'exited on signal' "$f"; then
        warn "ours: a worker crashed -- $(grep 'exited on signal' "$f" | head -3 | tr '\n' ' ')"
    fi
    n=$(grep -cE '\[(alert|crit|emerg)\]' "$f" || true)
    if [ "$n" -gt 0 ]; then
        warn "ours: $n alert/crit/emerg lines in the nginx error log, first ones:"
        grep -E '\[(alert|crit|emerg)\]' "$f" | head -5 | sed 's/^/  /'
    fi
}

# ---- memory per registered WebSocket: each server fresh, alone ----------------------

log "ours: nginx $WORKERS workers + ngx_codeb_sipws, Redis (unix socket), codeb-mediad"
start_nginx
BUILD_STAMP=$(sed -n 's/.*"\(.*\)".*/\1/p' "$ROOT/build/codeb_build.h" 2>/dev/null | head -1)
mem_stage ours "$OURS_WS" -m "nginx=$NGINX_WORKERS" -m "redis=$REDIS_PID"
stop_nginx
redis-cli -s "$TMP/redis.sock" flushall >/dev/null

log "kamailio: $(kamailio -v 2>/dev/null | head -1 | awk '{print $3}'), children=$WORKERS tcp_children=$WORKERS"
start_kamailio kam "$KAM_UDP" "$KAM_WS"
mem_stage kam "$KAM_WS" -m "kamailio=${KPIDS[kam]}"
stop_kamailio kam

# ---- throughput: the three servers up together, the figures interleaved ----------------

start_nginx
start_kamailio kam "$KAM_UDP" "$KAM_WS"
start_kamailio kamm "$KAMM_UDP" "$KAMM_WS" -A WITH_MEDIA
OURS_G=(-m "nginx=$NGINX_WORKERS" -m "redis=$REDIS_PID" -m "mediad=$MEDIAD_PID")
KAM_G=(-m "kamailio=${KPIDS[kam]}")
KAMM_G=(-m "kamailio=${KPIDS[kamm]}" -m "mediad=$MEDIAD_PID")
for ((r = 1; r <= ROUNDS; r++)); do
    for st in reg-ws reg-udp call-ws call-udp; do
        log "round $r/$ROUNDS, $st: ours, kamailio$([ "${st%-*}" = call ] && echo ", kamailio+media") (${DURATION}s each)"
        measure "$st" ours "$r" "$OURS_WS" "$OURS_UDP" "${OURS_G[@]}"
        measure "$st" kam "$r" "$KAM_WS" "$KAM_UDP" "${KAM_G[@]}"
        if [ "${st%-*}" = call ]; then
            measure "$st" kamm "$r" "$KAMM_WS" "$KAMM_UDP" "${KAMM_G[@]}"
        fi
    done
done
# every phone unregistered or closed its WebSocket: nothing should be left
BINDINGS_LEFT=$(redis-cli -s "$TMP/redis.sock" scard "codeb:{$DOMAIN}:regs" 2>/dev/null)
stop_nginx
stop_kamailio kam
stop_kamailio kamm
check_nginx_log
for f in kam kamm; do
    grep -qiE 'segfault|core dumped|signal 11' "$TMP/logs/$f.log" 2>/dev/null \
        && warn "$f: a crash in kamailio's log"
    n=$(grep -ciE 'out of mem|could not allocate shared|no more (pkg|shm) memory' "$TMP/logs/$f.log" 2>/dev/null || true)
    [ "${n:-0}" -gt 0 ] && warn "$f: $n out-of-memory lines in kamailio's log (its -m shared memory)"
done
for s in ours kam kamm; do
    for st in reg-ws reg-udp call-ws call-udp; do
        aggregate "$s.$st"
    done
done

# ---- report ----------------------------------------------------------------------------------
set +e      # a missing number prints "-", it does not end the report

val() { awk -v k="$2" '$1 == k { print $2; exit }' "$TMP/results/$1" 2>/dev/null; }
num() { local v; v=$(val "$@"); echo "${v:--}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
sum() { awk 'BEGIN { s = 0; for (i = 1; i < ARGC; i++) { if (ARGV[i] == "" || ARGV[i] == "-") { print "-"; exit } s += ARGV[i] } printf "%.1f", s }' "$@"; }

rounds_of() {   # result reg|call: the rates of the rounds
    awk -v k="${2}_per_s_rounds" '$1 == k { $1 = ""; print; f = 1; exit } END { if (!f) print " -" }' \
        "$TMP/results/$1" 2>/dev/null
}

errs() {        # result: the non-zero err_* counts
    awk '/^err_/ && $2 != 0 { printf "%s%s=%s", sep, substr($1, 5), $2; sep = " " } END { if (sep == "") printf "none" }' \
        "$TMP/results/$1" 2>/dev/null || printf 'no result'
}

echo
echo "SIP benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores  $(nginx -v 2>&1 | sed 's/.*: //')  $(kamailio -v 2>/dev/null | head -1 | awk '{print $3}' | sed 's/^/kamailio /')  build ${BUILD_STAMP:-?}"
echo "ours: nginx, $WORKERS workers, ngx_codeb_sipws; Redis over a unix socket (nonces, bindings, the bus between workers);"
echo "  calls through the B2BUA, each one offered / answered / deleted in codeb-mediad over NG (--threads 1)."
echo "kamailio: children=$WORKERS tcp_children=$WORKERS (bench/kamailio-sipws.cfg); users in an htable loaded from a"
echo "  db_text file, auth module pv_www/pv_proxy_authenticate (qop=auth, nonce_count on), usrloc in memory,"
echo "  websocket + xhttp modules; calls through tm as a stateful proxy with Record-Route, NO media; kamailio+media:"
echo "  the same with rtpengine_offer/answer/delete to the same codeb-mediad (the NG work ours does per call)."
if [ -n "$UDP_RCVBUF" ]; then
    echo "ours' UDP socket: listen ... rcvbuf=$UDP_RCVBUF (conf/nginx.conf sets none); kamailio sets 256 KB on its own."
else
    echo "ours' UDP socket: the kernel's default receive buffer ($(sysctl -n net.core.rmem_default 2>/dev/null) bytes),"
    echo "  as conf/nginx.conf has it (UDP_RCVBUF= sets rcvbuf=); kamailio raises its own (256 KB)."
fi
echo "users: $USERS (u0..u$((USERS - 1)), listed in both servers); phones spread over the list (stride $STRIDE)."
echo "machine before the run: ${BUSY_BEFORE}% of a core busy with other processes."
echo "load generator: bench/sipload.c, $JOBS process(es), one epoll loop each, one WebSocket or UDP socket per phone."
echo
printf '%-30s %12s %12s %12s %8s\n' "" "ours" "kamailio" "kam+media" "ours/kam"
r1=$(num ours.reg-ws reg_per_s); r2=$(num kam.reg-ws reg_per_s)
printf '%-30s %12s %12s %12s %8s\n' "REGISTER/s, WebSocket" "$r1" "$r2" "" "$(ratio "$r1" "$r2")"
r1=$(num ours.reg-udp reg_per_s); r2=$(num kam.reg-udp reg_per_s)
printf '%-30s %12s %12s %12s %8s\n' "REGISTER/s, UDP" "$r1" "$r2" "" "$(ratio "$r1" "$r2")"
r1=$(num ours.call-ws call_per_s); r2=$(num kam.call-ws call_per_s); r3=$(num kamm.call-ws call_per_s)
printf '%-30s %12s %12s %12s %8s  (/kam+media %s)\n' "calls/s, WebSocket" "$r1" "$r2" "$r3" \
    "$(ratio "$r1" "$r2")" "$(ratio "$r1" "$r3")"
r1=$(num ours.call-udp call_per_s); r2=$(num kam.call-udp call_per_s); r3=$(num kamm.call-udp call_per_s)
printf '%-30s %12s %12s %12s %8s  (/kam+media %s)\n' "calls/s, UDP" "$r1" "$r2" "$r3" \
    "$(ratio "$r1" "$r2")" "$(ratio "$r1" "$r3")"
m1=$(num ours.mem mem_rss_nginx_per_conn_kb); m2=$(num kam.mem mem_rss_kamailio_per_conn_kb)
printf '%-30s %12s %12s %12s %8s\n' "KB/registered WS, RSS" "$m1" "$m2" "" "$(ratio "$m1" "$m2")"
p1=$(num ours.mem mem_pss_nginx_per_conn_kb); p2=$(num kam.mem mem_pss_kamailio_per_conn_kb)
printf '%-30s %12s %12s %12s %8s\n' "KB/registered WS, PSS" "$p1" "$p2" "" "$(ratio "$p1" "$p2")"
rr=$(num ours.mem mem_rss_redis_per_conn_kb)
printf '%-30s %12s %12s %12s %8s\n' "  + Redis (ours), RSS" "$rr" "" "" \
    "$(ratio "$(sum "$p1" "$rr")" "$p2")"
echo
echo "REGISTER/s: REGISTER -> 401 -> REGISTER with digest -> 200 per registration (2 requests), $REG_PHONES phones in a"
echo "  closed loop.  calls/s: INVITE -> 407 -> ACK, INVITE with digest -> 200 -> ACK -> BYE -> 200 (and the callee"
echo "  had its BYE), $CALL_PAIRS caller/callee pairs in a closed loop.  Each figure: $ROUNDS rounds of ${DURATION}s per"
echo "  server, the servers taking turns; per round, /s:"
for f in reg-ws:reg reg-udp:reg call-ws:call call-udp:call; do
    IFS=: read -r st k <<<"$f"
    printf '    %-9s ours%s   kamailio%s' "$st" "$(rounds_of "ours.$st" "$k")" "$(rounds_of "kam.$st" "$k")"
    [ "$k" = call ] && printf '   kam+media%s' "$(rounds_of "kamm.$st" "$k")"
    echo
done
echo "KB/registered WS: $MEM_CONNS WebSockets registered and idle 2 s; memory then minus memory before the first,"
echo "  / WebSockets.  ours: the nginx workers (+ Redis on the last line, whose ratio is (nginx PSS + Redis) / kamailio"
echo "  PSS); kamailio: all its processes.  RSS sums count a shared page once per process that touched it, which"
echo "  inflates Kamailio (its connections live in shared memory); PSS splits shared pages between the processes."
echo "ratios are ours / kamailio: above 1 is better for /s, below 1 is better for memory."
echo
echo "latency p50 / p99 ms, the mean of the rounds' (registration: both round trips; call setup: first INVITE -> 200,"
echo "  the 407 round included):"
for s in ours kam; do
    printf '  %-9s reg ws %s / %s   reg udp %s / %s   setup ws %s / %s   setup udp %s / %s\n' "$s" \
        "$(num $s.reg-ws reg_p50_ms)" "$(num $s.reg-ws reg_p99_ms)" \
        "$(num $s.reg-udp reg_p50_ms)" "$(num $s.reg-udp reg_p99_ms)" \
        "$(num $s.call-ws call_setup_p50_ms)" "$(num $s.call-ws call_setup_p99_ms)" \
        "$(num $s.call-udp call_setup_p50_ms)" "$(num $s.call-udp call_setup_p99_ms)"
done
printf '  %-9s                                                  setup ws %s / %s   setup udp %s / %s\n' "kam+media" \
    "$(num kamm.call-ws call_setup_p50_ms)" "$(num kamm.call-ws call_setup_p99_ms)" \
    "$(num kamm.call-udp call_setup_p50_ms)" "$(num kamm.call-udp call_setup_p99_ms)"
printf '  registering %s WebSockets (connect + upgrade + REGISTER x2, %s at once): ours %s/s, kamailio %s/s\n' \
    "$MEM_CONNS" "$MEM_CONC" "$(num ours.mem mem_regs_per_s)" "$(num kam.mem mem_regs_per_s)"
# server CPU (% of a core) of a result: the sum of its groups
srv_pct() {
    local r=$1 st g t=0 v
    st=$(echo "$r" | sed 's/.*\.\(reg\|call\).*/\1/')
    for g in nginx redis mediad kamailio; do
        v=$(val "$r" "${st}_cpu_${g}_pct")
        [ -n "$v" ] && t=$(awk -v a="$t" -v b="$v" 'BEGIN { print a + b }')
    done
    echo "$t"
}
# per second of server CPU: less sensitive to what else runs on the machine
per_cpu() {     # result rate-key
    awk -v x="$(val "$1" "$2")" -v c="$(srv_pct "$1")" \
        'BEGIN { if (x == "" || c + 0 == 0) print "-"; else printf "%.0f", x / (c / 100) }'
}
echo "per second of server CPU (all the server's processes; ours: nginx + Redis + codeb-mediad):"
printf '%-30s %12s %12s %12s %8s\n' "" "ours" "kamailio" "kam+media" "ours/kam"
for t in reg-ws:reg_per_s:"REGISTERs / CPU-s, WebSocket" reg-udp:reg_per_s:"REGISTERs / CPU-s, UDP" \
         call-ws:call_per_s:"calls / CPU-s, WebSocket" call-udp:call_per_s:"calls / CPU-s, UDP"; do
    IFS=: read -r st key label <<<"$t"
    a=$(per_cpu "ours.$st" "$key"); b=$(per_cpu "kam.$st" "$key")
    c=""; [ "${st%%-*}" = call ] && c=$(per_cpu "kamm.$st" "$key")
    printf '%-30s %12s %12s %12s %8s' "$label" "$a" "$b" "$c" "$(ratio "$a" "$b")"
    [ -n "$c" ] && printf '  (/kam+media %s)' "$(ratio "$a" "$c")"
    echo
done
echo
echo "CPU during each timed stage, % of one core ($(nproc) cores = $(($(nproc) * 100)) %), from /proc;"
echo "  other = the rest of the machine meanwhile (processes that are not part of this benchmark):"
RESULTS="ours.reg-ws ours.reg-udp ours.call-ws ours.call-udp kam.reg-ws kam.reg-udp kam.call-ws kam.call-udp kamm.call-ws kamm.call-udp"
for r in $RESULTS; do
    st=$(echo "$r" | sed 's/.*\.\(reg\|call\).*/\1/')
    line=$(printf '  %-14s loadgen %5s%%' "$r" "$(num "$r" "${st}_cpu_loadgen_pct")")
    for g in nginx redis mediad kamailio; do
        v=$(val "$r" "${st}_cpu_${g}_pct")
        [ -n "$v" ] && line+=$(printf '  %s %5s%%' "$g" "$v")
    done
    line+=$(printf '  other %5s%%' "$(num "$r" "${st}_cpu_other_pct")")
    echo "$line"
done
echo "  processes: ours $WORKERS nginx workers + Redis + codeb-mediad; kamailio $KAM_NPROC processes (children=$WORKERS,"
echo "  tcp_children=$WORKERS, plus its main, timer, TCP main and websocket processes); the load generator $JOBS."
echo
echo "who saturates (the load generator is the limit when one of its processes is near 100 % of a core):"
for r in $RESULTS; do
    st=$(echo "$r" | sed 's/.*\.\(reg\|call\).*/\1/')
    awk -v r="$r" -v lg="$(val "$r" "${st}_cpu_loadgen_pct")" -v all="$(val "$r" "${st}_cpu_all_pct")" \
        -v other="$(val "$r" "${st}_cpu_other_pct")" -v srv="$(srv_pct "$r")" \
        -v jobs="$JOBS" -v cores="$(nproc)" '
        BEGIN {
            if (lg == "") { printf "  %-14s no result\n", r; exit }
            if (lg / jobs >= 90)
                who = "the load generator"
            else if (other > 25)
                who = "disturbed: other processes took the cores"
            else if (all >= cores * 100 * 0.9)
                who = "the server (the cores are full; the load generator is far from a core)"
            else
                who = "neither is at its limit (closed loop, bound by latency)"
            printf "  %-14s server %4.0f %%  loadgen %4.0f %%  other %4.0f %%  -> %s\n", r, srv, lg, other, who
        }'
done
for r in $RESULTS; do
    st=$(echo "$r" | sed 's/.*\.\(reg\|call\).*/\1/')
    o=$(val "$r" "${st}_cpu_other_pct")
    if [ -n "$o" ] && awk -v o="$o" 'BEGIN { exit !(o > 25) }'; then
        warn "$r: other processes used $o% of a core meanwhile; that figure is disturbed (the per CPU-second one less so)"
    fi
done
echo
echo "checks (counts of unexpected answers, timeouts, closed connections):"
for r in ours.mem ours.reg-ws ours.reg-udp ours.call-ws ours.call-udp kam.mem kam.reg-ws kam.reg-udp \
         kam.call-ws kam.call-udp kamm.call-ws kamm.call-udp; do
    printf '  %-14s %s' "$r" "$(errs "$r")"
    case $r in
        *.mem) printf '; registered %s/%s' "$(num "$r" mem_registered)" "$MEM_CONNS" ;;
        *) printf '; phones registered %s/%s, unregistered at the end %s/%s' \
               "$(num "$r" setup_registered)" "$(num "$r" setup_phones)" \
               "$(num "$r" unregistered)" "$(awk -v p="$(val "$r" setup_phones)" -v n="$ROUNDS" 'BEGIN { print (p == "") ? "-" : p * n }')" ;;
    esac
    case $r in
        *udp) printf '; UDP datagrams dropped by full receive buffers: %s' "$(num "$r" udp_rcvbuf_drops)" ;;
    esac
    echo
done
echo "  ours: users with bindings left in Redis after the rounds: ${BINDINGS_LEFT:--}"
check_nginx_log
echo
echo "total time: $(($(date +%s) - T_START)) s"
exit 0

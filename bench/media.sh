#!/usr/bin/env bash
# Media benchmark: codeb-mediad (--threads 1) against Debian's rtpengine
# (userspace, --num-threads=1), same calls, same load generator, same run.
#
#   bench/media.sh                        defaults: ~3-4 min on 2 cores
#   SCENARIOS="a" DURATION=5 bench/media.sh
#
# Scenarios (each call: side A <-> relay <-> side B, both directions, one
# 20 ms packet per direction every 20 ms, 100 packets/s per call):
#   a  plain RTP, PCMA pass-through
#   b  PCMA <-> PCMU, codec transcode PCMU in the offer
#   c  Opus (A offers opus/48000/2, codec transcode PCMA) <-> PCMA (B answers PCMA)
#   d  SRTP <-> RTP, PCMA pass-through: A is a WebRTC endpoint (ICE, DTLS-SRTP,
#      UDP/TLS/RTP/SAVPF, rtcp-mux; flags ICE=remove DTLS=off
#      transport-protocol=RTP/AVP rtcp-mux=[demux]), B plain RTP.  The load
#      generator does A's ICE check and DTLS handshake per call (one socket a
#      call, bench/webrtc_client.c, OpenSSL + libsrtp2) before the first
#      packet; not measured.  Every step of d runs on a freshly started relay
#      with all its calls set up anew (a DTLS session lives in one load
#      generator process).
#
# Environment (defaults):
#   DURATION=3        s measured per step (after WARMUP s of the same load)
#   WARMUP=1
#   STEPS="50 100 200 400 800 1600"   concurrent calls of the ramp; every
#                     step adds calls to those of the step before
#   MAX_CALLS=1600    the ramp ends here (and where the port range ends)
#   CALLS=100         the step whose figures go in the main table (a, b)
#   OPUS_CALLS=50     the same for c (transcoding Opus costs ~10x more)
#   LOSS_MAX=0.1      % loss that ends the ramp: "max calls" is the largest
#                     step at or below it
#   LAT_MAX_MS=20     also printed: the largest step (of the ramp, no
#                     refining) with loss <= LOSS_MAX and latency p99 <= this
#   REFINE=1          after the first step above LOSS_MAX, one more step
#                     halfway between it and the last good one
#   SCENARIOS="a b c d"
#   D_STEPS="50 100 200 400"  the ramp of d (a socket and a handshake per call)
#   D_PORT=20000      d: side A of call i at D_PORT+i
#   PORT_MIN=10000 PORT_MAX=17999   media ports of the relay under test
#   LG_PORT=18000     load generator ports: A at LG_PORT+2k, B at
#                     LG_PORT+64+2k, k < POOL
#   POOL=2            sockets per side in the load generator
#   NG_PORT=18100     ours; rtpengine NG_PORT+1 (127.0.0.1 only)
#   QUANTUM=200       us: the load generator wakes at most this often and
#                     sends what fell due meanwhile
#   THREADS=1         ours --threads, rtpengine --num-threads (the same)
#   DISTURBED=25 RETRIES=2   a step during which other processes used more
#                     than 25 % of a core is run again, up to 2 times
#   KEEP=1            keep the temporary directory (logs, raw results)
#   BUILD=0           skip ./build.sh build, measure build/mediad as it is
#
# The load generator is bench/rtpload.c (one thread, sendmmsg/recvmmsg,
# kernel timestamps), compiled here with cc -O2; calls are set up by
# bench/media_setup.py (NG from Python, tests/media/mediatest.py).  Its CPU
# time is printed next to the relays'.  Only loopback traffic.  Everything
# started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3

DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
STEPS=${STEPS:-"50 100 200 400 800 1600"}
MAX_CALLS=${MAX_CALLS:-1600}
CALLS=${CALLS:-100}
OPUS_CALLS=${OPUS_CALLS:-50}
LOSS_MAX=${LOSS_MAX:-0.1}
LAT_MAX_MS=${LAT_MAX_MS:-20}
REFINE=${REFINE:-1}
SCENARIOS=${SCENARIOS:-"a b c d"}
D_STEPS=${D_STEPS:-"50 100 200 400"}
D_PORT=${D_PORT:-20000}
PORT_MIN=${PORT_MIN:-10000}
PORT_MAX=${PORT_MAX:-17999}
LG_PORT=${LG_PORT:-18000}
POOL=${POOL:-2}
NG_PORT=${NG_PORT:-18100}
QUANTUM=${QUANTUM:-200}
THREADS=${THREADS:-1}
DRAIN_MS=300
DISTURBED=${DISTURBED:-25}
RETRIES=${RETRIES:-2}
TIMEOUT_S=120           # both relays: calls without media live this long

for v in D_PORT MAX_CALLS CALLS OPUS_CALLS PORT_MIN PORT_MAX LG_PORT POOL NG_PORT QUANTUM \
         THREADS REFINE DISTURBED RETRIES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be an integer" >&2; exit 2; }
done
for v in DURATION WARMUP LOSS_MAX LAT_MAX_MS; do
    [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "$v must be a number" >&2; exit 2; }
done
for n in $STEPS $D_STEPS; do
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || { echo "STEPS: $n is no call count" >&2; exit 2; }
done
for s in $SCENARIOS; do
    case $s in a|b|c|d) ;; *) echo "SCENARIOS: a, b, c and/or d" >&2; exit 2 ;; esac
done
if awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { exit !(d < 1 || d > 30 || w < 0.5 || w > 10) }'; then
    echo "DURATION is 1..30 s, WARMUP 0.5..10 s" >&2; exit 2
fi
if [ "$POOL" -lt 1 ] || [ "$POOL" -gt 32 ]; then
    echo "POOL must be 1..32" >&2; exit 2
fi
if [ "$PORT_MIN" -lt 1024 ] || [ "$PORT_MAX" -le "$PORT_MIN" ] || [ "$PORT_MAX" -gt 65535 ]; then
    echo "PORT_MIN..PORT_MAX must be a range in 1024..65535" >&2; exit 2
fi
# 4 ports a call (RTP + RTCP per side), in either relay; some slack
PORT_CALLS=$(((PORT_MAX - PORT_MIN + 1) / 4 - 16))
if [ "$MAX_CALLS" -gt "$PORT_CALLS" ]; then
    MAX_CALLS=$PORT_CALLS
fi
if [ "$MAX_CALLS" -gt 20000 ]; then
    MAX_CALLS=20000
fi

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# ---- file descriptors and ports -----------------------------------------

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
if [ $((4 * MAX_CALLS + 256)) -gt "$NOFILE" ]; then
    MAX_CALLS=$(((NOFILE - 256) / 4))
    warn "open file limit $NOFILE: MAX_CALLS lowered to $MAX_CALLS"
fi

used=$(ss -Hlun 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
for p in "$NG_PORT" $((NG_PORT + 1)); do
    if grep -qx "$p" <<<"$used"; then
        echo "UDP port $p is in use on this machine; choose another with NG_PORT=" >&2
        exit 1
    fi
done
for ((k = 0; k < POOL; k++)); do
    for p in $((LG_PORT + 2 * k)) $((LG_PORT + 64 + 2 * k)); do
        if grep -qx "$p" <<<"$used"; then
            echo "UDP port $p is in use on this machine; choose another with LG_PORT=" >&2
            exit 1
        fi
    done
done
if [[ " $SCENARIOS " == *" d "* ]]; then
    dmax=0
    for n in $D_STEPS; do [ "$n" -gt "$dmax" ] && dmax=$n; done
    if [ $((D_PORT + dmax)) -gt 65535 ] || { [ $((D_PORT + dmax)) -gt "$PORT_MIN" ] && [ "$D_PORT" -le "$PORT_MAX" ]; }; then
        echo "D_PORT..D_PORT+$dmax must be below 65536 and outside $PORT_MIN-$PORT_MAX" >&2; exit 2
    fi
    if awk -v a="$D_PORT" -v b=$((D_PORT + dmax)) '$1 >= a && $1 < b { f = 1 } END { exit !f }' <<<"$used"; then
        echo "UDP ports in $D_PORT..$((D_PORT + dmax)) are in use; choose another D_PORT=" >&2
        exit 1
    fi
fi
inrange=$(awk -v a="$PORT_MIN" -v b="$PORT_MAX" '$1 >= a && $1 <= b' <<<"$used" | wc -l)

# ---- temporary directory and cleanup ------------------------------------

TMP=$(mktemp -d /tmp/codeb-media-bench.XXXXXX)
mkdir -p "$TMP/logs" "$TMP/results"

DAEMON_PID=
LG_PID=
SETUP_PID=

# stop_pid (bench/lib.sh): INT for ours, which drains on TERM
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$LG_PID" ] && stop_pid "$LG_PID"
    [ -n "$SETUP_PID" ] && stop_pid "$SETUP_PID"
    [ -n "$DAEMON_PID" ] && stop_pid "$DAEMON_PID" INT
    bench_remove_tmp
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----------------------------------------------------------------

T_START=$(date +%s)
bench_build "$ROOT/build/mediad/codeb-mediad" "$ROOT/media-daemon/src"
# a private copy: a rebuild in the checkout while we run cannot touch it
cp "$ROOT/build/mediad/codeb-mediad" "$TMP/codeb-mediad"
log "building the load generator"
cc -O2 -Wall -o "$TMP/rtpload" "$ROOT/bench/rtpload.c" "$ROOT/bench/webrtc_client.c" \
    -lopus -lm -lssl -lcrypto -lsrtp2
# d: side A's DTLS certificate (ECDSA P-256, self-signed); its sha-256
# fingerprint goes into the offers
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TMP/lg-key.pem" -out "$TMP/lg-cert.pem" -days 7 -subj /CN=rtpload \
    >/dev/null 2>&1 || { echo "openssl could not make a certificate" >&2; exit 1; }
LG_FP=$(openssl x509 -in "$TMP/lg-cert.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')
command -v rtpengine >/dev/null || { echo "rtpengine is not installed (rtpengine-daemon)" >&2; exit 1; }
"$PY" -c 'import numpy' 2>/dev/null || { echo "$PY lacks numpy (python3-numpy)" >&2; exit 1; }

RTP_CODECS=$(rtpengine --codecs 2>/dev/null || true)
rt_supports() { grep -qiE "^ *$1: fully supported" <<<"$RTP_CODECS"; }
RT_OPUS=1
if ! rt_supports opus || ! rt_supports PCMA; then
    RT_OPUS=0
fi
RT_G711=1
if ! rt_supports PCMA || ! rt_supports PCMU; then
    RT_G711=0
fi
RT_VERSION=$(rtpengine --version 2>&1 | sed 's/^Version: //' | head -1)
OURS_VERSION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')

# ---- runs -----------------------------------------------------------------

start_daemon() {     # name
    local name=$1 ng
    if [ "$name" = ours ]; then
        ng=$NG_PORT
        "$TMP/codeb-mediad" --listen-ng "127.0.0.1:$ng" --port-min "$PORT_MIN" \
            --port-max "$PORT_MAX" --interface 127.0.0.1 --timeout "$TIMEOUT_S" \
            --threads "$THREADS" --log-level warn >>"$TMP/logs/ours.log" 2>&1 &
    else
        ng=$((NG_PORT + 1))
        rtpengine --config-file=none --foreground --log-stderr --log-level=4 --table=-1 \
            --interface=127.0.0.1 --listen-ng="127.0.0.1:$ng" --port-min="$PORT_MIN" \
            --port-max="$PORT_MAX" --pidfile="$TMP/rtpengine.pid" \
            --num-threads="$THREADS" --delete-delay=0 --timeout="$TIMEOUT_S" \
            >>"$TMP/logs/rtpengine.log" 2>&1 &
    fi
    DAEMON_PID=$!
    DAEMON_NG=$ng
    # pings for up to 10 s; the NG port was free, so the answer is its
    if ! "$PY" "$ROOT/bench/media_setup.py" --ng "127.0.0.1:$ng" --scenario a --count 0 \
            --a-base 1 --b-base 1 --ping >/dev/null 2>&1 \
        || ! kill -0 "$DAEMON_PID" 2>/dev/null
    then
        warn "$name did not start or answer ping: $(tail -3 "$TMP/logs/$name.log" | tr '\n' ' ')"
        stop_pid "$DAEMON_PID" INT
        DAEMON_PID=
        return 1
    fi
    sleep 0.2
    DAEMON_RSS0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status")
}

stop_daemon() {     # name
    local name=$1 sig=TERM
    [ "$name" = ours ] && sig=INT
    local rc=0
    if [ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        wait "$DAEMON_PID" 2>/dev/null || rc=$?
        echo "exit status $rc$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))")" \
            >"$TMP/results/$name-$SC.died"
    fi
    stop_pid "$DAEMON_PID" "$sig"
    DAEMON_PID=
}

val() { awk -v k="$2" '$1 == k { print $2; exit }' "$TMP/results/$1" 2>/dev/null; }
rampval() { awk -v k="$2" '$1 == k { v = $2 } END { print v }' "$TMP/results/$1.ramp" 2>/dev/null; }

# add calls up to $2 (from $1) on the running daemon
add_calls() {       # name from to
    local name=$1 from=$2 to=$3 rc=0
    [ "$to" -gt "$from" ] || return 0
    local abase=$LG_PORT fp=()
    [ "$SC" = d ] && { abase=$D_PORT; fp=(--fingerprint "$LG_FP"); }
    "$PY" "$ROOT/bench/media_setup.py" --ng "127.0.0.1:$DAEMON_NG" --scenario "$SC" \
        --first "$from" --count $((to - from)) --a-base "$abase" "${fp[@]}" \
        --b-base $((LG_PORT + 64)) --pool "$POOL" --prefix "bench-$name" \
        >"$TMP/results/$name-$SC.setup" 2>"$TMP/results/$name-$SC.setup.err" &
    SETUP_PID=$!
    wait "$SETUP_PID" || rc=$?
    SETUP_PID=
    grep -E '^[0-9]+ ' "$TMP/results/$name-$SC.setup" >>"$TMP/results/$name-$SC.calls" || true
    SETUP_S=$(awk '$1 == "setup_s" { print $2 }' "$TMP/results/$name-$SC.setup")
    if [ "$rc" != 0 ]; then
        warn "$name ($SC): call setup failed: $(tail -1 "$TMP/results/$name-$SC.setup.err")"
        return 1
    fi
}

# one step: N calls streaming; result file $name-$SC-$N
run_step() {        # name n
    local name=$1 n=$2 out=$TMP/results/$1-$SC-$2 rc=0 t abase=$LG_PORT dtls=()
    t=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%d", w + d + 30 }')
    [ "$SC" = d ] && { abase=$D_PORT; dtls=(-C "$TMP/lg-cert.pem" -K "$TMP/lg-key.pem"); }
    timeout -k 5 "$t" "$TMP/rtpload" -s "$SC" "${dtls[@]}" -f "$TMP/results/$name-$SC.calls" -n "$n" \
        -A "$abase" -B $((LG_PORT + 64)) -S "$POOL" -p "$DAEMON_PID" \
        -w "$WARMUP" -d "$DURATION" -t "$DRAIN_MS" -r "$DAEMON_RSS0" -q "$QUANTUM" \
        >"$out" 2>"$out.err" &
    LG_PID=$!
    wait "$LG_PID" || rc=$?
    LG_PID=
    echo "setup_s ${SETUP_S:-0}" >>"$out"
    if [ "$rc" != 0 ]; then
        warn "$name ($SC, $n calls): load generator exited with $rc: $(head -3 "$out.err" | tr '\n' ' ')"
        return 1
    fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        warn "$name ($SC, $n calls): the relay died (see below)"
        echo "died_at $n" >>"$TMP/results/$name-$SC.ramp"
        return 1
    fi
    return 0
}

# busy % of one core of the whole machine over 1 s (/proc/stat)
machine_busy() {
    local a b
    a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        split(a, x); split(b, y)
        print ((y[2] + y[3] + y[4] + y[7] + y[8] + y[9]) - (x[2] + x[3] + x[4] + x[7] + x[8] + x[9])) * 100 / hz
    }'
}

# up to $1 s until the machine (our idle relay included) is quiet
wait_quiet() {
    local i
    for ((i = 0; i < $1; i++)); do
        awk -v b="$(machine_busy)" -v m="$DISTURBED" 'BEGIN { exit !(b < m) }' && return 0
    done
    return 0
}

# a step during which other processes took more than DISTURBED % of a core
# is run again, at most RETRIES times (a shared machine)
disturbed() {       # result
    awk -v o="$(val "$1" cpu_other_pct)" -v m="$DISTURBED" 'BEGIN { exit !(o != "" && o > m) }'
}

step() {            # name n
    local i
    for ((i = 0; i <= RETRIES; i++)); do
        run_step "$1" "$2" || return 1
        disturbed "$1-$SC-$2" || return 0
        [ "$i" -lt "$RETRIES" ] || break
        log "$1 ($SC, $2 calls): other processes used $(val "$1-$SC-$2" cpu_other_pct)% of a core; again"
        echo "retried $2" >>"$TMP/results/$1-$SC.ramp"
        wait_quiet 8
    done
    return 0
}

# did the load generator keep up?  (its send schedule, not the relay)
lg_limited() {      # result
    awk -v lag="$(val "$1" sched_lag_p99_us)" -v late="$(val "$1" late_sends)" \
        -v sent="$(val "$1" d0_sent)" -v cpu="$(val "$1" cpu_loadgen_pct)" \
        'BEGIN { exit !(lag > 5000 || (sent > 0 && late > sent / 500) || cpu > 95) }'
}

over_loss() {       # result
    awk -v l="$(val "$1" loss_pct)" -v m="$LOSS_MAX" 'BEGIN { exit !(l == "" || l > m) }'
}

ramp() {            # name
    local name=$1 prev=0 n good=0 bad=0 lim=0 mid
    : >"$TMP/results/$name-$SC.calls"
    : >"$TMP/results/$name-$SC.ramp"
    start_daemon "$name" || { echo "nostart 1" >>"$TMP/results/$name-$SC.ramp"; return; }
    echo "threads $(awk '/^Threads:/ { print $2 }' "/proc/$DAEMON_PID/status")" \
        >>"$TMP/results/$name-$SC.ramp"
    local steps=$STEPS
    [ "$SC" = d ] && steps=$D_STEPS
    for n in $steps; do
        [ "$n" -le "$MAX_CALLS" ] || break
        [ "$n" -gt "$prev" ] || continue
        if [ "$SC" = d ] && [ "$prev" -gt 0 ]; then
            # a fresh relay, every call anew: the DTLS sessions of the step
            # before ended with its load generator
            stop_daemon "$name"
            start_daemon "$name" || { echo "nostart_at $n" >>"$TMP/results/$name-$SC.ramp"; bad=$n; break; }
            : >"$TMP/results/$name-$SC.calls"
            prev=0
        fi
        add_calls "$name" "$prev" "$n" || { echo "setup_failed $n" >>"$TMP/results/$name-$SC.ramp"; break; }
        prev=$n
        log "$name ($SC): $n calls, ${WARMUP}+${DURATION} s (setup $SETUP_S s)"
        step "$name" "$n" || { bad=$n; break; }
        echo "step $n" >>"$TMP/results/$name-$SC.ramp"
        if over_loss "$name-$SC-$n"; then
            bad=$n
            lg_limited "$name-$SC-$n" && lim=$n
            break
        fi
        good=$n
        lg_limited "$name-$SC-$n" && lim=$n
    done
    stop_daemon "$name"
    # one step between the last good and the first bad one, on a freshly
    # started relay (one that was overloaded may not have recovered)
    if [ "$REFINE" = 1 ] && [ "$bad" -gt 0 ] && [ -z "$(rampval "$name-$SC" died_at)" ]; then
        mid=$(((good + bad) / 2))
        if [ "$mid" -gt "$good" ] && [ "$mid" -lt "$bad" ] && start_daemon "$name"; then
            : >"$TMP/results/$name-$SC.calls"
            if add_calls "$name" 0 "$mid"; then
                log "$name ($SC): $mid calls (between $good and $bad), relay restarted"
                if step "$name" "$mid"; then
                    echo "step $mid" >>"$TMP/results/$name-$SC.ramp"
                    echo "fresh $mid" >>"$TMP/results/$name-$SC.ramp"
                    if over_loss "$name-$SC-$mid"; then
                        bad=$mid
                    else
                        good=$mid
                    fi
                fi
            fi
            stop_daemon "$name"
        fi
    fi
    echo "good $good" >>"$TMP/results/$name-$SC.ramp"
    echo "bad $bad" >>"$TMP/results/$name-$SC.ramp"
    echo "lglimit $lim" >>"$TMP/results/$name-$SC.ramp"
}

for SC in $SCENARIOS; do
    for name in ours rtpengine; do
        if [ "$name" = rtpengine ] && { { [ "$SC" = c ] && [ "$RT_OPUS" = 0 ]; } \
                                        || { [ "$SC" = b ] && [ "$RT_G711" = 0 ]; }; }; then
            echo "nocodec 1" >"$TMP/results/$name-$SC.ramp"
            continue
        fi
        ramp "$name"
    done
done

# ---- report -------------------------------------------------------------
set +e      # a missing number prints "-", it does not end the report


declare -A SCNAME=([a]="(a) PCMA pass-through" [b]="(b) PCMA<->PCMU" [c]="(c) Opus<->PCMA"
                   [d]="(d) SRTP<->RTP PCMA")
declare -A DIRS=([a]="A->B PCMA->PCMA, B->A PCMA->PCMA" [b]="A->B PCMA->PCMU, B->A PCMU->PCMA"
                 [c]="A->B Opus->PCMA, B->A PCMA->Opus"
                 [d]="A->B SRTP->RTP, B->A RTP->SRTP, PCMA; A: ICE + DTLS-SRTP, one socket a call")

table_n() { if [ "$1" = c ]; then echo "$OPUS_CALLS"; else echo "$CALLS"; fi; }

# the step of the main table: N, else the largest step below it
table_step() {      # name sc
    local want best=
    want=$(table_n "$2")
    for n in $(awk '$1 == "step" { print $2 }' "$TMP/results/$1-$2.ramp" 2>/dev/null | sort -n); do
        [ "$n" -le "$want" ] && best=$n
    done
    echo "$best"
}

maxcalls() {        # name sc
    local r=$1-$2 good bad lim
    [ -n "$(rampval "$r" nocodec)" ] && { echo "n/a"; return; }
    [ -n "$(rampval "$r" nostart)" ] && { echo "no start"; return; }
    good=$(rampval "$r" good); bad=$(rampval "$r" bad); lim=$(rampval "$r" lglimit)
    if [ -n "$(rampval "$r" died_at)" ]; then
        echo "died@$(rampval "$r" died_at)"
    elif [ "${bad:-0}" = 0 ]; then
        echo ">=${good:-?}"
    elif [ "${good:-0}" = 0 ]; then
        echo "<$bad"
    else
        echo "$good"
    fi
}

# the largest step up to which every step had loss <= LOSS_MAX and p99
# <= LAT_MAX_MS (the ramp's steps only)
maxcalls_lat() {    # name sc
    local best=0 n r
    [ -f "$TMP/results/$1-$2.ramp" ] || { echo "-"; return; }
    [ -n "$(rampval "$1-$2" nocodec)" ] && { echo "n/a"; return; }
    for n in $(awk '$1 == "step" { print $2 }' "$TMP/results/$1-$2.ramp" | sort -n | uniq); do
        r=$1-$2-$n
        over_loss "$r" && break
        awk -v p="$(val "$r" lat_p99_us)" -v m="$LAT_MAX_MS" 'BEGIN { exit !(p != "" && p <= m * 1000) }' || break
        best=$n
    done
    if [ "$best" = 0 ]; then echo "none of the steps"; else echo "$best"; fi
}

# frames held back at the start, per stream, in the main table's step
heldline() {        # sc
    local sc=$1 name n out=""
    for name in ours rtpengine; do
        n=$(table_step "$name" "$sc")
        [ -n "$n" ] || continue
        out+="$name $(val "$name-$sc-$n" d0_held_avg) A>B, $(val "$name-$sc-$n" d1_held_avg) B>A; "
    done
    if grep -qE '^d[01]_held_avg [1-9]|^d[01]_held_avg 0\.[0-9]*[1-9]' \
        "$TMP/results/ours-$sc-$(table_step ours "$sc")" \
        "$TMP/results/rtpengine-$sc-$(table_step rtpengine "$sc")" 2>/dev/null; then
        echo "frames held at the start (whole 20 ms periods a relay adds that p50/p99 above do not show): ${out%; }"
    fi
}

fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "") print "-"; else printf f, v }'; }

row() {             # name sc label
    local r n threads
    n=$(table_step "$1" "$2")
    threads=$(rampval "$1-$2" threads)
    if [ -z "$n" ]; then
        printf '%-12s %7s %5s %11s %9s %9s %8s %8s %9s %9s\n' "$3" "${threads:--}" "-" "-" "-" "-" "-" "-" "-" "$(maxcalls "$1" "$2")"
        return
    fi
    r=$1-$2-$n
    printf '%-12s %7s %5s %11s %9s %9s %8s %8s %9s %9s\n' "$3" "${threads:--}" "$n" \
        "$(fmt "$(val "$r" cpu_per_call_pct)" %.4f)" \
        "$(fmt "$(val "$r" d0_loss_pct)" %.3f)" "$(fmt "$(val "$r" d1_loss_pct)" %.3f)" \
        "$(fmt "$(val "$r" lat_p50_us)" %.0f)" "$(fmt "$(val "$r" lat_p99_us)" %.0f)" \
        "$(fmt "$(val "$r" rss_per_call_kb)" %.1f)" "$(maxcalls "$1" "$2")"
}

ratio_row() {       # sc
    local sc=$1 no nr o r
    no=$(table_step ours "$sc"); nr=$(table_step rtpengine "$sc")
    o=ours-$sc-$no; r=rtpengine-$sc-$nr
    if [ -z "$no" ] || [ -z "$nr" ]; then
        printf '%-12s %s\n' "ours/rtpe" "-"
        return
    fi
    awk -v c1="$(val "$o" cpu_per_call_pct)" -v c2="$(val "$r" cpu_per_call_pct)" \
        -v a1="$(val "$o" lat_p50_us)" -v a2="$(val "$r" lat_p50_us)" \
        -v b1="$(val "$o" lat_p99_us)" -v b2="$(val "$r" lat_p99_us)" \
        -v m1="$(val "$o" rss_per_call_kb)" -v m2="$(val "$r" rss_per_call_kb)" \
        -v x1="$(maxcalls ours "$sc")" -v x2="$(maxcalls rtpengine "$sc")" '
        function q(x, y) { return (x == "" || y == "" || y + 0 <= 0 || x + 0 < 0) ? "-" : sprintf("%.2f", x / y) }
        function num(s) { gsub(/[<>=]/, "", s); return s }
        BEGIN {
            printf "%-12s %7s %5s %11s %9s %9s %8s %8s %9s %9s\n", "ours/rtpe", "", "",
                q(c1, c2), "", "", q(a1, a2), q(b1, b2), q(m1, m2),
                (x1 ~ /^[<>=0-9]+$/ && x2 ~ /^[<>=0-9]+$/) ? q(num(x1), num(x2)) \
                    ((x1 ~ /[<>]/ || x2 ~ /[<>]/) ? "*" : "") : "-"
        }'
}

echo
echo "Media benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores  $(uname -r)"
echo "ours: codeb-mediad $OURS_VERSION, --threads $THREADS (event loops; a call lives in one)"
echo "rtpengine: $RT_VERSION, userspace only (--table=-1), --num-threads=$THREADS worker(s);"
echo "  the 'threads' column counts every thread of the process (timers, control, ...); CPU is all of them."
echo "load: every call sends both ways one packet per 20 ms (100 packets/s per call): G.711 160-byte"
echo "  payloads of a two-tone signal, Opus packets encoded once with libopus (48 kHz mono, 32 kbit/s)"
echo "  from a 440 Hz sine, looped; streams spread evenly over the 20 ms, started over 0.5 s."
echo "each step: N calls set up by NG (offer A, answer B), ${WARMUP} s of load, then ${DURATION} s measured."
echo "CPU/call: the relay's CPU time over the measured window (/proc/PID/task/*/schedstat) / calls /"
echo "  seconds, in % of one core.  loss: packets sent during the measured window (but its last"
echo "  100 ms) and not received within ${DRAIN_MS} ms after the last send, per direction."
echo "latency: send -> receive through the relay, kernel software timestamps of the loopback device"
echo "  (our packet leaving, the relay's packet arriving), packets sent in the window; both directions."
echo "  A packet's frame: from its sequence number, anchored by its audio for G.711 output; for Opus"
echo "  output and PCMA made from Opus by the fastest packet of the stream, so whole 20 ms periods a"
echo "  relay adds to every packet (a frame kept back) show as 'frames held', not in p50/p99."
echo "RSS/call: relay RSS at the end of the window minus before the first call, / calls."
echo "max calls: the largest step of the ramp ($STEPS; d: $D_STEPS, up to $MAX_CALLS$([ "$REFINE" = 1 ] && echo ", plus one step"
echo "  between the last good and the first bad one")) with loss <= ${LOSS_MAX} %; '>=' the ramp ended first."
for SC in $SCENARIOS; do
    echo
    echo "${SCNAME[$SC]}   (${DIRS[$SC]})"
    printf '%-12s %7s %5s %11s %9s %9s %8s %8s %9s %9s\n' "" "threads" "calls" "CPU/call" \
        "loss A>B" "loss B>A" "p50" "p99" "RSS/call" "max calls"
    printf '%-12s %7s %5s %11s %9s %9s %8s %8s %9s %9s\n' "" "" "" "% core" "%" "%" "us" "us" "KB" "<=${LOSS_MAX}%"
    row ours "$SC" "ours"
    if [ -n "$(rampval "rtpengine-$SC" nocodec)" ]; then
        echo "rtpengine    this rtpengine build cannot transcode $([ "$SC" = c ] && echo "Opus<->PCMA" || echo "PCMA<->PCMU") ($(rtpengine --version 2>&1 | head -1)); ours only"
    else
        row rtpengine "$SC" "rtpengine"
        ratio_row "$SC"
    fi
    heldline "$SC"
    printf 'max calls with loss <= %s %% and p99 <= %s ms (ramp steps): ours %s, rtpengine %s\n' \
        "$LOSS_MAX" "$LAT_MAX_MS" "$(maxcalls_lat ours "$SC")" "$(maxcalls_lat rtpengine "$SC")"
done
if [[ " $SCENARIOS " != *" d "* ]]; then
    echo
    echo "SRTP<->RTP: not measured (SCENARIOS without d)"
else
    for name in ours rtpengine; do
        n=$(table_step "$name" d)
        [ -n "$n" ] && echo "(d) $name, $n calls: ICE + DTLS handshakes before the run $(val "$name-d-$n" dtls_setup_s) s (not measured), NG setup $(val "$name-d-$n" setup_s) s"
    done
fi
echo
echo "ratios are ours / rtpengine: below 1 is better for CPU/call, latency and RSS, above 1 for max calls"
echo "  ('*': a bound, not a measured limit, is in the ratio)."

echo
echo "ramp: per step, loss % / relay CPU % of a core / latency p50 / p99 us; load generator CPU % of a core"
for SC in $SCENARIOS; do
    echo "${SCNAME[$SC]}"
    printf '  %6s  %-36s %-36s %s\n' "calls" "ours" "rtpengine" "loadgen (ours, rtpe)  other"
    steps=$( (awk '$1 == "step" { print $2 }' "$TMP/results/ours-$SC.ramp" "$TMP/results/rtpengine-$SC.ramp" 2>/dev/null) | sort -n | uniq)
    for n in $steps; do
        cell() {
            local r=$1-$SC-$n
            if [ ! -s "$TMP/results/$r" ] || ! grep -q "^step $n\$" "$TMP/results/$1-$SC.ramp" 2>/dev/null; then
                echo "-"; return
            fi
            printf '%s%% %s%% %s/%s%s' "$(fmt "$(val "$r" loss_pct)" %.3f)" \
                "$(fmt "$(val "$r" cpu_daemon_pct)" %.1f)" "$(fmt "$(val "$r" lat_p50_us)" %.0f)" \
                "$(fmt "$(val "$r" lat_p99_us)" %.0f)" "$(lg_limited "$r" && echo ' LG!')"
        }
        lgc() { fmt "$(val "$1-$SC-$n" cpu_loadgen_pct)" %.0f; }
        oth() { fmt "$(val "$1-$SC-$n" cpu_other_pct)" %.0f; }
        printf '  %6s  %-36s %-36s %5s%% %5s%%   %s%% %s%%\n' "$n" "$(cell ours)" "$(cell rtpengine)" \
            "$(lgc ours)" "$(lgc rtpengine)" "$(oth ours)" "$(oth rtpengine)"
    done
    # where rtpengine's CPU went at its largest step (several threads work)
    n=$(awk '$1 == "step" { print $2 }' "$TMP/results/rtpengine-$SC.ramp" 2>/dev/null | sort -n | tail -1)
    if [ -n "$n" ]; then
        th=$(awk '$1 == "thread_pct" { printf "%s %s%%, ", $2, $3 }' "$TMP/results/rtpengine-$SC-$n" 2>/dev/null | sed 's/, $//')
        [ -n "$th" ] && echo "  rtpengine threads at $n calls: $th"
    fi
done
rt=$(for SC in $SCENARIOS; do for name in ours rtpengine; do
        awk -v w="$name $SC" '$1 == "retried" { printf "%s %s, ", w, $2 }' "$TMP/results/$name-$SC.ramp" 2>/dev/null
      done; done | sed 's/, $//')
[ -n "$rt" ] && echo "  run again because other processes used > ${DISTURBED} % of a core: $rt (calls)"
echo "  'LG!': the load generator fell behind its schedule (p99 > 5 ms late, or > 0.2 % of packets"
echo "  > 5 ms late, or > 95 % CPU): that step measures the machine, not the relay."
echo "  'other': CPU of everything else on the machine during the window (softirq included), % of a core."

echo
echo "load generator: $TMP/rtpload (bench/rtpload.c), one thread, ${POOL} sockets per side, wakes at most every"
echo "  ${QUANTUM} us; its CPU in % of one core per step is in the ramp table (2 cores in all:"
echo "  above ~90 % it, not the relay, limits the step -- see 'LG!')."
for SC in $SCENARIOS; do
    for name in ours rtpengine; do
        n=$(table_step "$name" "$SC")
        [ -n "$n" ] || continue
        r=$name-$SC-$n
        printf '  %-22s %-9s %4s calls: loadgen %5s%%  relay %5s%%  other %5s%%  softirq %5s%%  send lag p99 %s us\n' \
            "${SCNAME[$SC]}" "$name" "$n" "$(val "$r" cpu_loadgen_pct)" "$(val "$r" cpu_daemon_pct)" \
            "$(val "$r" cpu_other_pct)" "$(val "$r" cpu_softirq_pct)" "$(val "$r" sched_lag_p99_us)"
        th=$(awk '$1 == "thread_pct" { printf "%s %s%%, ", $2, $3 }' "$TMP/results/$r" | sed 's/, $//')
        [ -n "$th" ] && printf '  %-22s %-9s busy threads: %s\n' "" "" "$th"
        o=$(val "$r" cpu_other_pct)
        if [ -n "$o" ] && awk -v o="$o" 'BEGIN { exit !(o > 25) }'; then
            warn "$name $SC $n calls: other processes used $o% of a core meanwhile; that step is disturbed"
        fi
    done
done

echo
echo "checks (per direction d0 = A->B, d1 = B->A), every step: payload type, duplicates, SSRC changes,"
echo "  delivery socket; where the relay kept up (loss <= ${LOSS_MAX} %; in overload a relay may renumber"
echo "  and the round of a packet is not known) also: payload (G.711 out: SNR >= 20 dB against the expected"
echo "  audio; Opus out: a valid 20 ms packet, decoded for 4 calls: level; PCMA from Opus: level >= -30"
echo "  dBFS), RTP timestamp +20 ms per sequence number (ts_jumps), packets outside the sent rounds, streams"
echo "  that got nothing, frames held back at the start:"
for SC in $SCENARIOS; do
    for name in ours rtpengine; do
        [ -f "$TMP/results/$name-$SC.ramp" ] || continue
        [ -n "$(rampval "$name-$SC" nocodec)" ] && continue
        bad=""
        held=""
        for f in "$TMP/results/$name-$SC"-[0-9]*; do
            [ -f "$f" ] || continue
            case $f in *.err) continue ;; esac
            r=${f##*/}
            n=${r##*-}
            # real errors in any step; the round mapping (out of range,
            # negative latency, held) only where the relay kept up
            if over_loss "$r"; then
                e=$(awk '
                    $1 ~ /^d[01]_(bad_pt|dup|ssrc_changes)$/ && $2 != 0 { printf "%s=%s ", $1, $2 }
                    $1 ~ /^(unknown_source|bad_rtp|wrong_socket|srtp_unprotect_fail|srtp_protect_fail)$/ && $2 != 0 { printf "%s=%s ", $1, $2 }' "$f")
            else
                e=$(awk '
                    $1 ~ /^d[01]_(bad_pt|bad_payload|dup|out_of_range|ssrc_changes|ts_jumps|streams_silent|negative)$/ && $2 != 0 { printf "%s=%s ", $1, $2 }
                    $1 ~ /^(unknown_source|bad_rtp|wrong_socket|loadgen_socket_drops|srtp_unprotect_fail|srtp_protect_fail)$/ && $2 != 0 { printf "%s=%s ", $1, $2 }' "$f")
            fi
            [ -n "$e" ] && bad+="    $n calls: $e"$'\n'
            if ! over_loss "$r"; then
                h=$(awk '$1 ~ /^d[01]_held(1|_more)$/ && $2 != 0 { printf "%s=%s ", $1, $2 }' "$f")
                [ -n "$h" ] && [ -z "$held" ] && held="$n calls: $h"
            fi
            if [ -s "$f.err" ]; then
                bad+="    $n calls, load generator: $(head -2 "$f.err" | tr '\n' ' ')"$'\n'
            fi
        done
        printf '  %-22s %-9s %s\n' "${SCNAME[$SC]}" "$name" \
            "$([ -z "$bad" ] && echo "no errors" || echo "see below")${held:+; held at start: $held}"
        [ -n "$bad" ] && printf '%s' "$bad"
        if [ -f "$TMP/results/$name-$SC.died" ]; then
            warn "$name ($SC): the relay died ($(cat "$TMP/results/$name-$SC.died")); last log lines:"
            tail -5 "$TMP/logs/$name.log" | sed 's/^/    /'
        fi
    done
done
n=$(grep -ciE '\[(error|crit|alert)\]|sanitizer|segfault' "$TMP/logs/ours.log" 2>/dev/null)
[ "${n:-0}" -gt 0 ] && { warn "ours: $n error lines in its log, first ones:"; grep -iE '\[(error|crit|alert)\]|sanitizer|segfault' "$TMP/logs/ours.log" | head -5 | sed 's/^/    /'; }
n=$(grep -cE 'ERR|CRIT|ALERT' "$TMP/logs/rtpengine.log" 2>/dev/null)
[ "${n:-0}" -gt 0 ] && { echo "  rtpengine: $n ERR/CRIT lines in its log, first ones:"; grep -E 'ERR|CRIT|ALERT' "$TMP/logs/rtpengine.log" | head -3 | sed 's/^/    /'; }
[ "$inrange" -gt 0 ] && warn "$inrange UDP sockets of other processes were bound in $PORT_MIN-$PORT_MAX before the run"
echo
echo "total $(( $(date +%s) - T_START )) s"
exit 0

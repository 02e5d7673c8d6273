#!/usr/bin/env bash
# CodeB on nginx: the one entry point.
#
#   ./build.sh deps    install missing Debian and npm packages
#   ./build.sh build   build the dynamic modules against the installed nginx
#   ./build.sh run     deps + build, then Redis + nginx in the foreground
#   ./build.sh test    deps + build, then every test (t/, tests/)
#   ./build.sh memcheck  t/ again with the modules under AddressSanitizer
#
# Modules are built with Debian's nginx-dev sources (/usr/share/nginx/src)
# and its conf_flags, so the .so files load into the stock nginx binary.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
BUILD=$ROOT/build
RUN=${CODEB_RUN_DIR:-$ROOT/run}
MODULES="ngx_codeb_core ngx_codeb_signal ngx_codeb_sipws ngx_codeb_api"

DEBS="nginx nginx-dev libnginx-mod-stream redis-server redis-tools
      libyajl-dev libhiredis-dev libssl-dev libjwt-dev libsofia-sip-ua-dev
      libpcre2-dev zlib1g-dev make gcc openssl iproute2
      libtest-base-perl libjson-pp-perl libio-socket-ssl-perl
      chromium coturn valgrind
      libsrtp2-dev libopus-dev python3-aiortc python3-numpy
      rtpengine-daemon kamailio sip-tester libcurl4-openssl-dev libcrypt-dev"

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

deps() {
    local missing=() p
    for p in $DEBS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$p")
    done
    # node may come from outside Debian (with its own npm); only then skip
    command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    # Debian's nginx and coturn packages start services where an init
    # system runs them; ours are started by this script on other ports.
    if [ ! -d "$ROOT/node_modules/playwright-core" ] \
        || [ ! -d "$ROOT/node_modules/ws" ] \
        || [ ! -d "$ROOT/node_modules/jssip" ] \
        || [ ! -d "$ROOT/node_modules/sip.js" ] \
        || [ ! -d "$ROOT/node_modules/esbuild" ]; then
        log "installing npm packages"
        (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# The softphone pages (html/phone-*.html) load JsSIP and SIP.js from
# html/vendor/ (git-ignored): JsSIP 3.13 ships no browser bundle and SIP.js
# only ES modules, so esbuild (npm) bundles each from node_modules into one
# minified script that defines one global (JsSIP, SIP).  Written by rename,
# so nginx never serves half a file.
bundle_browser_libs() {
    local esbuild=$ROOT/node_modules/.bin/esbuild out=$ROOT/html/vendor
    if [ ! -x "$esbuild" ]; then
        echo "esbuild is missing (node_modules/.bin/esbuild): run ./build.sh deps" >&2
        exit 1
    fi
    mkdir -p "$out"
    log "bundling JsSIP and SIP.js into html/vendor/"
    bundle_lib jssip lib/JsSIP.js JsSIP jssip.min.js
    bundle_lib sip.js lib/index.js SIP sip.min.js
}

# bundle_lib <npm package> <entry in it> <global name> <file in html/vendor>
bundle_lib() {
    local pkg=$ROOT/node_modules/$1 out=$ROOT/html/vendor ver
    ver=$(node -p "require('$pkg/package.json').version")
    "$ROOT/node_modules/.bin/esbuild" "$pkg/$2" --bundle --minify --format=iife \
        --global-name="$3" --platform=browser --target=es2020 --log-level=warning \
        --banner:js="/* $1 $ver (MIT, see $4.LICENSE.txt), bundled by build.sh with esbuild */" \
        --outfile="$out/.$4.new" || exit 1
    mv -f "$out/.$4.new" "$out/$4"
    cp "$pkg/LICENSE.md" "$out/.$4.LICENSE.txt.new" && mv -f "$out/.$4.LICENSE.txt.new" "$out/$4.LICENSE.txt"
}

build() {
    local src=$BUILD/nginx-src stamp cflags
    mkdir -p "$BUILD/modules"
    # one build at a time in a tree (parallel test runs, editors)
    exec 9>"$BUILD/.build.lock"
    flock 9
    # configure again only when the module config scripts or nginx changed
    stamp=$( (nginx -v 2>&1; echo "$BUILD"; cat "$ROOT"/ngx_codeb_*/config) | sha1sum | cut -c1-40)
    if [ ! -f "$src/.codeb-stamp" ] || [ "$(cat "$src/.codeb-stamp")" != "$stamp" ]; then
        log "configuring against $(nginx -v 2>&1)"
        rm -rf "$src"
        cp -a /usr/share/nginx/src "$src"
        # shellcheck disable=SC1091
        . "$src/conf_flags"
        local adds=()
        for m in $MODULES; do adds+=("--add-dynamic-module=$ROOT/$m"); done
        # Debian's conf_flags lack the stream module, which is packaged
        # apart (libnginx-mod-stream): the same stream options as the
        # installed nginx, so that our stream module's structures match
        adds+=($(nginx -V 2>&1 | tr ' ' '\n' \
            | grep -E '^--with-stream(=dynamic|_ssl_module|_ssl_preread_module|_realip_module)$'))
        cflags="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wall -Wextra -Wno-unused-parameter -Werror ${CODEB_CFLAGS:-}"
        (cd "$src" && CODEB_BUILD_DIR=$BUILD ./configure "${NGX_CONF_FLAGS[@]}" \
            --with-cc-opt="$cflags" --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC ${CODEB_LDFLAGS:-}" \
            "${adds[@]}" >"$BUILD/configure.log" 2>&1) \
            || { tail -30 "$BUILD/configure.log"; exit 1; }
        echo "$stamp" >"$src/.codeb-stamp"
    fi
    local ver
    ver="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev) $(date -u +%Y-%m-%d)"
    # the build stamp is a compile-time define of the core module only
    printf '#define CODEB_BUILD "%s"\n' "$ver" >"$BUILD/codeb_build.h.new"
    cmp -s "$BUILD/codeb_build.h.new" "$BUILD/codeb_build.h" 2>/dev/null \
        || mv "$BUILD/codeb_build.h.new" "$BUILD/codeb_build.h"
    rm -f "$BUILD/codeb_build.h.new"
    log "building modules"
    # our modules only: nginx-dev ships no sources of the stream module
    local targets=()
    for m in $MODULES; do targets+=("objs/${m}_module.so"); done
    make -C "$src" -f objs/Makefile -j"$(nproc)" "${targets[@]}" \
        >"$BUILD/make.log" 2>&1 || { grep -E 'error:|warning:|undefined|Error' "$BUILD/make.log" | head -40; exit 1; }
    # a new inode (rename, not overwrite): a running nginx keeps its
    # mapped copy, and picks up the new one on its next start
    for m in $MODULES; do
        cp "$src/objs/${m}_module.so" "$BUILD/modules/.${m}_module.so.new"
        mv -f "$BUILD/modules/.${m}_module.so.new" "$BUILD/modules/${m}_module.so"
    done
    log "modules in $BUILD/modules"
    log "building codeb-mediad"
    make -s -C "$ROOT/media-daemon" O="$BUILD/mediad" ${CODEB_CFLAGS:+CFLAGS="-O1 -g $CODEB_CFLAGS"} \
        ${CODEB_LDFLAGS:+LDFLAGS="$CODEB_LDFLAGS"} >"$BUILD/mediad.log" 2>&1 \
        || { cat "$BUILD/mediad.log"; exit 1; }
    bundle_browser_libs
    exec 9>&-
}

start_redis() {
    mkdir -p "$RUN"
    if redis-cli -s "$RUN/redis.sock" ping >/dev/null 2>&1; then return; fi
    # appendonly: what the API stores (keys, routes, webhooks) outlives a
    # restart of the demo
    redis-server --port 0 --unixsocket "$RUN/redis.sock" --unixsocketperm 777 \
        --save "" --appendonly yes --daemonize yes \
        --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log" --dir "$RUN"
    for _ in $(seq 50); do
        redis-cli -s "$RUN/redis.sock" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "redis did not start, see $RUN/redis.log" >&2; exit 1
}

stop_redis() {
    [ -f "$RUN/redis.pid" ] && kill "$(cat "$RUN/redis.pid")" 2>/dev/null || true
}

# the media daemon on the default ports (docs/design.md), its calls listed in the Redis
start_mediad() {
    "$BUILD/mediad/codeb-mediad" --listen-ng 127.0.0.1:2223 --port-min 30000 \
        --port-max 30999 --redis "unix:$RUN/redis.sock" \
        --recording-dir "$RUN" >"$RUN/logs/mediad.log" 2>&1 &
    MEDIAD_PID=$!
}

# nginx first (fast shutdown, up to 10 s), then codeb-mediad and Redis
stop_all() {
    if [ -n "${NGINX_PID:-}" ] && kill -TERM "$NGINX_PID" 2>/dev/null; then
        for _ in $(seq 100); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
    fi
    [ -z "${MEDIAD_PID:-}" ] || kill -INT "$MEDIAD_PID" 2>/dev/null || true
    stop_redis
}

dev_cert() {
    mkdir -p "$RUN/certs"
    # the demo IdP's signing key (codeb_oidc_signing_key)
    [ -f "$RUN/certs/oidc.key" ] || openssl genpkey -algorithm EC \
        -pkeyopt ec_paramgen_curve:P-256 -out "$RUN/certs/oidc.key" 2>/dev/null
    [ -f "$RUN/certs/dev.crt" ] && return
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$RUN/certs/dev.key" -out "$RUN/certs/dev.crt" -days 825 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        >/dev/null 2>&1
}

# the demo's codeb_call_greeting: two chimes, 8 kHz mono 16-bit PCM (what
# "play media" of codeb-mediad reads); yours: any such WAV, e.g. from
# espeak-ng -w and sox -r 8000 -c 1 -b 16
demo_greeting() {
    [ -f "$RUN/greeting.wav" ] && return
    python3 - "$RUN/greeting.wav" <<'PY'
import math, struct, sys, wave
frames = b''.join(struct.pack('<h', int(6000 * math.sin(2 * math.pi * f * i / 8000)
                                        * min(1, (1600 - i % 1600) / 400)))
                  for f in (660, 880) for i in range(1600))
with wave.open(sys.argv[1], 'wb') as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    w.writeframes(frames + b'\0\0' * 4800)
PY
}

# conf/ is the operator's example; for the demo the paths are made absolute
render_conf() {
    local f
    mkdir -p "$RUN/logs" "$RUN/tmp" "$RUN/conf/tenants" "$RUN/transcripts"
    rm -f "$RUN"/conf/tenants/*.conf
    for f in $(cd "$ROOT/conf" && echo nginx.conf tenants/*.conf); do
        sed -e "s#@MODULES@#$BUILD/modules#g" -e "s#@RUN@#$RUN#g" \
            -e "s#@CONF@#$RUN/conf#g" -e "s#@ROOT@#$ROOT#g" \
            "$ROOT/conf/$f" >"$RUN/conf/$f"
    done
}

run() {
    deps
    build
    start_redis
    dev_cert
    demo_greeting
    render_conf
    nginx -t -p "$RUN" -c "$RUN/conf/nginx.conf" -e "$RUN/logs/error.log" >/dev/null 2>&1 \
        || nginx -t -p "$RUN" -c "$RUN/conf/nginx.conf" -e "$RUN/logs/error.log"
    start_mediad
    trap 'stop_all' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    cat <<EOF

  CodeB is running (Ctrl-C or SIGTERM stops nginx, codeb-mediad and Redis):
    http://127.0.0.1:8080/room.html?room=demo    open in two tabs for a call
    https://127.0.0.1:8443/room.html?room=demo   same, TLS (self-signed dev cert)
    http://127.0.0.1:8080/status.html            health summary
    http://127.0.0.1:8080/virtual-numbers-overview.html
    http://127.0.0.1:8080/signal.ashx            build stamp
    http://127.0.0.1:8080/api.ashx/v1            the REST API's routes
    http://127.0.0.1:8080/api-keys-admin.html    admin pages: API keys,
    http://127.0.0.1:8080/webhooks-admin.html    webhooks, outbound calls
    http://127.0.0.1:8080/outbound-ai-monitor.html
  REST API sign-in (and the admin pages): admin / admin-demo-pass, or POST
  http://127.0.0.1:8080/oidc.ashx/token with grant_type=password
  client_id=codeb-admin username=admin password=admin-demo-pass scope=openid
  Outbound calls (POST /api.ashx/v1/calls) go out through trunk "demo" and
  play $RUN/greeting.wav; sipp -sn uas -i 127.0.0.1 -p 5070 -rtp_echo answers
  them. Transcripts: JSON files in $RUN/transcripts/
  SIP over WebSocket: wss://127.0.0.1:5443 (ws://127.0.0.1:5066), SIP UDP/TCP
  127.0.0.1:5060; users alice / alice-demo-pass, bob / bob-demo-pass,
  carol / carol-demo-pass
    http://127.0.0.1:8080/phone-jssip.html       JsSIP softphone (alice)
    http://127.0.0.1:8080/phone-sipjs.html       SIP.js softphone (bob)
  SIP trunk "demo": 127.0.0.1:5070 over UDP (run sipp there); its calls to
  any number ring alice, and a softphone dialling +<digits> goes out
  through it
  Redis: $RUN/redis.sock   logs: $RUN/logs/
  codeb-mediad: NG on 127.0.0.1:2223/udp, RTP 30000-30999 (log: $RUN/logs/mediad.log)

EOF
    # in the background, so that a SIGTERM to this script also stops it
    nginx -p "$RUN" -c "$RUN/conf/nginx.conf" -e "$RUN/logs/error.log" -g 'daemon off;' &
    NGINX_PID=$!
    wait "$NGINX_PID"
}

# the same modules built with AddressSanitizer, for memcheck
build_asan() {
    BUILD=$ROOT/build/asan CODEB_CFLAGS="-fsanitize=address -fno-omit-frame-pointer" \
        CODEB_LDFLAGS="-fsanitize=address" build
    cat >"$ROOT/build/asan/nginx" <<EOF
#!/bin/sh
# Debian's nginx with ASan preloaded for the instrumented modules;
# every dynamic module defines ngx_module_order: not an ODR bug
# errors abort the worker (the tests' crash check sees it); leaks only
# go to the report files, which memcheck reads
export ASAN_OPTIONS="detect_leaks=1:detect_odr_violation=0:abort_on_error=1:exitcode=0:fast_unwind_on_malloc=0:log_path=$ROOT/build/asan/report:\${ASAN_EXTRA:-}"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $ROOT/build/asan/nodlclose.so"
exec /usr/sbin/nginx "\$@"
EOF
    chmod +x "$ROOT/build/asan/nginx"
    # nginx dlclose()s modules when the cycle pool goes: a leak report
    # written at exit could then not name the modules' functions
    printf 'int dlclose(void *h) { (void) h; return 0; }\n' >"$ROOT/build/asan/nodlclose.c"
    gcc -shared -fPIC -o "$ROOT/build/asan/nodlclose.so" "$ROOT/build/asan/nodlclose.c"
}

# t/ again under AddressSanitizer: any error, or a leak whose stack passes
# through the CodeB modules, fails.  (nginx itself is not instrumented:
# its pools are freed wholesale and are not what this checks.)
memcheck() {
    local r bad=0 TEST_NGINX_MODULES
    build_asan
    rm -f "$ROOT"/build/asan/report.*
    log "t/ under AddressSanitizer"
    TEST_NGINX_MODULES=$ROOT/build/asan/modules TEST_NGINX_BINARY=$ROOT/build/asan/nginx \
        TEST_NGINX_SERVROOT=$ROOT/t/servroot-asan TEST_NGINX_PORT=2984 \
        CODEB_MEDIAD=$ROOT/build/asan/mediad/codeb-mediad \
        prove $(ls t/*.t | grep -v 000-harness) || bad=1
    for r in "$ROOT"/build/asan/report.*; do
        [ -e "$r" ] || continue
        if grep -q "ERROR: AddressSanitizer" "$r" || grep -q "ngx_codeb" "$r"; then
            echo "ASan report: $r" >&2; sed -n 1,60p "$r" >&2; bad=1
        fi
    done
    [ $bad = 0 ] && log "memcheck: no invalid access, no leak in the modules"
    return $bad
}

# one test suite; its result counts in the closing line
suite() {
    local name=$1
    shift
    log "$name"
    if "$@"; then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1))
        FAILED_NAMES="$FAILED_NAMES $name"
    fi
}

# the media daemon's C unit tests, under ASan and UBSan
media_unit() {
    local t
    for t in stun transcode; do
        cc -std=gnu11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined \
            -fno-sanitize-recover=all -I"$ROOT/media-daemon/src" \
            -o "$BUILD/test_$t" "$ROOT/media-daemon/tests/test_$t.c" \
            "$ROOT/media-daemon/src/$t.c" "$ROOT/media-daemon/src/codec.c" \
            "$ROOT/media-daemon/src/util.c" -lcrypto -lopus -lm || return 1
        "$BUILD/test_$t" | tail -3 || return 1
    done
}

# codeb-mediad with ASan + UBSan for the protocol tests: bad input must
# leave no invalid access and no leak
build_mediad_asan() {
    make -s -C "$ROOT/media-daemon" O="$BUILD/mediad-asan" \
        CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
        LDFLAGS="-fsanitize=address,undefined"
}

# the NG/RTP suite against codeb-mediad built with ThreadSanitizer: the
# media threads, the NG hand-over and SIGHUP reloads share no unguarded data
mediad_tsan() {
    make -s -C "$ROOT/media-daemon" O="$BUILD/mediad-tsan" \
        CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" || return 1
    # without address randomisation: TSan's shadow layout does not fit
    # every kernel's mmap randomisation (vm.mmap_rnd_bits)
    printf '#!/bin/sh\nexec setarch "$(uname -m)" -R %s "$@"\n' \
        "$BUILD/mediad-tsan/codeb-mediad" >"$BUILD/mediad-tsan/run"
    chmod +x "$BUILD/mediad-tsan/run"
    CODEB_MEDIAD=$BUILD/mediad-tsan/run \
        TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
        /usr/bin/python3 -m unittest "$ROOT/tests/media/test_mediad.py"
}

run_tests() {
    deps
    build
    PASSED=0 FAILED=0 FAILED_NAMES=
    export TEST_NGINX_MODULES=$BUILD/modules
    suite "t/: nginx + Redis protocol tests (prove)" prove -r t/
    suite "t/ again, modules under AddressSanitizer" memcheck
    suite "tests/e2e: browser (Playwright + Debian chromium)" node --test "$ROOT"/tests/e2e/
    suite "tests/sip: JsSIP and SIP.js against the registrar" node --test "$ROOT"/tests/sip/
    suite "media-daemon: STUN and transcoder unit tests" media_unit
    suite "codeb-mediad under ASan+UBSan" build_mediad_asan
    export CODEB_MEDIAD=$BUILD/mediad-asan/codeb-mediad
    suite "tests/media: tooling self-test" /usr/bin/python3 -m unittest "$ROOT/tests/media/test_mediatest.py"
    suite "tests/media: NG and RTP through codeb-mediad" /usr/bin/python3 -m unittest "$ROOT/tests/media/test_mediad.py"
    suite "tests/media: NG and RTP, codeb-mediad under ThreadSanitizer" mediad_tsan
    suite "tests/media: aiortc (ICE, DTLS-SRTP) <-> codeb-mediad <-> RTP" /usr/bin/python3 "$ROOT/tests/media/test_webrtc.py"
    suite "tests/media: the same tooling against Debian's rtpengine" /usr/bin/python3 -m unittest "$ROOT/tests/media/test_rtpengine_ref.py"
    suite "tests/media: NG conformance, codeb-mediad vs rtpengine" /usr/bin/python3 -m unittest "$ROOT/tests/media/test_ng_conformance.py"
    suite "tests/media: Kamailio's rtpengine module drives codeb-mediad" /usr/bin/python3 -m unittest "$ROOT/tests/media/test_kamailio.py"
    suite "media-daemon: STUN interop with aioice" /usr/bin/python3 "$ROOT/media-daemon/tests/stun_interop.py"
    [ -z "$FAILED_NAMES" ] || echo "failed:$FAILED_NAMES" >&2
    echo "suites: $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
}

case "${1:-run}" in
    deps) deps ;;
    build) build ;;
    memcheck) cd "$ROOT" && deps && memcheck ;;
    run) run ;;
    test) cd "$ROOT" && run_tests ;;
    *) echo "usage: $0 [deps|build|run|test]" >&2; exit 2 ;;
esac

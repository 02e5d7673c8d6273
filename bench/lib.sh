# Shared by the benchmarks (sourced): logging, stopping processes, and
# "build first unless BUILD=0".

log() { printf '== %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*"; }

# stop_pid PID [SIGNAL]: SIGNAL (default TERM), up to 5 s, then KILL
stop_pid() {
    local pid=$1 sig=${2:-TERM} i
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# bench_build ARTIFACT SRC_DIR...: ./build.sh build unless BUILD=0 (then a
# warning when a source is newer than ARTIFACT); the log goes to $TMP/logs
bench_build() {
    local artifact=$1
    shift
    if [ "${BUILD:-1}" != 0 ] || [ ! -e "$artifact" ]; then
        log "building (./build.sh build)"
        "$ROOT/build.sh" build >"$TMP/logs/build.log" 2>&1 \
            || { tail -20 "$TMP/logs/build.log"; exit 1; }
    elif [ -n "$(find "$@" -type f -newer "$artifact" 2>/dev/null | head -1)" ]; then
        warn "sources are newer than $artifact (BUILD=0): the old build is measured"
    fi
}

# the temporary directory goes, unless KEEP=1
bench_remove_tmp() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept: $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}

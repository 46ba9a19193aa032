#!/usr/bin/env bash
# Hits through the larder proxy against nginx proxy_cache and a plain
# handler, on loopback, one client setting.
#
#   bench/proxy_hits.sh                                              # full run, about 2.5 minutes
#   LARDER_BENCH_SECONDS=2 LARDER_BENCH_ROUNDS=1 bench/proxy_hits.sh  # smoke run
#
# Builds the larder binary and the bench_origin example in release, starts
# the origin, larder (memory store) and Debian's nginx with
# bench/nginx/proxy_cache.conf in front of it on free loopback ports; for
# each payload size measures /plain/N on the origin (the limit), /obj/N
# through larder and /obj/N through nginx with wrk, in ABBA order; checks
# that no measured request reached the origin (all hits); prints a markdown
# table. See bench/README.md.
#
# Environment (all optional):
#   LARDER_BENCH_SIZES        payload sizes in bytes       (default "1024 65536")
#   LARDER_BENCH_SECONDS      seconds per wrk run          (default 10)
#   LARDER_BENCH_ROUNDS       runs per subject and size    (default 2)
#   LARDER_BENCH_WARMUP_SECONDS  unrecorded wrk run per subject first (default 1)
#   LARDER_BENCH_THREADS / LARDER_BENCH_CONNECTIONS  wrk -t / -c (default 2 / 32)
#   LARDER_BENCH_KEEP=DIR     keep logs and raw wrk output in DIR
#   CARGO_TARGET_DIR          where cargo builds (default: the workspace's target/)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

SIZES=${LARDER_BENCH_SIZES:-1024 65536}
ROUNDS=${LARDER_BENCH_ROUNDS:-2}
# Measured in this order on odd rounds and reversed on even ones (ABBA).
SUBJECTS=(plain larder nginx)
BASELINE=plain

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_need wrk
bench_need nginx nginx-light
bench_need curl
bench_init

bench_log "building larder and the bench_origin example (release)"
(cd "$ROOT" && cargo build --quiet --release -p larder-proxy --bin larder --example bench_origin)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
[[ -x $TARGET/larder && -x $TARGET/examples/bench_origin ]] || bench_die "no binaries in $TARGET after the build"
started=$SECONDS

ORIGIN_PORT=$(bench_free_port)
bench_spawn origin "$TARGET/examples/bench_origin" "127.0.0.1:$ORIGIN_PORT"
bench_wait_for bench_origin curl -sf --max-time 1 "http://127.0.0.1:$ORIGIN_PORT/count"

LARDER_PORT=$(bench_free_port)
bench_spawn larder "$TARGET/larder" serve --upstream "http://127.0.0.1:$ORIGIN_PORT" \
    --listen "127.0.0.1:$LARDER_PORT"
bench_wait_for larder curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$LARDER_PORT/count"

NGINX_PORT=$(bench_free_port)
sed -e "s|@WORKDIR@|$BENCH_DIR|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
    "$ROOT/bench/nginx/proxy_cache.conf" >"$BENCH_DIR/nginx.conf"
bench_spawn nginx nginx -c "$BENCH_DIR/nginx.conf" -p "$BENCH_DIR" -g 'daemon off;'
bench_wait_for nginx curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$NGINX_PORT/count"

url_of() { # SUBJECT SIZE
    case $1 in
    plain) echo "http://127.0.0.1:$ORIGIN_PORT/plain/$2" ;;
    larder) echo "http://127.0.0.1:$LARDER_PORT/obj/$2" ;;
    nginx) echo "http://127.0.0.1:$NGINX_PORT/obj/$2" ;;
    esac
}

header_of() { # URL NAME
    curl -s --max-time 5 -o /dev/null -D - "$1" | tr -d '\r' |
        awk -F': ' -v n="$2" 'tolower($1) == n {print $2}'
}

origin_count() { curl -sf --max-time 5 "http://127.0.0.1:$ORIGIN_PORT/count"; }

for size in $SIZES; do
    # Every subject answers 200 with exactly N bytes; the first cache
    # request stores, the next ones must be hits.
    for subject in "${SUBJECTS[@]}"; do
        for _ in 1 2 3; do bench_check_size "$(url_of "$subject" "$size")" "$size"; done
    done
    status=$(header_of "$(url_of larder "$size")" cache-status)
    [[ $status == *hit* ]] || bench_die "larder is not answering from cache (cache-status: '$status')"
    status=$(header_of "$(url_of nginx "$size")" x-cache-status)
    [[ $status == HIT ]] || bench_die "nginx is not answering from cache (x-cache-status: '$status')"
    for subject in "${SUBJECTS[@]}"; do bench_warm "$(url_of "$subject" "$size")"; done
    before=$(origin_count)

    for round in $(seq "$ROUNDS"); do
        mapfile -t order < <(bench_abba "$round" "${SUBJECTS[@]}")
        for subject in "${order[@]}"; do
            bench_wrk "$subject" "$size" "$round" "$(url_of "$subject" "$size")"
        done
    done

    # Every cache request measured must have been a hit: the origin's
    # count of cacheable requests must not have moved.
    after=$(origin_count)
    echo "$size B: requests that reached the origin through a cache during the measurement: $((after - before))" \
        >>"$BENCH_DIR/checks.txt"
done

echo
echo "wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS -d${BENCH_SECONDS}s, $ROUNDS round(s) per subject (ABBA)"
echo
bench_table "$BASELINE"
echo
sed 's/^/- /' "$BENCH_DIR/checks.txt"
if grep -qE 'measurement: [1-9]' "$BENCH_DIR/checks.txt"; then
    echo "- WARNING: some measured cache requests were misses; those rows mix in the origin."
fi
echo "- $(nginx -v 2>&1); larder $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "- $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load average before the run: $LOAD_BEFORE; ${SECONDS}s in all, $((SECONDS - started))s after the build"

#!/usr/bin/env bash
# A Redis-backed larder hit against its limit, on loopback, one client setting.
#
#   bench/redis_hits.sh                          # full run, about 3 minutes
#   LARDER_BENCH_SECONDS=2 LARDER_BENCH_ROUNDS=1 bench/redis_hits.sh   # smoke run
#
# Starts its own redis-server (persistence off) and the bench_server example
# on free loopback ports; for each payload size, measures /redis-direct (a
# handler that GETs the bytes from Redis: the limit), /larder-redis (larder
# hits from a RedisStore: the subject), /larder-memory and /plain (the
# ceiling) with wrk, in ABBA order so that drift affects all alike; then
# redis-benchmark GET at the same size and concurrency for context; prints a
# markdown table. See bench/README.md.
#
# Environment (all optional):
#   LARDER_BENCH_SIZES        payload sizes in bytes       (default "1024 65536")
#   LARDER_BENCH_SECONDS      seconds per wrk run          (default 10)
#   LARDER_BENCH_ROUNDS       runs per subject and size    (default 2)
#   LARDER_BENCH_WARMUP_SECONDS  unrecorded wrk run per route first (default 1)
#   LARDER_BENCH_THREADS / LARDER_BENCH_CONNECTIONS  wrk -t / -c (default 2 / 32)
#   LARDER_BENCH_REQUESTS     redis-benchmark -n           (default 200000)
#   LARDER_BENCH_KEEP=DIR     keep logs and raw wrk output in DIR
#   CARGO_TARGET_DIR          where cargo builds (default: the workspace's target/)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

SIZES=${LARDER_BENCH_SIZES:-1024 65536}
ROUNDS=${LARDER_BENCH_ROUNDS:-2}
REQUESTS=${LARDER_BENCH_REQUESTS:-200000}
# Measured in this order on odd rounds and reversed on even ones (ABBA):
# the baseline and the subject sit side by side, and linear drift cancels.
SUBJECTS=(redis-direct larder-redis larder-memory plain)
BASELINE=redis-direct

bench_need wrk
bench_need redis-server redis-server
bench_need redis-benchmark redis-tools
bench_need redis-cli redis-tools
bench_need curl
bench_init

bench_log "building the bench_server example (release)"
(cd "$ROOT" && cargo build --quiet --release -p larder --features redis --example bench_server)
SERVER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_server
[[ -x $SERVER_BIN ]] || bench_die "no $SERVER_BIN after the build"
started=$SECONDS

REDIS_PORT=$(bench_free_port)
bench_spawn redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save '' --appendonly no --dir "$BENCH_DIR"
bench_wait_for redis-server redis-cli -p "$REDIS_PORT" ping
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

for size in $SIZES; do
    rcli flushall >/dev/null
    port=$(bench_free_port)
    base=http://127.0.0.1:$port
    LARDER_BENCH_REDIS_URL=redis://127.0.0.1:$REDIS_PORT LARDER_BENCH_BYTES=$size \
        bench_spawn "server-$size" "$SERVER_BIN" "127.0.0.1:$port"
    server_pid=$BENCH_LAST_PID
    bench_wait_for bench_server curl -sf --max-time 1 "$base/plain"

    # Every route answers 200 with the payload; the first larder request
    # stores, the next ones must be hits or the run would measure misses.
    for subject in "${SUBJECTS[@]}"; do
        for _ in 1 2 3; do bench_check_size "$base/$subject" "$size"; done
    done
    for subject in larder-redis larder-memory; do
        status=$(curl -s --max-time 5 -o /dev/null -D - "$base/$subject" |
            tr -d '\r' | awk -F': ' 'tolower($1) == "cache-status" {print $2}')
        [[ $status == *hit* ]] || bench_die "/$subject is not a hit (cache-status: '${status}')"
    done
    for subject in "${SUBJECTS[@]}"; do bench_warm "$base/$subject"; done
    before=$(curl -sf --max-time 5 "$base/stats" | grep "^larder-")

    for round in $(seq "$ROUNDS"); do
        mapfile -t order < <(bench_abba "$round" "${SUBJECTS[@]}")
        for subject in "${order[@]}"; do
            bench_wrk "/$subject" "$size" "$round" "$base/$subject"
        done
    done

    # The larder runs must have been hits: misses or store errors during
    # the measurement (a timed-out Redis command is served as a miss) are
    # reported beside the table.
    after=$(curl -sf --max-time 5 "$base/stats" | grep "^larder-")
    paste <(echo "$before") <(echo "$after") | awk -v size="$size" '{
        for (i = 2; i <= 5; i++) { split($i, a, "="); split($(i + 5), b, "="); d[a[1]] = b[2] - a[2] }
        printf "%s at %s B during measurement: hits=%d misses=%d store_errors=%d corrupt_entries=%d\n",
            $1, size, d["hits"], d["misses"], d["store_errors"], d["corrupt_entries"]
    }' >>"$BENCH_DIR/checks.txt"
    bench_stop "$server_pid"

    # redis-benchmark reads key:__rand_int__ and does not write it for
    # `-t get`: without this SET it would time GETs of a missing key.
    head -c "$size" /dev/zero | tr '\0' x | rcli -x set key:__rand_int__ >/dev/null
    [[ $(rcli strlen key:__rand_int__) == "$size" ]] || bench_die "cannot write the redis-benchmark key"
    # --csv rather than -q: the same run, with p99 too.
    bench_run "$BENCH_DIR/redis-benchmark-$size.csv" timeout 120 redis-benchmark \
        -p "$REDIS_PORT" -t get -d "$size" -c "$BENCH_CONNECTIONS" -n "$REQUESTS" --csv ||
        bench_die "redis-benchmark failed: $(cat "$BENCH_DIR/redis-benchmark-$size.csv")"
    csv=$(grep '^"GET"' "$BENCH_DIR/redis-benchmark-$size.csv" || true)
    [[ -n $csv ]] || bench_die "no GET line from redis-benchmark"
    IFS=',' read -r _ rps _ _ p50 _ p99 _ <<<"${csv//\"/}"
    bench_record "redis-benchmark GET" "$size" "$rps" "$p50" "$p99"
    bench_log "redis-benchmark GET at $size B: $rps req/s, p50 ${p50}ms, p99 ${p99}ms"
done

echo
echo "wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS -d${BENCH_SECONDS}s, $ROUNDS round(s) per subject (ABBA); redis-benchmark -t get -c $BENCH_CONNECTIONS -n $REQUESTS"
echo
bench_table "/$BASELINE"
echo
sed 's/^/- /' "$BENCH_DIR/checks.txt"
if grep -qE 'larder-redis.*(misses=[1-9]|store_errors=[1-9])' "$BENCH_DIR/checks.txt"; then
    echo "- WARNING: /larder-redis was not all hits during the measurement; its numbers mix in misses."
fi
echo "- $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); ${SECONDS}s in all, $((SECONDS - started))s after the build"

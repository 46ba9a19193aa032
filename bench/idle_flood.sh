#!/usr/bin/env bash
# Normal requests through `larder serve` while a flood of idle keep-alive
# connections is held open (and reopened as the proxy closes them), with
# larder under a low open-file limit: issue 13's "1,100 idle connections
# under ulimit -n 1024".
#
#   bench/idle_flood.sh                                   # 1,100 idle connections, ulimit -n 1024, 30 s
#   LARDER_BENCH_IDLE=3000 LARDER_BENCH_SECONDS=10 bench/idle_flood.sh
#
# Builds the larder binary and the bench_origin example in release, starts
# the origin and `larder serve` (default settings: max_connections derived
# from the limit) with `ulimit -n` lowered for larder alone, then for
# LARDER_BENCH_SECONDS: a Python client keeps LARDER_BENCH_IDLE idle
# connections open, reopening each one the proxy closes, while curl sends
# one normal request every 100 ms (hits and misses in turn), each bounded
# by 10 s. Prints how many were answered 200, their latency, and how many
# `accept failed` lines larder logged. See bench/README.md.
#
# Environment (all optional):
#   LARDER_BENCH_IDLE     idle connections held open         (default 1100)
#   LARDER_BENCH_NOFILE   larder's open-file limit (ulimit -n) (default 1024)
#   LARDER_BENCH_SECONDS  how long the flood lasts            (default 30)
#   LARDER_BENCH_KEEP=DIR keep logs in DIR
#   CARGO_TARGET_DIR      where cargo builds (default: the workspace's target/)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

IDLE=${LARDER_BENCH_IDLE:-1100}
NOFILE=${LARDER_BENCH_NOFILE:-1024}
SECONDS_RUN=${LARDER_BENCH_SECONDS:-30}

bench_need curl
bench_need python3
bench_init

bench_log "building larder and the bench_origin example (release)"
(cd "$ROOT" && cargo build --quiet --release -p larder-proxy --bin larder --example bench_origin)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release
[[ -x $TARGET/larder && -x $TARGET/examples/bench_origin ]] || bench_die "no binaries in $TARGET after the build"

ORIGIN_PORT=$(bench_free_port)
bench_spawn origin "$TARGET/examples/bench_origin" "127.0.0.1:$ORIGIN_PORT"
bench_wait_for bench_origin curl -sf --max-time 1 "http://127.0.0.1:$ORIGIN_PORT/count"

LARDER_PORT=$(bench_free_port)
# The limit applies to larder alone (soft and hard, as `ulimit -n` sets them).
bench_spawn larder bash -c 'ulimit -n "$1" && shift && exec "$@"' _ "$NOFILE" \
    "$TARGET/larder" serve --upstream "http://127.0.0.1:$ORIGIN_PORT" --listen "127.0.0.1:$LARDER_PORT"
LARDER_PID=$BENCH_LAST_PID
bench_wait_for larder curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$LARDER_PORT/obj/1024"
bench_log "larder: $(grep -o 'max_connections=[0-9]*' "$BENCH_DIR/larder.log" | head -1) under ulimit -n $NOFILE"

# The flood: IDLE connections that never send a byte, each reopened as
# soon as the proxy closes it, for SECONDS_RUN seconds.
cat >"$BENCH_DIR/flood.py" <<'PY'
import resource, selectors, socket, sys, time

port, idle, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = idle + 64
if soft < want:
    if hard != resource.RLIM_INFINITY and hard < want:
        sys.exit(f"flood: needs {want} descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
sel = selectors.DefaultSelector()
opened = reopened = refused = 0
def open_one():
    global opened, refused
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect_ex(("127.0.0.1", port))
    except OSError:
        refused += 1
        s.close()
        return
    sel.register(s, selectors.EVENT_READ)
    opened += 1
for _ in range(idle):
    open_one()
end = time.monotonic() + seconds
while time.monotonic() < end:
    for key, _ in sel.select(timeout=0.1):
        s = key.fileobj
        try:
            gone = s.recv(1) == b""
        except (BlockingIOError, InterruptedError):
            gone = False
        except OSError:
            gone = True
        if gone:
            sel.unregister(s)
            s.close()
            reopened += 1
            open_one()
print(f"opened={opened} reopened_after_close={reopened} refused={refused} held_at_end={len(sel.get_map())}")
PY
python3 "$BENCH_DIR/flood.py" "$LARDER_PORT" "$IDLE" "$SECONDS_RUN" >"$BENCH_DIR/flood.out" 2>&1 &
FLOOD_PID=$!
BENCH_PIDS+=("$FLOOD_PID")
sleep 1

bench_log "normal requests for ${SECONDS_RUN}s during the flood of $IDLE idle connections"
: >"$BENCH_DIR/normal.tsv"
end=$((SECONDS + SECONDS_RUN - 1))
i=0
while ((SECONDS < end)); do
    if ((i % 2)); then path="/obj/1024?miss=$i"; else path="/obj/1024"; fi
    curl -s -o /dev/null --max-time 10 -w '%{http_code}\t%{time_total}\n' \
        "http://127.0.0.1:$LARDER_PORT$path" >>"$BENCH_DIR/normal.tsv" || printf '000\t10\n' >>"$BENCH_DIR/normal.tsv"
    i=$((i + 1))
    sleep 0.1
done
open_fds=$(ls "/proc/$LARDER_PID/fd" 2>/dev/null | wc -l || echo "?")
wait "$FLOOD_PID" || true
bench_forget "$FLOOD_PID"

accept_lines=$(grep -c 'accept failed' "$BENCH_DIR/larder.log" || true)
python3 - "$BENCH_DIR/normal.tsv" "$IDLE" "$NOFILE" "$SECONDS_RUN" "$accept_lines" "$open_fds" "$(cat "$BENCH_DIR/flood.out")" <<'PY'
import sys
path, idle, nofile, secs, accept_lines, fds, flood = sys.argv[1:]
rows = [line.split("\t") for line in open(path) if line.strip()]
ok = sorted(float(t) * 1000 for code, t in rows if code == "200")
at = lambda q: ok[min(len(ok) - 1, int(len(ok) * q))] if ok else float("nan")
print("| idle connections | ulimit -n | seconds | normal requests | answered 200 | failed | p50 ms | p99 ms | max ms | accept-failed log lines |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {idle} | {nofile} | {secs} | {len(rows)} | {len(ok)} | {len(rows) - len(ok)} | {at(0.5):.1f} | {at(0.99):.1f} | {ok[-1] if ok else float('nan'):.1f} | {accept_lines} |")
print(f"\nflood: {flood}; larder held {fds} descriptors at the end")
PY

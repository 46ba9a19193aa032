#!/usr/bin/env bash
# Misses streamed through `larder serve` (issue 13 item 2): the proxy's
# memory with 40 slow readers of a chunked 256 MiB body, and the first-byte
# latency of a miss against the upstream's own first byte.
#
#   bench/streaming.sh
#   LARDER_BENCH_READERS=10 LARDER_BENCH_SECONDS=5 bench/streaming.sh
#
# Builds the larder binary in release and starts a Python origin on
# loopback that answers every GET with a chunked body (no Content-Length):
#   /big?n=...   256 MiB in 64 KiB chunks, as fast as it is read;
#   /late?n=...  a first chunk at once, the rest 1 s later.
# Then:
#   1. RSS: LARDER_BENCH_READERS clients (default 40) each read their own
#      /big (distinct query strings: nothing coalesces) at 1 MiB/s for
#      LARDER_BENCH_SECONDS (default 10); larder's VmRSS is sampled before
#      and at the end. Prints the growth, per reader, and per reader as a
#      share of max_body_bytes (8 MiB: what buffering a miss used to cost).
#   2. First byte: 5 misses of /late through the proxy and 5 straight from
#      the origin; prints the median time to the first body byte of each,
#      their ratio, and the proxy's first byte over its last byte (a proxy
#      that buffered would be near 1; one that streams near 0).
# The origin and larder are stopped on exit. See bench/README.md.
#
# Environment (all optional):
#   LARDER_BENCH_READERS  slow readers                  (default 40)
#   LARDER_BENCH_SECONDS  how long they read             (default 10)
#   LARDER_BENCH_IN_FLIGHT  larder's in_flight_bytes      (default: larder's, 64 MiB)
#   LARDER_BENCH_KEEP=DIR keep logs in DIR
#   CARGO_TARGET_DIR      where cargo builds (default: the workspace's target/)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

READERS=${LARDER_BENCH_READERS:-40}
SECONDS_RUN=${LARDER_BENCH_SECONDS:-10}

bench_need python3
bench_init

bench_log "building larder (release)"
(cd "$ROOT" && cargo build --quiet --release -p larder-proxy --bin larder)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LARDER=$TARGET/release/larder

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN_PORT=$(free_port)
PROXY_PORT=$(free_port)

cat >"$BENCH_DIR/origin.py" <<'PY'
import asyncio, sys

CHUNK = b"x" * 65536
BIG = 256 << 20

async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            writer.write(b"HTTP/1.1 200 OK\r\ncache-control: public, max-age=60\r\n"
                         b"transfer-encoding: chunked\r\n\r\n")
            frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
            if path.startswith(b"/late"):
                writer.write(frame)
                await writer.drain()
                await asyncio.sleep(1)
                for _ in range(15):
                    writer.write(frame)
            else:
                for _ in range(BIG // len(CHUNK)):
                    writer.write(frame)
                    await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()

asyncio.run(main())
PY

cat >"$BENCH_DIR/client.py" <<'PY'
import asyncio, statistics, sys, time

async def get(port, path, rate=None, seconds=None):
    """GETs path; returns (first body byte, last byte) in seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    writer.write(b"GET %s HTTP/1.1\r\nhost: bench.example\r\nconnection: close\r\n\r\n" % path.encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    first = None
    while True:
        if rate:
            data = await reader.read(rate // 10)
            await asyncio.sleep(0.1)
        else:
            data = await reader.read(65536)
        if not data:
            break
        if first is None:
            first = time.monotonic() - start
        if seconds and time.monotonic() - start > seconds:
            break
    last = time.monotonic() - start
    writer.close()
    return first, last

async def slow(port, readers, seconds):
    await asyncio.gather(*(get(port, f"/big?n={i}", rate=1 << 20, seconds=seconds) for i in range(readers)))

async def latency(proxy, origin):
    through, direct, ratio = [], [], []
    for i in range(5):
        first, last = await get(proxy, f"/late?n={i}")
        through.append(first)
        ratio.append(first / last)
        first, _ = await get(origin, f"/late?n=d{i}")
        direct.append(first)
    t, d = statistics.median(through), statistics.median(direct)
    print(f"first byte through larder (median of 5): {t*1000:.1f} ms")
    print(f"first byte from the origin (median of 5): {d*1000:.1f} ms")
    print(f"larder / origin first byte: {t/d:.2f}")
    print(f"larder first byte / last byte: {statistics.median(ratio):.3f}")

if sys.argv[1] == "slow":
    asyncio.run(slow(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
else:
    asyncio.run(latency(int(sys.argv[2]), int(sys.argv[3])))
PY

python3 "$BENCH_DIR/origin.py" "$ORIGIN_PORT" >"$BENCH_DIR/origin.log" 2>&1 &
BENCH_PIDS+=($!)
{
    echo "[server]"
    echo "upstream = \"http://127.0.0.1:$ORIGIN_PORT\""
    echo "listen = \"127.0.0.1:$PROXY_PORT\""
    if [[ -n ${LARDER_BENCH_IN_FLIGHT:-} ]]; then
        echo "[cache]"
        echo "in_flight_bytes = $LARDER_BENCH_IN_FLIGHT"
    fi
} >"$BENCH_DIR/larder.toml"
"$LARDER" serve --config "$BENCH_DIR/larder.toml" >"$BENCH_DIR/larder.log" 2>&1 &
LARDER_PID=$!
BENCH_PIDS+=("$LARDER_PID")
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PROXY_PORT)).close()" 2>/dev/null && break
    sleep 0.1
done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$LARDER_PID/status"; }

BEFORE=$(rss_kib)
bench_log "$READERS slow readers of 256 MiB chunked bodies for $SECONDS_RUN s"
python3 "$BENCH_DIR/client.py" slow "$PROXY_PORT" "$READERS" "$SECONDS_RUN" &
READING=$!
PEAK=$BEFORE
END=$((SECONDS + ${SECONDS_RUN%.*}))
while ((SECONDS < END)); do
    NOW=$(rss_kib)
    ((NOW > PEAK)) && PEAK=$NOW
    sleep 0.5
done
wait "$READING" || true
GROWTH=$((PEAK - BEFORE))
echo "larder RSS before: $((BEFORE / 1024)) MiB, peak with $READERS slow readers: $((PEAK / 1024)) MiB"
echo "growth: $((GROWTH / 1024)) MiB, per reader: $((GROWTH / READERS)) KiB ($(python3 -c "print(f'{$GROWTH / $READERS / 8192:.3f}')") of max_body_bytes)"

bench_log "first-byte latency of a miss"
python3 "$BENCH_DIR/client.py" latency "$PROXY_PORT" "$ORIGIN_PORT"

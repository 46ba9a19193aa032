# shellcheck shell=bash
# Helpers for load benchmarks on loopback; sourced by bench/*.sh.
#
# A scenario script starts its processes with bench_spawn (so that the trap
# set by bench_init stops exactly those), measures each subject with
# bench_wrk (one line per run appended to $BENCH_RESULTS), and prints
# bench_table. A new subject is a URL; a new server is one bench_spawn.
#
# Results file, tab-separated, one line per wrk run:
#   subject  payload  round  req_per_s  p50_ms  p99_ms  errors

# Fixed client settings: every subject of a run is measured with these.
BENCH_THREADS=${LARDER_BENCH_THREADS:-2}
BENCH_CONNECTIONS=${LARDER_BENCH_CONNECTIONS:-32}
BENCH_SECONDS=${LARDER_BENCH_SECONDS:-10}
BENCH_WARMUP_SECONDS=${LARDER_BENCH_WARMUP_SECONDS:-1}

BENCH_PIDS=()

# Makes a work directory, and a trap that stops what bench_spawn started.
# With LARDER_BENCH_KEEP=DIR, logs and raw outputs are kept in DIR.
bench_init() {
    if [[ -n ${LARDER_BENCH_KEEP:-} ]]; then
        BENCH_DIR=$LARDER_BENCH_KEEP
        mkdir -p "$BENCH_DIR"
    else
        BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/larder-bench.XXXXXX")
    fi
    BENCH_RESULTS=$BENCH_DIR/results.tsv
    : >"$BENCH_RESULTS"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [[ -z ${LARDER_BENCH_KEEP:-} && -n ${BENCH_DIR:-} ]]; then
        rm -rf "$BENCH_DIR"
    fi
}

bench_log() { printf '[bench] %s\n' "$*" >&2; }
bench_die() {
    printf '[bench] error: %s\n' "$*" >&2
    exit 1
}

# Installs a Debian package when its command is missing.
bench_need() { # COMMAND [PACKAGE]
    command -v "$1" >/dev/null && return
    command -v apt-get >/dev/null || bench_die "$1 is missing and there is no apt-get to install ${2:-$1}"
    bench_log "installing ${2:-$1}"
    apt-get install -y -qq "${2:-$1}" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq "${2:-$1}" >/dev/null; } ||
        bench_die "cannot install ${2:-$1}"
}

# A loopback TCP port nobody listens on now.
bench_free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    bench_die "no free port found"
}

# Starts a command in the background, output to $BENCH_DIR/NAME.log, and
# remembers its pid for the cleanup. Sets BENCH_LAST_PID.
bench_spawn() { # NAME COMMAND...
    local name=$1
    shift
    "$@" >"$BENCH_DIR/$name.log" 2>&1 &
    BENCH_LAST_PID=$!
    BENCH_PIDS+=("$BENCH_LAST_PID")
}

# Stops one process bench_spawn started.
bench_stop() { # PID
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    bench_forget "$1"
}

bench_forget() { # PID
    local kept=() p
    for p in "${BENCH_PIDS[@]}"; do
        [[ $p == "$1" ]] || kept+=("$p")
    done
    BENCH_PIDS=("${kept[@]}")
}

# Runs a command to its end, output to OUTFILE. In the background with a
# wait, because bash runs a trap only once a foreground child has exited:
# this way a TERM stops the script, and the command, at once.
bench_run() { # OUTFILE COMMAND...
    local out=$1 pid rc=0
    shift
    "$@" >"$out" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    wait "$pid" || rc=$?
    bench_forget "$pid"
    return "$rc"
}

# Waits (bounded) until a command succeeds.
bench_wait_for() { # WHAT COMMAND...
    local what=$1
    shift
    for _ in $(seq 100); do
        "$@" >/dev/null 2>&1 && return
        sleep 0.1
    done
    bench_die "$what did not come up (logs in $BENCH_DIR)"
}

# Checks that URL answers 200 with exactly SIZE body bytes.
bench_check_size() { # URL SIZE
    local got
    got=$(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' "$1") ||
        bench_die "$1 does not answer"
    [[ $got == "200 $2" ]] || bench_die "$1 answered '$got', expected '200 $2'"
}

# wrk's latency ("428.00us", "4.09ms", "1.20s", "1.00m") in milliseconds.
bench_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# One wrk run with the fixed settings: appends a line to $BENCH_RESULTS.
# Aborts if the server answered anything but 2xx/3xx: such a run measures
# an error path, not the subject.
bench_wrk() { # SUBJECT PAYLOAD ROUND URL
    local subject=$1 payload=$2 round=$3 url=$4 out rps p50 p99 non2xx sock
    out=$BENCH_DIR/wrk-${subject//[^A-Za-z0-9_-]/_}-$payload-$round.txt
    bench_run "$out" timeout $((BENCH_SECONDS + 30)) wrk -t"$BENCH_THREADS" \
        -c"$BENCH_CONNECTIONS" -d"${BENCH_SECONDS}s" --latency "$url" ||
        bench_die "wrk failed on $url: $(cat "$out")"
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    [[ -n $rps && -n $p50 && -n $p99 ]] || bench_die "cannot read wrk output for $url: $(cat "$out")"
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    [[ -z $non2xx ]] || bench_die "$url: $non2xx non-2xx/3xx responses; see $out"
    # "Socket errors: connect 0, read 0, write 0, timeout 0": kept as a count.
    sock=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$subject" "$payload" "$round" "$rps" \
        "$(bench_ms "$p50")" "$(bench_ms "$p99")" "${sock:-0}" >>"$BENCH_RESULTS"
    bench_log "$(printf '%-22s %7s B  round %s  %10.0f req/s  p50 %s  p99 %s' \
        "$subject" "$payload" "$round" "$rps" "$p50" "$p99")"
}

# A short unrecorded wrk run: connections opened, allocator and caches warm.
bench_abba() { # ROUND SUBJECT...: the subjects in this round's order
    # Odd rounds in the given order, even rounds reversed, so that linear
    # drift in machine load hits every subject alike.
    local round=$1
    shift
    local subjects=("$@") i
    if ((round % 2 == 0)); then
        for ((i = ${#subjects[@]} - 1; i >= 0; i--)); do printf '%s\n' "${subjects[i]}"; done
    else
        printf '%s\n' "${subjects[@]}"
    fi
}

bench_warm() { # URL
    [[ $BENCH_WARMUP_SECONDS == 0 ]] && return
    bench_run /dev/null timeout $((BENCH_WARMUP_SECONDS + 30)) wrk -t"$BENCH_THREADS" \
        -c"$BENCH_CONNECTIONS" -d"${BENCH_WARMUP_SECONDS}s" "$1" || bench_die "warm-up of $1 failed"
}

# Records a line measured by another tool (no rounds), for context rows.
bench_record() { # SUBJECT PAYLOAD REQ_PER_S P50_MS P99_MS
    printf '%s\t%s\tctx\t%s\t%s\t%s\t0\n' "$@" >>"$BENCH_RESULTS"
}

# The markdown table: per subject and payload, the mean over rounds of
# req/s, p50 and p99, each round's req/s, and req/s relative to BASELINE.
bench_table() { # BASELINE
    awk -F'\t' -v base="$1" '
        {
            k = $1 SUBSEP $2
            if (!(k in n)) { order[++rows] = k }
            n[k]++; rps[k] += $4; p50[k] += $5; p99[k] += $6; err[k] += $7
            each[k] = each[k] (n[k] > 1 ? " / " : "") sprintf("%.0f", $4)
            if ($3 == "ctx") ctx[k] = 1
        }
        END {
            print "| subject | payload (B) | req/s (mean) | p50 ms | p99 ms | vs " base " | req/s per round |"
            print "|---|---:|---:|---:|---:|---:|---|"
            for (i = 1; i <= rows; i++) {
                k = order[i]; split(k, f, SUBSEP)
                mean = rps[k] / n[k]
                b = base SUBSEP f[2]
                # Another client measured context rows: no ratio to a wrk run.
                ratio = (b in n && !ctx[k]) ? sprintf("%.2f×", mean / (rps[b] / n[b])) : "–"
                rounds = ctx[k] ? "(context, other client)" : each[k]
                if (err[k] > 0) rounds = rounds " (" err[k] " socket errors)"
                printf "| %s | %s | %.0f | %.3f | %.3f | %s | %s |\n", \
                    f[1], f[2], mean, p50[k] / n[k], p99[k] / n[k], ratio, rounds
            }
        }' "$BENCH_RESULTS"
}

#!/usr/bin/env bash
# Soak: one `switchboard serve` (memory store, or --redis with a redis-server of its own on a
# spare port) under a steady open-loop rate of whole calls from switchboard-loadgen for
# DURATION (default 10m). Every 10 s it samples the server's resident memory, open file
# descriptors and live sessions (GET /v1/sessions). The verdict: after the warm-up (the first
# quarter of the run), none of the three grows beyond its bound over the run's last sample
# window: RSS by more than 10 % (and 8 MiB), fds by more than 50, live sessions by more than
# 2x the number in flight. Not part of .ci/run (it is long); its last report is in the README.
#
#   loadtest/soak.sh [--duration 10m] [--rate 100] [--speak 500ms] [--store memory|redis] [--keep]
#
# --speak is how long each spoken action lasts for the emulated platform: calls stay live for
# seconds, so live sessions are a real population (rate x call length), not zero.
#
# Needs the release binaries (built here) and, for --store redis, redis-server. Installs
# nothing. Exit 0: no growth; 1: growth or errors; 2: usage.
set -euo pipefail
cd "$(dirname "$0")/.."

script=soak
duration=10m
rate=100
speak=500ms
store=memory
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
  --duration) duration="$2"; shift 2 ;;
  --rate) rate="$2"; shift 2 ;;
  --speak) speak="$2"; shift 2 ;;
  --store) store="$2"; shift 2 ;;
  --keep) keep=1; shift ;;
  *) echo "soak: unknown argument $1; see the header of $0" >&2; exit 2 ;;
  esac
done
case "$duration" in
*m) seconds=$((${duration%m} * 60)) ;;
*s) seconds=${duration%s} ;;
*) echo "soak: --duration takes 10m or 90s, got $duration" >&2; exit 2 ;;
esac
case "$store" in memory | redis) ;; *) echo "soak: --store is memory or redis" >&2; exit 2 ;; esac

work="$(mktemp -d)"
server_pid=""
redis_pid=""
monitor_pid=""
# shellcheck source=../benches/common.sh
. benches/common.sh
trap cleanup EXIT

target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -q --workspace --bins
bin="$target_dir/release"

args=()
if [ "$store" = redis ]; then
  command -v redis-server >/dev/null || { echo "soak: redis-server is not installed" >&2; exit 2; }
  redis_port="$(spare_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  wait_port "$redis_pid" "$redis_port" redis
  args=(--redis "redis://127.0.0.1:$redis_port")
fi
port="$(spare_port)"
"$bin/switchboard" serve --listen "127.0.0.1:$port" --admin-token soak "${args[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
wait_port "$server_pid" "$port" server

sample() { # elapsed -> "elapsed rss_kib fds sessions"
  local rss fds sessions
  rss="$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")"
  fds="$(find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)"
  sessions="$(curl -s -H 'Authorization: Bearer soak' "http://127.0.0.1:$port/v1/sessions?limit=1" |
    sed -n 's/.*"count":\([0-9]*\).*/\1/p')"
  echo "$1 $rss $fds ${sessions:-0}"
}

echo "soak: $duration at $rate calls/s (speak $speak), $store store, server pid $server_pid; samples every 10 s"
"$bin/switchboard-loadgen" --target "http://127.0.0.1:$port" --rate "$rate" --duration "$duration" --speak "$speak" \
  --json "$work/load.json" >"$work/load.log" 2>&1 &
load_pid=$!
monitor_pid=$load_pid
started=$(date +%s)
: >"$work/samples"
while kill -0 "$load_pid" 2>/dev/null; do
  sleep 10
  kill -0 "$load_pid" 2>/dev/null || break
  line="$(sample $(($(date +%s) - started)))"
  echo "$line" >>"$work/samples"
  awk '{ printf "  t=%ss rss=%s KiB fds=%s live_sessions=%s\n", $1, $2, $3, $4 }' <<<"$line"
done
load_status=0
wait "$load_pid" || load_status=$?
monitor_pid=""

# The verdict: compare the first sample after warm-up with the maximum of the last third.
verdict="$(awk -v warm=$((seconds / 4)) -v inflight="$((rate * 10))" '
  $1 >= warm && !base { base = 1; rss0 = $2; fd0 = $3; s0 = $4 }
  { n++; t[n] = $1; rss[n] = $2; fd[n] = $3; s[n] = $4 }
  END {
    if (!base || n < 3) { print "too few samples after warm-up"; exit }
    from = int(n * 2 / 3) + 1; mr = 0; mf = 0; ms = 0
    for (i = from; i <= n; i++) { if (rss[i] > mr) mr = rss[i]; if (fd[i] > mf) mf = fd[i]; if (s[i] > ms) ms = s[i] }
    bad = ""
    if (mr > rss0 * 1.10 && mr - rss0 > 8192) bad = bad sprintf(" rss %d->%d KiB", rss0, mr)
    if (mf > fd0 + 50) bad = bad sprintf(" fds %d->%d", fd0, mf)
    if (ms > s0 * 2 + inflight) bad = bad sprintf(" sessions %d->%d", s0, ms)
    printf "after warm-up: rss %d -> max %d KiB, fds %d -> max %d, live sessions %d -> max %d;%s\n",
      rss0, mr, fd0, mf, s0, ms, (bad == "" ? " no growth beyond the bounds" : " GROWTH:" bad)
  }' "$work/samples")"
echo "soak: $verdict"
tail -n 12 "$work/load.log" | sed 's/^/  loadgen: /'
if [ "$load_status" -ne 0 ]; then
  echo "soak: the load generator reported errors (exit $load_status)" >&2
  exit 1
fi
case "$verdict" in *GROWTH* | *"too few"*) exit 1 ;; esac

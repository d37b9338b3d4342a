#!/usr/bin/env bash
# What a live call costs (issue 11): opens N calls against a fresh `switchboard serve`, each
# getting its CALL_RECEIVED (and, with --press, one key press) but no summary, so every one
# stays live; then reports the server's resident memory per live session and the time to open
# them. With Redis (a redis-server this script starts on a spare port): bytes of Redis memory
# per stored session (MEMORY USAGE on a sample of keys, and used_memory), and bytes and commands
# Redis receives per warm webhook (a key press to a call whose actor is live).
#
#   benches/memory.sh [--sessions N] [--store memory|redis|both] [--press] [--connections C] [--keep]
#     --sessions N     live calls to open (default 100000; 1000000 works on a machine with ~8 GiB free)
#     --store S        memory, redis or both (default both)
#     --press          also press key 1 in every call after opening it (RSS is then measured after it)
#     --connections C  client connections (default 32)
#     --keep           keep the work directory (server logs) and print its path
#
# The server runs with --idle-timeout 24h, --session-ttl 24h and --max-sessions 2N, so nothing
# is passivated, expired or refused during the run. Needs redis-server (`apt-get install
# redis-server`); builds the release binaries with cargo. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

sessions=100000
store=both
press=0
connections=32
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sessions) sessions="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --press) press=1; shift ;;
    --connections) connections="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "memory.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$sessions" "$connections"; do
  case "$n" in '' | *[!0-9]* | 0) echo "memory.sh: --sessions and --connections take a positive integer, not '$n'" >&2; exit 2 ;; esac
done
case "$store" in
  memory) stores=(memory) ;;
  redis) stores=(redis) ;;
  both) stores=(memory redis) ;;
  *) echo "memory.sh: --store is memory, redis or both, not '$store'" >&2; exit 2 ;;
esac

for tool in redis-server redis-cli cargo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "memory.sh: $tool is not installed; it needs redis-server (Debian/Ubuntu: apt-get install redis-server)" >&2
    exit 1
  fi
done

echo "==> building release binaries (switchboard, example open_calls)"
# The whole workspace's bins and examples, not `-p` packages: the same features as the
# workspace build and `cargo test`, so nothing is compiled again after them.
cargo build --release --locked --quiet --workspace --bins --examples
bin="${CARGO_TARGET_DIR:-$root/target}/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-memory.XXXXXX")"
server_pid=""
redis_pid=""
monitor_pid=""
script=memory.sh
# shellcheck source=benches/common.sh
source "$root/benches/common.sh"
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
kv() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" "$2" | head -1; }

# A gauge from the server's GET /metrics (plain bash: curl may not be installed).
metric() { # port name
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  line="$(grep -E "^$2(\{\})? " <&3 | head -1 || true)"
  exec 3<&-
  echo "${line##* }"
}

if [[ " ${stores[*]} " == *" redis "* ]]; then
  redis_port="$(spare_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" --logfile "$work/redis.log" &
  redis_pid=$!
  wait_port "$redis_pid" "$redis_port" redis
fi
rcli() { redis-cli -p "$redis_port" "$@"; }
# "commands bytes": total_commands_processed and total_net_input_bytes, from one INFO.
redis_counters() {
  rcli info stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { c = $2 }
    $1 == "total_net_input_bytes" { b = $2 } END { print c, b }'
}
info_field() { rcli info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }

run_id=1
results=()
for s in "${stores[@]}"; do
  port="$(spare_port)"
  metrics_port="$(spare_port)"
  [ "$metrics_port" != "$port" ] || metrics_port=$((port + 1))
  args=(serve --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics_port"
    --idle-timeout 24h --session-ttl 24h --max-sessions $((sessions * 2)))
  if [ "$s" = redis ]; then
    rcli flushall >/dev/null
    args+=(--redis "redis://127.0.0.1:$redis_port/0")
  fi
  echo "==> $s: opening $sessions live calls ($connections connections)"
  RUST_LOG="${RUST_LOG:-warn}" "$bin/switchboard" "${args[@]}" 2>"$work/$s.log" >&2 &
  server_pid=$!
  wait_port "$server_pid" "$port" "$s"
  sleep 0.5
  rss0="$(rss_kib "$server_pid")"
  [ "$s" = redis ] && used0="$(info_field memory used_memory)"

  run_id=$((run_id + 1))
  "$bin/examples/open_calls" --target "127.0.0.1:$port" --calls "$sessions" \
    --connections "$connections" --run "$run_id" >"$work/open-$s.txt"
  cat "$work/open-$s.txt"
  open_s="$(kv seconds "$work/open-$s.txt")"
  open_rate="$(kv rate "$work/open-$s.txt")"
  action_id="$(kv action_id "$work/open-$s.txt")"

  # The warm webhooks: a key press to calls whose actor is live. With --press every call
  # gets one (before RSS is read); otherwise, in Redis mode, the first half of the calls, at
  # most 10,000 (after RSS and the stored sizes are read).
  warm=0
  if [ "$press" = 1 ]; then
    warm="$sessions"
  elif [ "$s" = redis ]; then
    warm=$((sessions / 2 < 10000 ? sessions / 2 : 10000))
    [ "$warm" -ge 1 ] || warm=1
  fi
  warm_cmds="-"
  warm_reqs="-"
  warm_bytes="-"
  press_calls() {
    local c0=0 b0=0 c1=0 b1=0
    if [ "$s" = redis ]; then
      read -r c0 b0 < <(redis_counters)
      # MONITOR tells the server's own requests from the commands its scripts run ("[0 lua]").
      redis-cli -p "$redis_port" monitor >"$work/monitor.txt" &
      monitor_pid=$!
      sleep 0.2
    fi
    "$bin/examples/open_calls" --target "127.0.0.1:$port" --calls "$warm" --connections "$connections" \
      --run "$run_id" --press 1 --action-id "$action_id" >"$work/press-$s.txt"
    echo "    pressed key 1 in $warm calls: $(cat "$work/press-$s.txt")"
    if [ "$s" = redis ]; then
      sleep 0.2
      kill "$monitor_pid" 2>/dev/null || true
      wait "$monitor_pid" 2>/dev/null || true
      monitor_pid=""
      read -r c1 b1 < <(redis_counters)
      # Less the first INFO and the MONITOR, which count inside the window.
      warm_cmds="$(awk -v a="$c0" -v b="$c1" -v n="$warm" 'BEGIN { printf "%.2f", (b - a - 2) / n }')"
      warm_bytes="$(awk -v a="$b0" -v b="$b1" -v n="$warm" 'BEGIN { printf "%.0f", (b - a) / n }')"
      warm_reqs="$(grep -c '^[0-9.]* \[[0-9]* 127\.0\.0\.1:' "$work/monitor.txt" |
        awk -v n="$warm" '{ printf "%.2f", $1 / n }')"
      rm -f "$work/monitor.txt"
    fi
  }
  if [ "$press" = 1 ]; then press_calls; fi
  sleep 0.5
  rss1="$(rss_kib "$server_pid")"
  live="$(metric "$metrics_port" switchboard_sessions_live)"

  mem_key="-"
  mem_key_pressed="-"
  used_per="-"
  if [ "$s" = redis ]; then
    used1="$(info_field memory used_memory)"
    used_per="$(awk -v a="$used0" -v b="$used1" -v n="$sessions" 'BEGIN { printf "%.0f", (b - a) / n }')"
    # MEMORY USAGE of up to 200 keys spread over the calls (the first $warm ones got a key
    # press if any did; the sample then starts past them).
    sample_usage() { # first last
      local first="$1" last="$2" step i total=0 count=0 key usage
      [ "$last" -ge "$first" ] || { echo "-"; return; }
      step=$(((last - first + 1) / 200)); [ "$step" -ge 1 ] || step=1
      for ((i = first; i <= last; i += step)); do
        key="$(printf 'switchboard:{%08x-0000-4000-8000-%012x}:state' "$run_id" "$i")"
        usage="$(rcli memory usage "$key" samples 0)"
        if [ -n "$usage" ]; then total=$((total + usage)); count=$((count + 1)); fi
      done
      if [ "$count" -gt 0 ]; then echo $((total / count)); else echo "-"; fi
    }
    if [ "$press" = 1 ]; then
      mem_key_pressed="$(sample_usage 0 $((sessions - 1)))"
    else
      mem_key="$(sample_usage 0 $((sessions - 1)))"
      press_calls
      mem_key_pressed="$(sample_usage 0 $((warm - 1)))"
    fi
    stored="$(rcli dbsize)"
    echo "    Redis holds $stored keys"
  fi
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""

  results+=("$(awk -v s="$s" -v n="$sessions" -v r0="$rss0" -v r1="$rss1" -v t="$open_s" -v rate="$open_rate" \
    -v live="${live:-?}" -v used="$used_per" -v mk="$mem_key" -v mkp="$mem_key_pressed" -v wb="$warm_bytes" -v wc="$warm_cmds" -v wr="$warm_reqs" \
    'BEGIN {
       printf "| %-6s | %9d | %9s | %8.1f | %8.1f | %10.0f | %7.2f | %9.0f | %10s | %10s | %11s | %9s | %8s | %8s |",
         s, n, live, r0 / 1024, r1 / 1024, (r1 - r0) * 1024 / n, t, rate, used, mk, mkp, wb, wr, wc
     }')")
done

echo
echo "Switchboard memory bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n), $(nproc) cores, $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'no git')"
echo "$sessions live calls (CALL_RECEIVED$([ "$press" = 1 ] && echo ' + key 1'), no summary), $connections connections"
echo
printf '| %-6s | %9s | %9s | %8s | %8s | %10s | %7s | %9s | %10s | %10s | %11s | %9s | %8s | %8s |\n' \
  store calls live 'RSS0 MiB' 'RSS1 MiB' 'B/session' 'open s' 'calls/s' 'Redis B/s' 'KEY B' 'KEY B (key)' 'B/warm wh' 'req/wh' 'cmds/wh'
printf '|%s|\n' '--------|----------:|----------:|---------:|---------:|-----------:|--------:|----------:|-----------:|-----------:|------------:|----------:|---------:|---------:'
printf '%s\n' "${results[@]}"
echo
echo "columns: live = the server's switchboard_sessions_live gauge after opening; RSS0/RSS1 = VmRSS of the"
echo "  server before and after; B/session = (RSS1 - RSS0) / calls; open s, calls/s = time to open them;"
echo "  Redis B/s = Redis used_memory growth per stored session; KEY B = MEMORY USAGE of a stored session"
echo "  (mean of a sample of up to 200 keys) after CALL_RECEIVED, and after a key press; B/warm wh = bytes"
echo "  Redis received per key press to a call whose actor is live; req/wh = the server's requests to Redis"
echo "  per such webhook (counted with MONITOR); cmds/wh = commands Redis ran per webhook, those its scripts"
echo "  run included (INFO total_commands_processed)."

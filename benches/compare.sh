#!/usr/bin/env bash
# Switchboard side by side with the servers a user would compare it with (issue 11), in one run:
#   A  bare axum: parse the webhook into a struct, answer a constant menu (benches/examples/bare_axum.rs)
#   B  switchboard serve                      (memory store)
#   C  naive axum + Redis: GET + SET EX per webhook, DEL on the summary (benches/examples/naive_redis.rs)
#   D  switchboard serve --redis URL
# The client is wrk playing whole calls (benches/wrk/call.lua: CALL_RECEIVED, keys 1, 9, 3,
# SESSION_SUMMARY), one connection per wrk thread, the same for every server.
#
# Rounds alternate A B C D, A B C D, ... so that a slow minute of the (shared) machine hits every
# server alike; the table shows medians over the rounds. Every run starts its server afresh and
# flushes Redis first, then warms up for a second before measuring.
#
#   benches/compare.sh [--rounds N] [--duration S] [--threads T] [--quick] [--keep]
#     --rounds N     rounds of A B C D (default 3)
#     --duration S   seconds of each measured run (default 10)
#     --threads T    wrk threads = connections (default 16)
#     --open-rate R  open-loop rate in webhooks/s for every server (default: half each server's
#                    own median closed-loop rate)
#     --quick        1 round of 2 s, for CI smoke runs
#     --keep         keep the work directory (logs, raw wrk output) and print its path
#
# Needs wrk and redis-server (`apt-get install wrk redis-server`); builds release binaries with
# cargo (CARGO_TARGET_DIR is honoured). All traffic stays on 127.0.0.1. Exits 1 when any server
# answered a non-2xx status or a wrong menu node, or died (the figures would be meaningless).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

rounds=3
duration=10
threads=16
open_rate=""
warmup=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --open-rate) open_rate="$2"; shift 2 ;;
    --quick) rounds=1; duration=2; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$rounds" "$duration" "$threads"; do
  case "$n" in '' | *[!0-9]* | 0) echo "compare.sh: --rounds, --duration and --threads take a positive integer, not '$n'" >&2; exit 2 ;; esac
done

for tool in wrk redis-server redis-cli cargo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "compare.sh: $tool is not installed; it needs wrk and redis-server (Debian/Ubuntu: apt-get install wrk redis-server)" >&2
    exit 1
  fi
done

echo "==> building release binaries (switchboard, examples bare_axum and naive_redis)"
# The whole workspace's bins and examples, not `-p` packages: the same features as the
# workspace build and `cargo test`, so nothing is compiled again after them.
cargo build --release --locked --quiet --workspace --bins --examples
bin="${CARGO_TARGET_DIR:-$root/target}/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-compare.XXXXXX")"
# The processes this script started and that still run: the current server, redis-server.
server_pid=""
redis_pid=""
monitor_pid=""
script=compare.sh
# shellcheck source=benches/common.sh
source "$root/benches/common.sh"
trap cleanup EXIT

# CPU time of a process (all its threads), in clock ticks: utime + stime of /proc/PID/stat.
# The fields are counted after the ")" that closes the command name.
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# CPU busy ticks of the whole machine (every process), from /proc/stat.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
hz="$(getconf CLK_TCK)"
cores="$(nproc)"

redis_port="$(spare_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
wait_port "$redis_pid" "$redis_port" redis
redis_url="redis://127.0.0.1:$redis_port/0"
rcli() { redis-cli -p "$redis_port" "$@"; }
# "commands bytes": total_commands_processed and total_net_input_bytes, from one INFO.
redis_counters() {
  rcli info stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { c = $2 }
    $1 == "total_net_input_bytes" { b = $2 } END { print c, b }'
}

start_server() { # name port
  local log="$work/$1.log"
  case "$1" in
    A) "$bin/examples/bare_axum" "127.0.0.1:$2" 2>"$log" & ;;
    B) "$bin/switchboard" serve --listen "127.0.0.1:$2" 2>"$log" >&2 & ;;
    C) "$bin/examples/naive_redis" "127.0.0.1:$2" "$redis_url" 2>"$log" & ;;
    D) "$bin/switchboard" serve --listen "127.0.0.1:$2" --redis "$redis_url" 2>"$log" >&2 & ;;
  esac
  server_pid=$!
  wait_port "$server_pid" "$2" "$1"
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

kv() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" "$2" | head -1; }

# One measured run: prints a result line to results.tsv.
#   columns: server round rate p50_us p99_us server_us redis_us wrk_us webhooks cmds bytes_in other_pct
#            non2xx wrong socket_errors sched_p50_us sched_p99_us late requests
run=0
measure() { # server round threads [rate]
  local name="$1" round="$2" t="$3" rate="${4:-}" port out tfile
  run=$((run + 1))
  port="$(spare_port)"
  rcli flushall >/dev/null
  start_server "$name" "$port"
  local url="http://127.0.0.1:$port/webhooks" reqs="-"
  # During the (unmeasured) warm-up of a Redis server, MONITOR counts the server's own requests
  # to Redis, told apart from the commands its scripts run ("[0 lua]"); it slows Redis down,
  # which does not change the count.
  if [ -z "$rate" ] && { [ "$name" = C ] || [ "$name" = D ]; }; then
    redis-cli -p "$redis_port" monitor >"$work/monitor.txt" &
    monitor_pid=$!
    sleep 0.2
  fi
  CALL_RUN="$(printf '%x' $((run * 4096 + RANDOM)))" wrk -t"$t" -c"$t" -d"${warmup}s" \
    -s benches/wrk/call.lua "$url" >"$work/warmup-$run.txt" 2>&1
  if [ -n "$monitor_pid" ]; then
    sleep 0.2
    kill "$monitor_pid" 2>/dev/null || true
    wait "$monitor_pid" 2>/dev/null || true
    monitor_pid=""
    # Round trips: one per command, but a MULTI ... EXEC transaction (sent as one pipeline,
    # answered at once: D's summary) counts once; MONITOR prints its commands between the two.
    reqs="$(awk -v n="$(kv webhooks "$work/warmup-$run.txt")" '
      $2 ~ /^\[[0-9]+$/ && $3 ~ /^127\.0\.0\.1:/ {
        client = $3
        if (client in open) { if ($4 == "\"EXEC\"" || $4 == "\"DISCARD\"") delete open[client]; next }
        if ($4 == "\"MULTI\"") open[client] = 1
        trips++
      }
      END { printf "%.3f", (n > 0 ? trips / n : 0) }' "$work/monitor.txt")"
    rm -f "$work/monitor.txt"
  fi
  out="$work/run-$run-$name.txt"
  tfile="$work/time-$run.txt"
  local s0 r0 m0 c0 b0 s1 r1 m1 c1 b1
  s0="$(ticks "$server_pid")"; r0="$(ticks "$redis_pid")"; m0="$(machine_ticks)"
  read -r c0 b0 < <(redis_counters)
  TIMEFORMAT='%U %S'
  { time CALL_RUN="$(printf '%x' $((run * 4096 + RANDOM)))" CALL_RATE="$rate" CALL_CONNECTIONS="$t" \
    wrk -t"$t" -c"$t" -d"${duration}s" --latency -s benches/wrk/call.lua "$url" >"$out" 2>&1; } 2>"$tfile"
  s1="$(ticks "$server_pid")"; r1="$(ticks "$redis_pid")"; m1="$(machine_ticks)"
  read -r c1 b1 < <(redis_counters)
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "compare.sh: server $name died during the run; the end of its log:" >&2
    tail -20 "$work/$name.log" >&2 || true
    exit 1
  fi
  stop_server
  if ! grep -q '^CALLRESULT' "$out"; then
    echo "compare.sh: wrk printed no result against $name; its output:" >&2
    cat "$out" >&2
    exit 1
  fi
  local webhooks wrk_s
  webhooks="$(kv webhooks "$out")"
  wrk_s="$(awk '{ print $1 + $2 }' "$tfile")"
  # Redis's own CPU and commands count only where the server uses it.
  case "$name" in A | B) r1="$r0"; c1="$c0"; b1="$b0" ;; esac
  # The first INFO is one command of ours inside the window: subtract it.
  awk -v n="$name" -v r="$round" -v wh="$webhooks" -v hz="$hz" -v cores="$cores" -v dur="$(kv seconds "$out")" \
    -v s="$((s1 - s0))" -v rd="$((r1 - r0))" -v m="$((m1 - m0))" -v w="$wrk_s" \
    -v c="$((c1 - c0))" -v b="$((b1 - b0))" \
    -v rate="$(kv rate "$out")" -v p50="$(kv p50_us "$out")" -v p99="$(kv p99_us "$out")" \
    -v sp50="$(kv sched_p50_us "$out")" -v sp99="$(kv sched_p99_us "$out")" -v late="$(kv late_1ms "$out")" \
    -v non2xx="$(kv non2xx "$out")" -v wrong="$(kv wrong "$out")" -v sock="$(kv socket_errors "$out")" -v reqs="$reqs" \
    'BEGIN {
       us = 1e6 / hz
       cmds = (n == "C" || n == "D") ? (c > 0 ? c - 1 : 0) / wh : 0
       other = (m - s - rd - w * hz) / (dur * hz * cores) * 100
       if (other < 0) other = 0
       printf "%s\t%s\t%.1f\t%d\t%d\t%.2f\t%.2f\t%.2f\t%d\t%.3f\t%.1f\t%.1f\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n",
         n, r, rate, p50, p99, s * us / wh, rd * us / wh, w * 1e6 / wh, wh, cmds, b / wh, other,
         non2xx, wrong, sock, (sp50 == "" ? "-" : sp50), (sp99 == "" ? "-" : sp99), (late == "" ? "-" : late), reqs
     }' >>"$work/results.tsv"
  awk -F'\t' 'END { printf "    %s round %s: %8.0f webhooks/s  p99 %5.2f ms  CPU (server + Redis) %6.1f us/webhook  unattributed CPU %4.1f%%\n", $1, $2, $3, $5 / 1000, $6 + $7, $12 }' \
    "$work/results.tsv"
}

servers=(A B C D)
label() {
  case "$1" in
    A) echo "A bare axum" ;;
    B) echo "B switchboard (memory)" ;;
    C) echo "C naive axum+Redis" ;;
    D) echo "D switchboard --redis" ;;
  esac
}

echo "==> closed loop: $rounds round(s) of A B C D, ${duration}s each (+${warmup}s warm-up), wrk -t$threads -c$threads"
: >"$work/results.tsv"
for round in $(seq 1 "$rounds"); do
  for s in "${servers[@]}"; do
    measure "$s" "$round" "$threads"
  done
done
cp "$work/results.tsv" "$work/closed.tsv"

# Median of column $2 (1-based) over the rows of server $1 in file $3.
median() {
  awk -F'\t' -v s="$1" -v c="$2" '$1 == s { print $c }' "$3" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A rate p50 p99 srv red wrkus cmds bytes other reqs
for s in "${servers[@]}"; do
  rate[$s]="$(median "$s" 3 "$work/closed.tsv")"
  p50[$s]="$(median "$s" 4 "$work/closed.tsv")"
  p99[$s]="$(median "$s" 5 "$work/closed.tsv")"
  srv[$s]="$(median "$s" 6 "$work/closed.tsv")"
  red[$s]="$(median "$s" 7 "$work/closed.tsv")"
  wrkus[$s]="$(median "$s" 8 "$work/closed.tsv")"
  cmds[$s]="$(median "$s" 10 "$work/closed.tsv")"
  bytes[$s]="$(median "$s" 11 "$work/closed.tsv")"
  other[$s]="$(median "$s" 12 "$work/closed.tsv")"
  reqs[$s]="$(median "$s" 19 "$work/closed.tsv")"
done

echo
echo "==> client check: is wrk the limit? bare axum (A) with twice the wrk threads"
: >"$work/results.tsv"
measure A check "$((threads * 2))"
check_rate="$(awk -F'\t' '{ print $3 }' "$work/results.tsv")"

echo
echo "==> open loop: each server at a fixed rate (${open_rate:-half its own median closed-loop rate}), ${duration}s"
: >"$work/results.tsv"
declare -A target
for s in "${servers[@]}"; do
  target[$s]="${open_rate:-$(awk -v r="${rate[$s]}" 'BEGIN { printf "%d", r / 2 }')}"
  measure "$s" open "$threads" "${target[$s]}"
done
cp "$work/results.tsv" "$work/open.tsv"

# A non-2xx or wrong answer makes the figures meaningless: fatal. A socket error (a timeout of
# wrk's 2 s, say, on an overloaded machine) is worth knowing but not fatal.
# The naive server (C) is not idempotent: a webhook that reaches it twice advances its call
# twice, and wrk can repeat one in open loop. Its wrong answers are reported, not fatal; any
# other server's fail the run.
bad="$(cat "$work/closed.tsv" "$work/open.tsv" | awk -F'\t' '$1 != "C" && $13 + $14 > 0 { printf "%s round %s: %d non-2xx, %d wrong answers\n", $1, $2, $13, $14 }')"
naive_wrong="$(cat "$work/closed.tsv" "$work/open.tsv" | awk -F'\t' '$1 == "C" && $13 + $14 > 0 { printf "%s round %s: %d non-2xx, %d wrong answers\n", $1, $2, $13, $14 }')"
socket="$(cat "$work/closed.tsv" "$work/open.tsv" | awk -F'\t' '$15 > 0 { printf "%s round %s: %d socket errors (connect, read, write or timeout)\n", $1, $2, $15 }')"

echo
echo "Switchboard benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n), $cores cores, $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'no git')"
echo "closed loop, medians of $rounds round(s) of ${duration}s; wrk -t$threads -c$threads, whole calls (5 webhooks each)"
echo
printf '| %-24s | %10s | %5s | %5s | %7s | %7s | %9s | %9s | %9s | %5s | %5s | %9s | %10s | %11s |\n' \
  server webhooks/s '×A' '×C' 'p50 ms' 'p99 ms' 'server µs' 'Redis µs' 'total µs' 'CPU×A' 'CPU×C' 'Redis req' 'Redis cmds' 'Redis bytes'
printf '|%s|\n' '--------------------------|-----------:|------:|------:|--------:|--------:|----------:|----------:|----------:|------:|------:|----------:|-----------:|------------:'
for s in "${servers[@]}"; do
  awk -v l="$(label "$s")" -v r="${rate[$s]}" -v ra="${rate[A]}" -v rc="${rate[C]}" \
    -v p50="${p50[$s]}" -v p99="${p99[$s]}" -v sv="${srv[$s]}" -v rd="${red[$s]}" \
    -v ta="$(awk -v a="${srv[A]}" -v b="${red[A]}" 'BEGIN { print a + b }')" \
    -v tc="$(awk -v a="${srv[C]}" -v b="${red[C]}" 'BEGIN { print a + b }')" \
    -v cm="${cmds[$s]}" -v by="${bytes[$s]}" -v rq="${reqs[$s]}" -v s="$s" \
    'BEGIN {
       t = sv + rd
       redis = (s == "C" || s == "D")
       printf "| %-24s | %10.0f | %5.2f | %5.2f | %7.2f | %7.2f | %9.1f | %9s | %9.1f | %5.2f | %5.2f | %9s | %10s | %11s |\n",
         l, r, r / ra, r / rc, p50 / 1000, p99 / 1000, sv, redis ? sprintf("%.1f", rd) : "-", t, t / ta, t / tc,
         redis ? sprintf("%.2f", rq) : "-", redis ? sprintf("%.2f", cm) : "-", redis ? sprintf("%.0f", by) : "-"
     }'
done

echo
echo "open loop (latency counted from each request's scheduled send time; wrk's own p99 is from the actual send)"
echo
printf '| %-24s | %12s | %10s | %12s | %12s | %12s | %14s |\n' server 'target /s' 'achieved /s' 'p50 ms' 'p99 ms' 'wrk p99 ms' 'sent >1 ms late'
printf '|%s|\n' '--------------------------|-------------:|-----------:|-------------:|-------------:|-------------:|----------------:'
for s in "${servers[@]}"; do
  awk -F'\t' -v s="$s" -v l="$(label "$s")" -v t="${target[$s]}" '$1 == s {
    printf "| %-24s | %12d | %10.0f | %12.2f | %12.2f | %12.2f | %14s |\n", l, t, $3, $16 / 1000, $17 / 1000, $5 / 1000, $18
  }' "$work/open.tsv"
done

echo
awk -v a="${rate[A]}" -v c="$check_rate" -v t="$threads" -v w="${wrkus[A]}" -v sv="${srv[A]}" \
  'BEGIN {
     printf "client check: A at wrk -t%d: %.0f webhooks/s (median); at -t%d: %.0f webhooks/s (%+.0f%%).\n", t, a, 2 * t, c, (c / a - 1) * 100
     printf "  wrk itself used %.1f µs of CPU per webhook against A (A used %.1f µs); client and servers share the cores.\n", w, sv
     if (c > a * 1.15) print "  WARNING: more client threads raised the baseline by more than 15%: the client may be limiting A."
     else print "  More client threads do not raise the baseline much: the server, not the number of connections, sets the rate."
   }'
echo "client CPU per webhook (wrk, median): A $(printf '%.1f' "${wrkus[A]}"), B $(printf '%.1f' "${wrkus[B]}"), C $(printf '%.1f' "${wrkus[C]}"), D $(printf '%.1f' "${wrkus[D]}") µs"
echo "CPU busy but not charged to the server, Redis or wrk during the closed-loop runs (other processes, and"
echo "  kernel time such as loopback softirqs; median share of all $cores cores): A ${other[A]}%, B ${other[B]}%, C ${other[C]}%, D ${other[D]}%"
echo
echo "columns: webhooks/s = completed requests per second; ×A, ×C = ratio to bare axum and to the naive Redis server;"
echo "  µs = CPU time (user+system, /proc/PID/stat) per webhook of the server and of redis-server; total = both;"
echo "  CPU×A, CPU×C = total CPU per webhook over A's and C's; Redis req = the server's round trips to Redis per"
echo "  webhook (MONITOR, during the warm-up; a MULTI ... EXEC transaction counts once); Redis cmds = commands Redis ran per webhook, those inside scripts"
echo "  included (INFO total_commands_processed); Redis bytes = bytes Redis received per webhook"
echo "  (total_net_input_bytes). A call is 5 webhooks: CALL_RECEIVED, 3 keys, the summary."

if [ -n "$socket" ]; then
  echo
  echo "warning: wrk saw socket errors; the rounds concerned count fewer webhooks:"
  echo "$socket"
fi
if [ -n "$naive_wrong" ]; then
  echo
  echo "warning: the naive server answered some webhooks wrongly (it re-applies a repeated webhook):"
  echo "$naive_wrong"
fi
if [ -n "$bad" ]; then
  echo
  echo "compare.sh: some servers did not answer every webhook as expected, so their figures do not count:" >&2
  echo "$bad" >&2
  grep -h '^CALLSAMPLE' "$work"/run-*.txt | head -5 >&2 || true
  exit 1
fi

#!/usr/bin/env bash
# A cluster rehearsal without Kubernetes: what a rollout does to live calls, on one machine.
#
# Starts a redis-server, three `switchboard serve --redis` replicas and HAProxy (Debian's
# package) in front of them, as a Kubernetes Service plus an ingress would be: health checks on
# /readyz, and a retry on another replica when a connection fails or a replica closes it without
# an answer (webhooks are idempotent by eventId, so a retried delivery is answered, not applied,
# twice). Then drives it with `switchboard-loadgen` (the 8x8 platform's side of real calls, 2 % of
# deliveries sent twice at once, whose answers must be byte-identical) for a set time, and
# meanwhile:
#   1. a rolling restart of the three replicas, one at a time, as the Deployment does it: the
#      replica is taken out of the balancer (the endpoint removal a preStop pause waits for),
#      SIGTERMed, its drain awaited (it must exit 0), started again, and put back once /readyz
#      answers 200 and the balancer's health check agrees;
#   2. one replica SIGKILLed without warning (the balancer's health check and retries must cover
#      it) and brought back;
#   3. a scale-in from 3 to 2: one replica drained and stopped for good.
# Prints the generator's report and HAProxy's per-replica figures, and exits 1 on any failed
# call, protocol violation or inconsistent duplicate (any error the generator counts), on a
# replica that did not drain cleanly, or when the steps outlasted the load.
#
#   deploy/rehearse.sh [--quick] [--duration D] [--rate R] [--without-retries] [--keep]
#     --quick            the CI size: 40 s of load at 25 calls/s (default: 150 s at 60 calls/s)
#     --duration D       seconds of load (at least 30); the steps are spaced over about its
#                        first half (2 s apart at 30 s, 10 s apart at 150 s)
#     --rate R           calls started per second (open loop; each call speaks 40 ms a step)
#     --without-retries  the negative control: HAProxy retries nothing, so what reached the
#                        SIGKILLed replica before its health check failed must show up as
#                        failed calls, and the rehearsal must exit 1
#     --keep             keep the work directory (every log, the JSON report) and print its path
#
# Needs redis-server and haproxy (Debian: apt-get install redis-server haproxy; it installs
# them when missing and it runs as root), curl, python3 (to talk to HAProxy's admin socket) and
# cargo (it builds the release binaries; CARGO_TARGET_DIR is honoured). Every process it starts
# listens on 127.0.0.1, on spare ports, and is killed when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
script=rehearse.sh

duration=150
rate=60
keep=0
retries=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=40; rate=25; shift ;;
    --without-retries) retries=0; shift ;;
    --duration) duration="${2:-}"; shift 2 || shift ;;
    --rate) rate="${2:-}"; shift 2 || shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "$script: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$duration" "$rate"; do
  case "$n" in '' | *[!0-9]* | 0) echo "$script: --duration and --rate take a positive integer, not '$n'" >&2; exit 2 ;; esac
done
if [ "$duration" -lt 30 ]; then
  echo "$script: --duration $duration is too short for the rehearsal's steps; give at least 30" >&2
  exit 2
fi

# --- tools ---------------------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "$script: ${missing[*]} missing; install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "==> installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in python3 cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$script: $tool is required and not installed" >&2; exit 1; }
done

echo "==> building release binaries (switchboard, switchboard-loadgen)"
cargo build --release --locked --quiet --workspace --bins
bin="${CARGO_TARGET_DIR:-$root/target}/release"

# --- processes -------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-rehearse.XXXXXX")"
# benches/common.sh's cleanup kills every pid in these three lists: the replicas running now
# (server_pid, kept current by start/stop below), Redis, and HAProxy plus the generator.
server_pid=""
redis_pid=""
monitor_pid=""
# shellcheck source=benches/common.sh
source "$root/benches/common.sh"
trap cleanup EXIT

fail() {
  echo "$script: $*" >&2
  keep=1 # the logs tell what happened; cleanup prints where they are
  exit 1
}
say() { printf '[%5ss] %s\n' "$((SECONDS - t0))" "$*"; }

redis_port="$(spare_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_port "$redis_pid" "$redis_port" redis

# One slot per replica, as a Deployment's pods behind a Service: r1, r2, r3.
slots=(r1 r2 r3)
declare -A port pid
taken=" $redis_port "
# A spare port none of ours took yet (spare_port only checks that nothing listens now); the
# caller adds it to $taken (this runs in a subshell).
fresh_port() {
  local p
  p="$(spare_port)"
  while [[ "$taken" == *" $p "* ]]; do p="$(spare_port)"; done
  echo "$p"
}
for slot in "${slots[@]}"; do
  port[$slot]="$(fresh_port)"
  taken="$taken${port[$slot]} "
done

refresh_pids() {
  local slot list=""
  for slot in "${slots[@]}"; do
    [ -n "${pid[$slot]:-}" ] && list="$list ${pid[$slot]}"
  done
  server_pid="$list"
}

# Starts the replica of SLOT (its log: $work/SLOT.N.log, N counting its starts) and waits for
# its /readyz to answer 200.
declare -A starts
start() { # slot
  local slot="$1" n
  n=$((${starts[$slot]:-0} + 1))
  starts[$slot]=$n
  RUST_LOG=info NO_COLOR=1 "$bin/switchboard" serve --listen "127.0.0.1:${port[$slot]}" \
    --redis "redis://127.0.0.1:$redis_port/0" --redis-prefix rehearsal --shards 1 \
    --shutdown-grace 10s >"$work/$slot.$n.log" 2>&1 &
  pid[$slot]=$!
  refresh_pids
  wait_port "${pid[$slot]}" "${port[$slot]}" "$slot.$n"
  for _ in $(seq 1 200); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[$slot]}/readyz")" = 200 ]; then
      return 0
    fi
    sleep 0.05
  done
  fail "$slot did not become ready (GET /readyz) within 10 s; its log: $work/$slot.$n.log"
}

# CPU (µs) and peak resident memory (KiB) of the replicas that ran, added up / the largest,
# read just before each one is signalled (its drain's own CPU is not counted).
replica_cpu_us=0
replica_peak_kib=0
clk_tck="$(getconf CLK_TCK)"
cpu_us() { awk -v hz="$clk_tck" '{ sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000000 / hz }' "/proc/$1/stat"; }
account() { # pid
  local hwm
  replica_cpu_us=$((replica_cpu_us + $(cpu_us "$1")))
  hwm="$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status")"
  [ "$hwm" -gt "$replica_peak_kib" ] && replica_peak_kib=$hwm
  return 0
}

# SIGTERMs the replica of SLOT and waits for its drain; it must exit 0 with a complete shutdown.
stop() { # slot
  local slot="$1" status=0 log
  log="$work/$slot.${starts[$slot]}.log"
  account "${pid[$slot]}"
  kill -TERM "${pid[$slot]}"
  wait "${pid[$slot]}" || status=$?
  pid[$slot]=""
  refresh_pids
  [ "$status" = 0 ] || fail "$slot exited $status after SIGTERM (expected 0); its log: $log"
  grep -q 'shutdown complete' "$log" || fail "$slot did not log a complete shutdown; its log: $log"
  if grep -q 'grace period ended with webhooks still in flight\|could not be made durable' "$log"; then
    fail "$slot did not drain cleanly: $(grep -m1 'grace period\|durable' "$log")"
  fi
}

# SIGKILLs the replica of SLOT: no drain, no flush, as a node failure.
crash() { # slot
  local slot="$1"
  account "${pid[$slot]}"
  kill -KILL "${pid[$slot]}"
  wait "${pid[$slot]}" 2>/dev/null || true
  pid[$slot]=""
  refresh_pids
}

for slot in "${slots[@]}"; do start "$slot"; done

# --- the balancer ----------------------------------------------------------------------------
lb_port="$(fresh_port)"
taken="$taken$lb_port "
{
  cat <<EOF
# Written by deploy/rehearse.sh: a Kubernetes Service + ingress in front of three replicas.
global
    stats socket $work/haproxy.sock mode 600 level admin
    maxconn 4000

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 10s
    timeout http-keep-alive 2s
EOF
  if [ "$retries" = 1 ]; then
    cat <<'EOF'
    # A failed connection, or a replica that closed the connection without answering (it was
    # killed mid-request), is retried on another replica; a webhook is idempotent by eventId.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
EOF
  else
    printf '    # --without-retries: the negative control.\n    retries 0\n'
  fi
  cat <<EOF

frontend webhooks
    bind 127.0.0.1:$lb_port
    default_backend switchboard

backend switchboard
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fastinter 100ms downinter 200ms rise 2 fall 2
EOF
  for slot in "${slots[@]}"; do
    printf '    server %s 127.0.0.1:%s check\n' "$slot" "${port[$slot]}"
  done
} >"$work/haproxy.cfg"
haproxy -c -q -f "$work/haproxy.cfg" || fail "HAProxy refused the generated configuration ($work/haproxy.cfg)"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
monitor_pid=$!
wait_port "$monitor_pid" "$lb_port" haproxy

# One command on HAProxy's admin socket; prints the answer.
admin() {
  python3 - "$work/haproxy.sock" "$*" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode())
EOF
}
# The balancer's status of SLOT (UP, DOWN, MAINT, DRAIN, ...).
status_of() { # slot
  admin "show stat" | awk -F, -v s="$1" '$1 == "switchboard" && $2 == s { print $18 }'
}
# Waits until the balancer sees SLOT as STATUS (its health check agrees with us).
await_status() { # slot status
  for _ in $(seq 1 200); do
    [ "$(status_of "$1")" = "$2" ] && return 0
    sleep 0.05
  done
  fail "HAProxy did not report $1 as $2 within 10 s (it says: $(status_of "$1"))"
}
for slot in "${slots[@]}"; do await_status "$slot" UP; done

# Takes SLOT out of the balancer, as a Service drops a terminating pod's endpoint: no new
# requests, those in flight finish. The pause is the Deployment's preStop.
take_out() { # slot
  admin "set server switchboard/$1 state maint" >/dev/null
  sleep 1
}
put_back() { # slot
  admin "set server switchboard/$1 state ready" >/dev/null
  await_status "$1" UP
}

# --- the rehearsal -------------------------------------------------------------------------
# Duplicates at once and stale copies after the next answer: each must get the same answer
# (a stale copy its first answer or the session's latest one) on whichever replica it lands.
t0=$SECONDS
say "load: $rate calls/s for ${duration}s through http://127.0.0.1:$lb_port (3 replicas, Redis on $redis_port)"
"$bin/switchboard-loadgen" --target "http://127.0.0.1:$lb_port/webhooks" --rate "$rate" \
  --duration "${duration}s" --speak 40ms --duplicate 0.02 --reorder 0.02 --no-progress \
  --json "$work/report.json" >"$work/loadgen.txt" 2>"$work/loadgen.err" &
loadgen_pid=$!
monitor_pid="$monitor_pid $loadgen_pid"
loadgen_alive() { kill -0 "$loadgen_pid" 2>/dev/null; }

# The pause between steps: long enough for calls to cross from replica to replica.
gap=$((duration / 15 > 2 ? duration / 15 : 2))
sleep $((gap > 5 ? gap : 5))
for slot in "${slots[@]}"; do
  say "rolling restart: $slot out of the balancer, SIGTERM, drain"
  take_out "$slot"
  stop "$slot"
  start "$slot"
  put_back "$slot"
  say "rolling restart: $slot back (start #${starts[$slot]}, ready, UP in HAProxy)"
  sleep "$gap"
done

say "crash: SIGKILL r2 (no warning: health checks and retries)"
crash r2
await_status r2 DOWN
sleep 2
start r2
await_status r2 UP
say "crash: r2 back"
sleep "$gap"

say "scale-in 3 -> 2: r3 out, SIGTERM, drain, gone"
take_out r3
stop r3
say "scale-in: r1 and r2 serve alone"

loadgen_alive || fail "the load ended before the steps did (at $((SECONDS - t0)) s): raise --duration"
say "steps done; waiting for the load to end"
loadgen_status=0
wait "$loadgen_pid" || loadgen_status=$?
monitor_pid="${monitor_pid% *}"
for slot in "${slots[@]}"; do
  if [ -n "${pid[$slot]}" ]; then account "${pid[$slot]}"; fi
done
redis_cpu_us="$(cpu_us "$redis_pid")"

# --- the report ------------------------------------------------------------------------------
echo
echo "==> the load generator's report"
cat "$work/loadgen.txt"
echo
echo "==> HAProxy, per replica (retries: deliveries it sent again; redispatches: to another replica)"
admin "show stat" | awk -F, '
  NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i
            printf "%-8s %-6s %9s %8s %12s %9s %9s %8s\n", "replica", "status", "requests", "retries",
              "redispatches", "conn_err", "resp_err", "5xx" }
  $1 == "switchboard" && $2 != "FRONTEND" {
    printf "%-8s %-6s %9s %8s %12s %9s %9s %8s\n", $2, $col["status"], $col["stot"], $col["wretr"],
      $col["wredis"], $col["econ"], $col["eresp"], $col["hrsp_5xx"] }'
echo

[ -s "$work/report.json" ] || fail "the generator wrote no report (exit $loadgen_status): $(tail -n 5 "$work/loadgen.err")"
read -r started completed failed errors violations dup_failures passed < <(jq -r '[
    .calls.started, .calls.completed, (.calls.by_outcome.failed // 0), .errors,
    .protocol_violations.answers, .duplicate_consistency.failures, .passed] | @tsv' "$work/report.json")
sent="$(jq -r .webhooks.sent "$work/report.json")"
if [ "$sent" -gt 0 ]; then
  awk -v r="$replica_cpu_us" -v d="$redis_cpu_us" -v n="$sent" -v m="$replica_peak_kib" 'BEGIN {
    printf "CPU per webhook: %.0f µs in the replicas, %.0f µs in Redis; peak resident memory of a replica: %.0f MiB\n",
      r / n, d / n, m / 1024 }'
fi
echo "rehearsal: $started calls started, $completed completed, $failed failed; $errors errors," \
  "$violations protocol violations, $dup_failures inconsistent duplicates"
if [ "$loadgen_status" != 0 ] || [ "$passed" != true ] || [ "$failed" != 0 ] || [ "$errors" != 0 ] \
  || [ "$violations" != 0 ] || [ "$dup_failures" != 0 ]; then
  fail "FAILED: calls were lost or mishandled during the rollout (generator exit $loadgen_status)"
fi
[ "$completed" -gt 0 ] || fail "FAILED: no call completed"
echo "rehearsal: PASSED (rolling restart, one SIGKILL, scale-in 3 -> 2; zero failed calls)"

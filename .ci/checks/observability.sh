#!/usr/bin/env bash
# Observability checks: the Prometheus alerts and their unit tests, the Grafana dashboard
# type-checked against Grafana's published schema, and the metrics exposition (the telemetry
# crate's sample, and the real server's GET /metrics) linted by promtool.
#
# Run from anywhere (it moves to the repository root); installs what is missing: promtool from
# Debian's `prometheus` package, and pinned npm packages into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Pinned: a new schema release may tighten types; bump deliberately and re-run.
GRAFANA_SCHEMA_VERSION=13.2.3
TYPESCRIPT_VERSION=5.9.3

note() { printf '  -> %s\n' "$*"; }
fail() {
  printf 'observability: %s\n' "$*" >&2
  exit 1
}

work="$(mktemp -d)"
server_pid=""
redis_pid=""
prometheus_pid=""
cleanup() {
  for pid in "$prometheus_pid" "$redis_pid"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- tools ---------------------------------------------------------------------------------
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  note "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v node >/dev/null 2>&1 || fail "node is required for the dashboard check"
command -v npm >/dev/null 2>&1 || fail "npm is required for the dashboard check"

# --- alerts --------------------------------------------------------------------------------
note "promtool check rules / test rules / check config"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
promtool check config --syntax-only deploy/prometheus/prometheus.yml

# --- dashboard -----------------------------------------------------------------------------
note "the dashboard against @grafana/schema@$GRAFANA_SCHEMA_VERSION (tsc $TYPESCRIPT_VERSION)"
schema="$work/schema"
mkdir -p "$schema"
(
  cd "$schema"
  printf '{ "name": "dashboard-check", "private": true }\n' >package.json
  npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
    "@grafana/schema@$GRAFANA_SCHEMA_VERSION" "typescript@$TYPESCRIPT_VERSION" >/dev/null
  cat >tsconfig.json <<'EOF'
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "module": "esnext",
    "moduleResolution": "bundler",
    "target": "es2022",
    "skipLibCheck": true
  },
  "files": ["dashboard.ts"]
}
EOF
)

# The JSON is pasted in as an object literal (not imported with resolveJsonModule), so the
# compiler checks it against the type *contextually*: misspelt or unknown fields are errors
# (excess property checks), and strings are checked against Grafana's string unions.
typecheck() {
  {
    cat <<'EOF'
import type { Dashboard } from '@grafana/schema';

// The dashboard as JSON stores it: Grafana's string enums (ThresholdsMode, FieldColorModeId,
// ...) are their string values on the wire; everything else is checked as declared.
type Wire<T> = T extends string
  ? `${T}`
  : T extends number
    ? number
    : T extends Array<infer U>
      ? Array<Wire<U>>
      : T extends object
        ? { [K in keyof T]: Wire<T[K]> }
        : T;

export const dashboard: Wire<Dashboard> =
EOF
    cat "$1"
    printf ';\n'
  } >"$schema/dashboard.ts"
  (cd "$schema" && ./node_modules/.bin/tsc -p .)
}

for dashboard in deploy/grafana/*.json; do
  typecheck "$dashboard" || fail "$dashboard does not match Grafana's dashboard schema (errors above)"
done

# The check must be able to fail: a number given as a string, and a misspelt field.
mutate() {
  node -e '
    const fs = require("fs");
    const d = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const mutation = process.argv[2];
    if (mutation === "wrong-type") d.panels.find((p) => p.type !== "row").gridPos.h = "8";
    if (mutation === "unknown-field") { d.schemaVersoin = d.schemaVersion; }
    fs.writeFileSync(process.argv[3], JSON.stringify(d));
  ' deploy/grafana/switchboard.json "$1" "$work/mutated.json"
}
for mutation in wrong-type unknown-field; do
  mutate "$mutation"
  if typecheck "$work/mutated.json" >/dev/null 2>&1; then
    fail "the schema check accepted a dashboard with a $mutation: it checks nothing"
  fi
done

# --- exposition ----------------------------------------------------------------------------
note "promtool check metrics: the telemetry crate's sample exposition"
# The workspace's examples (the features of the workspace build and `cargo test`, so nothing
# is compiled again after them), then the telemetry crate's.
cargo build --release --locked --quiet --workspace --bins --examples
bin="${CARGO_TARGET_DIR:-target}/release"
"$bin/examples/exposition" >"$work/sample.prom"
grep -q '^switchboard_build_info{' "$work/sample.prom" || fail "the sample exposition has no build info"
promtool check metrics <"$work/sample.prom" || fail "the sample exposition does not lint (above)"

note "promtool check metrics: GET /metrics of the real server"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# With Redis, so the store's series exist too (the dashboard and the alerts use them).
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
RUST_LOG=info NO_COLOR=1 "$bin/switchboard" serve --listen 127.0.0.1:0 \
  --redis "redis://127.0.0.1:$redis_port" >"$work/server.log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 1 100); do
  addr="$(grep -o 'listening on http://[0-9.:]*' "$work/server.log" | head -n1 | sed 's|listening on http://||')" || true
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/server.log" >&2; fail "switchboard serve did not start"; }

# One call to the bundled restaurant flow, so the per-flow series carry data.
curl -fsS -o /dev/null -H 'content-type: application/json' \
  --data '{"namespace":"VOICE","eventType":"CALL_ACTION","payload":{"eventId":"obs-check-1","callId":"obs-check-call","sessionId":"obs-check-session","subAccountId":"acme_voice","callStatus":"CALL_RECEIVED","callDirection":"INBOUND","callType":"PSTN","source":"+6591110000","destination":"+6568888888","sourceFormat":"MSISDN","destinationFormat":"MSISDN","timestamp":"2026-11-20T09:15:02.118Z"}}' \
  "http://$addr/webhooks" || { cat "$work/server.log" >&2; fail "the server refused a CALL_RECEIVED webhook"; }
curl -fsS "http://$addr/metrics" >"$work/server.prom" || fail "GET http://$addr/metrics failed"
promtool check metrics <"$work/server.prom" || fail "the server's exposition does not lint (above)"
for series in \
  'switchboard_build_info{' \
  'switchboard_webhook_duration_seconds_count{event="call_received",outcome="started"} 1' \
  'switchboard_sessions_started_total{flow="restaurant"} 1' \
  'switchboard_node_visits_total{flow="restaurant",node="main"} 1'; do
  grep -qF "$series" "$work/server.prom" || fail "the server's exposition lacks: $series"
done
note "the server's exposition lints and counts the call"

# --- every PromQL expression against a real Prometheus scraping the server ---------------------
note "the dashboard's and the alerts' PromQL against Prometheus $(prometheus --version 2>&1 | head -n1 | awk '{print $3}') scraping the server"
prom_port="$(free_port)"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: switchboard
    static_configs:
      - targets: ["$addr"]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prometheus_pid=$!
prom="http://127.0.0.1:$prom_port"
scraped=""
for _ in $(seq 1 300); do
  if curl -fsS "$prom/api/v1/query?query=switchboard_build_info" 2>/dev/null | grep -q '"result":\[{'; then
    scraped=yes
    break
  fi
  kill -0 "$prometheus_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$scraped" ] || { cat "$work/prometheus.log" >&2; fail "Prometheus did not scrape the server within 30 s"; }
python3 .ci/checks/promql.py "$prom" deploy/grafana/*.json -- deploy/prometheus/alerts.yml \
  || fail "the dashboard or the alerts query metrics the server does not expose (above)"

# The check must be able to fail: a panel over a metric that does not exist.
node -e '
  const fs = require("fs");
  const d = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  d.panels.find((p) => p.targets && p.targets.length).targets[0].expr = "sum(rate(switchboard_no_such_metric_total[5m]))";
  fs.writeFileSync(process.argv[2], JSON.stringify(d));
' deploy/grafana/switchboard.json "$work/unknown-metric.json"
if python3 .ci/checks/promql.py "$prom" "$work/unknown-metric.json" -- deploy/prometheus/alerts.yml >/dev/null 2>&1; then
  fail "the PromQL check accepted a panel over an unknown metric: it checks nothing"
fi
note "a panel over an unknown metric is caught"

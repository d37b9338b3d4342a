# shellcheck shell=bash disable=SC2154 # the variables below are the sourcing script's
# What benches/compare.sh and benches/memory.sh share, sourced by both after they set `script`
# (their name, for messages), `work` (their work directory), `keep` (1: keep it) and the pid
# variables `server_pid`, `redis_pid`, `monitor_pid` (empty when nothing runs).

# Stops whatever still runs, and removes the work directory unless asked to keep it.
cleanup() {
  local pid
  for pid in $monitor_pid $server_pid $redis_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$keep" = 1 ]; then
    echo "work directory kept: $work"
  else
    rm -rf "$work"
  fi
}

# A port nothing listens on, from a random start below the kernel's ephemeral range (from
# 32768 by default): a port in that range can be the local end of one of our own client
# connections, and binding it then fails (seen once: "Address already in use").
spare_port() {
  local port=$((20000 + RANDOM % 12000))
  while (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}

# Waits until process PID listens on PORT; WHAT names it (and its log, $work/WHAT.log).
wait_port() { # pid port what
  for _ in $(seq 1 200); do
    if ! kill -0 "$1" 2>/dev/null; then
      echo "$script: $3 exited at start; its log:" >&2
      cat "$work/$3.log" >&2 || true
      exit 1
    fi
    if (: </dev/tcp/127.0.0.1/"$2") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "$script: $3 did not listen on 127.0.0.1:$2 within 10 s" >&2
  exit 1
}

#!/usr/bin/env bash
# Stops the LocalStack started by start.sh (by its pid file; the process group it leads with setsid).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PIDFILE="$ROOT/test/.tmp/localstack.pid"

if [[ ! -f "$PIDFILE" ]]; then
  echo "[localstack] no pid file ($PIDFILE); nothing to stop" >&2
  exit 0
fi
pid="$(cat "$PIDFILE")"
if ! kill -0 "$pid" 2>/dev/null; then
  echo "[localstack] pid $pid is not running" >&2
  rm -f "$PIDFILE"
  exit 0
fi

# SIGTERM shuts LocalStack down cleanly; the process leads its own group (setsid in start.sh).
kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 60); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.25
done
if kill -0 "$pid" 2>/dev/null; then
  echo "[localstack] pid $pid did not stop after 15 s; killing" >&2
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$PIDFILE"
echo "[localstack] stopped" >&2

#!/usr/bin/env bash
# Installs LocalStack's open-source core from PyPI into .venv/localstack (once) and starts it on the
# host at 127.0.0.1:4566 (no Docker here). Idempotent: does nothing when LocalStack is already healthy.
#
#   bash test/localstack/start.sh        # install if needed, start, wait until s3 and sqs are available
#   bash test/localstack/stop.sh         # stop it (by pid file)
#
# Environment (all optional):
#   LOCALSTACK_CORE_VERSION   localstack-core version (default 4.13.1: the last release that runs on Python 3.11;
#                             constraints.txt pins its dependencies for that version)
#   LOCALSTACK_PYTHON         python used to create the venv (default python3)
#   LOCALSTACK_SERVICES       SERVICES allow-list (default below)
#   LOCALSTACK_START_TIMEOUT  seconds to wait for health (default 180)
#   LOCALSTACK_EXTRA_PIP      extra pip requirements to install into the venv
#   LAMBDA_RUNTIME_EXECUTOR   default host: Lambda functions run as host processes through the plugin in
#                             test/localstack/executor (installed here; no Docker needed). docker is LocalStack's own.
#   any other LocalStack variable (EAGER_SERVICE_LOADING, DEBUG, LAMBDA_KEEPALIVE_MS, ...) is passed through.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="${LOCALSTACK_CORE_VERSION:-4.13.1}"
PYTHON="${LOCALSTACK_PYTHON:-python3}"
UV_VERSION=0.13.9
PIP_VERSION=26.3
VENV="$ROOT/.venv/localstack"
TMP="$ROOT/test/.tmp"
LOG="$TMP/localstack.log"
PIDFILE="$TMP/localstack.pid"
HOST=127.0.0.1
PORT=4566
HEALTH_URL="http://$HOST:$PORT/_localstack/health"
TIMEOUT="${LOCALSTACK_START_TIMEOUT:-180}"
SERVICES_DEFAULT="s3,sqs,lambda,cloudformation,iam,sts,events,logs,cloudwatch,kms,ssm"

mkdir -p "$TMP"

log() { printf '[localstack] %s\n' "$*" >&2; }

# Prints "ok" when the health endpoint reports s3 and sqs as available (or running).
health_ok() {
  local body
  body="$(curl -fsS --max-time 2 "$HEALTH_URL" 2>/dev/null)" || return 1
  printf '%s' "$body" | "$PYTHON" -c '
import json, sys
try:
    services = json.load(sys.stdin).get("services", {})
except Exception:
    sys.exit(1)
ok = all(services.get(s) in ("available", "running") for s in ("s3", "sqs"))
sys.exit(0 if ok else 1)
'
}

if health_ok; then
  log "already healthy on $HOST:$PORT; nothing to do"
  exit 0
fi

if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
  log "port $PORT is in use but $HEALTH_URL does not report s3 and sqs; refusing to start a second instance"
  curl -sS --max-time 2 "$HEALTH_URL" >&2 || true
  exit 1
fi

# ---- install (once per version and constraints file) -------------------------------------------
# constraints.txt pins every dependency to what existed when $VERSION was released: unpinned, pip picks
# newer releases that break it (see the file's header).
CONSTRAINTS="$ROOT/test/localstack/constraints.txt"
stamp="$(cksum <"$CONSTRAINTS" | cut -d' ' -f1)"
MARKER="$VENV/.sluice-localstack-core-$VERSION-$stamp"
if [[ ! -f "$MARKER" ]]; then
  start_install=$(date +%s)
  log "installing localstack-core[runtime]==$VERSION into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  # uv (from PyPI, into the venv) installs the ~110 packages in seconds where pip takes 45-90 s; plain pip
  # is the fallback. Caches (~/.cache/uv, ~/.cache/pip) make a reinstall on the same machine quicker still.
  # shellcheck disable=SC2086
  if "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "uv==$UV_VERSION" >&2 &&
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" \
      -c "$CONSTRAINTS" "localstack-core[runtime]==$VERSION" ${LOCALSTACK_EXTRA_PIP:-} >&2; then
    :
  else
    log "uv failed; installing with pip"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --upgrade "pip==$PIP_VERSION" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --prefer-binary \
      -c "$CONSTRAINTS" "localstack-core[runtime]==$VERSION" ${LOCALSTACK_EXTRA_PIP:-} >&2
  fi
  touch "$MARKER"
  log "installed in $(($(date +%s) - start_install)) s"
elif [[ -n "${LOCALSTACK_EXTRA_PIP:-}" ]]; then
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input ${LOCALSTACK_EXTRA_PIP} >&2
fi

# ---- the host Lambda executor (test/localstack/executor): runs Node.js functions without Docker ----
# Reinstalled whenever its files change; LocalStack discovers it by its entry point.
PLUGIN_DIR="$ROOT/test/localstack/executor"
plugin_stamp="$(cat "$PLUGIN_DIR/pyproject.toml" "$PLUGIN_DIR"/sluice_localstack_executor/*.py \
  "$PLUGIN_DIR"/sluice_localstack_executor/*.mjs | cksum | cut -d' ' -f1)"
if [[ ! -f "$VENV/.sluice-host-executor-$plugin_stamp" ]]; then
  log "installing the host Lambda executor from $PLUGIN_DIR"
  rm -f "$VENV"/.sluice-host-executor-*
  if [[ -x "$VENV/bin/uv" ]] && "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" \
    --reinstall-package sluice-localstack-executor "$PLUGIN_DIR" >&2; then
    :
  else
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --force-reinstall --no-deps \
      "$PLUGIN_DIR" >&2
  fi
  rm -rf "$PLUGIN_DIR/build" "$PLUGIN_DIR"/*.egg-info # setuptools' leftovers in the source tree
  touch "$VENV/.sluice-host-executor-$plugin_stamp"
fi

# ---- start ------------------------------------------------------------------------------------
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "a LocalStack process ($(cat "$PIDFILE")) exists but is not healthy yet; waiting for it"
else
  start_run=$(date +%s)
  : >"$LOG"
  export GATEWAY_LISTEN="$HOST:$PORT"
  export DNS_ADDRESS=0
  export SKIP_SSL_CERT_DOWNLOAD=1
  export DISABLE_EVENTS=1
  export OVERRIDE_IN_DOCKER=0
  export LOCALSTACK_HOST="$HOST:$PORT"
  export SQS_ENDPOINT_STRATEGY=path
  export SERVICES="${LOCALSTACK_SERVICES:-$SERVICES_DEFAULT}"
  export LAMBDA_RUNTIME_EXECUTOR="${LAMBDA_RUNTIME_EXECUTOR:-host}"
  # Keep LocalStack's state out of site-packages and out of /var/lib, and cleaned with test/.tmp.
  export FILESYSTEM_ROOT="${FILESYSTEM_ROOT:-$TMP/localstack-fs}"
  export CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES="${CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES:-1}"
  mkdir -p "$FILESYSTEM_ROOT"
  # setsid: its own process group, so stop.sh can end it and its children without touching anything else.
  (cd "$TMP" && exec setsid "$VENV/bin/python" -m localstack.runtime.main >>"$LOG" 2>&1 </dev/null) &
  echo $! >"$PIDFILE"
  log "started pid $(cat "$PIDFILE"), log $LOG"
fi

deadline=$(($(date +%s) + TIMEOUT))
while ! health_ok; do
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    log "LocalStack exited before becoming healthy; last lines of $LOG:"
    tail -n 60 "$LOG" >&2 || true
    rm -f "$PIDFILE"
    exit 1
  fi
  if (($(date +%s) > deadline)); then
    log "LocalStack not healthy after ${TIMEOUT}s; last lines of $LOG:"
    tail -n 60 "$LOG" >&2 || true
    curl -sS --max-time 2 "$HEALTH_URL" >&2 || true
    exit 1
  fi
  sleep 0.5
done
log "healthy on $HOST:$PORT${start_run:+ after $(($(date +%s) - start_run)) s}"

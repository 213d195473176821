#!/usr/bin/env bash
# The whole test suite, as CI runs it (`npm test`):
#   lint + format check, type check, then every vitest tier in one run:
#   unit (engine, planner, driver, recovery, chaos, CLI, examples), ui (the web UI in headless
#   Chromium, installed from Debian's packages here when missing), infra (CDK stack),
#   package (`npm pack` installed into a fresh project and used as the README shows),
#   integration (AWS adapters and handlers against LocalStack), e2e (the CDK app deployed to
#   LocalStack with cdklocal, its functions run by the host executor plugin).
# LocalStack is started here on 127.0.0.1:4566 (installed into .venv/localstack on first use)
# and stopped at the end. Set SLUICE_SKIP_LOCALSTACK=1 to run only the tiers that need no server
# (the integration tier then fails loudly instead of being skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p test/.tmp

echo "== lint (biome)"
npx biome ci .

echo "== type check (tsc --noEmit)"
npx tsc --noEmit -p .

echo "== Chromium (the web UI's browser tests, test/ui)"
if ! command -v chromium >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null ||
    { echo "Chromium is needed for the ui tier: install Debian's chromium package (apt-get install chromium)" >&2; exit 1; }
fi

echo "== readers (DuckDB from PyPI into .venv/readers: test/unit/athena-layout.test.ts reads outputs back)"
bash test/readers/setup.sh

projects=(--project unit --project ui --project infra --project package)
if [ "${SLUICE_SKIP_LOCALSTACK:-0}" != "1" ] && [ -f test/localstack/start.sh ]; then
  echo "== LocalStack"
  bash test/localstack/start.sh
  trap 'bash test/localstack/stop.sh || true' EXIT
  projects+=(--project integration --project e2e)
else
  echo "== LocalStack: not started (SLUICE_SKIP_LOCALSTACK=1); integration tier not run"
fi

echo "== tests (vitest ${projects[*]})"
status=0
npx vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json=test/.tmp/vitest.json "$@" || status=$?
node -e '
  const r = require("./test/.tmp/vitest.json");
  console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
' || true
exit $status

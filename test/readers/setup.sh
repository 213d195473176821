#!/usr/bin/env bash
# Installs the independent readers of saved outputs that test/unit/athena-layout.test.ts uses:
# DuckDB from PyPI, pinned, into .venv/readers (kept out of git). Idempotent: does nothing when
# the pinned version is already there. Called from test/run.sh, or by hand before that test.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUCKDB_VERSION=1.5.6
venv=.venv/readers
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
"$venv/bin/python" -c "import duckdb; print('duckdb', duckdb.__version__, 'in $venv')"

#!/usr/bin/env bash
# Runs every check CI runs: setup, ruff check, ruff format --check, mypy, pytest. Extra arguments go to pytest.
# Exits non-zero if any check fails; all checks run either way, so one run shows every failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

export ETH_HASH_BACKEND=pysha3

failed=()
echo "test: ruff check"
.venv/bin/ruff check . || failed+=(ruff)
echo "test: ruff format --check"
.venv/bin/ruff format --check . || failed+=(ruff-format)
echo "test: mypy"
.venv/bin/mypy || failed+=(mypy)
echo "test: pytest"
.venv/bin/pytest -q "$@" || failed+=(pytest)

if ((${#failed[@]})); then
    echo "test: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test: all checks passed"

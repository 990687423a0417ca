#!/usr/bin/env bash
# Starts a local devnet (Anvil L1, bus, admin API, the example token app). Extra arguments go to
# `rollup up`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

export ETH_HASH_BACKEND=pysha3
exec .venv/bin/rollup up examples/token "$@"

#!/usr/bin/env bash
# Starts a local devnet: Anvil as the L1 and the example token app on http://127.0.0.1:8546.
# Extra arguments go to `rollup up` (for example --detach).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

export ETH_HASH_BACKEND=pysha3
exec .venv/bin/rollup up --port-base 8546 examples/token examples/erc20 examples/orderbook "$@"

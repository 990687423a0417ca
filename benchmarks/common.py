"""What every benchmark uses: its error, progress lines, one-off JSON-RPC calls, the machine.

- `BenchError`: a benchmark could not run, or a transaction was not accepted or not confirmed;
  `rollup bench` prints it on one line and exits 1.
- `log`: a progress line on stderr (stdout carries the result).
- `rpc` / `nonces`: blocking JSON-RPC calls for set-up and checks, never in a timed section,
  through the project's one client (`services.rpcclient`); its errors become `BenchError`.
- `environment`, `percentile`: what a result records about the machine, and its percentiles.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

from rollup.errors import ProcessError
from services.rpcclient import RpcCallError, RpcClient, RpcUnavailable, rpc_call

__all__ = ["BenchError", "environment", "log", "nonces", "percentile", "rpc"]

RPC_TIMEOUT = 30.0


class BenchError(ProcessError):
    """A benchmark could not run, or a transaction was not accepted or not confirmed."""


def log(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def rpc(to: str | RpcClient, method: str, *params: Any) -> Any:
    """One blocking JSON-RPC call to a URL (on a connection of its own) or over a client's
    keep-alive connection; its result. Any failure raises BenchError."""
    try:
        if isinstance(to, RpcClient):
            return to.call(method, *params)
        return rpc_call(to, method, *params, timeout=RPC_TIMEOUT)
    except (RpcCallError, RpcUnavailable) as exc:
        raise BenchError(f"{method} failed: {exc}") from None


def nonces(url: str, senders: Sequence[bytes]) -> list[int]:
    """The next nonce of each sender (all pending transactions of earlier phases included)."""
    return [
        int(rpc(url, "eth_getTransactionCount", "0x" + s.hex(), "pending"), 16) for s in senders
    ]


def environment() -> dict[str, Any]:
    """The machine a result was measured on."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "platform": sys.platform,
    }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[min(int(rank), len(sorted_values)) - 1]

"""What tests of every kind share besides fixtures: waiting for a condition, and JSON-RPC calls
to a node or Anvil. Both are the project's own (services/waiting.py, services/rpcclient.py);
here they fail the test in the test's terms.

    wait_for(condition, what, timeout)   the first truthy value of condition(), polled; a
                                         timeout fails the test: "timed out after 60 s
                                         waiting for <what>"
    rpc(url, method, *params)            one call's result; `RpcCallError` (its code, message
                                         and data) if the node answered with an error
    rpc_error(url, method, *params)      the `RpcCallError` a call must end in; fails the test
                                         if it succeeds
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from services.rpcclient import RpcCallError, rpc_call
from services.waiting import wait_until

__all__ = ["RPC_TIMEOUT", "WAIT_TIMEOUT", "rpc", "rpc_error", "wait_for"]

T = TypeVar("T")
WAIT_TIMEOUT = 60.0  # long enough for a loaded 2-core machine; a test may pass its own
WAIT_INTERVAL = 0.1
RPC_TIMEOUT = 30.0  # a node busy with a test's load may be slow to answer; this bounds a hang


def wait_for(
    condition: Callable[[], T | None],
    what: str,
    timeout: float = WAIT_TIMEOUT,
    *,
    interval: float = WAIT_INTERVAL,
) -> T:
    """The first truthy value of `condition()`, called every `interval` s; after `timeout` s
    the test fails (AssertionError) naming `what`. `condition` may raise to fail it sooner."""
    return wait_until(condition, timeout, what, interval=interval, error=AssertionError)


def rpc(url: str, method: str, *params: Any, timeout: float = RPC_TIMEOUT) -> Any:
    """The result of one JSON-RPC call, on a connection of its own."""
    return rpc_call(url, method, *params, timeout=timeout)


def rpc_error(url: str, method: str, *params: Any) -> RpcCallError:
    """The error object the node answers the call with (`.code`, `.reason`, `.data`)."""
    with pytest.raises(RpcCallError) as refused:
        rpc(url, method, *params)
    return refused.value

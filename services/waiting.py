"""Waiting for a condition: `wait_until(predicate, timeout, what)`, the one polling loop.

It calls `predicate` until it returns something truthy and returns that (a receipt, a state
file, True), sleeping `interval` between calls; after `timeout` seconds it raises
`WaitTimeout("timed out after 5 s waiting for <what>")`, or the caller's `error` class with
that message. The predicate may raise to stop the wait early (a process that exited, an
interruption): the exception goes to the caller as it is. Used by the processes' readiness
checks (services/process.py), the CLI's workflows, the benchmarks' set-up and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from rollup.errors import Action, RollupError

__all__ = ["WaitTimeout", "wait_until"]

T = TypeVar("T")
INTERVAL = 0.05


class WaitTimeout(RollupError):
    """What was awaited did not happen in time; it may yet, so the caller may wait again."""

    action = Action.RETRY


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = INTERVAL,
    error: Callable[[str], Exception] = WaitTimeout,
) -> T:
    """The first truthy value of `predicate()`, polled every `interval` s for `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise error(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)

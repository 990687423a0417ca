"""What a JSON-RPC method is: its handler, its parameter parsers and where it may run.

Each namespace module (eth, net, debug, proofs, messages, bridge) exports a `METHODS` table
built with `method`; services/rpc/methods.py composes them. Handlers are plain functions of
(node, *params) that read committed data only.

`Method.runs` says where a method may run, so that no request can hold up block production on
the node's event loop:
    "loop"      on the event loop: bounded, cheap work
    "budget"    simulations: on the loop within the batch's gas budget, else isolated in a
                forked process (services/rpc/isolation.py); the handler takes `gas_cap` and
                `budget` keywords (sequencer/simulate.py)
    "isolated"  always in a forked process (O(state) work such as tracing)
    "thread"    in a worker thread, one at a time (scans over many blocks)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from services.rpc.params import Parser

__all__ = ["Method", "Runs", "method", "compose"]

Runs = Literal["loop", "budget", "isolated", "thread"]


@dataclass(frozen=True, slots=True)
class Method:
    handler: Callable[..., Any]
    parsers: tuple[Parser, ...]
    required: int  # parameters that must be given; the rest take the handler's defaults
    runs: Runs = "loop"
    private: bool = False  # uses node-held keys or changes the node: never for other origins


def method(
    handler: Callable[..., Any],
    *parsers: Parser,
    required: int | None = None,
    runs: Runs = "loop",
    private: bool = False,
) -> Method:
    """A method whose parameters are all required unless `required` says how many are;
    `private`: it uses node-held keys or changes the node (never for other origins)."""
    count = len(parsers) if required is None else required
    return Method(handler, parsers, count, runs, private)


def compose(*tables: Mapping[str, Method]) -> dict[str, Method]:
    """One table of several; a name declared twice is a bug, found at import."""
    out: dict[str, Method] = {}
    for table in tables:
        twice = out.keys() & table.keys()
        if twice:
            raise ValueError(f"JSON-RPC methods declared twice: {sorted(twice)}")
        out |= table
    return out

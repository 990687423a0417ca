"""The Python-native VM and the SDK app authors import.

    from vm.native import App, Map, Value, Event, Error, method, view, payable, address, uint256

An app is a Python class; its typed methods are ABI functions, so wallets call it like a
contract. `NativeVM` executes messages to the apps it hosts and plain value transfers.
"""

from __future__ import annotations

from rollup.types import Address, BlockEnv
from vm.interface import ExecResult, Message
from vm.native.runtime import AppRuntime, native_code
from vm.native.sdk import (
    App,
    Error,
    Event,
    Map,
    Panic,
    Revert,
    Value,
    method,
    payable,
    require,
    revert,
    view,
)
from vm.native.types import *  # noqa: F403 - the ABI type markers are part of the SDK
from vm.native.types import address, indexed
from vm.state import State, add_balance, get_balance, get_code

__all__ = [
    "App",
    "AppRuntime",
    "Error",
    "Event",
    "Map",
    "NativeVM",
    "Panic",
    "Revert",
    "Value",
    "address",
    "indexed",
    "method",
    "native_code",
    "payable",
    "require",
    "revert",
    "view",
]


class NativeVM:
    """Executes messages for a chain whose contracts are native apps."""

    def __init__(self, apps: dict[Address, AppRuntime]) -> None:
        self.apps = apps

    def execute(self, state: State, env: BlockEnv, msg: Message) -> ExecResult:
        runtime = self.apps.get(msg.to) if msg.to is not None else None
        if runtime is not None:
            return runtime.execute(state, env, msg)
        if msg.to is None:
            return ExecResult(False, 0, b"")  # no code deployment on a native chain
        if msg.value:
            if get_balance(state, msg.sender) < msg.value:
                return ExecResult(False, 0, b"")
            add_balance(state, msg.sender, -msg.value)
            add_balance(state, msg.to, msg.value)
        return ExecResult(True, 0, b"")

    def call(self, state: State, env: BlockEnv, msg: Message) -> ExecResult:
        """eth_call: execute, then leave state as it was."""
        snapshot = state.snapshot()
        try:
            return self.execute(state, env, msg)
        finally:
            state.revert(snapshot)

    def code_at(self, state: State, address: Address) -> bytes:
        return get_code(state, address)

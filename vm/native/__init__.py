"""The Python-native VM and the SDK app authors import.

    from vm.native import App, Map, Value, Event, Error, method, view, payable, address, uint256

An app is a Python class; its typed methods are ABI functions, so wallets call it like a
contract. `NativeVM` executes messages to the apps it hosts and plain value transfers.
"""

from __future__ import annotations

from rollup.types import Address, BlockEnv
from vm.interface import ExecResult, Message
from vm.native.loader import load_app_class
from vm.native.runtime import NATIVE_CODE_MAGIC, AppRuntime, native_code
from vm.native.sdk import (
    App,
    Error,
    Event,
    Map,
    Panic,
    Revert,
    Value,
    abi_decode,
    app_address,
    callback,
    method,
    payable,
    remote_address,
    require,
    revert,
    view,
)
from vm.native.types import *  # noqa: F403 - the ABI type markers are part of the SDK
from vm.native.types import address, indexed
from vm.native.upgrades import (
    UPGRADE_ADDRESS,
    activate_upgrades,
    request_upgrade,
    source_key,
)
from vm.state import State, StateReader, add_balance, code_key, get_balance, get_code

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
    "abi_decode",
    "address",
    "app_address",
    "callback",
    "indexed",
    "method",
    "native_code",
    "payable",
    "remote_address",
    "require",
    "revert",
    "view",
]


class NativeVM:
    """Executes messages for a chain whose contracts are native apps.

    Which app runs at an address is read from state (its code and source keys), so an
    upgrade, a verifier replaying DA data and the sequencer all load the same code.
    """

    def __init__(self, preloaded: list[AppRuntime] | None = None) -> None:
        self._runtimes: dict[tuple[bytes, bytes], AppRuntime] = {
            (r.address, r.code): r for r in preloaded or []
        }

    def runtime_at(self, state: State | StateReader, address: bytes) -> AppRuntime | None:
        code = state.get(code_key(address))
        if not code or not code.startswith(NATIVE_CODE_MAGIC):
            return None
        runtime = self._runtimes.get((address, code))
        if runtime is None:
            source = (state.get(source_key(address)) or b"").decode()
            runtime = AppRuntime(load_app_class(source), Address(address), source)
            self._runtimes[(address, code)] = runtime
        return runtime

    def begin_block(self, state: State, env: BlockEnv) -> None:
        activate_upgrades(state, env)

    def execute(self, state: State, env: BlockEnv, msg: Message) -> ExecResult:
        if msg.to is None:
            return ExecResult(False, 0, b"")  # no code deployment on a native chain
        if msg.to == UPGRADE_ADDRESS:
            return request_upgrade(state, env, msg)
        runtime = self.runtime_at(state, msg.to)
        if runtime is not None:
            return runtime.execute(state, env, msg)
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

    def runs_code(self, state: State, address: Address) -> bool:
        return bool(get_code(state, address))

"""Helpers for native-VM tests: run a method of a small app source and read what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollup.types import Address, BlockEnv
from vm.interface import Message
from vm.native import AppRuntime, NativeVM
from vm.native.abi import decode_args, encode_values, selector
from vm.native.loader import load_app_class
from vm.native.upgrades import install_app
from vm.state import DictReader, State

APP = Address(b"\xaa" * 20)
OWNER = Address(b"\x11" * 20)
ENV = BlockEnv(1, 1, Address(b"\xcc" * 20), 10**9, 10**9, 7)
HEADER = "from vm.native import App, Map, Value, method, view, uint256, address, bytes32, revert\n"
_ERROR = selector("Error(string)")


@dataclass(frozen=True, slots=True)
class Outcome:
    success: bool
    gas: int
    reason: str  # the Error(string) text, or the output in hex

    @property
    def out_of_gas(self) -> bool:
        return not self.success and self.reason == ""


def one_method(body: str, args: str = "", returns: str = "None", prelude: str = "") -> str:
    """Source of an app `A` whose method `run(args)` runs `body` (indented for you)."""
    lines = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return (
        f"{HEADER}{prelude}\nclass A(App):\n    count = Value(uint256)\n\n    @method\n"
        f"    def run(self{', ' + args if args else ''}) -> {returns}:\n{lines}\n"
    )


def runtime(source: str) -> AppRuntime:
    return AppRuntime(load_app_class(source), APP, source)


def fresh_state(source: str) -> State:
    state = State(DictReader())
    install_app(state, APP, source, OWNER)
    state.commit()
    return state


def call(
    source: str | AppRuntime, signature: str = "run()", *args: Any, gas: int = 10_000_000
) -> Outcome:
    loaded = runtime(source) if isinstance(source, str) else source
    types = signature[signature.index("(") + 1 : -1]
    data = selector(signature) + encode_values(types.split(",") if types else [], list(args))
    state = fresh_state(loaded.source)
    result = NativeVM([loaded]).execute(state, ENV, Message(OWNER, APP, 0, data, gas, OWNER, 0))
    return Outcome(result.success, result.gas_used, reason_of(result.output))


def reason_of(output: bytes) -> str:
    if output[:4] == _ERROR:
        text: str = decode_args(["string"], output[4:])[0]
        return text
    return output.hex()

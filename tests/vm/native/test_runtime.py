"""The native VM through the state-transition function: semantics a wallet relies on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rollup.errors import AppLoadError, InvalidBlock
from rollup.genesis import DEV_ADDRESSES
from rollup.types import Address, BlockEnv
from vm.commitment import StateTree
from vm.interface import Message
from vm.native import AppRuntime, NativeVM
from vm.native.abi import decode_args, encode_values, selector
from vm.native.loader import load_app_class
from vm.native.upgrades import install_app
from vm.state import DictReader, State, get_balance
from vm.stf import apply_block, env_of

APP = Address(b"\xaa" * 20)
ALICE, BOB = DEV_ADDRESSES[0], DEV_ADDRESSES[1]
ENV = BlockEnv(1, 1, Address(b"\xcc" * 20), 10**9, 10**9, 7)

SOURCE = """
from vm.native import (
    App, Error, Event, Map, Value, address, indexed, method, payable, require, view, uint256,
)

class Stored(Event):
    who: indexed(address)
    value: uint256

class TooBig(Error):
    value: uint256

class Box(App):
    value = Value(uint256)
    notes = Map(address, str)
    paid = Map(address, uint256)

    @method
    def store(self, value: uint256) -> uint256:
        self.value = value
        self.emit(Stored(self.msg.sender, value))
        if value > 1000:
            raise TooBig(value)
        return value * 2

    @view
    def get(self) -> uint256:
        return self.value

    @view
    def sneaky(self) -> uint256:
        self.value = 1
        return 1

    @method
    def spin(self, n: uint256) -> uint256:
        for i in range(n):
            self.paid[self.msg.sender] = i
        return n

    @method
    def underflow(self) -> None:
        self.value = self.value - 1

    @method
    def divide(self, d: uint256) -> uint256:
        return 10 // d

    @method
    def bad_return(self) -> uint256:
        return -1

    @payable
    def pay(self) -> uint256:
        self.paid[self.msg.sender] += self.msg.value
        return self.paid[self.msg.sender]

    @method
    def note(self, text: str) -> str:
        require(len(text) < 10, "too long")
        self.notes[self.msg.sender] = text
        return self.notes[self.msg.sender]
"""


@pytest.fixture
def box() -> tuple[AppRuntime, State]:
    runtime = AppRuntime(load_app_class(SOURCE), APP, SOURCE)
    state = State(DictReader())
    from vm.state import set_account

    set_account(state, ALICE, 0, 10**20)
    install_app(state, APP, SOURCE, ALICE)
    state.commit()
    return runtime, state


def call(
    runtime: AppRuntime, state: State, sig: str, *args: object, value: int = 0, gas: int = 10**6
):
    types = sig[sig.index("(") + 1 : -1].split(",") if not sig.endswith("()") else []
    data = selector(sig) + encode_values(types, list(args))
    return NativeVM([runtime]).execute(state, ENV, Message(ALICE, APP, value, data, gas, ALICE, 0))


def test_method_returns_abi_and_emits_a_log(box: tuple[AppRuntime, State]) -> None:
    runtime, state = box
    result = call(runtime, state, "store(uint256)", 21)
    assert result.success and decode_args(["uint256"], result.output) == (42,)
    assert len(result.logs) == 1 and result.logs[0].topics[1][12:] == ALICE
    assert decode_args(["uint256"], call(runtime, state, "get()").output) == (21,)


def test_custom_error_rolls_back_everything(box: tuple[AppRuntime, State]) -> None:
    runtime, state = box
    call(runtime, state, "store(uint256)", 5)
    result = call(runtime, state, "store(uint256)", 5000)
    assert not result.success and result.logs == ()
    assert result.output == selector("TooBig(uint256)") + (5000).to_bytes(32, "big")
    assert decode_args(["uint256"], call(runtime, state, "get()").output) == (5,)


@pytest.mark.parametrize(
    ("sig", "args", "needle"),
    [
        ("sneaky()", (), b"state change in a view call"),
        ("underflow()", (), selector("Panic(uint256)") + (0x11).to_bytes(32, "big")),
        ("divide(uint256)", (0,), selector("Panic(uint256)") + (0x12).to_bytes(32, "big")),
        ("bad_return()", (), b"bad return value"),
        ("note(string)", ("far too long text",), b"too long"),
        ("nothing()", (), b"no such method"),
    ],
)
def test_failures_are_results_not_exceptions(
    box: tuple[AppRuntime, State], sig: str, args: tuple, needle: bytes
) -> None:
    runtime, state = box
    result = call(runtime, state, sig, *args)
    assert not result.success and needle in result.output
    assert decode_args(["uint256"], call(runtime, state, "get()").output) == (0,)


def test_out_of_gas_consumes_the_limit_and_changes_nothing(box: tuple[AppRuntime, State]) -> None:
    runtime, state = box
    result = call(runtime, state, "spin(uint256)", 1000, gas=100_000)
    assert not result.success and result.gas_used == 100_000
    assert call(runtime, state, "spin(uint256)", 3).success


def test_value_goes_only_to_payable_methods(box: tuple[AppRuntime, State]) -> None:
    runtime, state = box
    assert not call(runtime, state, "store(uint256)", 1, value=5).success
    result = call(runtime, state, "pay()", value=7)
    assert result.success and get_balance(state, APP) == 7
    assert get_balance(state, ALICE) == 10**20 - 7


def test_strings_round_trip(box: tuple[AppRuntime, State]) -> None:
    runtime, state = box
    assert decode_args(["string"], call(runtime, state, "note(string)", "hi").output) == ("hi",)


@pytest.mark.parametrize(
    "source",
    [
        "this is not python",
        "import nonexistent_module_xyz",
        "x = 1",
        "from vm.native import App, method\nclass A(App):\n  @method\n  def f(self, x): pass",
    ],
)
def test_bad_app_code_is_a_load_error(source: str) -> None:
    with pytest.raises(AppLoadError):
        load_app_class(source)


def test_apply_block_detects_a_tampered_header(token_app) -> None:  # type: ignore[no-untyped-def]
    from sequencer.harness import LocalChain

    with LocalChain.from_dir(token_app) as chain:
        chain.transact(chain.accounts[0], "transfer", chain.accounts[1], 5)
        genesis, block, vm = chain.node.block(0), chain.node.block(1), chain.node.vm
        assert genesis is not None and block is not None
        genesis_state = chain.node.store.get_block(0).changes  # type: ignore[union-attr]
        tree = StateTree((k, after) for k, (_, after) in genesis_state.items() if after)
        assert tree.root == genesis.header.state_root
        forged = replace(block, header=replace(block.header, state_root=b"\x00" * 32))
        with pytest.raises(InvalidBlock, match="state_root"):
            apply_block(State(chain.node.state.reader_at(0)), genesis.header, forged, vm, tree)
        assert tree.root == genesis.header.state_root  # an invalid block leaves the tree as it was
        state = State(chain.node.state.reader_at(0))
        assert apply_block(state, genesis.header, block, vm, tree).block.hash == block.hash
        assert tree.root == block.header.state_root
        assert env_of(block.header).number == 1

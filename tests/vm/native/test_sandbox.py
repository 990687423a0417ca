"""Each loader rule and each bound: rejected at load, or halted with a failed receipt while the
sequencer keeps serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup.errors import AppLoadError, TxGasLimitTooHigh
from rollup.transactions import MAX_TX_GAS
from sequencer.harness import LocalChain
from vm.native.loader import load_app_class

from .conftest import call, one_method

HEADER = "from vm.native import App, Map, Value, method, view, uint256\n"


def load(body: str) -> None:
    load_app_class(HEADER + body)


@pytest.mark.parametrize(
    ("body", "rule", "line"),
    [
        ("import os\n", "import", 2),
        ("from subprocess import run\n", "import", 2),
        ("from vm.native.runtime import AppRuntime\n", "import", 2),
        ("from vm.native import NativeVM\n", "import", 2),
        ("x = open('/etc/passwd')\n", "name", 2),
        ("x = ().__class__.__subclasses__()\n", "dunder", 2),
        ("x = __builtins__\n", "dunder", 2),
        ("x = eval('1')\n", "name", 2),
        ("x = getattr(1, 'real')\n", "name", 2),
        ("x = hash('a')\n", "name", 2),
        ("x = 1.5\n", "float", 2),
        ("x = 3 / 2\n", "float", 2),
        ("x = {1, 2}\n", "set", 2),
        ("x = set()\n", "name", 2),
        ("def f():\n    global y\n", "global", 3),
        ("def f(g):\n    return g.gi_frame\n", "frame", 3),
        ("x = '{0.__class__}'.format(1)\n", "format", 2),
        ("try:\n    pass\nexcept:\n    pass\n", "except", 4),
        ("async def f():\n    pass\n", "async", 2),
        (
            "class A(App):\n    @method\n    def f(self) -> None:\n        return self._ctx\n",
            "private",
            5,
        ),
        ("class A(App):\n    def __init__(self):\n        pass\n", "dunder", 3),
    ],
)
def test_loader_rejects_with_line_and_rule(body: str, rule: str, line: int) -> None:
    with pytest.raises(AppLoadError) as info:
        load(body)
    assert f"app.py:line {line}: [{rule}]" in str(info.value)


def test_mutable_module_state_is_rejected() -> None:
    with pytest.raises(AppLoadError, match=r"module-level 'CACHE' is a mutable dict"):
        load("CACHE = {}\nclass A(App):\n    pass\n")
    with pytest.raises(AppLoadError, match=r"class attribute A.seen is a mutable list"):
        load("class A(App):\n    seen = []\n")


def test_endless_module_code_fails_the_load() -> None:
    with pytest.raises(AppLoadError, match="out of gas"):
        load("while True:\n    pass\n")


def test_runtime_builtins_refuse_imports_outside_the_allowlist() -> None:
    with pytest.raises(AppLoadError):
        load("import typing\nx = typing.__dict__\n")


HOSTILE = (
    HEADER
    + """
class Hostile(App):
    counter = Value(uint256)
    slots = Map(uint256, uint256)

    @view
    def get(self) -> uint256:
        return self.counter

    @method
    def bump(self) -> uint256:
        self.counter = self.counter + 1
        return self.counter

    @method
    def spin(self) -> None:
        self.counter = 7
        while True:
            pass

    @method
    def spin_comprehension(self) -> None:
        self.counter = 7
        x = [i for i in range(10_000_000)]

    @method
    def recurse(self, n: uint256) -> uint256:
        return self.recurse(n + 1)

    @method
    def allocate(self) -> None:
        self.counter = 7
        x = b"x" * (10 ** 9)

    @method
    def allocate_bytes(self) -> None:
        x = bytes(10 ** 9)

    @method
    def big_int(self) -> None:
        x = 3 ** 10_000_000

    @method
    def shift(self) -> None:
        x = 1 << 10_000_000

    @method
    def pad(self) -> None:
        x = "x".ljust(10 ** 9)

    @method
    def many_writes(self) -> None:
        for i in range(30_000):
            self.slots[i] = 1

    @method
    def swallow(self) -> None:
        try:
            while True:
                pass
        except Exception:
            self.counter = 99
"""
)


@pytest.fixture
def hostile(tmp_path: Path) -> LocalChain:
    (tmp_path / "app.py").write_text(HOSTILE)
    (tmp_path / "rollup.toml").write_text('[app]\nname = "hostile"\nchain_id = 4242\n')
    return LocalChain.from_dir(tmp_path)


@pytest.mark.parametrize(
    ("name", "gas", "reason"),
    [
        ("spin", 2_000_000, None),
        ("spin_comprehension", 2_000_000, None),
        ("recurse", MAX_TX_GAS, b"call depth above 128"),
        ("allocate", 2_000_000, b"allocation above"),
        ("allocate_bytes", 2_000_000, b"allocation above"),
        ("big_int", 2_000_000, b"allocation above"),
        ("shift", 2_000_000, b"allocation above"),
        ("pad", 2_000_000, b"allocation above"),
        ("many_writes", MAX_TX_GAS, None),  # out of gas first: the write bound is for calls
        ("swallow", 2_000_000, None),
    ],
)
def test_bounds_halt_the_transaction_and_the_chain_goes_on(
    hostile: LocalChain, name: str, gas: int, reason: bytes | None
) -> None:
    with hostile as chain:
        sender = chain.accounts[0]
        head = chain.node.committed.number
        args = (1,) if name == "recurse" else ()
        raw = chain.sign(sender, chain.app.address, chain.calldata(name, *args), gas=gas)
        receipt = chain.send_raw(raw)
        assert receipt.status == 0
        if reason is None:
            assert receipt.gas_used == gas  # out of gas: the whole limit is spent
        else:
            assert reason in receipt.return_data
        assert chain.call("get") == 0  # the halted transaction changed nothing
        assert chain.transact(sender, "bump").status == 1
        assert chain.call("get") == 1
        assert chain.node.committed.number == head + 2


def test_a_transaction_cannot_carry_more_gas_than_eip_7825_allows(hostile: LocalChain) -> None:
    """The cap bounds what one transaction holds in memory (~4 bytes a gas in a native app),
    whatever the block's gas limit (1B by default)."""
    with hostile as chain:
        sender = chain.accounts[0]
        raw = chain.sign(sender, chain.app.address, chain.calldata("spin"), gas=MAX_TX_GAS + 1)
        with pytest.raises(TxGasLimitTooHigh, match="cap: 16777216"):
            chain.send_raw(raw)


def test_storage_writes_are_bounded_for_calls_beyond_a_transactions_gas() -> None:
    """eth_call may carry up to the RPC gas cap (50M): the write bound still holds there."""
    outcome = call(one_method("for i in range(30_000):\n    self.count = i"), gas=900_000_000)
    assert not outcome.success and "more than 20000 storage writes" in outcome.reason

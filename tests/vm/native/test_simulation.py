"""Simulations (`NativeVM.call`: eth_call, eth_estimateGas, eth_createAccessList) never load code
or change the upgrade schedule, and answer what the transaction would; a real upgrade request
pays for running the new module code (issue 10, finding 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vm.native.loader as loader
import vm.native.upgrades as upgrades
from rollup.errors import AppLoadError
from rollup.types import Address
from tests.conftest import render_template
from tests.vm.native.conftest import APP, ENV, OWNER, fresh_state, one_method, reason_of, runtime
from vm.interface import ExecResult, Message
from vm.native import NativeVM, native_code
from vm.native.abi import encode_values, selector
from vm.native.gas import GasMeter
from vm.native.loader import LOAD_GAS, prepare, run_module, static_load_gas
from vm.native.upgrades import (
    MAX_SOURCE_BYTES,
    PREPARE_GAS_PER_BYTE,
    UPGRADE_ADDRESS,
    UPGRADE_GAS,
    UPGRADE_SELECTOR,
)
from vm.state import OverlayReader, State, code_key

PENDING = b"\x06"
RUN = selector("run()")
INSTALLED = one_method("self.count = self.count + 1")
DECLARATIVE = one_method("self.count = 2", prelude="LIMIT = 2**256 - 1\nZERO = bytes(20)\n")
OBSERVABLE = INSTALLED + "\nCOUNT = sum(range(1000))  # runs when the module loads\n"
LOADED = runtime(INSTALLED)  # loaded once, before any spy counts


class ExecSpy:
    """Counts the loader's `exec` of module code."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, code: Any, namespace: dict[str, Any]) -> None:
        self.calls += 1
        exec(code, namespace)  # noqa: S102 - the real thing, counted


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> ExecSpy:
    counter = ExecSpy()
    monkeypatch.setattr(loader, "exec", counter, raising=False)
    return counter


def upgrade_message(
    source: str,
    *,
    sender: Address = OWNER,
    height: int = 5,
    gas: int = 10**7,
    value: int = 0,
    data: bytes | None = None,
) -> Message:
    if data is None:
        data = UPGRADE_SELECTOR + encode_values(
            ["address", "bytes", "uint64"], [APP, source.encode(), height]
        )
    return Message(sender, UPGRADE_ADDRESS, value, data, gas, sender, 0)


def both(msg: Message) -> tuple[ExecResult, ExecResult]:
    """(the simulation's answer, the transaction's result), each on its own fresh state."""
    vm = NativeVM([LOADED])
    simulated = vm.call(fresh_state(INSTALLED), ENV, msg)
    real = vm.execute(fresh_state(INSTALLED), ENV, msg)
    return simulated, real


def test_a_simulated_upgrade_runs_no_code_and_schedules_nothing(spy: ExecSpy) -> None:
    vm = NativeVM([LOADED])
    state = fresh_state(INSTALLED)
    modules = len(sys.modules)
    result = vm.call(state, ENV, upgrade_message(OBSERVABLE))
    assert result.success
    assert spy.calls == 0
    assert len(sys.modules) == modules
    assert state.get(PENDING) is None
    real = vm.execute(state, ENV, upgrade_message(OBSERVABLE))  # the transaction does run it
    assert real.success and spy.calls == 1 and state.get(PENDING) is not None
    assert len(sys.modules) == modules  # checked, not kept


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (upgrade_message(DECLARATIVE, sender=Address(b"\x22" * 20)), "owner"),
        (upgrade_message(DECLARATIVE, height=1), "activation height"),
        (upgrade_message(DECLARATIVE + "\ndef broken(:\n"), "syntax error"),
        (upgrade_message(DECLARATIVE + "\nimport os\n"), "[import]"),
        (upgrade_message(DECLARATIVE + "\nreturn 1\n"), "syntax error"),
        (upgrade_message(DECLARATIVE, data=b"\x00\x01\x02\x03"), "expected upgrade"),
        (upgrade_message(DECLARATIVE, value=1), "expected upgrade"),
        (upgrade_message(DECLARATIVE, data=UPGRADE_SELECTOR + b"\x01"), "invalid upgrade"),
        (upgrade_message(DECLARATIVE, gas=UPGRADE_GAS - 1), None),
        (upgrade_message(DECLARATIVE + "#" * MAX_SOURCE_BYTES), "larger than"),
        (upgrade_message(DECLARATIVE, gas=UPGRADE_GAS + 1_000), None),  # cannot pay to parse
    ],
)
def test_static_failures_are_answered_as_the_transaction_fails(
    message: Message, reason: str | None, spy: ExecSpy
) -> None:
    simulated, real = both(message)
    assert simulated == real
    assert not real.success
    if reason is not None:
        assert reason in reason_of(real.output)
    assert spy.calls == 0  # none of these gets as far as running module code


@pytest.mark.parametrize("template", ["token", "counter", "orderbook"])
def test_a_declarative_upgrade_is_answered_with_the_transaction_s_gas(
    template: str, tmp_path: Path
) -> None:
    source = (render_template(tmp_path / template, template) / "app.py").read_text()
    simulated, real = both(upgrade_message(source))
    assert real.success and simulated == real
    assert real.gas_used > UPGRADE_GAS
    # one gas less than it used: both run out of gas, all of it spent
    simulated, real = both(upgrade_message(source, gas=real.gas_used - 1))
    assert not real.success and simulated == real and real.output == b""


@pytest.mark.parametrize("source", [INSTALLED, DECLARATIVE])
def test_static_load_gas_is_what_the_load_uses(source: str) -> None:
    prepared = prepare(source)
    meter = GasMeter(LOAD_GAS)
    run_module(prepared, meter, register=False)
    assert static_load_gas(prepared) == meter.used


def test_module_code_that_does_work_is_answered_with_an_upper_bound() -> None:
    simulated, real = both(upgrade_message(OBSERVABLE, gas=5_000_000))
    assert real.success and real.gas_used < 5_000_000
    assert simulated.success and simulated.gas_used == 5_000_000  # all it was given


def test_a_real_upgrade_pays_for_its_load() -> None:
    heavy = INSTALLED + "\nCOUNT = sum(range(50_000))\n"
    light = INSTALLED + "\nCOUNT = 1\n"
    paid = NativeVM().execute(fresh_state(INSTALLED), ENV, upgrade_message(heavy))
    cheap = NativeVM().execute(fresh_state(INSTALLED), ENV, upgrade_message(light))
    assert paid.success and cheap.success
    assert paid.gas_used - cheap.gas_used > 50_000 * 10  # a step per item, at least
    state = fresh_state(INSTALLED)
    short = NativeVM().execute(state, ENV, upgrade_message(heavy, gas=UPGRADE_GAS + 100_000))
    assert not short.success and short.gas_used == UPGRADE_GAS + 100_000 and short.output == b""
    assert state.get(PENDING) is None


def test_module_code_above_the_load_bound_fails_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upgrades, "LOAD_GAS", 1_000_000)
    endless = INSTALLED + "\nwhile True:\n    pass\n"
    result = NativeVM().execute(fresh_state(INSTALLED), ENV, upgrade_message(endless, gas=10**7))
    prepared = UPGRADE_GAS + PREPARE_GAS_PER_BYTE * len(endless.encode())
    assert not result.success and result.gas_used == prepared + 1_000_000
    assert "module code needs more than 1000000 gas" in reason_of(result.output)


def test_a_code_override_never_makes_the_node_load_code(spy: ExecSpy) -> None:
    vm = NativeVM([LOADED])
    state = fresh_state(INSTALLED)
    other, elsewhere = one_method("self.count = 99"), Address(b"\xbb" * 20)

    def simulate(values: dict[bytes, bytes | None], to: Address) -> ExecResult:
        view = State(OverlayReader(state, values, set()))
        return vm.call(view, ENV, Message(OWNER, to, 0, RUN, 10**6, OWNER, 0))

    # the code of another source at the app: refused, as a failed call
    result = simulate({code_key(APP): native_code(other)}, APP)
    assert not result.success and "not the hash of the source" in reason_of(result.output)
    # the app's code where no source is installed: refused too
    result = simulate({code_key(elsewhere): native_code(INSTALLED)}, elsewhere)
    assert not result.success and "not the hash of the source" in reason_of(result.output)
    assert spy.calls == 0
    assert not vm._failed  # nothing is kept for what a simulation made up
    with pytest.raises(AppLoadError, match="not the hash of the source"):
        vm.runtime_at(State(OverlayReader(state, {code_key(APP): native_code(other)}, set())), APP)


def test_installed_code_that_fails_to_load_fails_calls_and_is_tried_once(spy: ExecSpy) -> None:
    broken = INSTALLED + "\nCOUNT = 1 // 0\n"
    vm = NativeVM()
    state = fresh_state(broken)
    message = Message(OWNER, APP, 0, RUN, 10**6, OWNER, 0)
    first, second = vm.execute(state, ENV, message), vm.call(state, ENV, message)
    assert not first.success and first == second
    assert "app code failed to load" in reason_of(first.output)
    assert spy.calls == 1


def test_simulations_do_not_grow_memory() -> None:
    vm = NativeVM([LOADED])
    state = fresh_state(INSTALLED)
    modules = len(sys.modules)
    for index in range(50):
        source = INSTALLED + f"\nCOUNT = {index}\n"
        assert vm.call(state, ENV, upgrade_message(source)).success
        view = State(OverlayReader(state, {code_key(APP): native_code(source)}, set()))
        call = Message(OWNER, APP, 0, RUN, 10**6, OWNER, 0)
        assert not vm.call(view, ENV, call).success
    assert len(sys.modules) == modules
    assert len(vm._runtimes) == 1 and not vm._failed


DEEP_SOURCES = """
import json, sys
import py_ecc  # noqa: F401 - raises the interpreter's recursion limit to 100,000
from rollup.errors import AppLoadError
from tests.vm.native.conftest import ENV, OWNER, fresh_state, reason_of, runtime
from tests.vm.native.test_simulation import INSTALLED, upgrade_message
from vm.native import NativeVM
from vm.native.loader import prepare
vm = NativeVM([runtime(INSTALLED)])
def deep(n):
    return ["x = " + "1+" * n + "1", "x = a" + ".b" * n, "x = " + "not " * n + "1",
            "x = a" + "[0]" * (n // 2), "x = " + "lambda: " * (n // 4) + "1"]
answers = [vm.call(fresh_state(INSTALLED), ENV, upgrade_message(INSTALLED + body, gas=10**9))
           for body in deep(30_000)]
rejected = []
for body in deep(200_000):  # what a node starting with such an app reads
    try:
        prepare(body)
    except AppLoadError as exc:
        rejected.append(str(exc))
assert sys.getrecursionlimit() == 100_000
print(json.dumps([[[a.success, reason_of(a.output)] for a in answers], rejected]))
"""


def test_deeply_nested_sources_are_rejected_without_crashing_the_node() -> None:
    """Anyone can make the node parse a source (a simulated upgrade from the owner's address):
    parsing, checking and compiling run under the app limits, whatever py_ecc set."""
    repo = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONPATH=str(repo))
    done = subprocess.run(
        [sys.executable, "-c", DEEP_SOURCES],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answers, rejected = json.loads(done.stdout)
    for success, reason in answers:
        assert not success and reason.startswith("new code rejected: app.py"), reason
    assert len(rejected) == 5


def test_a_request_pays_to_be_parsed_before_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    monkeypatch.setattr(upgrades, "prepare", lambda source: parsed.append(source))
    price = UPGRADE_GAS + PREPARE_GAS_PER_BYTE * len(DECLARATIVE.encode())
    for gas in (price - 1, UPGRADE_GAS + 10):
        simulated, real = both(upgrade_message(DECLARATIVE, gas=gas))
        assert simulated == real == ExecResult(False, gas, b"")
    assert parsed == []


def _constant_expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(["P", "Q"]))
    operators = st.sampled_from(["+", "-", "*", "//", "%", "**", "<<", "|", "&", "^"])

    def combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, operators, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        return st.one_of(binary, inner.map(lambda e: f"(-{e})"), inner.map(lambda e: f"({e},)"))

    return st.recursive(leaves, combine, max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(_constant_expressions(), min_size=1, max_size=4), st.integers(0, 300))
def test_the_static_estimate_is_exact_when_it_answers(expressions: list[str], size: int) -> None:
    body = "P = 3\nQ = 2**200\n" + "".join(f"C{i} = {e}\n" for i, e in enumerate(expressions))
    body += f"Z = bytes({size})\n"
    prepared = prepare(INSTALLED + body)
    meter = GasMeter(LOAD_GAS)
    try:
        run_module(prepared, meter, register=False)
    except Exception:  # noqa: BLE001 - 1 // 0, 2 ** -1...: a failure only running tells
        return
    except BaseException:  # a bound crossed: the estimate must not claim success
        assert static_load_gas(prepared) is None
        return
    estimate = static_load_gas(prepared)
    assert estimate is None or estimate == meter.used

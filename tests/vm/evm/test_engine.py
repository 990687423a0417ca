"""The engine wrapper and the journal reader, and the pyrevm 0.3.7 behaviour they rely on.

If pyrevm changes any of these, the adapter's assumptions (see vm/evm/engine.py) need a look.
"""

from __future__ import annotations

import pyrevm
import pytest

from rollup.types import Address, BlockEnv
from vm.evm.engine import SPEC, Engine, engine_intrinsic_gas
from vm.evm.journal import parse_touched

from .conftest import CHAIN_ID, COINBASE, GAS_LIMIT

CALLER = Address(b"\x11" * 20)
TARGET = Address(b"\xcc" * 20)
ENV = BlockEnv(1, 1000, COINBASE, 7, GAS_LIMIT, CHAIN_ID)

TSTORE = bytes.fromhex("600160005d00")  # TSTORE(0, 1) STOP
SSTORE_CALLDATA = bytes.fromhex(
    "6000356001555f5460005260206000f3"
)  # sstore(1, cd[0]); ret sload(0)


def engine_with(code: bytes) -> Engine:
    engine = Engine(CHAIN_ID, GAS_LIMIT)
    engine.set_block(ENV)
    engine.put_account(CALLER, 0, 10**18, b"")
    engine.put_account(TARGET, 1, 0, code)
    return engine


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


# ---- pyrevm facts ----


@pytest.mark.parametrize(("spec", "halts"), [(SPEC, False), ("Shanghai", True)])
def test_spec_names_use_revm_spelling(spec: str, halts: bool) -> None:
    evm = pyrevm.EVM(spec_id=spec)
    evm.insert_account_info("0x" + TARGET.hex(), pyrevm.AccountInfo(code=TSTORE))
    if halts:
        with pytest.raises(RuntimeError, match="NotActivated"):
            evm.message_call("0x" + CALLER.hex(), "0x" + TARGET.hex(), b"", gas=100_000)
    else:
        evm.message_call("0x" + CALLER.hex(), "0x" + TARGET.hex(), b"", gas=100_000)


def test_an_unbracketed_instance_keeps_slots_warm() -> None:
    """Why every run is bracketed: pyrevm never finalizes, so the second call is cheaper."""
    evm = pyrevm.EVM(spec_id=SPEC)
    evm.insert_account_info("0x" + TARGET.hex(), pyrevm.AccountInfo(code=SSTORE_CALLDATA))
    gas = []
    for value in (5, 6):
        evm.message_call("0x" + CALLER.hex(), "0x" + TARGET.hex(), word(value), gas=100_000)
        assert evm.result is not None
        gas.append(evm.result.gas_used)
    assert gas[1] < gas[0] - 2_100  # no cold SLOAD/SSTORE surcharge the second time


# ---- the engine ----


def test_runs_start_cold_and_leave_no_journal() -> None:
    engine = engine_with(SSTORE_CALLDATA)
    first = engine.run(CALLER, TARGET, 0, word(5), 100_000, 0)
    again = engine.run(CALLER, TARGET, 0, word(5), 100_000, 0)
    assert first.success and again.success and first.gas_used == again.gas_used
    assert first.touched[TARGET].storage == {0: (0, 0), 1: (0, 5)}
    left = {address.lower() for address in engine._evm.journal_state}
    assert left <= {"0x" + COINBASE.hex()}  # revm loads the coinbase outside the journal


def test_written_storage_is_what_the_next_run_reads() -> None:
    engine = engine_with(SSTORE_CALLDATA)
    engine.put_storage([(TARGET, 0, 41), (TARGET, 1, 9), (TARGET, 2, 8)])  # one account, 3 slots
    run = engine.run(CALLER, TARGET, 0, word(6), 100_000, 0)
    assert int.from_bytes(run.output, "big") == 41
    assert run.touched[TARGET].storage == {0: (41, 41), 1: (9, 6)}


def test_failures_carry_revert_data_and_gas() -> None:
    revert = bytes.fromhex("60aa6000526001601ffd")  # mstore(0, 0xaa); revert(31, 1)
    engine = engine_with(revert)
    run = engine.run(CALLER, TARGET, 0, b"", 100_000, 0)
    assert not run.success and run.output == b"\xaa" and 21_000 < run.gas_used < 22_000
    assert not engine.run(CALLER, TARGET, 0, b"", 21_005, 0).success  # out of gas


def test_a_run_the_engine_rejects_uses_all_gas() -> None:
    engine = engine_with(b"\x00")
    run = engine.run(CALLER, TARGET, 10**19, b"", 50_000, 0)  # more value than the balance
    assert (run.success, run.gas_used, run.output) == (False, 50_000, b"")


def test_deploy_pays_nothing_to_the_coinbase() -> None:
    engine = engine_with(b"")
    init = bytes.fromhex("6001600c60003960016000f300")
    run = engine.run(CALLER, None, 0, init, 100_000, 10**9)
    assert run.success and run.output == b"\x00" and run.created is not None
    assert run.touched[run.created].created and run.touched[CALLER].nonce == 1
    again = engine.run(CALLER, None, 0, init, 100_000, 10**9)
    assert run.touched[COINBASE].balance == again.touched[COINBASE].balance == 0


def test_intrinsic_gas_matches_revm() -> None:
    engine = engine_with(b"\x00")
    data = b"\x00\x01" * 10
    run = engine.run(CALLER, TARGET, 0, data, 100_000, 0)
    assert run.gas_used == engine_intrinsic_gas(data, create=False)
    init = bytes(40)  # 40 STOPs: deploys empty code
    assert engine.run(CALLER, None, 0, init, 100_000, 0).gas_used == engine_intrinsic_gas(
        init, True
    )


# ---- the journal reader ----

JOURNAL = (
    "JournaledState { state: {"
    "0x1111111111111111111111111111111111111111: Account { info: AccountInfo { balance: 7, "
    "nonce: 2, code_hash: 0x" + "c5" * 32 + ", code: None }, storage: {}, "
    "status: AccountStatus(Touched) }, "
    "0x2222222222222222222222222222222222222222: Account { info: AccountInfo { balance: 0, "
    "nonce: 1, code_hash: 0x" + "ab" * 32 + ", code: Some(Bytecode { bytecode: 0x6001ff00000000, "
    'state: Analysed { len: 3, jump_map: JumpMap { map: "00" } } }) }, storage: {'
    "5: StorageSlot { previous_or_original_value: 0, present_value: 9 }, "
    "115792089237316195423570985008687907853269984665640564039457584007913129639935: "
    "StorageSlot { previous_or_original_value: 3, present_value: 3 }}, "
    "status: AccountStatus(Created | SelfDestructed | Touched) }, "
    "0x3333333333333333333333333333333333333333: Account { info: AccountInfo { balance: 1, "
    "nonce: 0, code_hash: 0x" + "cd" * 32 + ", code: Some(Bytecode { bytecode: 0x6000, "
    "state: Raw }) }, storage: {}, status: AccountStatus(Created) }"
    "}, transient_storage: {}, logs: [], depth: 0, journal: [[]], spec: LATEST, "
    "warm_preloaded_addresses: {} }"
)


def test_parse_touched() -> None:
    touched = parse_touched(JOURNAL)
    one, two, three = (touched[Address(bytes([b]) * 20)] for b in (0x11, 0x22, 0x33))
    assert (one.nonce, one.balance, one.created, one.destroyed, one.code, one.storage) == (
        2,
        7,
        False,
        False,
        b"",
        {},
    )
    assert two.created and two.destroyed and two.code == bytes.fromhex("6001ff")  # unpadded
    assert two.storage == {5: (0, 9), 2**256 - 1: (3, 3)}
    assert three.code == bytes.fromhex("6000") and not three.destroyed
    assert parse_touched("JournaledState { state: {}, transient_storage: {} }") == {}


def test_parse_touched_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="not a revm 8 journal"):
        parse_touched("JournaledState2 { }")
    with pytest.raises(ValueError, match="unexpected journal text"):
        parse_touched("JournaledState { state: {0xab: Account { info: AccountInfo {} } }")

"""A run with an access list leaves nothing behind in the engine: no warm slot, no stale value.

revm loads a transaction's access list without journaling it (`initial_account_load`), so the
revert that brackets every run used to keep the listed accounts and slots: warm for every later
run (cold-access gas went missing) and frozen at the values they had (later writes from the
state of record were reverted with the run, and eth_call never converged on a mirror it could
not refresh). Found by web3.py's conformance suite: eth_createAccessList, then a transaction
sent with that list, then any eth_call of the contract.
"""

from __future__ import annotations

from rollup.types import Address, BlockEnv
from vm.evm.engine import Engine

from .conftest import CHAIN_ID, COINBASE, GAS_LIMIT

CALLER = Address(b"\x11" * 20)
TARGET = Address(b"\xcc" * 20)
ENV = BlockEnv(1, 1000, COINBASE, 7, GAS_LIMIT, CHAIN_ID)
# sstore(1, calldata[0]); return sload(0)
SSTORE_CALLDATA = bytes.fromhex("6000356001555f5460005260206000f3")
LISTED = ((TARGET, ((0).to_bytes(32, "big"), (1).to_bytes(32, "big"))),)


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def engine() -> Engine:
    made = Engine(CHAIN_ID, GAS_LIMIT)
    made.set_block(ENV)
    made.put_account(CALLER, 0, 10**18, b"")
    made.put_account(TARGET, 1, 0, SSTORE_CALLDATA)
    return made


def test_listed_slots_are_warm_in_their_run_and_cold_after_it() -> None:
    fresh = engine().run(CALLER, TARGET, 0, word(5), 100_000, 0)
    used = engine()
    listed = used.run(CALLER, TARGET, 0, word(5), 100_000, 0, LISTED)
    after = used.run(CALLER, TARGET, 0, word(5), 100_000, 0)
    assert fresh.success and listed.success and after.success
    # EIP-2930/2929: the list costs 2,400 + 2 x 1,900 up front, and saves the cold surcharges
    # of the SLOAD (2,000) and of the SSTORE (2,100); the recipient is warm anyway
    assert listed.gas_used == fresh.gas_used + 2_400 + 2 * 1_900 - 2_000 - 2_100
    assert after.gas_used == fresh.gas_used  # cold again: nothing stayed warm
    left = {address.lower() for address in used._evm.journal_state}
    assert left <= {"0x" + COINBASE.hex()}


def test_storage_written_after_a_listed_run_is_what_the_next_run_reads() -> None:
    used = engine()
    assert used.run(CALLER, TARGET, 0, word(5), 100_000, 0, LISTED).success
    used.put_storage([(TARGET, 0, 41)])
    run = used.run(CALLER, TARGET, 0, word(6), 100_000, 0, LISTED)
    assert int.from_bytes(run.output, "big") == 41
    assert run.touched[TARGET].storage[0] == (41, 41)
    again = used.run(CALLER, TARGET, 0, word(6), 100_000, 0)
    assert int.from_bytes(again.output, "big") == 41

"""Differential test: the same signed transactions through our STF + EvmVM and through py-evm's
Cancun VM (the Python reference), compared receipt by receipt and account by account.

Gas used (refunds and their cap included), status, revert data, logs, created addresses,
nonces, balances, code and every storage slot we wrote must agree. py-evm is a reference only:
it is skipped where it is not installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_keys import keys
from eth_utils import keccak

from rollup.types import Address, Transaction
from vm.state import get_account, get_code

from .conftest import (
    ALICE,
    BASE_FEE,
    BOB,
    CAROL,
    CHAIN_ID,
    FUNDS,
    GAS_LIMIT,
    KEYS,
    Chain,
    Contract,
    create_address,
)

pyevm = pytest.importorskip("eth.chains.base")
forks = pytest.importorskip("eth.vm.forks")
atomic = pytest.importorskip("eth.db.atomic")

HEIR = Address(b"\x66" * 20)
STRANGER = Address(b"\x55" * 20)


class Reference:
    """py-evm with the same genesis; its first block's base fee is ours (8 * 7/8 = 7)."""

    def __init__(self) -> None:
        chain_class = pyevm.MiningChain.configure(
            __name__="Reference", vm_configuration=((0, forks.CancunVM),), chain_id=CHAIN_ID
        )
        genesis = {"balance": FUNDS, "nonce": 0, "code": b"", "storage": {}}
        self.chain = chain_class.from_genesis(
            atomic.AtomicDB(),
            {
                "coinbase": b"\xcb" * 20,
                "difficulty": 0,
                "gas_limit": GAS_LIMIT,
                "timestamp": 1,
                "base_fee_per_gas": BASE_FEE * 8 // 7,
                "nonce": b"\x00" * 8,
                "mix_hash": b"\x00" * 32,
            },
            {ALICE: genesis, BOB: genesis, CAROL: genesis},
        )
        self.cumulative = 0

    def apply(self, tx: Transaction) -> tuple[int, int, bytes, list[Any], bytes | None]:
        """(status, gas used, output, logs, created address) of one transaction."""
        vm_tx = self.chain.get_vm().get_transaction_builder().decode(tx.raw)
        _block, receipt, computation = self.chain.apply_transaction(vm_tx)
        gas_used, self.cumulative = receipt.gas_used - self.cumulative, receipt.gas_used
        created = (
            computation.msg.storage_address if tx.to is None and computation.is_success else None
        )
        logs = [
            (bytes(log.address), tuple(t.to_bytes(32, "big") for t in log.topics), log.data)
            for log in receipt.logs
        ]
        output = computation.output if tx.to is not None or not computation.is_success else b""
        return int(computation.is_success), gas_used, output, logs, created

    @property
    def state(self) -> Any:
        return self.chain.get_vm().state


Step = Callable[[dict[str, Address]], tuple[Address, str | None, bytes, int, int]]


def scenario(c: dict[str, Contract]) -> list[tuple[str, Step]]:
    """(label, step): a step builds (sender, contract name or None, calldata, value, gas)."""
    token, failing, factory, probe = c["Token"], c["Failing"], c["Factory"], c["Probe"]
    digest = keccak(b"hi")
    sig = keys.PrivateKey(bytes.fromhex(KEYS[CAROL][2:])).sign_msg_hash(digest)
    r, s = sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")

    def call(sender: Address, name: str, data: bytes, value: int = 0, gas: int = 1_000_000) -> Step:
        return lambda at: (sender, name, data, value, gas)

    def to(sender: Address, name: str, fn: Callable[[dict[str, Address]], bytes]) -> Step:
        return lambda at: (sender, name, fn(at), 0, 1_000_000)

    return [
        ("transfer to a new holder", call(ALICE, "Token", token.calldata("transfer", BOB, 10))),
        ("transfer to a holder", call(ALICE, "Token", token.calldata("transfer", BOB, 10))),
        ("transfer, not enough", call(CAROL, "Token", token.calldata("transfer", BOB, 1))),
        ("approve", call(ALICE, "Token", token.calldata("approve", CAROL, 100))),
        ("transferFrom", call(CAROL, "Token", token.calldata("transferFrom", ALICE, CAROL, 60))),
        (
            "transferFrom, over",
            call(CAROL, "Token", token.calldata("transferFrom", ALICE, BOB, 50)),
        ),
        ("Error(string)", call(BOB, "Failing", failing.calldata("withReason"))),
        ("Panic(0x32)", call(BOB, "Failing", failing.calldata("withPanic"))),
        ("custom error", call(BOB, "Failing", failing.calldata("withCustom"))),
        ("divide by zero", call(BOB, "Failing", failing.calldata("divide", 1, 0))),
        ("out of gas", call(BOB, "Failing", failing.calldata("burnGas"), gas=80_000)),
        ("write then revert", call(BOB, "Failing", failing.calldata("setThenRevert", 3))),
        ("fill 6 slots", call(BOB, "Failing", failing.calldata("fill", 6))),
        ("clear 6 slots (refund)", call(BOB, "Failing", failing.calldata("clear", 6))),
        ("fill 2 slots", call(BOB, "Failing", failing.calldata("fill", 2))),
        ("clear 1 slot (refund)", call(BOB, "Failing", failing.calldata("clear", 1))),
        ("create2", call(BOB, "Factory", factory.calldata("create2", b"\x01" * 32), value=9)),
        ("create2 again", call(BOB, "Factory", factory.calldata("create2", b"\x01" * 32))),
        ("create", call(BOB, "Factory", factory.calldata("create"))),
        ("create and destroy", call(BOB, "Factory", factory.calldata("createAndDestroy", HEIR), 7)),
        ("value to receive()", call(CAROL, "Probe", b"", value=10**15)),
        ("value to no receive()", call(CAROL, "Token", b"", value=10**15)),
        ("forward value", call(CAROL, "Probe", probe.calldata("forward", STRANGER), value=33)),
        ("self-call x8", call(ALICE, "Probe", probe.calldata("recurse", 8))),
        ("caught revert", to(ALICE, "Probe", lambda at: probe.calldata("tryFail", at["Failing"]))),
        ("ecrecover", call(ALICE, "Probe", probe.calldata("recover", digest, sig.v + 27, r, s))),
        ("sha256", call(ALICE, "Probe", probe.calldata("sha", b"x" * 100))),
        ("identity", call(ALICE, "Probe", probe.calldata("identity", b"y" * 70))),
        ("transient 1", call(ALICE, "Probe", probe.calldata("useTransient", 5))),
        ("transient 2", call(ALICE, "Probe", probe.calldata("useTransient", 6))),
        ("balance of", call(ALICE, "Probe", probe.calldata("balanceOfAccount", STRANGER))),
        (
            "destroy later",
            to(BOB, "Factory", lambda at: factory.calldata("destroyExisting", at["child"], HEIR)),
        ),
        ("empty calldata to a contract", call(ALICE, "Failing", b"")),
    ]


@pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode present:DeprecationWarning")
def test_same_results_as_pyevm(contracts: dict[str, Contract]) -> None:
    ours, reference = Chain(), Reference()
    at: dict[str, Address] = {}
    seen: list[tuple[str, int, int]] = []

    def both(tx: Transaction, label: str) -> None:
        receipt = ours.apply(tx)
        status, gas, output, logs, created = reference.apply(tx)
        assert (receipt.status, receipt.gas_used) == (status, gas), label
        if tx.to is not None or not receipt.status:  # a CREATE's output is its runtime code
            assert receipt.return_data == output, label
        assert [(log.address, log.topics, log.data) for log in receipt.logs] == logs, label
        assert receipt.contract_address == created, label
        seen.append((label, receipt.status, receipt.gas_used))

    for name in ("Token", "Failing", "Factory", "Probe"):
        init = contracts[name].bytecode
        if name == "Token":
            init = contracts[name].deploy_data(("uint256", 10**6))
        both(ours.sign(ALICE, None, init), f"deploy {name}")
        at[name] = create_address(ALICE, get_account(ours.state, ALICE)[0] - 1)
    for label, step in scenario(contracts):
        sender, name, data, value, gas = step(at)
        both(ours.sign(sender, at[name] if name else None, data, value, gas), label)
        if label == "create2":
            at["child"] = create2_child(ours, contracts["Factory"], at["Factory"])

    assert sum(1 for _, status, _ in seen if status == 0) == 11  # the failures did fail
    state = reference.state
    for address in {ALICE, BOB, CAROL, HEIR, STRANGER, *at.values()}:
        expected = (state.get_nonce(address), state.get_balance(address))
        assert get_account(ours.state, address) == expected, address.hex()
        assert get_code(ours.state, address) == state.get_code(address), address.hex()
    for key, (_before, after) in ours.state.changes().items():
        if key[:1] == b"\x01":
            address, slot = key[1:21], int.from_bytes(key[21:], "big")
            assert int.from_bytes(after or b"", "big") == state.get_storage(address, slot)


def create2_child(chain: Chain, factory: Contract, address: Address) -> Address:
    predicted = chain.call(address, factory.calldata("predict", b"\x01" * 32), sender=BOB)
    return Address(bytes.fromhex(factory.returns("predict", predicted.output)[0][2:]))

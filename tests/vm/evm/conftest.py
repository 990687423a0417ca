"""Fixtures for the EVM adapter: compiled Solidity and a chain driven through the real STF.

`Chain` signs EIP-1559 transactions with eth_account, decodes them with
`rollup.transactions.decode_transaction` and applies them with `vm.stf.apply_transaction` on
a `State(DictReader(genesis))`, exactly as the sequencer does; it keeps one block open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_abi import decode, encode
from eth_account import Account
from eth_utils import keccak

from bridge.solc import compile_files
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.transactions import decode_transaction
from rollup.types import Address, BlockEnv, Hash32, Receipt, Transaction
from vm.evm import EvmVM
from vm.interface import ExecResult, Message
from vm.state import DictReader, State, account_key, get_account
from vm.stf import apply_transaction

CONTRACTS = Path(__file__).resolve().parent / "contracts"
CHAIN_ID = 4242
GAS_LIMIT = 30_000_000
BASE_FEE = 7
TIP = 1
COINBASE = Address(b"\xfe" * 20)
ALICE, BOB, CAROL = DEV_ADDRESSES[0], DEV_ADDRESSES[1], DEV_ADDRESSES[2]
KEYS = dict(zip(DEV_ADDRESSES, DEV_KEYS, strict=True))
FUNDS = 10**21


@dataclass(frozen=True)
class Contract:
    abi: list[dict[str, Any]]
    bytecode: bytes

    def selector(self, name: str) -> bytes:
        for item in self.abi:
            if item.get("type") == "function" and item["name"] == name:
                types = ",".join(i["type"] for i in item["inputs"])
                return keccak(text=f"{name}({types})")[:4]
        raise KeyError(name)

    def calldata(self, name: str, *args: Any) -> bytes:
        item = next(i for i in self.abi if i.get("type") == "function" and i["name"] == name)
        return self.selector(name) + encode([i["type"] for i in item["inputs"]], list(args))

    def returns(self, name: str, output: bytes) -> tuple[Any, ...]:
        item = next(i for i in self.abi if i.get("type") == "function" and i["name"] == name)
        return tuple(decode([o["type"] for o in item["outputs"]], output))

    def deploy_data(self, *types_and_args: tuple[str, Any]) -> bytes:
        types = [t for t, _ in types_and_args]
        return self.bytecode + encode(types, [a for _, a in types_and_args])


def compile_fixtures() -> dict[str, Contract]:
    """All contracts of contracts/*.sol, for Cancun, in one solc run."""
    compiled = compile_files(sorted(CONTRACTS.glob("*.sol")))
    return {name: Contract(c.abi, c.bytecode) for name, c in compiled.items()}


@pytest.fixture(scope="session")
def contracts() -> dict[str, Contract]:
    try:
        return compile_fixtures()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def create_address(sender: bytes, nonce: int) -> Address:
    """Where CREATE puts a contract: keccak(rlp([sender, nonce]))[12:]."""
    return Address(keccak(rlp.encode([sender, nonce]))[12:])


def genesis(balances: dict[Address, int]) -> dict[bytes, bytes]:
    return {
        account_key(a): (0).to_bytes(8, "big") + b.to_bytes((b.bit_length() + 7) // 8, "big")
        for a, b in balances.items()
    }


class Chain:
    """One open block on a fresh state, with a funded ALICE, BOB and CAROL."""

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self.data = data if data is not None else genesis({ALICE: FUNDS, BOB: FUNDS, CAROL: FUNDS})
        self.state = State(DictReader(self.data))
        self.vm = EvmVM(CHAIN_ID, GAS_LIMIT, self.data.items())
        self.env = BlockEnv(
            1, 1_700_000_000, COINBASE, BASE_FEE, GAS_LIMIT, CHAIN_ID, Hash32(b"\x42" * 32)
        )
        self.block_gas = 0

    def sign(
        self,
        sender: Address,
        to: Address | None,
        data: bytes = b"",
        value: int = 0,
        gas: int = 3_000_000,
        nonce: int | None = None,
    ) -> Transaction:
        fields = {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": get_account(self.state, sender)[0] if nonce is None else nonce,
            "maxFeePerGas": 2 * BASE_FEE,
            "maxPriorityFeePerGas": TIP,
            "gas": gas,
            "to": to or b"",
            "value": value,
            "data": data,
        }
        raw = Account.sign_transaction(fields, KEYS[sender]).raw_transaction
        return decode_transaction(bytes(raw), CHAIN_ID)

    def apply(self, tx: Transaction) -> Receipt:
        receipt = apply_transaction(self.state, self.env, self.vm, tx, self.block_gas)
        self.block_gas = receipt.cumulative_gas_used
        return receipt

    def send(
        self,
        sender: Address,
        to: Address | None,
        data: bytes = b"",
        value: int = 0,
        gas: int = 3_000_000,
    ) -> Receipt:
        return self.apply(self.sign(sender, to, data, value, gas))

    def deploy(self, sender: Address, init: bytes, value: int = 0) -> Address:
        receipt = self.send(sender, None, init, value)
        assert receipt.status == 1, receipt
        assert receipt.contract_address is not None
        return receipt.contract_address

    def call(
        self,
        to: Address | None,
        data: bytes,
        sender: Address = ALICE,
        value: int = 0,
        gas: int = 1_000_000,
    ) -> ExecResult:
        return self.vm.call(self.state, self.env, Message(sender, to, value, data, gas, sender, 0))

    def next_block(self) -> None:
        """Seal nothing: move the open block's writes into the base and start a new block."""
        for key, (_before, after) in self.state.changes().items():
            if after is None:
                self.data.pop(key, None)
            else:
                self.data[key] = after
        self.state = State(DictReader(self.data))
        self.env = BlockEnv(
            self.env.number + 1,
            self.env.timestamp + 1,
            COINBASE,
            BASE_FEE,
            GAS_LIMIT,
            CHAIN_ID,
            self.env.prev_randao,
        )
        self.block_gas = 0


@pytest.fixture
def chain() -> Chain:
    return Chain()

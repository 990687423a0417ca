"""An EVM app calls a native app on another chain and gets its callback, through the AppBus
system contract (vm/contracts/AppBus.sol) and the same state-transition function."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi import decode, encode
from eth_account import Account

from bridge.solc import CompiledContract, compile_sources
from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.messages import APP_BUS_ADDRESS, BUS_ADDRESS, CrossMessage, remote_address
from rollup.transactions import decode_transaction
from rollup.types import Address, BlockEnv, Hash32, Receipt
from sequencer.harness import LocalChain
from vm.bus import apply_inbound, next_send_nonce, pending_call
from vm.contracts.app_bus import APP_BUS_RUNTIME
from vm.evm import EvmVM
from vm.state import DictReader, State, account_key, code_key, get_balance
from vm.stf import apply_transaction

REPO = Path(__file__).resolve().parents[2]
CHAIN_ID = 4242
GAS_LIMIT = 30_000_000
ALICE = DEV_ADDRESSES[0]
KEY = DEV_KEYS[0]


@pytest.fixture(scope="module")
def contracts() -> dict[str, CompiledContract]:
    sources = {p.name: p.read_text() for p in (REPO / "vm" / "contracts").glob("*.sol")}
    sources["BusCaller.sol"] = (Path(__file__).parent / "contracts" / "BusCaller.sol").read_text()
    try:
        return compile_sources(sources)
    except FileNotFoundError as exc:  # pragma: no cover - solc comes from npm (setup.sh)
        pytest.skip(f"solc unavailable: {exc}")


class EvmChain:
    """One EVM chain with the AppBus predeployed; blocks are not sealed, state is kept open."""

    def __init__(self, bus_code: bytes) -> None:
        funds = 10**22
        self.data = {
            account_key(ALICE): (0).to_bytes(8, "big") + funds.to_bytes(10, "big"),
            code_key(APP_BUS_ADDRESS): bus_code,
        }
        self.state = State(DictReader(self.data))
        self.vm = EvmVM(CHAIN_ID, GAS_LIMIT, self.data.items())
        self.env = BlockEnv(
            1, 1_700_000_000, Address(b"\xfe" * 20), 7, GAS_LIMIT, CHAIN_ID, Hash32(bytes(32))
        )
        self.nonce = 0
        self.outbound: list[CrossMessage] = []

    def send(self, to: Address | None, data: bytes, value: int = 0) -> Receipt:
        fields = {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": self.nonce,
            "maxFeePerGas": 14,
            "maxPriorityFeePerGas": 0,
            "gas": 3_000_000,
            "to": to or b"",
            "value": value,
            "data": data,
        }
        self.nonce += 1
        raw = Account.sign_transaction(fields, KEY).raw_transaction
        tx = decode_transaction(bytes(raw), CHAIN_ID)
        return apply_transaction(self.state, self.env, self.vm, tx, 0, self.outbound)

    def view(self, contract: Address, signature: str, returns: str) -> object:
        from vm.interface import Message

        data = keccak(signature.encode())[:4]
        result = self.vm.call(
            self.state, self.env, Message(ALICE, contract, 0, data, 10**6, ALICE, 0)
        )
        assert result.success
        return decode([returns], result.output)[0]


def test_the_shipped_app_bus_code_is_its_source_compiled(
    contracts: dict[str, CompiledContract],
) -> None:
    assert contracts["AppBus"].deployed == APP_BUS_RUNTIME, "run the generator in NOTES.md"


def test_evm_app_calls_a_native_app_and_gets_its_callback(
    contracts: dict[str, CompiledContract], app_dirs: tuple[Path, Path]
) -> None:
    evm = EvmChain(APP_BUS_RUNTIME)
    created = evm.send(None, contracts["BusCaller"].bytecode)
    assert created.status == 1 and created.contract_address is not None
    caller = created.contract_address
    with LocalChain.from_dir(app_dirs[1]) as ponger:
        ping = keccak(b"ping(uint64,address,uint256)")[:4]
        call = ping + encode(
            ["uint64", "address", "uint256"], [ponger.node.chain_id, ponger.app.address, 7]
        )
        receipt = evm.send(caller, call)
        assert receipt.status == 1, receipt
        (message,) = evm.outbound
        assert message.id == receipt.return_data  # the contract computed the node's id
        assert (message.src_chain, message.channel_nonce, message.sender) == (CHAIN_ID, 0, caller)
        assert message.data == keccak(b"pong(uint256)")[:4] + encode(["uint256"], [7])
        assert next_send_nonce(evm.state, ponger.node.chain_id) == 1  # the shared slot
        assert pending_call(evm.state, message.id) is not None

        # the native destination executes it and answers
        assert ponger.node.receive(message)
        block = ponger.node.produce(1_700_000_000_500)
        assert block is not None and block.block.inbound_receipts[0].status == 1
        assert ponger.call("times", 7) == 1
        (result,) = block.block.outbound
        assert result.ref_id == message.id and result.success

        # back on the EVM chain the result runs the contract's callback, from the bus
        receipts = apply_inbound(evm.state, evm.env, evm.vm, [result], [])
        assert receipts[0].status == 1, receipts[0]
        assert evm.view(caller, "callbacks()", "uint256") == 1
        assert evm.view(caller, "lastValue()", "uint256") == 7
        assert evm.view(caller, "lastId()", "bytes32") == message.id
        assert pending_call(evm.state, message.id) is None


def test_evm_value_is_escrowed_and_refunded_when_the_call_fails(
    contracts: dict[str, CompiledContract], app_dirs: tuple[Path, Path]
) -> None:
    evm = EvmChain(APP_BUS_RUNTIME)
    caller = evm.send(None, contracts["BusCaller"].bytecode).contract_address
    assert caller is not None
    with LocalChain.from_dir(app_dirs[1]) as ponger:
        call = keccak(b"ping(uint64,address,uint256)")[:4] + encode(
            ["uint64", "address", "uint256"], [ponger.node.chain_id, ponger.app.address, 1]
        )
        assert evm.send(caller, call, value=10**18).status == 1
        assert get_balance(evm.state, BUS_ADDRESS) == 10**18  # the escrow
        assert get_balance(evm.state, caller) == 0
        (message,) = evm.outbound
        ponger.node.receive(message)
        block = ponger.node.produce(1_700_000_000_500)
        assert block is not None
        (result,) = block.block.outbound
        assert not result.success  # pong is not payable
        assert get_balance(ponger.node.state, remote_address(CHAIN_ID, caller)) == 0
        receipts = apply_inbound(evm.state, evm.env, evm.vm, [result], [])
        assert receipts[0].status == 1
        assert get_balance(evm.state, caller) == 10**18  # refunded before the callback
        assert get_balance(evm.state, BUS_ADDRESS) == 0
        assert evm.view(caller, "lastOk()", "bool") is False

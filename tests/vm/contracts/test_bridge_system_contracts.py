"""The EVM app chains' bridge system contracts in isolation, installed on Anvil as the node
installs them (code at the system address; BridgedToken's slots 3-5 written directly, no
constructor): L2ToL1 logs withdrawals within its bounds; BridgedToken mints only for the bridge,
burns and records a token withdrawal through L2ToL1, is an ordinary ERC-20 with its name,
symbol and decimals, and keeps balances where the escape hatch proves them (slot 0)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from bridge.solc import compile_files
from rollup.crypto import keccak
from rollup.deposits import BRIDGE_ADDRESS, L2_TO_L1_ADDRESS, bridged_token_address
from rollup.genesis import DEV_ADDRESSES
from services.anvil import AnvilProcess
from vm.bridge import WITHDRAWAL_INITIATED_TOPIC
from vm.contracts.bridged_token import (
    BRIDGED_TOKEN_RUNTIME,
    DECIMALS_SLOT,
    L1_TOKEN_SLOT,
    SYMBOL_SLOT,
    TOTAL_SUPPLY_SLOT,
    balance_slot,
)
from vm.contracts.l2_to_l1 import L2_TO_L1_RUNTIME

pytestmark = pytest.mark.e2e

CONTRACTS = Path(__file__).resolve().parents[3] / "vm" / "contracts"
L1_TOKEN = bytes.fromhex("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
ALICE, BOB, CAROL = (Web3.to_checksum_address(a) for a in DEV_ADDRESSES[1:4])
ZERO = Web3.to_checksum_address(bytes(20))
MAX_UINT = 2**256 - 1


class L2:
    """An Anvil playing an EVM app chain's execution, with the system contracts installed."""

    def __init__(self, anvil: AnvilProcess) -> None:
        self.w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
        compiled = compile_files([CONTRACTS / "L2ToL1.sol", CONTRACTS / "BridgedToken.sol"])
        self.abi = {name: compiled[name].abi for name in ("L2ToL1", "BridgedToken")}
        self.install(L2_TO_L1_ADDRESS, L2_TO_L1_RUNTIME)
        self.token = self.install_token(L1_TOKEN, 6, b"USDC")
        self.bridge = Web3.to_checksum_address(BRIDGE_ADDRESS)
        self.rpc("anvil_impersonateAccount", [self.bridge])
        self.rpc("anvil_setBalance", [self.bridge, hex(10**18)])

    def rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        assert "error" not in answer, answer
        return answer.get("result")

    def install(self, address: bytes, code: bytes) -> None:
        self.rpc("anvil_setCode", [Web3.to_checksum_address(address), "0x" + code.hex()])

    def set_slot(self, address: bytes, slot: int | bytes, value: bytes) -> None:
        key = slot if isinstance(slot, bytes) else slot.to_bytes(32, "big")
        self.rpc(
            "anvil_setStorageAt",
            [
                Web3.to_checksum_address(address),
                "0x" + key.hex(),
                "0x" + value.rjust(32, b"\0").hex(),
            ],
        )

    def install_token(
        self, l1_token: bytes, decimals: int, symbol: bytes, at: bytes | None = None
    ) -> Any:
        """What the STF does on a token's first deposit: code, then slots 3-5."""
        address = at or bridged_token_address(l1_token)
        self.install(address, BRIDGED_TOKEN_RUNTIME)
        self.set_slot(address, L1_TOKEN_SLOT, l1_token)
        self.set_slot(address, DECIMALS_SLOT, bytes([decimals]))
        self.set_slot(address, SYMBOL_SLOT, symbol.ljust(32, b"\0"))
        return self.contract("BridgedToken", address)

    def contract(self, name: str, address: bytes) -> Any:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=self.abi[name])

    def transact(self, fn: Any, sender: str, value: int = 0, gas: int = 1_000_000) -> Any:
        tx_hash = fn.transact({"from": sender, "value": value, "gas": gas})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
        assert receipt["status"] == 1
        return receipt

    def reverts(self, fn: Any, sender: str, error: str, value: int = 0) -> None:
        with pytest.raises(ContractLogicError) as caught:
            fn.call({"from": sender, "value": value})
        expected = "0x" + keccak(error.encode())[:4].hex() if error else "0x"
        assert str(caught.value.data).startswith(expected)

    def slot(self, address: bytes, slot: int | bytes) -> int:
        key = slot if isinstance(slot, bytes) else slot.to_bytes(32, "big")
        raw = self.w3.eth.get_storage_at(
            Web3.to_checksum_address(address), int.from_bytes(key, "big")
        )
        return int.from_bytes(raw, "big")


@pytest.fixture(scope="module")
def l2() -> Iterator[L2]:
    with AnvilProcess() as anvil:
        yield L2(anvil)


def _withdrawals(l2: L2, receipt: Any) -> list[Any]:
    event = l2.contract("L2ToL1", L2_TO_L1_ADDRESS).events.WithdrawalInitiated()
    logs = [log for log in receipt["logs"] if bytes(log["topics"][0]) == WITHDRAWAL_INITIATED_TOPIC]
    assert all(bytes.fromhex(log["address"][2:]) == L2_TO_L1_ADDRESS for log in logs)
    return [event.process_log(log)["args"] for log in logs]


def test_the_token_has_its_metadata_from_storage(l2: L2) -> None:
    token = l2.token
    assert token.functions.name().call() == "Bridged USDC"
    assert token.functions.symbol().call() == "USDC"
    assert token.functions.decimals().call() == 6
    assert bytes.fromhex(token.functions.l1Token().call()[2:]) == L1_TOKEN
    full = l2.install_token(b"\x01" * 20, 18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345")
    assert full.functions.symbol().call() == "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    assert full.functions.name().call() == "Bridged ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def test_only_the_bridge_mints_and_balances_live_in_slot_0(l2: L2) -> None:
    token = l2.token
    l2.reverts(token.functions.bridgeMint(ALICE, 1), ALICE, "NotBridge(address)")
    receipt = l2.transact(token.functions.bridgeMint(ALICE, 1_000), l2.bridge)
    transfer = token.events.Transfer().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (transfer["from"], transfer["to"], transfer["value"]) == (ZERO, ALICE, 1_000)
    address = bridged_token_address(L1_TOKEN)
    alice = bytes.fromhex(ALICE[2:])
    assert l2.slot(address, balance_slot(alice)) == token.functions.balanceOf(ALICE).call()
    assert l2.slot(address, TOTAL_SUPPLY_SLOT) == token.functions.totalSupply().call() >= 1_000
    # the node may also credit by writing slot 0 directly: the token reads it
    carol = bytes.fromhex(CAROL[2:])
    l2.set_slot(address, balance_slot(carol), (77).to_bytes(1, "big"))
    assert token.functions.balanceOf(CAROL).call() == 77


def test_erc20_transfers_and_allowances(l2: L2) -> None:
    token = l2.token
    l2.transact(token.functions.bridgeMint(ALICE, 500), l2.bridge)
    alice_before = token.functions.balanceOf(ALICE).call()
    bob_before = token.functions.balanceOf(BOB).call()
    l2.transact(token.functions.transfer(BOB, 100), ALICE)
    assert token.functions.balanceOf(BOB).call() == bob_before + 100
    l2.reverts(
        token.functions.transfer(BOB, 10**30), ALICE, "InsufficientBalance(address,uint256,uint256)"
    )
    l2.reverts(token.functions.transfer(ZERO, 1), ALICE, "InvalidReceiver(address)")

    l2.transact(token.functions.approve(CAROL, 60), ALICE)
    assert token.functions.allowance(ALICE, CAROL).call() == 60
    l2.transact(token.functions.transferFrom(ALICE, BOB, 50), CAROL)
    assert token.functions.allowance(ALICE, CAROL).call() == 10
    l2.reverts(
        token.functions.transferFrom(ALICE, BOB, 11),
        CAROL,
        "InsufficientAllowance(address,address,uint256,uint256)",
    )
    l2.transact(token.functions.approve(CAROL, MAX_UINT), ALICE)
    l2.transact(token.functions.transferFrom(ALICE, BOB, 5), CAROL)
    assert token.functions.allowance(ALICE, CAROL).call() == MAX_UINT  # never spent down
    assert token.functions.balanceOf(ALICE).call() == alice_before - 155


def test_withdraw_burns_and_records_a_token_withdrawal(l2: L2) -> None:
    token = l2.token
    l2.transact(token.functions.bridgeMint(BOB, 1_000), l2.bridge)
    supply = token.functions.totalSupply().call()
    balance = token.functions.balanceOf(BOB).call()
    recipient = Web3.to_checksum_address("0x" + "ab" * 20)
    receipt = l2.transact(token.functions.withdraw(recipient, 300), BOB)
    assert token.functions.balanceOf(BOB).call() == balance - 300
    assert token.functions.totalSupply().call() == supply - 300
    burn = token.events.Transfer().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (burn["from"], burn["to"], burn["value"]) == (BOB, ZERO, 300)
    (w,) = _withdrawals(l2, receipt)
    assert (w["sender"], w["target"], w["value"]) == (BOB, recipient, 0)
    assert (bytes.fromhex(w["l1Token"][2:]), w["tokenAmount"]) == (L1_TOKEN, 300)
    assert (w["gasLimit"], w["data"]) == (0, b"")
    l2.reverts(
        token.functions.withdraw(recipient, 10**30),
        BOB,
        "InsufficientBalance(address,uint256,uint256)",
    )
    l2.reverts(token.functions.withdraw(ZERO, 1), BOB, "ZeroTarget()")


def test_a_token_elsewhere_cannot_record_withdrawals(l2: L2) -> None:
    """A BridgedToken runtime at any address but the canonical one of its l1Token."""
    fake = l2.install_token(L1_TOKEN, 6, b"USDC", at=b"\x77" * 20)
    l2.transact(fake.functions.bridgeMint(ALICE, 10), l2.bridge)
    l2.reverts(fake.functions.withdraw(ALICE, 10), ALICE, "NotBridgedToken(address,address)")
    system = l2.contract("L2ToL1", L2_TO_L1_ADDRESS)
    # an EOA has no l1Token(): the call reverts without data
    l2.reverts(system.functions.initiateTokenWithdrawal(ALICE, ALICE, 1), BOB, "")


def test_initiate_withdrawal_logs_within_its_bounds(l2: L2) -> None:
    system = l2.contract("L2ToL1", L2_TO_L1_ADDRESS)
    before = l2.w3.eth.get_balance(Web3.to_checksum_address(L2_TO_L1_ADDRESS))
    receipt = l2.transact(
        system.functions.initiateWithdrawal(CAROL, 80_000, b"\x12\x34"), ALICE, value=10**15
    )
    (w,) = _withdrawals(l2, receipt)
    assert (w["sender"], w["target"], w["value"], w["gasLimit"], w["data"]) == (
        ALICE,
        CAROL,
        10**15,
        80_000,
        b"\x12\x34",
    )
    assert (w["l1Token"], w["tokenAmount"]) == (ZERO, 0)
    # it keeps the value (the STF burns it after the transaction)
    assert l2.w3.eth.get_balance(Web3.to_checksum_address(L2_TO_L1_ADDRESS)) == before + 10**15
    fn = system.functions.initiateWithdrawal
    l2.reverts(fn(ZERO, 0, b""), ALICE, "ZeroTarget()")
    l2.reverts(fn(CAROL, 30_000_001, b""), ALICE, "GasLimitTooHigh(uint64,uint64)")
    l2.reverts(fn(CAROL, 0, bytes(120_001)), ALICE, "DataTooLarge(uint256,uint256)")
    l2.transact(fn(CAROL, 30_000_000, bytes(120_000)), ALICE, gas=3_000_000)  # at the bounds

"""Deposits through the Portal on a real EVM (Anvil): the TransactionDeposited event is exactly
what rollup/deposits.py decodes (every field, the nonce sequence per chain, the deposit id from
the log's L1 block hash and index), a contract depositor is aliased, ERC-20 escrow credits what
arrived, token metadata failures are tolerated, and every bound reverts."""

from __future__ import annotations

import json

import pytest
from eth_abi import decode

from bridge.build import CONTRACTS_DIR, compile_contract, load_abi
from bridge.l1 import L1Rejected
from bridge.portal import DEPOSITED_TOPIC, PortalDeposits
from rollup.deposits import (
    MAX_DEPOSIT_DATA,
    MAX_DEPOSIT_GAS,
    alias_l1_address,
    deposit_from_event,
    deposit_source_hash,
)
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.types import ZERO_ADDRESS
from tests.bridge.conftest import Bridge

pytestmark = pytest.mark.e2e

ALICE, BOB = DEV_ADDRESSES[2], DEV_ADDRESSES[3]
ALICE_KEY = DEV_KEYS[2]
ETHER = 10**18


def _symbol(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def test_the_kept_abi_is_the_compiled_one() -> None:
    compiled = compile_contract(CONTRACTS_DIR / "Portal.sol", "Portal")
    assert json.dumps(compiled.abi, sort_keys=True) == json.dumps(
        load_abi("Portal"), sort_keys=True
    )


def test_an_eth_deposit_emits_the_event_rollup_decodes(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    alice = bridge.portal_as(ALICE_KEY)
    sent = alice.deposit_eth(chain, BOB, 3 * ETHER, gas_limit=50_000, data=b"\xca\xfe")
    receipt = bridge.owner.w3.eth.get_transaction_receipt(sent.l1_tx)  # type: ignore[arg-type]
    (log,) = [entry for entry in receipt["logs"] if bytes(entry["topics"][0]) == DEPOSITED_TOPIC]

    # decode the raw log by hand, as a node that does not use bridge/portal.py would
    topics = [bytes(t) for t in log["topics"]]
    chain_id, nonce = int.from_bytes(topics[1], "big"), int.from_bytes(topics[2], "big")
    sender = topics[3][12:]
    (opaque,) = decode(["bytes"], bytes(log["data"]))
    deposit = deposit_from_event(
        chain_id,
        nonce,
        sender,
        opaque,
        bytes(log["blockHash"]),
        int(log["logIndex"]),
        int(log["blockNumber"]),
    )
    assert (chain_id, nonce) == (chain, 0)
    assert deposit.sender == ALICE and deposit.to == BOB
    assert (deposit.mint, deposit.value) == (3 * ETHER, 3 * ETHER)
    assert (deposit.gas, deposit.data) == (50_000, b"\xca\xfe")
    assert (deposit.l1_token, deposit.token_amount) == (ZERO_ADDRESS, 0)
    assert (deposit.decimals, deposit.symbol) == (0, bytes(32))
    assert len(opaque) == 177 + 2
    assert deposit.source_hash == deposit_source_hash(
        chain, bytes(log["blockHash"]), int(log["logIndex"])
    )
    assert sent.deposit == deposit and sent.deposit.l1_block == receipt["blockNumber"]
    assert bridge.portal.eth_balance(chain) == 3 * ETHER


def test_nonces_count_per_chain_and_the_reader_returns_deposits_in_log_order(
    bridge: Bridge,
) -> None:
    first, second = bridge.new_chain(), bridge.new_chain()
    alice = bridge.portal_as(ALICE_KEY)
    start = bridge.owner.block_number()
    sent = [
        alice.deposit_eth(first, BOB, 1),
        alice.deposit_eth(second, BOB, 2),
        alice.deposit_eth(first, ALICE, 3),
        alice.deposit_eth(first, BOB, 4),
    ]
    reader = PortalDeposits(bridge.owner, bridge.portal.address)
    read = reader.deposits(first, start)
    assert [d.nonce for d in read] == [0, 1, 2]
    assert read == [sent[0].deposit, sent[2].deposit, sent[3].deposit]
    assert [d.mint for d in read] == [1, 3, 4]
    assert [d.nonce for d in reader.deposits(second, start)] == [0]
    assert bridge.portal.chain(first).deposit_count == 3
    # ids are unique per log, and differ across chains for the same L1 block
    assert len({d.source_hash for d in read}) == 3
    assert reader.deposits(first, start, start) == []
    block = read[0].l1_block
    assert reader.l1_block_hash(block) == bytes(bridge.owner.w3.eth.get_block(block)["hash"])
    assert reader.l1_block_hash(10**9) is None


def test_a_contract_depositor_is_aliased(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    depositor = bridge.deploy("Depositor")
    receipt = bridge.send(
        "Depositor",
        depositor,
        "deposit",
        bridge.portal.address,
        chain,
        BOB,
        21_000,
        key=ALICE_KEY,
        value=5,
    )
    (deposit,) = bridge.portal.deposits(chain, receipt.block_number)
    assert deposit.sender == alias_l1_address(depositor) != depositor
    assert deposit.mint == 5


def _token(bridge: Bridge, symbol: str = "TT", decimals: int = 6) -> bytes:
    token = bridge.deploy("TestToken", "Test Token", symbol, decimals)
    bridge.send("TestToken", token, "mint", ALICE, 10**24)
    return token


def test_an_erc20_deposit_escrows_the_tokens_and_names_them(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    token = _token(bridge)
    alice = bridge.portal_as(ALICE_KEY)
    alice.approve_token(token, 1_000)
    sent = alice.deposit_erc20(chain, token, BOB, 1_000, gas_limit=60_000)
    d = sent.deposit
    assert (d.sender, d.to, d.mint, d.value, d.gas) == (ALICE, BOB, 0, 0, 60_000)
    assert (d.l1_token, d.token_amount, d.decimals, d.symbol) == (token, 1_000, 6, _symbol("TT"))
    assert bridge.portal.token_balance(chain, token) == 1_000
    assert bridge.view("TestToken", token, "balanceOf", bridge.portal.address) == 1_000
    assert bridge.portal.eth_balance(chain) == 0


def test_a_fee_on_transfer_token_credits_what_arrived(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    token = bridge.deploy("FeeToken")
    bridge.send("FeeToken", token, "mint", ALICE, 10**6)
    alice = bridge.portal_as(ALICE_KEY)
    alice.approve_token(token, 10_000)
    d = alice.deposit_erc20(chain, token, BOB, 10_000).deposit
    assert d.token_amount == 9_900  # 1% burned on the way
    assert (d.decimals, d.symbol) == (18, _symbol("FEE"))
    assert bridge.portal.token_balance(chain, token) == 9_900


def test_token_metadata_failures_and_long_symbols_are_tolerated(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    alice = bridge.portal_as(ALICE_KEY)
    bare = bridge.deploy("BareToken")  # no decimals(), no symbol(), transfers return nothing
    bridge.send("BareToken", bare, "mint", ALICE, 500)
    bridge.send("BareToken", bare, "approve", bridge.portal.address, 500, key=ALICE_KEY)
    d = alice.deposit_erc20(chain, bare, BOB, 500).deposit
    assert (d.token_amount, d.decimals, d.symbol) == (500, 18, _symbol("TOKEN"))

    long = _token(bridge, symbol="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", decimals=8)
    alice.approve_token(long, 1)
    d = alice.deposit_erc20(chain, long, BOB, 1).deposit
    assert (d.decimals, d.symbol) == (8, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345")


def test_deposit_bounds_revert(bridge: Bridge) -> None:
    chain = bridge.new_chain()
    token = _token(bridge)
    alice = bridge.portal_as(ALICE_KEY)
    alice.approve_token(token, 10)
    refusals = [
        (lambda: alice.deposit_eth(chain, BOB, 1, gas_limit=20_999), "GasLimitOutOfRange"),
        (
            lambda: alice.deposit_eth(chain, BOB, 1, gas_limit=21_000 + 16 * 9, data=bytes(10)),
            "GasLimitOutOfRange",
        ),  # data costs 16 gas a byte
        (
            lambda: alice.deposit_eth(chain, BOB, 1, gas_limit=MAX_DEPOSIT_GAS + 1),
            "GasLimitOutOfRange",
        ),
        (
            lambda: alice.deposit_eth(
                chain, BOB, 0, gas_limit=MAX_DEPOSIT_GAS, data=bytes(MAX_DEPOSIT_DATA + 1)
            ),
            "DataTooLarge",
        ),
        (lambda: alice.deposit_eth(chain, ZERO_ADDRESS, 1), "ZeroRecipient"),
        (lambda: alice.deposit_eth(chain + 10_000, BOB, 1), "ChainNotRegistered"),
        (lambda: alice.deposit_erc20(chain, BOB, BOB, 1), "NotAToken"),
        (lambda: alice.deposit_erc20(chain, token, BOB, 0), "NothingReceived"),
        (lambda: alice.deposit_erc20(chain, token, BOB, 11), "TokenTransferFailed"),  # allowance
        (lambda: alice.register_chain(chain + 20_000, 1, 2), "NotOwner"),
        (lambda: bridge.portal.register_chain(chain, 1, 2), "ChainAlreadyRegistered"),
        (lambda: bridge.portal.register_chain(chain + 30_000, 10, 9), "BadChainConfig"),
    ]
    for call, reason in refusals:
        with pytest.raises(L1Rejected, match=reason):
            call()
    # the largest deposit the bounds allow goes through
    sent = alice.deposit_eth(
        chain, BOB, 0, gas_limit=MAX_DEPOSIT_GAS, data=b"\x01" * MAX_DEPOSIT_DATA
    )
    assert len(sent.deposit.data) == MAX_DEPOSIT_DATA
    assert bridge.portal.chain(chain).deposit_count == 1

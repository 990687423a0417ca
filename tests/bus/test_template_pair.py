"""The template pair: the token app deposits into the orderbook app over the message bus, the
orderbook confirms with the result that runs the token's callback, and withdraws back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rollup.messages import remote_address
from sequencer.harness import LocalChain
from sequencer.network import LocalNetwork
from tests.conftest import BOOK_CHAIN, TOKEN_CHAIN, render_pair
from vm.native.abi import decode_args

BASE = 0


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[LocalNetwork]:
    with LocalNetwork.from_dirs(*render_pair(tmp_path)) as net:
        yield net


def events(chain: LocalChain, number_from: int) -> list[dict[str, object]]:
    """Decoded logs of inbound message receipts and transactions from block `number_from`."""
    found = []
    for n in range(number_from, chain.node.committed.number + 1):
        block = chain.node.block(n)
        assert block is not None
        for receipt in (*block.inbound_receipts, *block.receipts):
            found += [e for e in chain.decode_logs(receipt) if e["event"]]
    return found


def test_deposit_is_credited_and_confirmed_by_callback(pair: LocalNetwork) -> None:
    token, book = pair.chains
    alice = token.accounts[0]
    supply = token.call("balanceOf", alice)
    start = token.node.committed.number + 1
    receipt = token.transact(alice, "send_to", BOOK_CHAIN, book.app.address, alice, 7 * 10**18)
    assert receipt.status == 1
    msg_id = decode_args(["bytes32"], receipt.return_data)[0]
    pair.settle()
    assert book.call("balance_of", alice)[0] == 7 * 10**18
    holder = remote_address(BOOK_CHAIN, book.app.address)
    assert token.call("balanceOf", holder) == 7 * 10**18
    assert token.call("balanceOf", alice) == supply - 7 * 10**18
    settled = [e for e in events(token, start) if e["event"] == "SendSettled"]
    assert [(e["args"]["msg_id"], e["args"]["delivered"]) for e in settled] == [(msg_id, True)]
    assert book.call("token") == (TOKEN_CHAIN, token.app.address)

    # and back: a withdrawal is a transfer from the orderbook's account at the token app
    start = book.node.committed.number + 1
    assert book.transact(alice, "withdraw_to_token", 3 * 10**18).status == 1
    pair.settle()
    assert book.call("balance_of", alice)[0] == 4 * 10**18
    assert token.call("balanceOf", holder) == 4 * 10**18
    assert token.call("balanceOf", alice) == supply - 4 * 10**18
    done = [e for e in events(book, start) if e["event"] == "WithdrawalSettled"]
    assert [e["args"]["delivered"] for e in done] == [True]


def test_refused_deposit_comes_back_to_the_owner(tmp_path: Path) -> None:
    with LocalNetwork.from_dirs(*render_pair(tmp_path, trading=False)) as net:  # no token app
        token, book = net.chains
        alice = token.accounts[0]
        supply = token.call("balanceOf", alice)
        start = token.node.committed.number + 1
        token.transact(alice, "send_to", BOOK_CHAIN, book.app.address, alice, 10**18)
        net.settle()
        assert token.call("balanceOf", alice) == supply
        assert book.call("balance_of", alice)[0] == 0
        settled = [e for e in events(token, start) if e["event"] == "SendSettled"]
        assert [e["args"]["delivered"] for e in settled] == [False]


def test_withdrawal_the_token_app_refuses_is_credited_back(pair: LocalNetwork) -> None:
    token, book = pair.chains
    bob = book.accounts[1]
    assert book.transact(bob, "deposit_base", 50).status == 1  # faucet base, not bridged
    start = book.node.committed.number + 1
    book.transact(bob, "withdraw_to_token", 50)
    assert book.call("balance_of", bob)[0] == 0
    pair.settle()
    assert book.call("balance_of", bob)[0] == 50  # the token app had nothing to pay it from
    assert token.call("balanceOf", bob) == 0
    done = [e for e in events(book, start) if e["event"] == "WithdrawalSettled"]
    assert [e["args"]["delivered"] for e in done] == [False]


def test_only_the_token_app_can_deposit(pair: LocalNetwork) -> None:
    token, book = pair.chains
    mallory = book.accounts[2]
    receipt = book.transact(mallory, "receive_tokens", mallory, 10**30)
    assert receipt.status == 0
    assert book.call("balance_of", mallory)[0] == 0

"""Tests of this app against an in-process chain: run them with `pytest` in this folder."""

from pathlib import Path

from sequencer.harness import LocalChain

APP_DIR = Path(__file__).parent


def test_transfer_moves_tokens_and_logs_it() -> None:
    with LocalChain.from_dir(APP_DIR) as chain:
        alice, bob = chain.accounts[0], chain.accounts[1]
        before = chain.call("balanceOf", alice)
        receipt = chain.transact(alice, "transfer", bob, 10**18)
        assert receipt.status == 1
        assert chain.call("balanceOf", bob) == 10**18
        assert chain.call("balanceOf", alice) == before - 10**18
        (log,) = chain.decode_logs(receipt)
        assert log["event"] == "Transfer"
        assert log["args"] == {"from": alice, "to": bob, "value": 10**18}


def test_transfer_beyond_balance_reverts_and_changes_nothing() -> None:
    with LocalChain.from_dir(APP_DIR) as chain:
        alice, bob = chain.accounts[0], chain.accounts[1]
        receipt = chain.transact(bob, "transfer", alice, 1)
        assert receipt.status == 0
        assert chain.call("balanceOf", bob) == 0


def test_send_to_another_app_holds_the_tokens_for_it() -> None:
    """The other app's side runs on its own chain; `sequencer.network.LocalNetwork` runs both
    (see the orderbook template for an app that accepts these deposits)."""
    with LocalChain.from_dir(APP_DIR) as chain:
        alice = chain.accounts[0]
        exchange_chain, exchange = 902002, b"\xee" * 20
        before = chain.call("balanceOf", alice)
        receipt = chain.transact(alice, "send_to", exchange_chain, exchange, alice, 5 * 10**18)
        assert receipt.status == 1
        transfer, sent = chain.decode_logs(receipt)
        holder = transfer["args"]["to"]  # the exchange's account here
        assert chain.call("balanceOf", holder) == 5 * 10**18
        assert chain.call("balanceOf", alice) == before - 5 * 10**18
        assert sent["event"] == "SentToApp"
        assert sent["args"]["chain"] == exchange_chain and sent["args"]["value"] == 5 * 10**18

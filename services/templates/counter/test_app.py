"""Tests of this app against an in-process chain: run them with `pytest` in this folder."""

from pathlib import Path

from sequencer.harness import LocalChain

APP_DIR = Path(__file__).parent


def test_increment_and_add_count_up_and_log_it() -> None:
    with LocalChain.from_dir(APP_DIR) as chain:
        alice = chain.accounts[0]
        assert chain.call("get") == 0
        receipt = chain.transact(alice, "increment")
        assert receipt.status == 1
        assert [log["event"] for log in chain.decode_logs(receipt)] == ["Incremented"]
        assert chain.transact(alice, "add", 41).status == 1
        assert chain.call("get") == 42


def test_an_overflowing_add_reverts_and_changes_nothing() -> None:
    with LocalChain.from_dir(APP_DIR) as chain:
        alice = chain.accounts[0]
        chain.transact(alice, "increment")
        receipt = chain.transact(alice, "add", 2**256 - 1)
        assert receipt.status == 0
        assert chain.call("get") == 1

"""The sequencer in process: blocks, restart from the database, history and checkpoints."""

from pathlib import Path

import pytest

from rollup.errors import InsufficientFunds, IntrinsicGasTooLow, NonceTooLow, StateUnavailable
from rollup.genesis import DEV_ADDRESSES
from rollup.types import Address
from sequencer.harness import LocalChain
from sequencer.node import SequencerConfig
from vm.state import get_account

RECIPIENT = Address(b"\x42" * 20)


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chain.db'}"


def test_every_transaction_makes_a_block_and_receipts_are_durable(
    token_app: Path, tmp_path: Path
) -> None:
    with LocalChain.from_dir(token_app, db(tmp_path)) as chain:
        for i in range(3):
            receipt = chain.transfer(chain.accounts[0], RECIPIENT, 10 + i)
            assert receipt.status == 1
        assert chain.node.committed.number == 3
        head = chain.node.committed
    with LocalChain.from_dir(token_app, db(tmp_path)) as chain:
        assert chain.node.committed == head
        assert get_account(chain.node.state, RECIPIENT) == (0, 33)
        block = chain.node.block(2)
        assert block is not None and block.receipts[0].status == 1
        assert chain.node.transaction(block.transactions[0].hash) is not None


def test_restart_after_checkpoint_replays_only_the_tail(token_app: Path, tmp_path: Path) -> None:
    config = SequencerConfig(checkpoint_blocks=3, checkpoint_chunk=2)
    with LocalChain.from_dir(token_app, db(tmp_path)) as chain:
        chain.node.config = config
        for i in range(7):
            chain.transfer(chain.accounts[i % 3], RECIPIENT, 1)
        chain.node.checkpoint().result()
        chain.transfer(chain.accounts[5], RECIPIENT, 1)
        tx_hash = chain.node.block(2).transactions[0].hash  # type: ignore[union-attr]
        expected = {a: get_account(chain.node.state, a) for a in [*DEV_ADDRESSES[:6], RECIPIENT]}
        head = chain.node.committed
    with LocalChain.from_dir(token_app, db(tmp_path)) as chain:
        assert chain.node.store.checkpoint() == 7
        assert chain.node.committed == head
        assert {a: get_account(chain.node.state, a) for a in expected} == expected
        status = chain.node.transaction(tx_hash)
        assert status is not None and status.block is not None and status.block.header.number == 2


def test_state_at_an_older_block_and_outside_the_window(token_app: Path, tmp_path: Path) -> None:
    with LocalChain.from_dir(token_app, db(tmp_path)) as chain:
        chain.transfer(chain.accounts[0], RECIPIENT, 5)
        chain.transfer(chain.accounts[0], RECIPIENT, 7)
        assert get_account(chain.node.state_at(0), RECIPIENT) == (0, 0)
        assert get_account(chain.node.state_at(1), RECIPIENT) == (0, 5)
        assert get_account(chain.node.state_at(2), RECIPIENT) == (0, 12)
        assert get_account(chain.node.state_at(1), chain.accounts[0])[0] == 1
        chain.node.state._max_entries = 1  # squeeze the window: block 1 falls out of it
        chain.transfer(chain.accounts[0], RECIPIENT, 1)
        with pytest.raises(StateUnavailable):
            chain.node.state_at(0)


def test_admission_rejects_with_geth_messages_and_changes_nothing(token_app: Path) -> None:
    with LocalChain.from_dir(token_app) as chain:
        sender = chain.accounts[0]
        chain.transfer(sender, RECIPIENT, 1)
        head = chain.node.committed
        stale = chain.sign(sender, RECIPIENT, value=1, gas=21000)
        chain.node.produce(0)
        with pytest.raises(
            IntrinsicGasTooLow, match="intrinsic gas too low: gas 20000, minimum needed 21000"
        ):
            chain.node.submit_raw(chain.sign(sender, RECIPIENT, value=1, gas=20000))
        chain.node.submit_raw(stale)
        chain.node.produce(1)
        with pytest.raises(NonceTooLow, match="nonce too low"):
            chain.node.submit_raw(stale)
        poor = Address(b"\x99" * 20)
        assert get_account(chain.node.state, poor) == (0, 0)
        assert chain.node.committed.number == head.number + 1
        with pytest.raises(InsufficientFunds):
            chain.node.admit(_with_sender(chain, poor))


def _with_sender(chain: LocalChain, sender: Address):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from rollup.transactions import decode_transaction

    tx = decode_transaction(
        chain.sign(chain.accounts[1], RECIPIENT, value=1, gas=21000), chain.node.chain_id
    )
    return replace(tx, sender=sender)

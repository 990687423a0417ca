"""Admission: the account checks alone, then against a real `Sequencer` (real blocks) for the
pool's rules: queued cost against the balance, caps, a full pool, waiters told of drops."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from rollup.errors import (
    FeeCapTooLow,
    GasLimitExceeded,
    InitcodeTooLarge,
    InsufficientFunds,
    IntrinsicGasTooLow,
    NonceTooHigh,
    NonceTooLow,
    OversizedData,
    RollupError,
    TipAboveFeeCap,
    TxDropped,
    TxGasLimitTooHigh,
    TxPoolFull,
    TxRejected,
    UnsupportedTransaction,
)
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.manifest import parse_manifest
from rollup.transactions import MAX_INITCODE_SIZE, MAX_TX_GAS, MAX_TX_SIZE, decode_transaction
from rollup.types import Address, Receipt, Transaction
from sequencer.admission import check_account, check_static, decode_chunk, decode_many
from sequencer.node import Sequencer, SequencerConfig
from vm.state import get_account

GWEI = 10**9
RECIPIENT = "0x" + "42" * 20
TRANSFER = 21_000 * 2 * GWEI  # max cost of a transfer of 0 at twice the base fee


def _tx(
    key: str, chain_id: int, nonce: int, tip: int = 0, value: int = 0, gas: int = 21_000
) -> Transaction:
    raw = Account.sign_transaction(
        {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": RECIPIENT,
            "value": value,
            "gas": gas,
            "maxFeePerGas": 2 * GWEI + tip,
            "maxPriorityFeePerGas": tip,
        },
        key,
    ).raw_transaction
    return decode_transaction(bytes(raw), chain_id)


class Chain:
    """A real sequencer in process, with fresh accounts funded by a dev account."""

    def __init__(self, node: Sequencer) -> None:
        self.node = node
        self.clock_ms = 1_700_000_000_000
        self.heard: dict[bytes, list[Receipt | RollupError]] = {}

    def tx(self, key: str, nonce: int, **fields: Any) -> Transaction:
        return _tx(key, self.node.chain_id, nonce, **fields)

    def admit(self, tx: Transaction) -> bool:
        """Admit and listen for what happens to it."""
        ready = self.node.admit(tx)
        self.node.watch(tx.hash, self.heard.setdefault(tx.hash, []).append)
        return ready

    def produce(self) -> list[Transaction]:
        self.clock_ms += 1000
        sealed = self.node.produce(self.clock_ms)
        return [] if sealed is None else list(sealed.block.transactions)

    def fund(self, amounts: list[int]) -> list[str]:
        """Fresh keys, each funded with its amount (as many blocks as the pool needs)."""
        keys = ["0x" + secrets.token_hex(32) for _ in amounts]
        nonce = get_account(self.node.state, DEV_ADDRESSES[0])[0]
        for key, amount in zip(keys, amounts, strict=True):
            raw = Account.sign_transaction(
                {
                    "type": 2,
                    "chainId": self.node.chain_id,
                    "nonce": nonce,
                    "to": Account.from_key(key).address,
                    "value": amount,
                    "gas": 21_000,
                    "maxFeePerGas": 2 * GWEI,
                    "maxPriorityFeePerGas": 0,
                },
                DEV_KEYS[0],
            ).raw_transaction
            if len(self.node.mempool) == self.node.mempool.max_size:
                self.produce()
            self.node.submit_raw(bytes(raw))
            nonce += 1
        self.produce()
        assert len(self.node.mempool) == 0
        return keys


@pytest.fixture
def make_chain(token_app: Path, tmp_path: Path) -> Iterator[Any]:
    nodes: list[Sequencer] = []

    def make(config: SequencerConfig | None = None, **manifest: Any) -> Chain:
        parsed = replace(parse_manifest((token_app / "rollup.toml").read_text()), **manifest)
        source = (token_app / parsed.code).read_text()
        node = Sequencer(parsed, source, f"sqlite:///{tmp_path}/chain{len(nodes)}.db", config)
        nodes.append(node)
        return Chain(node)

    yield make
    for node in nodes:
        node.close()


def address(key: str) -> Address:
    return Address(bytes.fromhex(Account.from_key(key).address[2:]))


# ---- the account checks alone ----


def test_check_account_counts_what_the_pool_already_owes() -> None:
    tx = _tx(DEV_KEYS[1], 7, nonce=3)
    check_account(tx, state_nonce=3, balance=TRANSFER, owed=0)
    check_account(tx, state_nonce=1, balance=3 * TRANSFER, owed=2 * TRANSFER)
    with pytest.raises(InsufficientFunds, match="balance 0, tx cost 42000000000000"):
        check_account(tx, state_nonce=1, balance=3 * TRANSFER, owed=3 * TRANSFER)
    with pytest.raises(NonceTooLow, match="tx: 3 state: 4"):
        check_account(tx, state_nonce=4, balance=10 * TRANSFER, owed=0)


# ---- the static checks alone: the transaction and the chain's parameters ----

BASE_FEE, GAS_LIMIT = GWEI, 30_000_000


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"raw": bytes(MAX_TX_SIZE + 1)}, OversizedData, "oversized data"),
        ({"to": None}, UnsupportedTransaction, "contract creation is not supported"),
        ({"max_priority_fee": 3 * GWEI}, TipAboveFeeCap, "higher than max fee per gas"),
        ({"gas": GAS_LIMIT + 1}, GasLimitExceeded, "exceeds block gas limit"),
        ({"gas": MAX_TX_GAS + 1}, TxGasLimitTooHigh, "gas limit too high .cap: 16777216"),
        ({"gas": 20_999}, IntrinsicGasTooLow, "gas 20999, minimum needed 21000"),
        ({"max_fee": GWEI - 1, "max_priority_fee": 0}, FeeCapTooLow, "baseFee: 1000000000"),
    ],
)
def test_check_static_refuses_in_geths_words(
    change: dict[str, Any], error: type[TxRejected], words: str
) -> None:
    tx = _tx(DEV_KEYS[1], 7, nonce=0)
    check_static(tx, BASE_FEE, GAS_LIMIT, allow_create=False)
    with pytest.raises(error, match=words):
        check_static(replace(tx, **change), BASE_FEE, GAS_LIMIT, allow_create=False)


def test_check_static_bounds_initcode_where_creation_is_allowed() -> None:
    tx = replace(_tx(DEV_KEYS[1], 7, nonce=0), to=None, gas=MAX_TX_GAS)
    check_static(replace(tx, data=b"\x01" * 100), BASE_FEE, GAS_LIMIT, allow_create=True)
    with pytest.raises(InitcodeTooLarge, match="max initcode size exceeded"):
        big = replace(tx, data=b"\x01" * (MAX_INITCODE_SIZE + 1))
        check_static(big, BASE_FEE, GAS_LIMIT, allow_create=True)


def test_decoding_answers_each_raw_transaction_in_order() -> None:
    good = [_tx(DEV_KEYS[1], 7, nonce=n).raw for n in range(200)]
    raws = good[:100] + [b"\x02\xc0", good[0][:-3]] + good[100:]
    with ThreadPoolExecutor(2) as pool:
        for executor in (None, pool):
            answers = decode_many(raws, 7, executor, chunk=16)
            assert [a.nonce for a in answers if isinstance(a, Transaction)] == list(range(200))
            assert [i for i, a in enumerate(answers) if isinstance(a, TxRejected)] == [100, 101]
    wrong_chain = decode_chunk([good[0]], 8)[0]
    assert isinstance(wrong_chain, TxRejected) and "chain" in str(wrong_chain).lower()


# ---- against a sequencer ----


def test_queued_cost_counts_against_the_balance(make_chain: Any) -> None:
    chain = make_chain()
    (key,) = chain.fund([2 * TRANSFER])
    assert chain.admit(chain.tx(key, 1)) is False
    assert chain.admit(chain.tx(key, 2)) is False
    with pytest.raises(InsufficientFunds, match="balance 0, tx cost"):
        chain.admit(chain.tx(key, 3))  # two queued ones already hold the whole balance
    assert chain.node.mempool.pending_cost(address(key)) == 2 * TRANSFER
    # filling the gap: the sender's own later queued one makes way, from the highest nonce
    last = chain.tx(key, 0)
    dropped = next(h for h in chain.heard if chain.node.mempool.by_hash[h].nonce == 2)
    assert chain.admit(last) is True
    assert [type(e) for e in chain.heard[dropped]] == [InsufficientFunds]
    assert [t.nonce for t in chain.produce()] == [0, 1]
    assert len(chain.node.mempool) == 0


def test_a_value_that_fits_alone_but_not_with_the_queue_is_refused(make_chain: Any) -> None:
    chain = make_chain()
    (key,) = chain.fund([3 * TRANSFER])
    chain.admit(chain.tx(key, 4, value=TRANSFER))
    with pytest.raises(InsufficientFunds):
        chain.admit(chain.tx(key, 5, value=TRANSFER + 1))
    chain.admit(chain.tx(key, 5))  # exactly the rest
    assert chain.node.mempool.pending_cost(address(key)) == 3 * TRANSFER


def test_per_sender_and_global_queue_caps(make_chain: Any) -> None:
    chain = make_chain(SequencerConfig(pool_account_queue=3, pool_global_queue=4))
    one, two = chain.fund([10 * TRANSFER, 10 * TRANSFER])
    for nonce in (1, 2, 3):
        chain.admit(chain.tx(one, nonce))
    with pytest.raises(NonceTooHigh, match="nonce too high"):
        chain.admit(chain.tx(one, 4))
    chain.admit(chain.tx(two, 1))
    with pytest.raises(TxPoolFull, match="^txpool is full$"):
        chain.admit(chain.tx(two, 2))
    assert chain.admit(chain.tx(two, 0)) is True  # an executable one is not held by the queue
    assert chain.node.mempool.queued_count == 3  # and it promoted its sender's queued one


def test_a_full_pool_refuses_the_cheaper_and_tells_the_outbid(make_chain: Any) -> None:
    chain = make_chain(SequencerConfig(max_pool=3))
    keys = chain.fund([10 * TRANSFER] * 5)
    cheap = [chain.tx(key, 0) for key in keys[:3]]
    for tx in cheap:
        chain.admit(tx)
    with pytest.raises(TxPoolFull, match="^txpool is full$"):
        chain.admit(chain.tx(keys[3], 0))
    better = chain.tx(keys[4], 0, tip=GWEI)
    assert chain.admit(better) is True
    outbid = [tx for tx in cheap if chain.heard[tx.hash]]
    assert len(outbid) == 1 and isinstance(chain.heard[outbid[0].hash][0], TxDropped)
    assert "txpool is full" in str(chain.heard[outbid[0].hash][0])
    included = chain.produce()
    assert better in included and outbid[0] not in included and len(included) == 3


def test_leftovers_of_a_full_block_go_back_in_front_in_order(make_chain: Any) -> None:
    """A block with gas for 4 transfers, 5 taken at a time: the 5th waits in front, and the
    sender's later ones are not lost (they were, when the leftover was re-added at the back)."""
    chain = make_chain(SequencerConfig(max_block_txs=5), gas_limit=100_000)
    key, other = chain.fund([20 * TRANSFER, 20 * TRANSFER])
    mine = [chain.tx(key, nonce) for nonce in range(10)]
    for tx in mine:
        chain.admit(tx)
    chain.admit(chain.tx(other, 0))
    blocks = [chain.produce() for _ in range(3)]
    assert [[t.nonce for t in block] for block in blocks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0]]
    assert all(isinstance(chain.heard[tx.hash][0], Receipt) for tx in mine)

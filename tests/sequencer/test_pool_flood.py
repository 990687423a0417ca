"""Free mempool flooding (issue 10, finding 5), tried against a real `Sequencer` with a small
pool: many cheap accounts, each funded for one transaction, used to fill the pool with
future-nonce transactions that cost nothing; then with cheap executable ones. The pool must not
fill with them, an honest transaction that pays more must still get in and be included, queued
ones must expire, and an account a block drains must lose what it can no longer pay for.

Transactions are signed with coincurve (as the benchmarks do): thousands are needed.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from coincurve import PrivateKey

from rollup import rlp
from rollup.crypto import keccak
from rollup.errors import (
    InsufficientFunds,
    NonceTooHigh,
    RollupError,
    TxDropped,
    TxPoolFull,
    TxRejected,
)
from rollup.genesis import DEV_KEYS
from rollup.manifest import parse_manifest
from rollup.transactions import decode_transaction
from rollup.types import Address, Receipt, Transaction
from sequencer.node import Sequencer, SequencerConfig
from vm.state import get_account

GWEI = 10**9
BASE_FEE = GWEI  # the token template's
ONE_TX = 21_000 * BASE_FEE  # what a transfer of 0 at the base fee may cost
POOL = 2_000
QUEUE = 300
LIFETIME = 600.0


class Clock:
    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now


class Chain:
    """A sequencer with a small pool and an injected pool clock; accounts by private key."""

    def __init__(self, node: Sequencer) -> None:
        self.node = node
        self.clock = Clock()
        node.mempool.clock = self.clock  # the node passes wall time; here, test time
        self.block_ms = 1_700_000_000_000
        self.heard: dict[bytes, list[Receipt | RollupError]] = {}
        self.dev = [PrivateKey(bytes.fromhex(key[2:])) for key in DEV_KEYS]

    def sign(
        self, key: PrivateKey, nonce: int, tip: int = 0, value: int = 0, to: bytes = b"\x42" * 20
    ) -> Transaction:
        """A transfer paying the base fee plus `tip` a gas."""
        enc = rlp.encode_int
        fields: list[rlp.RLPItem] = [
            enc(self.node.chain_id),
            enc(nonce),
            enc(tip),
            enc(BASE_FEE + tip),
            enc(21_000),
            to,
            enc(value),
            b"",
            [],
        ]
        signature = key.sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
        r, s = signature[:32].lstrip(b"\0"), signature[32:64].lstrip(b"\0")
        raw = b"\x02" + rlp.encode([*fields, enc(signature[64]), r, s])
        return decode_transaction(raw, self.node.chain_id)

    def send(self, tx: Transaction) -> bool:
        """Admit as the RPC server does, and listen for what becomes of it."""
        ready = self.node.admit(tx)
        self.node.watch(tx.hash, self.heard.setdefault(tx.hash, []).append)
        return ready

    def try_send(self, tx: Transaction) -> type[TxRejected] | None:
        try:
            self.send(tx)
        except TxRejected as exc:
            return type(exc)
        return None

    def produce(self) -> list[Transaction]:
        self.block_ms += 1_000
        sealed = self.node.produce(self.block_ms)
        return [] if sealed is None else list(sealed.block.transactions)

    def accounts(self, count: int, balance: int) -> list[PrivateKey]:
        """Fresh accounts funded with `balance` each by dev account 0."""
        keys = [PrivateKey(secrets.token_bytes(32)) for _ in range(count)]
        nonce = self.nonce(self.dev[0])
        for key in keys:
            if len(self.node.mempool) == self.node.mempool.max_size:
                self.produce()
            self.node.admit(self.sign(self.dev[0], nonce, value=balance, to=address(key)))
            nonce += 1
        while self.node.mempool.ready_count:
            self.produce()
        assert all(self.balance(key) == balance for key in keys)
        return keys

    def nonce(self, key: PrivateKey) -> int:
        return get_account(self.node.state, address(key))[0]

    def balance(self, key: PrivateKey) -> int:
        return get_account(self.node.state, address(key))[1]

    def errors(self, tx: Transaction) -> list[type[RollupError]]:
        return [type(r) for r in self.heard.get(tx.hash, []) if isinstance(r, RollupError)]


def address(key: PrivateKey) -> Address:
    return Address(keccak(key.public_key.format(compressed=False)[1:])[12:])


@pytest.fixture
def chain(token_app: Path, tmp_path: Path) -> Iterator[Chain]:
    manifest = parse_manifest((token_app / "rollup.toml").read_text())
    assert manifest.base_fee == BASE_FEE
    config = SequencerConfig(max_pool=POOL, pool_global_queue=QUEUE, pool_lifetime=LIFETIME)
    node = Sequencer(
        manifest, (token_app / manifest.code).read_text(), f"sqlite:///{tmp_path}/chain.db", config
    )
    yield Chain(node)
    node.close()


def test_future_nonces_from_cheap_accounts_do_not_fill_the_pool(chain: Chain) -> None:
    attackers = chain.accounts(100, ONE_TX)  # each funded for one transaction
    refused = Counter(
        chain.try_send(chain.sign(key, nonce))
        for key in attackers
        for nonce in range(1, 65)  # the most a sender may queue, all behind a gap at nonce 0
    )
    # one each is all a balance pays for: the queued cost counts against it
    assert refused == {None: 100, InsufficientFunds: 100 * 63}
    assert len(chain.node.mempool) == chain.node.mempool.queued_count == 100

    rich = chain.accounts(4, 100 * ONE_TX)  # who can pay: the per-sender and global caps hold
    refused = Counter(
        chain.try_send(chain.sign(key, nonce)) for key in rich for nonce in range(1, 66)
    )
    # three fill their 64 and have the 65th refused; the fourth meets the full queue
    queued = QUEUE - 100
    assert refused == {None: queued, NonceTooHigh: 3, TxPoolFull: 4 * 65 - queued - 3}
    assert len(chain.node.mempool) == chain.node.mempool.queued_count == QUEUE

    honest = chain.sign(chain.dev[1], chain.nonce(chain.dev[1]))
    assert chain.send(honest) is True  # executable ones are not held by the queue's cap
    assert chain.produce() == [honest]


def test_queued_transactions_expire_after_the_lifetime(chain: Chain) -> None:
    attackers = chain.accounts(50, ONE_TX)
    queued = [chain.sign(key, 1) for key in attackers]
    for tx in queued:
        assert chain.send(tx) is False
    honest = chain.dev[1]
    chain.clock.now += LIFETIME - 1
    chain.send(chain.sign(honest, chain.nonce(honest)))
    chain.produce()  # each committed block lets the expired go
    assert chain.node.mempool.queued_count == 50
    chain.clock.now += 2
    chain.send(chain.sign(honest, chain.nonce(honest)))
    chain.produce()
    assert chain.node.mempool.queued_count == 0 and len(chain.node.mempool) == 0
    assert all(chain.errors(tx) == [TxDropped] for tx in queued)
    assert "expired" in str(chain.heard[queued[0].hash][0])


def test_cheap_executable_flood_cannot_keep_out_a_better_paying_transaction(chain: Chain) -> None:
    attackers = chain.accounts(POOL // 16 + 20, 17 * ONE_TX)
    flood, late = attackers[: POOL // 16], attackers[POOL // 16 :]
    for key in flood:  # 16 executable each: all of them protected slots, at the base fee
        for nonce in range(16):
            assert chain.send(chain.sign(key, nonce)) is True
    assert len(chain.node.mempool) == POOL
    with pytest.raises(TxPoolFull, match="^txpool is full$"):  # no better than what is there
        chain.send(chain.sign(late[0], 0))

    honest_key = chain.dev[1]
    honest = chain.sign(honest_key, chain.nonce(honest_key), tip=GWEI)
    assert chain.send(honest) is True
    outbid = [h for h, heard in chain.heard.items() if heard and not isinstance(heard[0], Receipt)]
    assert len(outbid) == 1  # one of the flood's last transactions made way
    # paying a little more than the base fee, the attacker pushes out only its own cheapest
    for key in late:
        for nonce in range(16):
            assert chain.send(chain.sign(key, nonce, tip=1)) is True
    outbid = [h for h, heard in chain.heard.items() if heard and not isinstance(heard[0], Receipt)]
    assert len(outbid) == 1 + len(late) * 16 and honest.hash in chain.node.mempool.by_hash
    assert len(chain.node.mempool) == POOL

    included = chain.produce()
    assert honest in included and len(included) == POOL


def test_one_account_may_fill_an_empty_pool_and_its_excess_goes_first(chain: Chain) -> None:
    whale = chain.dev[2]  # as a benchmark does: thousands from one account in one batch
    sent = [chain.sign(whale, nonce) for nonce in range(POOL)]
    assert all(chain.send(tx) for tx in sent)
    honest_key = chain.dev[1]
    honest = chain.sign(honest_key, chain.nonce(honest_key))  # the same price as the whale's
    assert chain.send(honest) is True
    assert chain.errors(sent[-1]) == [TxDropped]
    included = chain.produce()
    assert included == [*sent[:-1], honest]


def test_an_account_drained_by_a_block_loses_what_it_can_no_longer_pay(chain: Chain) -> None:
    first, second = chain.accounts(2, 4 * ONE_TX)
    # At admission: filling its nonce gap with a costly transaction, a sender's later queued
    # ones make way from the highest nonce down.
    queued = [chain.sign(first, nonce) for nonce in (1, 2, 3)]
    for tx in queued:
        chain.send(tx)
    assert chain.send(chain.sign(first, 0, value=3 * ONE_TX)) is True
    assert [chain.errors(tx) for tx in queued] == [[InsufficientFunds]] * 3

    # After a block: a transaction that reached the block without this pool's balance check
    # (what a block built elsewhere, or a future way of spending, would do) drains `second`.
    queued = [chain.sign(second, nonce) for nonce in (2, 3, 4)]  # behind a gap at nonce 1
    for tx in queued:
        chain.send(tx)
    drain = chain.sign(second, 0, value=3 * ONE_TX)
    chain.node.mempool.add(drain, 0)  # straight into the pool: no admission
    assert drain in chain.produce()
    assert chain.balance(second) == 0
    assert [chain.errors(tx) for tx in queued] == [[InsufficientFunds]] * 3
    assert len(chain.node.mempool) == 0

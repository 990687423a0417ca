"""The L1 follower against a fake L1 (a `DepositReader` whose blocks the test mines and reorgs):
confirmations, reorgs before confirmation, a deposit re-mined elsewhere, the origin never going
back, outages, nonce gaps, and a restart that skips what the chain executed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from bridge.l1 import L1Unavailable
from rollup.crypto import keccak
from rollup.deposits import Deposit, deposit_from_event
from rollup.types import Address
from services.l1follow import L1Follower
from tests.support import wait_for
from vm.stf import L1Origin

CHAIN = 904_321
ALICE, BOB = Address(b"\xa1" * 20), Address(b"\xb0" * 20)
FAR = L1Origin(10**9)  # an origin past everything: the follower's own origin decides


def opaque(to: bytes, mint: int) -> bytes:
    return (
        to
        + mint.to_bytes(32, "big")
        + mint.to_bytes(32, "big")
        + (100_000).to_bytes(8, "big")
        + bytes(20)
        + bytes(32)
        + bytes(1)
        + bytes(32)
    )


@dataclass
class Event:
    nonce: int
    to: bytes
    mint: int


@dataclass
class Block:
    branch: int
    events: list[Event] = field(default_factory=list)


class FakeL1:
    """Blocks 0..head, each on a branch (its hash changes with the branch), holding events."""

    def __init__(self) -> None:
        self.blocks = [Block(0)]
        self.branch = 0
        self.down = False
        self.during_logs: Callable[[], None] | None = None  # runs inside one deposits() call
        self.logs_fail: Exception | None = None  # deposits() raises it

    # ---- what the test does ----

    def mine(self, count: int = 1) -> None:
        self.blocks += [Block(self.branch) for _ in range(count)]

    def deposit(self, to: bytes = BOB, mint: int = 1) -> Event:
        """A block holding one deposit, nonce next in the canonical chain."""
        nonce = sum(len(b.events) for b in self.blocks)
        event = Event(nonce, to, mint)
        self.blocks.append(Block(self.branch, [event]))
        return event

    def reorg(self, depth: int, new_blocks: int | None = None, carry: bool = False) -> None:
        """Replace the newest `depth` blocks by `new_blocks` (default as many) of a new branch;
        `carry`: their deposits are mined again, in the first new block."""
        dropped = self.blocks[len(self.blocks) - depth :]
        del self.blocks[len(self.blocks) - depth :]
        self.branch += 1
        fresh = [Block(self.branch) for _ in range(depth if new_blocks is None else new_blocks)]
        if carry:
            fresh[0].events = [e for b in dropped for e in b.events]
        self.blocks += fresh

    @property
    def head(self) -> int:
        return len(self.blocks) - 1

    # ---- the DepositReader ----

    def deposits(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[Deposit]:
        self._check()
        if self.logs_fail is not None:
            raise self.logs_fail
        if self.during_logs is not None:
            hook, self.during_logs = self.during_logs, None
            hook()
        end = self.head if to_l1_block is None else to_l1_block
        found = []
        for number in range(from_l1_block, min(end, self.head) + 1):
            for index, e in enumerate(self.blocks[number].events):
                found.append(
                    deposit_from_event(
                        chain_id,
                        e.nonce,
                        ALICE,
                        opaque(e.to, e.mint),
                        self._hash(number),
                        index,
                        number,
                    )
                )
        return found

    def l1_block_number(self, tag: str = "latest") -> int:
        self._check()
        return self.head

    def l1_block_hash(self, number: int) -> bytes | None:
        self._check()
        return self._hash(number) if number <= self.head else None

    def _hash(self, number: int) -> bytes:
        return keccak(number.to_bytes(8, "big") + self.blocks[number].branch.to_bytes(8, "big"))

    def _check(self) -> None:
        if self.down:
            raise L1Unavailable("L1 unreachable (test): connection refused")


@pytest.fixture
def l1() -> FakeL1:
    fake = FakeL1()
    fake.mine(5)
    return fake


def follower(l1: FakeL1, confirmations: int = 2, **kwargs: object) -> L1Follower:
    return L1Follower(l1, CHAIN, confirmations, **kwargs)  # type: ignore[arg-type]


def settle(f: L1Follower) -> None:
    """Poll until the follower has caught up with the fake L1."""
    for _ in range(100):
        _changed, behind = f.poll()
        if not behind:
            return
    raise AssertionError("the follower never caught up")


def nonces(deposits: object) -> list[int]:
    return [d.nonce for d in deposits]  # type: ignore[attr-defined]


# ---- confirmations and the origin ----


def test_the_origin_is_the_block_confirmations_deep_with_its_hash(l1: FakeL1) -> None:
    f = follower(l1, confirmations=2)
    assert f.origin() == L1Origin()  # nothing read yet: the node keeps its parent's origin
    settle(f)
    assert f.origin() == L1Origin(l1.head - 2, l1.l1_block_hash(l1.head - 2))  # type: ignore[arg-type]
    l1.mine(3)
    settle(f)
    assert f.origin().number == l1.head - 2


def test_a_deposit_is_offered_only_once_confirmations_deep(l1: FakeL1) -> None:
    f = follower(l1, confirmations=2)
    l1.deposit(mint=7)
    settle(f)
    assert f.deposits(0, FAR, 10) == [] and f.pending() == 1
    l1.mine(1)
    settle(f)
    assert f.deposits(0, FAR, 10) == []
    l1.mine(1)
    settle(f)
    (deposit,) = f.deposits(0, FAR, 10)
    assert (deposit.nonce, deposit.mint, deposit.l1_block) == (0, 7, l1.head - 2)
    assert f.origin().number == deposit.l1_block


def test_no_confirmations_offers_the_head(l1: FakeL1) -> None:
    f = follower(l1, confirmations=0)
    l1.deposit()
    settle(f)
    assert nonces(f.deposits(0, FAR, 10)) == [0] and f.origin().number == l1.head


def test_deposits_stop_at_the_origin_the_node_names(l1: FakeL1) -> None:
    f = follower(l1, confirmations=0)
    first = l1.deposit()
    l1.deposit()
    settle(f)
    assert nonces(f.deposits(0, L1Origin(l1.head - 1), 10)) == [first.nonce]
    assert nonces(f.deposits(0, FAR, 1)) == [0]  # and the limit
    assert nonces(f.deposits(0, FAR, 10)) == [0, 1]


# ---- reorgs ----


def test_a_deposit_reorged_out_before_confirmation_is_never_offered(l1: FakeL1) -> None:
    f = follower(l1, confirmations=2)
    l1.deposit(to=ALICE, mint=666)
    l1.mine(1)
    settle(f)
    assert f.deposits(0, FAR, 10) == []  # one block deep: not yet
    l1.reorg(2)  # the deposit's block and the one on it are replaced by empty blocks
    l1.mine(5)
    settle(f)
    assert f.deposits(0, FAR, 10) == [] and f.pending() == 0
    later = l1.deposit(mint=5)  # the Portal's nonce 0 again: the reorged one never happened
    l1.mine(2)
    settle(f)
    (deposit,) = f.deposits(0, FAR, 10)
    assert (deposit.nonce, deposit.mint) == (later.nonce, 5) == (0, 5)


def test_a_deposit_mined_again_in_another_block_is_offered_once_with_its_new_id(
    l1: FakeL1,
) -> None:
    f = follower(l1, confirmations=2)
    l1.deposit(mint=9)
    settle(f)
    assert f.deposits(0, FAR, 10) == [] and f.pending() == 1  # read, not confirmed
    before = l1.deposits(CHAIN, l1.head, l1.head)[0]
    l1.reorg(1, new_blocks=2, carry=True)  # same number, another block (another hash)
    l1.mine(2)
    settle(f)
    (deposit,) = f.deposits(0, FAR, 10)
    assert deposit.nonce == 0 and deposit.mint == 9
    assert deposit.source_hash != before.source_hash and deposit.hash != before.hash
    assert deposit == l1.deposits(CHAIN, deposit.l1_block, deposit.l1_block)[0]
    assert f.deposits(1, FAR, 10) == []  # once the chain executed it, nothing more


def test_a_deposit_moved_to_a_later_block_waits_for_its_new_confirmations(l1: FakeL1) -> None:
    f = follower(l1, confirmations=2)
    l1.deposit()
    settle(f)
    l1.reorg(1, new_blocks=2)  # the deposit's block replaced by two empty ones...
    l1.blocks[-1].events = [Event(0, BOB, 1)]  # ...and it lands in the second
    settle(f)
    assert f.deposits(0, FAR, 10) == []
    l1.mine(2)
    settle(f)
    (deposit,) = f.deposits(0, FAR, 10)
    assert deposit.l1_block == l1.head - 2


def test_a_reorg_during_a_read_is_read_again(l1: FakeL1) -> None:
    f = follower(l1, confirmations=0)
    settle(f)
    l1.deposit(mint=1)
    l1.during_logs = lambda: l1.reorg(1, carry=False)  # the deposit vanishes mid-read
    changed, behind = f.poll()
    assert behind  # the round was dropped
    settle(f)
    assert f.deposits(0, FAR, 10) == [] and f.tip == l1.head


def test_a_reorg_below_the_tip_during_a_read_is_caught(l1: FakeL1) -> None:
    f = follower(l1, confirmations=0)
    l1.deposit(mint=1)
    settle(f)

    def reorg_then_grow() -> None:  # the deposit's block replaced; the head moves on
        l1.reorg(2, new_blocks=4)

    l1.mine(1)
    l1.during_logs = reorg_then_grow
    f.poll()
    settle(f)
    assert f.deposits(0, FAR, 10) == [] and f.pending() == 0


def test_the_origin_never_moves_back(l1: FakeL1, caplog: pytest.LogCaptureFixture) -> None:
    f = follower(l1, confirmations=1)
    l1.mine(4)
    settle(f)
    origin = f.origin()
    l1.reorg(4, new_blocks=1)  # deeper than the confirmations, and a shorter chain
    with caplog.at_level(logging.ERROR, "services.l1follow"):
        settle(f)
    assert f.origin() == origin
    assert "deeper than 1 confirmations" in caplog.text
    l1.mine(3)  # the head back at the old origin's height + 1: no newer confirmed block
    settle(f)
    assert f.origin() == origin
    l1.mine(1)
    settle(f)
    assert f.origin().number == origin.number + 1
    assert f.origin().hash == l1.l1_block_hash(origin.number + 1)  # the new branch's


def test_after_a_reorg_deeper_than_the_origin_deposits_wait_for_their_confirmations(
    l1: FakeL1,
) -> None:
    f = follower(l1, confirmations=2)
    l1.mine(5)
    settle(f)
    origin = f.origin()
    l1.reorg(4, new_blocks=1)  # the new head is below the origin, and holds a deposit
    l1.blocks[-1].events = [Event(0, BOB, 1)]
    settle(f)
    assert f.origin() == origin and f.pending() == 1
    assert f.deposits(0, FAR, 10) == []  # under the old origin, but not confirmed
    l1.mine(2)
    settle(f)
    assert nonces(f.deposits(0, FAR, 10)) == [0] and f.origin() == origin


def test_a_reorg_deeper_than_the_hashes_kept_reads_on_from_the_oldest(l1: FakeL1) -> None:
    f = follower(l1, confirmations=0, keep=3)
    l1.deposit()
    l1.mine(5)
    settle(f)
    l1.reorg(8, carry=True)
    settle(f)
    # the deposit (older than the 3 hashes kept) is taken as final: still the old one
    (deposit,) = f.deposits(0, FAR, 10)
    assert deposit.nonce == 0 and f.tip == l1.head


# ---- nonces ----


class GapReader(FakeL1):
    """The Portal never skips a nonce; a broken L1 node might. The run stops at the gap."""

    def deposits(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> list[Deposit]:
        return [d for d in super().deposits(chain_id, from_l1_block, to_l1_block) if d.nonce != 2]


def test_a_nonce_gap_stops_the_run() -> None:
    l1 = GapReader()
    for _ in range(5):
        l1.deposit()
    f = follower(l1, confirmations=0)
    settle(f)
    assert nonces(f.deposits(0, FAR, 10)) == [0, 1]
    assert nonces(f.deposits(3, FAR, 10)) == [3, 4]
    assert f.deposits(5, FAR, 10) == []


def test_a_restarted_node_is_offered_what_it_has_not_executed(l1: FakeL1) -> None:
    for _ in range(4):
        l1.deposit()
    l1.mine(2)
    f = follower(l1, confirmations=2, start_nonce=3, from_block=3)
    settle(f)
    assert nonces(f.deposits(3, FAR, 10)) == [3] and f.pending() == 1


def test_executed_deposits_are_forgotten(l1: FakeL1) -> None:
    f = follower(l1, confirmations=0)
    for _ in range(3):
        l1.deposit()
    settle(f)
    assert nonces(f.deposits(2, FAR, 10)) == [2]  # the chain executed 0 and 1
    l1.mine(1)
    settle(f)
    assert f.pending() == 1 and f.deposits(0, FAR, 10) == []


# ---- the thread: outages, wake-ups ----


def test_an_outage_keeps_the_last_origin_and_is_logged_once(
    l1: FakeL1, caplog: pytest.LogCaptureFixture
) -> None:
    woken = threading.Event()
    f = follower(l1, confirmations=1, poll_s=0.01, on_change=woken.set)
    caplog.set_level(logging.INFO, "services.l1follow")
    f.start()
    try:
        wait(lambda: f.origin().number == l1.head - 1, "the first origin")
        origin = f.origin()
        l1.down = True
        wait(lambda: not f.reachable, "the outage to be seen")
        time.sleep(0.2)  # several failed rounds (with back-off)
        assert f.origin() == origin
        assert f.deposits(0, FAR, 10) == []
        assert caplog.text.count("L1 unreachable (blocks keep") == 1
        l1.mine(2)
        l1.deposit(mint=3)
        l1.mine(1)
        woken.clear()
        l1.down = False
        # the round publishes, then wakes the node, then logs the recovery: wait for all three
        wait(
            lambda: f.deposits(0, FAR, 10) != [] and woken.is_set() and f.reachable,
            "the round after the outage",
        )
        assert "L1 reachable again" in caplog.text
        assert f.origin().number == l1.head - 1 > origin.number
    finally:
        f.stop()


def test_a_failing_round_does_not_end_the_thread(
    l1: FakeL1, caplog: pytest.LogCaptureFixture
) -> None:
    f = follower(l1, confirmations=0, poll_s=0.01)
    l1.logs_fail = ValueError("a malformed answer")
    l1.deposit()
    f.start()
    try:
        wait(lambda: not f.reachable, "the failing round")
        assert f.deposits(0, FAR, 10) == []
        l1.logs_fail = None
        wait(lambda: nonces(f.deposits(0, FAR, 10)) == [0], "the deposit")
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "a malformed answer" in errors[0].getMessage()
    finally:
        f.stop()


def wait(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """The follower thread's progress, polled at its pace (it polls the fake L1 every 10 ms)."""
    wait_for(condition, what, timeout, interval=0.005)

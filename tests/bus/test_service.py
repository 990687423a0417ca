"""`BusService` over a fake transport: two real sequencers (pinger, ponger) in one process.

The fake (`Hub`) is the port's whole surface: frames go to the chain they are addressed to,
in order, on the event loop; a chain can be "away" (its frames are lost), and the test can
inject frames of its own, as any local process could over a real transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rollup.crypto import key_address
from sequencer.harness import LocalChain
from services.bus.service import BusService
from services.bus.transport import Connected, Deliver
from services.bus.trust import StaticTrust
from services.bus.wire import decode_frame, messages_frame, progress_frame
from vm.bus import inbound_progress

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "benchmarks" / "apps"
KEYS = {910001: b"\x0a" * 32, 910002: b"\x0b" * 32}


class Hub:
    def __init__(self) -> None:
        self.ends: dict[int, FakeTransport] = {}
        self.away: set[int] = set()
        self.seen: list[tuple[int, bytes]] = []  # (destination, frame) of everything sent


class FakeTransport:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.deliver: Deliver | None = None

    async def start(self, chain_id: int, deliver: Deliver, connected: Connected) -> None:
        self.deliver = deliver
        self.hub.ends[chain_id] = self

    def send(self, dst_chain: int, frame: bytes, durable: bool) -> None:
        self.hub.seen.append((dst_chain, frame))
        peer = self.hub.ends.get(dst_chain)
        if peer is not None and dst_chain not in self.hub.away:
            assert peer.deliver is not None
            asyncio.get_running_loop().call_soon(peer.deliver, frame)

    def settled(self, src_chain: int, next_nonce: int) -> None:
        pass

    async def close(self) -> None:
        pass


@pytest.fixture
def chains() -> Iterator[tuple[LocalChain, LocalChain]]:
    a, b = LocalChain.from_dir(APPS / "pinger"), LocalChain.from_dir(APPS / "ponger")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def services(a: LocalChain, b: LocalChain, hub: Hub) -> tuple[BusService, BusService]:
    trust = StaticTrust({c: key_address(k) for c, k in KEYS.items()})
    return tuple(  # type: ignore[return-value]
        BusService(
            c.node,
            FakeTransport(hub),
            KEYS[c.node.chain_id],
            trust,
            resend_after=0.05,
            save_every=0.05,
        )
        for c in (a, b)
    )


async def settle(*chains: LocalChain, rounds: int = 200) -> None:
    """Let frames arrive and build blocks until nothing moves for a while."""
    idle = 0
    for _ in range(rounds):
        await asyncio.sleep(0.01)
        built = [c.node.produce(next(c._clock)) for c in chains if c.node.has_work()]
        idle = 0 if built else idle + 1
        if idle >= 15:
            return


def ping(a: LocalChain, b: LocalChain, first: int, n: int) -> None:
    receipt = a.transact(a.accounts[0], "ping", b.node.chain_id, b.app.address, first, n)
    assert receipt.status == 1


def test_signed_frames_carry_calls_and_results(chains: tuple[LocalChain, LocalChain]) -> None:
    a, b = chains

    async def run() -> None:
        hub = Hub()
        sa, sb = services(a, b, hub)
        await sa.start()
        await sb.start()
        ping(a, b, 1, 5)
        await settle(a, b)
        assert a.call("stats") == (5, 5, 0)
        assert sa.rejected == sb.rejected == 0
        await sa.stop()
        await sb.stop()

    asyncio.run(run())


def test_a_forged_frame_changes_nothing_and_consumes_no_nonce(
    chains: tuple[LocalChain, LocalChain],
) -> None:
    a, b = chains

    async def run() -> None:
        hub = Hub()
        sa, sb = services(a, b, hub)
        await sa.start()
        await sb.start()
        hub.away.add(b.node.chain_id)  # the honest frame is "late"
        ping(a, b, 1, 1)
        honest = next(f for dst, f in hub.seen if dst == b.node.chain_id and f[1] == 1)
        block = decode_frame(honest).blocks[0]
        message = block.messages[0]
        # the same nonce, other calldata; the honest header and signature, an honest proof
        forged = replace(block, messages=(replace(message, data=message.data[:-1] + b"\x63"),))
        assert sb._on_frame(messages_frame(a.node.chain_id, b.node.chain_id, [forged])) is None
        assert sb.rejections == {"proof": 1} and len(b.node.inbox) == 0
        assert inbound_progress(b.node.state, a.node.chain_id) == 0
        hub.away.clear()  # the honest one arrives (a re-sends from its outbox)
        await settle(a, b)
        assert a.call("stats") == (1, 1, 0) and b.call("times", 1) == 1
        await sa.stop()
        await sb.stop()

    asyncio.run(run())


def test_a_forged_progress_trims_nothing_and_the_message_is_resent_from_the_store(
    chains: tuple[LocalChain, LocalChain],
) -> None:
    a, b = chains
    A, B = a.node.chain_id, b.node.chain_id

    async def run() -> None:
        hub = Hub()
        sa, sb = services(a, b, hub)
        await sa.start()
        await sb.start()
        hub.away.add(B)
        ping(a, b, 1, 3)
        sa._on_frame(progress_frame(KEYS[A], B, A, 3))  # signed by the wrong chain's key
        sa._on_frame(progress_frame(KEYS[B], B, 999, 3))  # the right key, another channel
        assert sa.rejections == {"signature": 1, "destination": 1}
        assert sa.channels[B].acked == 0
        await asyncio.sleep(0.2)  # saves and re-sends happen; none of it reaches B
        assert sa.outbox.messages(B, 0, 10) and sa.outbox.acked().get(B, 0) == 0
        sa._signatures.clear()  # re-sends prove the messages again from the stored blocks
        hub.away.clear()
        await settle(a, b)
        assert a.call("stats") == (3, 3, 0)
        assert sa.resent >= 3
        await asyncio.sleep(0.2)
        assert sa.outbox.acked()[B] == 3 and not sa.outbox.messages(B, 0, 10)
        # an old PROGRESS (replayed) moves nothing back and is not even checked
        rejected = sa.rejected
        sa._on_frame(progress_frame(KEYS[A], B, A, 1))
        assert sa.channels[B].acked == 3 and sa.rejected == rejected
        await sa.stop()
        await sb.stop()

    asyncio.run(run())

"""A node that posts to the L1 keeps making blocks while idle (a heartbeat), so its output
roots keep coming and nobody can open the bridge's escape hatch of a live chain."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from sequencer.node import Sequencer
from services.node import open_node
from services.producer import BlockProducer
from services.scaffold import scaffold


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Sequencer]:
    app = scaffold(tmp_path / "app", "counter", "beat", 905001)
    sequencer = open_node(app, tmp_path / "data")
    try:
        yield sequencer
    finally:
        sequencer.close()


def idle_for(node: Sequencer, seconds: float, heartbeat: float | None) -> int:
    async def run() -> int:
        producer = BlockProducer(node, 1, heartbeat_s=heartbeat)
        start = node.committed.number
        producer.start()
        await asyncio.sleep(seconds)
        await producer.stop()
        return node.committed.number - start

    return asyncio.run(run())


def test_an_idle_chain_makes_empty_blocks_at_its_heartbeat(node: Sequencer) -> None:
    made = idle_for(node, 1.0, heartbeat=0.25)
    assert 2 <= made <= 5
    block = node.block(node.committed.number)
    assert block is not None and not block.transactions and not block.deposits


def test_without_a_heartbeat_an_idle_chain_makes_nothing(node: Sequencer) -> None:
    assert idle_for(node, 0.6, heartbeat=None) == 0


def test_wake_ups_that_bring_nothing_do_not_put_the_heartbeat_off(node: Sequencer) -> None:
    """The L1 follower wakes the producer at every L1 block; an idle chain must still beat."""

    async def run() -> int:
        producer = BlockProducer(node, 1, heartbeat_s=0.3)
        start = node.committed.number
        producer.start()
        for _ in range(12):
            await asyncio.sleep(0.1)
            producer.wake()
        await asyncio.wait_for(producer.stop(), 10)  # and it stops
        return node.committed.number - start

    assert asyncio.run(run()) >= 3

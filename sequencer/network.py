"""`LocalNetwork`: several app chains in one process, with the message bus between them.

    with LocalNetwork.from_dirs("token", "orderbook") as net:
        token, book = net.chains
        token.transact(token.accounts[0], "send_to", book.node.chain_id, book.app.address, ...)
        net.settle()                     # deliver and build until no message is in flight
        assert book.call("balance_of", token.accounts[0])[0] == ...

The bus here is the same path a transport feeds (`Sequencer.receive` from committed blocks'
outbound messages); `deliver` and `pending` let tests lose, repeat or reorder messages the way
a real transport may. Blocks are built by the real sequencers, as in `LocalChain`.

It is a trusted harness: messages go straight from one chain's block to the other's inbox,
with no signature or proof to check. Whatever arrives from outside a process (a socket, NATS)
goes through services/bus/service.py, which checks the source sequencer's signature and the
Merkle proof of every message before `Sequencer.receive` sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rollup.messages import CrossMessage
from rollup.types import Block
from sequencer.harness import LocalChain

__all__ = ["LocalNetwork"]


class LocalNetwork:
    def __init__(self, chains: Iterable[LocalChain]) -> None:
        self.chains = list(chains)
        self._by_id = {c.node.chain_id: c for c in self.chains}
        self.in_flight: list[CrossMessage] = []  # committed, not yet handed to a destination
        self.now_ms = 1_700_000_000_000
        for chain in self.chains:
            chain.node.on_commit.append(self._committed)

    @classmethod
    def from_dirs(cls, *app_dirs: str | Path) -> LocalNetwork:
        return cls(LocalChain.from_dir(d) for d in app_dirs)

    def __enter__(self) -> LocalNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for chain in self.chains:
            chain.close()

    def chain(self, chain_id: int) -> LocalChain:
        return self._by_id[chain_id]

    def _committed(self, block: Block) -> None:
        self.in_flight.extend(block.outbound)

    def deliver(self, messages: Iterable[CrossMessage] | None = None) -> int:
        """Hand messages (by default all in flight) to their destinations; returns how many
        were new to them. Messages for chains not in the network stay in flight."""
        batch = list(self.in_flight if messages is None else messages)
        if messages is None:
            self.in_flight = []
        accepted = 0
        for message in batch:
            destination = self._by_id.get(message.dst_chain)
            if destination is None:
                self.in_flight.append(message)
                continue
            accepted += destination.node.receive(message)
        return accepted

    def advance(self, seconds: float) -> None:
        """Move the clock of the blocks `settle` builds (for message expiry)."""
        self.now_ms += int(seconds * 1000)

    def step(self) -> int:
        """Deliver what is in flight, then build one block on every chain with work."""
        self.deliver()
        built = 0
        for chain in self.chains:
            if chain.node.has_work():
                self.now_ms += 10
                built += chain.node.produce(self.now_ms) is not None
        return built

    def settle(self, max_rounds: int = 1_000) -> int:
        """Step until nothing is in flight for a chain of the network; returns blocks built."""
        total = 0
        for _ in range(max_rounds):
            built = self.step()
            total += built
            if not built and not any(m.dst_chain in self._by_id for m in self.in_flight):
                return total
        raise RuntimeError(f"messages still in flight after {max_rounds} rounds")

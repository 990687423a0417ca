"""The outbox alone, in a real chain store: rows written with their block, read back per
channel in nonce order, acknowledged (and forgotten) per destination, across a reopen."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from rollup.messages import CALL, CrossMessage, decode_message
from rollup.types import Address
from sequencer.outbox import Outbox, write_outbox_rows
from sequencer.store import Store

A = Address(b"\x11" * 20)
SRC = 5


def message(dst: int, nonce: int) -> CrossMessage:
    return CrossMessage(SRC, 1, nonce, nonce, dst, A, A, CALL, 0, 10, 99, False, b"hi")


def write(store: Store, number: int, messages: list[CrossMessage]) -> None:
    block = SimpleNamespace(header=SimpleNamespace(number=number), outbound=tuple(messages))
    with store.engine.begin() as conn:
        write_outbox_rows(conn, block)  # type: ignore[arg-type]  # the two fields it reads


def test_messages_are_read_per_channel_in_nonce_order_with_their_block(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/chain.db")
    write(store, 3, [message(7, 0), message(8, 0)])
    write(store, 4, [message(7, 1), message(7, 2)])
    write(store, 5, [])
    outbox = Outbox(store.engine)
    assert outbox.channels() == {7: (0, 2), 8: (0, 0)}

    def nonces(dst: int, start: int, limit: int) -> list[tuple[int, int]]:
        rows = outbox.messages(dst, start, limit)
        return [(block, decode_message(raw).channel_nonce) for block, raw in rows]

    assert nonces(7, 1, 10) == [(4, 1), (4, 2)]
    assert nonces(7, 0, 1) == [(3, 0)]
    assert decode_message(outbox.messages(8, 0, 5)[0][1]) == message(8, 0)
    store.close()


def test_an_acknowledgement_forgets_what_the_destination_executed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/chain.db"
    store = Store(url)
    write(store, 3, [message(7, n) for n in range(4)] + [message(8, 0)])
    outbox = Outbox(store.engine)
    outbox.acknowledge([(7, 2)])
    outbox.acknowledge([])  # nothing heard: nothing written
    assert outbox.acked() == {7: 2}
    assert outbox.channels() == {7: (2, 3), 8: (0, 0)}
    outbox.acknowledge([(7, 4), (8, 1)])
    assert outbox.channels() == {} and outbox.acked() == {7: 4, 8: 1}
    store.close()
    reopened = Store(url)  # acknowledgements are durable: nothing is sent again
    assert Outbox(reopened.engine).acked() == {7: 4, 8: 1}
    reopened.close()

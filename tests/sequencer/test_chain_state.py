"""ChainState alone: the newest values read through to the store, history at older blocks
inside the window, and a clear error outside it."""

from __future__ import annotations

import pytest

from rollup.errors import StateUnavailable
from sequencer.chain import ChainState

A, B, C = b"\x00a", b"\x00b", b"\x00c"


def loaded(store: dict[bytes, bytes]) -> tuple[ChainState, list[bytes]]:
    reads: list[bytes] = []

    def load(key: bytes) -> bytes | None:
        reads.append(key)
        return store.get(key)

    return ChainState(load), reads


def test_reads_go_through_to_the_store_once_and_misses_are_remembered() -> None:
    chain, reads = loaded({A: b"1"})
    assert chain.get(A) == b"1" and chain.get(A) == b"1"
    assert chain.get(B) is None and chain.get(B) is None
    assert reads == [A, B]


def test_a_complete_state_never_reads_the_store() -> None:
    chain, reads = loaded({A: b"1"})
    chain.preload([(A, b"1")])
    assert chain.get(B) is None and reads == []
    assert dict(chain.items()) == {A: b"1"}


def test_history_answers_each_block_as_it_was() -> None:
    chain, _ = loaded({A: b"0"})
    chain.preload([(A, b"0")])
    chain.apply(1, {A: (b"0", b"1"), B: (None, b"x")})
    chain.apply(2, {A: (b"1", b"2")})
    chain.apply(3, {B: (b"x", None), C: (None, b"c")})
    assert chain.executed == 3
    expected = {
        0: {A: b"0"},
        1: {A: b"1", B: b"x"},
        2: {A: b"2", B: b"x"},
        3: {A: b"2", C: b"c"},
    }
    for block, values in expected.items():
        reader = chain.reader_at(block)
        assert {k: reader.get(k) for k in (A, B, C) if reader.get(k) is not None} == values
        assert dict(chain.items_at(block)) == values


def test_the_window_forgets_the_oldest_blocks_and_says_so() -> None:
    chain = ChainState(lambda key: None, max_history_entries=2)
    chain.preload([])
    for number in range(1, 5):
        chain.apply(number, {A: (bytes([number - 1]), bytes([number]))})
    assert chain.oldest_history == 2
    assert chain.reader_at(2).get(A) == b"\x02"
    with pytest.raises(StateUnavailable, match="block 1 is not available"):
        chain.reader_at(1)
    with pytest.raises(StateUnavailable, match="block 1 is not available"):
        list(chain.items_at(1))


def test_items_at_needs_the_whole_state_in_memory() -> None:
    chain, _ = loaded({A: b"1"})
    with pytest.raises(StateUnavailable, match="whole state is not in memory"):
        list(chain.items_at(0))

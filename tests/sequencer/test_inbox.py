"""The inbox's bound: in total across channels, in count and bytes, never at the expense of
the message a channel needs next."""

from __future__ import annotations

from rollup.messages import CALL, CrossMessage, encode_message
from rollup.types import Address
from sequencer.inbox import Inbox

A = Address(b"\x11" * 20)
DST = 9


def msg(src: int, nonce: int, data: bytes = b"") -> CrossMessage:
    return CrossMessage(src, 1, 0, nonce, DST, A, A, CALL, 0, 10, 99, False, data)


def test_holds_in_order_and_counts_what_it_holds() -> None:
    inbox = Inbox()
    assert inbox.add(msg(1, 1), 0) and inbox.add(msg(1, 0), 0) and inbox.add(msg(2, 0), 0)
    assert not inbox.add(msg(1, 0), 0)  # held already
    assert len(inbox) == 3
    assert inbox.bytes == sum(len(encode_message(msg(s, n))) for s, n in [(1, 0), (1, 1), (2, 0)])
    taken = inbox.take(lambda src: 0, 10)
    assert [(m.src_chain, m.channel_nonce) for m in taken] == [(1, 0), (1, 1), (2, 0)]
    assert len(inbox) == 0 and inbox.bytes == 0


def test_the_bound_is_across_channels() -> None:
    inbox = Inbox(max_messages=4)
    for src in (1, 2, 3, 4):
        assert inbox.add(msg(src, 5), 0)  # each channel holds one, ahead of a gap
    assert not inbox.add(msg(5, 5), 0)  # a fifth channel: refused, nothing evicted
    assert len(inbox) == 4 and inbox.refused == 1


def test_a_full_inbox_still_takes_what_executes_next() -> None:
    inbox = Inbox(max_messages=4)
    for nonce in (2, 3, 4, 5):  # nonces 0 and 1 are late: held behind the gap
        assert inbox.add(msg(1, nonce), 0)
    assert not inbox.add(msg(1, 1), 0)  # fills no gap at the progress: refused
    assert inbox.add(msg(1, 0), 0)  # the next to execute: the furthest ahead (5) goes
    assert (len(inbox), inbox.evicted) == (4, 1)
    assert inbox.add(msg(1, 1), 0)  # continues the run from the progress: 4 goes
    assert (len(inbox), inbox.evicted) == (4, 2)
    assert [m.channel_nonce for m in inbox.take(lambda src: 0, 10)] == [0, 1, 2, 3]


def test_nothing_that_can_execute_is_evicted() -> None:
    inbox = Inbox(max_messages=3)
    assert inbox.add(msg(1, 0), 0) and inbox.add(msg(1, 1), 0) and inbox.add(msg(2, 0), 0)
    assert not inbox.add(msg(1, 2), 0)  # full of runs that can execute: refused
    assert inbox.evicted == 0
    assert [m.channel_nonce for m in inbox.take(lambda src: 0, 10)] == [0, 1, 0]


def test_the_byte_bound() -> None:
    big = b"x" * 1000
    size = len(encode_message(msg(1, 0, big)))
    inbox = Inbox(max_bytes=3 * size)
    assert all(inbox.add(msg(1, n, big), 0) for n in (3, 4, 5))
    assert not inbox.add(msg(2, 7, big), 0)
    assert inbox.add(msg(1, 0, big), 0)  # next to execute: the furthest ahead (5) goes
    assert inbox.bytes <= 3 * size and inbox.evicted == 1
    assert not inbox.add(msg(3, 0, b"z" * (3 * size)), 0)  # larger than the whole bound


def test_executed_and_far_ahead_messages_are_refused() -> None:
    inbox = Inbox(max_ahead=10)
    assert not inbox.add(msg(1, 4), 5)
    assert not inbox.add(msg(1, 15), 5)
    assert inbox.add(msg(1, 14), 5)

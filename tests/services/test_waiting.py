"""wait_until: the one polling loop."""

from __future__ import annotations

import itertools

import pytest

from rollup.errors import Action, ProcessError, action_of
from services.waiting import WaitTimeout, wait_until


def test_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "done", 5, "three calls", interval=0) == "done"


def test_times_out_naming_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeout, match=r"^timed out after 0.1 s waiting for the moon$") as e:
        wait_until(lambda: None, 0.1, "the moon", interval=0.01)
    assert action_of(e.value) is Action.RETRY


def test_raises_the_callers_error_class() -> None:
    with pytest.raises(ProcessError, match="waiting for a node"):
        wait_until(lambda: False, 0.05, "a node", interval=0.01, error=ProcessError)


def test_what_the_predicate_raises_goes_to_the_caller() -> None:
    def broken() -> bool:
        raise ProcessError("it exited")

    with pytest.raises(ProcessError, match="it exited"):
        wait_until(broken, 5, "anything")

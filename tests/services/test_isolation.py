"""`Isolator`: heavy work in a forked child, with a wall-time limit and bounded waiting."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from rollup.errors import CallFailed, ExecutionReverted, LimitExceeded
from services.rpc.isolation import ForwardedError, IsolationLimits, Isolator

PARENT_STATE: dict[str, Any] = {"touched": False}


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_the_answer_comes_from_a_child_that_cannot_change_the_parent() -> None:
    def work() -> dict[str, Any]:
        PARENT_STATE["touched"] = True  # the child's copy only
        return {"pid": os.getpid(), "nice": os.nice(0)}

    answer = run(Isolator().run(work))
    assert answer["pid"] != os.getpid()
    assert answer["nice"] >= os.nice(0) + 10
    assert PARENT_STATE["touched"] is False


def test_a_rollup_error_keeps_its_code_message_and_data() -> None:
    def work() -> None:
        raise ExecutionReverted("nope", b"\x08\xc3\x79\xa0")

    with pytest.raises(ForwardedError) as caught:
        run(Isolator().run(work))
    assert (caught.value.code, caught.value.message, caught.value.data) == (
        3,
        "execution reverted: nope",
        "0x08c379a0",
    )


def test_a_bug_in_the_work_is_an_internal_error_not_a_crash() -> None:
    with pytest.raises(ForwardedError, match="internal error: ZeroDivisionError"):
        run(Isolator().run(lambda: 1 // 0))


def test_work_past_the_timeout_is_killed_and_answered_like_geth(tmp_path: Path) -> None:
    isolator = Isolator(IsolationLimits(timeout_s=0.3))
    started = time.monotonic()
    pid_file = tmp_path / "pid"

    def forever() -> None:
        pid_file.write_text(str(os.getpid()))
        while True:
            pass

    with pytest.raises(CallFailed, match=r"execution aborted \(timeout = 0.3s\)"):
        run(isolator.run(forever))
    assert time.monotonic() - started < 10
    assert isolator.timeouts == 1
    pid = int(pid_file.read_text())
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # killed and reaped: no zombie left behind
    assert not Path(f"/proc/{pid}").exists()


def test_requests_past_the_waiting_bound_are_refused_not_queued() -> None:
    isolator = Isolator(IsolationLimits(max_children=1, max_waiting=2, timeout_s=5))

    def slow() -> int:
        time.sleep(0.5)
        return 1

    async def flood() -> list[Any]:
        jobs = [isolator.run(slow) for _ in range(5)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = run(flood())
    assert results.count(1) == 2
    refused = [r for r in results if isinstance(r, LimitExceeded)]
    assert len(refused) == 3 and "too many heavy requests" in str(refused[0])

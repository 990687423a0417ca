"""Heavy JSON-RPC work in a forked process, so no request can stall block production.

A simulation that outgrows its budget on the event loop (sequencer/simulate.py) and
debug_traceTransaction run here: the node forks, the child computes the answer on its
copy-on-write view of the node's memory (state, EVM engine, app code) at a lower CPU priority
and writes it to a pipe as JSON; the parent awaits it on the event loop. So

- the answer reflects the node at the moment of the fork (a committed block's state is all a
  simulation reads);
- the work runs on another core at nice 10, and never holds the node's GIL (revm holds it for a
  whole run; a thread would not help);
- a wall-time limit is exact: the parent SIGKILLs a child past `timeout` and answers
  "execution aborted (timeout = ...)", as geth does;
- at most `max_children` run at once and `max_waiting` wait; past that the request is refused
  with -32005 rather than queued without bound.

The child touches nothing the parent shares (sockets, the store's connections, the event loop):
it reads memory, writes one pipe, and `os._exit`s. Linux only (fork + pidfd).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import math
import os
import resource
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from rollup.errors import Action, Busy, CallFailed, LimitExceeded, RollupError, rpc_code

__all__ = ["Isolator", "IsolationLimits", "ForwardedError", "outcomes", "unwrap"]

_MAX_ANSWER = 64 * 1024 * 1024  # bytes of one child's answer
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True, slots=True)
class IsolationLimits:
    max_children: int = 1  # on 2 cores: the node keeps one to itself
    max_waiting: int = 32
    timeout_s: float = 5.0  # geth's RPCEVMTimeout
    nice: int = 10


class ForwardedError(RollupError):
    """An error a child answered with, forwarded with its JSON-RPC code and data (the answer to
    the caller's request, whose code says what went wrong)."""

    action = Action.FIX_INPUT

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code, self.data = code, data


class _Collect(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done, self.size = done, 0
        self.parts: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > _MAX_ANSWER:
            if not self.done.done():
                self.done.set_exception(LimitExceeded("answer too large"))
            return
        self.parts.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(b"".join(self.parts))


class Isolator:
    def __init__(self, limits: IsolationLimits | None = None) -> None:
        self.limits = limits or IsolationLimits()
        self._slots = asyncio.Semaphore(self.limits.max_children)
        self._waiting = 0
        self.started = 0  # children forked so far
        self.timeouts = 0

    async def run(self, work: Callable[[], Any]) -> Any:
        """`work()`'s JSON-able value, computed in a child; its RollupError is re-raised."""
        if self._waiting >= self.limits.max_waiting:
            raise Busy("too many heavy requests in flight; try again later")
        self._waiting += 1
        try:
            async with self._slots:
                answer = await self._fork(work)
        finally:
            self._waiting -= 1
        return unwrap(answer)

    async def _fork(self, work: Callable[[], Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its effects are tested from outside
            os.close(read_fd)
            _child(work, write_fd, self.limits)
        self.started += 1
        os.close(write_fd)
        done: asyncio.Future[bytes] = loop.create_future()
        pipe = os.fdopen(read_fd, "rb")
        transport, _ = await loop.connect_read_pipe(lambda: _Collect(done), pipe)
        try:
            raw = await asyncio.wait_for(done, self.limits.timeout_s)
        except TimeoutError:
            self.timeouts += 1
            raise CallFailed(f"execution aborted (timeout = {self.limits.timeout_s:g}s)") from None
        finally:
            transport.close()
            await _reap(pid)
        try:
            answer: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise CallFailed("the isolated execution failed") from None
        return answer


async def _reap(pid: int) -> None:
    """SIGKILL the child (a no-op when it is done) and collect it without blocking the loop."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(pid)
    exited: asyncio.Future[None] = loop.create_future()
    loop.add_reader(pidfd, _set_once, exited)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _child(  # pragma: no cover
    work: Callable[[], Any], write_fd: int, limits: IsolationLimits
) -> None:
    """Compute, answer, exit: never return into the parent's code."""
    status = 0
    try:
        gc.disable()  # collecting would touch (and copy) the parent's pages for nothing
        signal.set_wakeup_fd(-1)  # the loop's wakeup socket is the parent's
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the node, whatever happens
        cpu = math.ceil(limits.timeout_s) + 1  # the kernel's backstop for the parent's timer
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        os.nice(limits.nice)
        body = orjson.dumps(_outcome(work))
        view = memoryview(body)
        while view:
            view = view[os.write(write_fd, view) :]
    except BaseException:  # noqa: BLE001 - whatever happens, the child must not return
        status = 70
    finally:
        os._exit(status)


def _outcome(work: Callable[[], Any]) -> dict[str, Any]:
    """{"result": work()} or {"error": {code, message, data}}, never an exception."""
    try:
        return {"result": work()}
    except RollupError as exc:
        return {"error": _error(exc)}
    except Exception as exc:  # noqa: BLE001 - reported to the caller as an internal error
        return {"error": {"code": -32603, "message": f"internal error: {type(exc).__name__}"}}


def outcomes(works: Iterable[Callable[[], Any]]) -> list[dict[str, Any]]:
    """Each work's outcome, in order: several requests answered by one child."""
    return [_outcome(work) for work in works]


def unwrap(outcome: dict[str, Any]) -> Any:
    """An outcome's result, or its error raised as a ForwardedError."""
    if "error" in outcome:
        error = outcome["error"]
        raise ForwardedError(error["code"], error["message"], error.get("data"))
    return outcome["result"]


def _error(exc: RollupError) -> dict[str, Any]:
    out: dict[str, Any] = {"code": rpc_code(exc), "message": exc.message}
    data = getattr(exc, "data", None)
    if isinstance(data, bytes):
        out["data"] = "0x" + data.hex()
    elif isinstance(data, str):
        out["data"] = data
    return out

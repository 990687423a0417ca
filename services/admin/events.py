"""The admin API's event log: what changed in the devnet, as numbered events in a bounded ring
(`EventLog`), so that a client that reconnects with `Last-Event-ID` gets what it missed, and
one that was away too long (or saw another process's ids) is told to start again (`reset`).

Events are found by comparing successive samples of each app (services/admin/sampler.py):

    app        every sample of an app: its view, rates and latency (what the dashboard draws)
    block      the unsafe head moved
    batch      the DA poster posted a batch (or, without its metrics, the safe head moved)
    verifier   the verifier's status or message changed
    restart    the node was restarted (devnet.json counts restarts)
    state      running, paused, stopped or unreachable changed
    error      a new ERROR line in the node's log
    removed    an app left devnet.json
    action     this API paused, resumed, stopped, started or restarted an app (a sample may
               never see a short pause: this says it happened)

The ring lives in the event loop's thread, so appends and reads never race; the API's
synchronous handlers (run in worker threads) append through `append_threadsafe`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BUFFER_EVENTS", "Event", "EventLog", "changes"]

BUFFER_EVENTS = 4096  # a few minutes of a small devnet at one sample a second


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    data: Mapping[str, Any]

    def encode(self) -> str:
        """The event in the SSE wire format (one `data:` line: the JSON has no newline)."""
        body = json.dumps(self.data, separators=(",", ":"), sort_keys=True)
        return f"id: {self.id}\nevent: {self.type}\ndata: {body}\n\n"


class EventLog:
    """The newest `size` events, ids increasing from 1; waiters wake on each append."""

    def __init__(self, size: int = BUFFER_EVENTS) -> None:
        self._events: collections.deque[Event] = collections.deque(maxlen=size)
        self._next_id = 1
        self._appended = asyncio.Event()
        self.latest: dict[str, Mapping[str, Any]] = {}  # each app's newest `app` event data
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """The loop whose thread owns the ring (None: the caller's thread does)."""
        self._loop = loop

    def append_threadsafe(self, type_: str, data: Mapping[str, Any]) -> None:
        """`append` from another thread: done on the owning loop, soon."""
        if self._loop is None or self._loop.is_closed():
            self.append(type_, data)
        else:
            self._loop.call_soon_threadsafe(self.append, type_, data)

    def __len__(self) -> int:
        return len(self._events)

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def append(self, type_: str, data: Mapping[str, Any]) -> Event:
        event = Event(self._next_id, type_, data)
        self._next_id += 1
        self._events.append(event)
        if type_ == "app":
            self.latest[str(data["name"])] = data
        elif type_ == "removed":
            self.latest.pop(str(data["name"]), None)
        self._appended.set()
        self._appended = asyncio.Event()
        return event

    def all(self) -> list[Event]:
        return list(self._events)

    def after(self, last_id: int) -> list[Event] | None:
        """The events after `last_id`; None when some of them are gone from the ring, or the
        id was never given by this log (the client must reset)."""
        if not 0 <= last_id <= self.last_id:
            return None
        if not self._events:
            return []
        oldest = self._events[0].id
        if last_id < oldest - 1:
            return None
        return list(self._events)[last_id - oldest + 1 :]

    def snapshot(self) -> dict[str, Any]:
        """What a client starting afresh needs: every app's newest sample."""
        return {"apps": [self.latest[name] for name in sorted(self.latest)]}

    async def wait(self, timeout: float) -> None:
        """Until the next append or `timeout` seconds."""
        appended = self._appended
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(appended.wait(), timeout)


def changes(
    before: Mapping[str, Any] | None, now: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """The events between two samples of one app (`before` None: the first sample)."""
    found: list[tuple[str, dict[str, Any]]] = []
    name = now["name"]
    if before is None:
        return found
    head, was = now["heads"]["unsafe"], before["heads"]["unsafe"]
    if head is not None and head != was:
        found.append(("block", {"name": name, "number": head, "previous": was}))
    if _batch_posted(before, now):
        safe = now["heads"]["safe"]
        found.append(("batch", {"name": name, "safe": safe, "backlog": now["da_backlog_blocks"]}))
    if now["verifier"] != before["verifier"] and now["verifier"] is not None:
        found.append(("verifier", {"name": name, **now["verifier"]}))
    if now["restarts"] > before["restarts"]:
        found.append(("restart", {"name": name, "restarts": now["restarts"]}))
    if now["state"] != before["state"]:
        found.append(("state", {"name": name, "state": now["state"], "was": before["state"]}))
    if now["last_error"] is not None and now["last_error"] != before["last_error"]:
        found.append(("error", {"name": name, "line": now["last_error"]}))
    return found


def _batch_posted(before: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """The poster's batch counter went up; without it (no metrics), the safe head moved."""
    batches, was = now["metrics"].get("batches"), before["metrics"].get("batches")
    if batches is not None and was is not None:
        return bool(batches > was)
    safe, was_safe = now["heads"]["safe"], before["heads"]["safe"]
    return safe is not None and was_safe is not None and safe > was_safe

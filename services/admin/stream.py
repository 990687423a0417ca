"""GET /v1/events: the devnet's events (services/admin/events.py), as Server-Sent Events to
a client that accepts `text/event-stream`, else as JSON: the events after `Last-Event-ID` (a
page of at most `limit`), for pollers and for clients that must not hang on a stream.

A new stream begins with a `snapshot` (every app's newest sample); one that sends
`Last-Event-ID` gets every event after it, or a `reset` (with the snapshot) when those are gone
from the ring. Then live events, and a comment every 15 s so that proxies and dead peers show.

The read token is enough, given as a header only: a token in a URL ends up in logs and
histories, so the dashboard reads the stream with fetch() rather than EventSource. At most
MAX_STREAMS streams at once (a 503 problem beyond); each ends after MAX_SECONDS (the client
resumes with its Last-Event-ID), or when its client has not taken a message in SEND_SECONDS: a
token holder cannot pin the service down, nor hold a slot for ever by not reading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from rollup.errors import Action, RollupError
from services.admin.auth import require_reader
from services.admin.errors import NodeUnavailable
from services.admin.events import Event, EventLog
from services.admin.models import EventPage, EventView
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query

__all__ = ["MAX_SECONDS", "MAX_STREAMS", "EventStream", "StreamSlots", "router"]

logger = logging.getLogger(__name__)

MAX_STREAMS = 16
MAX_SECONDS = 600.0
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
SEND_SECONDS = 30.0
MAX_PAGE = 1000

router = APIRouter(
    prefix="/v1",
    tags=["events"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
)


@dataclass
class StreamSlots:
    """How many streams may be open at once, and how many are."""

    limit: int = MAX_STREAMS
    open: int = 0
    max_seconds: float = MAX_SECONDS
    keepalive_seconds: float = KEEPALIVE_SECONDS

    def take(self) -> None:
        if self.open >= self.limit:
            raise TooManyStreams(f"{self.limit} event streams are open; retry later")
        self.open += 1

    def give_back(self) -> None:
        self.open -= 1


class TooManyStreams(NodeUnavailable):
    """All stream slots are taken (503, as for a node that does not answer: retry)."""


SSE_DOC = (
    "With `Accept: text/event-stream`: the stream. Each event has an `id:`, an `event:` "
    "(snapshot, reset, app, block, batch, verifier, restart, state, error, removed, action) "
    "and one "
    "`data:` line of JSON."
)


@router.get(
    "/events",
    summary="Events: blocks, batches, verifier, restarts, state, errors (SSE or JSON)",
    description=SSE_DOC,
    response_model=EventPage,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def events(
    request: Request,
    last_event_id: Annotated[
        str | None,
        Header(max_length=32, description="resume after this id (an unknown one: a reset)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="JSON: events at most")] = 500,
) -> EventPage | Response:
    log: EventLog = request.app.state.events
    resume_from = _parse_id(last_event_id)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return _page(log, resume_from, limit)
    slots: StreamSlots = request.app.state.stream_slots
    slots.take()
    return EventStream(_stream(request, log, slots, resume_from), slots.give_back)


def _page(log: EventLog, resume_from: int | None, limit: int) -> EventPage:
    """The oldest `limit` events after `resume_from` (of the whole ring without it), all of
    the ring with `reset` when some are gone; `last_id`: the Last-Event-ID to send next."""
    found = log.all() if resume_from is None else log.after(resume_from)
    reset = found is None
    page = (log.all() if found is None else found)[:limit]
    if page:
        last_id = page[-1].id
    else:
        last_id = log.last_id if reset or resume_from is None else resume_from
    events = [EventView(id=e.id, type=e.type, data=dict(e.data)) for e in page]
    return EventPage(events=events, last_id=last_id, reset=reset)


class EventStream(StreamingResponse):
    """text/event-stream that calls `release` when it ends, however it ends (even when the
    client is gone before its first byte, and the body never started)."""

    def __init__(self, body: AsyncIterator[str], release: Callable[[], None]) -> None:
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, _timed(send))
        except StalledClient:
            logger.warning("admin events: a client stopped reading; its stream is closed")
        except ClientDisconnect:
            pass  # the client went: nothing to answer
        finally:
            self._release()


class StalledClient(RollupError):
    """A client did not take a message in SEND_SECONDS (not an OSError: Starlette would take
    that for a disconnect). It may connect again and resume from its last event id."""

    action = Action.RETRY


def _timed(send: Send) -> Send:
    """`send` that gives up after SEND_SECONDS: a client that stops reading (its TCP window
    full) must not keep its slot for ever."""

    async def timed(message: Message) -> None:
        try:
            async with asyncio.timeout(SEND_SECONDS):
                await send(message)
        except TimeoutError:
            raise StalledClient("the client took no message in time") from None

    return timed


def _parse_id(value: str | None) -> int | None:
    """The id to resume after; -1 (never given: a reset) when it is not one of ours."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else -1


async def _stream(
    request: Request, log: EventLog, slots: StreamSlots, resume_from: int | None
) -> AsyncIterator[str]:
    """The stream's text, until MAX_SECONDS or the client goes."""
    yield f"retry: {RETRY_MS}\n\n"
    cursor, first = _start(log, resume_from)
    for event in first:
        yield event.encode()
    clock = asyncio.get_running_loop().time
    deadline = clock() + slots.max_seconds
    while clock() < deadline and not await request.is_disconnected():
        await log.wait(min(slots.keepalive_seconds, max(deadline - clock(), 0)))
        missed = log.after(cursor)
        if missed is None:  # this reader fell behind the whole ring
            cursor, missed = log.last_id, [_reset(log)]
        elif not missed:
            yield ": keep-alive\n\n"
        for event in missed:
            yield event.encode()
            cursor = max(cursor, event.id)


def _start(log: EventLog, resume_from: int | None) -> tuple[int, list[Event]]:
    """Where a stream begins: after `resume_from` if the ring still has it, else a snapshot
    (a `reset` when the client asked to resume)."""
    if resume_from is not None:
        missed = log.after(resume_from)
        if missed is not None:
            return resume_from, missed
        return log.last_id, [_reset(log)]
    return log.last_id, [Event(log.last_id, "snapshot", log.snapshot())]


def _reset(log: EventLog) -> Event:
    """The events the client asked for are gone: start again from this snapshot."""
    return Event(log.last_id, "reset", log.snapshot())

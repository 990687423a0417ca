"""GET /v1/apps/{name}/logs: the newest lines of an app's node log (the file devnet.json names:
a path never comes from the request), as JSON; with `follow=1` as Server-Sent Events, one
`data:` line per log line, those lines first and then each new one as it is written.

A follow stream is bounded as /v1/events' are (services/admin/stream.py: the same slots, the
same lifetime and the same cut-off of a client that stops reading): the client reconnects.
A log that shrinks (rotated or truncated) is followed from its start again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.admin.apps import AppName
from services.admin.auth import require_reader
from services.admin.explorer import NodesDep
from services.admin.fleet import log_tail
from services.admin.models import LogLines
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query
from services.admin.stream import RETRY_MS, EventStream, StreamSlots

__all__ = ["router"]

MAX_LINES = 1000
POLL_SECONDS = 0.25
MAX_READ = 256 * 1024  # bytes read at once from a log that grows fast

router = APIRouter(
    prefix="/v1/apps",
    tags=["logs"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
)


@router.get(
    "/{name}/logs",
    summary="The node's log: its newest lines, or followed (SSE) with follow=1",
    response_model=LogLines,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def get_logs(
    request: Request,
    nodes: NodesDep,
    name: AppName,
    lines: Annotated[int, Query(ge=1, le=MAX_LINES, description="the newest lines")] = 100,
    follow: Annotated[bool, Query(description="then stream new lines (text/event-stream)")] = False,
) -> LogLines | Response:
    path = Path(nodes.record(name)["log"])
    newest = (log_tail(path) or [])[-lines:]
    if not follow:
        return LogLines(name=name, lines=newest)
    slots: StreamSlots = request.app.state.stream_slots
    slots.take()
    return EventStream(_follow(request, path, newest, _size(path), slots), slots.give_back)


async def _follow(
    request: Request, path: Path, first: list[str], offset: int, slots: StreamSlots
) -> AsyncIterator[str]:
    """The stream's text: `first`, then the lines written after `offset`, until the stream's
    lifetime ends or the client goes."""
    yield f"retry: {RETRY_MS}\n\n"
    for line in first:
        yield _event(line)
    clock = asyncio.get_running_loop().time
    deadline, quiet_since = clock() + slots.max_seconds, clock()
    partial = b""
    while clock() < deadline and not await request.is_disconnected():
        await asyncio.sleep(POLL_SECONDS)
        if _size(path) < offset:  # rotated or truncated: from its start
            offset, partial = 0, b""
        chunk, offset = _read(path, offset)
        *complete, partial = (partial + chunk).split(b"\n")
        if len(partial) > MAX_READ:  # a line without end: show what there is
            complete, partial = [*complete, partial], b""
        for raw in complete:
            yield _event(raw.decode("utf-8", errors="replace").rstrip("\r"))
        if complete:
            quiet_since = clock()
        elif clock() - quiet_since >= slots.keepalive_seconds:
            quiet_since = clock()
            yield ": keep-alive\n\n"


def _event(line: str) -> str:
    return f"data: {line}\n\n"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read(path: Path, offset: int) -> tuple[bytes, int]:
    """What was written after `offset` (at most MAX_READ), and where it ends."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            chunk = log.read(MAX_READ)
    except OSError:
        return b"", offset
    return chunk, offset + len(chunk)

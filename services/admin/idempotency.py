"""Idempotency-Key on mutating POSTs (the IETF draft): a POST that carries a key and the admin
token runs once; a retry with the same key gets the first response again
(`Idempotent-Replayed: true`). The same key with another request is 422, a retry while the
first still runs is 409. Keys are per token, kept in memory (the newest `MAX_KEYS`, for
`TTL_S`); a request that failed is not kept, so its retry runs again.

`IdempotentRoute` is the route class of the mutating endpoints; `IdempotencyKey` documents
the header (and bounds it) in their OpenAPI.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header, Request, Response
from fastapi.routing import APIRoute

from services.admin.auth import bearer_token
from services.admin.errors import Conflict, Unprocessable
from services.admin.tokens import Role, Tokens

__all__ = ["IdempotencyKey", "IdempotencyStore", "IdempotentRoute", "MAX_KEY_CHARS"]

MAX_KEYS = 10_000
TTL_S = 24 * 3600.0
MAX_KEY_CHARS = 255

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="run this POST once: a retry with the same key gets the first response",
    ),
]


@dataclass(slots=True)
class _Entry:
    fingerprint: bytes
    created: float
    response: Response | None = None  # None while the first request runs


class IdempotencyStore:
    """The bounded record of (token, key) -> the request's fingerprint and first response."""

    def __init__(self, max_keys: int = MAX_KEYS, ttl_s: float = TTL_S) -> None:
        self.max_keys, self.ttl_s = max_keys, ttl_s
        self._entries: OrderedDict[tuple[bytes, str], _Entry] = OrderedDict()

    def begin(self, slot: tuple[bytes, str], fingerprint: bytes) -> Response | None:
        """The response to replay, or None when this request is the first (it runs)."""
        self._expire()
        entry = self._entries.get(slot)
        if entry is None:
            self._entries[slot] = _Entry(fingerprint, time.monotonic())
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)
            return None
        if entry.fingerprint != fingerprint:
            raise Unprocessable("this Idempotency-Key was used for another request")
        if entry.response is None:
            raise Conflict("the first request with this Idempotency-Key is still running")
        return entry.response

    def finish(self, slot: tuple[bytes, str], response: Response) -> None:
        entry = self._entries.get(slot)
        if entry is not None:
            entry.response = response

    def abandon(self, slot: tuple[bytes, str]) -> None:
        self._entries.pop(slot, None)

    def _expire(self) -> None:
        oldest = time.monotonic() - self.ttl_s
        while self._entries and next(iter(self._entries.values())).created < oldest:
            self._entries.popitem(last=False)


class IdempotentRoute(APIRoute):
    """A route whose POSTs honour Idempotency-Key for the admin token; anything else (no key,
    an invalid one, no admin token) goes to the endpoint as it is, which answers 401/403/422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            slot = _slot(request)
            if slot is None:
                return await handler(request)
            store: IdempotencyStore = request.app.state.idempotency
            replay = store.begin(slot, await _fingerprint(request))
            if replay is not None:
                return _replayed(replay)
            try:
                response = await handler(request)
            except BaseException:
                store.abandon(slot)
                raise
            if response.status_code >= 400:
                store.abandon(slot)
            else:
                store.finish(slot, response)
            return response

        return route


def _slot(request: Request) -> tuple[bytes, str] | None:
    key = request.headers.get("idempotency-key")
    token = bearer_token(request)
    if request.method != "POST" or not key or len(key) > MAX_KEY_CHARS or token is None:
        return None
    tokens: Tokens = request.app.state.tokens
    if tokens.role_of(token) is not Role.ADMIN:
        return None
    return hashlib.sha256(token.encode()).digest(), key


async def _fingerprint(request: Request) -> bytes:
    body = await request.body()
    what = f"{request.method} {request.url.path}?{request.url.query}\n".encode()
    return hashlib.sha256(what + body).digest()


def _replayed(first: Response) -> Response:
    headers = {k: v for k, v in first.headers.items() if k.lower() != "content-length"}
    replay = Response(first.body, first.status_code, headers=headers)
    replay.headers["Idempotent-Replayed"] = "true"
    return replay

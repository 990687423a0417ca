"""Cursor pagination of list endpoints: `?limit=N&cursor=C`; each page says `next_cursor`
(null on the last). A cursor is opaque to clients: the sort key of the last item served,
base64url-encoded without padding, so pages stay right when items come and go between two
requests. Any string of that alphabet and shape is a position (the schema says which), so a
cursor is never "unknown": the next page starts after whatever key it names."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query

__all__ = ["Cursor", "Limit", "decode_cursor", "encode_cursor", "paginate"]

T = TypeVar("T")
MAX_LIMIT = 100
MAX_CURSOR_CHARS = 200
# base64url without padding: groups of 4, then 2 or 3 more (a length of 4n+1 is no encoding)
CURSOR_PATTERN = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[
    str | None,
    Query(
        min_length=2,
        max_length=MAX_CURSOR_CHARS,
        pattern=CURSOR_PATTERN,
        description="the previous page's next_cursor",
    ),
]


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> bytes:
    """The sort key a cursor names, as UTF-8 bytes (the schema's pattern holds)."""
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def paginate(
    items: Sequence[T], key: Callable[[T], str], cursor: str | None, limit: int
) -> tuple[list[T], str | None]:
    """The items after the cursor's key (in key order), at most `limit`, and the next cursor."""
    ordered = sorted(items, key=lambda item: key(item).encode())
    if cursor is not None:
        after = decode_cursor(cursor)
        ordered = [item for item in ordered if key(item).encode() > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, encode_cursor(key(page[-1])) if more and page else None

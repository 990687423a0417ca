"""The admin API's errors: each class is an HTTP status and a problem type (RFC 9457), and
says what the caller must do, as every RollupError does."""

from __future__ import annotations

from typing import ClassVar

from rollup.errors import Action, RollupError

__all__ = [
    "AdminError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NodeUnavailable",
    "NotAuthenticated",
    "NotFound",
    "Unprocessable",
]


class AdminError(RollupError):
    """An admin API request that cannot be answered as asked."""

    action = Action.FIX_INPUT
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad Request"


class BadRequest(AdminError):
    """A malformed request: a bad cursor, a bad Idempotency-Key."""


class NotAuthenticated(AdminError):
    status, title = 401, "Unauthorized"


class Forbidden(AdminError):
    status, title = 403, "Forbidden"


class NotFound(AdminError):
    status, title = 404, "Not Found"


class Conflict(AdminError):
    """The same Idempotency-Key while its first request still runs."""

    status, title = 409, "Conflict"


class Unprocessable(AdminError):
    """The same Idempotency-Key with another request."""

    status, title = 422, "Unprocessable Content"


class NodeUnavailable(AdminError):
    """The app's node does not answer, or refused what was asked of it."""

    action = Action.RETRY
    status, title = 503, "Service Unavailable"

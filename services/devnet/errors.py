"""The devnet's one error class."""

from __future__ import annotations

from rollup.errors import ProcessError

__all__ = ["DevnetError"]


class DevnetError(ProcessError):
    """The devnet cannot start, or is asked to do something its state does not allow."""

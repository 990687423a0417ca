"""One logging setup for every process: `configure_logging(level, fmt)`.

Every module logs through `logging.getLogger(__name__)`; each process's entry point (the node,
the verifier, the devnet supervisor, the `rollup` CLI) calls `configure_logging` once, before
it logs. Records go to stderr in one of two formats:

    text   2026-01-02 03:04:05,678 INFO services.node: following the L1 Portal ...
    json   {"time": "2026-01-02T03:04:05.678Z", "level": "INFO", "logger": "services.node",
            "message": "following the L1 Portal ...", "exception": "Traceback ..."}
JSON (one object a line, "exception" only when there is one) is for log shippers; choose it
with `--log-format json` (the node, the verifier) or ROLLUP_LOG_FORMAT=json (any process,
and the devnet's children inherit it). uvicorn's loggers are sent through the same handler.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Literal, TextIO, TypeVar, get_args

from rollup.errors import ConfigError

__all__ = ["LogFormat", "LogLevel", "configure_logging", "JsonFormatter", "TEXT_FORMAT"]

LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
_FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)
# httpx logs every request at INFO; alembic its every step (storage/ logs the upgrade itself)
_QUIET = ("httpx", "httpcore", "alembic")
_NAME = "rollup"  # our handler's name
_T = TypeVar("_T", bound=str)


class JsonFormatter(logging.Formatter):
    """One JSON object a record: time (UTC, ms), level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(
    level: LogLevel | None = None,
    fmt: LogFormat | None = None,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    force: bool = False,
) -> None:
    """Send every logger's records at `level` or above to `stream` (stderr) in `fmt`. A None
    is read from ROLLUP_LOG_LEVEL / ROLLUP_LOG_FORMAT, else info / text. Calling it again
    replaces the handler it installed. As `logging.basicConfig`, it leaves a root logger that
    someone else gave handlers alone (pytest's, when a test runs a command in process) unless
    `force`."""
    env = os.environ if environ is None else environ
    level = level or _choice(env, "ROLLUP_LOG_LEVEL", _LEVELS, "info")
    fmt = fmt or _choice(env, "ROLLUP_LOG_FORMAT", _FORMATS, "text")
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == _NAME]
    if len(ours) < len(root.handlers) and not force:
        return
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(_NAME)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def _choice(env: Mapping[str, str], name: str, allowed: tuple[_T, ...], default: _T) -> _T:
    value = (env.get(name) or default).lower()
    for choice in allowed:
        if value == choice:
            return choice
    raise ConfigError(f"{name}: expected one of {', '.join(allowed)}, got {env.get(name)!r}")

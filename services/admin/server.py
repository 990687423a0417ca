"""Serving the admin API: `serve(data_dir, host, port)` in the foreground with uvicorn, and
`python -m services.admin --data-dir DIR [--host H] [--port N]`, which `rollup admin` and the
devnet supervisor run. It creates the tokens at first start (services/admin/tokens.py) and
binds 127.0.0.1 unless told otherwise; a host it binds is also a Host header it accepts."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from rollup.errors import RollupError
from services.admin.app import create_app
from services.admin.fleet import DevnetFleet
from services.admin.hosts import LOOPBACK_HOSTS
from services.admin.tokens import ensure_tokens
from services.cliargs import OneLineParser
from services.logs import configure_logging

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "add_admin_options", "main", "serve", "url_of"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8580
GRACE_SECONDS = 3  # open event streams (/v1/events) end at shutdown rather than hold it up


def url_of(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def serve(data_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the API of the devnet in `data_dir` until SIGINT or SIGTERM."""
    data_dir = data_dir.resolve()
    tokens = ensure_tokens(data_dir)
    hosts = LOOPBACK_HOSTS if host in ("127.0.0.1", "localhost", "::1") else (*LOOPBACK_HOSTS, host)
    fleet = DevnetFleet(data_dir, tokens.admin)
    app = create_app(fleet, tokens, hosts, nodes=fleet)
    log.info("admin API on %s (token: %s)", url_of(host, port), tokens.admin_file)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    uvicorn.Server(config).run()


def add_admin_options(parser: argparse.ArgumentParser) -> None:
    """--host and --port (the data dir is the caller's option)."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m services.admin", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="the devnet's data dir")
    add_admin_options(parser)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        serve(args.data_dir, args.host, args.port)
    except (RollupError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

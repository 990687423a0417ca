"""The Host header must name this machine's loopback (or a name the operator allows), as the
node's JSON-RPC requires (services/rpc/server.py): a page that rebinds its own DNS name to
127.0.0.1 then cannot reach the API with its name. A bad Host is a 400 problem. There is no
CORS middleware: a browser page of another origin can neither read answers nor send the
Authorization header (that needs a preflight nobody answers)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.admin.problems import problem

__all__ = ["LOOPBACK_HOSTS", "HostCheck"]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class HostCheck:
    """ASGI middleware: 400 unless the Host header (port aside) is one of `hosts`."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str] = LOOPBACK_HOSTS) -> None:
        self.app, self.hosts = app, frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or "*" in self.hosts:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if _hostname(request.headers.get("host", "")) in self.hosts:
            await self.app(scope, receive, send)
            return
        response = problem(400, "invalid Host header", request)
        await response(scope, receive, send)


def _hostname(host: str) -> str:
    """`host` without its port: "[::1]:8000" -> "[::1]", "localhost:80" -> "localhost"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if ":" in host else host

"""Bearer authentication: every /v1 endpoint needs a token (`Authorization: Bearer T`); no
token or a wrong one is 401, the read-only token on a mutating endpoint is 403. The tokens
(services/admin/tokens.py) live in `app.state.tokens`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.admin.errors import Forbidden, NotAuthenticated
from services.admin.tokens import Role, Tokens

__all__ = ["bearer_token", "require_admin", "require_reader"]

_bearer = HTTPBearer(
    auto_error=False,
    description="the admin token (DATA/admin/admin.token) or the read-only one (read.token)",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(request: Request) -> str | None:
    """The bearer token of a request, if it carries one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def require_reader(request: Request, credentials: Credentials) -> Role:
    """The caller's role; 401 without a valid token."""
    tokens: Tokens = request.app.state.tokens
    role = tokens.role_of(credentials.credentials) if credentials is not None else None
    if role is None:
        raise NotAuthenticated("a valid bearer token is required (Authorization: Bearer TOKEN)")
    return role


def require_admin(role: Annotated[Role, Depends(require_reader)]) -> Role:
    """401 without a valid token, 403 with the read-only one."""
    if role is not Role.ADMIN:
        raise Forbidden("the read-only token cannot change anything; use the admin token")
    return role

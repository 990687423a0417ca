"""Every error of the admin API as RFC 9457 `application/problem+json`: its own errors
(services/admin/errors.py), Starlette's (404 for an unknown path, 405) and FastAPI's
validation errors (422, with the errors listed)."""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.admin.errors import AdminError
from services.admin.models import Problem

__all__ = ["PROBLEM_MEDIA_TYPE", "PROBLEM_RESPONSES", "install_problem_handlers", "problem"]

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
# the error responses every operation documents (app.py gives them the problem media type)
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "a problem (RFC 9457)"},
    "5XX": {"model": Problem, "description": "a problem (RFC 9457)"},
}


def problem(
    status: int,
    detail: str | None,
    request: Request,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(
        title=_title(status), status=status, detail=detail, instance=request.url.path, **extra
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _title(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _admin_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AdminError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, exc.message, request, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), request, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    return problem(422, "the request is not valid", request, errors=errors)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("admin API: internal error", exc_info=exc)
    return problem(500, f"internal error: {type(exc).__name__}", request)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AdminError, _admin_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)

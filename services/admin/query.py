"""Query strings as declared: each query parameter the operation declares, at most once. An
unknown one is a typo and one given twice is ambiguous (FastAPI would take the last): 400.
A dependency of every operation, after authentication."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from services.admin.errors import BadRequest

__all__ = ["plain_query"]


def plain_query(request: Request) -> None:
    route = request.scope.get("route")
    declared = _query_names(route.dependant) if isinstance(route, APIRoute) else set()
    for name in request.query_params:
        if name not in declared:
            raise BadRequest(f"unknown query parameter {name}")
        if len(request.query_params.getlist(name)) > 1:
            raise BadRequest(f"query parameter {name} given more than once")


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names

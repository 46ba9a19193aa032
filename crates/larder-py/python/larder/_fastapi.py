"""A view's return value as the response FastAPI would send for it.

``@larder.cache`` must hand the engine the final response (its bytes,
status and header fields), so it does what FastAPI's request handler does
with a view's return value (``fastapi.routing.get_request_handler``), once,
with the route's own settings: ``response_model`` validation and
serialisation, ``response_class``, ``status_code``, and the header fields
and status that dependencies and the view set on the injected ``Response``.
A ``Response`` the view returns is used as it is, as FastAPI does.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response

try:  # FastAPI's own pieces; older releases lack some of them.
    from fastapi.routing import APIRoute, serialize_response
except ImportError:  # pragma: no cover
    APIRoute = None  # type: ignore[assignment,misc]
    serialize_response = None  # type: ignore[assignment]
try:  # FastAPI >= 0.165 serves an included router's routes through a context of its own.
    from fastapi.routing import _get_scope_effective_route_context as effective_route
except ImportError:  # pragma: no cover
    effective_route = None  # type: ignore[assignment]
try:
    from fastapi.datastructures import DefaultPlaceholder
except ImportError:  # pragma: no cover
    DefaultPlaceholder = ()  # type: ignore[assignment,misc]
try:
    from fastapi.utils import is_body_allowed_for_status_code
except ImportError:  # pragma: no cover

    def is_body_allowed_for_status_code(status_code: Any) -> bool:
        return status_code is None or not (int(status_code) < 200 or int(status_code) in (204, 205, 304))


_SERIALIZE_TAKES = (
    frozenset(inspect.signature(serialize_response).parameters) if serialize_response else frozenset()
)


async def to_response(value: Any, request: Request, sub_response: Response) -> Response:
    """The response FastAPI would make of ``value``, returned by the
    view of ``request``'s route."""
    if isinstance(value, Response):
        return value
    route = request.scope.get("route")
    if APIRoute is None or not isinstance(route, APIRoute):
        response: Response = JSONResponse(jsonable_encoder(value), **_response_args(None, sub_response))
        response.headers.raw.extend(sub_response.headers.raw)
        return response
    default_class = isinstance(route.response_class, DefaultPlaceholder)
    response_class = route.response_class.value if default_class else route.response_class
    # FastAPI's fast path: JSON bytes straight from pydantic.
    dump_json = route.response_field is not None and default_class and "dump_json" in _SERIALIZE_TAKES
    options = {
        "field": route.response_field,
        "response_content": value,
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
        "is_coroutine": True,
        "dump_json": dump_json,
    }
    content = await serialize_response(**{k: v for k, v in options.items() if k in _SERIALIZE_TAKES})
    args = _response_args(route.status_code, sub_response)
    if dump_json:
        response = Response(content=content, media_type="application/json", **args)
    else:
        response = response_class(content, **args)
    if not is_body_allowed_for_status_code(response.status_code):
        response.body = b""
    response.headers.raw.extend(sub_response.headers.raw)
    return response


def _response_args(status_code: int | None, sub_response: Response) -> dict[str, Any]:
    """The route's status, unless the view or a dependency set one on the
    injected ``Response`` (FastAPI's ``_build_response_args``)."""
    args: dict[str, Any] = {}
    if status_code:
        args["status_code"] = status_code
    if sub_response.status_code:
        args["status_code"] = sub_response.status_code
    return args

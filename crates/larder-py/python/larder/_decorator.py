"""``@larder.cache``: the per-view decorator, under ``@app.get(...)``."""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from typing import Any, Callable, TypeVar

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from . import _fastapi
from ._answer import Answer, is_ready
from ._middleware import HANDLED
from ._native import Policy
from ._registry import Duration, get_cache

View = TypeVar("View", bound=Callable[..., Any])
log = logging.getLogger("larder")

# The parameters the decorator adds to what FastAPI sees, when the view
# does not declare them itself.
_REQUEST = "_larder_request"
_RESPONSE = "_larder_response"
# Set in the scope by a route's fast path (see `_FastPath`): what
# the engine decided for the request, for the view's wrapper to go on with.
_LOOKED_UP = "larder.looked_up"
_NOT_LOOKED_UP = object()


def cache(
    *,
    ttl: Duration | None = None,
    origin_headers: bool = False,
    namespace: str | None = None,
    vary: list[str] | str | None = None,
    tags: list[str] | str | None = None,
    statuses: list[int] | None = None,
    client_cache_control: str | None = None,
    stale_while_revalidate: Duration | None = None,
    stale_if_error: Duration | None = None,
    early_refresh: Duration | None = None,
    key_extra: Callable[[Request], str] | None = None,
    cache: str | None = None,
    honor_request_directives: bool = True,
    allow_authorization: bool = False,
    **renamed: Any,
) -> Callable[[View], View]:
    """Caches a FastAPI view's responses; put it under ``@app.get(...)``.

    The options are those of the Rust attribute ``#[larder::cache(..)]``
    and of ``larder::Policy``: ``ttl`` (``"250ms"``, ``"90s"``, ``"15m"``,
    ``"1h30m"`` in humantime's grammar, a number of seconds, or a
    timedelta; zero is an error) or ``origin_headers=True`` (freshness from
    the response's own ``Cache-Control``), ``namespace`` (purged together),
    ``vary`` (request headers that select entries), ``tags`` (for
    ``purge_tag``), ``statuses`` (default ``[200]``),
    ``client_cache_control`` (what clients get; default ``max-age`` = the
    remaining TTL), ``stale_while_revalidate``, ``stale_if_error``,
    ``early_refresh`` (zero is off), ``key_extra`` (a function of the
    ``Request`` whose ``str`` is part of the key), ``cache`` (the name of a
    cache set up with ``larder.init``), ``honor_request_directives`` (a
    client's ``Cache-Control: no-cache`` refetches; default on) and
    ``allow_authorization`` (share answers to requests with
    ``Authorization``; default off). The old spellings ``cache_control``,
    ``key`` and ``honor_request_cache_control``, and other caches' words
    for ``ttl`` (``expire``, ``timeout``), raise a ``TypeError`` that names
    larder's.

    The view declares nothing it does not use: the decorator adds the
    ``Request`` and the ``Response`` FastAPI injects to the signature FastAPI
    sees, and calls the view with exactly its own arguments. Its
    dependencies run on every request, hits included. A view with no
    dependencies whose parameters all come from the URL (path and query)
    has its hits answered before FastAPI's request handler runs (nothing
    there could change them, and it was most of a hit's CPU time). It may
    be ``async def`` or ``def``, return a dict, a pydantic model or
    anything FastAPI serialises (serialised once, as FastAPI would), or a
    ``Response`` (status and header fields kept). On a POST, PUT, PATCH or DELETE view it
    stores nothing: a successful answer invalidates the URI's cached GET in
    the namespace (no ``ttl`` needed there).
    """
    policy = Policy(
        ttl=ttl,
        origin_headers=origin_headers,
        namespace=namespace,
        vary=vary,
        tags=tags,
        statuses=statuses,
        client_cache_control=client_cache_control,
        stale_while_revalidate=stale_while_revalidate,
        stale_if_error=stale_if_error,
        early_refresh=early_refresh,
        key_extra=key_extra,
        cache=cache,
        honor_request_directives=honor_request_directives,
        allow_authorization=allow_authorization,
        **renamed,  # a TypeError that names the option's name
    )

    def decorate(view: View) -> View:
        return _wrap(view, policy)

    return decorate


def _wrap(view: Callable[..., Any], policy: Policy) -> Any:
    if inspect.isgeneratorfunction(view) or inspect.isasyncgenfunction(view):
        raise TypeError(f"larder.cache: {view.__qualname__} streams (it is a generator); it cannot be cached")
    is_async = inspect.iscoroutinefunction(view) or inspect.iscoroutinefunction(getattr(view, "__call__", None))
    signature = inspect.signature(view)
    params = list(signature.parameters.values())
    request_name = _declared(view, params, Request)
    response_name = _declared(view, params, Response)
    added = []
    if request_name is None:
        added.append(inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request))
    if response_name is None:
        added.append(inspect.Parameter(_RESPONSE, inspect.Parameter.KEYWORD_ONLY, annotation=Response))
    at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    params[at:at] = added

    async def run(args: tuple, kwargs: dict) -> Any:
        if is_async:
            return await view(*args, **kwargs)
        return await run_in_threadpool(view, *args, **kwargs)

    fast = _FastPath(policy)

    @functools.wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.pop(_REQUEST) if request_name is None else kwargs[request_name]
        sub_response = kwargs.pop(_RESPONSE) if response_name is None else kwargs[response_name]
        fast.install(request.scope, wrapper)
        return await _respond(policy, view, run, args, kwargs, request, sub_response)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper


def _declared(view: Callable[..., Any], params: list[inspect.Parameter], kind: type) -> str | None:
    """The name of the view's own parameter of type ``kind``, if any."""
    try:
        hints = typing.get_type_hints(view)
    except Exception:  # unresolvable annotations: use them as written
        hints = {}
    for p in params:
        annotation = hints.get(p.name, p.annotation)
        if inspect.isclass(annotation) and issubclass(annotation, kind):
            return p.name
    return None


async def _respond(
    policy: Policy,
    view: Callable[..., Any],
    run: Callable[[tuple, dict], Any],
    args: tuple,
    kwargs: dict,
    request: Request,
    sub_response: Response,
) -> Any:
    scope = request.scope
    if HANDLED in scope:
        # larder.ASGIMiddleware already handles this request's caching.
        return await run(args, kwargs)
    out = scope.pop(_LOOKED_UP, _NOT_LOOKED_UP)
    if out is _NOT_LOOKED_UP:
        chosen = get_cache(policy.cache)
        if chosen is None:
            _no_cache(view, policy)
            return await run(args, kwargs)
        out = chosen.lookup(policy, scope)
        if not is_ready(out):
            out = await out
    if out is None:
        return await run(args, kwargs)
    if type(out) is tuple:
        return _hit(out, sub_response)
    fill = out
    try:
        stale = fill.stale
        if stale is not None:
            # Answer now; refresh once the response is sent (inside the
            # request, so the view's dependencies are still open).
            answer = _hit(stale, sub_response)
            answer.background = BackgroundTask(_refresh, fill, run, args, kwargs, request, sub_response)
            fill = None
            return answer
        try:
            value = await run(args, kwargs)
        except Exception as e:
            # An answer the view raised (a 4xx) is its answer; a failure
            # may be stood in for by a stale entry (stale-if-error).
            if isinstance(e, HTTPException) and e.status_code < 500:
                raise
            stale = fill.stale_on_error()
            if stale is None:
                raise
            return Answer(*stale)
        response = await _fastapi.to_response(value, request, sub_response)
        return await _complete(fill, response)
    finally:
        if fill is not None:
            # Releases the requests waiting on this one at once, whatever
            # keeps the exception (and this frame) alive.
            fill.abandon()


class _FastPath:
    """Hits of a view that nothing but its URL feeds, answered before
    FastAPI's request handler.

    FastAPI's handler (a ``Request``, the dependency solver, exit stacks,
    the ``Response`` object) costs most of a hit. When the view's route
    has no dependencies (its own, its router's or the app's) and takes no
    header, cookie or body parameters, nothing on a hit needs it: the
    dependencies that must run on hits do not exist, and the path and query
    parameters FastAPI validates are decided by the URL, which is the key
    of any entry (an entry exists only for a URL the view answered). So on
    the route's first request, the wrapper puts this in front of the
    route's ASGI app: it asks the engine, sends a hit's bytes itself, and
    hands anything else (a miss, a refresh, a pass) to FastAPI's handler
    and the wrapper, through the scope, without asking twice.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        # The routes (and router inclusions) seen: ids, for the slow path
        # to skip at once.
        self.seen: set[int] = set()

    def install(self, scope: Any, wrapper: Callable[..., Any]) -> None:
        """Puts the fast path in front of what serves this request, once
        (the route, or FastAPI's context for the router inclusion the
        request came through), if nothing but the URL feeds the view."""
        route = scope.get("route")
        if _fastapi.APIRoute is None or not isinstance(route, _fastapi.APIRoute):
            return
        target: Any = route
        context = _fastapi.effective_route(scope) if _fastapi.effective_route else None
        if context is not None and getattr(context, "original_route", None) is route:
            target = context
        if id(target) in self.seen:
            return
        self.seen.add(id(target))
        app = getattr(target, "app", None)
        if app is None or getattr(target, "endpoint", None) is not wrapper or not _only_the_url_feeds(target):
            return
        if not getattr(app, "_larder_fast_path", False):
            target.app = self.wrap(app)

    def wrap(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        policy = self.policy

        async def app(scope: Any, receive: Any, send: Any) -> None:
            chosen = None if HANDLED in scope else get_cache(policy.cache)
            if chosen is None:
                # The wrapper decides (uncached, and says why once).
                await handler(scope, receive, send)
                return
            out = chosen.lookup(policy, scope)
            if type(out) is not tuple and not is_ready(out):
                out = await out
            if type(out) is tuple:
                await send({"type": "http.response.start", "status": out[0], "headers": out[1]})
                await send({"type": "http.response.body", "body": out[2]})
                return
            scope[_LOOKED_UP] = out
            try:
                await handler(scope, receive, send)
            finally:
                # FastAPI answered before the view ran (a 422): release
                # the requests waiting on this one now.
                if scope.pop(_LOOKED_UP, None) is not None:
                    out.abandon()

        app._larder_fast_path = True  # type: ignore[attr-defined]
        return app


def _only_the_url_feeds(route: Any) -> bool:
    """Whether the route's view takes nothing but path and query
    parameters (and the ``Request``, ``Response`` and ``BackgroundTasks``
    FastAPI injects), with no dependencies."""
    dependant = getattr(route, "dependant", None)
    if dependant is None or getattr(route, "dependencies", None):
        return False
    for name in ("dependencies", "header_params", "cookie_params", "body_params"):
        if getattr(dependant, name, True):
            return False
    return getattr(route, "body_field", None) is None


def _hit(out: tuple, sub_response: Response) -> Answer:
    answer = Answer(*out)
    # Header fields the dependencies set for this request (a session
    # cookie, say), as FastAPI adds them to every response it serialises.
    if sub_response.raw_headers:
        answer.raw_headers = [*answer.raw_headers, *sub_response.raw_headers]
    return answer


async def _complete(fill: Any, response: Response) -> Response:
    body = getattr(response, "body", None)
    streams = not isinstance(body, (bytes, bytearray, memoryview))
    out = fill.complete(response.status_code, response.raw_headers, None if streams else bytes(body))
    if not is_ready(out):
        out = await out
    status, headers, answer_body = out
    if answer_body is None:
        # The engine passed the streamed body on: the view's response
        # sends it, with the engine's status and header fields.
        response.status_code = status
        response.raw_headers = headers
        return response
    answer = Answer(status, headers, answer_body)
    answer.background = response.background
    return answer


async def _refresh(
    fill: Any,
    run: Callable[[tuple, dict], Any],
    args: tuple,
    kwargs: dict,
    request: Request,
    sub_response: Response,
) -> None:
    try:
        value = await run(args, kwargs)
        response = await _fastapi.to_response(value, request, sub_response)
        await _complete(fill, response)
    except Exception:  # the stored entry stays until it expires
        log.warning("larder: background refresh of %s failed", request.url.path, exc_info=True)
    finally:
        fill.abandon()


_warned: set[int] = set()


def _no_cache(view: Callable[..., Any], policy: Policy) -> None:
    if id(view) in _warned:
        return
    _warned.add(id(view))
    name = f"a cache named {policy.cache!r}" if policy.cache else "a cache"
    log.error(
        "larder: @larder.cache view %s found no %s, so it runs uncached: call larder.init(...) at startup",
        getattr(view, "__qualname__", view),
        name,
    )

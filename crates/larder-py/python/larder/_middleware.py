"""``larder.ASGIMiddleware``: caching in front of a whole ASGI app.

A hit is answered from the engine's bytes straight to the server's
``send``: the app (routing, dependencies, serialisation) never runs. A miss
runs the app with the request the engine prepared and hands the engine the
response the app sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Mapping, MutableMapping

from ._answer import is_ready
from ._native import Cache, Fill, Policy, Routes
from ._registry import get_cache

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("larder")

# Set in the scope of a request whose caching the middleware handles, so
# that a @larder.cache view below does not cache it a second time.
HANDLED = "larder.handled"


class ASGIMiddleware:
    """Caches the responses of ``app`` on the routes given, in ``cache``
    (default: the one set up with ``larder.init``, looked up per request).

    ``routes`` maps route templates, written as FastAPI routes are
    (``"/items/{item_id}"``, ``"/static/{rest:path}"``), to
    ``larder.Policy`` values; the first template that matches the path
    the framework routes on wins, and other paths pass through untouched.
    ``{"/{path:path}": larder.Policy(origin_headers=True)}`` makes the
    whole app a shared cache by the book. GET and HEAD are answered from
    the cache; a successful POST, PUT, PATCH or DELETE on a route
    invalidates the URI's cached GET. A hit never enters the app, so its
    dependencies (authentication included) do not run: give such routes the
    decorator instead, or vary or key them on what the dependency reads.

    With FastAPI: ``app.add_middleware(larder.ASGIMiddleware, routes=...)``.
    """

    def __init__(
        self,
        app: ASGIApp,
        cache: Cache | None = None,
        routes: Mapping[str, Policy] | Routes | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        if not isinstance(routes, Routes):
            routes = dict(routes or {})
            for template, policy in routes.items():
                if isinstance(policy, Policy) and policy.cache is not None:
                    raise ValueError(
                        f"route {template!r}: the middleware uses one cache for every route; "
                        "pass it as ASGIMiddleware(app, cache=...) instead of Policy(cache=...)"
                    )
            routes = Routes(routes)
        self.routes = routes
        self._warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cache = self.cache if self.cache is not None else get_cache()
        if cache is None:
            self._no_cache()
            await self.app(scope, receive, send)
            return
        out = cache.lookup_routed(self.routes, scope)
        if type(out) is tuple:  # a hit, ready at once (the memory store)
            await send({"type": "http.response.start", "status": out[0], "headers": out[1]})
            await send({"type": "http.response.body", "body": out[2]})
            return
        if not is_ready(out):
            out = await out
        if out is None:
            await self.app(scope, receive, send)
        elif type(out) is tuple:
            await send({"type": "http.response.start", "status": out[0], "headers": out[1]})
            await send({"type": "http.response.body", "body": out[2]})
        else:
            await _forward(self.app, cache, out, scope, receive, send)

    def _no_cache(self) -> None:
        if not self._warned:
            self._warned = True
            log.error("larder: ASGIMiddleware found no cache, so nothing is cached: pass cache= or call larder.init(...)")


async def _forward(app: ASGIApp, cache: Cache, fill: Fill, scope: Scope, receive: Receive, send: Send) -> None:
    try:
        stale = fill.stale
        if stale is not None:
            # The client gets the stale (or early) answer now; the app
            # refreshes the entry after it, as the request's own work.
            await _send_answer(send, stale)
            child = fill.prepare(scope)
            child[HANDLED] = True
            capture = _Capture(fill, None, cache.max_body_bytes)
            try:
                await app(child, _no_body(), capture.send)
                await capture.finish()
            except Exception:
                log.warning("larder: background refresh of %s failed", scope.get("path"), exc_info=True)
            return
        child = fill.prepare(scope) if fill.stores else scope
        child[HANDLED] = True
        capture = _Capture(fill, send, cache.max_body_bytes)
        try:
            await app(child, receive, capture.send)
        except Exception:
            if capture.started:
                raise
            stale = fill.stale_on_error()
            if stale is None:
                raise
            await _send_answer(send, stale)
            return
        await capture.finish()
    finally:
        fill.abandon()


class _Capture:
    """The ``send`` the app answers through on a miss: the response is
    held (up to the cache's body limit) until the engine has it, then the
    client gets what the engine returns. Past the limit, and for responses
    the engine does not store, the engine decides the header fields and
    the body streams through."""

    def __init__(self, fill: Fill, send: Send | None, max_body: int) -> None:
        self.fill = fill
        self.client = send
        self.limit = max_body if fill.stores else -1
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.started = False  # the client has the response head
        self.streaming = False  # body messages go straight to the client
        self.done = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.streaming:
            await self._out(message)
        elif kind == "http.response.start":
            self.start = message
            if self.limit < 0 or message.get("trailers"):
                await self._stream()
        elif kind == "http.response.body" and self.start is not None:
            body = message.get("body", b"")
            self.chunks.append(body)
            self.size += len(body)
            if self.size > self.limit:
                await self._stream(ends=not message.get("more_body", False))
            elif not message.get("more_body", False):
                await self._complete(b"".join(self.chunks))
        elif self.start is not None:
            await self._stream()
            await self._out(message)

    async def finish(self) -> None:
        """The app returned: anything held goes out."""
        if self.start is not None and not self.done and not self.streaming:
            await self._stream(ends=True)

    async def _complete(self, body: bytes) -> None:
        assert self.start is not None
        out = self.fill.complete(self.start["status"], self.start.get("headers", []), body)
        if not is_ready(out):
            out = await out
        self.done = True
        await self._answer(out)

    async def _stream(self, ends: bool = False) -> None:
        """The engine decides the head; the app's body follows as sent."""
        assert self.start is not None
        out = self.fill.complete(self.start["status"], self.start.get("headers", []), None)
        if not is_ready(out):
            out = await out
        status, headers, body = out
        if body is not None:
            # The engine answered itself (a 304 or 412 to the client's
            # conditions, a HEAD): the app's body is not sent.
            self.done = True
            await self._answer(out)
            self.streaming = True
            self.client = None
            return
        self.streaming = True
        start = dict(self.start, status=status, headers=headers)
        await self._out(start)
        held = b"".join(self.chunks)
        self.chunks = []
        if held or ends:
            await self._out({"type": "http.response.body", "body": held, "more_body": not ends})

    async def _answer(self, out: tuple) -> None:
        status, headers, body = out
        await self._out({"type": "http.response.start", "status": status, "headers": headers})
        await self._out({"type": "http.response.body", "body": body})

    async def _out(self, message: Message) -> None:
        if self.client is None:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self.client(message)


async def _send_answer(send: Send, out: tuple) -> None:
    status, headers, body = out
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _no_body() -> Receive:
    """``receive`` for a background refresh: a GET with no body, then a
    client that never goes away (the refresh has no client to lose)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive

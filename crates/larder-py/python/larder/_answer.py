"""Responses the engine made, and awaiting what the engine returns."""

from __future__ import annotations

from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response

from ._native import Fill


class Answer(Response):
    """A response exactly as the engine made it: status, header fields
    (``Cache-Status``, ``Age``, ``ETag``, ...) and body, sent as is."""

    def __init__(self, status: int, headers: list, body: bytes) -> None:
        self.status_code = status
        self.raw_headers = headers
        self.body = body
        self.background: BackgroundTask | None = None


def is_ready(out: Any) -> bool:
    """Whether an engine call's result is final (not an awaitable)."""
    return out is None or type(out) is tuple or type(out) is Fill or type(out) is int


async def resolved(out: Any) -> Any:
    """The final result of an engine call."""
    return out if is_ready(out) else await out

"""larder for FastAPI: the larder HTTP cache engine (Rust) in your app.

The two-line setup, as with fastapi-cache::

    import larder

    larder.init()  # the memory store; or larder.init(store=larder.RedisStore(url))

    @app.get("/items")
    @larder.cache(ttl="15m", namespace="items")
    async def list_items():
        return await slow_query()

Or cache whole routes without entering the framework on a hit::

    app = larder.ASGIMiddleware(app, routes={"/items/{item_id}": larder.Policy(ttl="1h")})

Every caching rule is the engine's (RFC 9111 shared-cache semantics,
``Cache-Status``, ``Age``, ETags and 304s, stampede protection across
workers with Redis leases, stale-while-revalidate, purges); the entries and
keys in Redis are those of the Rust crates and of the ``larder`` proxy.
"""

from __future__ import annotations

from ._native import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MEMORY_BYTES,
    Cache,
    MemoryStore,
    Policy,
    PurgeError,
    RedisStore,
    Routes,
)
from ._decorator import cache
from ._middleware import ASGIMiddleware
from ._registry import get_cache, init, purge_namespace, purge_tag, purge_url, stats

__version__ = "0.1.0"

__all__ = [
    "ASGIMiddleware",
    "Cache",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MEMORY_BYTES",
    "MemoryStore",
    "Policy",
    "PurgeError",
    "RedisStore",
    "Routes",
    "cache",
    "get_cache",
    "init",
    "purge_namespace",
    "purge_tag",
    "purge_url",
    "stats",
]

"""The process-wide caches (``larder.init``) and purges from code."""

from __future__ import annotations

import datetime
from typing import Union

from ._native import Cache, MemoryStore, RedisStore

Duration = Union[str, int, float, datetime.timedelta]

# Name -> cache, in the order they were set up: the first is the default.
_caches: dict[str, Cache] = {}
# The first of them (looked up on every request).
_default: Cache | None = None


def init(
    store: MemoryStore | RedisStore | None = None,
    *,
    name: str = "larder",
    prefix: str = "larder",
    max_body_bytes: int | None = None,
    legacy_status_header: str | None = None,
    allowed_hosts: list[str] | None = None,
    cache_status_detail: bool = False,
    coalesce_wait: Duration | None = None,
    lease_ttl: Duration | None = None,
    hit_for_miss: Duration | None = None,
    namespace_refresh: Duration | None = None,
    server_date: bool = True,
) -> Cache:
    """Sets up a cache for ``@larder.cache`` views (the counterpart of
    ``FastAPICache.init``), at import or in the app's lifespan.

    ``store`` is a ``larder.MemoryStore`` (the default: one per process, so
    one per uvicorn worker) or a ``larder.RedisStore(url)``, shared by every
    worker and host. The first cache set up is the default; each is also
    found by its ``name`` (``@larder.cache(cache="sessions")``). Calling
    ``init`` again with a name replaces that cache. The other options are
    those of the Rust ``CacheBuilder``: ``prefix`` starts every store key
    (give each application sharing a Redis its own, or the same one to share
    entries), ``allowed_hosts`` keeps forged ``Host`` values out of the
    cache, ``legacy_status_header="x-cache"`` adds ``x-cache: HIT|MISS``.

    ``server_date``: the ASGI server stamps ``Date`` on every response
    itself, as uvicorn and hypercorn do by default, so the cache's
    responses leave the field to it (one ``Date``, not two; a hit's time in
    the cache is in its ``Age``). ``False`` hands the server the engine's
    ``Date`` (a hit's is the stored response's, as from the Rust crates and
    the proxy), for a server that adds one only when the app sent none or
    runs without its own (``uvicorn --no-date-header``).
    """
    options = {
        "name": name,
        "prefix": prefix,
        "legacy_status_header": legacy_status_header,
        "allowed_hosts": allowed_hosts,
        "cache_status_detail": cache_status_detail,
        "coalesce_wait": coalesce_wait,
        "lease_ttl": lease_ttl,
        "hit_for_miss": hit_for_miss,
        "namespace_refresh": namespace_refresh,
        "server_date": server_date,
    }
    if max_body_bytes is not None:
        options["max_body_bytes"] = max_body_bytes
    built = Cache(store, **options)
    global _default
    _caches[name] = built
    _default = next(iter(_caches.values()))
    return built


def get_cache(name: str | None = None) -> Cache | None:
    """The cache set up with ``init`` under ``name``, or the default one."""
    if name is None:
        return _default
    return _caches.get(name)


def _resolve(cache: Cache | str | None) -> Cache:
    if isinstance(cache, Cache):
        return cache
    found = get_cache(cache)
    if found is None:
        wanted = "a cache" if cache is None else f"a cache named {cache!r}"
        raise RuntimeError(f"larder: no {wanted}; call larder.init(...) first")
    return found


async def purge_url(url: str, *, namespace: str = "default", cache: Cache | str | None = None) -> None:
    """Removes the stored responses for one URL in ``namespace``: every
    variant, for GET and HEAD. ``url`` is absolute, as the cache keys it:
    the request's ``Host`` and raw path and query, with ``http://`` for
    HTTP/1.1 requests (behind a TLS terminator too), e.g.
    ``http://api.example.com/items?page=2``."""
    out = _resolve(cache).purge_url(url, namespace)
    if out is not None:
        await out


async def purge_tag(tag: str, *, cache: Cache | str | None = None) -> int:
    """Removes every stored response tagged ``tag`` (``tags=[...]``), in
    every namespace and on every worker sharing the store. Returns how many
    URIs were purged."""
    out = _resolve(cache).purge_tag(tag)
    return out if isinstance(out, int) else await out


async def purge_namespace(namespace: str, *, cache: Cache | str | None = None) -> int:
    """Removes every stored response of ``namespace`` at once (O(1)); other
    workers notice within ``namespace_refresh`` (1 s). Returns the
    namespace's new generation."""
    out = _resolve(cache).purge_namespace(namespace)
    return out if isinstance(out, int) else await out


def stats(cache: Cache | str | None = None) -> dict:
    """What the cache did so far: hits, misses, stores, store errors, ..."""
    return _resolve(cache).stats()

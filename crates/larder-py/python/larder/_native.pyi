"""Types of the Rust extension (crates/larder-py/src)."""

import datetime
from typing import Any, Awaitable, Callable, Mapping, MutableMapping, Sequence, Union

Duration = Union[str, int, float, datetime.timedelta]
Headers = list[tuple[bytes, bytes]]
ResponseTuple = tuple[int, Headers, Union[bytes, None]]

DEFAULT_MAX_BODY_BYTES: int
DEFAULT_MEMORY_BYTES: int

class PurgeError(Exception): ...

class MemoryStore:
    def __init__(self, capacity_bytes: int = ...) -> None: ...

class RedisStore:
    def __init__(
        self,
        url: str,
        *,
        command_timeout: Duration | None = None,
        connect_timeout: Duration | None = None,
        max_value_bytes: int | None = None,
    ) -> None: ...
    @property
    def circuit_open(self) -> bool: ...

class Policy:
    def __init__(
        self,
        *,
        ttl: Duration | None = None,
        origin_headers: bool = False,
        namespace: str | None = None,
        vary: Sequence[str] | str | None = None,
        tags: Sequence[str] | str | None = None,
        statuses: Sequence[int] | None = None,
        client_cache_control: str | None = None,
        stale_while_revalidate: Duration | None = None,
        stale_if_error: Duration | None = None,
        early_refresh: Duration | None = None,
        key_extra: Callable[[Any], str] | None = None,
        cache: str | None = None,
        honor_request_directives: bool = True,
        allow_authorization: bool = False,
    ) -> None: ...
    @property
    def namespace(self) -> str: ...
    @property
    def cache(self) -> str | None: ...
    @property
    def reads(self) -> bool: ...

class Routes:
    def __init__(self, routes: Mapping[str, Policy] | Sequence[tuple[str, Policy]]) -> None: ...
    def match(self, path: str) -> Policy | None: ...
    def __len__(self) -> int: ...

class Fill:
    @property
    def stores(self) -> bool: ...
    @property
    def stale(self) -> ResponseTuple | None: ...
    def prepare(self, scope: MutableMapping[str, Any]) -> MutableMapping[str, Any]: ...
    def complete(
        self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes | None
    ) -> ResponseTuple | Awaitable[ResponseTuple]: ...
    def stale_on_error(self) -> ResponseTuple | None: ...
    def abandon(self) -> None: ...

LookupResult = Union[None, ResponseTuple, Fill]

class Cache:
    def __init__(
        self,
        store: MemoryStore | RedisStore | None = None,
        *,
        name: str = "larder",
        prefix: str = "larder",
        max_body_bytes: int = ...,
        legacy_status_header: str | None = None,
        allowed_hosts: Sequence[str] | None = None,
        cache_status_detail: bool = False,
        coalesce_wait: Duration | None = None,
        lease_ttl: Duration | None = None,
        hit_for_miss: Duration | None = None,
        namespace_refresh: Duration | None = None,
        server_date: bool = True,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def max_body_bytes(self) -> int: ...
    @property
    def server_date(self) -> bool: ...
    def lookup(self, policy: Policy, scope: MutableMapping[str, Any]) -> LookupResult | Awaitable[LookupResult]: ...
    def lookup_routed(
        self, routes: Routes, scope: MutableMapping[str, Any]
    ) -> LookupResult | Awaitable[LookupResult]: ...
    def purge_url(self, url: str, namespace: str = "default") -> None | Awaitable[None]: ...
    def purge_tag(self, tag: str) -> int | Awaitable[int]: ...
    def purge_namespace(self, namespace: str) -> int | Awaitable[int]: ...
    def stats(self) -> dict[str, Any]: ...

def _reused() -> tuple[int, int]:
    """(entries, body bytes) whose Python objects hits reuse (for tests)."""

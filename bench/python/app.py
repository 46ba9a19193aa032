"""The Python setup larder replaces, for bench/run: FastAPI + fastapi-cache.

One cached route, ``GET /cached``, answering the same N bytes as the Rust
bench server (``a..z`` repeated, ``application/octet-stream``), cached for an
hour by fastapi-cache's ``@cache`` with the backend chosen at start:

    LARDER_BENCH_BYTES=1024 LARDER_BENCH_FASTAPI_BACKEND=memory \
      bench/.venv/bin/uvicorn app:app --app-dir bench/python --workers 2

Environment:
    LARDER_BENCH_BYTES             body size (default 1024)
    LARDER_BENCH_FASTAPI_BACKEND   ``memory`` (InMemoryBackend, one cache per
                                   worker) or ``redis`` (RedisBackend)
    LARDER_BENCH_REDIS_URL         for ``redis`` (default redis://127.0.0.1:6379)
    LARDER_BENCH_CALLS_FILE        if set, every run of the handler (a miss)
                                   appends one byte to this file, so that the
                                   script can check a measured run was all hits

The handler returns a ``str``; fastapi-cache stores it with its default
JsonCoder and FastAPI sends it through ``response_class``, so the body is
exactly the N bytes. fastapi-cache marks answers ``X-FastAPI-Cache: HIT``.
"""

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi_cache import FastAPICache
from fastapi_cache.backends.inmemory import InMemoryBackend
from fastapi_cache.decorator import cache

SIZE = int(os.environ.get("LARDER_BENCH_BYTES", "1024"))
BACKEND = os.environ.get("LARDER_BENCH_FASTAPI_BACKEND", "memory")
REDIS_URL = os.environ.get("LARDER_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CALLS_FILE = os.environ.get("LARDER_BENCH_CALLS_FILE")
PAYLOAD = "".join(chr(ord("a") + i % 26) for i in range(SIZE))


class OctetResponse(Response):
    """The Rust bench server's content type."""

    media_type = "application/octet-stream"


@asynccontextmanager
async def lifespan(_app):
    prefix = f"fastapi-cache-bench-{SIZE}"
    if BACKEND == "redis":
        from fastapi_cache.backends.redis import RedisBackend
        from redis import asyncio as aioredis

        FastAPICache.init(RedisBackend(aioredis.from_url(REDIS_URL)), prefix=prefix)
    elif BACKEND == "memory":
        FastAPICache.init(InMemoryBackend(), prefix=prefix)
    else:
        raise SystemExit(f"LARDER_BENCH_FASTAPI_BACKEND must be memory or redis, not {BACKEND!r}")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/cached", response_class=OctetResponse)
@cache(expire=3600)
async def cached():
    if CALLS_FILE:
        with open(CALLS_FILE, "a") as calls:
            calls.write("x")
    return PAYLOAD

"""larder for FastAPI, for bench/run: the same route as app.py (fastapi-cache).

``GET /cached`` answers the same N bytes as the Rust bench server (``a..z``
repeated, ``application/octet-stream``), one of three ways, chosen at start:

    LARDER_BENCH_BYTES=1024 LARDER_BENCH_LARDER_MODE=decorator LARDER_BENCH_LARDER_STORE=memory \
      bench/.venv/bin/uvicorn larder_app:app --app-dir bench/python --workers 2

Environment:
    LARDER_BENCH_BYTES          body size (default 1024)
    LARDER_BENCH_LARDER_MODE    ``decorator`` (``@larder.cache(ttl="1h")`` under
                                ``@app.get``), ``middleware``
                                (``larder.ASGIMiddleware`` with a route for
                                ``/cached``) or ``plain`` (no cache at all)
    LARDER_BENCH_LARDER_STORE   ``memory`` (one store per uvicorn worker) or
                                ``redis``
    LARDER_BENCH_REDIS_URL      for ``redis`` (default redis://127.0.0.1:6379)
    LARDER_BENCH_CALLS_FILE     if set, every run of the view (a miss) appends
                                one byte to this file, so that the script can
                                check a measured run was all hits

The Redis command timeout is 1 s, as for the Rust bench server: on a loaded
machine the default 50 ms would turn some hits into misses (fail open).
"""

import os

from fastapi import FastAPI
from fastapi.responses import Response

import larder

SIZE = int(os.environ.get("LARDER_BENCH_BYTES", "1024"))
MODE = os.environ.get("LARDER_BENCH_LARDER_MODE", "decorator")
STORE = os.environ.get("LARDER_BENCH_LARDER_STORE", "memory")
REDIS_URL = os.environ.get("LARDER_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CALLS_FILE = os.environ.get("LARDER_BENCH_CALLS_FILE")
PAYLOAD = "".join(chr(ord("a") + i % 26) for i in range(SIZE))

if MODE not in ("decorator", "middleware", "plain"):
    raise SystemExit(f"LARDER_BENCH_LARDER_MODE must be decorator, middleware or plain, not {MODE!r}")
if STORE == "redis":
    larder.init(larder.RedisStore(REDIS_URL, command_timeout="1s"), prefix=f"larder-py-bench-{MODE}-{SIZE}")
elif STORE == "memory":
    larder.init()
else:
    raise SystemExit(f"LARDER_BENCH_LARDER_STORE must be memory or redis, not {STORE!r}")


class OctetResponse(Response):
    """The Rust bench server's content type."""

    media_type = "application/octet-stream"


def view() -> str:
    if CALLS_FILE:
        with open(CALLS_FILE, "a") as calls:
            calls.write("x")
    return PAYLOAD


api = FastAPI()

if MODE == "decorator":

    @api.get("/cached", response_class=OctetResponse)
    @larder.cache(ttl="1h")
    async def cached():
        return view()

else:

    @api.get("/cached", response_class=OctetResponse)
    async def cached():
        return view()


app = larder.ASGIMiddleware(api, routes={"/cached": larder.Policy(ttl="1h")}) if MODE == "middleware" else api

"""An app behind larder.ASGIMiddleware, for the middleware tests: plain
FastAPI views (no decorator), cached by route. Each view appends
``<name>:<t>`` to the calls file when it runs.

Environment for uvicorn: LARDER_TEST_CALLS (the calls file);
LARDER_TEST_SERVER_DATE=0 makes the cache hand the server its own ``Date``
(``server_date=False``, for a uvicorn run with ``--no-date-header``).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

import larder

BIG = 2 << 20  # past the cache's 1 MiB body limit


def make_app(calls: str) -> larder.ASGIMiddleware:
    api = FastAPI()

    def called(name: str, t: str) -> None:
        with open(calls, "a") as f:
            f.write(f"{name}:{t}\n")

    @api.get("/healthz")
    async def healthz() -> str:
        return "ok"

    @api.get("/items")
    async def list_items(t: str = ""):
        called("items", t)
        return {"items": ["apple", "pear"]}

    @api.post("/items")
    async def add_item(t: str = ""):
        called("add", t)
        return {"added": t}

    @api.get("/items/{item_id}")
    async def one_item(item_id: int, t: str = ""):
        called("item", t)
        return {"id": item_id}

    @api.get("/uncached")
    async def uncached(t: str = ""):
        called("uncached", t)
        return {"uncached": True}

    @api.get("/big")
    async def big(t: str = ""):
        called("big", t)
        return PlainTextResponse("b" * BIG)

    @api.get("/chunks")
    async def chunks(t: str = ""):
        called("chunks", t)

        async def parts():
            for i in range(4):
                yield f"part{i};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    @api.get("/cookie")
    async def cookie(response: Response, t: str = ""):
        called("cookie", t)
        response.set_cookie("session", f"secret-{t}")
        return {"cookie": True}

    @api.get("/decorated")
    @larder.cache(ttl="15m")
    async def decorated(t: str = ""):
        called("decorated", t)
        return {"decorated": True}

    @api.get("/fails")
    async def fails(t: str = ""):
        called("fails", t)
        raise RuntimeError("the database is down")

    runs: dict[str, int] = {}

    @api.get("/counted")
    async def counted(t: str = ""):
        called("counted", t)
        runs[t] = runs.get(t, 0) + 1
        return {"run": runs[t]}

    @api.get("/sized")
    async def sized(n: int = 1, t: str = ""):
        called("sized", t)
        return PlainTextResponse("s" * n)

    @api.get("/swr")
    async def swr(t: str = ""):
        called("swr", t)
        runs[t] = runs.get(t, 0) + 1
        return {"run": runs[t]}

    @api.get("/flaky")
    async def flaky(t: str = ""):
        called("flaky", t)
        runs[t] = runs.get(t, 0) + 1
        if runs[t] > 1:
            raise RuntimeError("the database is down")
        return {"run": runs[t]}

    cache = larder.Cache(max_body_bytes=1 << 20, server_date=os.environ.get("LARDER_TEST_SERVER_DATE", "1") == "1")
    larder.init()  # for the decorated view, which the middleware's route covers too
    minutes = larder.Policy(ttl="15m")
    return larder.ASGIMiddleware(
        api,
        cache,
        routes={
            "/items": larder.Policy(ttl="15m", namespace="items"),
            "/items/{item_id:int}": larder.Policy(ttl="1h", namespace="items"),
            "/big": minutes,
            "/chunks": minutes,
            "/cookie": minutes,
            "/decorated": minutes,
            "/fails": minutes,
            "/counted": larder.Policy(ttl="15m", namespace="counted"),
            "/sized": minutes,
            "/swr": larder.Policy(ttl=1, stale_while_revalidate="1h"),
            "/flaky": larder.Policy(ttl=1, stale_if_error="1h"),
        },
    )


if "LARDER_TEST_CALLS" in os.environ:
    app = make_app(os.environ["LARDER_TEST_CALLS"])

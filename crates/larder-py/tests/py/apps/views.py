"""The app the decorator tests run against, in process (httpx's ASGI
transport) and under real uvicorn (this module's ``app``).

Each view appends ``<name>:<t>`` to the calls file when it runs, so a test
counts the view calls for its own ``t`` query value, across processes.

Environment for uvicorn: LARDER_TEST_CALLS (the calls file), and
LARDER_TEST_REDIS (a Redis URL: the Redis store; else the memory store).
"""

from __future__ import annotations

import asyncio
import os
import time

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel

import larder


class Item(BaseModel):
    name: str
    price: float
    note: str | None = None


def make_app(calls: str, redis: str | None = None, prefix: str = "larder") -> FastAPI:
    # The two-line setup under test. A generous Redis command timeout: on a
    # loaded test machine the default 50 ms makes some commands fail (open,
    # as designed: a miss), which would make the call counts vary.
    larder.init(larder.RedisStore(redis, command_timeout="2s") if redis else None, prefix=prefix)
    app = FastAPI()

    def called(name: str, t: str) -> None:
        with open(calls, "a") as f:
            f.write(f"{name}:{t}\n")

    @app.get("/healthz")
    async def healthz() -> str:
        return "ok"

    @app.get("/items")
    @larder.cache(ttl="15m", namespace="items", tags=["items"])
    async def list_items(t: str = ""):
        called("items", t)
        return {"items": ["apple", "pear"], "t": t, "pid": os.getpid()}

    @app.post("/items")
    @larder.cache(namespace="items")
    async def add_item(t: str = ""):
        called("add", t)
        return JSONResponse({"added": t}, status_code=201)

    @app.get("/lang")
    @larder.cache(ttl="15m", vary=["accept-language"])
    async def lang(request: Request, t: str = ""):
        called("lang", t)
        return {"lang": request.headers.get("accept-language", "")}

    @app.get("/whoami")
    @larder.cache(ttl="15m")
    async def whoami(request: Request, t: str = ""):
        called("whoami", t)
        return {"authorization": request.headers.get("authorization")}

    @app.get("/shared-auth")
    @larder.cache(ttl="15m", allow_authorization=True)
    async def shared_auth(t: str = ""):
        called("shared-auth", t)
        return {"public": True}

    @app.get("/cookie")
    @larder.cache(ttl="15m")
    async def cookie(response: Response, t: str = ""):
        called("cookie", t)
        response.set_cookie("session", f"secret-{t}")
        return {"hello": "you"}

    def session(response: Response) -> None:
        response.set_cookie("dep", "from-dependency")

    @app.get("/dep-cookie", dependencies=[Depends(session)])
    @larder.cache(ttl="15m")
    async def dep_cookie(t: str = ""):
        called("dep-cookie", t)
        return {"hello": "dependency"}

    @app.get("/private")
    @larder.cache(ttl="15m")
    async def private(t: str = ""):
        called("private", t)
        return JSONResponse({"mine": t}, headers={"Cache-Control": "private, max-age=60"})

    @app.get("/fixed-cc")
    @larder.cache(ttl="15m", client_cache_control="public, max-age=60")
    async def fixed_cc(t: str = ""):
        called("fixed-cc", t)
        return {"fixed": True}

    @app.get("/own-cc")
    @larder.cache(ttl="15m")
    async def own_cc(response: Response, t: str = ""):
        called("own-cc", t)
        response.headers["Cache-Control"] = "public, max-age=5"
        return {"own": True}

    @app.api_route("/both", methods=["GET", "HEAD"])
    @larder.cache(ttl="15m")
    async def both(t: str = ""):
        called("both", t)
        return PlainTextResponse("x" * 1000)

    @app.get("/model", response_model=Item, response_model_exclude_none=True)
    @larder.cache(ttl="15m")
    async def model(t: str = ""):
        called("model", t)
        return {"name": "plum", "price": 2, "note": None, "secret": "dropped by the response model"}

    @app.get("/model-plain", response_model=Item, response_model_exclude_none=True)
    async def model_plain(t: str = ""):
        return {"name": "plum", "price": 2, "note": None, "secret": "dropped by the response model"}

    @app.get("/pydantic")
    @larder.cache(ttl="15m")
    async def pydantic_return(t: str = "") -> Item:
        called("pydantic", t)
        return Item(name="fig", price=1.5)

    @app.get("/custom", status_code=200)
    @larder.cache(ttl="15m", statuses=[203])
    async def custom(t: str = ""):
        called("custom", t)
        return JSONResponse({"custom": True}, status_code=203, headers={"X-Custom": "kept"})

    @app.get("/sync")
    @larder.cache(ttl="15m")
    def sync_view(t: str = ""):
        called("sync", t)
        time.sleep(0.01)  # a blocking call: the view runs in the threadpool
        return {"sync": True}

    @app.get("/items/{item_id}")
    @larder.cache(ttl="15m", namespace="items")
    async def one_item(item_id: int, request: Request, t: str = ""):
        called("item", t)
        return {"id": item_id, "path": request.url.path}

    @app.get("/slow")
    @larder.cache(ttl="15m")
    async def slow(t: str = ""):
        called("slow", t)
        await asyncio.sleep(0.5)  # a slow query
        return {"slow": t}

    @app.get("/tenant")
    @larder.cache(ttl="15m", key_extra=lambda request: request.headers.get("x-tenant", "public"))
    async def tenant(request: Request, t: str = ""):
        called("tenant", t)
        return {"tenant": request.headers.get("x-tenant", "public")}

    @app.get("/stream")
    @larder.cache(ttl="15m")
    async def stream(t: str = ""):
        called("stream", t)

        async def chunks():
            for i in range(3):
                yield f"chunk{i};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/fails")
    @larder.cache(ttl="15m")
    async def fails(t: str = ""):
        called("fails", t)
        raise RuntimeError("the database is down")

    runs: dict[str, int] = {}

    @app.get("/swr")
    @larder.cache(ttl=1, stale_while_revalidate="1h")
    async def swr(t: str = ""):
        called("swr", t)
        runs[t] = runs.get(t, 0) + 1
        return {"run": runs[t]}

    @app.get("/flaky")
    @larder.cache(ttl=1, stale_if_error="1h")
    async def flaky(t: str = ""):
        called("flaky", t)
        runs[t] = runs.get(t, 0) + 1
        if runs[t] > 1:
            raise RuntimeError("the database is down")
        return {"run": runs[t]}

    @app.post("/purge/tag/{tag}")
    async def purge_tag(tag: str):
        return {"purged": await larder.purge_tag(tag)}

    @app.post("/purge/namespace/{namespace}")
    async def purge_namespace(namespace: str):
        return {"generation": await larder.purge_namespace(namespace)}

    @app.post("/purge/url")
    async def purge_url(url: str, namespace: str = "default"):
        await larder.purge_url(url, namespace=namespace)
        return {"purged": url}

    @app.get("/stats")
    async def stats():
        return larder.stats()

    return app


if "LARDER_TEST_CALLS" in os.environ:
    app = make_app(os.environ["LARDER_TEST_CALLS"], os.environ.get("LARDER_TEST_REDIS"))

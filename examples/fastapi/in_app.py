"""The same small app as app.py, cached inside the app by larder for FastAPI.

No proxy: ``@larder.cache`` on the views, with the rules in code instead
of in response headers. Run it with

    uvicorn --app-dir examples/fastapi in_app:app --port 8000

and set REDIS_URL=redis://127.0.0.1:6379 to share the cache (entries,
stampede leases, purges) between uvicorn workers and hosts.
"""

import asyncio
import os

from fastapi import Body, FastAPI

import larder

app = FastAPI()
# The memory store: one cache per uvicorn worker. Redis: one for all.
larder.init(larder.RedisStore(os.environ["REDIS_URL"]) if "REDIS_URL" in os.environ else None)

ITEMS = {1: "apple", 2: "pear"}
calls = {"items": 0}


@app.get("/items")
@larder.cache(ttl="1m", namespace="items", tags=["items"])
async def list_items():
    calls["items"] += 1
    await asyncio.sleep(0.2)  # a slow query
    return {"items": ITEMS, "computed": calls["items"]}


@app.get("/items/{item_id}")
@larder.cache(ttl="5m", namespace="items", tags=["items"], client_cache_control="no-cache")
async def item(item_id: int):
    # Shared for 5 minutes here; browsers revalidate every time.
    return {"id": item_id, "name": ITEMS.get(item_id)}


@app.post("/items")
@larder.cache(namespace="items")
async def add_item(name: str = Body(embed=True)):
    # A successful POST drops the cached GET /items.
    ITEMS[max(ITEMS) + 1] = name
    return {"added": name}


@app.get("/me")
async def me():
    # Not decorated: never cached.
    return {"user": "alice"}


@app.post("/admin/purge/{tag}")
async def purge(tag: str):
    # Everything tagged `tag`, on every worker sharing the store.
    return {"purged": await larder.purge_tag(tag)}

"""A small FastAPI app to put larder in front of.

It says how long each answer may be shared with Cache-Control (larder's
default, origin-headers mode, stores nothing without it), tags what it sends
with Surrogate-Key so a purge can find it, and takes a while to compute.
"""

import time

from fastapi import Body, FastAPI, Response

app = FastAPI()
ITEMS = {1: "apple", 2: "pear"}
calls = {"items": 0}


@app.get("/items")
def list_items(response: Response):
    calls["items"] += 1
    time.sleep(0.2)  # a slow query
    response.headers["Cache-Control"] = "public, max-age=60"
    response.headers["Surrogate-Key"] = "items"
    return {"items": ITEMS, "computed": calls["items"]}


@app.get("/items/{item_id}")
def item(item_id: int, response: Response):
    # Browsers revalidate every time; larder may share it for 5 minutes.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Larder-Cache-Control"] = "max-age=300"
    response.headers["Surrogate-Key"] = f"items item-{item_id}"
    return {"id": item_id, "name": ITEMS.get(item_id)}


@app.post("/items")
def add_item(name: str = Body(embed=True)):
    # A successful POST makes larder drop its cached GET /items.
    ITEMS[max(ITEMS) + 1] = name
    return {"added": name}


@app.get("/me")
def me(response: Response):
    # Personal: never shared by a shared cache.
    response.headers["Cache-Control"] = "private, max-age=60"
    return {"user": "alice"}

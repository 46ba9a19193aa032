"""examples/fastapi stays true: the in-app example and the middleware
snippet of its README, through httpx's ASGI transport."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

import larder

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "fastapi"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_the_in_app_example() -> None:
    example = load("in_app")
    transport = httpx.ASGITransport(app=example.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example.test") as client:
        first = await client.get("/items")
        assert "stored" in first.headers["cache-status"]
        hit = await client.get("/items")
        assert hit.headers["cache-status"].startswith("larder; hit") and hit.json()["computed"] == 1
        one = await client.get("/items/1")
        assert one.headers["cache-control"] == "no-cache"
        assert (await client.post("/items", json={"name": "plum"})).json() == {"added": "plum"}
        fresh = await client.get("/items")
        assert "plum" in fresh.json()["items"].values() and fresh.json()["computed"] == 2
        assert (await client.post("/admin/purge/items")).json()["purged"] >= 1
        assert "cache-status" not in (await client.get("/me")).headers


async def test_the_middleware_snippet_over_the_proxy_example() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        api = load("app").app
    finally:
        sys.path.remove(str(EXAMPLES))
    larder.init()
    app = larder.ASGIMiddleware(api, routes={"/items": larder.Policy(ttl="1m", namespace="items")})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://example.test") as client:
        await client.get("/items")
        hit = await client.get("/items")
        assert hit.headers["cache-status"].startswith("larder; hit") and hit.json()["computed"] == 1

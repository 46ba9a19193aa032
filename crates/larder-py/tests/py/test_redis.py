"""The Redis store under real uvicorn processes: entries, leases and purges
shared between processes, and a Redis that dies never failing a request."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from conftest import Calls, Redis, unique, wait_until

pytestmark = pytest.mark.anyio


def cache_status(response: httpx.Response) -> str:
    return response.headers.get("cache-status", "")


def until_redis_is_used(url: str) -> None:
    """The store connects in the background and requests bypass the cache
    meanwhile: wait (bounded) until one does not."""

    def used() -> bool:
        got = httpx.get(f"{url}/items?t=warm-up-{os.getpid()}", timeout=5)
        return "bypass" not in cache_status(got)

    wait_until("the app's Redis store", used)


async def test_tag_purge_reaches_every_process_on_one_redis(redis: Redis, uvicorn, calls: Calls) -> None:
    env = {"LARDER_TEST_CALLS": str(calls.path), "LARDER_TEST_REDIS": redis.url}
    a = uvicorn("views", env)
    b = uvicorn("views", env)
    until_redis_is_used(a.url)
    until_redis_is_used(b.url)
    t = unique()
    headers = {"Host": "shop.example"}
    async with httpx.AsyncClient(headers=headers) as client:
        first = await client.get(f"{a.url}/items?t={t}")
        assert "stored" in cache_status(first)
        other = await client.get(f"{b.url}/items?t={t}")
        assert cache_status(other).startswith("larder; hit"), "the second process shares the entry"
        assert other.json()["pid"] == first.json()["pid"]
        # A purge in process A ...
        purged = (await client.post(f"{a.url}/purge/tag/items")).json()["purged"]
        assert purged >= 1
        # ... is seen by process B.
        after = await client.get(f"{b.url}/items?t={t}")
        assert "larder; hit" not in cache_status(after)
    assert calls(f"items:{t}") == 2


async def test_a_stampede_across_two_workers_runs_the_view_once(redis: Redis, uvicorn, calls: Calls) -> None:
    env = {"LARDER_TEST_CALLS": str(calls.path), "LARDER_TEST_REDIS": redis.url}
    server = uvicorn("views", env, workers=2)
    # Both workers must be connected to Redis (each has its own store).
    pids: set[int] = set()

    def both_workers_use_redis() -> bool:
        got = httpx.get(f"{server.url}/items?t=warm-{unique()}", timeout=5)
        if "bypass" not in cache_status(got):
            pids.add(got.json()["pid"])
        return len(pids) == 2

    wait_until("two workers on Redis", both_workers_use_redis, timeout=60)
    t = unique()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        answers = await asyncio.gather(*(client.get(f"{server.url}/slow?t={t}") for _ in range(200)))
    assert {r.status_code for r in answers} == {200}
    assert {r.content for r in answers} == {answers[0].content}
    assert calls(f"slow:{t}") == 1, "200 concurrent cold requests ran the view more than once"
    statuses = [cache_status(r) for r in answers]
    assert sum("stored" in s for s in statuses) == 1
    assert all("stored" in s or "hit" in s or "collapsed" in s for s in statuses), statuses


async def test_requests_succeed_while_redis_is_dead(redis: Redis, uvicorn, calls: Calls) -> None:
    env = {"LARDER_TEST_CALLS": str(calls.path), "LARDER_TEST_REDIS": redis.url}
    server = uvicorn("views", env)
    until_redis_is_used(server.url)
    t = unique()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await client.get(f"/items?t={t}")
        assert cache_status(await client.get(f"/items?t={t}")).startswith("larder; hit")
        redis.kill()
        for _ in range(5):
            got = await client.get(f"/items?t={t}")
            assert got.status_code == 200
            assert got.json()["items"] == ["apple", "pear"]
        assert (await client.post(f"/items?t={t}")).status_code == 201
        assert (await client.get("/stats")).json()["store_errors"] >= 1
    # Redis comes back: hits resume on their own.
    redis.start()

    def hits_again() -> bool:
        httpx.get(f"{server.url}/items?t={t}", timeout=5)
        return cache_status(httpx.get(f"{server.url}/items?t={t}", timeout=5)).startswith("larder; hit")

    wait_until("hits after Redis restarts", hits_again, timeout=60)

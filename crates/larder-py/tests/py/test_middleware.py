"""larder.ASGIMiddleware in front of a FastAPI app, through httpx's ASGI
transport and a real uvicorn: hits never enter the app, misses hand the
engine what the app sent."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
from conftest import Calls, Uvicorn, unique, until

import larder

pytestmark = pytest.mark.anyio
CLOSE = {"Connection": "close"}


class Site:
    def __init__(self, client: httpx.AsyncClient, calls: Calls) -> None:
        self.client = client
        self.calls_log = calls

    def calls(self, name: str, t: str) -> int:
        return self.calls_log(f"{name}:{t}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    calls = tmp_path_factory.mktemp("whole") / "calls.log"
    server = Uvicorn("whole", {"LARDER_TEST_CALLS": str(calls)})
    yield server, Calls(calls)
    server.close()


@pytest.fixture(params=["asgi", "uvicorn"])
async def site(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Site]:
    if request.param == "asgi":
        import whole

        calls = Calls(tmp_path / "calls.log")
        # As a server does: an exception after the response is logged, not raised at the client.
        transport = httpx.ASGITransport(app=whole.make_app(str(calls.path)), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            yield Site(client, calls)
    else:
        server, calls = request.getfixturevalue("served")
        async with httpx.AsyncClient(base_url=server.url) as client:
            yield Site(client, calls)


def cache_status(response: httpx.Response) -> str:
    return response.headers.get("cache-status", "")


async def test_hits_never_enter_the_app(site: Site) -> None:
    t = unique()
    first = await site.client.get(f"/items?t={t}")
    assert "stored" in cache_status(first)
    for _ in range(3):
        hit = await site.client.get(f"/items?t={t}")
        assert cache_status(hit).startswith("larder; hit")
        assert hit.content == first.content
        assert hit.headers["content-type"] == "application/json"
    assert site.calls("items", t) == 1


async def test_other_paths_pass_through_untouched(site: Site) -> None:
    t = unique()
    got = await site.client.get(f"/uncached?t={t}")
    assert got.json() == {"uncached": True}
    assert "cache-status" not in got.headers
    await site.client.get(f"/uncached?t={t}")
    assert site.calls("uncached", t) == 2
    # `{item_id:int}` matches as FastAPI routes: not "/items/abc".
    assert "cache-status" not in (await site.client.get(f"/items/abc?t={t}")).headers


async def test_routes_match_the_path_the_framework_routes_on(site: Site) -> None:
    t = unique()
    # FastAPI routes /%69tems to /items: the route's policy applies to it.
    encoded = await site.client.get(f"/%69tems?t={t}")
    assert encoded.json() == {"items": ["apple", "pear"]}
    assert "stored" in cache_status(encoded)
    assert cache_status(await site.client.get(f"/%69tems?t={t}")).startswith("larder; hit")
    one = await site.client.get(f"/items/5?t={t}")
    assert "stored" in cache_status(one)


async def test_post_invalidates_the_cached_get(site: Site) -> None:
    t = unique()
    await site.client.get(f"/items?t={t}")
    assert cache_status(await site.client.get(f"/items?t={t}")).startswith("larder; hit")
    assert (await site.client.post(f"/items?t={t}")).json() == {"added": t}
    assert "larder; hit" not in cache_status(await site.client.get(f"/items?t={t}"))
    assert site.calls("items", t) == 2


async def test_head_on_a_get_route(site: Site) -> None:
    t = unique()
    head = await site.client.head(f"/items/9?t={t}")
    assert head.status_code == 200 and head.content == b""
    get = await site.client.get(f"/items/9?t={t}")
    assert cache_status(get).startswith("larder; hit")
    assert head.headers["content-length"] == str(len(get.content))
    assert site.calls("item", t) == 1


async def test_conditional_requests_on_misses_and_hits(site: Site) -> None:
    t = unique()
    first = await site.client.get(f"/items/3?t={t}")
    etag = first.headers["etag"]
    hit = await site.client.get(f"/items/3?t={t}", headers={"If-None-Match": etag})
    assert hit.status_code == 304
    other = unique()
    miss = await site.client.get(f"/items/3?t={other}", headers={"If-None-Match": etag})
    assert miss.status_code == 304, "the same representation: the miss answers 304 too"
    assert site.calls("item", other) == 1


async def test_bodies_past_the_limit_stream_through_uncached(site: Site) -> None:
    t = unique()
    big = await site.client.get(f"/big?t={t}")
    assert big.status_code == 200 and big.content == b"b" * (2 << 20)
    assert "stored" not in cache_status(big) and "larder" in cache_status(big)
    again = await site.client.get(f"/big?t={t}")
    assert again.content == big.content
    assert site.calls("big", t) == 2


async def test_streamed_bodies_within_the_limit_are_stored(site: Site) -> None:
    t = unique()
    first = await site.client.get(f"/chunks?t={t}")
    assert first.text == "part0;part1;part2;part3;"
    hit = await site.client.get(f"/chunks?t={t}")
    assert cache_status(hit).startswith("larder; hit") and hit.text == first.text
    assert site.calls("chunks", t) == 1


async def test_set_cookie_is_never_shared(site: Site) -> None:
    t = unique()
    mine = await site.client.get(f"/cookie?t={t}")
    assert mine.cookies.get("session") == f"secret-{t}"
    site.client.cookies.clear()
    other = await site.client.get(f"/cookie?t={t}")
    assert "larder; hit" not in cache_status(other)
    assert site.calls("cookie", t) == 2


async def test_a_decorated_view_under_the_middleware_is_cached_once(site: Site) -> None:
    t = unique()
    first = await site.client.get(f"/decorated?t={t}")
    assert cache_status(first).count("larder") == 1, cache_status(first)
    assert cache_status(await site.client.get(f"/decorated?t={t}")).startswith("larder; hit")
    assert site.calls("decorated", t) == 1


async def test_a_failing_app_fails_and_is_not_cached(site: Site) -> None:
    t = unique()
    # A server closes the connection after an app raised: one each.
    assert (await site.client.get(f"/fails?t={t}", headers=CLOSE)).status_code == 500
    assert (await site.client.get(f"/fails?t={t}", headers=CLOSE)).status_code == 500
    assert site.calls("fails", t) == 2


async def test_stale_while_revalidate_answers_at_once_and_refreshes_once(site: Site) -> None:
    t = unique()
    assert (await site.client.get(f"/swr?t={t}")).json() == {"run": 1}

    async def stale() -> httpx.Response | None:
        got = await site.client.get(f"/swr?t={t}")
        return got if "ttl=-" in cache_status(got) else None

    answer = await until(stale)
    assert answer.json() == {"run": 1}
    await until(lambda: site.calls("swr", t) == 2)

    async def refreshed() -> httpx.Response | None:
        got = await site.client.get(f"/swr?t={t}")
        return got if got.json() == {"run": 2} else None

    fresh = await until(refreshed)
    assert cache_status(fresh).startswith("larder; hit")


async def test_stale_if_error_stands_in_for_a_failing_app(site: Site) -> None:
    t = unique()
    assert (await site.client.get(f"/flaky?t={t}")).json() == {"run": 1}

    async def stood_in() -> httpx.Response | None:
        got = await site.client.get(f"/flaky?t={t}")
        return got if "fwd=stale" in cache_status(got) else None

    answer = await until(stood_in)
    assert answer.status_code == 200 and answer.json() == {"run": 1}


def test_route_templates_are_checked() -> None:
    policy = larder.Policy(ttl="1m")
    routes = larder.Routes({"/a/{x}": policy, "/f/{rest:path}": policy, "/n/{n:int}.json": policy})
    assert routes.match("/a/1") is policy
    assert routes.match("/a/1/2") is None
    assert routes.match("/f/x/y/z") is policy
    assert routes.match("/n/12.json") is policy and routes.match("/n/x.json") is None
    for bad, says in [("a", "start with '/'"), ("/a/{x", "without"), ("/a/{x:nope}", "unknown convertor"), ("/{}", "name")]:
        with pytest.raises(ValueError, match=says):
            larder.Routes({bad: policy})
    with pytest.raises(TypeError, match="larder.Policy"):
        larder.Routes({"/a": "15m"})

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
    def __init__(self, client: httpx.AsyncClient, calls: Calls, server: bool) -> None:
        self.client = client
        self.calls_log = calls
        self.server = server  # a real uvicorn (else httpx's ASGI transport)

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
            yield Site(client, calls, server=False)
    else:
        server, calls = request.getfixturevalue("served")
        async with httpx.AsyncClient(base_url=server.url) as client:
            yield Site(client, calls, server=True)


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


def dates(response: httpx.Response) -> list[str]:
    return response.headers.get_list("date")


async def test_one_date_field_on_misses_and_hits(site: Site) -> None:
    # uvicorn stamps a Date on every response, whatever the app sends: the
    # cache leaves the field to it (server_date=True), so that a client
    # gets one Date, never two (a singleton field, RFC 9110 section 6.6.1).
    t = unique()
    miss = await site.client.get(f"/items?t={t}")
    hit = await site.client.get(f"/items?t={t}")
    assert cache_status(hit).startswith("larder; hit")
    not_modified = await site.client.get(f"/items?t={t}", headers={"If-None-Match": hit.headers["etag"]})
    assert not_modified.status_code == 304
    head = await site.client.head(f"/items?t={t}")
    one = 1 if site.server else 0  # httpx's ASGI transport stamps none
    for response in (miss, hit, not_modified, head):
        assert len(dates(response)) == one, (response.status_code, response.headers)


@pytest.fixture(scope="module")
def served_own_date(tmp_path_factory: pytest.TempPathFactory):
    calls = tmp_path_factory.mktemp("own-date") / "calls.log"
    server = Uvicorn(
        "whole",
        {"LARDER_TEST_CALLS": str(calls), "LARDER_TEST_SERVER_DATE": "0"},
        args=("--no-date-header",),
    )
    yield server
    server.close()


async def test_server_date_false_hands_the_server_the_stored_date(served_own_date: Uvicorn) -> None:
    # For a server without its own Date: a hit says when the response was
    # made, as from the Rust crates and the proxy, and its time in the
    # cache is in Age.
    t = unique()
    async with httpx.AsyncClient(base_url=served_own_date.url) as client:
        miss = await client.get(f"/items?t={t}")
        [stored] = dates(miss)

        async def a_second_later() -> httpx.Response | None:
            got = await client.get(f"/items?t={t}")
            return got if got.headers["age"] != "0" else None

        hit = await until(a_second_later)
    assert cache_status(hit).startswith("larder; hit")
    assert dates(hit) == [stored]


class Direct:
    """The middleware's ASGI callable, called as a server calls it; keeps
    the message objects it was sent."""

    def __init__(self, app: larder.ASGIMiddleware) -> None:
        self.app = app

    async def get(self, path: str, query: str) -> tuple[dict, list[dict]]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "http",
            "root_path": "",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"app.test")],
            "state": {},
        }
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start, bodies = sent[0], sent[1:]
        return start, bodies


def status_of(start: dict) -> str:
    return dict(start["headers"]).get(b"cache-status", b"").decode()


async def test_hits_reuse_their_entrys_objects_and_a_purge_forgets_them(tmp_path: Path) -> None:
    import whole

    from larder._answer import resolved
    from larder._native import _reused

    app = whole.make_app(str(tmp_path / "calls.log"))
    direct = Direct(app)
    t = unique()
    await direct.get("/counted", f"t={t}")
    hits = [await direct.get("/counted", f"t={t}") for _ in range(3)]
    for start, bodies in hits:
        assert status_of(start).startswith("larder; hit")
        assert [b["body"] for b in bodies] == [b'{"run":1}']
    (start1, [body1]), (start2, [body2]) = hits[1], hits[2]
    # The entry's bytes, made once; the field list is each response's own,
    # since middleware may edit it.
    assert body2["body"] is body1["body"]
    assert start2["headers"] is not start1["headers"]
    start1["headers"].append((b"x-edited", b"1"))
    again, _ = await direct.get("/counted", f"t={t}")
    assert (b"x-edited", b"1") not in again["headers"]
    assert _reused()[0] >= 1

    await resolved(app.cache.purge_url(f"http://app.test/counted?t={t}", namespace="counted"))
    assert _reused() == (0, 0), "a purge forgets every reused object"
    miss, [miss_body] = await direct.get("/counted", f"t={t}")
    assert "stored" in status_of(miss) and miss_body["body"] == b'{"run":2}'
    hit, [hit_body] = await direct.get("/counted", f"t={t}")
    assert status_of(hit).startswith("larder; hit")
    assert hit_body["body"] == b'{"run":2}' and hit_body["body"] is not body1["body"]


async def test_reused_objects_are_bounded(tmp_path: Path) -> None:
    import whole

    from larder._native import _reused

    app = whole.make_app(str(tmp_path / "calls.log"))
    direct = Direct(app)
    size = 600 << 10  # sixteen of them are past the 8 MiB kept at most
    for _ in range(16):
        t = unique()
        await direct.get("/sized", f"n={size}&t={t}")
        start, bodies = await direct.get("/sized", f"n={size}&t={t}")
        assert status_of(start).startswith("larder; hit") and len(bodies[0]["body"]) == size
    entries, kept = _reused()
    assert 0 < kept <= 8 << 20 and entries < 16


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

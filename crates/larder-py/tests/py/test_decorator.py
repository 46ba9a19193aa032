"""@larder.cache on FastAPI views, through httpx's ASGI transport (the app
in this process) and through a real uvicorn (the app in another), with the
memory store. Every test uses its own ``t`` query value: its own entries."""

from __future__ import annotations

import datetime
import inspect
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

    async def get(self, path: str, t: str, **kwargs) -> httpx.Response:
        sep = "&" if "?" in path else "?"
        return await self.client.get(f"{path}{sep}t={t}", **kwargs)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    calls = tmp_path_factory.mktemp("served") / "calls.log"
    server = Uvicorn("views", {"LARDER_TEST_CALLS": str(calls)})
    yield server, Calls(calls)
    server.close()


@pytest.fixture(params=["asgi", "uvicorn"])
async def site(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Site]:
    if request.param == "asgi":
        import views

        calls = Calls(tmp_path / "calls.log")
        app = views.make_app(str(calls.path))
        # As a server does: an exception after the response is logged, not raised at the client.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            yield Site(client, calls)
    else:
        server, calls = request.getfixturevalue("served")
        async with httpx.AsyncClient(base_url=server.url) as client:
            yield Site(client, calls)


def status_of(response: httpx.Response) -> str:
    return response.headers.get("cache-status", "")


async def test_two_line_setup_caches_a_view(site: Site) -> None:
    t = unique()
    first = await site.get("/items", t)
    assert first.status_code == 200
    assert first.json()["items"] == ["apple", "pear"]
    assert "fwd=uri-miss" in status_of(first) and "stored" in status_of(first)
    second = await site.get("/items", t)
    assert second.status_code == 200
    assert status_of(second).startswith("larder; hit")
    assert second.content == first.content
    assert second.headers["age"].isdigit()
    assert second.headers["etag"] == first.headers["etag"]
    assert site.calls("items", t) == 1


async def test_one_date_field_through_uvicorn(served) -> None:
    # uvicorn stamps its own Date on every response: a decorated view's
    # miss and hit leave the field to it (larder.init's server_date).
    server, _ = served
    t = unique()
    async with httpx.AsyncClient(base_url=server.url) as client:
        miss = await client.get(f"/items?t={t}")
        hit = await client.get(f"/items?t={t}")
    assert status_of(hit).startswith("larder; hit")
    assert len(miss.headers.get_list("date")) == 1 and len(hit.headers.get_list("date")) == 1


async def test_request_no_cache_refetches(site: Site) -> None:
    t = unique()
    await site.get("/items", t)
    assert status_of(await site.get("/items", t)).startswith("larder; hit")
    forced = await site.get("/items", t, headers={"Cache-Control": "no-cache"})
    assert "fwd=request" in status_of(forced), status_of(forced)
    assert site.calls("items", t) == 2
    pragma = await site.get("/items", t, headers={"Pragma": "no-cache"})
    assert "fwd=request" in status_of(pragma)
    assert site.calls("items", t) == 3
    # The refetched answer was stored for everyone else.
    assert status_of(await site.get("/items", t)).startswith("larder; hit")
    assert site.calls("items", t) == 3


async def test_cache_control_toward_clients(site: Site) -> None:
    t = unique()
    first = await site.get("/items", t)
    max_age = int(first.headers["cache-control"].removeprefix("max-age="))
    assert 0 < max_age <= 900
    fixed = await site.get("/fixed-cc", t)
    assert fixed.headers["cache-control"] == "public, max-age=60"
    assert (await site.get("/fixed-cc", t)).headers["cache-control"] == "public, max-age=60"
    own = await site.get("/own-cc", t)
    assert own.headers["cache-control"] == "public, max-age=5"
    hit = await site.get("/own-cc", t)
    assert status_of(hit).startswith("larder; hit")
    assert hit.headers["cache-control"] == "public, max-age=5"


async def test_vary_keeps_variants_apart(site: Site) -> None:
    t = unique()
    fr = await site.get("/lang", t, headers={"Accept-Language": "fr"})
    de = await site.get("/lang", t, headers={"Accept-Language": "de"})
    assert fr.json() == {"lang": "fr"} and de.json() == {"lang": "de"}
    assert "accept-language" in fr.headers["vary"].lower()
    again = await site.get("/lang", t, headers={"Accept-Language": "fr"})
    assert status_of(again).startswith("larder; hit") and again.json() == {"lang": "fr"}
    none = await site.get("/lang", t)
    assert none.json() == {"lang": ""}
    assert site.calls("lang", t) == 3


async def test_authorization_is_never_shared(site: Site) -> None:
    t = unique()
    alice = await site.get("/whoami", t, headers={"Authorization": "Bearer alice"})
    assert alice.json() == {"authorization": "Bearer alice"}
    assert "fwd=bypass" in status_of(alice)
    anonymous = await site.get("/whoami", t)
    assert anonymous.json() == {"authorization": None}, "a credentialed answer reached another client"
    bob = await site.get("/whoami", t, headers={"Authorization": "Bearer bob"})
    assert bob.json() == {"authorization": "Bearer bob"}
    assert site.calls("whoami", t) == 3
    # Unless the route says the answer is the same for everyone.
    await site.get("/shared-auth", t, headers={"Authorization": "Bearer alice"})
    shared = await site.get("/shared-auth", t, headers={"Authorization": "Bearer bob"})
    assert status_of(shared).startswith("larder; hit")


async def test_set_cookie_is_never_shared(site: Site) -> None:
    t = unique()
    mine = await site.get("/cookie", t)
    assert mine.cookies.get("session") == f"secret-{t}"
    assert "stored" not in status_of(mine)
    other = await site.get("/cookie", t)
    assert site.calls("cookie", t) == 2, "an answer setting a cookie was shared"
    assert "larder; hit" not in status_of(other)
    # A cookie a dependency sets counts too, and reaches its client.
    dep = await site.get("/dep-cookie", t)
    assert dep.cookies.get("dep") == "from-dependency"
    await site.get("/dep-cookie", t)
    assert site.calls("dep-cookie", t) == 2


async def test_private_is_never_shared(site: Site) -> None:
    t = unique()
    first = await site.get("/private", t)
    assert first.headers["cache-control"] == "private, max-age=60"
    second = await site.get("/private", t)
    assert "larder; hit" not in status_of(second)
    assert site.calls("private", t) == 2


async def test_if_none_match_gets_304_on_hits_and_misses(site: Site) -> None:
    t = unique()
    first = await site.get("/items", t)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    hit = await site.get("/items", t, headers={"If-None-Match": etag})
    assert hit.status_code == 304 and hit.content == b""
    assert hit.headers["etag"] == etag
    assert site.calls("items", t) == 1
    assert (await site.get("/items", t, headers={"If-None-Match": '"other"'})).status_code == 200
    # A miss: the view runs, and the client still gets its 304.
    url = str(site.client.base_url.join(f"/items?t={t}"))
    await site.client.post("/purge/url", params={"url": url, "namespace": "items"})
    miss = await site.get("/items", t, headers={"If-None-Match": etag})
    assert site.calls("items", t) == 2
    assert miss.status_code == 304, status_of(miss)


async def test_head_is_answered_from_the_get_entry(site: Site) -> None:
    t = unique()
    head = await site.client.head(f"/both?t={t}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "1000"
    get = await site.get("/both", t)
    assert status_of(get).startswith("larder; hit"), "HEAD filled the GET entry"
    assert get.content == b"x" * 1000
    head_hit = await site.client.head(f"/both?t={t}")
    assert status_of(head_hit).startswith("larder; hit") and head_hit.content == b""
    assert site.calls("both", t) == 1


async def test_post_invalidates_the_cached_get(site: Site) -> None:
    t = unique()
    await site.get("/items", t)
    assert status_of(await site.get("/items", t)).startswith("larder; hit")
    posted = await site.client.post(f"/items?t={t}")
    assert posted.status_code == 201
    again = await site.get("/items", t)
    assert "larder; hit" not in status_of(again)
    assert site.calls("items", t) == 2


async def test_post_invalidates_after_a_namespace_purge(site: Site) -> None:
    t = unique()
    await site.client.post("/purge/namespace/items")
    await site.get("/items", t)
    assert status_of(await site.get("/items", t)).startswith("larder; hit")
    await site.client.post(f"/items?t={t}")
    again = await site.get("/items", t)
    assert "larder; hit" not in status_of(again), "POST after a namespace purge left the GET cached"


async def test_dicts_and_models_are_serialised_as_fastapi_would(site: Site) -> None:
    t = unique()
    cached = await site.get("/model", t)
    plain = await site.get("/model-plain", t)
    assert cached.content == plain.content
    assert cached.json() == {"name": "plum", "price": 2.0}
    assert cached.headers["content-type"] == plain.headers["content-type"]
    hit = await site.get("/model", t)
    assert status_of(hit).startswith("larder; hit") and hit.content == plain.content
    model = await site.get("/pydantic", t)
    assert model.json() == {"name": "fig", "price": 1.5, "note": None}
    assert (await site.get("/pydantic", t)).content == model.content
    assert site.calls("model", t) == 1 and site.calls("pydantic", t) == 1


async def test_response_objects_keep_status_and_headers(site: Site) -> None:
    t = unique()
    first = await site.get("/custom", t)
    hit = await site.get("/custom", t)
    for r in (first, hit):
        assert r.status_code == 203
        assert r.headers["x-custom"] == "kept"
        assert r.json() == {"custom": True}
    assert status_of(hit).startswith("larder; hit")
    assert site.calls("custom", t) == 1


async def test_def_views_and_path_parameters(site: Site) -> None:
    t = unique()
    assert (await site.get("/sync", t)).json() == {"sync": True}
    assert status_of(await site.get("/sync", t)).startswith("larder; hit")
    assert site.calls("sync", t) == 1
    one = await site.get("/items/7", t)
    assert one.json() == {"id": 7, "path": "/items/7"}
    assert (await site.get("/items/8", t)).json()["id"] == 8
    assert status_of(await site.get("/items/7", t)).startswith("larder; hit")
    assert site.calls("item", t) == 2
    assert (await site.get("/items/nope", t)).status_code == 422


async def test_key_function_separates_entries(site: Site) -> None:
    t = unique()
    a = await site.get("/tenant", t, headers={"X-Tenant": "a"})
    b = await site.get("/tenant", t, headers={"X-Tenant": "b"})
    assert a.json() == {"tenant": "a"} and b.json() == {"tenant": "b"}
    assert (await site.get("/tenant", t, headers={"X-Tenant": "a"})).json() == {"tenant": "a"}
    assert site.calls("tenant", t) == 2


async def test_streaming_responses_pass_through_uncached(site: Site) -> None:
    t = unique()
    first = await site.get("/stream", t)
    assert first.text == "chunk0;chunk1;chunk2;"
    assert "larder" in status_of(first)
    assert (await site.get("/stream", t)).text == "chunk0;chunk1;chunk2;"
    assert site.calls("stream", t) == 2


async def test_a_failing_view_fails_and_is_not_cached(site: Site) -> None:
    t = unique()
    # A server closes the connection after an app raised: one each.
    assert (await site.get("/fails", t, headers=CLOSE)).status_code == 500
    assert (await site.get("/fails", t, headers=CLOSE)).status_code == 500
    assert site.calls("fails", t) == 2


async def test_tag_and_namespace_purges_from_code(site: Site) -> None:
    t = unique()
    await site.get("/items", t)
    purged = (await site.client.post("/purge/tag/items")).json()["purged"]
    assert purged >= 1
    assert "larder; hit" not in status_of(await site.get("/items", t))
    assert status_of(await site.get("/items", t)).startswith("larder; hit")
    await site.client.post("/purge/namespace/items")
    assert "larder; hit" not in status_of(await site.get("/items", t))
    assert site.calls("items", t) == 3


async def test_stale_while_revalidate_answers_at_once_and_refreshes_once(site: Site) -> None:
    t = unique()
    assert (await site.get("/swr", t)).json() == {"run": 1}

    async def stale() -> httpx.Response | None:
        got = await site.get("/swr", t)
        return got if "ttl=-" in status_of(got) else None

    answer = await until(stale)
    assert answer.json() == {"run": 1}, "the stale entry, at once"
    await until(lambda: site.calls("swr", t) == 2)

    async def refreshed() -> httpx.Response | None:
        got = await site.get("/swr", t)
        return got if got.json() == {"run": 2} else None

    fresh = await until(refreshed)
    assert status_of(fresh).startswith("larder; hit")


async def test_stale_if_error_stands_in_for_a_failing_view(site: Site) -> None:
    t = unique()
    assert (await site.get("/flaky", t)).json() == {"run": 1}

    async def stood_in() -> httpx.Response | None:
        got = await site.get("/flaky", t)
        return got if "fwd=stale" in status_of(got) else None

    answer = await until(stood_in)
    assert answer.status_code == 200 and answer.json() == {"run": 1}
    assert site.calls("flaky", t) == 2


def test_the_view_declares_nothing_it_does_not_use() -> None:
    seen = {}

    @larder.cache(ttl="1m")
    async def view(item_id: int, q: str = ""):
        seen["args"] = (item_id, q)

    params = inspect.signature(view).parameters
    assert list(params)[:2] == ["item_id", "q"]
    hidden = [p for name, p in params.items() if name not in ("item_id", "q")]
    assert {p.annotation.__name__ for p in hidden} == {"Request", "Response"}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in hidden)


def test_options_are_checked_when_decorating() -> None:
    for options, says in [
        ({"ttl": "15"}, "time unit needed"),
        ({"ttl": "15 parsecs"}, 'unknown time unit "parsecs"'),
        ({"ttl": "1500us"}, "finer than a millisecond"),
        ({"ttl": "69y"}, "longer than 68 years"),
        ({"ttl": -1}, "negative"),
        ({"ttl": 0}, "zero caches nothing"),
        ({"ttl": "0s"}, "zero caches nothing"),
        ({"ttl": True}, "not a bool"),
        ({"ttl": "1m", "origin_headers": True}, "not both"),
        ({"ttl": "1m", "vary": ["bad name"]}, "not a header name"),
        ({"ttl": "1m", "statuses": [42]}, "from 100 to 999"),
        ({"ttl": "1m", "client_cache_control": "max-age=\n60"}, "visible ASCII"),
        ({"ttl": "1m", "key_extra": "tenant"}, "function of the request"),
        ({"ttl": "1m", "namespace": ""}, "cannot be empty"),
    ]:
        with pytest.raises((ValueError, TypeError), match=says):
            larder.cache(**options)
    with pytest.raises(TypeError, match="unexpected keyword argument `tll`"):
        larder.cache(tll="1m")

    with pytest.raises(TypeError, match="generator"):

        @larder.cache(ttl="1m")
        async def streams():
            yield b"x"


def test_durations_are_humantime_text_seconds_or_timedeltas() -> None:
    # The grammar of the Rust attribute and the proxy's TOML.
    for ttl in ["250ms", "1m1m", "1h 30m", "1h30m", "2d", "1.5s", 90, 0.25, datetime.timedelta(minutes=15)]:
        assert larder.Policy(ttl=ttl).reads
    assert repr(larder.Policy(ttl="250ms")) == 'Policy(ttl=0.25s, namespace="default")'
    assert repr(larder.Policy(ttl="1m1m")) == 'Policy(ttl=120s, namespace="default")'
    # Zero is off for a stale window or early refresh, an error for a ttl.
    larder.Policy(ttl="1m", stale_while_revalidate="0s", stale_if_error=0, early_refresh="0ms")
    with pytest.raises(ValueError) as error:
        larder.Policy(ttl="0s")
    assert str(error.value) == (
        'a ttl of zero caches nothing: give a positive duration such as "15m", or leave this route uncached'
    )
    # The words are larder::parse_duration's, after the option's name.
    with pytest.raises(ValueError) as error:
        larder.Policy(ttl="1m", stale_if_error="15")
    assert str(error.value) == (
        '`stale_if_error`: "15" is not a duration: time unit needed, for example 15sec or 15ms; '
        'write one such as "90s", "15m", "1h30m" or "250ms"'
    )


def test_a_zero_timeout_or_interval_is_an_error_naming_it() -> None:
    for option in ["coalesce_wait", "lease_ttl", "namespace_refresh"]:
        with pytest.raises(ValueError, match=f"`{option}` cannot be zero"):
            larder.Cache(**{option: "0s"})
    for option in ["command_timeout", "connect_timeout"]:
        with pytest.raises(ValueError, match=f"`{option}` cannot be zero"):
            larder.RedisStore("redis://127.0.0.1:1", **{option: 0})
    # hit_for_miss has an "off": zero.
    larder.Cache(hit_for_miss=0, coalesce_wait="250ms", namespace_refresh="1m1m")


def test_old_spellings_and_other_caches_words_name_larders() -> None:
    for old, new in [
        ("cache_control", "client_cache_control"),
        ("honor_request_cache_control", "honor_request_directives"),
        ("key", "key_extra"),
    ]:
        for make in (larder.cache, larder.Policy):
            with pytest.raises(TypeError, match=f"`{old}` is now `{new}`"):
                make(ttl="1m", **{old: None})
    for word, whose in [("expire", "fastapi-cache"), ("timeout", "Django")]:
        for make in (larder.cache, larder.Policy):
            with pytest.raises(TypeError, match=rf"`{word}` \(did you mean `ttl`\?\): `{word}` is {whose}'s word"):
                make(**{word: 60})


class EnteredHandler:
    """An ASGI middleware that notes whether each request reached FastAPI's
    request handler (which puts its exit stack in the scope)."""

    def __init__(self, app) -> None:
        self.app = app
        self.entered: bool | None = None

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.entered = "fastapi_inner_astack" in scope


async def test_hits_of_views_only_the_url_feeds_skip_fastapis_request_handler(tmp_path: Path) -> None:
    import asyncio

    from fastapi import APIRouter, Depends, FastAPI, Header

    larder.init()
    app = FastAPI()
    runs: list[str] = []
    deps: list[str] = []

    def dependency() -> None:
        deps.append("ran")

    @app.get("/items/{item_id}")
    @larder.cache(ttl="15m")
    async def item(item_id: int, q: str = ""):
        runs.append(f"item:{item_id}")
        await asyncio.sleep(0.2)  # a query, so that concurrent misses overlap
        return {"id": item_id, "q": q}

    @app.get("/guarded", dependencies=[Depends(dependency)])
    @larder.cache(ttl="15m")
    async def guarded():
        runs.append("guarded")
        return {"guarded": True}

    @app.get("/agent")
    @larder.cache(ttl="15m", vary=["user-agent"])
    async def agent(user_agent: str = Header("")):
        runs.append("agent")
        return {"agent": user_agent}

    router = APIRouter()

    @router.get("/inner/{n}")
    @larder.cache(ttl="15m")
    async def inner(n: int):
        runs.append(f"inner:{n}")
        return {"n": n}

    app.include_router(router, prefix="/open")
    # The same view again, where the inclusion adds a dependency.
    app.include_router(router, prefix="/closed", dependencies=[Depends(dependency)])

    front = EnteredHandler(app)
    transport = httpx.ASGITransport(app=front)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:

        async def get(path: str, **kwargs) -> tuple[httpx.Response, bool | None]:
            got = await client.get(path, **kwargs)
            return got, front.entered

        # Fed by the URL only: a miss runs FastAPI's handler and the view,
        # a hit is the same answer without either.
        miss, entered = await get("/items/1?q=a")
        assert entered and miss.json() == {"id": 1, "q": "a"}
        hit, entered = await get("/items/1?q=a")
        assert not entered and status_of(hit).startswith("larder; hit")
        assert hit.content == miss.content and hit.headers["content-type"] == miss.headers["content-type"]
        # What FastAPI rejects before the view stays rejected, and is not cached.
        for _ in range(2):
            bad, entered = await get("/items/nope")
            assert bad.status_code == 422 and entered
        # Misses after the first still run the view once, concurrent ones too.
        both = await asyncio.gather(client.get("/items/2"), client.get("/items/2"))
        assert [r.json() for r in both] == [{"id": 2, "q": ""}] * 2
        assert runs.count("item:2") == 1
        assert status_of((await get("/items/2"))[0]).startswith("larder; hit")
        assert runs.count("item:1") == 1

        # A dependency (the route's or the inclusion's) or a header
        # parameter: every hit goes through FastAPI's handler, and the
        # dependency runs on each.
        for path in ("/guarded", "/closed/inner/1"):
            before = len(deps)
            await get(path)
            hit, entered = await get(path)
            assert entered and status_of(hit).startswith("larder; hit"), path
            assert len(deps) == before + 2, path
        await get("/agent", headers={"User-Agent": "a"})
        hit, entered = await get("/agent", headers={"User-Agent": "a"})
        assert entered and hit.json() == {"agent": "a"} and status_of(hit).startswith("larder; hit")

        # An included router without dependencies: the fast path too.
        await get("/open/inner/1")
        hit, entered = await get("/open/inner/1")
        assert not entered and hit.json() == {"n": 1} and status_of(hit).startswith("larder; hit")
    assert runs.count("guarded") == 1 and runs.count("agent") == 1
    assert runs.count("inner:1") == 2  # one entry per URL: /open/... and /closed/...

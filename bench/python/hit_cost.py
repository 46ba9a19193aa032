"""CPU time per cache hit, in one process: larder for FastAPI against fastapi-cache.

bench/run measures req/s under uvicorn; on two shared cores those follow
CPU per request, which is what this measures without the noise of sockets
and wrk. The apps are bench/run's own (``app.py``: FastAPI + fastapi-cache
with ``InMemoryBackend``; ``larder_app.py``: ``@larder.cache`` and
``larder.ASGIMiddleware`` on the memory store, and the plain view), loaded
from this directory with their environment set as bench/run sets it.

Each subject answers N hits of ``GET /cached``, one after another, driven
one of two ways (``--through``):

- ``asgi``: the app's ASGI callable, with a scope as uvicorn's httptools
  protocol makes it for wrk's request (a fresh dict per request) and a
  minimal receive/send pair: the cost of the app and the cache alone.
- ``uvicorn``: uvicorn's own ``HttpToolsProtocol`` (the one bench/run's
  uvicorn runs, with the same middleware ``Config`` wraps the app in), fed
  wrk's request bytes on a transport that keeps what is written: the same,
  plus the server's parsing and response writing, without the kernel.

Per-hit CPU time is ``time.process_time()`` (every thread of the process,
the tokio runtime's included) over N hits. Rounds alternate the order of
the subjects (ABBA) so that machine load hits each alike; the table gives
each subject's median over rounds and the ratios fastapi-cache / larder
(how many times the hits per CPU second, which is what bench/run's req/s
ratio predicts on a CPU-bound machine). Every measured answer is checked:
status 200, exactly the payload, a hit (``cache-status`` or
``x-fastapi-cache``), and no view ran during the measurement.

    bench/.venv/bin/python bench/python/hit_cost.py                     # both ways, 1 KiB
    bench/.venv/bin/python bench/python/hit_cost.py --through asgi --hits 20000 --rounds 6
    bench/.venv/bin/python bench/python/hit_cost.py --profile decorator # cProfile of N hits
    bench/.venv/bin/python bench/python/hit_cost.py --spin decorator --seconds 20   # for py-spy

``--profile SUBJECT`` prints cProfile's top functions for one subject
(Python frames only; the Rust side is one entry per extension call).
``--spin SUBJECT`` runs hits for ``--seconds`` and prints its pid first,
for a sampling profiler that sees native frames too::

    py-spy record --native -r 500 -o hits.svg -- \
        bench/.venv/bin/python bench/python/hit_cost.py --spin decorator --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import os
import pstats
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = b"127.0.0.1:8000"
# What wrk sends (``wrk -t2 -c32 URL``): the request line and Host.
REQUEST = b"GET /cached HTTP/1.1\r\nHost: " + HOST + b"\r\n\r\n"

# id -> (module file, environment, label)
SUBJECTS = {
    "fastapi-cache": (
        "app.py",
        {"LARDER_BENCH_FASTAPI_BACKEND": "memory"},
        "FastAPI + fastapi-cache, InMemoryBackend",
    ),
    "decorator": ("larder_app.py", {"LARDER_BENCH_LARDER_MODE": "decorator"}, "FastAPI + @larder.cache, memory"),
    "middleware": ("larder_app.py", {"LARDER_BENCH_LARDER_MODE": "middleware"}, "FastAPI + larder.ASGIMiddleware, memory"),
    "plain": ("larder_app.py", {"LARDER_BENCH_LARDER_MODE": "plain"}, "FastAPI, plain view (no cache)"),
}


def load(subject: str, size: int, calls_file: str):
    """bench/run's app for ``subject``, a module of its own."""
    path, env, _ = SUBJECTS[subject]
    os.environ.update(env, LARDER_BENCH_BYTES=str(size), LARDER_BENCH_LARDER_STORE="memory")
    os.environ["LARDER_BENCH_CALLS_FILE"] = calls_file
    spec = importlib.util.spec_from_file_location(f"bench_{subject.replace('-', '_')}", os.path.join(HERE, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scope(path: str = "/cached") -> dict:
    """The scope uvicorn's httptools protocol makes of REQUEST."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "headers": [(b"host", HOST)],
        "state": {},
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
    }


class AsgiDriver:
    """Calls the ASGI app directly; keeps the last answer for checking."""

    def __init__(self, app, path: str = "/cached") -> None:
        self.app = app
        self.path = path
        self.status = 0
        self.headers: list = []
        self.body = b""

    async def receive(self) -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers", [])
            self.body = b""
        else:
            self.body += message.get("body", b"")

    async def hits(self, n: int) -> int:
        app, receive, send, path = self.app, self.receive, self.send, self.path
        for _ in range(n):
            await app(scope(path), receive, send)
        return n

    def answer(self) -> tuple[int, dict, bytes]:
        return self.status, {k.decode().lower(): v.decode() for k, v in self.headers}, self.body


class Transport:
    """What uvicorn's protocol writes to: kept, never sent."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol) -> None:
        pass


class UvicornDriver:
    """Feeds REQUEST to uvicorn's HttpToolsProtocol on ``connections``
    keep-alive connections, as wrk does: one request on each, then every
    answer awaited (so that requests interleave on the event loop as they
    do in a server), and again."""

    connections = 1

    def __init__(self, app, path: str = "/cached") -> None:
        from email.utils import formatdate

        from uvicorn.config import Config
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState

        config = Config(app, http="httptools", lifespan="off", access_log=False, log_level="warning")
        config.load()  # wraps the app as uvicorn does (proxy headers)
        self.state = ServerState()
        # What uvicorn's Server puts in front of every response's header
        # fields (refreshed each second there; fixed here).
        self.state.default_headers = [(b"date", formatdate(usegmt=True).encode())] + config.encoded_headers
        self.transports = [Transport() for _ in range(self.connections)]
        self.protocols = []
        for transport in self.transports:
            protocol = HttpToolsProtocol(config=config, server_state=self.state, app_state={})
            protocol.connection_made(transport)
            self.protocols.append(protocol)
        self.request = REQUEST.replace(b"/cached", path.encode(), 1)

    async def hits(self, n: int) -> int:
        pairs = list(zip(self.protocols, self.transports))
        tasks, request = self.state.tasks, self.request
        rounds = max(1, n // len(pairs))
        for _ in range(rounds):
            for protocol, transport in pairs:
                transport.written.clear()
                protocol.data_received(request)
            while tasks:
                await next(iter(tasks))
                await asyncio.sleep(0)  # the done callbacks run
        return rounds * len(pairs)

    def answer(self) -> tuple[int, dict, bytes]:
        raw = b"".join(self.transports[-1].written)
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers, body


def check(subject: str, driver, payload: bytes) -> None:
    status, headers, body = driver.answer()
    if status != 200 or body != payload:
        raise SystemExit(f"{subject}: answered {status} with {len(body)} bytes, not 200 with {len(payload)}")
    if subject == "fastapi-cache":
        if headers.get("x-fastapi-cache") != "HIT":
            raise SystemExit(f"{subject}: not a hit (x-fastapi-cache: {headers.get('x-fastapi-cache')!r})")
    elif subject != "plain" and "hit" not in headers.get("cache-status", ""):
        raise SystemExit(f"{subject}: not a hit (cache-status: {headers.get('cache-status')!r})")


def calls(path: str) -> int:
    return os.path.getsize(path)


async def prepare(subjects: list[str], size: int, through: str, scratch: str):
    """Each subject's app (its lifespan entered), driver and calls file,
    warmed up: filled, then answering hits."""
    drivers, exits, modules = {}, [], {}
    # Every larder_app module calls larder.init() (a new memory store):
    # all are loaded before any is filled, so they share the last one.
    for s in subjects:
        calls_file = os.path.join(scratch, f"calls-{s}")
        open(calls_file, "w").close()
        modules[s] = (load(s, size, calls_file), calls_file)
    for s, (module, calls_file) in modules.items():
        # fastapi-cache sets itself up in the app's lifespan.
        fastapi_app = getattr(module, "api", None) or module.app
        context = fastapi_app.router.lifespan_context(fastapi_app)
        await context.__aenter__()
        exits.append(context)
        driver = (AsgiDriver if through == "asgi" else UvicornDriver)(module.app)
        await driver.hits(200)
        drivers[s] = (driver, calls_file)
    payload = load_payload(size)
    for s, (driver, calls_file) in drivers.items():
        check(s, driver, payload)
    return drivers, exits


def load_payload(size: int) -> bytes:
    return "".join(chr(ord("a") + i % 26) for i in range(size)).encode()


async def measure(args) -> None:
    subjects = args.subjects
    with tempfile.TemporaryDirectory() as scratch:
        drivers, exits = await prepare(subjects, args.bytes, args.through, scratch)
        before = {s: calls(c) for s, (_, c) in drivers.items()}
        per_hit: dict[str, list[float]] = {s: [] for s in subjects}
        for r in range(args.rounds):
            order = subjects if r % 2 == 0 else list(reversed(subjects))
            for s in order:
                driver, _ = drivers[s]
                start = time.process_time()
                done = await driver.hits(args.hits)
                per_hit[s].append((time.process_time() - start) / done * 1e6)
        payload = load_payload(args.bytes)
        for s, (driver, calls_file) in drivers.items():
            check(s, driver, payload)
            if s != "plain" and calls(calls_file) != before[s]:
                raise SystemExit(f"{s}: its view ran during the measurement (a miss)")
        for context in exits:
            await context.__aexit__(None, None, None)
    report(args, per_hit)


def report(args, per_hit: dict[str, list[float]]) -> None:
    through = args.through + (f" ({args.connections} connection(s))" if args.through == "uvicorn" else "")
    print(f"\n{args.hits} hits x {args.rounds} rounds (ABBA), {args.bytes} B, through {through}, "
          f"Python {sys.version.split()[0]}")
    print("| subject | µs CPU per hit (median) | per round |")
    print("|---|---:|---|")
    med = {s: statistics.median(v) for s, v in per_hit.items()}
    for s, v in per_hit.items():
        print(f"| {SUBJECTS[s][2]} | {med[s]:.1f} | {' / '.join(f'{x:.1f}' for x in v)} |")
    base = "fastapi-cache"
    if base in per_hit:
        for s in ("decorator", "middleware", "plain"):
            if s in per_hit:
                rounds = [b / x for b, x in zip(per_hit[base], per_hit[s])]
                print(f"- fastapi-cache / {s}: {med[base] / med[s]:.2f}× "
                      f"(per round {' / '.join(f'{x:.2f}' for x in rounds)})")


async def profile(args) -> None:
    s = args.profile
    with tempfile.TemporaryDirectory() as scratch:
        drivers, _ = await prepare([s], args.bytes, args.through, scratch)
        driver, _ = drivers[s]
        profiler = cProfile.Profile()
        profiler.enable()
        await driver.hits(args.hits)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.top)


async def spin(args) -> None:
    s = args.spin
    with tempfile.TemporaryDirectory() as scratch:
        drivers, _ = await prepare([s], args.bytes, args.through, scratch)
        driver, _ = drivers[s]
        print(f"pid {os.getpid()}: hits of {s} for {args.seconds} s", flush=True)
        end = time.monotonic() + args.seconds
        n = 0
        while time.monotonic() < end:
            await driver.hits(1000)
            n += 1000
        print(f"{n} hits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--through", choices=["asgi", "uvicorn", "both"], default="both")
    parser.add_argument("--hits", type=int, default=10000, help="hits per subject and round (10000)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds, ABBA (6)")
    parser.add_argument("--bytes", type=int, default=1024, help="payload size (1024)")
    parser.add_argument("--connections", type=int, default=16,
                        help="--through uvicorn: connections, one request in flight on each (16: bench/run's 32 over 2 workers)")
    parser.add_argument("--subjects", nargs="+", choices=list(SUBJECTS), default=list(SUBJECTS))
    parser.add_argument("--profile", choices=list(SUBJECTS), help="cProfile N hits of one subject")
    parser.add_argument("--top", type=int, default=35, help="functions --profile prints (35)")
    parser.add_argument("--spin", choices=list(SUBJECTS), help="hits of one subject for --seconds")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    UvicornDriver.connections = max(1, args.connections)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # uvicorn[standard] brings it; bench/run's uvicorn uses it
        run = asyncio.run
    if args.profile or args.spin:
        args.through = "asgi" if args.through == "both" else args.through
        run(profile(args) if args.profile else spin(args))
        return
    for through in ["asgi", "uvicorn"] if args.through == "both" else [args.through]:
        args.through = through
        run(measure(args))


if __name__ == "__main__":
    main()

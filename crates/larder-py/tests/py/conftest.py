"""Real servers for the tests: redis-server on a free port, and FastAPI apps
under real uvicorn processes. Nothing is mocked.

Without redis-server the Redis tests skip, unless LARDER_TEST_REQUIRE_REDIS=1
(CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

APPS = Path(__file__).parent / "apps"
sys.path.insert(0, str(APPS))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, ready, timeout: float = 30.0) -> None:
    """Bounded: a server that never comes up fails the test, never hangs it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} did not become ready within {timeout} s")


def redis_command(port: int, *args: str) -> bytes:
    """One command over RESP; the raw reply (enough for PING, FLUSHALL, DBSIZE, KEYS)."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        time.sleep(0.01)
        chunks = [s.recv(1 << 16)]
        s.settimeout(0.05)
        try:
            while True:
                more = s.recv(1 << 16)
                if not more:
                    break
                chunks.append(more)
        except OSError:
            pass
    return b"".join(chunks)


class Redis:
    """A redis-server process for one test, persistence off."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="larder-py-redis-")
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until("redis-server", self.answers)

    def answers(self) -> bool:
        try:
            return redis_command(self.port, "PING").startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def keys(self) -> list[str]:
        reply = redis_command(self.port, "KEYS", "*").decode(errors="replace")
        lines = reply.split("\r\n")
        return [line for line in lines[1:] if line and not line.startswith(("$", "*"))]

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis() -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        if os.environ.get("LARDER_TEST_REQUIRE_REDIS") == "1":
            pytest.fail("LARDER_TEST_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = Redis()
    yield server
    server.close()


class Calls:
    """Counts view calls across processes: each call appends one line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def __call__(self, name: str) -> int:
        return self.path.read_text().splitlines().count(name)


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    return Calls(tmp_path / "calls.log")


class Uvicorn:
    """An app module (tests/py/apps/<module>.py, attribute ``app``) under a
    real uvicorn, on a free port."""

    def __init__(self, module: str, env: dict[str, str], workers: int = 1, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"larder-py-{module}-", suffix=".log", delete=False)
        command = [sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir", str(APPS), "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        if workers > 1:
            command += ["--workers", str(workers)]
        command += args
        self.proc = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(f"uvicorn {module}", self.answers)

    def answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"uvicorn exited: {Path(self.log.name).read_text()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


@pytest.fixture
def uvicorn() -> Iterator:
    """``uvicorn(module, env, workers=1)`` starts a server, stopped after the test."""
    servers: list[Uvicorn] = []

    def start(module: str, env: dict[str, str], workers: int = 1) -> Uvicorn:
        server = Uvicorn(module, env, workers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


async def until(probe, timeout: float = 20.0):
    """Polls ``probe`` (bounded) until it gives something truthy, which it
    returns; ``probe`` may return a value or an awaitable."""
    import asyncio
    import inspect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        got = probe()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def unique() -> str:
    """A query value no other test uses, so tests sharing a server share no entry."""
    return uuid.uuid4().hex[:12]

"""Fresh databases for tests: a SQLite file, or a PostgreSQL database created for the test and dropped after.

PostgreSQL is found at $CHANTBOT_TEST_POSTGRES_URL (`.ci/run` sets it), else at
postgresql://postgres@127.0.0.1:5432/postgres; when no server answers there, those tests skip.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from bot.store import open_store, redact

ENV = "CHANTBOT_TEST_POSTGRES_URL"
DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
_reachable: dict[str, str | None] = {}


def admin_url() -> str:
    return os.environ.get(ENV) or DEFAULT


async def _why_unreachable(url: str) -> str | None:
    if url not in _reachable:
        import asyncpg

        try:
            conn = await asyncpg.connect(url, timeout=3)
            await conn.close()
            _reachable[url] = None
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
            _reachable[url] = f"no PostgreSQL server answers at {redact(url)} ({type(exc).__name__}: {exc}); " \
                              f"set {ENV} to run the PostgreSQL half"
    return _reachable[url]


async def create_database(admin: str) -> tuple[str, str]:
    """(name, url) of a new, empty database on the server of `admin`."""
    import asyncpg

    name = f"chantbot_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin.rpartition("/")
    return name, f"{base}/{name}"


async def drop_database(admin: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class _Factory:
    """Creates fresh databases ahead, in a thread of its own (CREATE DATABASE takes about half a second),
    and drops used ones there too."""

    AHEAD = 6

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.ready: queue.Queue[tuple[str, str] | BaseException] = queue.Queue()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-databases", daemon=True)
        self.thread.start()
        self.pending: list[concurrent.futures.Future] = []
        for _ in range(self.AHEAD):
            self._make()

    def _make(self) -> None:
        async def make() -> None:
            try:
                self.ready.put(await create_database(self.admin))
            except BaseException as exc:  # noqa: BLE001 - handed to the test that waits for it
                self.ready.put(exc)

        self.pending.append(asyncio.run_coroutine_threadsafe(make(), self.loop))

    def take(self) -> tuple[str, str]:
        self._make()
        item = self.ready.get(timeout=60)
        if isinstance(item, BaseException):
            raise item
        return item

    def give_back(self, name: str) -> None:
        self.pending.append(asyncio.run_coroutine_threadsafe(drop_database(self.admin, name), self.loop))

    def close(self) -> None:
        concurrent.futures.wait(self.pending, timeout=60)
        while not self.ready.empty():
            item = self.ready.get()
            if not isinstance(item, BaseException):
                asyncio.run_coroutine_threadsafe(drop_database(self.admin, item[0]), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="session")
def _databases() -> Iterator[Callable[[], "_Factory | str"]]:
    made: list[_Factory] = []

    def factory() -> "_Factory | str":
        """The factory, or why PostgreSQL tests skip."""
        if not made:
            why = asyncio.run(_why_unreachable(admin_url()))
            if why:
                return why
            made.append(_Factory(admin_url()))
        return made[0]

    yield factory
    for f in made:
        f.close()


def _fresh(factory: Callable[[], "_Factory | str"]) -> Iterator[str]:
    made = factory()
    if isinstance(made, str):
        pytest.skip(made)
    name, url = made.take()
    try:
        yield url
    finally:
        made.give_back(name)


@pytest.fixture
def postgres_url(_databases: Callable[[], "_Factory | str"]) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (skips when no server answers)."""
    yield from _fresh(_databases)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 _databases: Callable[[], "_Factory | str"]) -> Iterator[str]:
    """A fresh database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from _fresh(_databases)


async def opened(url: str, clock: Callable[[], float]):
    store = open_store(url, clock=clock, pool_size=4)
    await store.open()
    return store

"""Order stores for tests that must hold for every store: the embedded SQLite file and
PostgreSQL (the session's server, a schema of its own per test).

``backend`` is parameterised over both; ``backend.store()`` opens one more store on the same
storage (a second replica on the same database, a second process on the same file), and
``backend.run(main)`` runs ``main()`` on a fresh event loop and closes every store it opened.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from mt5gate.orders.journal import SqliteJournal
from mt5gate.orders.sqlite import SqliteStore
from mt5gate.orders.store import AccountBlock, FleetRegistry, OrderStore

T = TypeVar("T")


class Clock:
    """A store's wall clock, moved by hand (leases and heartbeats expire by it)."""

    def __init__(self, now_ms: int = 1_796_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class Store(OrderStore, FleetRegistry, Protocol):
    """What both stores give: the order store, the fleet registry, an operator's acknowledge."""

    async def acknowledge(self, login: int, note: str) -> AccountBlock | None: ...


class Backend:
    """Opens stores of one kind on one storage, and closes them all."""

    def __init__(self, kind: str, tmp_path: Path, postgres_url: str) -> None:
        self.kind = kind
        self._path = tmp_path / "orders.db"
        self._url = postgres_url
        self.schema = "t_" + uuid.uuid4().hex[:16]
        self._stores: list[Any] = []
        self._journals: list[SqliteJournal] = []

    def store(self, clock: Callable[[], int] | None = None) -> Store:
        """Another store on the same storage (the store's own clock unless ``clock``)."""
        made: Any
        if self.kind == "sqlite":
            options: dict[str, Any] = {} if clock is None else {"clock_ms": clock}
            journal = SqliteJournal(self._path, **options)
            self._journals.append(journal)
            made = SqliteStore(journal, name=f"t{len(self._stores)}")
        else:
            from mt5gate.orders.postgres import PostgresStore

            made = PostgresStore(self._url, schema=self.schema, clock_ms=clock)
        self._stores.append(made)
        return made  # type: ignore[no-any-return]

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """``main()`` on a fresh loop; every store opened is closed however it ends."""

        async def wrapped() -> T:
            try:
                return await main()
            finally:
                for store in self._stores:
                    await store.close()
                self._stores.clear()

        return asyncio.run(wrapped())

    def close(self) -> None:
        for journal in self._journals:
            journal.close()


def kinds_of(events: Collection[Any]) -> list[Any]:
    """The kinds of a list of journal events."""
    return [event.kind for event in events]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each store kind in turn (PostgreSQL's server starts on first use)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    made = Backend(request.param, tmp_path, url)
    yield made
    made.close()

"""The store a service's accounts share (``[store]``): one PostgreSQL database for every
replica of a fleet, holding the journals, idempotency keys, client ids, leases and the fleet
registry. Without ``[store]`` each account keeps its own SQLite file and this module is idle.

The PostgreSQL driver is imported only here and only when a store is configured, so a service
without one never needs it (``pip install "mt5gate[fleet]"`` adds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from mt5gate.orders.sqlite import SqliteStore
from mt5gate.orders.store import FleetRegistry, OrderStore
from mt5gate.service.config import ConfigError, ServiceSettings

__all__ = ["SharedStore", "open_store"]


class SharedStore(OrderStore, FleetRegistry, Protocol):
    """A store that every account and replica can share: orders and the fleet registry."""


def open_store(settings: ServiceSettings, env: Mapping[str, str]) -> SharedStore | None:
    """The configured shared store (it connects on first use), or ``None`` without
    ``[store]``. ``ConfigError`` when its URL cannot be read or its driver is missing."""
    if settings.store is None:
        return None
    dsn = settings.store.dsn(env)
    parts = urlsplit(dsn.get_secret_value())
    if parts.scheme == "sqlite":
        path = settings.data_dir / parts.path[1:]
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return SqliteStore(path, name="mt5gate")
    try:
        from mt5gate.orders.postgres import PostgresStore
    except ImportError as missing:  # pragma: no cover - the dev extra installs the driver
        raise ConfigError(
            f"[store]: the PostgreSQL driver is not installed ({missing.name}); "
            'pip install "mt5gate[fleet]"'
        ) from None
    store: SharedStore = PostgresStore(
        dsn.get_secret_value(), schema=settings.store.pg_schema, name=f"mt5gate {settings.replica}"
    )
    return store

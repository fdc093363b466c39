"""ObserverGroup: every hook reaches every observer, and a service session logs its breaker
transitions while its metrics still count them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from mt5gate.metrics import Metrics
from mt5gate.service.config import default_settings
from mt5gate.service.gateway import session_for
from mt5gate.session.observer import ObserverGroup, SessionObserver


class Recorder(SessionObserver):
    def __init__(self) -> None:
        self.seen: list[tuple[object, ...]] = []

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self.seen.append(("call", function, outcome))

    def state_changed(self, change: object) -> None:  # type: ignore[override]
        self.seen.append(("state", change))

    def breaker_changed(self, transition: object) -> None:  # type: ignore[override]
        self.seen.append(("breaker", transition))

    def reconnect_attempted(self, attempt: int, ok: bool, error: str | None) -> None:
        self.seen.append(("reconnect", attempt, ok, error))

    def stream_dropped(self, stream: str, dropped: int) -> None:
        self.seen.append(("dropped", stream, dropped))

    def order_event(self, kind: str, retcode: int | None) -> None:
        self.seen.append(("order", kind, retcode))

    def journal_written(self, operation: str, duration_s: float) -> None:
        self.seen.append(("journal", operation))


def test_every_hook_reaches_every_observer_in_order() -> None:
    first, second = Recorder(), Recorder()
    group = ObserverGroup(first, second)
    group.call_finished("symbol_info_tick", "ok", 0.001)
    group.state_changed("s")  # type: ignore[arg-type]
    group.breaker_changed("b")  # type: ignore[arg-type]
    group.reconnect_attempted(2, False, "MT5ConnectionError")
    group.stream_dropped("ticks", 3)
    group.order_event("INTENT", None)
    group.journal_written("record", 0.002)
    assert first.seen == second.seen
    assert [entry[0] for entry in first.seen] == [
        "call", "state", "breaker", "reconnect", "dropped", "order", "journal"]  # fmt: skip


def test_a_service_session_logs_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = default_settings().model_copy(update={"data_dir": tmp_path})
    metrics = Metrics()
    session = session_for(settings.default_account, settings, {}, observer=metrics.observer("demo"))
    caplog.set_level(logging.INFO, logger="mt5gate.session.demo")
    try:
        session.breaker.force_open("test")
        session.breaker.release()
    finally:
        asyncio.run(session.close())
        session.journal.close()
    logged = [r.getMessage() for r in caplog.records if r.name == "mt5gate.session.demo"]
    assert any("forced_open" in line.lower() or "forced open" in line.lower() for line in logged)
    body = metrics.render()[0].decode()
    assert 'mt5gate_breaker_transitions_total{account="demo"' in body

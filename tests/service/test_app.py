"""The service in process: the FastAPI app over a Gateway of simulated accounts, called through
httpx's ASGI transport (the same app the server process runs; test_http.py covers the process).

Here the error paths are driven from the inside: an open breaker, a lost reply, a halted
account, a broken journal, a bug.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from mt5gate.errors import (
    MT5CircuitBreakerOpen,
    MT5DataError,
    MT5OrderOutcomeUnknown,
    MT5TradeRetryable,
    MT5ValidationError,
)
from mt5gate.orders.journal import JournalError
from mt5gate.service import cli
from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key, verify
from mt5gate.service.config import ApiKeySettings, ConfigError, ServiceSettings, default_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.problems import problem_for
from mt5gate.terminal.base import Terminal
from tests.service.conftest import free_port, open_market_terminal, until_ready

T = TypeVar("T")
KEY = "mg_app-test-key-0123456789abcdef"
ACCOUNT = "/v1/accounts/demo"


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]


@asynccontextmanager
async def serving(
    tmp_path: Path, *, terminal: Terminal | None = None, **update: Any
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A started gateway (demo account connected, on ``terminal`` if given, else its simulator
    pinned to a weekday morning so that orders meet an open market on any day) and a client for
    its app; ``update`` changes the default settings."""
    keys = (ApiKeySettings(name="all", hash=hash_api_key(KEY),
                           scopes=frozenset({"read", "trade", "admin"})),)  # fmt: skip
    settings = default_settings().model_copy(
        update={"data_dir": tmp_path, "api_keys": keys, **update}
    )
    gateway = Gateway.build(settings, os.environ, terminal_for=lambda account: (
        terminal if terminal is not None else open_market_terminal(account)))  # fmt: skip
    app = create_app(gateway)
    await gateway.start()
    try:
        await until_ready(gateway)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mt5gate.test", headers={"X-API-Key": KEY}
        ) as client:
            yield gateway, client
    finally:
        await gateway.stop()


def test_reads_and_an_order_in_process(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as (gateway, http):
            assert (await http.get("/v1/accounts")).json()["accounts"][0]["ready"] is True
            assert (await http.get(ACCOUNT + "/symbols/EURUSD/tick")).status_code == 200
            placed = await http.post(ACCOUNT + "/orders",
                                     json={"symbol": "EURUSD", "side": "buy", "volume": 0.1},
                                     headers={"Idempotency-Key": "in-process"})  # fmt: skip
            assert placed.status_code == 201, placed.text
            health = await http.get("/v1/health")
            assert health.headers["content-type"] == "application/health+json"
            metrics = await http.get("/metrics")
            assert b"mt5gate_order_events_total" in metrics.content
            assert gateway.simulated

    run(main)


@pytest.mark.parametrize(
    ("error", "status", "header"),
    [
        (MT5CircuitBreakerOpen(retry_after_s=2.5, state="open"), 503, "3"),
        (MT5TradeRetryable("requote", retcode=10004), 409, None),
        (MT5DataError("no such symbol"), 404, None),
        (JournalError("disk gone"), 503, None),
        (RuntimeError("a bug with a password=hunter2"), 500, None),
    ],
)
def test_errors_become_problems(
    tmp_path: Path, error: Exception, status: int, header: str | None
) -> None:
    async def main() -> tuple[httpx.Response, str]:
        async with serving(tmp_path) as (gateway, http):
            session = gateway.account("demo").session

            async def failing(*_: Any, **__: Any) -> Any:
                raise error

            session.get_price = failing  # type: ignore[method-assign]
            answer = await http.get(ACCOUNT + "/symbols/EURUSD/tick")
            return answer, gateway.metrics.render()[0].decode()

    answer, metrics = run(main)
    # the request is in the metrics, under its route template and its status, 500 included
    assert f'route="/v1/accounts/{{account}}/symbols/{{symbol}}/tick",status="{status}"' in metrics
    assert (answer.status_code, answer.headers["content-type"]) == (
        status,
        "application/problem+json",
    )
    assert answer.headers.get("retry-after") == header
    assert "hunter2" not in answer.text
    assert "Traceback" not in answer.text


def test_the_problem_table() -> None:
    assert problem_for(MT5ValidationError(field="volume", rule="> 0")).extensions["field"] == (
        "volume"
    )
    forced = problem_for(MT5CircuitBreakerOpen(retry_after_s=float("inf"), state="forced_open"))
    assert (forced.status, forced.headers) == (503, {})
    unknown = problem_for(MT5OrderOutcomeUnknown("lost", retcode=None, client_id=9))
    assert (unknown.extensions["client_id"], unknown.extensions["outcome"]) == (9, "unknown")


def test_streamed_bodies_over_the_limit_are_refused(tmp_path: Path) -> None:
    async def main() -> httpx.Response:
        async with serving(tmp_path, max_body_bytes=100) as (_, http):

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(10):
                    yield b"x" * 50

            return await http.post(ACCOUNT + "/orders", content=chunks(),
                                   headers={"content-type": "application/json"})  # fmt: skip

    answer = run(main)
    assert answer.status_code == 413


def test_cors_is_off_unless_configured(tmp_path: Path) -> None:
    async def main(origins: tuple[str, ...]) -> httpx.Response:
        async with serving(tmp_path, cors_origins=origins) as (_, http):
            return await http.options(
                "/v1/accounts",
                headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "GET"},
            )

    assert "access-control-allow-origin" not in asyncio.run(main(())).headers
    allowed = asyncio.run(main(("https://ui.example",)))
    assert allowed.headers["access-control-allow-origin"] == "https://ui.example"


# ---------------------------------------------------------------------- the command


def test_new_key_prints_a_key_and_its_config_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--new-key", "ops", "--scopes", "read,admin"]) == 0
    out = capsys.readouterr().out
    key = out.split("keep it secret): ")[1].split()[0]
    stored = out.split('hash = "')[1].split('"')[0]
    assert verify(key, stored)
    assert '"admin"' in out


def test_a_local_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = default_settings().model_copy(update={"data_dir": tmp_path})
    first, path = cli.local_key(settings)
    assert path is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, _ = cli.local_key(settings)
    key = path.read_text().strip()
    assert verify(key, first.api_keys[0].hash)
    assert verify(key, again.api_keys[0].hash)
    configured, none = cli.local_key(first)
    assert (configured, none) == (first, None)


def test_replicas_starting_together_on_one_data_directory_share_one_local_key(
    tmp_path: Path,
) -> None:
    """Several ``mt5gate serve`` started at once on one data directory (a fleet on one host):
    the first makes the key, the others read it, none fails or gets a key of its own."""
    import threading

    def start(settings: ServiceSettings, go: threading.Barrier, found: list[str]) -> None:
        go.wait()
        made, _ = cli.local_key(settings)
        found.append(made.api_keys[0].hash)

    for round_ in range(20):
        settings = default_settings().model_copy(update={"data_dir": tmp_path / str(round_)})
        found: list[str] = []
        go = threading.Barrier(4)
        threads = [threading.Thread(target=start, args=(settings, go, found)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        key = (tmp_path / str(round_) / "api-key").read_text().strip()
        assert len(found) == 4
        assert all(verify(key, hashed) for hashed in found)


def test_an_empty_local_key_file_is_refused_not_used(tmp_path: Path) -> None:
    settings = default_settings().model_copy(update={"data_dir": tmp_path})
    (tmp_path / "api-key").write_text("\n")
    (tmp_path / "api-key").chmod(0o600)
    with pytest.raises(ValueError, match="is empty; delete it"):
        cli.local_key(settings, wait_s=0.05)


def test_command_line_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.build_parser().parse_args(["--host", "127.0.0.2", "--port", "9001"])
    settings = cli.settings_from(args, {"MT5GATE_DATA_DIR": str(tmp_path)})
    assert (settings.host, settings.port) == ("127.0.0.2", 9001)
    with pytest.raises(ConfigError):
        cli.settings_from(cli.build_parser().parse_args(["--port", "70000"]), {})
    broken = tmp_path / "broken.toml"
    broken.write_text("[[accounts]]\nname = 'x'\nterminal = 'ftp://nope'\n")
    assert cli.main(["--config", str(broken)]) == 2
    assert "terminal" in capsys.readouterr().err


def test_unknown_accounts_are_not_found(tmp_path: Path) -> None:
    settings = default_settings().model_copy(update={"data_dir": tmp_path})
    gateway = Gateway.build(settings, os.environ)
    with pytest.raises(MT5DataError) as caught:
        gateway.account("nope")
    assert "demo" in str(caught.value)
    run(gateway.stop)
    assert json.dumps(sorted(gateway.accounts)) == '["demo"]'


def test_an_unusable_journal_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad-journal.toml"
    (tmp_path / "a-file").write_text("not a folder")  # a journal cannot live below a file
    config.write_text(
        f'[service]\ndata_dir = "{tmp_path}"\n\n[[accounts]]\nname = "demo"\nterminal = "sim"\n'
        'login = 5001\nserver = "MetaQuotes-Demo"\npassword_env = "P"\n'
        f'journal = "{tmp_path}/a-file/orders.db"\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("P", "sim-pass-5001")
        # on a free port: the port is bound before the journal is opened
        assert cli.main(["--config", str(config), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "cannot open order journal" in err
    assert "Traceback" not in err

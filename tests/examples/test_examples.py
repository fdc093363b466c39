"""``examples/*.py`` run as-is on the simulator, as real processes, and do what they say.

Scripts run to completion (exit 0, their output checked); the servers (the FastAPI app, the
metrics exporter) and the Telegram bot run in the background and are driven over HTTP (the bot
through the fake Telegram Bot API server), then stopped with SIGTERM: they must shut down
cleanly (session closed; exit code 0, or uvicorn's re-raised SIGTERM after its graceful
shutdown). README.md's Python blocks run too.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mt5gate.orders.journal import EventKind, SqliteJournal
from tests.bot.fake_telegram import FakeTelegram
from tests.examples.helpers import (
    EXAMPLES,
    ROOT,
    Running,
    example_env,
    free_port,
    run_example,
    wait_http,
)

Start = Callable[..., Running]

EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_every_example_is_tested_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    assert EXAMPLE_FILES, "no examples found"
    untested = [name for name in EXAMPLE_FILES if f'"{name}"' not in source]
    assert untested == []


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_every_example_documents_how_to_run_it(name: str) -> None:
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    assert source.startswith('"""'), f"{name} has no module docstring"
    docstring = source.split('"""')[1]
    assert f"python examples/{name}" in docstring
    assert "simulated" in docstring.lower()


# ----------------------------------------------------------------------------- scripts


def test_quickstart(tmp_path: Path) -> None:
    done = run_example("quickstart.py", cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SIMULATED terminal" in out
    assert "account: 5001 on MetaQuotes-Demo, balance 10000.00 USD" in out
    quoted = re.search(r"price: EURUSD bid ([\d.]+) ask ([\d.]+)", out)
    assert quoted is not None, out
    bid, ask = map(float, quoted.groups())
    assert 0 < bid < ask
    assert "health: pass" in out
    assert re.search(r"order: BUY 0.01 EURUSD at [\d.]+ -> ticket \d+ \(retcode 10009", out)
    assert "same key again" in out
    assert "(same order: True)" in out
    assert out.index("open positions: 1") < out.index("closed: ticket")
    assert out.rstrip().endswith("open positions: 0\nsession closed")


def test_official_style_on_a_weekday_morning(tmp_path: Path) -> None:
    done = run_example("official_style.py", "--virtual-clock", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MetaTrader5 is the SIMULATED terminal" in done.stderr
    out = done.stdout
    assert "account: 5001 MetaQuotes-Demo balance 10000.0 USD" in out
    assert re.search(r"tick: EURUSD bid [\d.]+ ask [\d.]+", out)
    assert "rates: 100 H1 bars, fields ('time', 'open', 'high', 'low', 'close'" in out
    assert re.search(r"order: BUY 0.01 EURUSD at [\d.]+, order \d+, deal \d+", out)
    assert "positions: 1\n" in out
    assert "positions left: 0" in out
    assert out.rstrip().endswith("shutdown")


def test_official_style_on_the_wall_clock(tmp_path: Path) -> None:
    """As the README runs it: real time, so at weekends the market is closed (and said so)."""
    done = run_example("official_style.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MetaTrader5 is the SIMULATED terminal" in done.stderr
    assert "rates: 100 H1 bars" in done.stdout
    executed = "positions left: 0" in done.stdout
    closed = "order not executed: retcode 10018 (Market closed)" in done.stdout
    assert executed != closed, done.stdout


def test_faults_in_tests_reconciles_one_position(tmp_path: Path) -> None:
    kept = tmp_path / "kept-orders.db"
    done = run_example("faults_in_tests.py", "--keep-journal", str(kept), cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SIMULATED terminal" in out
    # part 1: the raw terminal loses the reply, and a blind resend duplicates the order
    assert "order_send() -> None" in out
    assert "IPC recv failed" in out
    assert "positions at the broker anyway: 1" in out
    assert "now 2 positions (a duplicate)" in out
    # part 2: the session journals, reconciles and returns one position
    assert "comment 'reconciled'" in out
    steps = ["1. INTENT", "2. SENT", "3. UNKNOWN", "4. RECONCILED_PRESENT"]
    found = [out.index(step) for step in steps]
    assert found == sorted(found)
    assert "(same order: True)" in out
    assert "positions: 1 (exactly one)" in out
    assert "unresolved orders: []" in out
    # the journal on disk says the same
    with SqliteJournal(kept) as journal:
        (order,) = journal.summaries(5001)
        kinds = [event.kind for event in journal.history(5001, order.client_id)]
    assert kinds == [
        EventKind.INTENT,
        EventKind.SENT,
        EventKind.UNKNOWN,
        EventKind.RECONCILED_PRESENT,
    ]


# ------------------------------------------------------------------------------ FastAPI


@pytest.fixture
def fastapi_app(started: Start, tmp_path: Path) -> tuple[Running, str]:
    port = free_port()
    running = started(
        "fastapi_app.py",
        "--port",
        str(port),
        "--clock",
        "virtual",
        "--journal",
        str(tmp_path / "orders.db"),
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(running, base + "/account", lambda r: r.status_code == 200)
    return running, base


def order(
    client: httpx.Client, key: str | None, volume: float = 0.01, **body: object
) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    payload = {"symbol": "EURUSD", "side": "buy", "volume": volume, **body}
    return client.post("/orders", json=payload, headers=headers)


def test_fastapi_app_serves_one_session(fastapi_app: tuple[Running, str]) -> None:
    running, base = fastapi_app
    with httpx.Client(base_url=base, timeout=15.0) as client:
        price = client.get("/price/EURUSD")
        assert price.status_code == 200
        tick = price.json()
        assert tick["symbol"] == "EURUSD"
        assert isinstance(tick["bid"], float)
        assert isinstance(tick["ask"], float)
        assert 0 < tick["bid"] < tick["ask"]

        account = client.get("/account").json()
        assert (account["login"], account["currency"], account["hedging"]) == (5001, "USD", True)

        # the same Idempotency-Key twice: one order
        first, second = order(client, "order-1"), order(client, "order-1")
        assert (first.status_code, second.status_code) == (201, 201), first.text + second.text
        assert first.json()["retcode"] == 10009
        assert second.json()["order"] == first.json()["order"]
        assert second.json()["client_id"] == first.json()["client_id"]
        positions = client.get("/positions").json()
        assert [p["ticket"] for p in positions] == [first.json()["order"]]

        # the same key with another body: refused, nothing sent
        reused = order(client, "order-1", volume=0.02)
        assert reused.status_code == 422
        assert reused.json()["error"] == "MT5IdempotencyError"
        # invalid input, before the terminal: 422 with the field
        off_step = order(client, "order-2", volume=0.015)
        assert off_step.status_code == 422
        assert (off_step.json()["error"], off_step.json()["field"]) == (
            "MT5ValidationError",
            "volume",
        )
        assert order(client, None).status_code == 422  # Idempotency-Key is required
        assert order(client, "order-3", side="up").status_code == 422  # the body's schema
        # the trade server says no: 422 with the retcode, as mt5gate serve answers it
        no_money = order(client, "order-4", volume=50)
        assert no_money.status_code == 422
        assert (no_money.json()["error"], no_money.json()["retcode"]) == ("MT5TradeRejected", 10019)
        # a closed market (stocks open at 16:30 server time) is a state, not a bad request: 409
        closed = order(client, "order-5", volume=1.0, symbol="AAPL")
        assert (closed.status_code, closed.json()["retcode"]) == (409, 10018), closed.text
        unknown = client.get("/price/NOSUCH")
        assert (unknown.status_code, unknown.json()["error"]) == (404, "MT5NotFoundError")
        assert unknown.json()["field"] == "symbol"
        assert len(client.get("/positions").json()) == 1

        health = client.get("/health")
        assert health.status_code == 200
        assert health.headers["content-type"].startswith("application/health+json")
        body = health.json()
        assert body["status"] == "pass"
        assert body["checks"]["session:state"][0]["observedValue"] == "connected"
        assert body["checks"]["account:login"][0]["observedValue"] == 5001

    code, output = running.stop()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so that the process
    # ends "killed by SIGTERM" as supervisors expect (as `mt5gate serve` does): -15, or 0.
    assert code in (0, -signal.SIGTERM), output
    assert "SIMULATED terminal" in output
    assert "Application shutdown complete" in output
    assert output.index("closing the session") < output.index("session closed")


# ------------------------------------------------------------------------- Telegram bot

TOKEN = "7000001:AAH-example-bot-token-do-not-leak-42"
CHAT, STRANGER = 4242, 999


def bot_env(fake: FakeTelegram, token: str = TOKEN) -> dict[str, str]:
    return example_env(
        PRICE_BOT_TOKEN=token, PRICE_BOT_API_URL=fake.base_url, PRICE_BOT_CHATS=f"{CHAT}, 31337"
    )


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as server:
        yield server


def say(fake: FakeTelegram, text: str, user_id: int = CHAT) -> str:
    """Write ``text`` to the bot and return its answer."""
    mark = fake.mark()
    fake.send_text(text, user_id=user_id)
    return fake.wait_message(user_id, since=mark, timeout=15).text


def test_price_alert_bot_alerts_once(fake: FakeTelegram, started: Start) -> None:
    bot = started(
        "price_alert_bot.py", "--interval", "0.1", "--poll-timeout", "1", env=bot_env(fake)
    )
    fake.wait_call("getUpdates", timeout=30)

    quote = say(fake, "/price eurusd")
    quoted = re.fullmatch(r"EURUSD bid ([\d.]+) ask [\d.]+", quote)
    assert quoted is not None, quote
    bid = float(quoted.group(1))
    above = round(bid - 0.005, 5)
    mark = fake.mark()
    assert say(fake, f"/alert EURUSD above {above}").startswith(f"Alert #1 EURUSD above {above:g}")
    alert = fake.wait_message(CHAT, "(alert #1)", since=mark, timeout=15)
    assert alert.text.startswith("🔔 EURUSD bid ")
    assert f"is above {above:g}" in alert.text

    assert say(fake, "/alert EURUSD below 0.5").startswith("Alert #2 EURUSD below 0.5 set")
    fake.no_call("sendMessage", chat_id=CHAT, within_s=1.0)  # ~10 checks: nothing more
    fired = [m for m in fake.messages(CHAT) if "(alert #1)" in m.text]
    assert len(fired) == 1
    assert say(fake, "/alerts") == "#2 EURUSD below 0.5"
    assert say(fake, "/cancel 2") == "Alert #2 EURUSD below 0.5 cancelled."
    assert say(fake, "/alerts") == "No active alerts."
    assert say(fake, "/alert EURUSD sideways 1").startswith("Usage: /alert")
    assert say(fake, "/alert NOSUCH above 1") == "Unknown symbol 'NOSUCH'"

    # a chat that is not on the list: its id once, then silence
    assert "Your chat id is 999" in say(fake, "/alert EURUSD above 0.1", user_id=STRANGER)
    fake.send_text("/alerts", user_id=STRANGER)
    fake.no_call("sendMessage", chat_id=STRANGER, within_s=0.5)

    code, output = bot.stop()
    assert code == 0, output
    assert "SIMULATED terminal" in output
    assert "session closed" in output
    assert TOKEN not in output
    assert TOKEN.split(":")[1] not in output


def test_price_alert_bot_keeps_a_refused_token_out_of_its_output(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    wrong = "7000001:AAH-a-wrong-token-that-must-not-leak"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "price_alert_bot.py")],
        cwd=tmp_path,
        env=bot_env(fake, token=wrong),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Telegram refused the token (InvalidToken)" in output
    assert wrong.split(":")[1] not in output


def test_price_alert_bot_stops_after_its_duration(fake: FakeTelegram, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "price_alert_bot.py"),
            "--duration",
            "1",
            "--poll-timeout",
            "1",
            "--clock",
            "virtual",
        ],
        cwd=tmp_path,
        env=bot_env(fake),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert output.index("Application started") < output.index("session closed")
    assert TOKEN.split(":")[1] not in output


def test_price_alert_bot_needs_a_token(tmp_path: Path) -> None:
    done = run_example("price_alert_bot.py", cwd=tmp_path)
    assert done.returncode == 2
    assert "PRICE_BOT_TOKEN" in done.stderr


# ---------------------------------------------------------------------------- exporter


def scrape(base: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """The exposition as {family: [(sample name, labels, value)]}."""
    response = httpx.get(base + "/metrics", timeout=5.0)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(response.text)
    }


def value(
    found: dict[str, list[tuple[str, dict[str, str], float]]], sample: str, **labels: str
) -> float:
    family = re.sub(r"_(bucket|count|sum|total)$", "", sample)
    for name, have, number in found.get(family, []):
        if name == sample and all(have.get(k) == v for k, v in labels.items()):
            return number
    raise AssertionError(f"no sample {sample}{labels}")


def test_metrics_exporter_serves_health_and_latency(started: Start) -> None:
    port = free_port()
    exporter = started(
        "metrics_exporter.py",
        "--port",
        str(port),
        "--interval",
        "0.2",
        "--duration",
        "60",
        "--demo-order",
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(
        exporter, base + "/metrics", lambda r: 'mt5gate_health_status{account="demo"}' in r.text
    )
    text = httpx.get(base + "/metrics", timeout=5.0).text
    assert 'mt5gate_health_status{account="demo"}' in text
    assert "mt5gate_terminal_call_duration_seconds" in text
    found = scrape(base)

    status = value(found, "mt5gate_health_status", account="demo")
    assert status == 0, exporter.output()  # pass: the simulated terminal is healthy
    calls = {"account": "demo", "function": "symbol_info_tick", "outcome": "ok"}
    count = value(found, "mt5gate_terminal_call_duration_seconds_count", **calls)
    total = value(found, "mt5gate_terminal_call_duration_seconds_sum", **calls)
    assert count >= 1
    assert 0 < total / count < 1.0
    buckets = [
        number
        for name, labels, number in found["mt5gate_terminal_call_duration_seconds"]
        if name.endswith("_bucket") and all(labels.get(k) == x for k, x in calls.items())
    ]
    assert buckets == sorted(buckets)
    assert buckets[-1] == count
    assert value(found, "mt5gate_session_state", account="demo", state="connected") == 1
    assert value(found, "mt5gate_breaker_state", account="demo", state="closed") == 1
    assert value(found, "mt5gate_unresolved_orders", account="demo") == 0
    assert 0 <= value(found, "mt5gate_terminal_ping_seconds", account="demo") < 1
    intents = value(found, "mt5gate_order_events_total", account="demo", kind="INTENT", retcode="")
    assert intents >= 1  # the demo order, executed or refused (market closed at weekends)

    assert httpx.get(base + "/other", timeout=5.0).status_code == 404

    code, output = exporter.stop()
    assert code == 0, output
    assert "SIMULATED terminal" in output
    assert re.search(r"symbol_info_tick +ok +n=\d+ +mean +[\d.]+ ms +p99 ~ *[\d.]+ ms", output)
    assert output.rstrip().endswith("stopped")


def test_metrics_exporter_stops_after_its_duration(tmp_path: Path) -> None:
    done = run_example(
        "metrics_exporter.py", "--port", "0", "--interval", "0.2", "--duration", "0.5", cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "serving http://127.0.0.1:" in done.stdout
    assert "health pass" in done.stdout
    assert done.stdout.rstrip().endswith("stopped")


# ------------------------------------------------------------------------------- README

#: README blocks that are not runnable as written, and what covers them instead.
README_PLACEHOLDER_BLOCKS = {
    "terminal.order_send({...})": "faults_in_tests.py",
}


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    blocks = readme_blocks()
    ran = 0
    for block in blocks:
        markers = [m for m in README_PLACEHOLDER_BLOCKS if m in block]
        if markers:
            continue
        done = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            env=example_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"README block failed:\n{block}\n{done.stdout}{done.stderr}"
        ran += 1
    assert ran >= 2


@pytest.mark.parametrize(("marker", "example"), README_PLACEHOLDER_BLOCKS.items())
def test_readme_placeholder_blocks_are_covered_by_an_example(marker: str, example: str) -> None:
    """Each skipped block is skipped by name, and its lines (but the placeholder) are in the
    example that runs instead."""
    holding = [block for block in readme_blocks() if marker in block]
    assert len(holding) == 1, f"{marker!r} should be in exactly one README block"
    source = (EXAMPLES / example).read_text(encoding="utf-8")
    for line in holding[0].splitlines():
        code = line.split("#", 1)[0].strip()
        if code and "..." not in code:
            assert code in source, f"{example} does not contain {code!r}"

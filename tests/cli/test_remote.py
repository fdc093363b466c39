"""One owner per account, from the shell (issue 15, B): an ``mt5gate`` command on an account that
``mt5gate serve`` owns goes through the service's HTTP API; on an account that another process
owns it names the owner and stops.

Real processes throughout: the command runs in this process (as a user runs it), the service is
a real ``mt5gate serve`` on the same data directory (its simulated broker on the machine's clock:
BTCUSD trades every day), and for an unknown order outcome a real ``mt5gate bridge`` serves the
service a simulator whose trade-server link drops on ``order_send``. Leases of other owners are
written into the account's real journal.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from mt5gate.cli.failures import CommandError, Exit
from mt5gate.cli.owner import ApiKey, OwningService
from mt5gate.cli.port import AccountPort
from mt5gate.cli.remote import RemoteAccount
from mt5gate.cli.running import _on_own_session
from mt5gate.cli.target import AccountChoice, Target, resolve_target
from mt5gate.cli.ui import VIA_SERVICE, Options, Ui
from mt5gate.errors import (
    MT5ConnectionError,
    MT5Error,
    MT5OrderOutcomeUnknown,
    MT5ValidationError,
)
from mt5gate.health import Status
from mt5gate.models import OrderRequest, Side
from mt5gate.orders.journal import SqliteJournal
from tests.bridge.conftest import TOKEN, BridgeProcess
from tests.cli.conftest import BANNER, SYMBOL, Cli, assert_error, explain, flat, free_port
from tests.service.conftest import Served, start_service

LOGIN = 5001
#: A key nothing prints by chance: finding it in any output is a leak.
WRONG_KEY = "Walrus-Pelican-0042-not-the-key"


def journal_of(data_dir: Path) -> Path:
    """The demo account's order journal (the service's and the commands')."""
    return data_dir / "demo-orders.db"


def lease_info(data_dir: Path) -> dict[str, Any]:
    """What the demo account's lease says of its holder, read as ``mt5gate journal`` reads."""
    with SqliteJournal(journal_of(data_dir), readonly=True) as journal:
        lease = journal.lease(LOGIN)
    assert lease is not None
    return dict(lease.info)


def take_lease(data_dir: Path, info: dict[str, Any], owner: str = "other:owner") -> None:
    """Another owner takes the demo account for a minute (its pid is this process: alive)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    about = {"pid": os.getpid(), "host": socket.gethostname(), **info}
    with SqliteJournal(journal_of(data_dir)) as journal:
        journal.acquire(LOGIN, owner, 60.0, about)


def via(served: Served) -> str:
    return VIA_SERVICE.format(url=served.base, account="demo")


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``mt5gate serve`` for the module, on the machine's clock (as the commands are)."""
    served = start_service(tmp_path_factory.mktemp("remote") / "data", sim_start=None)
    yield served
    served.stop()


@pytest.fixture
def routed(cli: Cli, serve: Served, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The command on the service's data directory: every account command goes through it."""
    monkeypatch.setenv("MT5GATE_DATA_DIR", str(serve.data_dir))
    return Cli(cli.home, serve.data_dir)


# ---------------------------------------------------------------------------- through the service


def test_an_order_goes_through_the_service_once_per_key(routed: Cli, serve: Served) -> None:
    first = routed.run("order", "buy", SYMBOL, "0.01", "--yes", "--key", "remote-once", "--json")
    assert first.exit_code == 0, explain(first)
    assert via(serve) in flat(first.stderr)
    placed = json.loads(first.stdout)
    assert placed["retcode"] == 10009
    again = routed.json("order", "buy", SYMBOL, "0.01", "--yes", "--key", "remote-once")
    assert again == placed  # the first outcome; nothing was sent
    with serve.client() as http:
        seen = http.get("/v1/accounts/demo/positions").json()
        status = http.get("/v1/accounts/demo/requests/remote-once").json()
    assert [p["ticket"] for p in seen].count(placed["order"]) == 1
    shown = {p["ticket"]: p["volume"] for p in routed.positions()}
    assert shown == {p["ticket"]: p["volume"] for p in seen}  # the service's (prices move)
    assert (status["outcome"], status["result"]["order"]) == ("executed", placed["order"])
    journaled = [o for o in routed.json("journal", "list") if o["idempotency_key"] == "remote-once"]
    assert len(journaled) == 1  # in the service's journal, once
    info = lease_info(serve.data_dir)
    assert (info["kind"], info["pid"], info["url"]) == ("serve", serve.process.pid, serve.base)


def test_the_reads_go_through_the_service(routed: Cli, serve: Served) -> None:
    with serve.client() as http:
        account = http.get("/v1/accounts/demo").json()
        pending = http.get("/v1/accounts/demo/orders").json()
    shown = routed.json("account")
    assert (shown["login"], shown["balance"]) == (account["login"], account["balance"])
    assert [o["ticket"] for o in routed.json("orders")] == [o["ticket"] for o in pending]
    [price] = routed.json("price", SYMBOL)
    assert price["symbol"] == SYMBOL
    assert price["ask"] >= price["bid"] > 0
    deals = routed.json("history", "--from", "2d")
    assert any(d["comment"] == "Initial deposit" for d in deals)
    assert isinstance(routed.json("history", "--orders", "--from", "2d"), list)
    table = routed.ok("positions")
    assert via(serve) in flat(table.stderr)
    watched = routed.ok("watch", SYMBOL, "--count", "2", "--interval", "0.1", "--json")
    lines = [json.loads(line) for line in watched.stdout.splitlines()]
    assert lines
    assert {line["symbol"] for line in lines} == {SYMBOL}
    assert lease_info(serve.data_dir)["kind"] == "serve"  # the commands took nothing


def test_health_is_the_services_reading_with_its_exit_code(routed: Cli, serve: Served) -> None:
    result = routed.run("health", "--json")
    reading = json.loads(result.stdout)
    assert result.exit_code == {"pass": 0, "warn": 1, "fail": 2}[reading["status"]], explain(result)
    assert "session:state" in reading["checks"]
    assert "orders:ownership" in reading["checks"]  # the service's own lease, as it reads it
    assert via(serve) in flat(result.stderr)
    told = routed.run("health", SYMBOL)
    assert "are not read here" in flat(told.stderr)


def test_close_and_cancel_go_through_the_service(routed: Cli, serve: Served) -> None:
    ticket = routed.buy("0.01", "--key", "remote-to-close")["order"]
    closed = routed.json("close", str(ticket), "--yes", "--key", "remote-close")
    assert closed["retcode"] == 10009
    assert ticket not in [p["ticket"] for p in routed.positions()]
    assert routed.json("close", str(ticket), "--yes", "--key", "remote-close") == closed  # once
    limit = routed.json("order", "limit", "buy", SYMBOL, "0.01", "20000", "--yes")
    assert limit["order"] in [o["ticket"] for o in routed.json("orders")]
    cancelled = routed.json("cancel", str(limit["order"]), "--yes", "--key", "remote-cancel")
    assert cancelled["retcode"] == 10009
    assert limit["order"] not in [o["ticket"] for o in routed.json("orders")]
    again = routed.json("cancel", str(limit["order"]), "--yes", "--key", "remote-cancel")
    assert again == cancelled  # the first outcome of the key
    assert lease_info(serve.data_dir)["kind"] == "serve"


def test_a_service_that_takes_the_account_before_the_connect_is_gone_through(
    routed: Cli, serve: Served
) -> None:
    """The race: no owner at the look-up, the service's lease at the connect. The command's
    session is refused and closed, and the command turns to the service instead."""
    ui = Ui(Options())
    target = resolve_target(AccountChoice(), {"MT5GATE_DATA_DIR": str(serve.data_dir)})

    async def work(_: AccountPort, __: Ui, ___: Target) -> Exit:
        raise AssertionError("no work on a session that does not own the account")

    try:
        found = asyncio.run(_on_own_session(ui, target, work))
    finally:
        ui.close()
    assert isinstance(found, OwningService)
    assert found.url == serve.base
    assert lease_info(serve.data_dir)["pid"] == serve.process.pid


def test_a_refusal_through_the_service_has_the_exit_code_of_one_on_a_session(routed: Cli) -> None:
    assert_error(routed.run("price", "NOSUCH"), 3, "Not found")
    assert_error(routed.run("order", "buy", SYMBOL, "1000", "--yes"), 2, "Invalid request",
                 "volume")  # fmt: skip
    assert_error(routed.run("close", "99999999", "--yes"), 3, "no open position")


# ------------------------------------------------------------------------------------ the key


@pytest.fixture
def key_file_gone(serve: Served) -> Iterator[Path]:
    """The service's local key file moved away for one test (the service keeps its key)."""
    path = serve.data_dir / "api-key"
    aside = path.with_name("api-key.aside")
    path.rename(aside)
    try:
        yield path
    finally:
        aside.rename(path)


def test_without_the_key_file_the_key_comes_from_the_environment(
    routed: Cli, serve: Served, key_file_gone: Path
) -> None:
    missing = routed.run("account")
    assert_error(missing, 2, "no API key", str(key_file_gone), "$MT5GATE_API_KEY")
    assert "MT5GATE_API_KEY" in missing.stderr.split("hint:")[1]
    given = routed.json("account", env={"MT5GATE_API_KEY": serve.key})
    assert given["login"] == LOGIN
    wrong = routed.run("account", env={"MT5GATE_API_KEY": WRONG_KEY})
    assert_error(wrong, 2, "refused the API key in $MT5GATE_API_KEY")
    key_file_gone.write_text(WRONG_KEY + "\n")  # left from a run without configured keys
    stale = routed.run("account", env={"MT5GATE_API_KEY": serve.key})
    assert_error(stale, 2, f"refused the API key in {key_file_gone}")
    assert "delete it" in flat(stale.stderr)
    for result in (missing, wrong, stale):
        assert WRONG_KEY not in result.stdout + result.stderr
        assert serve.key not in result.stdout + result.stderr


def test_the_key_is_never_shown(routed: Cli, serve: Served) -> None:
    outputs = [routed.run(*args, "--debug") for args in (("account",), ("price", "NOSUCH"))]
    for result in outputs:
        assert serve.key not in result.stdout + result.stderr, explain(result)
    remote = RemoteAccount(serve.base, "demo", ApiKey(SecretStr(serve.key), "a test"))
    assert serve.key not in repr(remote)
    assert serve.key not in str(vars(remote))
    asyncio.run(remote.aclose())


# ----------------------------------------------------------------------------- other owners


@pytest.mark.parametrize("kind", ["cli", "bot", "session"])
@pytest.mark.parametrize(
    "command",
    [("positions",), ("order", "buy", SYMBOL, "0.01", "--yes"), ("health",), ("close", "1")],
    ids=["positions", "order", "health", "close"],
)
def test_an_account_another_process_owns_is_exit_3_naming_it(
    cli: Cli, kind: str, command: tuple[str, ...]
) -> None:
    take_lease(cli.data_dir, {"kind": kind})
    result = cli.run(*command)
    assert_error(result, 3, "is in use by", f"mt5gate {kind} (pid {os.getpid()}")
    assert "Try again when it is done" in result.stderr
    with SqliteJournal(journal_of(cli.data_dir), readonly=True) as journal:
        lease = journal.lease(LOGIN)
    assert lease is not None
    assert lease.owner == "other:owner"  # untouched
    assert not (cli.data_dir / "sim-demo.json").exists()  # no terminal was opened


def test_a_service_on_another_host_cannot_be_reached_through_loopback(cli: Cli) -> None:
    take_lease(cli.data_dir, {"kind": "serve", "url": "http://127.0.0.1:8000",
                              "host": "elsewhere.example"})  # fmt: skip
    assert_error(cli.run("positions"), 3, "is in use by mt5gate serve", "elsewhere.example")


def test_a_service_that_does_not_answer_is_named_by_its_url(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    take_lease(cli.data_dir, {"kind": "serve", "url": url})
    assert_error(cli.run("positions"), 2, "no API key", "$MT5GATE_API_KEY")
    keyed = {"MT5GATE_API_KEY": WRONG_KEY}
    down = cli.run("positions", env=keyed)
    assert_error(down, 3, f"cannot reach mt5gate serve at {url}")
    health = cli.run("health", "--json", env=keyed)
    assert health.exit_code == 2, explain(health)  # a failing reading, as for a terminal
    reading = json.loads(health.stdout)
    assert reading["checks"]["service:connection"][0]["status"] == "fail"
    for result in (down, health):
        assert WRONG_KEY not in result.stdout + result.stderr


def test_a_key_file_that_cannot_be_read_is_a_usage_error(cli: Cli) -> None:
    take_lease(cli.data_dir, {"kind": "serve", "url": f"http://127.0.0.1:{free_port()}"})
    (cli.data_dir / "api-key").mkdir()  # not a file
    assert_error(cli.run("account"), 2, "cannot read the API key of mt5gate serve")


def test_a_commands_own_lease_says_it_is_a_command(cli: Cli) -> None:
    cli.ok("account")
    assert lease_info(cli.data_dir)["kind"] == "cli"  # given up since, but still on record


# ------------------------------------------------------------------- answers that never came


class Dropping:
    """A loopback server that reads each request and closes the connection unanswered."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, name="dropping", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                if connection.recv(65536):
                    self.requests += 1

    def close(self) -> None:
        self.socket.close()
        self.thread.join(5)


def test_an_order_whose_answer_never_comes_is_unknown_and_a_read_is_unanswered() -> None:
    server = Dropping()
    remote = RemoteAccount(server.url, "demo", ApiKey(SecretStr(WRONG_KEY)))

    async def main() -> tuple[BaseException, BaseException]:
        async with remote:
            with pytest.raises(MT5OrderOutcomeUnknown) as order:
                await remote.place_order(OrderRequest(SYMBOL, Side.BUY, 0.01),
                                         idempotency_key="never-answered")  # fmt: skip
            with pytest.raises(MT5ConnectionError) as read:
                await remote.positions()
        return order.value, read.value

    try:
        order, read = asyncio.run(main())
    finally:
        server.close()
    assert server.requests >= 2
    assert "did not answer" in str(order)
    assert "--key never-answered" in order.hint  # type: ignore[attr-defined]
    assert "Do not resend it under a new key" in order.hint  # type: ignore[attr-defined]
    assert f"mt5gate serve at {server.url} did not answer" in str(read)
    assert WRONG_KEY not in str(order) + str(read)


class Canned:
    """A loopback HTTP server that answers every request with one canned answer: a peer that
    is not quite the service (another version, a reading it has not taken yet)."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        answer = (status, body, content_type)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, content, kind = answer
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="canned")
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def ask(status: int, body: object, content_type: str, call: Any) -> Any:
    """``call(remote)`` against a :class:`Canned` peer answering ``body``: its result, or the
    error it raised."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    peer = Canned(status, content, content_type)

    async def main() -> Any:
        async with RemoteAccount(peer.url, "demo", ApiKey(SecretStr(WRONG_KEY))) as remote:
            try:
                return await call(remote)
            except Exception as error:
                return error

    try:
        return asyncio.run(main())
    finally:
        peer.close()


HEALTH = "application/health+json"


def test_an_answer_in_another_form_is_said_to_be_one() -> None:
    odd = ask(200, {"login": "not a number"}, "application/json", RemoteAccount.get_account_info)
    assert isinstance(odd, MT5Error)
    assert "answered GET /v1/accounts/demo in a form this command does not read" in str(odd)
    assert "Run the same mt5gate version" in odd.hint
    garbled = ask(401, b"{not json", "application/problem+json", RemoteAccount.get_account_info)
    assert isinstance(garbled, CommandError)
    assert "HTTP 401 Unauthorized" in garbled.message


def test_a_health_reading_is_the_accounts_checks_only() -> None:
    checks = {"demo/session:state": [{"status": "pass", "observedValue": "connected"}],
              "other/session:state": [{"status": "fail"}]}  # fmt: skip
    reading = ask(200, {"status": "fail", "checks": checks}, HEALTH, RemoteAccount.health)
    assert [(c.name, c.status) for c in reading.checks] == [("session:state", Status.PASS)]
    starting = {"checks": {"demo:health": [{"status": "fail", "output": "no reading yet"}]}}
    reading = ask(503, starting, HEALTH, RemoteAccount.health)
    assert [(c.name, c.output) for c in reading.checks] == [("service:health", "no reading yet")]
    elsewhere = ask(200, {"status": "pass", "checks": {"live/x:y": []}}, HEALTH,
                    RemoteAccount.health)  # fmt: skip
    assert [c.name for c in elsewhere.checks] == ["service:account"]
    assert elsewhere.status is Status.FAIL
    assert ask(200, {"checks": []}, HEALTH, RemoteAccount.health).status is Status.FAIL
    refused = ask(401, {"error": "UnauthenticatedError", "detail": "The API key is not valid."},
                  "application/problem+json", RemoteAccount.health)  # fmt: skip
    assert isinstance(refused, CommandError)


def test_an_order_with_a_magic_number_is_refused_before_anything_is_sent() -> None:
    request = OrderRequest(SYMBOL, Side.BUY, 0.01, magic=42)
    refused = ask(500, b"", "text/plain",
                  lambda remote: remote.place_order(request, idempotency_key="k"))  # fmt: skip
    assert isinstance(refused, MT5ValidationError)
    assert refused.field == "magic"


# ----------------------------------------------------------------- an unknown order outcome

FAULTS = '[[fault]]\nkind = "disconnect"\nfunctions = ["order_send"]\ntimes = 1\n'
BRIDGED = """\
[[accounts]]
name = "demo"
terminal = "bridge://127.0.0.1:{port}"
login = 5001
server = "MetaQuotes-Demo"
password_env = "REMOTE_TEST_PASSWORD"
token_file = "bridge-token"
reconcile = {{ first_s = 0.05, max_interval_s = 0.2, settle_s = 0.3, budget_s = 1.0, \
replay_budget_s = 1.0 }}
"""


def test_an_unknown_order_outcome_through_the_service_is_exit_4_with_its_status_url(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's terminal (a bridged simulator) loses its trade-server link on the order:
    the request may have left, and reconciliation cannot tell within its budget, so the service
    answers 202; the command says do not resend, and where the order's status is (exit 4)."""
    token = cli.write("bridge-token", TOKEN + "\n")
    plan = cli.write("faults.toml", FAULTS)
    bridge = BridgeProcess("--token-file", str(token), "--faults", str(plan))
    config = cli.write("bridged.toml", BRIDGED.format(port=bridge.port))
    monkeypatch.setenv("REMOTE_TEST_PASSWORD", "sim-pass-5001")
    served = start_service(cli.data_dir, "--config", str(config))
    try:
        args = ("order", "buy", "EURUSD", "0.1", "--yes", "--key", "lost-link", "--config",
                str(config))  # fmt: skip
        first = cli.run(*args)
        again = cli.run(*args)
        priced = cli.run("price", "EURUSD", "--config", str(config))
        health = cli.run("health", "--config", str(config))
        with served.client() as http:
            status = http.get("/v1/accounts/demo/requests/lost-link").json()
    finally:
        served.stop()
        bridge.stop()
    url = f"{served.base}/v1/accounts/demo/requests/lost-link"
    assert_error(first, 4, "Order outcome unknown")
    hint = flat(first.stderr.split("hint:")[1])
    assert "Do not resend it under a new key" in hint
    assert url in hint
    assert "--key lost-link" in hint
    assert via(served) in flat(first.stderr)
    assert again.exit_code == 4, explain(again)  # still unknown: the same key sent nothing new
    assert (status["outcome"], status["idempotency_key"]) == ("unknown", "lost-link")
    assert lease_info(cli.data_dir)["kind"] == "serve"
    # the service's terminal is a simulator behind a bridge: the commands say so, loudly
    for result in (first, priced, health):
        assert BANNER in result.stderr, explain(result)
    assert "Prices · demo (SIMULATED)" in priced.stdout, explain(priced)
    assert "Health · demo (SIMULATED)" in health.stdout, explain(health)


def test_a_command_waits_for_nothing(cli: Cli) -> None:
    """An owned account is answered at once, not after waiting for the lease."""
    take_lease(cli.data_dir, {"kind": "cli"})
    started = time.monotonic()
    assert cli.run("account").exit_code == 3
    assert time.monotonic() - started < 10

"""Replicas in this process (so coverage sees the conductor, the forwarding and the fleet
command): two or three ``Gateway`` s served by uvicorn on threads, sharing a SQLite store file,
their accounts' terminals simulators behind ``mt5gate bridge`` processes.

What the process-level tests (``test_replicas.py``) cannot reach is here: a forwarded request
that meets another non-owner, an owner that does not answer, a replica cut off from its store,
and ``mt5gate fleet`` run in-process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from mt5gate.service import fleet_cli
from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key
from mt5gate.service.config import ConfigError, ServiceSettings, load_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.stores import open_store
from tests.fleet.processes import KEY, Bridge
from tests.service.conftest import free_port

LOGINS = (5001, 5002)


class Replica:
    """A ``Gateway`` of the fleet, served by uvicorn on a thread of this process."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.gateway = Gateway.build(settings, {f"PW{n}": f"sim-pass-{n}" for n in LOGINS})
        config = uvicorn.Config(create_app(self.gateway), host="127.0.0.1", port=settings.port,
                                log_level="warning")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{settings.replica}")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the replica did not start"
            time.sleep(0.02)

    @property
    def name(self) -> str:
        return self.settings.replica

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.base + path, headers={"X-API-Key": KEY, **headers}, timeout=30)

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the replica's event loop (its store is bound to that loop's
        thread only through its own journal thread, so any loop will do)."""
        return asyncio.run(coroutine)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def fleet_settings(
    workdir: Path, bridges: list[Bridge], name: str, **fleet: Any
) -> ServiceSettings:
    token = workdir / "bridge-token"
    accounts = [
        {"name": f"acct{login}", "terminal": f"bridge://127.0.0.1:{bridge.port}", "login": login,
         "server": "MetaQuotes-Demo", "password_env": f"PW{login}", "token_file": token}
        for login, bridge in zip(LOGINS, bridges, strict=True)
    ]  # fmt: skip
    data = workdir / name
    data.mkdir(mode=0o700, exist_ok=True)
    return ServiceSettings.model_validate({
        "port": free_port(), "data_dir": data, "accounts": accounts,
        "api_keys": [{"name": "all", "hash": hash_api_key(KEY),
                      "scopes": ["read", "trade", "admin"], "rate_per_minute": 100000}],
        "store": {"url": f"sqlite:///{workdir}/fleet.db"},
        "fleet": {"replica": name, "heartbeat_s": 0.3, "member_ttl_s": 1.5, **fleet},
    })  # fmt: skip


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 45.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def owner(replica: Replica, login: int) -> str | None:
    view = replica.gateway.conductor.view  # type: ignore[union-attr]
    lease = view.owner(login) if view is not None else None
    return None if lease is None else str(lease.info.get("member"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conductor")


@pytest.fixture(scope="module")
def bridges(workdir: Path) -> Iterator[list[Bridge]]:
    token = workdir / "bridge-token"
    descriptor = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(descriptor, b"conductor-bridge-token-0123456789\n")
    os.close(descriptor)
    started = [Bridge.start(workdir, str(login), token) for login in LOGINS]
    yield started
    for bridge in started:
        bridge.stop()


@pytest.fixture(scope="module")
def pair(workdir: Path, bridges: list[Bridge]) -> Iterator[tuple[Replica, Replica]]:
    first = Replica(fleet_settings(workdir, bridges, "r1"))
    second = Replica(fleet_settings(workdir, bridges, "r2"))
    try:
        wait_for("one account each", lambda: {owner(first, n) for n in LOGINS} == {"r1", "r2"})
        yield first, second
    finally:
        second.stop()
        first.stop()


def run_cli(workdir: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    config = workdir / "fleet.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{workdir}/fleet.db"\n\n'
        '[[accounts]]\nname = "acct5001"\nlogin = 5001\n\n'
        '[[accounts]]\nname = "acct5002"\nlogin = 5002\n',
        encoding="utf-8",
    )
    code = fleet_cli.main(["--config", str(config), *args], env={})
    out, err = capsys.readouterr()
    return code, out, err


def test_each_replica_runs_one_account_and_forwards_the_other(
    pair: tuple[Replica, Replica],
) -> None:
    first, second = pair
    for _ in range(20):  # both views agree (a loaded machine can delay a heartbeat past the TTL)
        wait_for("one account each, seen alike",
                 lambda: {owner(first, n) for n in LOGINS} == {"r1", "r2"}
                 and all(owner(first, n) == owner(second, n) for n in LOGINS))  # fmt: skip
        mine = next(n for n in LOGINS if owner(first, n) == "r1")
        theirs = next(n for n in LOGINS if n != mine)
        direct = first.get(f"/v1/accounts/acct{mine}")
        forwarded = first.get(f"/v1/accounts/acct{theirs}/symbols/EURUSD/tick?x=1")
        moving = [r for r in (direct, forwarded) if r.status_code == 503
                  and r.json().get("type", "").endswith("/no-owner")]  # fmt: skip
        if not moving:  # 503 "no owner" is the documented answer while an account moves
            break
    assert direct.status_code == 200, direct.text
    assert direct.headers["x-mt5gate-served-by"] == "r1"
    assert forwarded.status_code == 200, forwarded.text
    assert forwarded.headers["x-mt5gate-served-by"] == "r2"
    again = first.get(f"/v1/accounts/acct{theirs}", **{"X-Mt5gate-Forwarded-By": "r9"})
    assert again.status_code == 503
    assert again.headers["retry-after"] == "2"
    assert "moved to another replica" in again.json()["detail"]
    health = first.get("/v1/health").json()
    assert health["checks"]["fleet:membership"][0]["status"] == "pass"
    assert "owned by replica r2" in health["checks"][f"acct{theirs}:owner"][0]["output"]
    listed = {a["name"]: a for a in first.get("/v1/accounts").json()["accounts"]}
    assert listed[f"acct{mine}"]["owner"] == "r1"
    assert listed[f"acct{theirs}"]["owner"] == "r2"
    assert listed[f"acct{theirs}"]["epoch"] > 0
    assert listed[f"acct{theirs}"]["ready"] is False
    ready = httpx.get(first.base + "/readyz", timeout=5).json()
    assert ready["accounts"]["fleet"] is True
    assert set(ready["accounts"]) == {f"acct{mine}", "fleet"}


def test_fleet_status_drain_move_and_errors(
    pair: tuple[Replica, Replica], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = pair
    code, out, _ = run_cli(workdir, "status", "--json", capsys=capsys)
    assert code == 0
    status = json.loads(out)
    assert {r["replica"] for r in status["replicas"] if r["live"]} == {"r1", "r2"}
    assert {a["owner"] for a in status["accounts"]} == {"r1", "r2"}
    code, table, _ = run_cli(workdir, "status", capsys=capsys)
    assert code == 0
    assert "replicas:" in table
    assert "acct5002" in table
    code, out, _ = run_cli(workdir, "drain", "r2", capsys=capsys)
    assert (code, "drained" in out) == (0, True)
    wait_for("r1 runs both", lambda: {owner(first, n) for n in LOGINS} == {"r1"})
    assert run_cli(workdir, "undrain", "r2", capsys=capsys)[0] == 0
    wait_for("one each again", lambda: {owner(first, n) for n in LOGINS} == {"r1", "r2"})
    mine = next(n for n in LOGINS if owner(first, n) == "r1")
    code, out, _ = run_cli(workdir, "move", f"acct{mine}", "r2", capsys=capsys)
    assert (code, "pinned to r2" in out) == (0, True)
    wait_for("moved", lambda: owner(first, mine) == "r2")
    code, out, _ = run_cli(workdir, "unpin", f"acct{mine}", capsys=capsys)
    assert (code, "placed by the fleet" in out) == (0, True)
    wait_for("balanced", lambda: {owner(first, n) for n in LOGINS} == {"r1", "r2"})
    assert run_cli(workdir, "drain", "nobody", capsys=capsys)[0] == 1
    code, _, err = run_cli(workdir, "move", "nosuch", "r1", capsys=capsys)
    assert code == 2
    assert "no account named 'nosuch'" in err
    assert fleet_cli.main(["status"], env={}) == 2  # no [store]: nothing to ask


def test_an_owner_that_does_not_answer_is_a_502_that_says_what_to_do(
    pair: tuple[Replica, Replica], workdir: Path, bridges: list[Bridge],
) -> None:  # fmt: skip
    first, _ = pair
    closed = f"http://127.0.0.1:{free_port()}"
    third = Replica(fleet_settings(workdir, bridges, "r3", advertise_url=closed))
    try:
        store = open_store(third.settings, {})
        assert store is not None
        asyncio.run(store.place(5001, "r3"))
        wait_for("r3 owns 5001", lambda: owner(first, 5001) == "r3")
        keyed = {"X-API-Key": KEY, "Idempotency-Key": "k1"}
        silent = httpx.post(first.base + "/v1/accounts/acct5001/orders",
                            json={"symbol": "EURUSD", "side": "buy", "volume": 0.01},
                            headers=keyed, timeout=30)  # fmt: skip
        assert silent.status_code == 502, silent.text
        assert "same Idempotency-Key" in silent.json()["detail"]
        asyncio.run(store.place(5001, None))
        asyncio.run(store.close())
        # r3 cut off from its store: it says so, and the others take its account
        third_store = third.gateway.store
        assert third_store is not None
        third.run(third_store.close())
        wait_for("r3 out of touch", lambda: not third.gateway.conductor.in_touch())  # type: ignore[union-attr]
        membership = third.get("/v1/health").json()["checks"]["fleet:membership"][0]
        assert membership["status"] == "fail"
        assert "cannot reach the fleet's store" in membership["output"]
        wait_for("5001 taken over", lambda: owner(first, 5001) in ("r1", "r2"), timeout_s=60)
    finally:
        third.stop()


def test_a_fleet_needs_a_store_and_logins(tmp_path: Path) -> None:
    base = {"accounts": [{"name": "a", "login": 1}], "fleet": {}}
    with pytest.raises(ValueError, match="share their accounts through a"):
        ServiceSettings.model_validate(base)
    store = {"url": "sqlite:///f.db"}
    with pytest.raises(ValueError, match="every account needs its login"):
        ServiceSettings.model_validate({**base, "store": store, "accounts": [{"name": "a"}]})
    with pytest.raises(ValueError, match="same login"):
        ServiceSettings.model_validate({**base, "store": store, "accounts": [
            {"name": "a", "login": 1}, {"name": "b", "login": 1}]})  # fmt: skip
    slow = {"heartbeat_s": 3, "member_ttl_s": 5}
    with pytest.raises(ValueError, match="2 \\* heartbeat_s <= member_ttl_s"):
        ServiceSettings.model_validate({**base, "store": store, "fleet": slow})
    settings = ServiceSettings.model_validate({**base, "store": store})
    assert settings.replica.endswith("-8000")
    assert settings.advertised_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("table", "env", "message"),
    [
        ('url = "postgresql://u:pw@h/db"', {}, "must not carry a password in the file"),
        ('url = "mysql://h/db"', {}, "must be a postgresql://"),
        ('url = "sqlite:///a.db"\nurl_env = "X"', {}, "one way only"),
        ("", {}, "needs url, url_env or url_file"),
        ('url_env = "STORE"', {}, r"STORE \(url_env\) is not set"),
        ('url_env = "STORE"', {"STORE": "redis://secret@h"}, "the URL from STORE must be"),
    ],
)
def test_store_settings_errors_name_the_field_never_the_secret(
    tmp_path: Path, table: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\n{table}\n\n[[accounts]]\nname = "a"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as raised:
        open_store(load_settings(config, env), env)
    assert "pw@" not in str(raised.value)
    assert "secret" not in str(raised.value)


def test_store_url_from_a_file_and_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "store-url"
    secret.write_text(f"sqlite:///{tmp_path}/s.db\n", encoding="utf-8")
    secret.chmod(0o600)
    config = tmp_path / "c.toml"
    config.write_text('[store]\nurl_file = "store-url"\n\n[fleet]\nreplica = "x1"\n\n'
                      '[[accounts]]\nname = "a"\nlogin = 7\n', encoding="utf-8")  # fmt: skip
    settings = load_settings(config, {})
    assert settings.store is not None
    assert settings.store.dsn({}).get_secret_value() == f"sqlite:///{tmp_path}/s.db"
    assert settings.replica == "x1"
    env = {"MT5GATE_STORE_URL": "sqlite:///e.db", "MT5GATE_REPLICA": "r7",
           "MT5GATE_ADVERTISE_URL": "http://10.0.0.7:8000/",
           "MT5GATE_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    overridden = load_settings(config, env)
    assert overridden.store is not None
    assert overridden.store.dsn(env).get_secret_value() == "sqlite:///e.db"
    assert (overridden.replica, overridden.advertised_url) == ("r7", "http://10.0.0.7:8000")
    store = open_store(overridden, env)
    assert store is not None
    asyncio.run(store.close())
    assert (tmp_path / "data" / "e.db").is_file()


def test_a_postgresql_store_url_opens_the_shared_postgresql_store(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = ServiceSettings.model_validate({
        "data_dir": tmp_path, "accounts": [{"name": "a", "login": 7}],
        "store": {"url_env": "STORE", "pg_schema": "conductor_open"}, "fleet": {"replica": "p1"},
    })  # fmt: skip
    store = open_store(settings, {"STORE": postgres_url})
    assert store is not None
    password = postgres_url.split(":")[2].split("@", maxsplit=1)[0]
    assert password not in repr(store)

    async def use() -> int:
        try:
            await store.heartbeat("p1", {"url": "http://127.0.0.1:1"}, 5.0)
            return len(await store.members())
        finally:
            await store.close()

    assert asyncio.run(use()) == 1


def test_a_command_on_a_fleet_account_goes_through_its_owner(
    pair: tuple[Replica, Replica], workdir: Path, bridges: list[Bridge]
) -> None:
    """``mt5gate price`` / ``order`` with the fleet's configuration: the owner is found in the
    shared store (never a local journal of its own), and the calls go to it over HTTP."""
    first, _ = pair
    token = workdir / "bridge-token"
    accounts = "".join(
        f'[[accounts]]\nname = "acct{login}"\nterminal = "bridge://127.0.0.1:{bridge.port}"\n'
        f'login = {login}\nserver = "MetaQuotes-Demo"\npassword_env = "PW{login}"\n'
        f'token_file = "{token}"\n\n'
        for login, bridge in zip(LOGINS, bridges, strict=True)
    )
    config = workdir / "cli-fleet.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{workdir}/fleet.db"\n\n{accounts}',
                      encoding="utf-8")  # fmt: skip
    env = {**os.environ, "MT5GATE_API_KEY": KEY, "MT5GATE_DATA_DIR": str(workdir / "cli"),
           **{f"PW{n}": f"sim-pass-{n}" for n in LOGINS}}  # fmt: skip
    env.pop("MT5GATE_CONFIG", None)
    owner_name = owner(first, 5002)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mt5gate.cli", *args, "--config",
                               str(config), "--account", "acct5002"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    price = cli("price", "EURUSD")
    assert price.returncode == 0, price.stderr
    assert "EURUSD" in price.stdout
    placed = cli("order", "buy", "EURUSD", "0.01", "--key", "cli-fleet", "--yes")
    assert placed.returncode == 0, placed.stdout + placed.stderr
    assert owner(first, 5002) == owner_name  # the command took no lease of its own
    assert not (workdir / "cli" / "acct5002-orders.db").exists()
    via = first if owner_name == "r1" else pair[1]
    status = via.get("/v1/accounts/acct5002/requests/cli-fleet")
    assert status.status_code == 200, status.text
    assert status.json()["outcome"] == "executed"

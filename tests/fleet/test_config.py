"""``[bus]`` in the service's TOML and ``MT5GATE_BUS_URL``: the URL's rules, one credential,
secrets from a variable or a file (never echoed), and the gateway's bus companion."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mt5gate.service.config import BusSettings, ConfigError, load_settings
from mt5gate.service.gateway import Gateway

SIM = {"SIM_PASSWORD": "sim-pass-5001"}
ACCOUNT = '[[accounts]]\nname = "demo"\npassword_env = "SIM_PASSWORD"\n'


def closed(gateway: Gateway) -> None:
    for runtime in gateway.accounts.values():
        runtime.session.close_journal()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mt5gate.toml"
    path.write_text(text + "\n" + ACCOUNT, encoding="utf-8")
    return path


def test_without_a_bus_table_there_is_no_bus(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), env={})
    assert settings.bus is None
    gateway = Gateway.build(settings.model_copy(update={"data_dir": tmp_path}), SIM)
    assert gateway.bus is None
    assert gateway.companions == []
    closed(gateway)


def test_a_bus_table_and_its_token_file(tmp_path: Path) -> None:
    token = tmp_path / "bus-token"
    token.write_text("s3cret-token\n", encoding="utf-8")
    token.chmod(0o600)
    text = '[bus]\nurl = "nats://127.0.0.1:4222"\ntoken_file = "bus-token"\nstream = "EV"\n'
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.bus is not None
    assert settings.bus.token_file == token
    assert settings.bus.token({}).get_secret_value() == "s3cret-token"  # type: ignore[union-attr]
    gateway = Gateway.build(settings.model_copy(update={"data_dir": tmp_path}), SIM)
    assert gateway.bus is not None
    assert gateway.bus in gateway.companions
    assert gateway.bus.bus.options.stream == "EV"
    assert "s3cret" not in repr(gateway.bus.bus.options)
    assert gateway.bus.check() == ("warn", "connecting to 127.0.0.1:4222")
    closed(gateway)


def test_mt5gate_bus_url_adds_or_replaces_the_url(tmp_path: Path) -> None:
    env = {"MT5GATE_BUS_URL": "nats://10.0.0.7:4333"}
    assert load_settings(write(tmp_path, ""), env=env).bus == BusSettings(
        url=env["MT5GATE_BUS_URL"]
    )
    text = '[bus]\nurl = "nats://127.0.0.1:4222"\ntoken_env = "BUS_TOKEN"\n'
    bus = load_settings(write(tmp_path, text), env=env).bus
    assert bus is not None
    assert bus.url == "nats://10.0.0.7:4333"
    assert bus.token({"BUS_TOKEN": "t"}).get_secret_value() == "t"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="BUS_TOKEN"):
        bus.token({})
    assert BusSettings(url="tls://nats.example:4222").token({}) is None


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('url = "http://127.0.0.1:4222"', "nats://host"),
        ('url = "nats://user:hunter2@127.0.0.1:4222"', "without credentials"),
        ('url = "nats://127.0.0.1:4222/x"', "nats://host"),
        ('url = "nats://127.0.0.1:99999"', "nats://host"),
        ('url = "nats://h:1"\ntoken_env = "A"\ncredentials_file = "c"', "one way only"),
        ('url = "nats://h:1"\nstream = "a.b"', "stream"),
    ],
)
def test_a_bad_bus_table_names_the_field_and_never_the_secret(
    tmp_path: Path, text: str, rule: str
) -> None:
    with pytest.raises(ConfigError, match=rule) as refused:
        load_settings(write(tmp_path, "[bus]\n" + text + "\n"), env={})
    assert "hunter2" not in str(refused.value)
    assert "bus" in str(refused.value)


def test_a_bus_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must be a table \(\[bus\]\)"):
        load_settings(write(tmp_path, 'bus = "nats://127.0.0.1:4222"\n'), env={})


def test_a_world_readable_token_file_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "bus-token"
    token.write_text("t", encoding="utf-8")
    os.chmod(token, 0o644)
    bus = BusSettings(url="nats://h:1", token_file=token)
    with pytest.raises(ConfigError, match="readable by every user"):
        bus.token({})

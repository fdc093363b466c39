"""The export's edges that a normal run does not reach: the progress bar drawn on a terminal
(in this process, so what it draws can be read), an output that appears while the export runs,
a sink that cannot be opened, and a service that answers bars or ticks the command cannot read
or keeps saying its key is over its rate.

The export runs on a real session of the simulator; the service's answers come from httpx's
own ``MockTransport`` (HTTP answers written here, read by the real ``RemoteAccount``).
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import io
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr
from rich.console import Console

from mt5gate.cli.export import Export, export, plan
from mt5gate.cli.failures import CommandError, Exit
from mt5gate.cli.options import FileFormat, Options
from mt5gate.cli.owner import ApiKey
from mt5gate.cli.reads import parse_when
from mt5gate.cli.remote import RemoteAccount
from mt5gate.cli.sinks import Output
from mt5gate.cli.target import AccountChoice, build_session, close_session, resolve_target
from mt5gate.cli.ui import Ui
from mt5gate.errors import MT5Error, MT5ValidationError
from mt5gate.models import OrderRequest, Price, Side
from mt5gate.records import RATES_DTYPE


def run_export(tmp_path: Path, job: Export, err: Console) -> str:
    """``job`` on a session of the demo account's simulator, stderr on ``err``; stdout."""
    env = {"MT5GATE_DATA_DIR": str(tmp_path / "data")}
    target = resolve_target(AccountChoice(), env)
    out = Console(file=io.StringIO(), width=160)
    ui = Ui(Options(), env=env, out=out, err=err)

    async def exporting() -> Exit:
        session = build_session(target, env)
        try:
            await session.connect()
            return await export(session, ui, target, job)
        finally:
            await close_session(session)

    try:
        assert asyncio.run(exporting()) == Exit.OK
    finally:
        ui.close()
    text = out.file.getvalue()  # type: ignore[attr-defined]
    return str(text)


def fortnight(tmp_path: Path, name: str, *, quiet: bool = False) -> Export:
    return plan("EURUSD", parse_when("2020-01-01"), parse_when("2020-01-15"), tmp_path / name,
                file_format=None, force=False, quiet=quiet, page_rows=5000,
                timeframe="M1")  # fmt: skip


def test_a_terminal_shows_the_bar_with_the_rows_written(tmp_path: Path) -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    said = run_export(tmp_path, fortnight(tmp_path, "bars.csv"), terminal)
    drawn = terminal.file.getvalue()  # type: ignore[attr-defined]
    rows = int(said.split(" M1 bars")[0].replace(",", ""))
    assert rows > 10_000
    assert "EURUSD M1" in drawn
    assert "100%" in drawn
    assert f"{rows:,} rows" in drawn


def test_quiet_or_not_a_terminal_draws_nothing(tmp_path: Path) -> None:
    quiet = Console(file=io.StringIO(), force_terminal=True, width=120)
    run_export(tmp_path, fortnight(tmp_path, "quiet.csv", quiet=True), quiet)
    piped = Console(file=io.StringIO(), width=120)  # a StringIO is no terminal
    run_export(tmp_path, fortnight(tmp_path, "piped.csv"), piped)
    for console in (quiet, piped):
        assert "rows" not in console.file.getvalue()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ the file


def bars(n: int) -> np.ndarray:  # type: ignore[type-arg]
    rows = np.zeros(n, dtype=RATES_DTYPE)
    rows["time"] = np.arange(n) * 60
    return rows


def write(
    path: Path,
    *,
    force: bool = False,
    meanwhile: str = "",
    fail: bool = False,
    file_format: FileFormat = FileFormat.CSV,
) -> Output:
    """Two bars to ``path``; ``meanwhile`` written to ``path`` before the commit; ``fail``:
    an error instead of the commit."""
    with Output(path, file_format, RATES_DTYPE, {}, force=force) as output:
        output.write(bars(2))
        if meanwhile:
            path.write_text(meanwhile)
        if fail:
            raise RuntimeError("disk full")
        output.commit()
    return output


def test_an_output_that_appears_meanwhile_is_kept_and_the_part_removed(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    with pytest.raises(CommandError) as refused:
        write(path, meanwhile="someone else's\n")
    assert refused.value.message == f"--out: {path} exists"
    assert path.read_text() == "someone else's\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.csv"]


def test_force_replaces_an_output_that_appears_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    assert write(path, force=True, meanwhile="old\n").rows == 2
    lines = path.read_text().splitlines()
    assert lines[1:] == ["0,0.0,0.0,0.0,0.0,0,0,0", "60,0.0,0.0,0.0,0.0,0,0,0"]


def test_a_sink_that_cannot_open_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(CommandError, match="needs pyarrow"):
        write(tmp_path / "x.parquet", file_format=FileFormat.PARQUET)
    assert list(tmp_path.iterdir()) == []


def test_an_error_while_writing_removes_the_part(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        write(tmp_path / "broken.csv", fail=True)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------- the service's answers


class _Wire(httpx.AsyncByteStream):
    """A body coming off the network in chunks, and not kept once sent (as a socket's)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body, self._body = self._body, b""
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]


def wire(status: int = 200, body: object = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:  # fmt: skip
    """An answer as it comes off the network: a stream not read yet (``body`` as JSON, or
    ``raw`` bytes as they are)."""
    sent = {"content-type": "application/json", **(headers or {})}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.Response(status, headers=sent, stream=_Wire(content))


def remote(answer: Callable[[httpx.Request], httpx.Response]) -> RemoteAccount:
    """A ``RemoteAccount`` whose service answers with ``answer``."""
    return RemoteAccount("http://127.0.0.1:9", "demo", ApiKey(SecretStr("k")),
                         transport=httpx.MockTransport(answer))  # fmt: skip


def rates_of(account: RemoteAccount) -> np.ndarray:  # type: ignore[type-arg]
    async def read() -> np.ndarray:  # type: ignore[type-arg]
        async with account:
            return await account.get_rates("EURUSD", 1, count=2, date_from=0, date_to=600)

    return asyncio.run(read())


ROW = {"time": 60, "open": 1.1, "high": 1.2, "low": 1.0, "close": 1.15, "tick_volume": 5,
       "spread": 12, "real_volume": 0}  # fmt: skip


def test_rows_come_back_as_mt5s_array_and_the_query_names_the_range() -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return wire(200, [ROW])

    found = rates_of(remote(answer))
    assert found.dtype == RATES_DTYPE
    assert found.tolist() == [tuple(ROW.values())]
    [request] = asked
    assert request.url.path == "/v1/accounts/demo/symbols/EURUSD/rates"
    assert dict(request.url.params) == {"timeframe": "1", "count": "2", "from": "0", "to": "600"}


def test_a_row_the_command_cannot_read_is_an_error_naming_it() -> None:
    partial = {k: v for k, v in ROW.items() if k != "spread"}
    with pytest.raises(MT5Error, match="does not read: a row without 'spread'"):
        rates_of(remote(lambda _: wire(200, [partial])))
    with pytest.raises(MT5Error, match="does not read"):
        rates_of(remote(lambda _: wire(200, [{**ROW, "time": "soon"}])))


def test_a_key_over_its_rate_waits_and_asks_again() -> None:
    wait = {"Retry-After": "0"}
    answers = iter([wire(429, raw=b"", headers=wait), wire(429, raw=b"", headers=wait),
                    wire(200, [ROW])])  # fmt: skip
    assert len(rates_of(remote(lambda _: next(answers)))) == 1


def test_a_key_that_stays_over_its_rate_is_refused_in_the_end() -> None:
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        problem = {"Retry-After": "0", "content-type": "application/problem+json"}
        return wire(429, {"detail": "over its rate"}, headers=problem)

    with pytest.raises(CommandError) as refused:
        rates_of(remote(answer))
    assert refused.value.code == Exit.MT5
    assert "over its rate" in refused.value.message
    assert len(calls) == 10


PRICE = {"symbol": "EURUSD", "bid": 1.1, "ask": 1.2, "last": 0.0, "volume": 0,
         "time_msc": 1_767_693_600_000, "flags": 6}  # fmt: skip
OVER = {"Retry-After": "0", "content-type": "application/problem+json"}


@pytest.mark.parametrize(
    ("read", "body"),
    [
        (lambda account: account.get_price("EURUSD"), PRICE),
        (lambda account: account.simulated(), {"accounts": [{"name": "demo", "simulated": True}]}),
    ],
    ids=["price", "simulated"],
)
def test_every_read_waits_out_the_rate_not_only_pages(
    read: Callable[[RemoteAccount], Any], body: object
) -> None:
    """A command's first reads (the export's price, the account list) wait out a key another
    command just used up, as pages do (CI: an export right after a 140-page one got 429 on its
    first read and failed)."""
    answers = iter([wire(429, {"detail": "over its rate"}, headers=OVER), wire(200, body)])
    account = remote(lambda _: next(answers))

    async def run() -> object:
        async with account:
            return await read(account)

    assert asyncio.run(run()) in (True, Price(**PRICE))


def test_a_write_refused_for_the_rate_is_not_sent_again() -> None:
    """A trading write is never repeated by the waiting: its 429 is the command's answer."""
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return wire(429, {"detail": "over its rate"}, headers=OVER)

    async def run() -> None:
        async with remote(answer) as account:
            await account.place_order(OrderRequest("EURUSD", Side.BUY, 0.01), idempotency_key="k1")

    with pytest.raises(CommandError, match="over its rate"):
        asyncio.run(run())
    assert len(calls) == 1


def test_a_tick_filter_is_not_sent_to_a_route_without_one() -> None:
    account = remote(lambda _: wire(200, []))

    async def read() -> None:
        async with account:
            await account.get_ticks("EURUSD", 0, count=1, flags=1)

    with pytest.raises(MT5ValidationError, match="COPY_TICKS_ALL"):
        asyncio.run(read())


def test_a_page_read_leaves_no_body_for_the_garbage_collector() -> None:
    """httpx keeps a response it streams in a reference cycle, freed only by the collector's
    rare full pass: a page's body held there would make a long export grow by a megabyte a
    page. The body must be freed as soon as the page is read."""
    account = remote(lambda _: wire(200, [ROW] * 5000))
    gc.collect()
    gc.disable()
    try:
        assert len(rates_of(account)) == 5000
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        held = [ref for garbage in gc.garbage for ref in gc.get_referents(garbage)
                if isinstance(ref, bytes) and len(ref) > 100_000]  # fmt: skip
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert held == []


def test_an_encoded_page_is_decoded() -> None:
    body = gzip.compress(json.dumps([ROW]).encode())
    encoded = {"content-encoding": "gzip"}
    found = rates_of(remote(lambda _: wire(200, raw=body, headers=encoded)))
    assert found.tolist() == [tuple(ROW.values())]

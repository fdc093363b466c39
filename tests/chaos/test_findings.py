"""mt5gate bugs the chaos work found, kept as the smallest tests that showed them (issue 15).

Two of them (the absence proof fooled by deals that net out under late history; a journal
restored from a backup resending an order the broker had executed) live beside the proof in
tests/session/test_absence_proof.py. The one here needs real processes: a new owner that takes
the account over tells the terminal its epoch at once, so a paused ex-owner's calls are refused
even when the new owner has nothing to recover or send.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mt5gate.orders.ids import DEFAULT_NAMESPACE
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.base import TerminalFencedError
from mt5gate.terminal.bridge import BridgeTerminal
from tests.chaos.broker import ACCOUNT, HOST, SYMBOL
from tests.chaos.processes import BrokerProcess, GatewayProcess, write_token


def _ours(sim: SimTerminal) -> list[tuple[int, int]]:
    """(order ticket, client sequence) of every deal in mt5gate's namespace (the whole ledger,
    read from the simulated server itself)."""
    deals = sim.broker.all_deals()
    return [(d.order, d.magic & (2**48 - 1)) for d in deals if d.magic >> 48 == DEFAULT_NAMESPACE]


def _gateway(workdir: Path, port: int, run: int) -> list[str]:
    return ["--port", str(port), "--token-file", str(workdir / "token"),
            "--journal", str(workdir / "journal.db"),
            "--client-file", str(workdir / "client.jsonl"), "--orders", "2", "--linger",
            "--lease-ttl", "3", "--lease-renew", "1", "--lease-deadline", "2",
            "--seed", str(run)]  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_new_owner_fences_the_terminal_when_it_takes_the_account(tmp_path: Path) -> None:
    """Gateway A trades (the bridge holds A's epoch), is SIGSTOPped, and B takes the account
    when A's lease expires. B has nothing to recover and nothing to send (both keys final), so
    it never tells the bridge its epoch: a call carrying A's epoch (what A sends when it
    wakes) is still answered. DESIGN §8: a paused ex-owner can never reach the terminal."""
    token = write_token(tmp_path / "token")
    broker = BrokerProcess(tmp_path, tmp_path / "token", "--fault-rate", "0")
    log = (tmp_path / "gateway.log").open("a", encoding="utf-8")
    first = second = None
    stale = BridgeTerminal(HOST, broker.port, token=token, call_timeout_s=10.0)
    try:
        first = GatewayProcess(_gateway(tmp_path, broker.port, 0), log, 0)
        assert first.wait_until(time.monotonic() + 30, lambda f: f.done)
        first.pause()
        second = GatewayProcess(_gateway(tmp_path, broker.port, 1), log, 1)
        assert second.wait_until(time.monotonic() + 30, lambda f: f.done)
        assert second.feed.epoch > first.feed.epoch  # B owns the account now
        assert stale.initialize(login=ACCOUNT.login, password=ACCOUNT.password,
                                server=ACCOUNT.server)  # fmt: skip
        stale.fence(first.feed.epoch)
        with pytest.raises(TerminalFencedError):
            stale.symbol_info_tick(SYMBOL)
    finally:
        stale.close()
        for gateway in (first, second):
            if gateway is not None:
                gateway.close()
        broker.stop()
        log.close()

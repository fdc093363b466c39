"""The simulated demo account is one broker: ``mt5gate`` commands and ``mt5gate serve`` see the
same positions, orders and history, whichever trades first (issue 15, B); while the service
runs, the commands go through it.

Real processes: the command runs in this process (as a user runs it, on the real clock), the
service is a real ``mt5gate serve`` on the same data directory. BTCUSD trades every day.
"""

from __future__ import annotations

import json

from tests.cli.conftest import SYMBOL, Cli, explain, flat
from tests.service.conftest import start_service


def test_the_command_and_the_service_trade_with_one_broker(cli: Cli) -> None:
    by_command = cli.buy("0.01", "--key", "from-the-command")
    served = start_service(cli.data_dir, sim_start=None)  # the machine's clock, as the command
    try:
        with served.client() as http:
            seen = http.get("/v1/accounts/demo/positions").json()
            placed = http.post("/v1/accounts/demo/orders",
                               json={"symbol": SYMBOL, "side": "buy", "volume": 0.02},
                               headers={"Idempotency-Key": "from-the-service"})  # fmt: skip
        meanwhile = cli.run("positions", "--json")  # the service owns the account: through it
    finally:
        code, log = served.stop()
    assert code in (0, -15), log  # uvicorn ends by raising the SIGTERM it handled
    assert [p["ticket"] for p in seen] == [by_command["order"]]  # the command's, on its broker
    assert placed.status_code == 201, placed.text
    assert meanwhile.exit_code == 0, explain(meanwhile)
    assert f"via mt5gate serve at {served.base}" in flat(meanwhile.stderr)
    shown = {p["ticket"]: p["volume"] for p in json.loads(meanwhile.stdout)}
    assert shown == {by_command["order"]: 0.01, placed.json()["order"]: 0.02}
    tickets = {p["ticket"]: p["volume"] for p in cli.positions()}  # on its own session again
    assert tickets == shown
    journal = cli.json("journal", "list")
    assert {o["idempotency_key"] for o in journal} == {"from-the-command", "from-the-service"}

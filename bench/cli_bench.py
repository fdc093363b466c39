"""The ``mt5gate`` command as a user runs it: wall time of whole processes, and memory.

Each figure is the median of ``repeat`` runs (at least 5) of a fresh ``python -m mt5gate.cli``
subprocess, side by side with ``python -c pass`` (the interpreter's own start, the floor no
command can go under):

* ``import typer.main, typer.rich_utils``: what any typer application with rich help loads;
* ``mt5gate --help`` and ``mt5gate --version`` (when the command has it): typer and the
  declarations only;
* ``mt5gate price EURUSD`` on the simulator, on a fresh data directory (the first run makes
  the directory, the account's journal and lease) and again with that directory warm;
* the CPU time (user + system) of the floor, ``--help`` and a warm read, which a busy machine
  inflates less than wall time;
* the peak resident memory of one such read, and of one market order
  (``mt5gate order buy EURUSD 0.01 --yes``; ``getrusage(RUSAGE_CHILDREN)``, the largest child
  so far, so each runs first in a process of its own).

The commands run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` dropped, one run first
to write it), as an installed package does: a source tree that is compiled on every run would
measure the compiler.

Machine-dependent: run it on an idle machine (``python -m bench.cli_bench``).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from bench.report import Row

__all__ = ["all_rows", "measure"]

_PASS = "pass"
_MIN_RUNS = 5
#: What any typer application with rich help loads before printing it: ``--help``'s own floor.
_TYPER = "import typer.main, typer.rich_utils"


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MT5GATE_") and k != "PYTHONDONTWRITEBYTECODE"}  # fmt: skip
    env["MT5GATE_DATA_DIR"] = str(data_dir)
    env["NO_COLOR"] = "1"
    return env


def _cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _once(argv: Sequence[str], env: Mapping[str, str], cpu: list[float] | None = None) -> float:
    """Wall seconds of one subprocess (it must succeed); its CPU seconds go to ``cpu``."""
    start, cpu_start = time.perf_counter(), _cpu_s()
    subprocess.run(argv, env=env, capture_output=True, check=True, timeout=120)
    wall = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_cpu_s() - cpu_start)
    return wall


def _median(argv: Sequence[str], env: Mapping[str, str], runs: int,
            cpu: list[float] | None = None) -> float:  # fmt: skip
    return statistics.median(_once(argv, env, cpu) for _ in range(runs))


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mt5gate.cli", *args]


#: A market order on the simulator, confirmed on the command line.
_ORDER: Final = _cli("order", "buy", "EURUSD", "0.01", "--yes")


def _has_version(env: Mapping[str, str]) -> bool:
    done = subprocess.run(_cli("--version"), env=env, capture_output=True, check=False,
                          timeout=120)  # fmt: skip
    return done.returncode == 0


def _peak_rss_mb(env: Mapping[str, str], argv: Sequence[str], *, check: bool = True) -> float:
    """Peak RSS of ``argv``, run as the only child of a process of its own (the children's
    figure is the largest child's, so nothing else may have run there)."""
    code = (
        "import resource, subprocess; "
        f"subprocess.run({list(argv)!r}, capture_output=True, check={check!r}); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, timeout=120)  # fmt: skip
    return int(done.stdout.strip()) / 1024  # Linux reports kB


def measure(runs: int) -> dict[str, float]:
    """Median seconds of each command, and the read's peak RSS in MB."""
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mt5gate-cli-bench-") as tmp:
        root = Path(tmp)
        env = _env(root / "unused")
        cpu: dict[str, list[float]] = {"pass": [], "help": [], "price_warm": []}
        _once(_cli("price", "EURUSD"), _env(root / "compile"))  # bytecode written once
        figures["pass"] = _median([sys.executable, "-c", _PASS], env, runs, cpu["pass"])
        figures["help"] = _median(_cli("--help"), env, runs, cpu["help"])
        figures["typer"] = _median([sys.executable, "-c", _TYPER], env, runs)
        if _has_version(env):
            figures["version"] = _median(_cli("--version"), env, runs)
        fresh = []
        for n in range(runs):  # a new data directory each time
            fresh.append(_once(_cli("price", "EURUSD"), _env(root / f"fresh-{n}")))
        figures["price_fresh"] = statistics.median(fresh)
        warm = _env(root / "fresh-0")
        figures["price_warm"] = _median(_cli("price", "EURUSD"), warm, runs, cpu["price_warm"])
        for key, spent in cpu.items():
            figures[f"cpu_{key}"] = statistics.median(spent)
        figures["rss_mb"] = _peak_rss_mb(_env(root / "rss"), _cli("price", "EURUSD"))
        figures["rss_pass_mb"] = _peak_rss_mb(env, [sys.executable, "-c", _PASS])
        # the market may be closed (the order is refused): its memory is measured all the same
        figures["rss_order_mb"] = _peak_rss_mb(_env(root / "order"), _ORDER, check=False)
    return figures


def rows_of(figures: Mapping[str, float]) -> list[Row]:
    """The table's rows: milliseconds, each compared with ``python -c pass``."""
    floor = figures["pass"]
    base = "python -c pass"

    def timed(name: str, key: str) -> Row:
        value = figures[key]
        return Row("cli", name, value * 1000, "ms (median)", base, value / floor)

    rows = [Row("cli", "python -c pass (the floor)", floor * 1000, "ms (median)")]
    rows.append(timed("import typer.main, typer.rich_utils (help's toolkit)", "typer"))
    rows.append(timed("mt5gate --help", "help"))
    if "version" in figures:
        rows.append(timed("mt5gate --version", "version"))
    rows.append(timed("mt5gate price EURUSD, fresh data dir (sim)", "price_fresh"))
    rows.append(timed("mt5gate price EURUSD, warm data dir (sim)", "price_warm"))
    cpu_floor = figures["cpu_pass"]
    rows.append(Row("cli", "CPU (user+sys) of python -c pass", cpu_floor * 1000, "ms (median)"))
    for name, key in (("mt5gate --help", "cpu_help"),
                      ("mt5gate price EURUSD, warm", "cpu_price_warm")):  # fmt: skip
        rows.append(Row("cli", f"CPU (user+sys) of {name}", figures[key] * 1000, "ms (median)",
                        "python -c pass", figures[key] / cpu_floor))  # fmt: skip
    rows.append(Row("cli", "peak RSS of mt5gate price EURUSD", figures["rss_mb"], "MB",
                    "python -c pass", figures["rss_mb"] / figures["rss_pass_mb"]))  # fmt: skip
    if "rss_order_mb" in figures:
        rows.append(Row("cli", "peak RSS of mt5gate order buy EURUSD 0.01 --yes",
                        figures["rss_order_mb"], "MB", "python -c pass",
                        figures["rss_order_mb"] / figures["rss_pass_mb"]))  # fmt: skip
    return rows


def all_rows(repeat: int, quick: bool) -> list[Row]:
    """The command's figures: ``repeat`` runs each (at least 5; 3 with ``quick``)."""
    runs = 3 if quick else max(repeat, _MIN_RUNS)
    return rows_of(measure(runs))


if __name__ == "__main__":
    from bench.report import render

    print(render(all_rows(int(sys.argv[1]) if len(sys.argv) > 1 else _MIN_RUNS, quick=False)))

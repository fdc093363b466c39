"""Run every benchmark side by side and print (or write) the results table.

``python -m bench`` prints the table; ``python -m bench --write docs/performance.md`` also
rewrites the figures section of that page. Each figure is the best of ``--repeat`` runs, measured
with ``time.perf_counter`` on this machine; no figure is asserted anywhere.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import (
    cli_bench,
    console_bench,
    fleet_bench,
    orders_bench,
    service_app,
    service_bench,
    session_bench,
    sim_bench,
    state_bench,
    stream_bench,
    terminal_paths,
)
from bench.report import Row, render, write_page

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--write", type=Path, help="update this markdown page with the figures")
    args = parser.parse_args(argv)
    # sessions built without a journal say so once each; here that is expected, not news
    logging.getLogger("mt5gate.orders").setLevel(logging.ERROR)
    rows: list[Row] = sim_bench.all_rows(repeat=args.repeat, quick=args.quick)
    rows += state_bench.all_rows(repeat=args.repeat, quick=args.quick)
    rows += session_bench.all_rows(repeat=args.repeat, quick=args.quick)
    rows += terminal_paths.rows(repeat=args.repeat, quick=args.quick)
    rows += orders_bench.all_rows(repeat=args.repeat, quick=args.quick)
    rows += service_bench.all_rows(repeat=args.repeat, quick=args.quick)
    rows += service_app.all_rows(repeat=args.repeat, quick=args.quick)
    rows += stream_bench.all_rows(repeat=args.repeat, quick=args.quick)
    rows += fleet_bench.all_rows(repeat=args.repeat, quick=args.quick)
    rows += console_bench.all_rows(repeat=args.repeat, quick=args.quick)
    rows += cli_bench.all_rows(repeat=args.repeat, quick=args.quick)
    table = render(rows)
    print(table)
    if args.write is not None:
        write_page(args.write, table)
        print(f"figures written to {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

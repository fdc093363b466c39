"""mt5gate benchmarks: run with ``make bench`` (or ``python -m bench``); see docs/performance.md."""

"""Benchmark rows, the markdown table, and the machine description that goes with it."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Row", "machine", "render", "write_page"]

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass(frozen=True, slots=True)
class Row:
    """One measured figure, with what it is compared against in the same run."""

    group: str
    name: str
    value: float
    unit: str
    baseline: str = ""
    ratio: float | None = None


def machine() -> str:
    """Processor, cores and Python of the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    model = Path("/proc/cpuinfo")
    if model.exists():
        found = re.search(r"model name\s*:\s*(.+)", model.read_text())
        cpu = found.group(1).strip() if found else cpu
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, {python}"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def render(rows: list[Row]) -> str:
    """The markdown table of all rows, headed by the machine and the date."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {stamp} on: {machine()}.",
        "",
        "| group | benchmark | figure | unit | compared with | ratio |",
        "|---|---|---:|---|---|---:|",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        cells = (row.group, row.name, _fmt(row.value), row.unit, row.baseline, ratio)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_page(page: Path, table: str) -> None:
    """Replace the text between the bench markers of ``page`` with ``table``."""
    text = page.read_text() if page.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")

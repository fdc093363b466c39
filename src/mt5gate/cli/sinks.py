"""Where an export's rows go: a CSV or a Parquet file, written a page at a time.

The file is written under a temporary name beside the output (``.NAME.<random>.part``) and
renamed to ``NAME`` only when every row is in it. An export that stops early (Ctrl-C, an error,
a full disk) removes its temporary file, and the output's name never holds a part of a range.

The columns are the record's fields in MT5's order (``RATES_DTYPE``, ``TICKS_DTYPE``), with
MT5's values: ``time`` in epoch seconds and ``time_msc`` in epoch milliseconds of the broker's
clock, exactly what the library and the HTTP API return. CSV writes a header line, then one
line per row (``\\n`` line ends; numbers as Python writes them, which read back exactly);
Parquet keeps each column's MT5 type (``int64``, ``float64``, ``uint64``...) with the export's
symbol and range in the schema's metadata, and needs ``pyarrow`` (``mt5gate[parquet]``).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import IO, Any, Final, Protocol, Self

import numpy as np

from mt5gate.cli.failures import CommandError
from mt5gate.cli.options import FileFormat
from mt5gate.cli.port import Array

__all__ = ["PARQUET_EXTRA", "Output", "format_of", "require_parquet"]

#: What to install for ``--format parquet``.
PARQUET_EXTRA: Final = "pip install 'mt5gate[parquet]'"
_SUFFIXES: Final = {".csv": FileFormat.CSV, ".parquet": FileFormat.PARQUET,
                    ".pq": FileFormat.PARQUET}  # fmt: skip


def format_of(path: Path, given: FileFormat | None) -> FileFormat:
    """``--format``, else the format ``path``'s extension names; ``CommandError`` (exit 2)
    naming ``--out`` when it names none."""
    if given is not None:
        return given
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise CommandError(f"--out: {path.name!r} does not say its format",
                           hint="End the name with .csv or .parquet, or give --format csv or "
                           "--format parquet.")  # fmt: skip
    return found


def require_parquet() -> tuple[ModuleType, ModuleType]:
    """``pyarrow`` and ``pyarrow.parquet``; ``CommandError`` (exit 2) naming the extra to
    install when they are missing. Imported by name: pyarrow is optional (and untyped)."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise CommandError("--format parquet needs pyarrow, which is not installed",
                           hint=f"Install the extra: {PARQUET_EXTRA} (or write CSV: "
                           "--format csv).") from None  # fmt: skip


class _Sink(Protocol):
    def write(self, rows: Array) -> None: ...
    def close(self) -> None: ...


class _CsvSink:
    """A header line of the field names, then one line per row."""

    def __init__(self, path: Path, dtype: np.dtype[Any]) -> None:
        self._file: IO[str] = path.open("x", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(dtype.names or ())

    def write(self, rows: Array) -> None:
        self._csv.writerows(rows.tolist())

    def close(self) -> None:
        self._file.close()


class _ParquetSink:
    """One row group per page, each column of its MT5 type."""

    def __init__(self, path: Path, dtype: np.dtype[Any], about: Mapping[str, object]) -> None:
        self._pa, parquet = require_parquet()
        names = dtype.names or ()
        fields = [(name, self._pa.from_numpy_dtype(dtype.fields[name][0]))  # type: ignore[index]
                  for name in names]  # fmt: skip
        self._schema = self._pa.schema(fields, metadata={"mt5gate": json.dumps(dict(about))})
        self._writer = parquet.ParquetWriter(str(path), self._schema)

    def write(self, rows: Array) -> None:
        columns = [self._pa.array(np.ascontiguousarray(rows[name])) for name in self._schema.names]
        self._writer.write_table(self._pa.Table.from_arrays(columns, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


class Output:
    """The export's file: rows go to a temporary file beside ``path``, renamed to ``path`` by
    :meth:`commit`; leaving the ``with`` block without it removes the temporary file."""

    def __init__(self, path: Path, file_format: FileFormat, dtype: np.dtype[Any],
                 about: Mapping[str, object], *, force: bool) -> None:  # fmt: skip
        self.path = path
        self.format = file_format
        self.rows = 0
        self._force = force
        self._dtype = dtype
        self._about = about
        self._part = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        self._sink: _Sink | None = None

    def __enter__(self) -> Self:
        try:
            if self.format is FileFormat.PARQUET:
                self._sink = _ParquetSink(self._part, self._dtype, self._about)
            else:
                self._sink = _CsvSink(self._part, self._dtype)
        except BaseException:
            self._part.unlink(missing_ok=True)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        if self._sink is not None:  # not committed: nothing keeps the part
            with contextlib.suppress(Exception):
                self._sink.close()
            self._sink = None
        self._part.unlink(missing_ok=True)

    def write(self, rows: Array) -> None:
        """Append ``rows`` (of the export's dtype)."""
        assert self._sink is not None, "write inside the with block"
        self._sink.write(rows)
        self.rows += len(rows)

    def commit(self) -> None:
        """Finish the file and give it its name (replacing an older one only with ``force``:
        a file that appeared there meanwhile is refused, as at the start)."""
        assert self._sink is not None, "commit inside the with block"
        sink, self._sink = self._sink, None
        sink.close()
        if not self._force and self.path.exists():
            raise exists(self.path)
        os.replace(self._part, self.path)


def exists(path: Path) -> CommandError:
    """The output is there already and ``--force`` was not given."""
    return CommandError(f"--out: {path} exists",
                        hint="Add --force to replace it, or give another name.")  # fmt: skip

"""The numpy record layouts of copy_ticks_* and copy_rates_*, and a growable array of them.

The dtypes match ``tests/data/surface.json`` field for field (little-endian, unpadded).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from mt5gate.records import RATES_DTYPE, TICKS_DTYPE

__all__ = [
    "RATES_DTYPE",
    "TICKS_DTYPE",
    "GrowArray",
    "RateArray",
    "TickArray",
    "empty_rates",
    "empty_ticks",
]


_SHRINK_FLOOR = 256  # drop_front never shrinks a buffer below this many rows

TickArray: TypeAlias = NDArray[np.void]
RateArray: TypeAlias = NDArray[np.void]


def empty_ticks(n: int = 0) -> TickArray:
    """A zero-filled tick array of length ``n``."""
    return np.zeros(n, dtype=TICKS_DTYPE)


def empty_rates(n: int = 0) -> RateArray:
    """A zero-filled bar array of length ``n``."""
    return np.zeros(n, dtype=RATES_DTYPE)


class GrowArray:
    """A structured array grown at the end with amortised doubling (no per-row Python objects).

    Invariant: rows ``[0, len)`` of the buffer are valid; the rest is spare capacity.
    """

    __slots__ = ("_buf", "_n")

    def __init__(self, dtype: np.dtype[np.void], capacity: int = 256) -> None:
        self._buf: NDArray[np.void] = np.zeros(max(1, capacity), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        """Rows the buffer holds, valid or spare (what the array costs in memory)."""
        return len(self._buf)

    def view(self) -> NDArray[np.void]:
        """The valid rows, as a view (callers copy before handing them out)."""
        return self._buf[: self._n]

    def extend(self, rows: NDArray[np.void]) -> None:
        """Append ``rows``, doubling the buffer when it is full."""
        need = self._n + len(rows)
        if need > len(self._buf):
            grown = np.zeros(max(need, 2 * len(self._buf)), dtype=self._buf.dtype)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : need] = rows
        self._n = need

    def truncate(self, n: int) -> None:
        """Drop every row from index ``n`` on."""
        self._n = max(0, min(n, self._n))

    def drop_front(self, n: int) -> None:
        """Drop the first ``n`` rows, moving the rest to the front of the buffer.

        The buffer shrinks to twice the remaining rows when they would fill less than a quarter
        of it (after a burst), so the spare capacity stays proportional to what is kept.
        """
        n = max(0, min(n, self._n))
        if n == 0:
            return
        rest = self._n - n
        if 4 * rest < len(self._buf) and len(self._buf) > _SHRINK_FLOOR:
            smaller = np.zeros(max(2 * rest, _SHRINK_FLOOR), dtype=self._buf.dtype)
            smaller[:rest] = self._buf[n : self._n]
            self._buf = smaller
        else:
            self._buf[:rest] = self._buf[n : self._n]  # numpy copies overlapping ranges safely
        self._n = rest

    def replace(self, rows: NDArray[np.void]) -> None:
        """Make ``rows`` the whole content."""
        self._n = 0
        self.extend(rows)

"""Deterministic randomness: per-symbol generators and a counter-based hash.

Generators are seeded from ``(seed, symbol key, stream)`` so every symbol and every purpose has
its own reproducible stream. History ticks use :func:`hash_uniform`, a pure function of its
inputs, so any slice of the past can be regenerated on demand and always looks the same.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "STREAM_DEEP",
    "STREAM_HISTORY",
    "STREAM_PRICE",
    "STREAM_TIME",
    "hash_uniform",
    "make_rng",
    "symbol_key",
]

STREAM_TIME = 1
STREAM_PRICE = 2
STREAM_HISTORY = 3
STREAM_DEEP = 4  # one generator per (symbol, day) of the deep past

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def symbol_key(name: str) -> int:
    """A stable 63-bit key for a symbol name (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


def make_rng(seed: int, name: str, stream: int, *extra: int) -> np.random.Generator:
    """The generator of one purpose (``stream``) of one symbol; ``extra`` (e.g. a day index)
    splits a purpose into independent generators."""
    entropy = [seed & (2**63 - 1), symbol_key(name), stream, *(e & (2**63 - 1) for e in extra)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _splitmix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    # uint64 arithmetic wraps modulo 2**64 by design here.
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def hash_uniform(
    key: int, a: NDArray[np.int64], b: NDArray[np.int64], salt: int
) -> NDArray[np.float64]:
    """Uniform numbers in [0, 1) that depend only on ``(key, a, b, salt)``, element-wise."""
    h = _splitmix(np.uint64(key) ^ a.astype(np.uint64))
    h = _splitmix(h ^ (b.astype(np.uint64) * _GOLDEN + np.uint64(salt)))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)

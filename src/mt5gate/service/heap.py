"""The garbage collector of a running ``mt5gate serve``: start-up objects out of the way, and
young collections paced for a server with many requests in flight.

Measured under ``bench/service_bench.py``'s load (64 connections on ``GET tick``), with
CPython's defaults:

* a full (generation 2) collection walked every object the process had made since start-up,
  about 120,000 (modules, the app, the sessions, the simulator's catalogue), and stopped the
  event loop for 100 to 200 ms each time, several times a minute: most of the service's p99;
* a young (generation 0) collection ran every few requests. CPython starts one after 700 more
  container objects were made than freed, and 64 requests in flight hold thousands of them
  alive at any moment, so each collection walked the in-flight requests' objects, found
  nothing to free (a request makes no reference cycles) and promoted them to the older
  generations, which then filled up and collected in turn.

:func:`settle_heap`, called once the service has started, collects once and freezes what
survives (``gc.freeze``: those objects are never examined again, and are not freed; they are
the process's furniture), and raises the young threshold above what the requests in flight
hold (:data:`YOUNG_THRESHOLD`). Cycles made later are still found and freed: by the next
young collection, or by a full one, which now only walks what was made since start-up.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["YOUNG_THRESHOLD", "settle_heap"]

#: Container objects made (net of those freed) before a young collection: above the few
#: thousand that 64 requests in flight hold, so that collections follow garbage, not load.
YOUNG_THRESHOLD: Final = 10_000


def settle_heap() -> None:
    """Collect, freeze the survivors, and set the young collection threshold (process-wide:
    for the process that serves, once it has started)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)

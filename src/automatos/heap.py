"""What the cyclic garbage collector walks in a long-running process.

A full collection walks every object the collector tracks. In a server that is mostly what
start-up made and keeps for good: modules, classes, the store's compiled statements. Under
load those walks are the longest pauses of the event loop (about 100 ms for 200 workflows at
once with a store, a sixth of their wall time, measured by ``benchmarks/server.py``).
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> int:
    """Collect, then move every object alive now out of the collector's reach
    (:func:`gc.freeze`), as servers that fork workers do; the number of objects moved.

    Later collections walk only the objects made afterwards. The cost: an object alive now
    that later becomes part of a reference cycle is never freed, which is why a long-lived
    process calls this once, when its start-up is done, and a library never does on its
    own (``automatos serve`` does, unless ``server.freeze_heap`` is off)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

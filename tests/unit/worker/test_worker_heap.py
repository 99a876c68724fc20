"""The worker's start-up heap is frozen out of garbage collection: full collections walk
only what was created since (the 85-150 ms loop stalls of issue #13)."""

from __future__ import annotations

import gc

from stream_detector.worker.heap import GC_THRESHOLDS, freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.peer: Node | None = None


def test_freezing_moves_live_objects_out_of_every_collection_and_keeps_them() -> None:
    long_lived = [Node() for _ in range(1000)]
    thresholds = gc.get_threshold()
    try:
        frozen = freeze_startup_heap()
        assert gc.get_threshold() == GC_THRESHOLDS != thresholds  # a larger young generation
        assert frozen == gc.get_freeze_count() and frozen >= 1000
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(n) in tracked for n in long_lived)  # the collector skips them
        later = Node()
        later.peer = later  # a cycle created after start-up is still collected
        assert id(later) in {id(o) for o in gc.get_objects()}
        del later
        assert gc.collect() >= 1
        assert all(n.peer is None for n in long_lived)  # frozen objects stay usable
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert gc.get_freeze_count() == 0

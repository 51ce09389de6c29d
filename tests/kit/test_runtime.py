"""What every process does once it has started."""

from __future__ import annotations

import gc

from kit import runtime


def test_objects_alive_at_startup_leave_the_collectors_reach_once_per_process(monkeypatch):
    monkeypatch.setattr(runtime, "_frozen", False)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    runtime.freeze_startup_objects()
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # the modules, classes and functions loaded so far
    later = [[i] for i in range(100)]
    runtime.freeze_startup_objects()  # a second app in the same process freezes nothing more
    assert gc.get_freeze_count() == frozen and gc.is_tracked(later[0])

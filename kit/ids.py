"""Opaque public ids (RFC 9562): time-ordered (version 7) for content whose order is its
time anyway, random (version 4) for what must not reveal when it was made."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> uuid.UUID:
    """A UUIDv7: 48 bits of milliseconds, a 12-bit counter for ids made in the same
    millisecond (so one process's ids sort in creation order), then 62 random bits."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(1), "big")
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def random_id() -> uuid.UUID:
    """A UUIDv4: no time in it, so two ids made together cannot be paired by their bits."""
    return uuid.uuid4()

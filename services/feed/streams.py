"""How many event streams each persona holds open in this process, so that one token cannot tie
up the process's connections and its database polling with streams."""

from __future__ import annotations

import math
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from kit.errors import TooManyRequests


class StreamSlots:
    """Open streams per persona, each known by when it ends at the latest (monotonic time)."""

    def __init__(self, per_persona: int) -> None:
        self.per_persona = per_persona
        self.open: defaultdict[uuid.UUID, list[float]] = defaultdict(list)

    def take(self, persona_id: uuid.UUID, ends_at: float) -> Callable[[], None]:
        """Claims a slot until ``ends_at`` and returns what gives it back; when the persona holds
        them all, 429 with the wait until the first of its streams ends on its own."""
        held = self.open[persona_id]
        if len(held) >= self.per_persona:
            raise TooManyRequests(
                f"At most {self.per_persona} open event streams per persona; close one first.",
                retry_after=math.ceil(min(held) - time.monotonic()),
            )
        held.append(ends_at)
        return lambda: self._give_back(persona_id, ends_at)

    def _give_back(self, persona_id: uuid.UUID, ends_at: float) -> None:
        held = self.open.get(persona_id, [])
        if ends_at in held:
            held.remove(ends_at)
        if not held:
            self.open.pop(persona_id, None)


def stream_slots(app: FastAPI, per_persona: int) -> StreamSlots:
    slots: StreamSlots | None = getattr(app.state, "stream_slots", None)
    if slots is None:
        slots = app.state.stream_slots = StreamSlots(per_persona)
    return slots


class SlotStream(StreamingResponse):
    """An event stream that gives its slot back however it ends: finished, cut, or left."""

    def __init__(
        self, content: AsyncIterator[str], *, headers: Mapping[str, str], release: Callable[[], None]
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()

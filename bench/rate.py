"""Writes at a fixed rate: an open-loop generator for ``POST /api/v1/posts`` (``python -m bench``'s
``posting`` scenario).

wrk keeps its connections busy, so its latencies are those of a saturated suite: the queue
every request waits in. An agency's staff do not post in a closed loop; they post at some rate,
and what each of them waits is the latency at that rate. This sends one request every
``1 / rate`` seconds whatever the answers do, over as many connections as it needs, and counts
each request's latency from the moment it was due (not from when it could be sent), so a stall
shows in every request it delayed (no coordinated omission)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx


def at_rate(url: str, token: str, body: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    """Sends ``rate * seconds`` POSTs of ``body`` to ``url``, one every ``1 / rate`` s; their
    latency percentiles, and how many were not a 2xx."""
    return asyncio.run(_run(url, token, body, rate, seconds))


async def _run(url: str, token: str, body: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    count = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def send(due: float) -> None:
            nonlocal errors
            try:
                resp = await client.post(url, json=body)
                if not 200 <= resp.status_code < 300:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(due)))
        await asyncio.gather(*tasks)
    latencies.sort()

    def percentile(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000, 2)

    return {
        "rate": rate,
        "requests": count,
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "errors": errors,
    }

"""Where a run's CPU went: CPU time per request for each process on the path, read from /proc.

A run that saturates the machine is bounded by the sum of what each process spends on one
request: ``cores * 1000 / (ms per request)`` requests/s at most. The benchmark records that sum,
process by process, next to every wrk figure, so a missed target shows its cause."""

from __future__ import annotations

import itertools
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int | str) -> list[str] | None:
    """Fields 3 onwards of /proc/PID/stat (``[0]`` is field 3); None once the process is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat[stat.rindex(")") + 2 :].split()


def parent_of(pid: int | str) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None  # field 4


def process_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of one process (all its threads); 0 once it is gone. With
    ``reaped``, those of its children that ended and that it waited for too: the kernel adds
    them to the parent's account then (PostgreSQL's server, for its autovacuum workers and the
    backends that disconnected)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime (fields 16 and 17)
    return ticks / TICKS


def processes_named(name: str) -> list[int]:
    """The pids whose command name is ``name`` (PostgreSQL's server and every backend)."""
    pids = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def children_by_port(parent: int, ports: Mapping[str, int]) -> dict[str, int]:
    """The launcher's children, named by the ``--port`` each was started with."""
    wanted = {str(port): name for name, port in ports.items()}
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or parent_of(entry.name) != parent:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for flag, value in itertools.pairwise(argv):
            if flag == b"--port" and value.decode() in wanted:
                found[wanted[value.decode()]] = int(entry.name)
    return found


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat. Time stolen
    by the hypervisor for other machines counts in neither."""
    values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:7])  # without steal (8th); guest time is already inside user time
    return (total - idle) / TICKS, total / TICKS


@dataclass(frozen=True)
class Snapshot:
    pids: dict[str, dict[int, float]]  # label -> pid -> CPU seconds
    children: float  # this process's waited-for children (wrk)
    busy: float
    total: float


class CPUMeter:
    """Snapshots of the CPU spent by labelled processes, and the difference per request.

    ``processes`` maps a label to one pid; ``by_name`` maps a label to a command name whose
    processes are found again at each snapshot (PostgreSQL's backends come and go: those
    present at the end count what they spent since the start, and one that ended in between
    counts in its parent's, the server's, account of the children it waited for; so do the
    autovacuum workers, which came under ``other`` before)."""

    def __init__(self, processes: Mapping[str, int], *, by_name: Mapping[str, str] | None = None) -> None:
        self.processes = dict(processes)
        self.by_name = dict(by_name or {})

    def snapshot(self) -> Snapshot:
        pids = {label: {pid: process_seconds(pid)} for label, pid in self.processes.items()}
        for label, name in self.by_name.items():
            pids[label] = {pid: process_seconds(pid, reaped=True) for pid in processes_named(name)}
        busy, total = machine_busy_seconds()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Snapshot(pids, children.ru_utime + children.ru_stime, busy, total)

    @staticmethod
    def per_request(start: Snapshot, end: Snapshot, requests: int) -> dict[str, Any]:
        """CPU milliseconds per request by label, ``wrk`` for the load generator and ``other``
        for the rest of the machine's busy time (the kernel's share of loopback traffic that
        no process is charged with, and everything else running); and the machine's busy share."""
        spent = {
            # A process gone by the end reads 0: it counts nothing rather than a negative time.
            label: sum(max(seconds - start.pids[label].get(pid, 0.0), 0.0) for pid, seconds in by_pid.items())
            for label, by_pid in end.pids.items()
        }
        for label, by_pid in end.pids.items():
            # One found by name at the start and gone by the end ended in between: its whole
            # time is now in its parent's reaped account, the part before the start included.
            before = sum(seconds for pid, seconds in start.pids[label].items() if pid not in by_pid)
            spent[label] = max(spent[label] - before, 0.0)
        spent["wrk"] = end.children - start.children
        busy = end.busy - start.busy
        spent["other"] = max(busy - sum(spent.values()), 0.0)
        wall = end.total - start.total
        return {
            "ms_per_request": {label: round(s * 1000 / max(requests, 1), 3) for label, s in spent.items()},
            "total_ms_per_request": round(busy * 1000 / max(requests, 1), 3),
            "machine_busy": round(busy / wall, 3) if wall else 0.0,
        }

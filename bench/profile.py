"""Where each process's milliseconds go: py-spy samples of the suite's Python processes during
the measured runs (``python -m bench --profile``), summed by the library or module that was
running.

``bench.cpu`` says how much CPU each process spent per request; this says on what. For every
measured run, ``py-spy record`` samples each profiled process (without pausing it) for the run's
length, keeping the collapsed stacks (``var/profiles/<backend>/<run>.<process>.txt``). A sample
is charged to the innermost frame that belongs to a known part (``PARTS``): the suite's own
modules by name, the libraries by package, the event loop and the rest of the standard library
apart. The share of samples of each part, times the process's CPU milliseconds per request
(``bench.cpu``), is that part's cost per request; the summary (``bench/results/profiles-<backend>.md``)
lists them beside the functions with the most samples of their own.

Sampling costs the sampled process little (py-spy reads its memory from outside, 100 times a
second), but it costs the machine a few percent: a profiled run's requests/s are not the
benchmark's figures, and ``--profile`` runs are kept apart from the recorded ones.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE = 100  # samples a second
TOP = 8  # parts and functions listed per process and run
LISTED_MS = 0.05  # a process that spent less per request is left out of the summary

# (part, pattern on a frame's file as py-spy names it: relative to its sys.path entry): the
# first pattern that matches names the part; a frame that none matches is looked through to the
# one that called it, and a sample with no frame of a known part is "other" (the standard
# library's own modules, mostly).
PARTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("suite: kit", r"^kit/"),
        ("suite: domain", r"^domain/"),
        ("suite: gateway", r"^gateway/"),
        ("suite: feed", r"^services/feed/"),
        ("suite: identity", r"^services/identity/"),
        ("suite: groups", r"^services/groups/"),
        ("suite: other service", r"^services/"),
        ("uvicorn", r"^(uvicorn|httptools)/"),
        ("starlette", r"^starlette/"),
        ("fastapi", r"^fastapi/"),
        ("pydantic", r"^pydantic(_core)?/"),
        ("sqlmodel", r"^sqlmodel/"),
        ("sqlalchemy", r"^sqlalchemy/"),
        ("asyncpg", r"^asyncpg/"),
        ("aiosqlite/sqlite3", r"^(aiosqlite|sqlite3)/"),
        ("http client", r"^(httpx|httpcore|aiohttp|h11|anyio|yarl|multidict)/"),
        ("tokens (jose, cryptography)", r"^(jose|cryptography|ecdsa|rsa)/"),
        ("metrics (prometheus)", r"^prometheus_client/"),
        ("json", r"^json/"),
        ("logging", r"^logging/"),
        ("event loop (asyncio)", r"^(asyncio|uvloop)/|^selectors\.py$"),
    )
)
OTHER = "other"
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def part_of(path: str) -> str | None:
    """The part a source file belongs to (None: none known)."""
    for name, pattern in PARTS:
        if pattern.search(path):
            return name
    return None


@dataclass
class Profile:
    """One process's samples during one run: per part, and per function (on top of the stack)."""

    samples: int = 0
    parts: Counter[str] = field(default_factory=Counter)
    functions: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, text: str) -> Profile:
        """From py-spy's collapsed stacks (``--format raw``: ``frame;frame;... count`` a line,
        the outermost frame first)."""
        profile = cls()
        for line in text.splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            profile.samples += n
            profile.parts[_charged(frames)] += n
            profile.functions[_short(frames[-1])] += n
        return profile

    def summary(self, ms_per_request: float | None) -> dict[str, Any]:
        """The parts and top functions as shares of the samples, and as milliseconds per
        request when the process's CPU per request is known."""

        def cost(n: int) -> dict[str, float]:
            share = n / self.samples if self.samples else 0.0
            figure = {"share": round(share, 3)}
            if ms_per_request is not None:
                figure["ms_per_request"] = round(share * ms_per_request, 3)
            return figure

        return {
            "samples": self.samples,
            "ms_per_request": ms_per_request,
            "parts": {name: cost(n) for name, n in self.parts.most_common()},
            "functions": {name: cost(n) for name, n in self.functions.most_common(TOP)},
        }


def _charged(frames: list[str]) -> str:
    """The part of the innermost frame that belongs to one."""
    for frame in reversed(frames):
        match = FRAME.match(frame)
        if match and (name := part_of(match["file"])):
            return name
    return OTHER


def _short(frame: str) -> str:
    """``function (file:line)`` with the file's path cut to its last two components."""
    match = FRAME.match(frame)
    if not match:
        return frame
    file = "/".join(Path(match["file"]).parts[-2:])
    return (
        f"{match['function']} ({file}:{match['line']})" if match["line"] else f"{match['function']} ({file})"
    )


class Profiler:
    """Runs ``py-spy record`` on the given processes (label -> pid) around measured runs and
    keeps what each run's samples say (``summaries``: run -> process -> ``Profile.summary``)."""

    def __init__(self, processes: Mapping[str, int], folder: Path) -> None:
        if shutil.which("py-spy") is None and not (Path(_venv_bin()) / "py-spy").exists():
            raise SystemExit("--profile needs py-spy (uv sync --group bench)")
        self.processes = dict(processes)
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.summaries: dict[str, dict[str, Any]] = {}

    @contextmanager
    def sampling(self, run: str, seconds: int) -> Iterator[dict[str, Profile]]:
        """Samples every process for ``seconds`` while the block runs; the profiles are filled in
        when it ends."""
        profiles: dict[str, Profile] = {}
        started = {
            label: (
                path := self.folder / f"{_file_name(run)}.{label}.txt",
                subprocess.Popen(
                    [
                        _py_spy(),
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(seconds),
                        "--rate",
                        str(RATE),
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--output",
                        str(path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            )
            for label, pid in self.processes.items()
        }
        try:
            yield profiles
        finally:
            for label, (path, process) in started.items():
                try:
                    process.wait(seconds + 30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    continue
                if path.exists():
                    profiles[label] = Profile.read(path.read_text())

    def record(self, run: str, profiles: Mapping[str, Profile], figure: Mapping[str, Any]) -> None:
        """Keeps a run's profiles, costed with its CPU per request (``bench.cpu``)."""
        per_request = figure.get("cpu", {}).get("ms_per_request", {})
        self.summaries[run] = {
            label: profile.summary(per_request.get(label))
            for label, profile in profiles.items()
            if profile.samples
        }

    def markdown(self, backend: str) -> str:
        """The summary: for each run and process, the parts and the busiest functions."""
        lines = [
            f"# Where the milliseconds go ({backend})",
            "",
            "Written by `python -m bench --profile` (bench/profile.py): py-spy samples of each",
            "process during each measured run, charged to the innermost frame of a known part.",
            "Milliseconds are the process's CPU per request (bench/cpu.py) times the part's share",
            "of its samples. A profiled run is slower than an unprofiled one: compare shares.",
        ]
        for run, processes in self.summaries.items():
            lines += ["", f"## {run}"]
            for label, summary in processes.items():
                total = summary["ms_per_request"]
                if total is not None and total < LISTED_MS:
                    continue
                head = f"{total:.3f} ms of CPU per request" if total is not None else "CPU not measured"
                lines += ["", f"**{label}**: {head}, {summary['samples']} samples", ""]
                lines += ["| part | share | ms/request |", "| --- | ---: | ---: |"]
                for name, cost in list(summary["parts"].items())[:TOP]:
                    lines.append(f"| {name} | {cost['share']:.1%} | {_ms(cost)} |")
                lines += ["", "| function (self) | share | ms/request |", "| --- | ---: | ---: |"]
                for name, cost in summary["functions"].items():
                    lines.append(f"| `{name}` | {cost['share']:.1%} | {_ms(cost)} |")
        return "\n".join(lines) + "\n"


def _ms(cost: Mapping[str, float]) -> str:
    return f"{cost['ms_per_request']:.3f}" if "ms_per_request" in cost else "-"


def _file_name(run: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", run)


def _venv_bin() -> str:
    return str(Path(sys.executable).parent)


def _py_spy() -> str:
    beside = Path(_venv_bin()) / "py-spy"
    return str(beside) if beside.exists() else "py-spy"

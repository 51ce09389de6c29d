"""``python -m bench.overhead`` measures the access log, the metrics and a FastAPI route's
dependencies per request, and writes every access line at INFO (the production level), none at
WARNING."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_overhead_bench_writes_the_lines_it_measures(tmp_path: Path) -> None:
    results = tmp_path / "overhead.json"
    args = ["--requests", "300", "--rounds", "2", "--results", str(results)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.overhead", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(results.read_text())
    # two rounds of 1,000 warm-up requests and 300 measured, at INFO only
    assert report["access_lines_written"] == 2 * (1000 + 300)
    assert set(report["added_us"]) == {
        "access log at INFO",
        "access log at WARNING",
        "metrics",
        "route, 4 async dependencies",
        "route, 4 plain dependencies",
    }
    assert "access log at INFO" in done.stdout

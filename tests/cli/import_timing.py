"""Times ``socialctl accounts import`` of a generated CSV against the real processes:

    .venv/bin/python -m tests.cli.import_timing --rows 10000

The gateway's per-address budget is raised for the run (``--default-limits`` keeps the
defaults, which pace SCIM writes at 1,200 requests a minute); everything else runs as
`make run` runs it, on SQLite under a temporary folder."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tests.cli.processes import integrator_client, scim_total, socialctl, suite_processes, write_people


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.cli.import_timing")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--default-limits", action="store_true")
    args = parser.parse_args()
    env = (
        {}
        if args.default_limits
        else {"GATEWAY_RATE_LIMITS": json.dumps({"default": {"per_address": 10**9}})}
    )
    with tempfile.TemporaryDirectory() as folder, suite_processes(Path(folder) / "var", env) as running:
        tmp = Path(folder)
        client = integrator_client(running, ["scim"])
        config = tmp / "config.json"
        login = socialctl(
            config, running.url(), "login", "--client-id", client["client_id"], secret=client["client_secret"]
        )
        assert login.returncode == 0, login.stderr
        people = tmp / "people.csv"
        write_people(people, args.rows)
        runs = []
        for label in ("first import (creates)", "same file again (unchanged)"):
            started = time.monotonic()
            result = socialctl(
                config,
                running.url(),
                "accounts",
                "import",
                str(people),
                "--concurrency",
                str(args.concurrency),
            )
            elapsed = time.monotonic() - started
            runs.append((label, elapsed, result.stdout.strip().splitlines()[-1]))
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        total = scim_total(running, json.loads(config.read_text())["access_token"])
    for label, elapsed, summary in runs:
        print(f"{label}: {elapsed:.1f} s wall clock, {args.rows / elapsed:.0f} rows/s — {summary}")
    print(f"SCIM totalResults afterwards: {total}")


if __name__ == "__main__":
    main()

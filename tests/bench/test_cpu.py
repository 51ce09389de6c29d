"""The benchmark's CPU accounting reads real processes from /proc: it must find the processes
it names and charge each with what it spent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cpu

# /proc's CPU accounting, compared with what a child burnt: run alone, not beside other tests.
pytestmark = pytest.mark.serial

# Each child says when it has started (Python's own start-up is CPU too) and the burner burns
# only once told to, so the snapshots around the burning see nothing else.
BURN = (
    "import sys, time\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "end = time.process_time() + {seconds}\n"
    "while time.process_time() < end: pass\n"
    "print('burnt', flush=True)\n"
    "time.sleep(30)\n"
)
SLEEP = "import time; print('ready', flush=True); time.sleep(30)"
SLEEP_ON = "time.sleep(30)\n"
# Once told, runs a burner (ended, not sleeping on) as its child and waits for it to end.
REAPER = (
    "import subprocess, sys, time\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "burn = {burn!r}\n"
    "subprocess.run([sys.executable, '-c', burn], input=b'go\\n', stdout=subprocess.DEVNULL, check=True)\n"
    "print('reaped', flush=True)\n"
    "time.sleep(30)\n"
)


@pytest.fixture
def spawn():
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream:
                stream.close()


def test_a_process_is_charged_with_the_cpu_it_burns_and_an_idle_one_with_none(spawn):
    burner = spawn("-c", BURN.format(seconds=0.6))
    sleeper = spawn("-c", SLEEP)
    meter = cpu.CPUMeter({"burner": burner.pid, "sleeper": sleeper.pid})
    start = meter.snapshot()
    assert burner.stdin is not None and burner.stdout is not None
    burner.stdin.write(b"go\n")
    burner.stdin.flush()
    assert burner.stdout.readline() == b"burnt\n"  # still running, so /proc still has it
    end = meter.snapshot()
    usage = cpu.CPUMeter.per_request(start, end, requests=100)
    # 0.6 s over 100 requests: 6 ms each, give or take a few of /proc's 10 ms ticks.
    assert 5.5 <= usage["ms_per_request"]["burner"] <= 6.6
    assert usage["ms_per_request"]["sleeper"] <= 0.1
    # The machine's busy time holds the burner's, give or take ticks: /proc/stat counts per
    # CPU and sets stolen time apart, while a process's own time includes what was stolen from it.
    assert usage["total_ms_per_request"] >= 0.9 * usage["ms_per_request"]["burner"]
    assert 0 < usage["machine_busy"] <= 1


def test_a_process_that_is_gone_counts_nothing():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert cpu.process_seconds(process.pid) == 0.0


def test_a_parent_is_charged_with_the_children_it_waited_for_only_when_asked(spawn):
    """PostgreSQL's autovacuum workers and ended backends: gone by the second snapshot, their
    CPU is in the server's account of its reaped children."""
    parent = spawn("-c", REAPER.format(burn=BURN.format(seconds=0.6).replace(SLEEP_ON, "")))
    own, all_of_it = cpu.process_seconds(parent.pid), cpu.process_seconds(parent.pid, reaped=True)
    assert parent.stdin is not None and parent.stdout is not None
    parent.stdin.write(b"go\n")
    parent.stdin.flush()
    assert parent.stdout.readline() == b"reaped\n"
    # The child's 0.6 s of burning (and its start-up) count only with ``reaped``.
    assert cpu.process_seconds(parent.pid, reaped=True) - all_of_it >= 0.55
    assert cpu.process_seconds(parent.pid) - own < 0.1


def test_the_suites_processes_are_found_by_the_port_they_were_started_with(spawn):
    feed = spawn("-c", SLEEP, "--port", "18101")
    gateway = spawn("-c", SLEEP, "--host", "127.0.0.1", "--port", "18100")
    spawn("-c", SLEEP, "--port", "18999")  # a child on another port
    found = cpu.children_by_port(os.getpid(), {"gateway": 18100, "feed": 18101})
    assert found == {"gateway": gateway.pid, "feed": feed.pid}
    assert cpu.children_by_port(feed.pid, {"gateway": 18100}) == {}  # not the parent


def test_processes_are_found_by_command_name():
    name = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert os.getpid() in cpu.processes_named(name)
    assert cpu.processes_named("no-such-command-here") == []


def test_wrk_and_the_rest_of_the_machine_are_counted_apart():
    start = cpu.Snapshot({"feed": {10: 1.0}, "postgres": {20: 5.0}}, children=2.0, busy=100.0, total=400.0)
    end = cpu.Snapshot(
        {"feed": {10: 1.5}, "postgres": {20: 5.25, 21: 0.25}},  # 21 connected during the run
        children=2.25,
        busy=101.5,
        total=403.0,
    )
    usage = cpu.CPUMeter.per_request(start, end, requests=500)
    assert usage["ms_per_request"] == {"feed": 1.0, "postgres": 1.0, "wrk": 0.5, "other": 0.5}
    assert usage["total_ms_per_request"] == 3.0
    assert usage["machine_busy"] == 0.5


def test_a_process_that_ended_during_the_run_counts_its_time_since_the_start_only():
    """A PostgreSQL backend connected before the start and gone by the end: the server's
    reaped account took its whole time (3.5 s), of which 3 s came before the start."""
    start = cpu.Snapshot({"postgres": {1: 10.0, 20: 5.0, 22: 3.0}}, children=0.0, busy=100.0, total=400.0)
    end = cpu.Snapshot({"postgres": {1: 13.5, 20: 5.25}}, children=0.0, busy=101.0, total=402.0)
    usage = cpu.CPUMeter.per_request(start, end, requests=1000)
    assert usage["ms_per_request"]["postgres"] == 0.75  # 0.25 s of 20 and 0.5 s of 22

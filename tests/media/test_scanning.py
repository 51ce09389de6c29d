"""The clamd client against a stand-in speaking clamd's protocol over real sockets: clean
files pass, EICAR is rejected, and a daemon that is down, silent or in error makes the scan
unavailable (retried later), never a pass."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.media import scanning
from services.media.processing import Rejected
from services.media.scanning import ScanUnavailable, scan
from tests.media.clamd_standin import SIGNATURE, ClamdStandIn, closed_address
from tests.media.samples import EICAR


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "file"
    path.write_bytes(data)
    return path


async def test_a_clean_file_passes_and_is_streamed_whole(tmp_path: Path) -> None:
    # Several chunks, the last one short: the stand-in must get exactly the file.
    data = bytes(range(256)) * (3 * scanning.CHUNK // 256) + b"tail"
    async with ClamdStandIn() as clamd:
        await scan(write(tmp_path, data), clamd.address, timeout=5)
    assert clamd.commands == [b"zINSTREAM"]
    assert clamd.scanned == [data]


async def test_an_empty_file_passes(tmp_path: Path) -> None:
    async with ClamdStandIn() as clamd:
        await scan(write(tmp_path, b""), clamd.address, timeout=5)
    assert clamd.scanned == [b""]


@pytest.mark.parametrize("offset", [0, scanning.CHUNK - 20], ids=["alone", "across-chunks"])
async def test_eicar_is_rejected_naming_the_signature(tmp_path: Path, offset: int) -> None:
    data = b"x" * offset + EICAR + b"\n"
    async with ClamdStandIn() as clamd:
        with pytest.raises(Rejected) as caught:
            await scan(write(tmp_path, data), clamd.address, timeout=5)
    assert caught.value.reason == f"Malware found ({SIGNATURE})."
    assert clamd.scanned == [data]


async def test_clamd_down_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ScanUnavailable):
        await scan(write(tmp_path, b"hello"), closed_address(), timeout=5)


async def test_a_silent_clamd_is_unavailable_within_the_timeout(tmp_path: Path) -> None:
    async with ClamdStandIn("silent") as clamd:
        started = time.monotonic()
        with pytest.raises(ScanUnavailable, match="did not answer"):
            await scan(write(tmp_path, b"hello"), clamd.address, timeout=0.5)
        elapsed = time.monotonic() - started
    assert clamd.scanned == [b"hello"]  # it did get the file: the wait was for the answer
    assert 0.4 < elapsed < 3


@pytest.mark.parametrize("mode", ["error", "hangup"])
async def test_an_error_or_a_hang_up_is_unavailable(tmp_path: Path, mode: str) -> None:
    async with ClamdStandIn(mode) as clamd:  # type: ignore[arg-type]
        with pytest.raises(ScanUnavailable):
            await scan(write(tmp_path, b"hello"), clamd.address, timeout=5)
    assert clamd.scanned == [b"hello"]


@pytest.mark.parametrize("address", ["clamd", "clamd:port", ":3310"])
async def test_a_malformed_address_is_unavailable(tmp_path: Path, address: str) -> None:
    with pytest.raises(ScanUnavailable, match="cannot be reached"):
        await scan(write(tmp_path, b"hello"), address, timeout=5)


async def test_the_stand_in_answers_ping_as_clamd_does() -> None:
    """The stand-in itself, so that a test relying on it relies on something checked."""
    import asyncio

    async with ClamdStandIn() as clamd:
        reader, writer = await asyncio.open_connection(clamd.host, clamd.port)
        writer.write(b"zPING\0")
        await writer.drain()
        assert await reader.readuntil(b"\0") == b"PONG\0"
        writer.close()
        await writer.wait_closed()

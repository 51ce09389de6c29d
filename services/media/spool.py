"""The spool (``storage.spool_dir``: ``MEDIA_SPOOL_DIR``, by default ``<MEDIA_MEDIA_DIR>/spool``,
created at startup): a folder local to the process where an upload is written while it arrives
and where the worker keeps a file while it scans and processes it. Nothing in it outlives the
request or the job that made it, and nothing in it is shared between replicas: what must last
goes to the store."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from services.media.settings import MediaSettings
from services.media.storage import spool_dir


@contextlib.contextmanager
def workdir(settings: MediaSettings, prefix: str) -> Iterator[Path]:
    """A fresh folder in the spool, removed with everything in it when the block ends,
    however it ends."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=spool_dir(settings)))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""What records' housekeeping deletes (decision 0027's mechanism): nothing of its own yet;
records' content is disposed of by policy (``disposition``)."""

from __future__ import annotations

from kit.housekeeping import Retention
from services.records.settings import RecordsSettings


def rules(settings: RecordsSettings) -> list[Retention]:
    return []

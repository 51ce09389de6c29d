"""The two contexts a persona lives in, and what the services answer about an object of the
other one.

Every account has a professional persona and may have a personal one. The two never meet: an
object of the other context is answered as missing (decision 0016), so a 404 in any service
also covers it, and its OpenAPI description says so.
"""

from __future__ import annotations

from typing import Literal

Context = Literal["professional", "personal"]
CONTEXTS: tuple[Context, ...] = ("professional", "personal")

PROBLEM_DESCRIPTIONS: dict[int, str] = {404: "Not found (also for objects of the other context)"}
"""The services' descriptions of the problem answers every operation may give, where the
domain says more than the plumbing's default."""

"""Which address a request comes from, when proxies (the gateway, an ingress) stand between.

Two ways to learn it from a proxy:

- ``X-Forwarded-For``, believed only when the direct peer is a trusted proxy, and then only as
  many entries from the right as there are proxies in front (``hops``): a trusted network that
  also holds clients (an intranet in 10.0.0.0/8) must not let a client's own entries through.
- ``X-Client-Address``, the address signed by the gateway with a secret it shares with the
  service (HMAC-SHA256 over the address and a timestamp): believed from any peer, since only
  the gateway can make it. This is what a service uses when the gateway's pods have addresses
  nobody can know in advance.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

CLIENT_ADDRESS_HEADER = "x-client-address"
CLIENT_ADDRESS_MAX_AGE = 60.0


class ClientAddress:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    untrusted address in ``X-Forwarded-For`` among its last ``hops`` entries (all of them when
    ``hops`` is None). Trusted proxies are addresses or networks (``10.0.0.0/8``)."""

    def __init__(self, trusted: Iterable[str], hops: int | None = None) -> None:
        self.trusted = [ipaddress.ip_network(t, strict=False) for t in trusted]
        self.hops = hops

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def __call__(self, peer: str, forwarded_for: str | None) -> str:
        if not self.trusted or not forwarded_for or not self._is_trusted(peer):
            return peer
        entries = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        entries.reverse()
        if self.hops is not None:
            entries = entries[: self.hops]
        # Each trusted proxy vouches for the entry it appended, the address it saw; with a hop
        # count, the last entry read is the client's even when it lies in a trusted network.
        untrusted = next((hop for hop in entries if not self._is_trusted(hop)), None)
        if untrusted is None and (self.hops is None or not entries):
            return peer
        try:
            return str(ipaddress.ip_address(untrusted or entries[-1]))
        except ValueError:
            return peer  # not an address: believe nothing from this header


def _mac(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_client_address(secret: str, address: str, now: float) -> str:
    """The ``X-Client-Address`` value: ``address;t=unix seconds;sig=HMAC``."""
    stamped = f"{address};t={int(now)}"
    return f"{stamped};sig={_mac(secret, stamped)}"


def verified_client_address(
    secret: str, value: str | None, now: float, max_age: float = CLIENT_ADDRESS_MAX_AGE
) -> str | None:
    """The address in a signed ``X-Client-Address``, or None when it is missing, forged, not an
    address, or older than ``max_age`` seconds (a header seen once cannot be reused for long)."""
    if not value:
        return None
    stamped, _, signature = value.rpartition(";sig=")
    address, _, stamp = stamped.partition(";t=")
    if not hmac.compare_digest(signature.encode(), _mac(secret, stamped).encode()):
        return None
    try:
        if abs(now - int(stamp)) > max_age:
            return None
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None

"""Which address a request comes from, when proxies (the gateway, an ingress) stand between."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


class ClientAddress:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
    untrusted address in ``X-Forwarded-For``. Trusted proxies are addresses or networks
    (``10.0.0.0/8``): behind a Kubernetes Service the gateway's pods change addresses."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def __call__(self, peer: str, forwarded_for: str | None) -> str:
        if not self.trusted or not forwarded_for or not self._is_trusted(peer):
            return peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # not an address: believe nothing from this header
        return peer

"""Signing keys: one active RSA key signs, every key still in the ring is published, and so
are the *upcoming* keys, which sign nothing yet.

Rotation without downtime: publish the new key as upcoming (``<name>.next.pem`` in the key
folder) everywhere first, then make it active (rename it to ``<name>.pem``), keep the old one
in the ring for at least one access-token lifetime so its tokens keep verifying, then remove
it. Because every replica publishes the new key before any replica signs with it, a verifier
that meets a token of the new key always finds it in the JWKS (deploy/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk
from jose.backends.base import Key


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    public_jwk: dict[str, Any]

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("signing keys must be RSA")
        numbers = key.public_key().public_numbers()
        public = {"kty": "RSA", "use": "sig", "alg": "RS256", "n": _b64(numbers.n), "e": _b64(numbers.e)}
        thumb = hashlib.sha256(f'{{"e":"{public["e"]}","kty":"RSA","n":"{public["n"]}"}}'.encode()).digest()
        kid = base64.urlsafe_b64encode(thumb).decode().rstrip("=")[:16]
        return cls(kid=kid, private_pem=pem, public_jwk={**public, "kid": kid})

    @cached_property
    def signer(self) -> Key:
        """The key as python-jose signs with it, parsed once: given the PEM text, jose parses
        and checks the RSA key again for every token, about 30 ms of CPU each time (decision
        0044)."""
        return jwk.construct(self.private_pem.decode(), algorithm="RS256")

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls.from_pem(pem)


UPCOMING_SUFFIX = ".next.pem"


class KeyRing:
    def __init__(self, keys: list[SigningKey], upcoming: list[SigningKey] | None = None) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = keys
        self.upcoming = list(upcoming or [])

    @property
    def active(self) -> SigningKey:
        return self.keys[0]

    @property
    def published(self) -> list[SigningKey]:
        """Every key a token may carry: the ring's, then the upcoming ones."""
        kids = {k.kid for k in self.keys}
        return [*self.keys, *(k for k in self.upcoming if k.kid not in kids)]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.published]}

    def rotate(self, new: SigningKey | None = None) -> SigningKey:
        key = new or SigningKey.generate()
        self.keys.insert(0, key)
        return key

    def retire(self, kid: str) -> None:
        if kid == self.active.kid:
            raise ValueError("the active key cannot be retired")
        self.keys = [k for k in self.keys if k.kid != kid]

    @classmethod
    def from_dir(cls, folder: Path) -> KeyRing:
        """Every ``*.pem`` in ``folder``, newest first, with the ``*.next.pem`` ones as upcoming;
        generates a key when there is none."""
        folder.mkdir(parents=True, exist_ok=True)
        every = sorted(folder.glob("*.pem"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
        files = [p for p in every if not p.name.endswith(UPCOMING_SUFFIX)]
        upcoming = [SigningKey.from_pem(p.read_bytes()) for p in every if p.name.endswith(UPCOMING_SUFFIX)]
        if not files:
            key = SigningKey.generate()
            path = folder / f"{key.kid}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_pem)
            return cls([key], upcoming)
        return cls([SigningKey.from_pem(p.read_bytes()) for p in files], upcoming)


class RingKeySource:
    """Identity verifies its own tokens against its ring as it is now, rotations included."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def key_for(self, kid: str) -> dict[str, Any] | None:
        return next((k.public_jwk for k in self.ring.published if k.kid == kid), None)

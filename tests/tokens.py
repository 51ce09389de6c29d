"""Crafting access tokens, honest and hostile, for the tests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from jose import jwt

from services.identity.keys import SigningKey
from tests.suite import AUDIENCE, ISSUER


def claims(persona_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": persona_id or str(uuid.uuid4()),
        "ctx": "professional",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "scope": "",
        "roles": [],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: SigningKey, payload: dict[str, Any], *, kid: str | None = None, typ: str = "at+jwt") -> str:
    return jwt.encode(payload, key.signer, algorithm="RS256", headers={"kid": kid or key.kid, "typ": typ})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(payload: dict[str, Any], alg: str = "none", kid: str = "x") -> str:
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."


def hs256_with_public_key(key: SigningKey, payload: dict[str, Any], *, der: bool = False) -> str:
    """The classic algorithm-confusion attack: HMAC keyed with the published RSA key."""
    import hashlib
    import hmac

    public = serialization.load_pem_private_key(key.private_pem, password=None).public_key()
    if der:
        secret = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        secret = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"

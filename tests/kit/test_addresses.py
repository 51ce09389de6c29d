"""kit.addresses: how many X-Forwarded-For entries are believed, and the gateway's signed
client address."""

from __future__ import annotations

import pytest

from kit.addresses import ClientAddress, sign_client_address, verified_client_address

SECRET = "shared by the gateway and identity"


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("198.51.100.1", "198.51.100.1"),
        ("198.51.100.66, 10.1.2.3", "10.1.2.3"),  # a client inside the trusted network
        ("10.1.2.3", "10.1.2.3"),
        ("198.51.100.66, not-an-address", "10.0.0.2"),
        (" , ", "10.0.0.2"),
    ],
)
def test_with_one_proxy_hop_only_the_entry_the_proxy_wrote_names_the_client(forwarded, client):
    assert ClientAddress(["10.0.0.0/8"], hops=1)("10.0.0.2", forwarded) == client


def test_with_two_proxy_hops_the_entry_before_a_trusted_proxy_is_read():
    resolve = ClientAddress(["10.0.0.0/8"], hops=2)
    assert resolve("10.0.0.2", "203.0.113.5, 198.51.100.1, 10.0.0.9") == "198.51.100.1"
    assert resolve("10.0.0.2", "203.0.113.5, 10.1.2.3, 10.0.0.9") == "10.1.2.3"


def test_a_hop_count_ignores_forwarded_for_from_an_untrusted_peer():
    assert ClientAddress(["10.0.0.0/8"], hops=1)("203.0.113.5", "198.51.100.1") == "203.0.113.5"


def test_a_signed_address_is_believed_within_its_age():
    signed = sign_client_address(SECRET, "2001:db8::1", now=1000)
    assert verified_client_address(SECRET, signed, now=1059) == "2001:db8::1"
    assert verified_client_address(SECRET, signed, now=1061) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "203.0.113.9",
        "203.0.113.9;t=1000;sig=",
        "203.0.113.9;t=1000;sig=forged",
        "203.0.113.9;t=abc;sig=x",
        sign_client_address("another secret", "203.0.113.9", 1000),
        sign_client_address(SECRET, "203.0.113.9", 1000).replace("203.0.113.9", "203.0.113.8"),
        sign_client_address(SECRET, "203.0.113.9", 1000).replace("t=1000", "t=1030"),
        sign_client_address(SECRET, "not an address", 1000),
    ],
)
def test_a_missing_forged_or_altered_signed_address_names_nobody(value):
    assert verified_client_address(SECRET, value, now=1000) is None

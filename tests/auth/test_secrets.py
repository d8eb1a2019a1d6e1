"""Token secret storage (JAY_SPEC §3.4, vectors §9.3)."""

from __future__ import annotations

import re

import bcrypt
import pytest

from jay.auth import secrets

SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
KEK_HEX = "94092ecbf22bdbcfd8831724baf0c757c250f6c895c7e2006cec516525e4ba95"
VECTOR = "enc:v1:AAAAAAAAAAAAAAAAEQEZgDUGeQ5oM2P65JO3zIur/GyKlXXnJ4CXzWsK7aQ="


def test_kek_vector() -> None:
    assert secrets.derive_kek(SIGNING_SECRET).hex() == KEK_HEX
    assert secrets.derive_kek(SIGNING_SECRET.encode()).hex() == KEK_HEX


def test_encrypt_vector() -> None:
    kek = bytes.fromhex(KEK_HEX)
    assert secrets.encrypt_secret(kek, "secret-plaintext", nonce=bytes(12)) == VECTOR
    assert secrets.decrypt_secret(kek, VECTOR) == "secret-plaintext"


def test_random_nonces_round_trip() -> None:
    kek = secrets.derive_kek(SIGNING_SECRET)
    a = secrets.encrypt_secret(kek, "s3cr3t")
    b = secrets.encrypt_secret(kek, "s3cr3t")
    assert a != b and a.startswith("enc:v1:") and secrets.is_encrypted(a)
    assert secrets.decrypt_secret(kek, a) == secrets.decrypt_secret(kek, b) == "s3cr3t"


def test_legacy_plaintext_is_returned_as_is() -> None:
    assert secrets.decrypt_secret(bytes(32), "plain-old-secret") == "plain-old-secret"
    assert not secrets.is_encrypted("plain-old-secret")


@pytest.mark.parametrize(
    "stored",
    [
        VECTOR,  # right format, wrong key
        "enc:v1:!!!notbase64",
        "enc:v1:AAAA",  # too short
        VECTOR[:-6] + "AAAAA=",  # tampered tag
    ],
)
def test_decrypt_failures(stored: str) -> None:
    other = secrets.derive_kek("another signing secret")
    with pytest.raises(ValueError) as info:
        secrets.decrypt_secret(other, stored)
    assert "secret-plaintext" not in str(info.value)


def test_nonce_must_be_12_bytes() -> None:
    with pytest.raises(ValueError):
        secrets.encrypt_secret(bytes(32), "x", nonce=bytes(8))


def test_new_token_secret() -> None:
    values = {secrets.new_token_secret() for _ in range(5)}
    assert len(values) == 5
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in values)


def test_bcrypt_hash_and_check() -> None:
    secret = secrets.new_token_secret()
    hashed = secrets.hash_secret(secret, cost=4)  # low cost keeps the test fast
    assert hashed.startswith("$2a$04$")
    assert secrets.check_secret(secret, hashed)
    assert not secrets.check_secret(secret + "x", hashed)
    assert not secrets.check_secret(secret, "not a bcrypt hash")


def test_bcrypt_default_cost_is_go_compatible() -> None:
    assert secrets.BCRYPT_COST == 10
    # A hash in Go's format ($2a$10$…) verifies.
    go_style = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()
    assert go_style.startswith("$2a$10$")
    assert secrets.check_secret("pw", go_style)

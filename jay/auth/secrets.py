"""Token secrets at rest (JAY_SPEC §3.1, §3.4): AES-256-GCM for the SigV4 key, bcrypt for Bearer.

Everything here is synchronous. bcrypt is slow on purpose (cost 10, tens of milliseconds), so
callers run ``hash_secret``/``check_secret`` through ``deferToThreadPool`` on a dedicated pool,
never on the reactor thread.
"""

from __future__ import annotations

import base64
import binascii
import secrets as _random

import bcrypt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENCRYPTED_PREFIX = "enc:v1:"
_KEK_SALT = b"jay-token-secret-v1"
_KEK_INFO = b"token-secretkey-aead"
_NONCE_BYTES = 12
_TAG_BYTES = 16
# Go's bcrypt.DefaultCost; hashes written by upstream Jay are $2a$10$… and must keep verifying.
BCRYPT_COST = 10


def derive_kek(signing_secret: bytes | str) -> bytes:
    """KEK = HKDF-SHA256(signing secret, salt "jay-token-secret-v1", info "token-secretkey-aead")."""
    ikm = signing_secret if isinstance(signing_secret, bytes) else signing_secret.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_KEK_SALT, info=_KEK_INFO).derive(ikm)


def is_encrypted(stored: str) -> bool:
    return stored.startswith(ENCRYPTED_PREFIX)


def encrypt_secret(kek: bytes, plaintext: str, nonce: bytes | None = None) -> str:
    """``enc:v1:`` + base64(nonce ‖ ciphertext ‖ tag); no associated data.

    ``nonce`` is for test vectors only: a fixed nonce reused under one key breaks GCM.
    """
    if nonce is None:
        nonce = _random.token_bytes(_NONCE_BYTES)
    if len(nonce) != _NONCE_BYTES:
        raise ValueError("nonce must be 12 bytes")
    sealed = AESGCM(kek).encrypt(nonce, plaintext.encode("utf-8"), None)
    return ENCRYPTED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt_secret(kek: bytes, stored: str) -> str:
    """The plaintext; a value without the prefix is legacy plaintext and returned as is.

    ValueError when the value cannot be decrypted (wrong signing secret, corruption). The
    message never includes the stored value.
    """
    if not is_encrypted(stored):
        return stored
    try:
        blob = base64.b64decode(stored[len(ENCRYPTED_PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("encrypted token secret is not valid base64") from None
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise ValueError("encrypted token secret is too short")
    try:
        plaintext = AESGCM(kek).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], None)
    except InvalidTag:
        raise ValueError("token secret does not decrypt with this signing secret") from None
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("decrypted token secret is not UTF-8") from None


def new_token_secret() -> str:
    """32 random bytes as 64 lower-case hex characters (JAY_SPEC §3.1)."""
    return _random.token_hex(32)


def hash_secret(secret: str, *, cost: int = BCRYPT_COST) -> str:
    """bcrypt hash of a token secret. Slow: run it in a thread pool."""
    return bcrypt.hashpw(secret.encode("utf-8"), bcrypt.gensalt(rounds=cost, prefix=b"2a")).decode(
        "ascii"
    )


def check_secret(secret: str, secret_hash: str) -> bool:
    """Constant-time bcrypt comparison; False for a malformed hash. Slow: run it in a pool."""
    try:
        return bcrypt.checkpw(secret.encode("utf-8"), secret_hash.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False

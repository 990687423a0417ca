"""Hashing and signature recovery: the hottest code in the node.

keccak comes from safe-pysha3 when it is installed (~1 µs a hash) and from eth-hash otherwise.
Recovery calls libsecp256k1 through coincurve, which releases the GIL, so callers may recover
many signatures in parallel threads.
"""

from __future__ import annotations

from collections.abc import Callable

from coincurve import PrivateKey, PublicKey

try:
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        digest: bytes = _keccak_256(data).digest()
        return digest

except ImportError:  # pragma: no cover - depends on the installed extras
    from eth_hash.auto import keccak as _eth_keccak

    keccak = _eth_keccak  # type: ignore[assignment]

__all__ = [
    "SECP256K1_N",
    "SECP256K1_HALF_N",
    "keccak",
    "recover_address",
    "EMPTY_KECCAK",
    "sign_digest",
    "recover_signer",
    "key_address",
]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
EMPTY_KECCAK = keccak(b"")

_from_signature: Callable[..., PublicKey] = PublicKey.from_signature_and_message


def recover_address(msg_hash: bytes, y_parity: int, r: int, s: int) -> bytes | None:
    """The 20-byte address that signed `msg_hash`, or None if the signature is invalid."""
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_HALF_N and y_parity in (0, 1)):
        return None
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y_parity,))
    try:
        public_key = _from_signature(signature, msg_hash, hasher=None)
    except Exception:
        return None
    return keccak(public_key.format(compressed=False)[1:])[12:]


def sign_digest(key: bytes, digest: bytes) -> bytes:
    """A 65-byte signature r ++ s ++ y_parity of a 32-byte digest (RFC 6979: deterministic,
    so the same key and digest always give the same signature), with low s as Ethereum wants."""
    signature: bytes = PrivateKey(key).sign_recoverable(digest, hasher=None)
    return signature


def recover_signer(digest: bytes, signature: bytes) -> bytes | None:
    """The address that made `signature` (`sign_digest`'s layout) of `digest`, or None."""
    if len(signature) != 65:
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    return recover_address(digest, signature[64], r, s)


def key_address(key: bytes) -> bytes:
    """The 20-byte address of a private key."""
    return keccak(PrivateKey(key).public_key.format(compressed=False)[1:])[12:]

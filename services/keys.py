"""Key files: every private key a node or the devnet generates lives in one of these.

    a key file = "0x" ++ 64 hex digits ++ "\\n", mode 0600, in a directory of mode 0700

A new key is 32 random bytes from the OS (`secrets`), never derived from anything public (an
app name, a chain id), and never logged: callers log the key's address. A key file that other
users can read is refused, as ssh refuses such an identity file: whoever could read it may
already have signed with it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from rollup.crypto import SECP256K1_N, key_address
from rollup.errors import ConfigError

__all__ = [
    "KeyFileError",
    "create_key",
    "load_key",
    "load_or_create_key",
    "address_of",
    "read_private",
    "write_private",
]


class KeyFileError(ConfigError):
    """A key file that is missing, malformed or readable by others."""


def _random_key() -> bytes:
    while True:
        key = secrets.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return key


def write_private(path: Path, text: str) -> bool:
    """Write `text` to `path` with mode 0600 (its directory 0700), all at once: False if
    another process created `path` first (theirs is kept)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if `path` exists
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def read_private(path: Path, what: str = "key file") -> str:
    """The stripped text of `path`; KeyFileError if it is missing, unreadable, or readable by
    other users (then whoever could read it may already have used it)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{what} {path} is accessible by other users (mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod 600 {path}`"
        )
    return text


def create_key(path: Path) -> bytes:
    """Write a new random key to `path` (which must not exist) with mode 0600."""
    key = _random_key()
    if not write_private(path, f"0x{key.hex()}\n"):
        return load_key(path)  # another process created it meanwhile: keep theirs
    return key


def load_key(path: Path) -> bytes:
    """The key in `path`; KeyFileError if it is missing, malformed, or readable by others."""
    text = read_private(path)
    digits = text[2:] if text.startswith(("0x", "0X")) else text
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        key = b""
    if len(key) != 32 or not 0 < int.from_bytes(key, "big") < SECP256K1_N:
        raise KeyFileError(f"key file {path} does not hold a secp256k1 private key (32 bytes hex)")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`, created at random on first use."""
    if path.exists():
        return load_key(path)
    return create_key(path)


def address_of(key: bytes) -> str:
    """The key's address as 0x-prefixed lowercase hex (what logs and state files show)."""
    return "0x" + key_address(key).hex()

"""The admin service's bearer tokens: an admin token (everything) and a read-only token, each
32 random bytes from the OS, written at first start into `DATA/admin/` (mode 0700) as files
of mode 0600 and refused if other users can read them, as key files are (services/keys.py).

    DATA/admin/admin.token   the operator's token: reads and changes; the nodes require it
                             for their admin_ JSON-RPC methods ($ROLLUP_ADMIN_TOKEN_FILE)
    DATA/admin/read.token    a token that can only read (dashboards, monitoring)

Tokens are compared in constant time (`Tokens.role_of`).
"""

from __future__ import annotations

import enum
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.keys import KeyFileError, read_private, write_private

__all__ = ["Role", "Tokens", "admin_token_path", "ensure_tokens", "read_token"]

MAX_TOKEN_CHARS = 256


class Role(enum.Enum):
    ADMIN = "admin"
    READ = "read"


@dataclass(frozen=True, slots=True)
class Tokens:
    admin: str
    read: str
    admin_file: Path
    read_file: Path

    def role_of(self, presented: str) -> Role | None:
        """The role a presented token grants, or None; both compared in constant time."""
        given = presented.encode()[:MAX_TOKEN_CHARS]
        is_admin = hmac.compare_digest(given, self.admin.encode())
        is_read = hmac.compare_digest(given, self.read.encode())
        if is_admin:
            return Role.ADMIN
        return Role.READ if is_read else None


def tokens_dir(data_dir: Path) -> Path:
    return data_dir / "admin"


def admin_token_path(data_dir: Path) -> Path:
    return tokens_dir(data_dir) / "admin.token"


def ensure_tokens(data_dir: Path) -> Tokens:
    """The tokens of `data_dir`, each created at random on first use."""
    admin_file, read_file = admin_token_path(data_dir), tokens_dir(data_dir) / "read.token"
    return Tokens(_load_or_create(admin_file), _load_or_create(read_file), admin_file, read_file)


def read_token(path: Path) -> str:
    """The token in `path`; KeyFileError if it is missing, empty or readable by others."""
    token = read_private(path, "token file")
    if not 16 <= len(token) <= MAX_TOKEN_CHARS:
        raise KeyFileError(f"token file {path} does not hold a token (16 to 256 characters)")
    return token


def _load_or_create(path: Path) -> str:
    if not path.exists():
        write_private(path, f"{secrets.token_urlsafe(32)}\n")  # another's, if first, is kept
    return read_token(path)

"""Key files: random, private, refused when others can read them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.keys import KeyFileError, address_of, load_key, load_or_create_key


def test_a_new_key_is_random_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "a.key"
    first = load_or_create_key(path)
    assert load_or_create_key(path) == first  # the second call reads it back
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(tmp_path / "keys" / "b.key") != first
    assert address_of(first).startswith("0x") and len(address_of(first)) == 42


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    load_or_create_key(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key(path)


@pytest.mark.parametrize("text", ["", "0x1234", "zz" * 32, "0x" + "00" * 32, "0x" + "ff" * 32])
def test_a_malformed_key_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="does not hold"):
        load_key(path)


def test_a_missing_key_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "nope.key")

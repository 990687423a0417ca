"""A node's bus settings: its key, whom it trusts, its NATS credentials, the private socket dir."""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from services.bus.embedded import private_directory
from services.bus.nats import redact
from services.bus.nats_auth import chain_permissions, load_credentials, load_or_create_credentials
from services.bus.settings import SEQUENCER_KEY, bus_settings
from services.bus.transport import BusConfigError, open_transport
from services.bus.trust import TrustFile, write_sequencers
from services.keys import load_key
from services.settings import BusSection, add_arguments, load_settings


def parse(*argv: str) -> BusSection:
    parser = argparse.ArgumentParser()
    add_arguments(parser, ["bus"])
    return load_settings(parser.parse_args(list(argv))).bus


def test_no_bus_no_settings(tmp_path: Path) -> None:
    assert bus_settings(parse(), tmp_path) is None
    with pytest.raises(BusConfigError, match="need --bus"):
        bus_settings(parse("--sequencers", "x.json"), tmp_path)


def test_the_node_key_is_created_once_and_trust_comes_from_the_file(tmp_path: Path) -> None:
    sequencers = tmp_path / "sequencers.json"
    write_sequencers(sequencers, {7: b"\x07" * 20})
    settings = bus_settings(
        parse("--bus", "unix:///tmp/b", "--sequencers", str(sequencers)), tmp_path
    )
    assert settings is not None
    key_file = tmp_path / SEQUENCER_KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings.key == load_key(key_file)
    assert settings.trust.address(7) == b"\x07" * 20 and settings.trust.address(8) is None
    again = bus_settings(parse("--bus", "unix:///tmp/b"), tmp_path)
    assert again is not None and again.key == settings.key  # the same key after a restart
    assert again.trust.address(7) is None  # no file: nobody is trusted
    assert settings.key.hex() not in repr(settings)


def test_the_trust_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "sequencers.json"
    write_sequencers(path, {1: b"\x01" * 20})
    trust = TrustFile(path)
    write_sequencers(path, {1: b"\x01" * 20, 2: b"\x02" * 20})
    os.utime(path, ns=(1, 1))  # a different stamp, whatever the clock's resolution
    trust._looked = 0.0  # (it looks at most once a second)
    assert trust.address(2) == b"\x02" * 20 and trust.generation == 2
    path.write_text("{not json")
    os.utime(path, ns=(2, 2))
    trust._looked = 0.0
    assert trust.address(2) == b"\x02" * 20  # a broken file: the previous table stays


def test_credentials_files(tmp_path: Path) -> None:
    path = tmp_path / "creds" / "nats-1.json"
    made = load_or_create_credentials(path, "chain-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(path) == made and len(made.password) >= 32
    assert made.password not in repr(made)
    path.chmod(0o644)
    with pytest.raises(BusConfigError, match="chmod 600"):
        load_credentials(path)
    path.chmod(0o600)
    path.write_text(json.dumps({"user": "x"}))
    with pytest.raises(BusConfigError, match="expected"):
        load_credentials(path)
    with pytest.raises(BusConfigError, match="unix:// bus takes none"):
        open_transport("unix:///tmp/b", made)


def test_a_chain_may_send_only_as_itself() -> None:
    permissions = chain_permissions(5)
    assert "rollup.bus.msg.*.5" in permissions["publish"]
    assert "rollup.bus.ctl.*.5" in permissions["publish"]
    assert not any(
        s.startswith(("rollup.bus.msg", "rollup.bus.deliver")) and not s.endswith("5")
        for s in permissions["publish"] + permissions["subscribe"]
    )
    assert not any(s.startswith("rollup.bus.msg") for s in permissions["subscribe"])


def test_urls_in_logs_hide_passwords() -> None:
    assert redact("nats://u:secret@h:4222") == "nats://u:***@h:4222"
    assert redact("nats://h:4222") == "nats://h:4222"


def test_the_socket_directory_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = tmp_path / "a" / "bus"
    private_directory(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    with caplog.at_level(logging.WARNING):
        private_directory(open_dir)
    assert stat.S_IMODE(open_dir.stat().st_mode) == 0o700
    assert "made it 0700" in caplog.text

"""The one settings model: flags > environment > rollup.toml > defaults, one-line errors naming
the flag, the variable or the key, the names the devnet passes kept; and the one logging setup."""

from __future__ import annotations

import argparse
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollup.errors import ConfigError
from rollup.manifest import SETTINGS_TABLES
from services.logs import configure_logging
from services.node import NODE_SETTINGS, writable_dir
from services.settings import (
    OPTIONS,
    SECTIONS,
    Settings,
    add_arguments,
    load_settings,
    require,
)
from services.verifier import VERIFIER_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
INBOX = "0x" + "11" * 20
PORTAL = "0x" + "22" * 20


@pytest.fixture
def app(tmp_path: Path) -> Path:
    directory = tmp_path / "app"
    directory.mkdir()
    write_toml(directory, "")
    return directory


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in OPTIONS.values():
        if option.env:
            monkeypatch.delenv(option.env, raising=False)


def write_toml(app_dir: Path, tables: str) -> None:
    (app_dir / "rollup.toml").write_text('[app]\nname = "a"\n' + tables, encoding="utf-8")


def node(app_dir: Path, *argv: str) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, NODE_SETTINGS)
    return load_settings(parser.parse_args(["--app-dir", str(app_dir), *argv]))


def refused(app_dir: Path, *argv: str) -> str:
    with pytest.raises(ConfigError) as caught:
        node(app_dir, *argv)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_without_any_source(app: Path) -> None:
    settings = node(app)
    assert settings.node.host == "127.0.0.1" and settings.node.port is None
    assert settings.da.backend is None and settings.da.mode == "calldata"
    assert settings.l1.portal is None and settings.l1.poll == 0.25
    assert settings.rpc.cors_origins == ("*",) and settings.rpc.gas_cap == 50_000_000
    assert settings.log.level == "info" and settings.log.format == "text"


def test_flags_beat_the_environment_which_beats_rollup_toml(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_toml(
        app,
        '[da]\nmode = "blobs"\ninbox_from_block = 3\nmax_delay = 0.5\n[rpc]\ngas_cap = 100000\n',
    )
    assert node(app).da.mode == "blobs"  # rollup.toml over the default
    monkeypatch.setenv("ROLLUP_DA_MODE", "calldata")
    monkeypatch.setenv("ROLLUP_INBOX_BLOCK", "7")
    settings = node(app, "--inbox-from-block", "9")
    assert settings.da.mode == "calldata"  # the environment over rollup.toml
    assert settings.da.inbox_from_block == 9  # a flag over both
    assert settings.da.max_delay == 0.5 and settings.rpc.gas_cap == 100_000  # the rest stays


def test_the_devnets_environment_names_are_kept(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """services/devnet.py starts every node with these."""
    for name, value in {
        "ROLLUP_DA": "local",
        "ROLLUP_DA_MODE": "blobs",
        "ROLLUP_INBOX": INBOX,
        "ROLLUP_INBOX_BLOCK": "12",
        "ROLLUP_BATCHER_KEY_FILE": "/k/batcher.key",
        "ROLLUP_PORTAL": PORTAL,
        "ROLLUP_PORTAL_BLOCK": "12",
        "ROLLUP_L1_RPC": "http://127.0.0.1:8545",
    }.items():
        monkeypatch.setenv(name, value)
    settings = node(app)
    assert (settings.da.backend, settings.da.mode, settings.da.inbox) == (
        "local",
        "blobs",
        b"\x11" * 20,
    )
    assert settings.da.inbox_from_block == 12
    assert settings.da.batcher_key_file == Path("/k/batcher.key")
    assert settings.l1.portal == b"\x22" * 20 and settings.l1.portal_from_block == 12
    assert settings.l1.rpc == "http://127.0.0.1:8545"


def test_an_empty_variable_is_unset(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLUP_L1_RPC", "")  # what the devnet passes without an L1
    assert node(app).l1.rpc is None


def test_paths_in_rollup_toml_are_relative_to_the_app(app: Path) -> None:
    write_toml(
        app, '[da]\nbatcher_key_file = "keys/batcher.key"\n[verifier]\nda_dirs = ["../other/da"]\n'
    )
    settings = node(app)
    assert settings.da.batcher_key_file == app / "keys" / "batcher.key"
    assert settings.verifier.da_dirs == (app / "../other/da",)
    assert node(app, "--batcher-key-file", "mine.key").da.batcher_key_file == Path("mine.key")


def test_lists_from_flags_variables_and_rollup_toml(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert node(app, "--cors-origins", "http://a, http://b").rpc.cors_origins == (
        "http://a",
        "http://b",
    )
    monkeypatch.setenv("ROLLUP_RPC_TRUSTED_ORIGINS", "http://localhost:3000")
    assert node(app).rpc.trusted_origins == ("http://localhost:3000",)
    write_toml(app, '[rpc]\nhosts = ["node.example"]\n')
    assert node(app).rpc.hosts == ("node.example",)


def test_the_database_comes_from_the_sequencer_table(app: Path) -> None:
    write_toml(app, '[sequencer]\ndatabase = "sqlite:////tmp/x.db"\n')
    assert node(app).node.db_url == "sqlite:////tmp/x.db"
    assert node(app, "--db-url", "postgresql://x").node.db_url == "postgresql://x"


@pytest.mark.parametrize(
    ("argv", "environment", "message"),
    [
        (["--da-mode", "blob"], {}, "--da-mode: input should be 'calldata' or 'blobs', got 'blob'"),
        (["--da", "s3"], {}, "--da: input should be 'local' or 'ethereum', got 's3'"),
        (["--inbox", "0xzz"], {}, "--inbox: expected a 20-byte hex address, got '0xzz'"),
        (
            [],
            {"ROLLUP_PORTAL": "0x1234"},
            "ROLLUP_PORTAL: expected a 20-byte hex address, got '0x1234'",
        ),
        (["--port", "http"], {}, "--port: input should be a valid integer"),
        (["--port", "70000"], {}, "--port: input should be less than or equal to 65535"),
        (
            [],
            {"ROLLUP_INBOX_BLOCK": "-1"},
            "ROLLUP_INBOX_BLOCK: input should be greater than or equal to 0",
        ),
        (["--l1-poll", "0"], {}, "--l1-poll: input should be greater than 0"),
        (["--log-format", "xml"], {}, "--log-format: input should be 'text' or 'json', got 'xml'"),
        ([], {"ROLLUP_LOG_LEVEL": "loud"}, "ROLLUP_LOG_LEVEL: input should be"),
    ],
)
def test_a_bad_flag_or_variable_is_one_line_naming_it(
    app: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    environment: dict[str, str],
    message: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert refused(app, *argv).startswith(message)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ("[rpc]\ngas_cp = 1\n", "rollup.toml: rpc.gas_cp: unknown key; did you mean gas_cap?"),
        (
            '[da]\nbackend = "s3"\n',
            "rollup.toml da.backend: input should be 'local' or 'ethereum', got 's3'",
        ),
        (
            '[da]\ninbox_from_block = "12"\n',
            "rollup.toml da.inbox_from_block: input should be a valid integer, got '12'",
        ),
        ('[l1]\npoll = "fast"\n', "rollup.toml l1.poll: input should be a valid number"),
        ('[l1]\nportal = "0x12"\n', "rollup.toml l1.portal: expected a 20-byte hex address"),
        ("[log]\nformat = 1\n", "rollup.toml log.format: input should be 'text' or 'json'"),
        ("[bus]\nurl = 5\n", "rollup.toml bus.url: input should be a valid string, got 5"),
        (
            '[node]\ndb_url = "x"\n',
            "rollup.toml: node.db_url: unknown key (known: host, port, data_dir)",
        ),
        ('[verifier]\nda_dirs = "a"\n', ""),  # one path is a list of one
        ("[rcp]\ngas_cap = 1\n", "[rcp]: unknown table; did you mean [rpc]?"),
    ],
)
def test_a_bad_settings_table_is_one_line_naming_the_key(
    app: Path, tables: str, message: str
) -> None:
    write_toml(app, tables)
    if not message:
        node(app)
        return
    assert refused(app).startswith(message)


def test_required_settings_name_every_source(app: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^--port is required \(or \$ROLLUP_NODE_PORT or "
        r"rollup.toml \[node\] port\)$",
    ):
        require(node(app), "node.port")
    write_toml(app, "[node]\nport = 8546\n")
    require(node(app), "node.port")


def test_each_process_has_its_own_flags() -> None:
    for paths in (NODE_SETTINGS, VERIFIER_SETTINGS):
        parser = argparse.ArgumentParser()
        add_arguments(parser, paths)  # no flag twice (the node's --port, the verifier's)
    verifier = argparse.ArgumentParser()
    add_arguments(verifier, VERIFIER_SETTINGS)
    flags = {a.option_strings[0] for a in verifier._actions if a.option_strings}
    assert {"--l1-rpc", "--inbox", "--portal", "--da-dir", "--port", "--log-format"} <= flags
    assert "--da" not in flags and "--batcher-key-file" not in flags


def test_rollup_toml_takes_the_settings_tables() -> None:
    assert set(SECTIONS) == set(SETTINGS_TABLES)


def test_the_docstring_table_names_every_setting() -> None:
    import services.settings

    table = services.settings.__doc__ or ""
    for option in OPTIONS.values():
        assert option.path in table and option.flag in table, option
        assert not option.env or option.env in table or "(and so on)" in table, option


def test_an_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"^--data-dir .*file/data: cannot write there \("):
        writable_dir(blocker / "data")
    assert writable_dir(tmp_path / "new" / "data").is_dir()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data-dir", "{blocker}/data", "--port", "1"], "--data-dir {blocker}/data: cannot"),
        (
            ["--data-dir", "{tmp}/d", "--port", "1", "--inbox", "nope"],
            "--inbox: expected a 20-byte hex address, got 'nope'",
        ),
        (
            ["--data-dir", "{tmp}/d", "--port", "1", "--da", "ethereum"],
            "--da ethereum needs --l1-rpc, --inbox, --batcher-key-file",
        ),
        (["--data-dir", "{tmp}/d"], "--port is required"),
    ],
)
def test_the_node_process_refuses_bad_settings_in_one_line(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = [a.format(blocker=blocker, tmp=tmp_path) for a in argv]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.node",
            "--app-dir",
            str(ROOT / "examples" / "token"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {message.format(blocker=blocker)}")
    assert done.stderr.count("\n") == 1


# ---- the one logging setup ----


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, given back as the test found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_are_one_object_a_line(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out, force=True)
    log = logging.getLogger("services.example")
    log.info("block %d sealed", 7)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    log.debug("not shown")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "services.example"
    assert first["message"] == "block 7 sealed" and first["time"].endswith("Z")
    assert "exception" not in first
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_the_format_comes_from_the_environment_and_calling_again_replaces_it(
    root_logger: logging.Logger,
) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first, environ={"ROLLUP_LOG_FORMAT": "json"}, force=True)
    configure_logging("warning", stream=second, environ={}, force=True)
    logging.getLogger("services.example").warning("once")
    assert first.getvalue() == ""
    assert second.getvalue().rstrip().endswith("WARNING services.example: once")
    with pytest.raises(ConfigError, match="^ROLLUP_LOG_FORMAT: expected one of text, json"):
        configure_logging(environ={"ROLLUP_LOG_FORMAT": "xml"}, force=True)


def test_it_leaves_a_logger_configured_by_someone_else_alone(
    root_logger: logging.Logger,
) -> None:
    """pytest's handlers, when a test runs a command in process."""
    assert root_logger.handlers  # pytest's own
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    logging.getLogger("services.example").warning("not ours")
    assert out.getvalue() == ""


def test_modules_log_under_their_own_name() -> None:
    """`getLogger(__name__)` everywhere; the entry points call configure_logging, not
    logging.basicConfig."""
    strays = []
    for package in [p for p in ROOT.iterdir() if (p / "__init__.py").is_file()]:
        for path in package.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "logging.basicConfig(" in text or 'log = logging.getLogger("' in text:
                strays.append(str(path.relative_to(ROOT)))
    assert strays == []

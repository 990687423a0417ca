"""Every way a `rollup` command can fail on what the user gave it ends in one line on stderr
(what is wrong, and what to do) and a non-zero exit code: never a traceback, never a usage
page, and nothing started or written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli import main

# Each case: the arguments (after `rollup`), given a directory with an app `tok` and files in
# it, and a word the one line must hold.
Case = tuple[Callable[[Path], list[str]], str]

CASES: dict[str, Case] = {
    "unknown command": (lambda d: ["frob"], "invalid choice"),
    "new: bad name": (lambda d: ["new", "BAD", "--template", "token", "--dir", str(d)], "name"),
    "new: unknown template": (lambda d: ["new", "x", "--template", "nope"], "invalid choice"),
    "new: chain id 0": (
        lambda d: ["new", "x", "--template", "token", "--chain-id", "0", "--dir", str(d)],
        "chain id 0",
    ),
    "new: chain id not a number": (
        lambda d: ["new", "x", "--template", "token", "--chain-id", "ten"],
        "invalid int",
    ),
    "new: over an app": (lambda d: ["new", "tok", "--template", "token", "--dir", str(d)], "empty"),
    "abi: no app": (lambda d: ["abi", str(d / "nothing")], "rollup.toml"),
    "abi: app code that does not parse": (lambda d: ["abi", str(d / "broken")], "syntax"),
    "up: no app dir": (lambda d: ["up", "--data-dir", str(d / "data"), str(d / "no")], "no"),
    "up: a manifest mistake": (
        lambda d: ["up", "--data-dir", str(d / "data"), str(d / "typo")],
        "did you mean chain_id",
    ),
    "up: unknown DA": (lambda d: ["up", "--da", "nope", str(d / "tok")], "invalid choice"),
    "up: unwritable data dir": (
        lambda d: ["up", "--data-dir", "/proc/rollup-cannot", str(d / "tok")],
        "cannot write there",
    ),
    "status: no devnet": (lambda d: ["status", "--data-dir", str(d / "data")], "rollup up"),
    "verify: no app": (lambda d: ["verify"], "APP"),
    "verify: no devnet": (lambda d: ["verify", "--data-dir", str(d / "data"), "tok"], "devnet"),
    "bridge: no devnet": (
        lambda d: ["bridge", "deposit", "tok", "--amount", "1", "--data-dir", str(d / "data")],
        "rollup up",
    ),
    "bridge: bad amount": (lambda d: ["bridge", "deposit", "tok", "--amount", "lots"], "amount"),
    "bridge: key and key file": (
        lambda d: (
            ["bridge", "withdraw", "tok", "--amount", "1", "--key", "0x" + "11" * 32]
            + ["--key-file", str(d / "k")]
        ),
        "not allowed with argument",
    ),
    "bridge: key file not a key": (
        lambda d: ["bridge", "withdraw", "tok", "--amount", "1", "--key-file", str(d / "k")],
        "private key",
    ),
    "bridge: no key file": (
        lambda d: ["bridge", "withdraw", "tok", "--amount", "1", "--key-file", str(d / "none")],
        "none",
    ),
    "bridge status: no devnet": (
        lambda d: ["bridge", "status", "tok", "--data-dir", str(d / "data")],
        "rollup up",
    ),
    "l1 deploy: no key file": (lambda d: ["l1", "deploy", "--l1-rpc", "http://x"], "--key-file"),
    "l1 deploy: not a key": (
        lambda d: ["l1", "deploy", "--l1-rpc", "http://127.0.0.1:9", "--key-file", str(d / "k")],
        "private key",
    ),
    "l1 deploy: L1 unreachable": (
        lambda d: ["l1", "deploy", "--l1-rpc", "http://127.0.0.1:9", "--key-file", str(d / "key")],
        "L1 unreachable",
    ),
    "bench: unknown benchmark": (lambda d: ["bench", "nope"], "invalid choice"),
    "bench: bad option": (lambda d: ["bench", "transfers", "--n", "many"], "invalid int"),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    assert main(["new", "tok", "--template", "token", "--dir", str(root)]) == 0
    assert main(["new", "broken", "--template", "token", "--dir", str(root)]) == 0
    (root / "broken" / "app.py").write_text("def (\n")
    (root / "typo").mkdir()
    (root / "typo" / "rollup.toml").write_text('[app]\nname = "typo"\nchainid = 5\n')
    (root / "k").write_text("not a key\n")
    (root / "key").write_text("0x" + "11" * 32 + "\n")
    for key in ("k", "key"):
        (root / key).chmod(0o600)
    return root


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit:  # argparse's own exit, after its message
        return int(exit.code or 0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failure_is_one_line_and_a_nonzero_exit(
    case: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(workdir)
    argv, word = CASES[case]
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    capsys.readouterr()
    assert run(argv(workdir)) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rollup"), err
    assert word in err, err
    assert "Traceback" not in err
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before

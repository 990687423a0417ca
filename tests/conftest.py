"""Shared fixtures: a rendered token app directory for in-process tests.

Tests marked `slow` are skipped unless selected with `-m slow` (or any -m expression naming
`slow`) or ROLLUP_SLOW=1 is set, so the default run stays short.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.scaffold import scaffold


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or "") or os.environ.get("ROLLUP_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or ROLLUP_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


def render_template(
    dest: Path, template: str = "token", name: str = "tok", chain_id: int = 901001
) -> Path:
    """An app folder as `rollup new` writes it (services/scaffold.py), with the tests' names."""
    return scaffold(dest, template, name, chain_id)


TOKEN_CHAIN, BOOK_CHAIN = 901001, 902002


def render_book(
    dest: Path, name: str = "book", chain_id: int = BOOK_CHAIN, trading: bool = True
) -> Path:
    """The orderbook template as app `name`, whose base asset is the token app of chain
    901001 unless `trading` is false."""
    edits = {"token_chain = 0": f"token_chain = {TOKEN_CHAIN}"} if trading else None
    return scaffold(dest, "orderbook", name, chain_id, edits)


def render_pair(root: Path, trading: bool = True) -> tuple[Path, Path]:
    """The token template as app `token` (chain 901001) and the orderbook template as `book`
    (902002), whose base asset is that token unless `trading` is false: two apps that message
    each other over the bus. Their directories, in root/token and root/book."""
    token = scaffold(root / "token", "token", "token", TOKEN_CHAIN)
    return token, render_book(root / "book", trading=trading)


@pytest.fixture
def token_app(tmp_path: Path) -> Path:
    return render_template(tmp_path / "tok")

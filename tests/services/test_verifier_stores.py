"""The verifier process reads its sources' local DA stores: several stores behind one `local`
backend, and a devnet store's neighbours found without configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from da.errors import DataNotFound
from da.local import LocalDA
from services.verifier import LocalStores, devnet_neighbours


def test_a_reference_is_read_from_whichever_store_holds_it(tmp_path: Path) -> None:
    own, source = LocalDA(tmp_path / "own"), LocalDA(tmp_path / "source")
    mine, theirs = own.submit(b"own batch"), source.submit(b"source batch")
    stores = LocalStores([LocalDA(tmp_path / n, readonly=True) for n in ("own", "source")])
    assert (stores.get(mine), stores.get(theirs)) == (b"own batch", b"source batch")
    with pytest.raises(DataNotFound):
        stores.get(LocalDA(tmp_path / "third").submit(b"elsewhere"))


def test_a_devnet_store_brings_its_neighbours(tmp_path: Path) -> None:
    for name in ("token", "book", "evm"):
        (tmp_path / "apps" / name / "da").mkdir(parents=True)
    (tmp_path / "apps" / "nodb").mkdir()  # an app that never posted: no store
    store = tmp_path / "apps" / "book" / "da"
    assert devnet_neighbours(store) == [tmp_path / "apps" / n / "da" for n in ("evm", "token")]
    assert devnet_neighbours(tmp_path / "book" / "da") == []  # not a devnet's layout
    assert devnet_neighbours(tmp_path / "apps" / "book") == []

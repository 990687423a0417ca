import pytest

from rollup.errors import ManifestError
from rollup.manifest import default_chain_id, parse_amount, parse_manifest


def test_minimal_manifest_gets_defaults() -> None:
    m = parse_manifest('[app]\nname = "demo"\n')
    assert m.vm == "native" and m.code == "app.py" and m.chain_id == default_chain_id("demo")
    assert m.block_interval_ms == 10 and m.base_fee == 10**9 and m.dev_accounts


def test_amounts() -> None:
    assert parse_amount("1 gwei", "x") == 10**9
    assert parse_amount("0.5 ether", "x") == 5 * 10**17
    assert parse_amount("0.1 ether", "x") == 10**17
    assert parse_amount("1.000000000000000001 ether", "x") == 10**18 + 1
    assert parse_amount(7, "x") == 7


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[app", "not valid TOML"),
        ('[app]\nname = "Bad Name"', "app.name"),
        ('[app]\nname = "a"\nvm = "wasm"', "app.vm"),
        ('[app]\nname = "a"\nchain_id = 0', "app.chain_id"),
        ('[app]\nname = "a"\nchain_id = 9007199254740992', "app.chain_id"),
        ('[app]\nname = "a"\n[sequencer]\nbase_fee = "1 dollar"', "sequencer.base_fee"),
        ('[app]\nname = "a"\n[sequencer]\nbase_fee = "0.5 wei"', "sequencer.base_fee"),
        ('[app]\nname = "a"\n[sequencer]\nbase_fee = "x gwei"', "sequencer.base_fee"),
        ('[app]\nname = "a"\n[sequencer]\nblock_interval_ms = -1', "block_interval_ms"),
        ("app = 3", "[app] must be a table"),
    ],
)
def test_bad_manifests_name_the_field(text: str, needle: str) -> None:
    with pytest.raises(ManifestError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_manifest(text)

"""The evm template ships the AppBus interface apps compile against: it must stay the one the
node's AppBus system contract implements."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_the_template_interface_is_the_system_contracts() -> None:
    shipped = REPO / "rollup" / "templates" / "evm" / "contracts" / "IAppBus.sol"
    assert shipped.read_text() == (REPO / "vm" / "contracts" / "IAppBus.sol").read_text()

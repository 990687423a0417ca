"""The evm template ships the AppBus interface apps compile against: it must stay the one the
node's AppBus system contract implements."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CONTRACTS = REPO / "services" / "templates" / "evm" / "contracts"


def test_the_template_interface_is_the_system_contracts() -> None:
    shipped = CONTRACTS / "IAppBus.sol"
    assert shipped.read_text() == (REPO / "vm" / "contracts" / "IAppBus.sol").read_text()


def test_the_template_l2_to_l1_interface_matches_the_system_contract() -> None:
    """IL2ToL1 (what apps compile against) and L2ToL1 (what runs at 0x...0f0004) agree on
    initiateWithdrawal and on the WithdrawalInitiated event the node reads."""
    from bridge.solc import compile_files

    interface = compile_files([CONTRACTS / "IL2ToL1.sol"])
    system = compile_files([REPO / "vm" / "contracts" / "L2ToL1.sol"])

    def entries(abi: list[dict[str, object]]) -> list[object]:
        names = ("initiateWithdrawal", "WithdrawalInitiated")
        return sorted((str(e), e) for e in abi if e.get("name") in names)  # type: ignore[misc]

    assert entries(interface["IL2ToL1"].abi) == entries(system["L2ToL1"].abi)
    assert len(entries(system["L2ToL1"].abi)) == 2

"""Which apps a devnet runs: each app directory's `rollup.toml` read, and two apps with the same
name or chain id refused, before anything starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_utils import to_checksum_address

from rollup.errors import RollupError
from rollup.manifest import parse_manifest
from services.devnet.errors import DevnetError

__all__ = ["AppSpec", "load_app_specs"]


@dataclass(frozen=True, slots=True)
class AppSpec:
    """One app to run, read from its `rollup.toml`."""

    app_dir: Path
    name: str
    chain_id: int
    vm: str
    address: str  # EIP-55 checksummed


def load_app_specs(app_dirs: Sequence[Path]) -> list[AppSpec]:
    """Read each app's manifest; refuse two apps with the same name or chain id."""
    specs = [_load_app_spec(Path(d)) for d in app_dirs]
    _refuse_duplicates(specs, "name", [s.name for s in specs])
    _refuse_duplicates(specs, "chain id", [s.chain_id for s in specs])
    return specs


def _load_app_spec(app_dir: Path) -> AppSpec:
    manifest_path = app_dir / "rollup.toml"
    if not manifest_path.is_file():
        raise DevnetError(f"{app_dir}: no rollup.toml (is it an app directory?)")
    try:
        manifest = parse_manifest(manifest_path.read_text(encoding="utf-8"))
    except (RollupError, OSError) as exc:
        raise DevnetError(f"{manifest_path}: {exc}") from None
    return AppSpec(
        app_dir=app_dir.resolve(),
        name=manifest.name,
        chain_id=manifest.chain_id,
        vm=manifest.vm,
        address=to_checksum_address(manifest.address),
    )


def _refuse_duplicates(specs: list[AppSpec], what: str, keys: Sequence[object]) -> None:
    for index, key in enumerate(keys):
        if key in keys[:index]:
            first = specs[keys.index(key)].app_dir
            raise DevnetError(
                f"two apps with the same {what} {key}: {first} and {specs[index].app_dir}"
            )

"""Read an app directory: its manifest and its code, compiling an EVM app's Solidity first.

app_dir/rollup.toml            the manifest (rollup/manifest.py)
app_dir/app.py                 native: the app's module
app_dir/contracts/*.sol        evm: the sources (every file in the directory of app.code)
app_dir/build/CLASS.json       evm: the compiled contract, rebuilt when the sources change
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bridge.solc import SolcError, compile_files
from rollup.crypto import keccak
from rollup.errors import ManifestError
from rollup.manifest import Manifest, parse_manifest
from vm.evm.artifact import Artifact, parse_artifact

__all__ = ["AppBundle", "load_app", "build_evm_app"]


@dataclass(frozen=True, slots=True)
class AppBundle:
    manifest: Manifest
    code: str | Artifact  # a native app's source, or an EVM app's compiled contract


def load_app(app_dir: Path) -> AppBundle:
    manifest_path = app_dir / "rollup.toml"
    if not manifest_path.is_file():
        raise ManifestError(f"{manifest_path} is missing")
    manifest = parse_manifest(manifest_path.read_text(encoding="utf-8"))
    if manifest.vm == "evm":
        return AppBundle(manifest, build_evm_app(app_dir, manifest))
    code = app_dir / manifest.code
    if not code.is_file():
        raise ManifestError(f"app.code: {code} is missing")
    return AppBundle(manifest, code.read_text(encoding="utf-8"))


def _sources(app_dir: Path, manifest: Manifest) -> list[Path]:
    main = app_dir / manifest.code
    if not main.is_file():
        raise ManifestError(f"app.code: {main} is missing")
    return [main] + sorted(p for p in main.parent.glob("*.sol") if p != main)


def _source_hash(paths: list[Path]) -> bytes:
    return keccak(b"".join(keccak(p.name.encode()) + keccak(p.read_bytes()) for p in paths))


def build_evm_app(app_dir: Path, manifest: Manifest) -> Artifact:
    """The app's contract from build/, compiled again first if its sources changed."""
    paths = _sources(app_dir, manifest)
    digest = _source_hash(paths)
    target = app_dir / manifest.artifact
    if target.is_file():
        try:
            artifact = parse_artifact(target.read_text(encoding="utf-8"))
        except ManifestError:
            artifact = None  # damaged: build it again
        if artifact is not None and artifact.source_hash == digest:
            return artifact
    try:
        compiled = compile_files(paths)
    except SolcError as exc:
        raise ManifestError(f"{paths[0]} does not compile:\n{exc}") from None
    contract = compiled.get(manifest.class_name or "")
    if contract is None:
        raise ManifestError(f"app.class: no contract {manifest.class_name!r} in {paths[0].name}")
    artifact = Artifact(contract.name, contract.abi, contract.bytecode, contract.deployed, digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(artifact.to_json(), encoding="utf-8")
    temporary.replace(target)
    return artifact

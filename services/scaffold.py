"""Rendering an app template into an app directory: what `rollup new` writes, and how the
benchmarks and the tests make their apps.

    render(template, name, chain_id)       {relative path: text} of the rendered app
    scaffold(dest, template, name, ...)    render and write into `dest`; `dest`

A template is a directory of services/templates/: files ending in `.tmpl` get `{{name}}` and
`{{chain_id}}` filled in and lose the suffix; the others are copied as they are (caches and
build output left out). `manifest_edits` replaces text of the rendered rollup.toml, for an
app that needs a setting the template leaves at its default (an orderbook's token chain).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import services.templates
from rollup.errors import ConfigError
from rollup.manifest import default_chain_id
from services.templates import TEMPLATES

__all__ = ["TEMPLATES", "TEMPLATE_DIR", "render", "scaffold", "write_files"]

TEMPLATE_DIR = Path(services.templates.__file__).parent
MANIFEST = Path("rollup.toml")
_SKIP = {"__pycache__", ".pytest_cache", "build"}


def render(template: str, name: str, chain_id: int | None = None) -> dict[Path, str]:
    """The files of `template` by relative path, `.tmpl` files filled in (the chain id
    defaults to the one `rollup new` derives from the name)."""
    root = TEMPLATE_DIR / template
    if template not in TEMPLATES or not root.is_dir():
        raise ConfigError(f"no template {template!r}: one of {', '.join(TEMPLATES)}")
    values = {
        "name": name,
        "chain_id": str(default_chain_id(name) if chain_id is None else chain_id),
    }
    files: dict[Path, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_dir() or _SKIP.intersection(relative.parts) or path.suffix == ".pyc":
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".tmpl":
            relative = relative.with_suffix("")
            for key, value in values.items():
                text = text.replace("{{" + key + "}}", value)
        files[relative] = text
    return files


def write_files(target: Path, files: Mapping[Path, str]) -> None:
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def scaffold(
    dest: Path,
    template: str,
    name: str,
    chain_id: int | None = None,
    manifest_edits: Mapping[str, str] | None = None,
) -> Path:
    """Render `template` into `dest` (made if need be), replacing each `manifest_edits` key
    in the rendered rollup.toml by its value; `dest`."""
    files = render(template, name, chain_id)
    for old, new in (manifest_edits or {}).items():
        if old not in files[MANIFEST]:
            raise ConfigError(f"{template}'s rollup.toml has no {old!r} to replace")
        files[MANIFEST] = files[MANIFEST].replace(old, new)
    dest.mkdir(parents=True, exist_ok=True)
    write_files(dest, files)
    return dest

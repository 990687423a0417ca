"""App templates as data: `rollup new NAME --template T` copies `templates/T/` and fills in
`{{name}}` and `{{chain_id}}` in files ending in `.tmpl` (the suffix is dropped)."""

from __future__ import annotations

__all__ = ["TEMPLATES"]

TEMPLATES = ("token", "counter", "orderbook", "evm")

"""App templates as data: `rollup new NAME --template T` copies `templates/T/` and fills in
`{{name}}` and `{{chain_id}}` in files ending in `.tmpl` (the suffix is dropped). Python files
that talk to a node (the `evm` template's web3.py scripts) are kept as `.py.tmpl`: they are
data here, and this package does no I/O."""

from __future__ import annotations

__all__ = ["TEMPLATES"]

TEMPLATES = ("token", "counter", "orderbook", "evm")

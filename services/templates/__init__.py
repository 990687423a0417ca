"""App templates: app code (it imports the SDK, `vm.native`, and the in-process harness,
`sequencer.harness`) that `rollup new NAME --template T` renders into a new app directory
(services/scaffold.py). Files ending in `.tmpl` get `{{name}}` and `{{chain_id}}` filled in
and lose the suffix; the others are copied as they are. Python files that need the rendered
values or a running node (the `evm` template's web3.py scripts) are kept as `.py.tmpl`."""

from __future__ import annotations

__all__ = ["TEMPLATES"]

TEMPLATES = ("token", "counter", "orderbook", "evm")

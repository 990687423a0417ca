"""Every JSON-RPC method the node serves that reads committed data, by namespace; the dev
accounts' signing methods (services/rpc/wallet.py: private); and the
operator's admin_ methods (services/rpc/admin.py: token-protected, private).

The server adds its own (eth_sendRawTransaction, filters, subscriptions: services/rpc/server.py).
A namespace's methods are declared in its module's `METHODS` table (services/rpc/registry.py
says what a declaration holds); this is the one place they are put together.
"""

from __future__ import annotations

from services.rpc import admin, bridge, debug, eth, messages, net, proofs, txpool, wallet
from services.rpc.registry import Method, compose

__all__ = ["METHODS"]

METHODS: dict[str, Method] = compose(
    eth.METHODS,
    wallet.METHODS,
    txpool.METHODS,
    net.METHODS,
    debug.METHODS,
    proofs.METHODS,
    messages.METHODS,
    bridge.METHODS,
    admin.METHODS,
)

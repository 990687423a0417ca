"""Ethereum JSON-RPC for one app: `codec` parses and formats wire values, `render` shapes
blocks, transactions, receipts and logs, `methods` is the registry of eth_* handlers and
`server` is the thin HTTP layer (batches, limits, error mapping)."""

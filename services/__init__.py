"""Processes and network faces: the JSON-RPC server of each app, the REST admin API, the message
bus transports, the devnet supervisor (Anvil as L1, see `anvil`) and the `rollup` CLI.

Requests come in over HTTP, are decoded here and handed to the components below (`sequencer`,
`da`, `bridge`); their results are encoded and sent back. No business logic lives here.
"""

"""Protocol core: the data every other package speaks.

Signed transactions come in as bytes and leave `transactions.decode_transaction` as
`Transaction` values with a recovered sender; blocks, receipts and logs are plain frozen
dataclasses hashed by `blocks`; `errors` holds the one exception tree and its JSON-RPC table.
Nothing here does I/O: no files, sockets, clocks, randomness or environment.
"""

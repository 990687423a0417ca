"""The cross-app message bus between sequencer processes.

    committed block --outbound--> BusService --frames--> BusTransport ~~> peer's transport
    peer's BusService <--PROGRESS-- ... --MESSAGES--> Sequencer.receive -> inbox -> next block

`service.BusService` ties one node to a transport: it publishes each committed block's outbound
messages with the block's header signed by this chain's sequencer key and their Merkle proof,
hands arriving messages to the node once their source's signature and proofs check out
(`trust.py`: the sequencer addresses this node believes, `--sequencers FILE`), reports its
progress back (signed too), and re-sends from the durable outbox (sequencer/outbox.py) whatever
a destination has not acknowledged. Transports (`transport.BusTransport`) are chosen by URL:
`unix://DIR` (embedded: Unix sockets in a private directory, the default of `rollup up`) or
`nats://HOST:PORT` (NATS JetStream, a user per chain: `nats_auth.py`). The frame grammar is in
`wire.py`; a node's settings in `settings.py`.
"""

"""The cross-app message bus between sequencer processes.

    committed block --outbound--> BusService --frames--> BusTransport ~~> peer's transport
    peer's BusService <--PROGRESS-- ... --MESSAGES--> Sequencer.receive -> inbox -> next block

`service.BusService` ties one node to a transport: it publishes each committed block's outbound
messages, hands arriving messages to the node, reports its progress back, and re-sends from the
durable outbox (sequencer/outbox.py) whatever a destination has not acknowledged. Transports
(`transport.BusTransport`) are chosen by URL: `unix://DIR` (embedded: Unix sockets between the
processes of one machine, the default of `rollup up`) or `nats://HOST:PORT` (NATS JetStream).
The frame grammar is in `wire.py`.
"""

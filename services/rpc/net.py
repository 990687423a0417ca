"""The net_ and web3_ namespaces: who the node is (wallets ask these first)."""

from __future__ import annotations

from rollup.crypto import keccak
from sequencer.node import Sequencer
from services.rpc import codec
from services.rpc.codec import data
from services.rpc.registry import Method, method

__all__ = ["METHODS", "CLIENT_VERSION"]

CLIENT_VERSION = "app-rollup/0.1.0/python"


def net_version(node: Sequencer) -> str:
    return str(node.chain_id)


def net_listening(node: Sequencer) -> bool:
    return True


def net_peer_count(node: Sequencer) -> str:
    return "0x0"  # a dedicated sequencer has no peers to gossip with


def client_version(node: Sequencer) -> str:
    return CLIENT_VERSION


def web3_sha3(node: Sequencer, value: bytes) -> str:
    return data(keccak(value))


METHODS: dict[str, Method] = {
    "net_version": method(net_version),
    "net_listening": method(net_listening),
    "net_peerCount": method(net_peer_count),
    "web3_clientVersion": method(client_version),
    "web3_sha3": method(web3_sha3, codec.parse_data),
}

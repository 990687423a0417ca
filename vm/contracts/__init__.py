"""System contracts of EVM app chains, as data: their Solidity sources sit beside this file."""

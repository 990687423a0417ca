"""Settlement on the L1: Solidity contracts and their build (`build`), and later the L1 client,
deposit watcher, output-root proposer and withdrawal proofs. Imports only `rollup`."""

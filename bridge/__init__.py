"""Settlement on the L1: Solidity contracts and their build (`build`, `solc`), the L1 client
(`l1`: web3.py, signing, EIP-4844 sidecars with `kzg`) and the DA batch inbox's client
(`inbox`); later the deposit watcher, output-root proposer and withdrawal proofs. Imports only
`rollup`."""

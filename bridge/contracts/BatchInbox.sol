// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// The L1 record of app chains' data-availability batches (da/commitment.py).
///
/// Each app chain (by chain id) has one batcher, set by the owner. The batcher commits its
/// batches in block order: a commitment must start at the block after the previous one, so
/// a poster that crashed and retries cannot leave a gap or commit a range twice. Verifiers
/// read `BatchCommitted` events, fetch the data from the DA layer named by `daRef`, check it
/// against `dataHash`, re-execute it and compare their output root with `outputRoot`.
contract BatchInbox {
    struct App {
        address batcher;
        uint64 nextBlock; // first block of the next commitment; 0 until a batcher is set
        uint64 batches; // commitments so far, which also numbers the next one
    }

    address public immutable owner;
    mapping(uint64 => App) public apps;

    event BatcherSet(uint64 indexed chainId, address batcher);
    event BatchCommitted(
        uint64 indexed chainId,
        uint64 indexed index,
        uint64 firstBlock,
        uint64 lastBlock,
        bytes32 dataHash,
        bytes32 outputRoot,
        bytes daRef
    );

    error NotOwner(address sender);
    error NotBatcher(uint64 chainId, address sender);
    error NotNextBlock(uint64 chainId, uint64 expected, uint64 firstBlock);
    error EmptyRange(uint64 firstBlock, uint64 lastBlock);

    constructor() {
        owner = msg.sender;
    }

    /// Set (or rotate) the batcher of `chainId`; the chain's position is kept.
    function setBatcher(uint64 chainId, address batcher) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        App storage app = apps[chainId];
        app.batcher = batcher;
        if (app.nextBlock == 0) app.nextBlock = 1; // block 0 is the genesis, never posted
        emit BatcherSet(chainId, batcher);
    }

    /// Record the batch of blocks firstBlock..lastBlock of `chainId`.
    function commit(
        uint64 chainId,
        uint64 firstBlock,
        uint64 lastBlock,
        bytes32 dataHash,
        bytes32 outputRoot,
        bytes calldata daRef
    ) external returns (uint64 index) {
        App storage app = apps[chainId];
        if (app.batcher == address(0) || msg.sender != app.batcher) {
            revert NotBatcher(chainId, msg.sender);
        }
        if (firstBlock != app.nextBlock) revert NotNextBlock(chainId, app.nextBlock, firstBlock);
        if (lastBlock < firstBlock) revert EmptyRange(firstBlock, lastBlock);
        index = app.batches;
        app.batches = index + 1;
        app.nextBlock = lastBlock + 1;
        emit BatchCommitted(chainId, index, firstBlock, lastBlock, dataHash, outputRoot, daRef);
    }

    function nextBlock(uint64 chainId) external view returns (uint64) {
        return apps[chainId].nextBlock;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// The L1 record of app chains' data-availability batches (da/commitment.py).
///
/// Each app chain (by chain id) has one batcher, set by the owner. The batcher commits its
/// batches in block order: a commitment must start at the block after the previous one, so
/// a poster that crashed and retries cannot leave a gap or commit a range twice, and it may
/// cover at most MAX_BATCH_BLOCKS blocks, so no commitment moves a chain's position far
/// beyond the blocks its sequencer has built. Verifiers read `BatchCommitted` events, fetch the
/// data from the DA layer named by `daRef`, check it against `dataHash`, re-execute it and
/// compare their output root with `outputRoot`.
///
/// A bad batch (a leaked batcher key, a buggy poster) is replaced, not argued about: the owner
/// reverts the chain's commitments from a batch index on (`revertBatches`), which sets the
/// chain's position back to that batch's first block and emits `BatchesReverted`, and the
/// honest batcher commits the range again, under the same indexes. The valid commitments of a
/// chain are its `BatchCommitted` events in log order, each `BatchesReverted(chainId, i, _)`
/// removing those with index >= i that came before it.
contract BatchInbox {
    /// The most blocks one commitment may cover.
    uint64 public constant MAX_BATCH_BLOCKS = 4096;

    struct App {
        address batcher;
        uint64 nextBlock; // first block of the next commitment; 0 until a batcher is set
        uint64 batches; // valid commitments, which also numbers the next one
        uint64 lastCommitTime; // L1 timestamp of the latest commitment (0: none yet)
    }

    struct Batch {
        bytes32 outputRoot;
        uint64 firstBlock; // where a revert resumes
        uint64 committedAt; // L1 timestamp of the commitment
    }

    address public immutable owner;
    mapping(uint64 => App) public apps;
    /// chain id => batch index => the batch; entries at index >= apps[chainId].batches were
    /// reverted and are overwritten by the next commitments (so a revert costs O(1))
    mapping(uint64 => mapping(uint64 => Batch)) internal batchOf;

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
    event BatchesReverted(uint64 indexed chainId, uint64 fromIndex, uint64 nextBlock);

    error NotOwner(address sender);
    error NotBatcher(uint64 chainId, address sender);
    error NotNextBlock(uint64 chainId, uint64 expected, uint64 firstBlock);
    error EmptyRange(uint64 firstBlock, uint64 lastBlock);
    error RangeTooLong(uint64 firstBlock, uint64 lastBlock, uint64 maxBlocks);
    error NoSuchBatch(uint64 chainId, uint64 index, uint64 batches);

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
        if (lastBlock - firstBlock >= MAX_BATCH_BLOCKS) {
            revert RangeTooLong(firstBlock, lastBlock, MAX_BATCH_BLOCKS);
        }
        index = app.batches;
        batchOf[chainId][index] = Batch(outputRoot, firstBlock, uint64(block.timestamp));
        app.batches = index + 1;
        app.nextBlock = lastBlock + 1;
        app.lastCommitTime = uint64(block.timestamp);
        emit BatchCommitted(chainId, index, firstBlock, lastBlock, dataHash, outputRoot, daRef);
    }

    /// Remove the commitments of `chainId` from batch `fromIndex` on: the chain's position
    /// goes back to that batch's first block, and the next commitment is numbered `fromIndex`.
    function revertBatches(uint64 chainId, uint64 fromIndex) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        App storage app = apps[chainId];
        if (fromIndex >= app.batches) revert NoSuchBatch(chainId, fromIndex, app.batches);
        uint64 resume = batchOf[chainId][fromIndex].firstBlock;
        app.batches = fromIndex;
        app.nextBlock = resume;
        emit BatchesReverted(chainId, fromIndex, resume);
    }

    function nextBlock(uint64 chainId) external view returns (uint64) {
        return apps[chainId].nextBlock;
    }

    /// The chain's valid commitments, which also numbers the next one.
    function batchCount(uint64 chainId) external view returns (uint64) {
        return apps[chainId].batches;
    }

    /// L1 timestamp of the chain's latest commitment (a later revert does not change it).
    function lastCommitTime(uint64 chainId) external view returns (uint64) {
        return apps[chainId].lastCommitTime;
    }

    /// The output root of batch `index` and when it was committed; (0, 0) if there is no
    /// such valid batch (never committed, or reverted).
    function output(uint64 chainId, uint64 index)
        external
        view
        returns (bytes32 root, uint64 committedAt)
    {
        if (index >= apps[chainId].batches) return (bytes32(0), 0);
        Batch storage batch = batchOf[chainId][index];
        return (batch.outputRoot, batch.committedAt);
    }

    /// The first block of batch `index` (valid or reverted: where a revert to it resumes).
    function firstBlockOf(uint64 chainId, uint64 index) external view returns (uint64) {
        return batchOf[chainId][index].firstBlock;
    }
}

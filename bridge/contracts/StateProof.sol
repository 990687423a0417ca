// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Checks proofs of the app-rollup state trie (vm/commitment.py) on the L1.
///   leaf  = keccak256(0x00 ++ keccak256(key) ++ value)
///   node  = keccak256(0x01 ++ left ++ right), an empty subtree is bytes32(0)
/// `siblings[0]` is the sibling next to the root; the bit of keccak256(key) at each depth says
/// whether the path went right.
library StateProof {
    function leafHash(bytes32 keyHash, bytes memory value) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(uint8(0), keyHash, value));
    }

    function fold(bytes32 keyHash, bytes32 node, bytes32[] memory siblings)
        internal
        pure
        returns (bytes32)
    {
        for (uint256 i = siblings.length; i > 0; i--) {
            uint256 depth = i - 1;
            bool right = (uint256(keyHash) >> (255 - depth)) & 1 == 1;
            node = right
                ? keccak256(abi.encodePacked(uint8(1), siblings[depth], node))
                : keccak256(abi.encodePacked(uint8(1), node, siblings[depth]));
        }
        return node;
    }

    /// True if `key` holds `value` in the state whose root is `root`.
    function verifyInclusion(
        bytes32 root,
        bytes memory key,
        bytes memory value,
        bytes32[] memory siblings
    ) internal pure returns (bool) {
        bytes32 keyHash = keccak256(key);
        return fold(keyHash, leafHash(keyHash, value), siblings) == root;
    }
}

/// A deployable face of the library, for tools and tests.
contract StateProofVerifier {
    function verifyInclusion(
        bytes32 root,
        bytes calldata key,
        bytes calldata value,
        bytes32[] calldata siblings
    ) external pure returns (bool) {
        return StateProof.verifyInclusion(root, key, value, siblings);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title AnchorRegistry
/// @notice Records the roots of Parsec block logs on Ethereum, so that anyone holding a receipt
///         can check the block log it proves against the chain.
/// @dev A block log is the RFC 9162 Merkle tree whose leaf i is the hash of Parsec block i. One
///      anchor of the log at size height + 1 covers every block 0..height: a receipt proves its
///      block's place in the log (an inclusion path) and that the log it saw grew into the
///      anchored one (a consistency path), so blocks between anchors need no anchor of their own.
///      The event log is the record. Storing roots would cost a fresh storage slot (20,000 gas) per
///      anchor, and no contract reads them back: a verifier reads the log by transaction hash and
///      log index. Each anchoring node is its own namespace (msg.sender), so nodes never contend.
contract AnchorRegistry {
    /// @param node   the anchoring node's Ethereum account
    /// @param height the height of the last Parsec block in the log (the log holds height + 1 blocks)
    /// @param root   the RFC 9162 root of the block log at size height + 1
    event Anchored(address indexed node, uint64 indexed height, bytes32 root);

    function anchor(uint64 height, bytes32 root) external {
        emit Anchored(msg.sender, height, root);
    }
}

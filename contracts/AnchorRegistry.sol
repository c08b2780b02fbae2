// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title AnchorRegistry
/// @notice Records the Merkle roots of agreed Parsec blocks on Ethereum, so that anyone holding a
///         receipt can check its block root against the chain.
/// @dev The event log is the record. Storing roots would cost a fresh storage slot (20,000 gas) per
///      anchor, and no contract reads them back: a verifier reads the log by transaction hash and
///      log index. Each anchoring node is its own namespace (msg.sender), so nodes never contend.
contract AnchorRegistry {
    /// @param node   the anchoring node's Ethereum account
    /// @param height the Parsec block height of the last block this anchor covers
    /// @param root   the RFC 9162 Merkle root of that block
    event Anchored(address indexed node, uint64 indexed height, bytes32 root);

    function anchor(uint64 height, bytes32 root) external {
        emit Anchored(msg.sender, height, root);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IERC20Transfer {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @title Adjudicator: holds channel deposits and settles two-party channels from signed states.
/// @notice A channel state is (channelId, version, allocation per asset, sub-allocations, isFinal),
/// signed by both participants as EIP-712 typed data. The Python side
/// (channels_app/protocol/eip712.py) hashes the same types byte for byte.
///
/// Storage per channel is one packed word (version, finalizesAt, flags, fingerprint of the
/// outcome) plus the holdings per asset; states themselves travel in calldata.
contract Adjudicator {
    struct Params {
        address participantA;
        address participantB;
        uint64 nonce;
        uint48 challengeDuration;
    }

    struct Allocation {
        address asset;
        uint256 balanceA;
        uint256 balanceB;
    }

    /// Funds locked for a sub-channel (nanocontract or virtual channel); paid out per the
    /// sub-channel's own concluded state, see claimSubAllocation.
    struct SubAllocation {
        bytes32 channelId;
        address asset;
        uint256 amount;
    }

    struct State {
        bytes32 channelId;
        uint64 version;
        Allocation[] allocations;
        SubAllocation[] subAllocations;
        bool isFinal;
    }

    struct Signature {
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// A participant's order to pay (part of) its credit in a channel to a receiver.
    struct Withdrawal {
        bytes32 channelId;
        address participant;
        address asset;
        address receiver;
        uint256 amount;
    }

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant ALLOCATION_TYPEHASH =
        keccak256("Allocation(address asset,uint256 balanceA,uint256 balanceB)");
    bytes32 private constant SUB_ALLOCATION_TYPEHASH =
        keccak256("SubAllocation(bytes32 channelId,address asset,uint256 amount)");
    bytes32 private constant STATE_TYPEHASH = keccak256(
        "State(bytes32 channelId,uint64 version,Allocation[] allocations,SubAllocation[] subAllocations,bool isFinal)"
        "Allocation(address asset,uint256 balanceA,uint256 balanceB)"
        "SubAllocation(bytes32 channelId,address asset,uint256 amount)"
    );
    bytes32 private constant WITHDRAWAL_TYPEHASH = keccak256(
        "Withdrawal(bytes32 channelId,address participant,address asset,address receiver,uint256 amount)"
    );
    uint256 private constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    // Status word layout: version (64) | finalizesAt (40) | flags (8) | fingerprint (144).
    // finalizesAt == 0: open (possibly checkpointed); > now: challenge running; <= now: final.
    uint256 private constant FLAG_PAID = 1;
    uint256 private constant PUSH_GAS = 100_000;
    uint256 private constant FINGERPRINT_MASK = (1 << 144) - 1;

    bytes32 public immutable DOMAIN_SEPARATOR;
    uint256 private immutable DEPLOY_CHAIN_ID;

    mapping(bytes32 channelId => mapping(address asset => uint256)) public holdings;
    mapping(bytes32 channelId => uint256) public statusOf;
    /// Payouts that could not be pushed (a receiver that reverts); taken out with withdraw.
    mapping(bytes32 channelId => mapping(address participant => mapping(address asset => uint256))) public credit;

    /// `holdings` is the channel's new total in `asset`; the amount added is the difference from the
    /// previous Deposited event (one word less of log data keeps deposit under go-nitro's gas).
    event Deposited(bytes32 indexed channelId, address asset, uint256 holdings);
    event Checkpointed(bytes32 indexed channelId, uint64 version);
    event Registered(bytes32 indexed channelId, uint64 version, uint40 finalizesAt);
    event Concluded(bytes32 indexed channelId, uint64 version);
    event SubAllocationClaimed(
        bytes32 indexed channelId, bytes32 indexed subChannelId, address asset, uint256 toA, uint256 toB
    );
    event Credited(bytes32 indexed channelId, address indexed participant, address asset, uint256 amount);
    event Withdrawn(
        bytes32 indexed channelId, address indexed participant, address asset, address receiver, uint256 amount
    );

    error WrongValue();
    error WrongChannel();
    error BadSignature();
    error WrongVersion();
    error ChannelFinal();
    error NotFinal();
    error NotFinalState();
    error AlreadyPaid();
    error OutcomeMismatch();
    error NotConserved();
    error NotRelated();
    error TransferFailed();
    error InsufficientCredit();
    error ChallengeTooLong();

    constructor() {
        DEPLOY_CHAIN_ID = block.chainid;
        DOMAIN_SEPARATOR = _domainSeparator();
    }

    // ------------------------------------------------------------------ deposits

    /// @notice Add `amount` of `asset` (address(0) = ETH) to the channel's holdings.
    function deposit(bytes32 channelId, address asset, uint256 amount) external payable {
        if (asset == address(0)) {
            if (msg.value != amount) revert WrongValue();
        } else {
            if (msg.value != 0) revert WrongValue();
            _call(asset, abi.encodeCall(IERC20Transfer.transferFrom, (msg.sender, address(this), amount)), true);
        }
        // holdings[channelId][asset] += amount; emit Deposited(channelId, asset, held), written out
        // so the slot is hashed once and the log uses scratch space: deposit is the step every
        // channel pays for, and this keeps it under go-nitro's 46,496 gas.
        bytes32 topic = Deposited.selector;
        assembly ("memory-safe") {
            mstore(0x00, channelId)
            mstore(0x20, holdings.slot)
            mstore(0x20, keccak256(0x00, 0x40))
            mstore(0x00, asset)
            let slot := keccak256(0x00, 0x40)
            let held := add(sload(slot), amount)
            if lt(held, amount) {
                mstore(0x00, 0x4e487b71) // Panic(0x11): arithmetic overflow, as checked Solidity would
                mstore(0x20, 0x11)
                revert(0x1c, 0x24)
            }
            sstore(slot, held)
            mstore(0x20, held)
            log2(0x00, 0x40, topic, channelId)
        }
    }

    // ------------------------------------------------------------------ disputes

    /// @notice Record a both-signed state as the floor for any later dispute; starts no timer.
    /// A checkpoint with a higher version than a running challenge's ends that challenge.
    function checkpoint(Params calldata params, State calldata state, Signature[2] calldata sigs) external {
        (bytes32 channelId, uint256 fingerprint) = _checkSigned(params, state, sigs);
        uint256 status = statusOf[channelId];
        if (_isFinal(status)) revert ChannelFinal();
        if (state.version <= uint64(status >> 192)) revert WrongVersion();
        statusOf[channelId] = _pack(state.version, 0, 0, fingerprint);
        emit Checkpointed(channelId, state.version);
    }

    /// @notice Start the challenge period with a both-signed state, or refute a running one with
    /// a higher version. A refutation keeps the original deadline, so a challenge cannot be
    /// stretched forever. A final state becomes final at once.
    function register(Params calldata params, State calldata state, Signature[2] calldata sigs) external {
        (bytes32 channelId, uint256 fingerprint) = _checkSigned(params, state, sigs);
        uint256 status = statusOf[channelId];
        if (_isFinal(status)) revert ChannelFinal();
        uint64 recorded = uint64(status >> 192);
        uint256 finalizesAt = uint40(status >> 152);
        if (finalizesAt == 0) {
            if (state.version < recorded) revert WrongVersion();
            finalizesAt = block.timestamp + params.challengeDuration;
            // A deadline that does not fit the status word would wrap round to the past.
            if (finalizesAt > type(uint40).max) revert ChallengeTooLong();
        } else if (state.version <= recorded) {
            revert WrongVersion();
        }
        if (state.isFinal) finalizesAt = block.timestamp;
        statusOf[channelId] = _pack(state.version, finalizesAt, 0, fingerprint);
        emit Registered(channelId, state.version, uint40(finalizesAt));
    }

    /// @notice Cooperative exit: a final state signed by both concludes at once and pays out.
    function conclude(Params calldata params, State calldata state, Signature[2] calldata sigs) external {
        if (!state.isFinal) revert NotFinalState();
        (bytes32 channelId, uint256 fingerprint) = _checkSigned(params, state, sigs);
        uint256 status = statusOf[channelId];
        if (_isFinal(status)) revert ChannelFinal();
        if (state.version < uint64(status >> 192)) revert WrongVersion();
        statusOf[channelId] = _pack(state.version, block.timestamp, FLAG_PAID, fingerprint);
        emit Concluded(channelId, state.version);
        _payout(channelId, params, state.allocations);
    }

    /// @notice After the challenge period: pay out the registered state (given again in full;
    /// its outcome must match the recorded fingerprint).
    function concludeRegistered(Params calldata params, State calldata state) external {
        bytes32 channelId = channelIdOf(params);
        if (state.channelId != channelId) revert WrongChannel();
        uint256 status = statusOf[channelId];
        if (!_isFinal(status)) revert NotFinal();
        if (status & (FLAG_PAID << 144) != 0) revert AlreadyPaid();
        uint256 fingerprint = _fingerprint(_allocationsHash(state.allocations), _subAllocationsHash(state.subAllocations));
        if (status & FINGERPRINT_MASK != fingerprint) revert OutcomeMismatch();
        statusOf[channelId] = status | (FLAG_PAID << 144);
        emit Concluded(channelId, uint64(status >> 192));
        _payout(channelId, params, state.allocations);
    }

    /// @notice Pay out the funds a final ledger channel locked for a sub-channel, per the
    /// sub-channel's own final state. The sub-channel participant who is also in this channel
    /// gets their balance; the other participant of this channel (the intermediary of a
    /// virtual channel) gets the counterpart's balance, which keeps it neutral.
    function claimSubAllocation(
        Params calldata params,
        State calldata state,
        uint256 index,
        Params calldata subParams,
        State calldata subState
    ) external {
        bytes32 channelId = channelIdOf(params);
        if (state.channelId != channelId) revert WrongChannel();
        uint256 status = statusOf[channelId];
        if (!_isFinal(status)) revert NotFinal();
        bytes32 allocationsHash = _allocationsHash(state.allocations);
        if (status & FINGERPRINT_MASK != _fingerprint(allocationsHash, _subAllocationsHash(state.subAllocations))) {
            revert OutcomeMismatch();
        }
        SubAllocation calldata sub = state.subAllocations[index];
        (uint256 toA, uint256 toB) = _subPayout(params, sub, subParams, subState);

        // The claimed sub-allocation leaves the recorded outcome, so it cannot be claimed twice.
        bytes32 remaining = _subAllocationsHashWithout(state.subAllocations, index);
        statusOf[channelId] = (status & ~FINGERPRINT_MASK) | _fingerprint(allocationsHash, remaining);
        _paySub(channelId, params, sub, toA, toB);
    }

    /// @notice Carry out a participant's signed order to pay its credit to a receiver.
    function withdraw(Withdrawal calldata order, Signature calldata sig) external {
        bytes32 structHash = keccak256(
            abi.encode(
                WITHDRAWAL_TYPEHASH, order.channelId, order.participant, order.asset, order.receiver, order.amount
            )
        );
        if (_recover(_digest(structHash), sig) != order.participant) revert BadSignature();
        uint256 available = credit[order.channelId][order.participant][order.asset];
        if (available < order.amount) revert InsufficientCredit();
        unchecked {
            credit[order.channelId][order.participant][order.asset] = available - order.amount;
        }
        emit Withdrawn(order.channelId, order.participant, order.asset, order.receiver, order.amount);
        if (order.asset == address(0)) {
            (bool ok,) = order.receiver.call{value: order.amount}("");
            if (!ok) revert TransferFailed();
        } else {
            _call(order.asset, abi.encodeCall(IERC20Transfer.transfer, (order.receiver, order.amount)), true);
        }
    }

    // ------------------------------------------------------------------ views

    function channelIdOf(Params calldata params) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                block.chainid, params.participantA, params.participantB, params.nonce, params.challengeDuration
            )
        );
    }

    /// @notice The EIP-712 digest both participants sign for `state`.
    function stateDigest(State calldata state) external view returns (bytes32) {
        return _digest(_stateHash(state, _allocationsHash(state.allocations), _subAllocationsHash(state.subAllocations)));
    }

    /// @notice The unpacked status of a channel.
    function channelStatus(bytes32 channelId)
        external
        view
        returns (uint64 version, uint40 finalizesAt, bool paid, bytes18 fingerprint)
    {
        uint256 status = statusOf[channelId];
        version = uint64(status >> 192);
        finalizesAt = uint40(status >> 152);
        paid = (status >> 144) & FLAG_PAID != 0;
        fingerprint = bytes18(uint144(status));
    }

    // ------------------------------------------------------------------ internals

    function _checkSigned(Params calldata params, State calldata state, Signature[2] calldata sigs)
        private
        view
        returns (bytes32 channelId, uint256 fingerprint)
    {
        channelId = channelIdOf(params);
        if (state.channelId != channelId) revert WrongChannel();
        bytes32 allocationsHash = _allocationsHash(state.allocations);
        bytes32 subAllocationsHash = _subAllocationsHash(state.subAllocations);
        bytes32 digest = _digest(_stateHash(state, allocationsHash, subAllocationsHash));
        if (_recover(digest, sigs[0]) != params.participantA) revert BadSignature();
        if (_recover(digest, sigs[1]) != params.participantB) revert BadSignature();
        fingerprint = _fingerprint(allocationsHash, subAllocationsHash);
    }

    function _payout(bytes32 channelId, Params calldata params, Allocation[] calldata allocations) private {
        // Effects for every asset first, then the transfers (checks-effects-interactions).
        uint256 count = allocations.length;
        uint256[] memory toA = new uint256[](count);
        uint256[] memory toB = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            Allocation calldata allocation = allocations[i];
            uint256 held = holdings[channelId][allocation.asset];
            uint256 a = allocation.balanceA < held ? allocation.balanceA : held;
            uint256 b = allocation.balanceB < held - a ? allocation.balanceB : held - a;
            holdings[channelId][allocation.asset] = held - a - b;
            toA[i] = a;
            toB[i] = b;
        }
        for (uint256 i; i < count; ++i) {
            _pay(channelId, params.participantA, allocations[i].asset, toA[i]);
            _pay(channelId, params.participantB, allocations[i].asset, toB[i]);
        }
    }

    function _subPayout(
        Params calldata params,
        SubAllocation calldata sub,
        Params calldata subParams,
        State calldata subState
    ) private view returns (uint256 toA, uint256 toB) {
        bytes32 subChannelId = channelIdOf(subParams);
        if (sub.channelId != subChannelId || subState.channelId != subChannelId) revert WrongChannel();
        uint256 subStatus = statusOf[subChannelId];
        if (!_isFinal(subStatus)) revert NotFinal();
        uint256 subFingerprint =
            _fingerprint(_allocationsHash(subState.allocations), _subAllocationsHash(subState.subAllocations));
        if (subStatus & FINGERPRINT_MASK != subFingerprint) revert OutcomeMismatch();
        uint256 sub0;
        uint256 sub1;
        bool found;
        for (uint256 i; i < subState.allocations.length; ++i) {
            if (subState.allocations[i].asset == sub.asset) {
                sub0 = subState.allocations[i].balanceA;
                sub1 = subState.allocations[i].balanceB;
                found = true;
                break;
            }
        }
        if (!found || sub0 + sub1 != sub.amount) revert NotConserved();
        if (subParams.participantA == params.participantA || subParams.participantB == params.participantB) {
            return (sub0, sub1);
        }
        if (subParams.participantA == params.participantB || subParams.participantB == params.participantA) {
            return (sub1, sub0);
        }
        revert NotRelated();
    }

    function _paySub(bytes32 channelId, Params calldata params, SubAllocation calldata sub, uint256 toA, uint256 toB)
        private
    {
        uint256 held = holdings[channelId][sub.asset];
        if (toA > held) toA = held;
        if (toB > held - toA) toB = held - toA;
        holdings[channelId][sub.asset] = held - toA - toB;
        emit SubAllocationClaimed(channelId, sub.channelId, sub.asset, toA, toB);
        _pay(channelId, params.participantA, sub.asset, toA);
        _pay(channelId, params.participantB, sub.asset, toB);
    }

    /// Push a payout; if the receiver refuses it, keep it as credit for withdraw, so one party
    /// cannot block the other's settlement.
    function _pay(bytes32 channelId, address to, address asset, uint256 amount) private {
        if (amount == 0) return;
        bool ok;
        if (asset == address(0)) {
            // Capped, so a receiver cannot burn the gas the rest of the settlement needs.
            (ok,) = to.call{value: amount, gas: PUSH_GAS}("");
        } else {
            ok = _call(asset, abi.encodeCall(IERC20Transfer.transfer, (to, amount)), false);
        }
        if (!ok) {
            credit[channelId][to][asset] += amount;
            emit Credited(channelId, to, asset, amount);
        }
    }

    /// Call an ERC-20; tokens that return nothing count as success.
    function _call(address token, bytes memory data, bool mustSucceed) private returns (bool ok) {
        bytes memory result;
        (ok, result) = token.call(data);
        ok = ok && token.code.length > 0 && (result.length == 0 || abi.decode(result, (bool)));
        if (!ok && mustSucceed) revert TransferFailed();
    }

    function _isFinal(uint256 status) private view returns (bool) {
        uint256 finalizesAt = uint40(status >> 152);
        return finalizesAt != 0 && finalizesAt <= block.timestamp;
    }

    function _pack(uint64 version, uint256 finalizesAt, uint256 flags, uint256 fingerprint)
        private
        pure
        returns (uint256)
    {
        return (uint256(version) << 192) | (uint256(uint40(finalizesAt)) << 152) | (flags << 144) | fingerprint;
    }

    function _fingerprint(bytes32 allocationsHash, bytes32 subAllocationsHash) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(allocationsHash, subAllocationsHash))) & FINGERPRINT_MASK;
    }

    function _allocationsHash(Allocation[] calldata allocations) private pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](allocations.length);
        for (uint256 i; i < allocations.length; ++i) {
            Allocation calldata a = allocations[i];
            hashes[i] = keccak256(abi.encode(ALLOCATION_TYPEHASH, a.asset, a.balanceA, a.balanceB));
        }
        return keccak256(abi.encodePacked(hashes));
    }

    function _subAllocationsHash(SubAllocation[] calldata subs) private pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](subs.length);
        for (uint256 i; i < subs.length; ++i) {
            hashes[i] = _subAllocationHash(subs[i]);
        }
        return keccak256(abi.encodePacked(hashes));
    }

    function _subAllocationsHashWithout(SubAllocation[] calldata subs, uint256 skip) private pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](subs.length - 1);
        uint256 j;
        for (uint256 i; i < subs.length; ++i) {
            if (i != skip) hashes[j++] = _subAllocationHash(subs[i]);
        }
        return keccak256(abi.encodePacked(hashes));
    }

    function _subAllocationHash(SubAllocation calldata sub) private pure returns (bytes32) {
        return keccak256(abi.encode(SUB_ALLOCATION_TYPEHASH, sub.channelId, sub.asset, sub.amount));
    }

    function _stateHash(State calldata state, bytes32 allocationsHash, bytes32 subAllocationsHash)
        private
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                STATE_TYPEHASH, state.channelId, state.version, allocationsHash, subAllocationsHash, state.isFinal
            )
        );
    }

    function _domainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("Parsec Adjudicator"), keccak256("1"), block.chainid, address(this)
            )
        );
    }

    function _digest(bytes32 structHash) private view returns (bytes32) {
        // After a chain split the cached separator would let a signature replay on the other chain.
        bytes32 separator = block.chainid == DEPLOY_CHAIN_ID ? DOMAIN_SEPARATOR : _domainSeparator();
        return keccak256(abi.encodePacked("\x19\x01", separator, structHash));
    }

    function _recover(bytes32 digest, Signature calldata sig) private pure returns (address signer) {
        if (uint256(sig.s) > HALF_CURVE_ORDER) revert BadSignature();
        signer = ecrecover(digest, sig.v, sig.r, sig.s);
        if (signer == address(0)) revert BadSignature();
    }
}

"""EIP-712 hashing and secp256k1 signatures for what the Adjudicator checks.

We hash the struct ourselves, once, and sign the 32-byte digest with coincurve (ARCHITECTURE.md
§3): the generic eth_account path re-parses the type description on every call and is several
times slower. The type strings below are the contract's, byte for byte; the tests check the
digests against eth_account and the contract on anvil.

Signatures are 65 bytes ``r || s || v`` with ``v`` in {27, 28} and ``s`` in the lower half
of the curve order, which is what ``ecrecover`` and the Adjudicator accept.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, NewType

import coincurve
from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT
from eth_utils import to_checksum_address

from channels_app.protocol.channel_state import Allocation, ChannelParams, ChannelState, SubAllocation
from channels_app.protocol.errors import BadSignature
from channels_app.protocol.keccak import keccak
from channels_app.protocol.types import Address, ChannelId, Wei, address, address_bytes

Signature = NewType("Signature", bytes)
"""65 bytes: r || s || v, v in {27, 28}."""

Digest = NewType("Digest", bytes)

DOMAIN_NAME = "Parsec Adjudicator"
DOMAIN_VERSION = "1"

DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
ALLOCATION_TYPE = b"Allocation(address asset,uint256 balanceA,uint256 balanceB)"
SUB_ALLOCATION_TYPE = b"SubAllocation(bytes32 channelId,address asset,uint256 amount)"
# EIP-712: the primary type, then the types it references sorted by name.
STATE_TYPE = (
    b"State(bytes32 channelId,uint64 version,Allocation[] allocations,SubAllocation[] subAllocations,"
    b"bool isFinal)" + ALLOCATION_TYPE + SUB_ALLOCATION_TYPE
)
WITHDRAWAL_TYPE = (
    b"Withdrawal(bytes32 channelId,address participant,address asset,address receiver,uint256 amount)"
)

DOMAIN_TYPEHASH = keccak(DOMAIN_TYPE)
ALLOCATION_TYPEHASH = keccak(ALLOCATION_TYPE)
SUB_ALLOCATION_TYPEHASH = keccak(SUB_ALLOCATION_TYPE)
STATE_TYPEHASH = keccak(STATE_TYPE)
WITHDRAWAL_TYPEHASH = keccak(WITHDRAWAL_TYPE)

# secp256k1 group order; signatures with s above half of it are the malleable twin.
_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = _CURVE_ORDER // 2
_HALF_ORDER_BYTES = _HALF_ORDER.to_bytes(32, "big")


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


@functools.lru_cache(maxsize=1024)
def _address_word(value: Address) -> bytes:
    # Cached: a channel's few assets and participants are hashed into every state.
    return b"\x00" * 12 + address_bytes(value)


@dataclass(frozen=True, slots=True)
class Domain:
    chain_id: int
    verifying_contract: Address
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    @property
    def separator(self) -> bytes:
        return _separator(self)

    def as_typed_data(self) -> dict[str, object]:
        """The domain as eth_account / eth_signTypedData_v4 expect it."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


@functools.lru_cache(maxsize=64)
def _separator(domain: Domain) -> bytes:
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(domain.name.encode())
        + keccak(domain.version.encode())
        + _word(domain.chain_id)
        + _address_word(domain.verifying_contract)
    )


def allocation_hash(allocation: Allocation) -> bytes:
    return keccak(
        ALLOCATION_TYPEHASH
        + _address_word(allocation.asset)
        + _word(allocation.balance_a)
        + _word(allocation.balance_b)
    )


def sub_allocation_hash(sub: SubAllocation) -> bytes:
    return keccak(SUB_ALLOCATION_TYPEHASH + sub.channel_id + _address_word(sub.asset) + _word(sub.amount))


# hashStruct of an empty array is keccak of nothing: most states lock nothing, so it is a constant.
_EMPTY_ARRAY_HASH = keccak(b"")
_FALSE_WORD = _word(0)
_TRUE_WORD = _word(1)


def state_struct_hash(state: ChannelState) -> bytes:
    """``hashStruct(State)``: arrays hash as keccak of their members' struct hashes."""
    subs = state.sub_allocations
    return keccak(
        STATE_TYPEHASH
        + state.channel_id
        + _word(state.version)
        + keccak(b"".join([allocation_hash(a) for a in state.allocations]))
        + (keccak(b"".join([sub_allocation_hash(s) for s in subs])) if subs else _EMPTY_ARRAY_HASH)
        + (_TRUE_WORD if state.is_final else _FALSE_WORD)
    )


_FINGERPRINT_MASK = (1 << 144) - 1


def outcome_fingerprint(state: ChannelState) -> int:
    """The 144-bit fingerprint the Adjudicator stores for a registered or checkpointed state:
    keccak256(abi.encode(allocationsHash, subAllocationsHash)), low 144 bits. Compare it with
    ``channelStatus(channelId).fingerprint`` to tell which of our states is on-chain."""
    allocations = keccak(b"".join(allocation_hash(a) for a in state.allocations))
    sub_allocations = keccak(b"".join(sub_allocation_hash(s) for s in state.sub_allocations))
    return int.from_bytes(keccak(allocations + sub_allocations), "big") & _FINGERPRINT_MASK


@dataclass(frozen=True, slots=True)
class OnChainStatus:
    """The Adjudicator's packed status word, unpacked."""

    version: int
    finalizes_at: int
    """0: open (maybe checkpointed); later than now: challenge running; otherwise final."""
    paid: bool
    fingerprint: int

    @classmethod
    def from_word(cls, word: int) -> OnChainStatus:
        return cls(
            version=word >> 192,
            finalizes_at=(word >> 152) & ((1 << 40) - 1),
            paid=bool((word >> 144) & 1),
            fingerprint=word & _FINGERPRINT_MASK,
        )


def _digest(domain: Domain, struct_hash: bytes) -> Digest:
    return Digest(keccak(b"\x19\x01" + domain.separator + struct_hash))


def state_digest(domain: Domain, state: ChannelState) -> Digest:
    """The 32 bytes both participants sign for ``state``.

    Both sides ask for the same state's digest several times per update (sign, check each
    signature); states are immutable, so the digest is kept on the state for its domain.
    """
    memo = state.digest_memo
    if memo is not None and (memo[0] is domain or memo[0] == domain):
        return Digest(memo[1])
    digest = _digest(domain, state_struct_hash(state))
    object.__setattr__(state, "digest_memo", (domain, digest))  # a memo, not a change of state
    return digest


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A participant's order to pay part of its credit in a channel to ``receiver``."""

    channel_id: ChannelId
    participant: Address
    asset: Address
    receiver: Address
    amount: Wei


def withdrawal_struct_hash(order: Withdrawal) -> bytes:
    return keccak(
        WITHDRAWAL_TYPEHASH
        + order.channel_id
        + _address_word(order.participant)
        + _address_word(order.asset)
        + _address_word(order.receiver)
        + _word(order.amount)
    )


def withdrawal_digest(domain: Domain, order: Withdrawal) -> Digest:
    return _digest(domain, withdrawal_struct_hash(order))


def address_of_key(private_key: bytes) -> Address:
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)
    return address(keccak(public[1:])[-20:])


def sign_digest(private_key: bytes, digest: bytes) -> Signature:
    """Sign a prepared digest; libsecp256k1 always yields the low-s form."""
    signature = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    return Signature(signature[:64] + bytes([signature[64] + 27]))


class _Buffers(threading.local):
    """libsecp256k1's in/out structures, one set per thread, allocated once.

    coincurve allocates these (and a key object) on every call; on the hot path the calls
    below go to the same library functions through coincurve's own cffi binding with buffers
    kept per thread, the checks unchanged. Each update signs twice and recovers twice, and
    the wrappers cost a tenth of that cryptography.
    """

    def __init__(self) -> None:
        self.signature: Any = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
        self.public_key: Any = _ffi.new("secp256k1_pubkey *")
        self.serialized: Any = _ffi.new("unsigned char[65]")
        self.serialized_length: Any = _ffi.new("size_t *")
        self.compact: Any = _ffi.new("unsigned char[64]")
        self.recovery_id: Any = _ffi.new("int *")


_buffers = _Buffers()
_CONTEXT = GLOBAL_CONTEXT.ctx
_UNCOMPRESSED = _lib.SECP256K1_EC_UNCOMPRESSED


def recover_digest(digest: bytes, signature: bytes) -> Address:
    """The address that signed ``digest``; raise :class:`BadSignature` if there is none.

    What ``ecrecover`` (and so the Adjudicator) computes, with the checks it implies: 65
    bytes, v in {27, 28}, s in the lower half. A key known in advance is not enough: only
    the recovery with this ``v`` says which key the contract will see.
    """
    if len(signature) != 65:
        raise BadSignature("a channel signature is 65 bytes: r, s and v")
    if len(digest) != 32:
        raise BadSignature("a signed digest is 32 bytes")
    v = signature[64]
    if v not in (27, 28):
        raise BadSignature("the signature's v must be 27 or 28")
    if signature[32:64] > _HALF_ORDER_BYTES:  # big-endian, same length: compares as numbers
        raise BadSignature("the signature's s is in the upper half of the curve order")
    buffers = _buffers
    # parse_compact reads r || s (the first 64 bytes) and refuses r or s at or above the order.
    if not _lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
        _CONTEXT, buffers.signature, bytes(signature), v - 27
    ):
        raise BadSignature("the signature's r or s is out of range")
    if not _lib.secp256k1_ecdsa_recover(_CONTEXT, buffers.public_key, buffers.signature, bytes(digest)):
        raise BadSignature("the signature does not recover to any key")
    buffers.serialized_length[0] = 65
    _lib.secp256k1_ec_pubkey_serialize(
        _CONTEXT, buffers.serialized, buffers.serialized_length, buffers.public_key, _UNCOMPRESSED
    )
    return address_of_public_key(_ffi.buffer(buffers.serialized, 65)[:])


# Counterparties sign many states with the same key: the address of a recovered key is
# remembered rather than hashed again on every verification (4 keccaks an update otherwise).
@functools.lru_cache(maxsize=4096)
def address_of_public_key(public: bytes) -> Address:
    """The Ethereum address of an uncompressed (65-byte) secp256k1 public key."""
    return address(keccak(public[1:])[-20:])


def sign_state(private_key: bytes, domain: Domain, state: ChannelState) -> Signature:
    return sign_digest(private_key, state_digest(domain, state))


class Signer:
    """A participant's key loaded once, for the hot path (deriving the key pair costs as much
    as the signature itself). Never printed: ``repr`` shows the address only."""

    __slots__ = ("_key", "_secret", "address")

    def __init__(self, private_key: bytes) -> None:
        self._key = coincurve.PrivateKey(private_key)
        self._secret = self._key.secret  # what libsecp256k1 signs with (validated by coincurve)
        self.address = address_of_key(private_key)

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    def sign_digest(self, digest: bytes) -> Signature:
        """Sign a 32-byte digest (RFC 6979 nonce, low s: what libsecp256k1 always makes)."""
        if len(digest) != 32:
            raise ValueError("a digest to sign is 32 bytes")
        buffers = _buffers
        if not _lib.secp256k1_ecdsa_sign_recoverable(
            _CONTEXT, buffers.signature, bytes(digest), self._secret, _ffi.NULL, _ffi.NULL
        ):
            raise ValueError("libsecp256k1 could not sign")
        _lib.secp256k1_ecdsa_recoverable_signature_serialize_compact(
            _CONTEXT, buffers.compact, buffers.recovery_id, buffers.signature
        )
        result = Signature(_ffi.buffer(buffers.compact, 64)[:] + bytes((buffers.recovery_id[0] + 27,)))
        _remember_own(digest, result, self.address)
        return result

    def sign_state(self, domain: Domain, state: ChannelState) -> Signature:
        return self.sign_digest(state_digest(domain, state))


# Signatures a ``Signer`` of this process made, with the address of the key that made them.
# The rules check our own signature on every state we propose or countersign (a guard against
# the shell signing the wrong state or with the wrong key): see verify_own_state_signature.
# Bounded: cleared when full, which only costs recoveries. Small: the rules look a signature up
# right after it is made (a batch signs and applies each update in turn), and a large table
# only pushes the channels' own objects out of the processor's caches.
_OWN_SIGNATURES: dict[tuple[bytes, bytes], Address] = {}
_OWN_SIGNATURES_MAX = 4_096


def _remember_own(digest: bytes, signature: bytes, signer: Address) -> None:
    if len(_OWN_SIGNATURES) >= _OWN_SIGNATURES_MAX:
        _OWN_SIGNATURES.clear()
    _OWN_SIGNATURES[(bytes(digest), bytes(signature))] = signer


def verify_state_signature(domain: Domain, state: ChannelState, signer: Address, signature: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signer`` signed ``state`` under ``domain``."""
    recovered = recover_digest(state_digest(domain, state), signature)
    if recovered != signer:
        raise BadSignature(f"the signature on version {state.version} is not {signer}'s")


def verify_own_state_signature(domain: Domain, state: ChannelState, us: Address, signature: bytes) -> None:
    """:func:`verify_state_signature` for a signature the rules expect from *us*.

    When one of this process's :class:`Signer` objects made ``signature`` over this very digest
    with the key of address ``us``, the answer is already known and the recovery (the dearest
    step of an update) is skipped; any other signature, and every one that arrives from outside,
    is recovered. Only ever used for our own side: a counterparty's signature is always recovered.
    """
    digest = state_digest(domain, state)
    if _OWN_SIGNATURES.get((digest, bytes(signature))) == us:
        return
    verify_state_signature(domain, state, us, signature)


def typed_data(domain: Domain, state: ChannelState) -> dict[str, object]:
    """The full EIP-712 message, for wallets and for checking against other implementations."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "State": [
                {"name": "channelId", "type": "bytes32"},
                {"name": "version", "type": "uint64"},
                {"name": "allocations", "type": "Allocation[]"},
                {"name": "subAllocations", "type": "SubAllocation[]"},
                {"name": "isFinal", "type": "bool"},
            ],
            "Allocation": [
                {"name": "asset", "type": "address"},
                {"name": "balanceA", "type": "uint256"},
                {"name": "balanceB", "type": "uint256"},
            ],
            "SubAllocation": [
                {"name": "channelId", "type": "bytes32"},
                {"name": "asset", "type": "address"},
                {"name": "amount", "type": "uint256"},
            ],
        },
        "primaryType": "State",
        "domain": domain.as_typed_data(),
        "message": {
            "channelId": state.channel_id,
            "version": state.version,
            "allocations": [
                {"asset": a.asset, "balanceA": a.balance_a, "balanceB": a.balance_b}
                for a in state.allocations
            ],
            "subAllocations": [
                {"channelId": s.channel_id, "asset": s.asset, "amount": s.amount}
                for s in state.sub_allocations
            ],
            "isFinal": state.is_final,
        },
    }


def state_as_abi_tuple(
    state: ChannelState,
) -> tuple[ChannelId, int, list[tuple[str, int, int]], list[tuple[ChannelId, str, int]], bool]:
    """The state as the Adjudicator's ``State`` tuple for web3 calls (checksummed addresses)."""
    return (
        state.channel_id,
        state.version,
        [(to_checksum_address(a.asset), a.balance_a, a.balance_b) for a in state.allocations],
        [(s.channel_id, to_checksum_address(s.asset), s.amount) for s in state.sub_allocations],
        state.is_final,
    )


def params_as_abi_tuple(params: ChannelParams) -> tuple[str, str, int, int]:
    """The fixed part as the Adjudicator's ``Params`` tuple (checksummed addresses)."""
    return (
        to_checksum_address(params.participants[0]),
        to_checksum_address(params.participants[1]),
        params.nonce,
        params.challenge_duration,
    )


def signature_as_abi_tuple(signature: bytes) -> tuple[int, bytes, bytes]:
    """``(v, r, s)`` as the Adjudicator's ``Signature`` struct."""
    return (signature[64], signature[:32], signature[32:64])

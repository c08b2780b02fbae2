"""keccak256 for the hot path: the same C code eth_hash calls, without its per-call objects.

``eth_hash`` (pycryptodome backend) builds a hash object, a smart pointer and a string buffer
for every call: about 5 us for a 160-byte input, where the permutation itself takes well under
one. A channel update hashes each state four times (its allocation, the allocation array, the
struct, the EIP-712 digest), so that overhead was a tenth of an update's CPU. Here each thread
keeps one keccak state of pycryptodome's C library (through cffi) and resets it per call.

pycryptodome does not promise this interface (``Crypto.Hash.keccak._raw_keccak_lib``), so it is
used only when it is there, loaded through cffi, and gives the right answers on known inputs at
import; otherwise ``keccak`` is eth_hash's, unchanged. The tests compare both on random inputs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from eth_hash.auto import keccak as _eth_hash_keccak

_KECCAK256_OF_EMPTY = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
_KECCAK256_OF_ABC = bytes.fromhex("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
# keccak_init(capacity in bytes = 2 x the digest's 32, 24 rounds); Keccak's original padding
# (0x01) rather than SHA-3's (0x06): Ethereum's keccak256.
_CAPACITY = 64
_ROUNDS = 24
_KECCAK_PADDING = 0x01


def _native() -> Callable[[bytes], bytes] | None:
    try:
        from Crypto.Hash import keccak as pycryptodome_keccak
        from Crypto.Util import _raw_api

        library: Any = getattr(pycryptodome_keccak, "_raw_keccak_lib")  # noqa: B009 - not in its stubs
        if _raw_api.backend != "cffi":
            return None
        ffi = _raw_api.ffi
    except (ImportError, AttributeError):
        return None

    local = threading.local()

    def thread_state() -> tuple[Any, Any, Any]:
        holder = ffi.new("void **")
        if library.keccak_init(holder, _CAPACITY, _ROUNDS):
            raise RuntimeError("keccak_init failed")
        state = ffi.gc(holder[0], library.keccak_destroy)
        output = ffi.new("uint8_t[32]")
        local.state = (state, output, ffi.buffer(output))
        return local.state

    def keccak(data: bytes) -> bytes:
        try:
            state, output, buffer = local.state
        except AttributeError:
            state, output, buffer = thread_state()
        # Each call leaves the state finished; reset, absorb, pad and squeeze 32 bytes.
        if (
            library.keccak_reset(state)
            or library.keccak_absorb(state, data, len(data))
            or library.keccak_digest(state, output, 32, _KECCAK_PADDING)
        ):
            raise RuntimeError("keccak failed")
        return buffer[:]

    try:
        if keccak(b"") != _KECCAK256_OF_EMPTY or keccak(b"abc") != _KECCAK256_OF_ABC:
            return None
    except Exception:  # any surprise in an interface nobody promised: use the public one
        return None
    return keccak


_fast = _native()
keccak: Callable[[bytes], bytes] = _fast if _fast is not None else _eth_hash_keccak
"""keccak256 of ``data`` (32 bytes), as ``eth_hash.auto.keccak``."""

NATIVE = _fast is not None
"""Whether the direct path is in use (reported by the benchmark)."""

"""Key material: sealing private keys at rest, X25519 boxes, Ethereum accounts, public key parsing.

Pure helpers, no I/O (ARCHITECTURE.md §3). The node's shell reads the passphrase and the
sealed blobs; this module only turns bytes into bytes and says precisely what is wrong.

Sealed format (version 1), a JSON-able dict::

    {"format": "parsec-sealed-secret", "version": 1,
     "kdf": {"name": "argon2id13", "salt": <hex 16 bytes>, "opslimit": 3, "memlimit": 67108864},
     "cipher": "xsalsa20poly1305", "nonce": <hex 24 bytes>, "ciphertext": <hex>}

Everything needed to open it, except the passphrase, travels with it, so the KDF cost can be
raised later without breaking old blobs.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NewType

import coincurve
import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.pwhash.argon2id as argon2id
import nacl.secret
import nacl.utils
from eth_hash.auto import keccak

__all__ = [
    "DEFAULT_KDF",
    "CannotDecrypt",
    "DerivedKey",
    "EthereumAddress",
    "EthereumSignatureError",
    "KdfParams",
    "KeyMaterialError",
    "MalformedKey",
    "SealedFormatError",
    "WrongPassphrase",
    "X25519KeyPair",
    "box_decrypt",
    "box_encrypt",
    "derive_key",
    "derive_key_for",
    "eth_address_from_private_key",
    "eth_address_from_public_key",
    "eth_generate_private_key",
    "eth_recover_address",
    "eth_sign_digest",
    "open_sealed_box",
    "open_secret",
    "parse_ed25519_public_key",
    "parse_eth_address",
    "parse_x25519_public_key",
    "seal_secret",
    "seal_to",
    "to_checksum_address",
]

EthereumAddress = NewType("EthereumAddress", str)
"""``0x`` + 40 hex digits in EIP-55 mixed-case checksum form."""

SEALED_FORMAT = "parsec-sealed-secret"
SEALED_VERSION = 1
_KDF_NAME = "argon2id13"
_CIPHER_NAME = "xsalsa20poly1305"
SALT_BYTES = argon2id.SALTBYTES  # 16

# secp256k1 group order; signatures with s above half of it are the malleable twin of a
# low-s signature (EIP-2). libsecp256k1 only produces low s, so we only accept low s.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class KeyMaterialError(ValueError):
    """Base class of every key error in this module."""


class WrongPassphrase(KeyMaterialError):  # noqa: N818 - the name is the interface
    """The passphrase does not open the sealed secret (or the sealed secret was altered)."""


class SealedFormatError(KeyMaterialError):
    """The sealed blob is not one this code understands (version, names, lengths, KDF bounds)."""


class CannotDecrypt(KeyMaterialError):  # noqa: N818 - the name is the interface
    """A Box or SealedBox ciphertext does not open with the given keys."""


class MalformedKey(KeyMaterialError):  # noqa: N818 - the name is the interface
    """A public key or address of the wrong shape, or one that is not a usable point."""


class EthereumSignatureError(KeyMaterialError):
    """A recoverable secp256k1 signature of the wrong shape, or one that recovers no key."""


# --- sealing secrets at rest ---------------------------------------------------------------


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost. Bounds keep a crafted sealed blob from asking for gigabytes or hours."""

    opslimit: int
    memlimit: int

    MIN_OPSLIMIT = argon2id.OPSLIMIT_MIN
    MAX_OPSLIMIT = 10
    MIN_MEMLIMIT = 8 * 1024 * 1024
    MAX_MEMLIMIT = 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        for name, value, low, high in (
            ("opslimit", self.opslimit, self.MIN_OPSLIMIT, self.MAX_OPSLIMIT),
            ("memlimit", self.memlimit, self.MIN_MEMLIMIT, self.MAX_MEMLIMIT),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SealedFormatError(f"Argon2id {name} must be an integer between {low} and {high}")


# libsodium's INTERACTIVE memory (64 MiB) with one more pass: about 0.1 s on a current core,
# which a node pays once per process (see DerivedKey) and an attacker pays per guess.
DEFAULT_KDF = KdfParams(opslimit=3, memlimit=64 * 1024 * 1024)


@dataclass(frozen=True)
class DerivedKey:
    """A secretbox key derived from a passphrase, with the salt and cost it was derived with.

    Derive once per process and pass it to :func:`seal_secret` / :func:`open_secret`.
    """

    key: bytes = field(repr=False)
    salt: bytes
    params: KdfParams

    def __repr__(self) -> str:  # the key must never reach a log
        return f"DerivedKey(salt={self.salt.hex()}, params={self.params})"

    def matches(self, sealed: Mapping[str, Any]) -> bool:
        salt, params = _kdf_of(sealed)
        return hmac.compare_digest(salt, self.salt) and params == self.params


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    data = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if not data:
        raise WrongPassphrase("the passphrase is empty")
    return data


def derive_key(
    passphrase: str | bytes, *, salt: bytes | None = None, params: KdfParams = DEFAULT_KDF
) -> DerivedKey:
    """Argon2id(passphrase, salt) -> 32-byte key; a fresh random salt unless one is given."""
    salt = nacl.utils.random(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise SealedFormatError(f"an Argon2id salt is {SALT_BYTES} bytes")
    key = argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        _passphrase_bytes(passphrase),
        salt,
        opslimit=params.opslimit,
        memlimit=params.memlimit,
    )
    return DerivedKey(key=key, salt=salt, params=params)


def derive_key_for(sealed: Mapping[str, Any], passphrase: str | bytes) -> DerivedKey:
    """Derive the key that opens ``sealed`` (its salt and cost), to cache and reuse."""
    salt, params = _kdf_of(sealed)
    return derive_key(passphrase, salt=salt, params=params)


def seal_secret(
    secret: bytes,
    *,
    passphrase: str | bytes | None = None,
    derived_key: DerivedKey | None = None,
    params: KdfParams = DEFAULT_KDF,
) -> dict[str, Any]:
    """Encrypt ``secret`` with a passphrase (or a key already derived from one)."""
    if (passphrase is None) == (derived_key is None):
        raise TypeError("pass exactly one of passphrase and derived_key")
    key = derived_key if derived_key is not None else derive_key(passphrase or b"", params=params)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = nacl.secret.SecretBox(key.key).encrypt(bytes(secret), nonce).ciphertext
    return {
        "format": SEALED_FORMAT,
        "version": SEALED_VERSION,
        "kdf": {
            "name": _KDF_NAME,
            "salt": key.salt.hex(),
            "opslimit": key.params.opslimit,
            "memlimit": key.params.memlimit,
        },
        "cipher": _CIPHER_NAME,
        "nonce": nonce.hex(),
        "ciphertext": ciphertext.hex(),
    }


def open_secret(
    sealed: Mapping[str, Any],
    *,
    passphrase: str | bytes | None = None,
    derived_key: DerivedKey | None = None,
) -> bytes:
    """Decrypt a sealed secret; :class:`WrongPassphrase` if the passphrase (or key) is wrong.

    A ``derived_key`` made with another salt or cost cannot open the blob: with a passphrase
    as well, the right key is derived; without, that is :class:`WrongPassphrase`.
    """
    if passphrase is None and derived_key is None:
        raise TypeError("pass a passphrase or a derived_key")
    nonce, ciphertext = _cipher_of(sealed)
    if derived_key is None or not derived_key.matches(sealed):
        if passphrase is None:
            raise WrongPassphrase("this secret was sealed under another salt or cost; give the passphrase")
        derived_key = derive_key_for(sealed, passphrase)
    try:
        return nacl.secret.SecretBox(derived_key.key).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as error:
        raise WrongPassphrase("wrong passphrase, or the sealed secret was altered") from error


def _kdf_of(sealed: Mapping[str, Any]) -> tuple[bytes, KdfParams]:
    _check_envelope(sealed)
    kdf = sealed.get("kdf")
    if not isinstance(kdf, Mapping) or kdf.get("name") != _KDF_NAME:
        raise SealedFormatError(f"the sealed secret's kdf must be {_KDF_NAME}")
    salt = _hex_field(kdf, "salt", SALT_BYTES)
    return salt, KdfParams(opslimit=kdf.get("opslimit"), memlimit=kdf.get("memlimit"))  # type: ignore[arg-type]


def _cipher_of(sealed: Mapping[str, Any]) -> tuple[bytes, bytes]:
    _check_envelope(sealed)
    if sealed.get("cipher") != _CIPHER_NAME:
        raise SealedFormatError(f"the sealed secret's cipher must be {_CIPHER_NAME}")
    nonce = _hex_field(sealed, "nonce", nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = _hex_field(sealed, "ciphertext", None)
    if len(ciphertext) < nacl.secret.SecretBox.MACBYTES:
        raise SealedFormatError("the sealed secret's ciphertext is shorter than its MAC")
    return nonce, ciphertext


def _check_envelope(sealed: Mapping[str, Any]) -> None:
    if not isinstance(sealed, Mapping) or sealed.get("format") != SEALED_FORMAT:
        raise SealedFormatError(f"not a {SEALED_FORMAT} document")
    if sealed.get("version") != SEALED_VERSION:
        raise SealedFormatError(f"sealed secret version {sealed.get('version')!r} is not supported")


def _hex_field(container: Mapping[str, Any], name: str, length: int | None) -> bytes:
    value = container.get(name)
    try:
        data = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        data = None
    if data is None or (length is not None and len(data) != length):
        size = f"{length} bytes of " if length is not None else ""
        raise SealedFormatError(f"the sealed secret's {name} must be {size}hex")
    return data


# --- X25519: private payloads ------------------------------------------------------------


@dataclass(frozen=True)
class X25519KeyPair:
    """An X25519 key pair for NaCl Box / SealedBox."""

    private_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.private_key) != 32:
            raise MalformedKey("an X25519 private key is 32 bytes")

    def __repr__(self) -> str:
        return f"X25519KeyPair(public={self.public_key.hex()})"

    @property
    def public_key(self) -> bytes:
        return bytes(nacl.public.PrivateKey(self.private_key).public_key)

    @classmethod
    def generate(cls) -> X25519KeyPair:
        return cls(bytes(nacl.public.PrivateKey.generate()))


def seal_to(recipient_public_key: bytes, plaintext: bytes) -> bytes:
    """Anonymous encryption to ``recipient_public_key`` (SealedBox): only its owner can open it."""
    public = nacl.public.PublicKey(_x25519_public_bytes(recipient_public_key))
    return bytes(nacl.public.SealedBox(public).encrypt(plaintext))


def open_sealed_box(recipient: X25519KeyPair, ciphertext: bytes) -> bytes:
    try:
        return bytes(nacl.public.SealedBox(nacl.public.PrivateKey(recipient.private_key)).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError) as error:
        raise CannotDecrypt("this sealed box was not made for this key, or was altered") from error


def box_encrypt(sender: X25519KeyPair, recipient_public_key: bytes, plaintext: bytes) -> bytes:
    """Authenticated encryption from ``sender`` to a recipient (Box); the nonce is prepended."""
    box = nacl.public.Box(
        nacl.public.PrivateKey(sender.private_key),
        nacl.public.PublicKey(_x25519_public_bytes(recipient_public_key)),
    )
    return bytes(box.encrypt(plaintext))


def box_decrypt(recipient: X25519KeyPair, sender_public_key: bytes, ciphertext: bytes) -> bytes:
    box = nacl.public.Box(
        nacl.public.PrivateKey(recipient.private_key),
        nacl.public.PublicKey(_x25519_public_bytes(sender_public_key)),
    )
    try:
        return bytes(box.decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError) as error:
        raise CannotDecrypt("this box was not sent by that key to this key, or was altered") from error


def _x25519_public_bytes(public_key: bytes) -> bytes:
    if not isinstance(public_key, (bytes, bytearray)) or len(public_key) != 32:
        raise MalformedKey("an X25519 public key is 32 bytes")
    # A low-order point makes every shared secret zero: a Box to it protects nothing.
    try:
        nacl.bindings.crypto_scalarmult(b"\x01" * 32, bytes(public_key))
    except nacl.exceptions.RuntimeError as error:
        raise MalformedKey("this X25519 public key is a low-order point") from error
    return bytes(public_key)


# --- Ethereum accounts -------------------------------------------------------------------


def to_checksum_address(address: str | bytes) -> EthereumAddress:
    """EIP-55 mixed-case form of a 20-byte address."""
    raw = address if isinstance(address, bytes) else _address_bytes(address)
    if len(raw) != 20:
        raise MalformedKey("an Ethereum address is 20 bytes")
    lower = raw.hex()
    hashed = keccak(lower.encode("ascii")).hex()
    checksummed = "".join(
        char.upper() if char.isalpha() and int(hashed[index], 16) >= 8 else char
        for index, char in enumerate(lower)
    )
    return EthereumAddress("0x" + checksummed)


def _address_bytes(text: str) -> bytes:
    if not isinstance(text, str) or not text.startswith(("0x", "0X")) or len(text) != 42:
        raise MalformedKey("an Ethereum address is 0x followed by 40 hex digits")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as error:
        raise MalformedKey("an Ethereum address is 0x followed by 40 hex digits") from error


def eth_generate_private_key() -> bytes:
    return bytes(coincurve.PrivateKey().secret)


def _eth_private(private_key: bytes) -> coincurve.PrivateKey:
    if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != 32:
        raise MalformedKey("a secp256k1 private key is 32 bytes")
    try:
        return coincurve.PrivateKey(bytes(private_key))
    except ValueError as error:
        raise MalformedKey("this secp256k1 private key is out of range") from error


def eth_address_from_public_key(public_key: bytes) -> EthereumAddress:
    """Address = last 20 bytes of keccak-256 of the 64-byte uncompressed key (no 0x04 prefix)."""
    try:
        point = coincurve.PublicKey(bytes(public_key) if len(public_key) != 64 else b"\x04" + public_key)
    except (ValueError, TypeError) as error:
        raise MalformedKey("not a secp256k1 public key") from error
    return to_checksum_address(keccak(point.format(compressed=False)[1:])[-20:])


def eth_address_from_private_key(private_key: bytes) -> EthereumAddress:
    return eth_address_from_public_key(_eth_private(private_key).public_key.format(compressed=False))


def eth_sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """Sign a 32-byte digest (e.g. an EIP-712 hash): 65 bytes ``r || s || v``, ``v`` in {27, 28}."""
    if len(digest) != 32:
        raise EthereumSignatureError("sign a 32-byte digest, not a message")
    signature = _eth_private(private_key).sign_recoverable(bytes(digest), hasher=None)
    return signature[:64] + bytes([27 + signature[64]])


def eth_recover_address(digest: bytes, signature: bytes) -> EthereumAddress:
    """The address whose key made ``signature`` over ``digest``."""
    if len(digest) != 32:
        raise EthereumSignatureError("a digest is 32 bytes")
    if len(signature) != 65:
        raise EthereumSignatureError("a recoverable signature is 65 bytes: r || s || v")
    v = signature[64]
    if v not in (27, 28):
        raise EthereumSignatureError(f"v must be 27 or 28, not {v}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < _SECP256K1_N or not 0 < s <= _SECP256K1_N // 2:
        raise EthereumSignatureError("r or s is out of range (high s is refused, as in EIP-2)")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes([v - 27]), bytes(digest), hasher=None
        )
    except Exception as error:  # coincurve raises a bare Exception when nothing recovers
        raise EthereumSignatureError("this signature recovers no public key") from error
    return eth_address_from_public_key(public.format(compressed=False))


# --- parsing public keys from text -------------------------------------------------------


def _hex32(text: object, what: str) -> bytes:
    if not isinstance(text, str) or len(text) != 64:
        raise MalformedKey(f"an {what} public key is 64 hex digits (32 bytes)")
    try:
        return bytes.fromhex(text)
    except ValueError as error:
        raise MalformedKey(f"an {what} public key is 64 hex digits (32 bytes)") from error


def parse_ed25519_public_key(text: str) -> bytes:
    """32 bytes from 64 hex digits, refusing what is not a canonical, non-small-order point."""
    key = _hex32(text, "Ed25519")
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(key):
        raise MalformedKey("this Ed25519 public key is not a valid curve point")
    return key


def parse_x25519_public_key(text: str) -> bytes:
    return _x25519_public_bytes(_hex32(text, "X25519"))


def parse_eth_address(text: str) -> EthereumAddress:
    """Accept all-lowercase, all-uppercase or a correct EIP-55 checksum; return the checksum form."""
    raw = _address_bytes(text)
    checksummed = to_checksum_address(raw)
    digits = text[2:]
    if digits not in (digits.lower(), digits.upper()) and text[2:] != checksummed[2:]:
        raise MalformedKey("this Ethereum address has a bad EIP-55 checksum (a typo?)")
    return checksummed

"""Receipts of ledger entries: one JSON document that proves an entry offline (docs/receipt.md).

``receipt_build`` writes the document and signs it with the issuing node's key;
``receipt_verify`` checks every part of it, in order, and reports each check. The issuer's
signature makes every field attributable, but no check trusts it: each proof is recomputed from
the entry up (entry signatures → commitment leaf → block root → validators' signatures → block
log → anchored root), so an issuer that re-signs a forged receipt is caught by the first proof
the forgery breaks.

Sections (top-level keys): ``REQUIRED_SECTIONS`` always; an optional section only when the
caller passes its :class:`ReceiptSection` (its format check, and its check with the place in the
order where it runs); anything else is refused. Optional sections come from the protocol package
that owns them (the ``"message"`` section is ``messaging.protocol.receipt.MESSAGE_SECTION``):
this module cannot import them (``messaging.protocol`` imports this one), so the caller assembles
them (``settlement.verify.RECEIPT_SECTIONS``, the registry the command and the node use).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consensus.protocol.receipt import (
    AnchorSection,
    BlockSection,
    Derived,
    LogSection,
    NotYet,
    ReceiptCheckFailed,
    ReceiptError,
    ReceiptFormatError,
    Skipped,
    Trust,
    anchor_to_json,
    b64,
    check_anchor_offline,
    check_block_inclusion,
    check_block_signatures,
    check_log_consistency,
    check_log_inclusion,
    log_to_json,
    read_b64,
    read_int,
    read_object,
)
from consensus.protocol.types import Payload, observation_bytes
from ledgers.protocol.commitments import ENTRY_OBSERVATION_KIND, entry_commitment
from ledgers.protocol.entries import EncodedEntry, Entry, encode_entry
from ledgers.protocol.errors import LedgerError
from settlement.protocol.encoding import CanonicalEncodingError, canonical, domain_bytes
from settlement.protocol.handover import key_handover_holds
from settlement.protocol.signing import SigningKey, is_valid, is_valid_bytes, sign

RECEIPT_TYPE = "parsec-receipt"
RECEIPT_VERSION = 3
"""What the node issues: 3 names the key that co-signed the entry when it is not the issuer's
(``entry.bank_keys``, a chain of key hand-overs) and writes each Merkle path as one base64
string; 2 wrote the message section compactly."""
READABLE_VERSIONS = frozenset({2, 3})
"""Version 2 receipts stay valid (the same proofs, paths as lists, no ``bank_keys``)."""
PACKED_PATHS_VERSION = 3
MAX_BANK_KEYS = 16
"""Hand-overs a receipt may carry: far more rotations than an entry outlives in practice, few
enough that the check stays a handful of signature verifications."""
_BANK_KEY_LINK_SIZE = 32 + 64  # the retired key, then its hand-over signature
# Far deeper than any receipt (an entry body is a few levels) and far shallower than Python's
# stack: a deeper document is refused by counting, before anything walks it recursively.
MAX_NESTING = 64
RECEIPT_KIND = "receipt"
"""The issuer signs ``domain_bytes("receipt", document without issuer.signature)``."""

REQUIRED_SECTIONS = frozenset({"type", "version", "entry", "block", "log", "anchor", "issuer"})


@dataclass(frozen=True)
class ReceiptSection:
    """An optional top-level section that another protocol package defines.

    ``parse`` checks its form (raise :class:`ReceiptFormatError`: the ``format`` check fails);
    ``check`` gets the section and the entry exactly as signed (``entry.entry``), returns what it
    established and raises :class:`ReceiptError` when it does not hold; it runs under the
    section's ``name`` right after the check named ``after``, and is skipped if the entry's bank
    signature did not verify (the entry it compares with would be anyone's). The issuer's
    signature covers the section like every other key."""

    name: str
    after: str
    parse: Callable[[object], None]
    check: Callable[[object, Mapping[str, Any]], str]


__all__ = [
    "RECEIPT_TYPE",
    "RECEIPT_VERSION",
    "BankKey",
    "CheckResult",
    "EntrySection",
    "Issuer",
    "Receipt",
    "ReceiptError",
    "ReceiptReport",
    "ReceiptSection",
    "Trust",
    "commitment_leaf",
    "receipt_build",
    "receipt_verify",
]


def commitment_leaf(encoded: EncodedEntry) -> bytes:
    """The Merkle leaf consensus agreed for this entry: the observation bytes of
    ``ledger-entry\\n`` + the entry's head commitment (consensus.services.observation_for)."""
    payload = entry_commitment(encoded.entry.ledger, encoded.entry.height, encoded.hash)
    return observation_bytes(Payload(ENTRY_OBSERVATION_KIND.encode() + b"\n" + payload))


@dataclass(frozen=True)
class BankKey:
    """One earlier key of the bank: the key, and its signature handing over to the next key of
    the chain (the next ``BankKey``, or the issuer's key after the last one)."""

    key: bytes
    handover: bytes

    def to_json(self) -> str:
        return b64(self.key + self.handover)

    @classmethod
    def from_json(cls, value: object) -> BankKey:
        raw = read_b64(value, what="each of entry.bank_keys", size=_BANK_KEY_LINK_SIZE)
        return cls(key=raw[:32], handover=raw[32:])


@dataclass(frozen=True)
class EntrySection:
    """The entry exactly as signed and its signatures. The bank's co-signing key is the issuer's
    key (a ledger's receipts are issued by the bank that keeps and co-signs it), or, after the
    bank rotated its key, the first of ``bank_keys``: the chain of hand-overs from the key that
    co-signed to the issuer's key."""

    entry: Entry
    party_key: bytes | None
    """``None`` together with ``party_signature`` when the bank's signature alone makes the entry
    (a credit, or the bank's own ledger): a key nothing checks would be a field nobody can verify."""
    party_signature: bytes | None
    bank_signature: bytes
    bank_keys: tuple[BankKey, ...] = ()
    """Empty, and not written, when the issuer's key co-signed: one form for each receipt."""

    KEYS = frozenset({"entry", "party_key", "party_signature", "bank_signature"})
    KEYS_WITH_BANK_KEYS = KEYS | {"bank_keys"}

    def to_json(self) -> dict[str, Any]:
        written: dict[str, Any] = {
            "entry": self.entry.to_json(),
            "party_key": None if self.party_key is None else b64(self.party_key),
            "party_signature": None if self.party_signature is None else b64(self.party_signature),
            "bank_signature": b64(self.bank_signature),
        }
        if self.bank_keys:
            written["bank_keys"] = [link.to_json() for link in self.bank_keys]
        return written

    @classmethod
    def from_json(cls, value: object, *, version: int = RECEIPT_VERSION) -> EntrySection:
        carries_bank_keys = version >= 3 and isinstance(value, Mapping) and "bank_keys" in value
        data = read_object(
            value, what="entry", keys=cls.KEYS_WITH_BANK_KEYS if carries_bank_keys else cls.KEYS
        )
        bank_keys: tuple[BankKey, ...] = ()
        if carries_bank_keys:
            links = data["bank_keys"]
            if not isinstance(links, list) or not 0 < len(links) <= MAX_BANK_KEYS:
                raise ReceiptFormatError(
                    f"entry.bank_keys lists 1 to {MAX_BANK_KEYS} earlier keys of the bank "
                    "(and is left out when the issuer's key co-signed)"
                )
            bank_keys = tuple(BankKey.from_json(link) for link in links)
        try:
            entry = Entry.from_json(data["entry"])
            # Exactly as signed: a value that only parses to the same entry (an extra
            # field, another spelling) is not what was signed.
            if entry.to_json() != data["entry"] or canonical(entry.to_json()) != canonical(data["entry"]):
                raise ReceiptFormatError("entry.entry is not in the form that was signed")
        except (LedgerError, CanonicalEncodingError) as error:
            raise ReceiptFormatError(f"entry.entry: {error}") from error
        party_key, party_signature = data["party_key"], data["party_signature"]
        if (party_key is None) != (party_signature is None):
            raise ReceiptFormatError("entry.party_key and entry.party_signature are both given or both null")
        return cls(
            entry=entry,
            party_key=None if party_key is None else read_b64(party_key, what="entry.party_key", size=32),
            party_signature=(
                None
                if party_signature is None
                else read_b64(party_signature, what="entry.party_signature", size=64)
            ),
            bank_signature=read_b64(data["bank_signature"], what="entry.bank_signature", size=64),
            bank_keys=bank_keys,
        )


@dataclass(frozen=True)
class Issuer:
    node: str
    key: bytes
    issued_at: int
    """Milliseconds since the Unix epoch (UTC), as entries count time."""
    signature: bytes

    KEYS = frozenset({"node", "key", "issued_at", "signature"})

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "key": b64(self.key),
            "issued_at": self.issued_at,
            "signature": b64(self.signature),
        }

    @classmethod
    def from_json(cls, value: object) -> Issuer:
        data = read_object(value, what="issuer", keys=cls.KEYS)
        node = data["node"]
        if not isinstance(node, str) or not 0 < len(node) <= 100:
            raise ReceiptFormatError("issuer.node must be the issuing node's name (1 to 100 characters)")
        return cls(
            node=node,
            key=read_b64(data["key"], what="issuer.key", size=32),
            issued_at=read_int(data["issued_at"], what="issuer.issued_at"),
            signature=read_b64(data["signature"], what="issuer.signature", size=64),
        )


@dataclass(frozen=True)
class Receipt:
    entry: EntrySection
    block: BlockSection
    log: LogSection | None
    anchor: AnchorSection | None
    issuer: Issuer
    optional: Mapping[str, Any] = field(default_factory=dict)
    """The optional sections present, by name, as JSON (each checked by its ``ReceiptSection``)."""
    version: int = RECEIPT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "type": RECEIPT_TYPE,
            "version": self.version,
            "entry": self.entry.to_json(),
            **{name: copy.deepcopy(value) for name, value in sorted(self.optional.items())},
            "block": self.block.to_json(packed_paths=self.version >= PACKED_PATHS_VERSION),
            "log": log_to_json(self.log, packed_paths=self.version >= PACKED_PATHS_VERSION),
            "anchor": anchor_to_json(self.anchor),
            "issuer": self.issuer.to_json(),
        }

    @classmethod
    def from_json(cls, document: object, sections: Sequence[ReceiptSection] = ()) -> Receipt:
        if not isinstance(document, Mapping):
            raise ReceiptFormatError("a receipt is a JSON object")
        keys = set(document)
        missing = REQUIRED_SECTIONS - keys
        unknown = keys - REQUIRED_SECTIONS - {section.name for section in sections}
        if missing or unknown:
            parts = ([f"missing {', '.join(sorted(missing))}"] if missing else []) + (
                [f"unknown {', '.join(sorted(unknown))}"] if unknown else []
            )
            raise ReceiptFormatError(f"receipt: {'; '.join(parts)}")
        if document["type"] != RECEIPT_TYPE:
            raise ReceiptFormatError(f"type must be {RECEIPT_TYPE!r}")
        version = document["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version not in READABLE_VERSIONS:
            raise ReceiptFormatError(
                f"this verifier reads receipt versions {', '.join(map(str, sorted(READABLE_VERSIONS)))}"
            )
        packed = version >= PACKED_PATHS_VERSION
        log = LogSection.from_json(document["log"], packed_paths=packed)
        anchor = AnchorSection.from_json(document["anchor"])
        if (log is None) != (anchor is None):
            raise ReceiptFormatError("log and anchor are both present (anchored) or both null (not yet)")
        optional = {}
        for section in sections:
            if section.name in document:
                section.parse(document[section.name])
                optional[section.name] = document[section.name]
        return cls(
            entry=EntrySection.from_json(document["entry"], version=version),
            block=BlockSection.from_json(document["block"], packed_paths=packed),
            log=log,
            anchor=anchor,
            issuer=Issuer.from_json(document["issuer"]),
            optional=optional,
            version=version,
        )


def _unsigned(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document the issuer signs: everything, with the issuer's signature left out."""
    issuer = {key: value for key, value in document["issuer"].items() if key != "signature"}
    return {**document, "issuer": issuer}


def receipt_build(
    *,
    entry: EntrySection,
    block: BlockSection,
    log: LogSection | None,
    anchor: AnchorSection | None,
    node: str,
    issuer_key: SigningKey,
    issued_at: int,
    optional: Sequence[tuple[ReceiptSection, Any]] = (),
) -> dict[str, Any]:
    """The signed receipt document, with the ``optional`` sections given (each with its JSON).
    Raises :class:`ReceiptError` if it would not verify: a node never hands out a receipt its own
    verifier refuses."""
    issuer = Issuer(node, issuer_key.public_key, issued_at, bytes(64))
    draft = Receipt(entry, block, log, anchor, issuer, {section.name: value for section, value in optional})
    document = draft.to_json()
    unsigned = _unsigned(document)  # a copy: its issuer object is a new one without the signature
    document["issuer"]["signature"] = b64(sign(issuer_key, RECEIPT_KIND, unsigned))
    report = receipt_verify(document, sections=tuple(section for section, _ in optional))
    if not report.ok:
        failed = report.first_failure
        assert failed is not None
        raise ReceiptCheckFailed(f"the receipt would not verify: {failed.detail}", check=failed.name)
    return document


# ----------------------------------------------------------------- verification


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    """"pass", "fail", "skip" (an earlier check failed) or "not yet" (no anchor yet)."""
    detail: str

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "skip")


@dataclass(frozen=True)
class ReceiptReport:
    checks: tuple[CheckResult, ...]
    receipt: Receipt | None = None
    derived: Derived | None = None
    """What the checks recomputed (the anchored root that ``--rpc`` compares with the chain)."""

    @property
    def ok(self) -> bool:
        return not any(check.failed for check in self.checks)

    @property
    def first_failure(self) -> CheckResult | None:
        return next((check for check in self.checks if check.status == "fail"), None)

    @property
    def anchored(self) -> bool:
        return any(check.name == "anchor" and check.status == "pass" for check in self.checks)


@dataclass
class _Context:
    document: Mapping[str, Any]
    receipt: Receipt
    trust: Trust
    derived: Derived
    encoded: EncodedEntry | None = None
    bank_key: bytes | None = None
    """The key that co-signed the entry, once ``bank-key`` has tied it to the issuer's key."""


def _check_issuer_signature(context: _Context) -> str:
    issuer = context.receipt.issuer
    pinned_key = context.trust.issuer
    earlier_keys = [link.key for link in context.receipt.entry.bank_keys]
    # A pinned key the bank has since retired still identifies it: the hand-over chain (checked
    # by ``bank-key``, which fails the receipt if it does not hold) leads from it to the issuer.
    if pinned_key is not None and pinned_key != issuer.key and pinned_key not in earlier_keys:
        raise ReceiptCheckFailed("the issuer's key is not the key you trust for this bank")
    if not is_valid(issuer.key, RECEIPT_KIND, _unsigned(context.document), issuer.signature):
        raise ReceiptCheckFailed("the issuer's signature does not verify on the receipt")
    if pinned_key is None:
        pinned = "not pinned: compare it with the bank's"
    elif pinned_key == issuer.key:
        pinned = "pinned"
    else:
        pinned = f"pinned through the bank's earlier key {b64(pinned_key)}, which handed over to it"
    return (
        f"signed by node {issuer.node!r}, key {b64(issuer.key)} ({pinned}), issued at {issuer.issued_at} ms"
    )


def _check_bank_key(context: _Context) -> str:
    """The key that co-signed the entry is the issuer's, or one the issuer's key succeeded: each
    earlier key signed its hand-over to the next, the last one to the issuer's key. Since direct
    hand-overs (docs/receipt.md), one item: the co-signing key's hand-over straight to the
    issuer's key; the rule is the same for one item or several."""
    issuer_key = context.receipt.issuer.key
    chain = context.receipt.entry.bank_keys
    if not chain:
        context.bank_key = issuer_key
        return "the entry was co-signed with the issuer's key"
    keys = [link.key for link in chain]
    if issuer_key in keys or len(set(keys)) != len(keys):
        raise ReceiptCheckFailed("entry.bank_keys names a key twice, or the issuer's own key")
    successors = [*keys[1:], issuer_key]
    for link, successor in zip(chain, successors, strict=True):
        if not key_handover_holds(link.key, successor, link.handover):
            raise ReceiptCheckFailed(
                f"the bank's earlier key {b64(link.key)} did not sign a hand-over to {b64(successor)}"
            )
    context.bank_key = keys[0]
    steps = " -> ".join(b64(key) for key in [*keys, issuer_key])
    return (
        f"the entry was co-signed with the bank's earlier key {b64(keys[0])}, which handed over "
        f"to the issuer's key ({len(keys)} hand-over{'s' if len(keys) > 1 else ''}, each signed by "
        f"the key handing over: {steps})"
    )


def _check_entry_bank_signature(context: _Context) -> str:
    section = context.receipt.entry
    key = context.bank_key
    if key is None:
        raise Skipped("needs the bank's co-signing key, which bank-key did not establish")
    encoded = encode_entry(section.entry)
    if not is_valid_bytes(key, encoded.message, section.bank_signature):
        which = "the issuer's key" if key == context.receipt.issuer.key else f"key {b64(key)}"
        raise ReceiptCheckFailed(f"the bank's signature (by {which}) does not verify on the entry")
    context.encoded = encoded
    return f"entry {section.entry.height} of {section.entry.ledger} co-signed by its bank, hash {encoded.hash.hex()}"


def _check_entry_party_signature(context: _Context) -> str:
    section = context.receipt.entry
    # The bank's check encoded this very entry already, unless it failed before that.
    encoded = context.encoded or encode_entry(section.entry)
    if section.party_key is None or section.party_signature is None:
        return "not signed by the party: the bank's signature alone makes this entry (its own ledger, or a credit)"
    if not is_valid_bytes(section.party_key, encoded.message, section.party_signature):
        raise ReceiptCheckFailed("the party's signature does not verify on the entry")
    return f"signed by the party, key {b64(section.party_key)}"


def _check_entry_links(context: _Context) -> str:
    entry = context.receipt.entry.entry
    if entry.height == 0 and any(entry.prev):
        raise ReceiptCheckFailed("the first entry of a ledger links to 32 zero bytes")
    return f"ledger {entry.ledger}, height {entry.height}, prev {entry.prev.hex()}"


def _check_commitment(context: _Context) -> str:
    encoded = context.encoded
    if encoded is None:
        raise Skipped("needs the entry's bank signature, which did not verify")
    context.derived.leaf = commitment_leaf(encoded)
    return f"leaf = 'p' + 'ledger-entry\\n' + {entry_commitment(encoded.entry.ledger, encoded.entry.height, encoded.hash).decode()}"


def _check_block_inclusion(context: _Context) -> str:
    return check_block_inclusion(context.receipt.block, context.derived)


def _check_block_signatures(context: _Context) -> str:
    return check_block_signatures(context.receipt.block, context.derived, context.trust)


def _check_log_inclusion(context: _Context) -> str:
    return check_log_inclusion(context.receipt.block, context.receipt.log, context.derived)


def _check_log_consistency(context: _Context) -> str:
    receipt = context.receipt
    return check_log_consistency(receipt.block, receipt.log, receipt.anchor, context.derived)


def _check_anchor(context: _Context) -> str:
    return check_anchor_offline(context.receipt.anchor, context.derived)


def _section_check(section: ReceiptSection) -> Callable[[_Context], str]:
    def check(context: _Context) -> str:
        if context.encoded is None:
            raise Skipped("needs the entry's bank signature, which did not verify")
        return section.check(context.receipt.optional[section.name], context.document["entry"]["entry"])

    return check


_CHECKS: tuple[tuple[str, Callable[[_Context], str]], ...] = (
    ("issuer-signature", _check_issuer_signature),
    ("bank-key", _check_bank_key),
    ("entry-bank-signature", _check_entry_bank_signature),
    ("entry-party-signature", _check_entry_party_signature),
    ("entry-links", _check_entry_links),
    ("commitment", _check_commitment),
    ("block-inclusion", _check_block_inclusion),
    ("block-signatures", _check_block_signatures),
    ("log-inclusion", _check_log_inclusion),
    ("log-consistency", _check_log_consistency),
    ("anchor", _check_anchor),
)
CHECK_NAMES = ("format", *(name for name, _ in _CHECKS))
"""The checks of every receipt; an optional section present adds its own (``ReceiptSection``)."""


def _checks_for(
    receipt: Receipt, sections: Sequence[ReceiptSection]
) -> list[tuple[str, Callable[[_Context], str]]]:
    checks = list(_CHECKS)
    for section in sections:
        if section.name not in receipt.optional:
            continue
        names = [name for name, _ in checks]
        if section.after not in names or section.name in names:
            raise ValueError(f"section {section.name!r} cannot run after {section.after!r}")
        checks.insert(names.index(section.after) + 1, (section.name, _section_check(section)))
    return checks


# JSON's scalars: never an object or an array, whatever their depth (checked by type first,
# because most values of a receipt are strings and isinstance(..., Mapping) is slow).
_SCALARS = frozenset({str, int, bool, float, type(None)})


def _nesting_exceeds(document: object, limit: int) -> bool:
    """Whether any value sits more than ``limit`` objects or arrays deep (iterative: no recursion)."""
    pending: list[tuple[object, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, Mapping):
            children: Iterable[object] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth >= limit:
            return True
        # Only containers can be too deep: scalars are not queued at all.
        pending.extend((child, depth + 1) for child in children if type(child) not in _SCALARS)
    return False


def receipt_verify(
    document: object, *, trust: Trust | None = None, sections: Sequence[ReceiptSection] = ()
) -> ReceiptReport:
    """Every check, in order (docs/receipt.md). A check whose input an earlier one failed to
    establish is reported as skipped; the report is valid only if none failed or was skipped.

    ``sections``: the optional sections this caller knows (``settlement.verify.RECEIPT_SECTIONS``);
    a document with any other top-level key fails ``format``."""
    if _nesting_exceeds(document, MAX_NESTING):
        return ReceiptReport(
            (CheckResult("format", "fail", f"the document is nested more than {MAX_NESTING} levels deep"),)
        )
    try:
        receipt = Receipt.from_json(document, sections)
        # The bytes the issuer signed must exist: a value out of canonical JSON's domain cannot be signed.
        domain_bytes(RECEIPT_KIND, document)
    except (ReceiptError, CanonicalEncodingError) as error:
        return ReceiptReport((CheckResult("format", "fail", str(error)),))
    except RecursionError:
        return ReceiptReport(
            (CheckResult("format", "fail", "the document is nested too deeply to be a receipt"),)
        )
    assert isinstance(document, Mapping)
    context = _Context(document=document, receipt=receipt, trust=trust or Trust(), derived=Derived())
    results = [CheckResult("format", "pass", f"a {RECEIPT_TYPE} version {receipt.version}")]
    for name, check in _checks_for(receipt, sections):
        try:
            results.append(CheckResult(name, "pass", check(context)))
        except Skipped as skipped:
            results.append(CheckResult(name, "skip", str(skipped)))
        except NotYet as not_yet:
            results.append(CheckResult(name, "not yet", str(not_yet)))
        except ReceiptError as error:
            results.append(CheckResult(name, "fail", str(error)))
    return ReceiptReport(tuple(results), receipt, context.derived)

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
from settlement.protocol.signing import SigningKey, is_valid, is_valid_bytes, sign

RECEIPT_TYPE = "parsec-receipt"
RECEIPT_VERSION = 2  # 2: the message section in its compact form (docs/receipt.md)
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
class EntrySection:
    """The entry exactly as signed and its signatures. The bank's key is the issuer's key: a
    ledger's receipts are issued by the bank that keeps (and co-signs) it."""

    entry: Entry
    party_key: bytes | None
    """``None`` together with ``party_signature`` when the bank's signature alone makes the entry
    (a credit, or the bank's own ledger): a key nothing checks would be a field nobody can verify."""
    party_signature: bytes | None
    bank_signature: bytes

    KEYS = frozenset({"entry", "party_key", "party_signature", "bank_signature"})

    def to_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry.to_json(),
            "party_key": None if self.party_key is None else b64(self.party_key),
            "party_signature": None if self.party_signature is None else b64(self.party_signature),
            "bank_signature": b64(self.bank_signature),
        }

    @classmethod
    def from_json(cls, value: object) -> EntrySection:
        data = read_object(value, what="entry", keys=cls.KEYS)
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

    def to_json(self) -> dict[str, Any]:
        return {
            "type": RECEIPT_TYPE,
            "version": RECEIPT_VERSION,
            "entry": self.entry.to_json(),
            **{name: copy.deepcopy(value) for name, value in sorted(self.optional.items())},
            "block": self.block.to_json(),
            "log": log_to_json(self.log),
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
        if isinstance(version, bool) or version != RECEIPT_VERSION:
            raise ReceiptFormatError(f"this verifier reads receipt version {RECEIPT_VERSION}")
        log, anchor = LogSection.from_json(document["log"]), AnchorSection.from_json(document["anchor"])
        if (log is None) != (anchor is None):
            raise ReceiptFormatError("log and anchor are both present (anchored) or both null (not yet)")
        optional = {}
        for section in sections:
            if section.name in document:
                section.parse(document[section.name])
                optional[section.name] = document[section.name]
        return cls(
            entry=EntrySection.from_json(document["entry"]),
            block=BlockSection.from_json(document["block"]),
            log=log,
            anchor=anchor,
            issuer=Issuer.from_json(document["issuer"]),
            optional=optional,
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


def _check_issuer_signature(context: _Context) -> str:
    issuer = context.receipt.issuer
    if context.trust.issuer is not None and issuer.key != context.trust.issuer:
        raise ReceiptCheckFailed("the issuer's key is not the key you trust for this bank")
    if not is_valid(issuer.key, RECEIPT_KIND, _unsigned(context.document), issuer.signature):
        raise ReceiptCheckFailed("the issuer's signature does not verify on the receipt")
    pinned = "pinned" if context.trust.issuer is not None else "not pinned: compare it with the bank's"
    return (
        f"signed by node {issuer.node!r}, key {b64(issuer.key)} ({pinned}), issued at {issuer.issued_at} ms"
    )


def _check_entry_bank_signature(context: _Context) -> str:
    section = context.receipt.entry
    encoded = encode_entry(section.entry)
    key = context.receipt.issuer.key
    if not is_valid_bytes(key, encoded.message, section.bank_signature):
        raise ReceiptCheckFailed("the bank's signature (by the issuer's key) does not verify on the entry")
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
    results = [CheckResult("format", "pass", f"a {RECEIPT_TYPE} version {RECEIPT_VERSION}")]
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

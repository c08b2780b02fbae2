"""Content-addressed storage of KYC documents: ``VAR_DIR/documents/<sha[:2]>/<sha>``.

The same bytes are stored once, whoever uploads them. A file is written to a temporary name in
its final directory and renamed into place, so a reader never sees half a document, and a crash
leaves at most a stray temporary file. A file whose database row was rolled back stays on disk:
harmless (its name is its content) and re-used by the next upload of the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings

# PDF, PNG and JPEG only, recognised by their first bytes: a client's Content-Type is a claim.
MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
ALLOWED_CONTENT_TYPES = frozenset(content_type for _, content_type in MAGIC_NUMBERS)


def sniff_content_type(head: bytes) -> str | None:
    """The allowed type whose magic number ``head`` starts with, or None."""
    for magic, content_type in MAGIC_NUMBERS:
        if head.startswith(magic):
            return content_type
    return None


def documents_root() -> Path:
    return Path(settings.VAR_DIR) / "documents"


def document_path(sha256: str) -> Path:
    if len(sha256) != 64 or any(char not in "0123456789abcdef" for char in sha256):
        raise ValueError("a document is named by its lower-case hex SHA-256")
    return documents_root() / sha256[:2] / sha256


def document_store(content: bytes) -> str:
    """Store ``content`` (once) and return its SHA-256 hex."""
    sha256 = hashlib.sha256(content).hexdigest()
    path = document_path(sha256)
    if path.exists():
        return sha256
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return sha256


def document_open(sha256: str) -> Path:
    """The stored file's path; FileNotFoundError if the bytes are missing."""
    path = document_path(sha256)
    if not path.is_file():
        raise FileNotFoundError(f"document {sha256} is not in {documents_root()}")
    return path

"""Fixtures for counterparties: the node's passphrase, a private documents directory, users
of each role, fresh key sets, and counterparties made through the services."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import nacl.public
import nacl.signing
import pytest

from settlement import keystore
from settlement.counterparties import services
from settlement.protocol import keys as key_rules

# A well-formed one-page PDF (the magic number is what the upload checks).
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 16


@pytest.fixture(autouse=True)
def node_passphrase(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NODE_KEY_PASSPHRASE", "test passphrase")
    # Node key ids repeat between tests (each test's database is rolled back): forget the
    # keys opened by the previous test so a key id never maps to another test's key.
    keystore.forget_opened_keys()
    yield
    keystore.forget_opened_keys()


@pytest.fixture(autouse=True)
def documents_dir(settings: Any, tmp_path: Any) -> Any:
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR / "documents"


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    """Users holding the given roles, without a password: every test here logs in with
    force_login, and hashing a password (PBKDF2) costs a quarter of a second a user."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    def make(username: str, *roles: str) -> Any:
        user = get_user_model().objects.create_user(username=username, password=None)
        user.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in roles))
        return user

    return make


@pytest.fixture
def node_identity(db: None) -> None:
    keystore.node_identity_ensure()


@pytest.fixture
def operator(make_user):
    return make_user("olga-operator", "operator")


@pytest.fixture
def reviewer(make_user):
    return make_user("rita-reviewer", "kyc_reviewer")


@pytest.fixture
def auditor(make_user):
    return make_user("aldo-auditor", "auditor")


@pytest.fixture
def admin_user(make_user):
    return make_user("ada-admin", "admin")


def public_keys() -> dict[str, str]:
    """Fresh public keys of a self-custody counterparty, as the API takes them."""
    return {
        "ed25519_public_key": bytes(nacl.signing.SigningKey.generate().verify_key).hex(),
        "x25519_public_key": bytes(nacl.public.PrivateKey.generate().public_key).hex(),
        "ethereum_address": str(key_rules.eth_address_from_private_key(key_rules.eth_generate_private_key())),
    }


@pytest.fixture
def new_keys() -> Callable[[], dict[str, str]]:
    return public_keys


def person_fields(name: str = "alice", **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": "person",
        "legal_name": f"{name.capitalize()} Example",
        "country": "DE",
        "contact_email": f"{name}@example.org",
        "federation_name": name,
        "custody": "self",
        **public_keys(),
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def person_data() -> Callable[..., dict[str, Any]]:
    return person_fields


@pytest.fixture
def make_counterparty(db: None) -> Callable[..., Any]:
    """Create a counterparty through the service; ``status`` walks it through KYC to there."""

    def make(name: str = "alice", status: str = "NEEDS_INFO", **overrides: Any) -> Any:
        counterparty = services.counterparty_create(actor="test", **person_fields(name, **overrides))
        if status == "NEEDS_INFO":
            return counterparty
        services.kyc_document_upload(
            counterparty=counterparty, actor="test", file=io.BytesIO(PDF + name.encode()), filename="id.pdf"
        )
        counterparty = services.kyc_submit(counterparty=counterparty, actor="test")
        if status == "ACCEPTED":
            counterparty = services.kyc_decide(counterparty=counterparty, actor="test", decision="accept")
        elif status == "REJECTED":
            counterparty = services.kyc_decide(
                counterparty=counterparty, actor="test", decision="reject", reason="documents unreadable"
            )
        return counterparty

    return make


@pytest.fixture
def upload() -> Callable[..., Any]:
    """A file as a browser would upload it (PDF unless told otherwise)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    def make(content: bytes = PDF, name: str = "passport.pdf", content_type: str = "application/pdf") -> Any:
        return SimpleUploadedFile(name, content, content_type=content_type)

    return make

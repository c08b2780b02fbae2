"""KYC documents: content-addressed storage (SHA-256, same bytes stored once), PDF/PNG/JPEG by
magic number, 10 MiB at most; a refused upload is 400 with a field error and saves nothing."""

from __future__ import annotations

import hashlib

import pytest

from settlement.counterparties.models import KycDocument
from settlement.counterparties.services import KYC_DOCUMENT_MAX_BYTES
from settlement.models import AuditEvent

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 16

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_counterparty):
    return make_counterparty("alice")


@pytest.fixture
def logged_in(client, operator):
    client.force_login(operator)
    return client


def _upload(client, counterparty, file):
    return client.post(f"/api/counterparties/{counterparty.pk}/kyc/documents/", {"file": file})


@pytest.mark.parametrize(
    ("content", "content_type"), [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")]
)
def test_an_allowed_document_is_stored_under_its_sha256(
    logged_in, alice, upload, documents_dir, content, content_type
):
    response = _upload(logged_in, alice, upload(content, "scan.bin", content_type))

    assert response.status_code == 201, response.json()
    sha = hashlib.sha256(content).hexdigest()
    assert response.json()["sha256"] == sha
    assert response.json()["content_type"] == content_type
    assert response.json()["size"] == len(content)
    assert (documents_dir / sha[:2] / sha).read_bytes() == content
    event = AuditEvent.objects.get(action="kyc.document_upload")
    assert event.after is not None
    assert event.after["sha256"] == sha


def test_the_same_bytes_are_stored_once(logged_in, alice, make_counterparty, upload, documents_dir):
    bob = make_counterparty("bob")

    _upload(logged_in, alice, upload(PDF, "a.pdf"))
    _upload(logged_in, alice, upload(PDF, "again.pdf"))
    _upload(logged_in, bob, upload(PDF, "b.pdf"))

    assert [path.name for path in documents_dir.rglob("*") if path.is_file()] == [
        hashlib.sha256(PDF).hexdigest()
    ]
    assert KycDocument.objects.filter(counterparty=alice).count() == 1
    assert KycDocument.objects.filter(counterparty=bob).count() == 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"MZ\x90\x00 a windows program", "application/pdf"),  # the header lies
        (b"plain text, not a scan", "text/plain"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (PNG, "application/pdf"),  # a real PNG declared as a PDF
        (b"", "application/pdf"),
    ],
)
def test_a_wrong_type_is_400_and_nothing_is_saved(
    logged_in, alice, upload, documents_dir, content, content_type
):
    events = AuditEvent.objects.count()

    response = _upload(logged_in, alice, upload(content, "x.pdf", content_type))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "file" in response.json()["error"]["fields"]
    assert not KycDocument.objects.exists()
    assert AuditEvent.objects.count() == events
    assert not documents_dir.exists() or not any(documents_dir.rglob("*"))


def test_a_document_over_10_mib_is_400_and_nothing_is_saved(logged_in, alice, upload, documents_dir):
    too_large = PDF + b"\x00" * (KYC_DOCUMENT_MAX_BYTES + 1 - len(PDF))

    response = _upload(logged_in, alice, upload(too_large, "big.pdf"))

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == ["at most 10 MiB"]
    assert not KycDocument.objects.exists()
    assert not documents_dir.exists() or not any(documents_dir.rglob("*"))


def test_exactly_10_mib_is_accepted(logged_in, alice, upload):
    response = _upload(
        logged_in, alice, upload(PDF + b"\x00" * (KYC_DOCUMENT_MAX_BYTES - len(PDF)), "big.pdf")
    )

    assert response.status_code == 201


def test_a_missing_file_is_a_field_error(logged_in, alice):
    response = logged_in.post(f"/api/counterparties/{alice.pk}/kyc/documents/", {})

    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


def test_documents_are_listed_and_downloadable_by_every_role(client, alice, make_user, upload):
    from settlement.counterparties import services

    document = services.kyc_document_upload(
        counterparty=alice, actor="test", file=upload(PNG, "id.png"), filename="id.png"
    )
    for role in ("operator", "kyc_reviewer", "auditor", "admin"):
        client.force_login(make_user(f"viewer-{role}", role))

        listed = client.get(f"/api/counterparties/{alice.pk}/kyc/documents/")
        downloaded = client.get(f"/counterparties/{alice.pk}/kyc/documents/{document.pk}/")
        from_api = client.get(f"/api/counterparties/{alice.pk}/kyc/documents/{document.pk}/content/")

        assert [item["sha256"] for item in listed.json()] == [document.sha256]
        assert downloaded.status_code == 200
        assert b"".join(downloaded.streaming_content) == PNG
        assert downloaded["Content-Type"] == "image/png"
        assert "attachment" in downloaded["Content-Disposition"]
        assert b"".join(from_api.streaming_content) == PNG

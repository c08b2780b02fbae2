"""The admin console: key management without private keys, a read-only audit log."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from settlement import keystore
from settlement.models import AuditEvent, NodeKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    user = make_user("root", "admin")
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    client.force_login(get_user_model().objects.get(pk=user.pk))
    return client


def test_the_key_list_shows_public_keys_and_never_the_sealed_half(admin_client):
    keystore.node_identity_ensure()
    signer = keystore.node_signer()

    page = admin_client.get("/admin/settlement/nodekey/").content.decode()
    detail = admin_client.get(
        f"/admin/settlement/nodekey/{NodeKey.objects.first().pk}/change/"
    ).content.decode()

    assert signer.public_key.hex() in page
    for html in (page, detail):
        assert "ciphertext" not in html
        assert signer.key.seed.hex() not in html


def test_rotating_from_the_admin_console_retires_the_key(admin_client):
    keystore.node_identity_ensure()
    current = NodeKey.objects.get(purpose="ed25519", valid_until__isnull=True)

    response = admin_client.post(
        "/admin/settlement/nodekey/", {"action": "rotate", "_selected_action": [current.pk]}
    )

    assert response.status_code == 302
    current.refresh_from_db()
    assert current.valid_until is not None
    assert AuditEvent.objects.filter(action="node_key.rotate", reason="rotated in the admin console").exists()


def test_the_audit_log_cannot_be_edited_in_the_admin_console(admin_client):
    event = AuditEvent.objects.create(actor="a", action="b", target_type="c", target_id="1")

    assert admin_client.get(f"/admin/settlement/auditevent/{event.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/settlement/auditevent/{event.pk}/delete/").status_code == 403

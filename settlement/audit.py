"""Writing the audit log. Every service that changes something a regulator may ask about
calls :func:`audit_record` inside its own transaction, so the record and the change commit
together or not at all."""

from __future__ import annotations

from typing import Any

from django.db import models

from settlement.models import AuditEvent


def actor_name(actor: Any) -> str:
    """A stable, human-readable name for whoever acted: a user, an API token, a peer, the system."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    token = getattr(actor, "_parsec_api_token", None)
    if token is not None:
        return f"{actor.get_username()} (api-token:{token.lookup})"
    get_username = getattr(actor, "get_username", None)
    return str(get_username()) if callable(get_username) else str(actor)


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model | tuple[str, str],
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    if isinstance(target, models.Model):
        target_type, target_id = target._meta.label_lower, str(target.pk)
    else:
        target_type, target_id = target
    return AuditEvent.objects.create(
        actor=actor_name(actor),
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        reason=reason,
    )

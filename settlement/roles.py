"""Roles and what they may do. A role is a Django group named after settlement.models.Role."""

from __future__ import annotations

from typing import Any

from settlement.models import Role

READ_ROLES = frozenset(Role)
WRITE_ROLES = frozenset({Role.OPERATOR, Role.ADMIN})


def user_roles(user: Any) -> frozenset[Role]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(Role)
    cached = getattr(user, "_parsec_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role in Role if role.value in names)
        user._parsec_roles = cached
    return cached


def can_view_dashboard(user: Any) -> bool:
    return bool(user_roles(user) & READ_ROLES)

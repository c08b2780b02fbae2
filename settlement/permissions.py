"""Who may do what, for the API (DRF permission classes) and the dashboard (a decorator).

Read: every role (an auditor reads everything). Write: operator and admin, unless a view names
other roles (KYC decisions: KYC reviewer and admin). An API token never has more than its own
role, even when its user has more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from settlement.models import ApiToken, Role
from settlement.roles import READ_ROLES, WRITE_ROLES, user_roles


def request_roles(request: HttpRequest | Request) -> frozenset[Role]:
    roles = user_roles(request.user)
    token = getattr(request, "auth", None)
    if isinstance(token, ApiToken):
        roles = roles & {Role(token.role)}
    return roles


class RolePermission(BasePermission):
    """Safe methods for any role; others for the view's ``write_roles`` (operator, admin)."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        roles = request_roles(request)
        if request.method in SAFE_METHODS:
            return bool(roles & frozenset(getattr(view, "read_roles", READ_ROLES)))
        return bool(roles & frozenset(getattr(view, "write_roles", WRITE_ROLES)))


ViewFunction = TypeVar("ViewFunction", bound=Callable[..., HttpResponse])


def roles_required(roles: Iterable[Role]) -> Callable[[ViewFunction], ViewFunction]:
    """Dashboard views: refuse (403) a user who holds none of ``roles``."""
    allowed = frozenset(roles)

    def decorate(view: ViewFunction) -> ViewFunction:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request_roles(request) & allowed:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


read_roles_required = roles_required(READ_ROLES)
write_roles_required = roles_required(WRITE_ROLES)

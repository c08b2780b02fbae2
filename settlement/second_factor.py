"""TOTP second factor for the dashboard (django-otp).

After the password, a user with a confirmed authenticator gives a code; a user without one
enrols first (a QR code of the otpauth URI, then one code to confirm). API tokens are their own
factor and skip this; an API call on a session needs a verified session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import segno
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request

DEVICE_NAME = "authenticator"


ViewFunction = TypeVar("ViewFunction", bound=Callable[..., Any])


def second_factor_not_required(view: ViewFunction) -> ViewFunction:
    view.second_factor_not_required = True  # type: ignore[attr-defined]
    return view


class SecondFactorRequiredMiddleware:
    """Send a session that has passed the password but not the code to the code page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        # Public views (login_not_required, which DRF views also carry: DRF authenticates
        # API calls itself, see VerifiedSessionAuthentication) and the code page itself pass.
        if not getattr(view_func, "login_required", True) or getattr(
            view_func, "second_factor_not_required", False
        ):
            return None
        user: Any = request.user  # OTPMiddleware adds is_verified()
        if not user.is_authenticated or user.is_verified():
            return None
        return redirect(f"{reverse('second-factor')}?next={quote(request.get_full_path())}")


class VerifiedSessionAuthentication(SessionAuthentication):
    """DRF session authentication that counts only sessions that passed the second factor."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = request._request.user
        return result if getattr(user, "is_verified", lambda: False)() else None


def confirmed_device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def enrolment_device(user: Any) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def session_is_verified(user: Any, session: Any) -> bool:
    """For websockets, where no middleware runs: the session names a confirmed device of the user."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id or not getattr(user, "is_authenticated", False):
        return False
    device = TOTPDevice.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk and device.confirmed


def _qr_svg(uri: str) -> str:
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#14324a"))


@never_cache
@second_factor_not_required
def second_factor(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or reverse("overview")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("overview")
    confirmed = confirmed_device(request.user)
    enrolling = confirmed is None
    device = confirmed if confirmed is not None else enrolment_device(request.user)
    error = ""
    if request.method == "POST":
        code = request.POST.get("code", "").strip().replace(" ", "")
        if device.verify_token(code):
            if enrolling:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return redirect(next_url)
        error = "That code is not right. Codes change every 30 seconds; try the current one."
    context = {"enrolling": enrolling, "error": error, "next": next_url}
    if enrolling:
        context |= {"qr_svg": _qr_svg(device.config_url), "secret": device.bin_key.hex()}
    return render(request, "registration/second_factor.html", context, status=400 if error else 200)

"""Dashboard pages and /healthz. Thin: they read through settlement.health and render."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from settlement import health
from settlement.charts import latency_chart
from settlement.models import HealthSample
from settlement.roles import can_view_dashboard


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Public, like any load balancer's health probe; it names services, never secrets."""
    state = health.node_health()
    return JsonResponse(state.as_json(), status=200 if state.up else 503)


def _require_viewer(request: HttpRequest) -> None:
    if not can_view_dashboard(request.user):
        raise PermissionDenied


@never_cache
def overview(request: HttpRequest) -> HttpResponse:
    _require_viewer(request)
    since = timezone.now() - timedelta(hours=1)
    samples = list(HealthSample.objects.filter(taken_at__gte=since).order_by("taken_at"))
    return render(
        request,
        "settlement/overview.html",
        {
            "health": health.node_health(),
            "samples": samples,
            "chart": latency_chart(samples),
            "section": "overview",
        },
    )


def section(request: HttpRequest, name: str, title: str) -> HttpResponse:
    """Sections whose content later work fills; each shows its honest empty state now."""
    _require_viewer(request)
    return render(request, "settlement/section.html", {"section": name, "title": title})

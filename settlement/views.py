"""Dashboard pages and /healthz. Thin: they read through settlement.health and render."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe

from settlement import health
from settlement.charts import latency_chart
from settlement.identity import node_identity_document
from settlement.keystore import node_key_rotate
from settlement.models import AuditEvent, HealthSample, KeyPurpose, NodeKey, Peer, Role
from settlement.permissions import request_roles
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
@require_safe
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


@require_safe
def section(request: HttpRequest, name: str, title: str) -> HttpResponse:
    """Sections whose content later work fills; each shows its honest empty state now."""
    _require_viewer(request)
    return render(request, "settlement/section.html", {"section": name, "title": title})


@login_not_required
@require_GET
def well_known(request: HttpRequest) -> JsonResponse:
    """The node's public identity, for peers and anyone checking its signatures."""
    return JsonResponse(node_identity_document())


@never_cache
def node_identity(request: HttpRequest) -> HttpResponse:
    """The node's public keys, current and retired, and who rotated them when."""
    _require_viewer(request)
    if request.method == "POST":
        if Role.ADMIN not in request_roles(request):
            raise PermissionDenied
        purpose = request.POST.get("purpose", "")
        if purpose not in KeyPurpose.values:
            return render(request, "400.html", {"message": "Choose which key to rotate."}, status=400)
        node_key_rotate(purpose=purpose, actor=request.user, reason=request.POST.get("reason", "")[:500])
        return redirect("node-identity")
    return render(
        request,
        "settlement/node_identity.html",
        {
            "section": "node",
            "keys": NodeKey.objects.order_by("purpose", "-valid_from"),
            "purposes": KeyPurpose.choices,
            "rotations": AuditEvent.objects.filter(action__startswith="node_key.")[:50],
            "can_rotate": Role.ADMIN in request_roles(request),
            "document": node_identity_document(),
        },
    )


@never_cache
@require_safe
def peers(request: HttpRequest) -> HttpResponse:
    _require_viewer(request)
    return render(request, "settlement/peers.html", {"section": "peers", "peers": peer_rows()})


def peer_rows() -> list[Peer]:
    return list(Peer.objects.prefetch_related("keys", "credit_limits"))

"""Dashboard pages of counterparties and KYC. Thin: read through selectors, write through
services, render. The list answers htmx requests with its table partial only."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from settlement.counterparties import selectors, services, storage
from settlement.counterparties.errors import CounterpartyError, CounterpartyNotFound
from settlement.counterparties.forms import (
    CounterpartyCreateForm,
    KycDecisionForm,
    KycDocumentForm,
    form_add_service_errors,
)
from settlement.counterparties.models import Counterparty, KycStatus
from settlement.models import Role
from settlement.permissions import read_roles_required, request_roles, roles_required, write_roles_required
from settlement.roles import READ_ROLES, WRITE_ROLES

REVIEW_ROLES = frozenset({Role.KYC_REVIEWER, Role.ADMIN})
LIST_LIMIT = 200


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _counterparty_or_404(counterparty_id: int) -> Counterparty:
    try:
        return selectors.counterparty_get(counterparty_id=counterparty_id)
    except CounterpartyNotFound as error:
        raise Http404(error.message) from error


@require_GET
@read_roles_required
def counterparty_list_page(request: HtmxHttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")
    status = request.GET.get("status", "")
    counterparties = selectors.counterparty_list(
        search=search, kyc_status=status if status in KycStatus.values else ""
    )
    context = {
        "section": "counterparties",
        "title": "Counterparties",
        "counterparties": counterparties[:LIST_LIMIT],
        "total": counterparties.count(),
        "limit": LIST_LIMIT,
        "search": search,
        "status": status,
        "statuses": KycStatus.choices,
        "can_write": bool(request_roles(request) & WRITE_ROLES),
    }
    if request.htmx:
        return render(request, "counterparties/partials/table.html", context)
    return render(request, "counterparties/list.html", context)


@require_http_methods(["GET", "POST"])
@write_roles_required
def counterparty_create_page(request: HttpRequest) -> HttpResponse:
    form = CounterpartyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            counterparty = services.counterparty_create(actor=request.user, **form.cleaned_data)
        except CounterpartyError as error:
            form_add_service_errors(form, error)
        else:
            return HttpResponseRedirect(reverse("counterparty-detail", args=[counterparty.pk]))
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "counterparties/form.html",
        {"section": "counterparties", "title": "New counterparty", "form": form},
        status=status,
    )


def _detail(
    request: HttpRequest, counterparty: Counterparty, *, status: int = 200, **forms: Any
) -> HttpResponse:
    roles = request_roles(request)
    context = {
        "section": "counterparties",
        "title": counterparty.legal_name,
        "counterparty": counterparty,
        "documents": selectors.kyc_document_list(counterparty=counterparty),
        "history": selectors.kyc_history(counterparty=counterparty),
        "key_sets": selectors.federation_key_set_list(counterparty=counterparty),
        "can_write": bool(roles & WRITE_ROLES),
        "can_decide": bool(roles & REVIEW_ROLES),
        "decision_form": forms.get("decision_form") or KycDecisionForm(),
        "document_form": forms.get("document_form") or KycDocumentForm(),
        "error": forms.get("error", ""),
    }
    return render(request, "counterparties/detail.html", context, status=status)


@require_GET
@read_roles_required
def counterparty_detail_page(request: HttpRequest, counterparty_id: int) -> HttpResponse:
    return _detail(request, _counterparty_or_404(counterparty_id))


def _back_to(counterparty: Counterparty) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("counterparty-detail", args=[counterparty.pk]))


@require_POST
@roles_required(REVIEW_ROLES)
def kyc_decision_page(request: HttpRequest, counterparty_id: int) -> HttpResponse:
    counterparty = _counterparty_or_404(counterparty_id)
    form = KycDecisionForm(request.POST)
    if form.is_valid():
        try:
            services.kyc_decide(counterparty=counterparty, actor=request.user, **form.cleaned_data)
        except CounterpartyError as error:
            form_add_service_errors(form, error)
            return _detail(request, counterparty, status=400, decision_form=form, error=error.message)
        return _back_to(counterparty)
    return _detail(request, counterparty, status=400, decision_form=form, error="Choose a decision.")


@require_POST
@write_roles_required
def kyc_submit_page(request: HttpRequest, counterparty_id: int) -> HttpResponse:
    counterparty = _counterparty_or_404(counterparty_id)
    try:
        services.kyc_submit(counterparty=counterparty, actor=request.user)
    except CounterpartyError as error:
        return _detail(request, counterparty, status=400, error=error.message)
    return _back_to(counterparty)


@require_POST
@write_roles_required
def kyc_document_upload_page(request: HttpRequest, counterparty_id: int) -> HttpResponse:
    counterparty = _counterparty_or_404(counterparty_id)
    form = KycDocumentForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            services.kyc_document_upload(
                counterparty=counterparty,
                actor=request.user,
                file=upload,
                filename=upload.name or "",
                content_type=upload.content_type or "",
            )
        except CounterpartyError as error:
            form_add_service_errors(form, error)
            return _detail(request, counterparty, status=400, document_form=form, error=error.message)
        return _back_to(counterparty)
    return _detail(request, counterparty, status=400, document_form=form, error="Choose a file to upload.")


@require_GET
def kyc_document_download(request: HttpRequest, counterparty_id: int, document_id: int) -> FileResponse:
    if not request_roles(request) & READ_ROLES:
        raise PermissionDenied
    counterparty = _counterparty_or_404(counterparty_id)
    try:
        document = selectors.kyc_document_get(counterparty=counterparty, document_id=document_id)
        path = storage.document_open(document.sha256)
    except (CounterpartyNotFound, FileNotFoundError) as error:
        raise Http404(str(error)) from error
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=document.original_filename,
        content_type=document.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response

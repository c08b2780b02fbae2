"""Admin console: KYC review with reasons, through the same services as the dashboard and API.

Counterparties are read-only here (they are created and changed through the services, which
validate and audit); the sealed custodial keys are not registered, not inlined, never shown.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from settlement.counterparties import services
from settlement.counterparties.errors import CounterpartyError
from settlement.counterparties.kyc_rules import KycDecision
from settlement.counterparties.models import Counterparty, FederationKeySet, KycDocument, KycReview
from settlement.models import Role
from settlement.permissions import request_roles

REVIEW_ROLES = frozenset({Role.KYC_REVIEWER, Role.ADMIN})


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class KycDocumentInline(ReadOnlyInline):
    model = KycDocument
    fields = ("original_filename", "content_type", "size", "sha256", "uploaded_by", "uploaded_at")
    readonly_fields = fields


class KycReviewInline(ReadOnlyInline):
    model = KycReview
    fields = ("at", "from_status", "to_status", "reviewer", "reason")
    readonly_fields = fields


class FederationKeySetInline(ReadOnlyInline):
    model = FederationKeySet
    fields = ("keys", "first_served_at", "last_served_at", "times_served")
    readonly_fields = fields


class KycReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False)


def _decide(
    modeladmin: CounterpartyAdmin,
    request: HttpRequest,
    queryset: QuerySet[Counterparty],
    decision: KycDecision,
) -> HttpResponse | None:
    if not request_roles(request) & REVIEW_ROLES:
        modeladmin.message_user(request, "Only KYC reviewers and admins decide KYC.", messages.ERROR)
        return None
    form = KycReasonForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        decided, failed = 0, []
        for counterparty in queryset:
            try:
                services.kyc_decide(
                    counterparty=counterparty,
                    actor=request.user,
                    decision=decision,
                    reason=form.cleaned_data["reason"],
                )
                decided += 1
            except CounterpartyError as error:
                failed.append(f"{counterparty.federation_address}: {error.message}")
        if decided:
            modeladmin.message_user(request, f"{decision}: {decided} counterparty(ies).", messages.SUCCESS)
        for failure in failed:
            modeladmin.message_user(request, failure, messages.ERROR)
        return None
    # Intermediate page: the reviewer gives a reason (required to reject or ask for information).
    return TemplateResponse(
        request,
        "counterparties/admin/kyc_decision.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": f"KYC decision: {decision}",
            "decision": decision,
            "counterparties": queryset,
            "form": form,
            "action": request.POST.get("action", ""),
            "opts": modeladmin.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )


@admin.register(Counterparty)
class CounterpartyAdmin(admin.ModelAdmin):
    list_display = (
        "legal_name",
        "kind",
        "country",
        "federation_address",
        "lei",
        "custody",
        "kyc_status",
        "updated_at",
    )
    list_filter = ("kyc_status", "kind", "custody", "country")
    search_fields = ("legal_name", "federation_name", "lei", "contact_email", "ed25519_public_key")
    readonly_fields = (
        "kind",
        "legal_name",
        "country",
        "lei",
        "contact_email",
        "contact_phone",
        "federation_name",
        "federation_domain",
        "ed25519_public_key",
        "x25519_public_key",
        "ethereum_address",
        "custody",
        "kyc_status",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = [KycReviewInline, KycDocumentInline, FederationKeySetInline]
    actions = ["kyc_accept", "kyc_reject", "kyc_needs_info"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the dashboard and API create counterparties, through the audited service

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # KYC records are kept

    @admin.action(description="KYC: approve (accept) selected counterparties")
    def kyc_accept(self, request: HttpRequest, queryset: QuerySet[Counterparty]) -> HttpResponse | None:
        return _decide(self, request, queryset, KycDecision.ACCEPT)

    @admin.action(description="KYC: reject selected counterparties (with reason)")
    def kyc_reject(self, request: HttpRequest, queryset: QuerySet[Counterparty]) -> HttpResponse | None:
        return _decide(self, request, queryset, KycDecision.REJECT)

    @admin.action(description="KYC: ask selected counterparties for information (with reason)")
    def kyc_needs_info(self, request: HttpRequest, queryset: QuerySet[Counterparty]) -> HttpResponse | None:
        return _decide(self, request, queryset, KycDecision.NEEDS_INFO)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(KycDocument)
class KycDocumentAdmin(ReadOnlyAdmin):
    list_display = (
        "original_filename",
        "counterparty",
        "content_type",
        "size",
        "sha256",
        "uploaded_by",
        "uploaded_at",
    )
    search_fields = ("original_filename", "sha256", "counterparty__legal_name")


@admin.register(KycReview)
class KycReviewAdmin(ReadOnlyAdmin):
    list_display = ("at", "counterparty", "from_status", "to_status", "reviewer", "reason")
    list_filter = ("to_status",)


@admin.register(FederationKeySet)
class FederationKeySetAdmin(ReadOnlyAdmin):
    list_display = ("counterparty", "keys_hash", "first_served_at", "last_served_at", "times_served")

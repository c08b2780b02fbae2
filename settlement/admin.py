from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from settlement.keystore import node_key_rotate
from settlement.models import ApiToken, AuditEvent, HealthSample, NodeKey, Peer, Role
from settlement.permissions import request_roles


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "role", "lookup", "created_at", "last_used_at", "revoked_at")
    list_filter = ("role",)
    # The secret's hash is useless to a person and should not be edited by hand.
    exclude = ("secret_hash",)
    readonly_fields = ("lookup", "created_at", "last_used_at")


@admin.register(HealthSample)
class HealthSampleAdmin(admin.ModelAdmin):
    list_display = ("taken_at", "database_up", "redis_up", "worker_up", "ethereum_up", "ethereum_block")
    date_hierarchy = "taken_at"


@admin.register(NodeKey)
class NodeKeyAdmin(admin.ModelAdmin):
    """Key management: see the node's keys and rotate them. The sealed private half is never shown."""

    list_display = ("key_id", "purpose", "public", "valid_from", "valid_until")
    list_filter = ("purpose",)
    fields = ("key_id", "purpose", "public", "valid_from", "valid_until")
    readonly_fields = fields
    actions = ("rotate",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are made by node_bootstrap and by rotation, never typed in

    def has_delete_permission(self, request: HttpRequest, obj: NodeKey | None = None) -> bool:
        return False  # a retired key must stay: old signatures are verified with it

    @admin.action(description="Rotate the selected keys (retire them, make new ones)")
    def rotate(self, request: HttpRequest, queryset: QuerySet[NodeKey]) -> None:
        if Role.ADMIN not in request_roles(request):
            raise PermissionDenied
        for key in queryset.filter(valid_until__isnull=True):
            new = node_key_rotate(
                purpose=key.purpose, actor=request.user, reason="rotated in the admin console"
            )
            self.message_user(request, f"{key.key_id} retired; {new.key_id} is current", messages.SUCCESS)


@admin.register(Peer)
class PeerAdmin(admin.ModelAdmin):
    list_display = ("name", "domain", "base_url", "status", "round_trip_ms", "last_seen_at")
    readonly_fields = ("status", "round_trip_ms", "last_seen_at", "last_attempt_at", "last_error")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the database refuses changes to the audit log anyway."""

    list_display = ("at", "actor", "action", "target_type", "target_id")
    list_filter = ("action", "target_type")
    search_fields = ("actor", "target_id", "reason")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

from django.contrib import admin

from settlement.models import ApiToken, HealthSample


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

"""REST API of ledgers, mounted under /api/."""

urlpatterns: list[object] = []

"""REST API of channels, mounted under /api/."""

urlpatterns: list[object] = []

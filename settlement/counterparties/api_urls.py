"""REST API of counterparties and KYC, mounted under /api/."""

urlpatterns: list[object] = []

"""A node-api URLconf with a route whose view checks no signature, for
test_node_api_handler: NodeSignatureRequiredMiddleware must refuse it."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

handler404 = "settlement.node_api_handler.not_found"


def unchecked(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"reached": True})


urlpatterns = [path("node-api/unchecked", unchecked)]

"""REST API of what every app shares. Thin views: serialize, call, serialize."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from settlement import health
from settlement.roles import user_roles


class NodeStatusApi(APIView):
    class ServiceOutput(serializers.Serializer):
        name = serializers.CharField()
        up = serializers.BooleanField()
        detail = serializers.DictField()
        error = serializers.CharField()

    class Output(serializers.Serializer):
        node = serializers.CharField()
        status = serializers.ChoiceField(choices=["up", "down"])
        down = serializers.ListField(child=serializers.CharField())
        services = serializers.DictField()
        you = serializers.DictField()

    @extend_schema(responses=Output, summary="The node's name, its services' health and your roles")
    def get(self, request: Request) -> Response:
        state = health.node_health().as_json()
        state["you"] = {
            "username": request.user.get_username(),
            "roles": sorted(role.value for role in user_roles(request.user)),
        }
        state["node"] = settings.NODE_NAME
        return Response(self.Output(state).data)

"""Every channel endpoint is in the OpenAPI schema, under names that collide with no other app's."""

from __future__ import annotations


def test_every_channel_endpoint_is_in_the_schema(client, make_user):
    client.force_login(make_user("auditor-schema", "auditor"))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    from channels_app import api_urls

    for pattern in api_urls.urlpatterns:
        path = "/api/" + str(pattern.pattern).replace("<str:channel_id>", "{channel_id}")
        assert path in schema["paths"], path
    components = schema["components"]["schemas"]
    assert "ChannelOutput" in components
    assert "ChannelErrorOutput" in components

"""Every messaging endpoint is in the OpenAPI schema, under names that collide with no other app's."""

from __future__ import annotations

import re


def test_every_messaging_endpoint_is_in_the_schema(client, make_user):
    client.force_login(make_user("auditor-schema", "auditor"))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    from messaging import api_urls

    for pattern in api_urls.urlpatterns:
        path = "/api/" + re.sub(r"<(?:int|str):(\w+)>", r"{\1}", str(pattern.pattern))
        assert path in schema["paths"], path
    components = schema["components"]["schemas"]
    for name in (
        "MessageOutput",
        "MessageErrorOutput",
        "SendInput",
        "MessageBatchInput",
        "UndeliverableOutput",
    ):
        assert name in components, name
    send = components["SendInput"]["properties"]
    assert {"envelope", "signature", "sender", "recipients", "text", "encrypt"} <= set(send)

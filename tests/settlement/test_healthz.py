"""/healthz reports PostgreSQL, Redis, the Celery worker and the Ethereum RPC, and 503 when one is down."""

from __future__ import annotations

import pytest


def test_all_four_services_are_up_when_a_worker_runs(client, celery_worker):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "up"
    assert set(body["services"]) == {"database", "redis", "worker", "ethereum"}
    assert all(service["up"] for service in body["services"].values())
    assert body["services"]["ethereum"]["detail"]["chain_id"] == 31337
    assert celery_worker.hostname in body["services"]["worker"]["detail"]["workers"]


@pytest.mark.django_db
def test_no_worker_gives_503_naming_the_worker(client, no_worker_heartbeats):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["down"] == ["worker"]
    assert "heartbeat" in response.json()["services"]["worker"]["error"]


@pytest.mark.django_db
def test_unreachable_redis_is_named(client, settings, closed_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert "redis" in response.json()["down"]
    assert response.json()["services"]["redis"]["error"].startswith("ConnectionError")


@pytest.mark.django_db
def test_unreachable_ethereum_rpc_is_named(client, settings, closed_port):
    settings.ETH_RPC_URL = f"http://127.0.0.1:{closed_port}"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert "ethereum" in response.json()["down"]


@pytest.mark.django_db
def test_healthz_needs_no_login_and_reveals_no_secrets(client, settings):
    body = client.get("/healthz").content.decode()

    assert settings.SECRET_KEY not in body
    assert settings.DATABASES["default"]["PASSWORD"] not in body


@pytest.fixture
def closed_port():
    from devstack.services import free_port

    return free_port()

"""The Parsec node's Django project and what every app shares."""

from settlement.celery import app as celery_app

__all__ = ["celery_app"]

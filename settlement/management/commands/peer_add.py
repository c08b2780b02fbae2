"""Add (or refresh) a peer from its published identity: `manage.py peer_add http://127.0.0.1:8001`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from settlement.identity import PeerDocumentError, fetch_identity_document, peer_add


class Command(BaseCommand):
    help = "Add a peer node, trusting the keys its /.well-known/parsec.json publishes now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("base_urls", nargs="+", help="the peers' base URLs")

    def handle(self, *args: Any, base_urls: list[str], **options: Any) -> None:
        for base_url in base_urls:
            try:
                peer = peer_add(
                    base_url=base_url, document=fetch_identity_document(base_url), actor="manage.py peer_add"
                )
            except PeerDocumentError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"peer {peer.name} ({peer.domain}) at {peer.base_url}")

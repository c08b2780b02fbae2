"""First start of a node: its keys, its operator account, an API token and a TOTP device.

Keys that are missing are made (and a wrong passphrase stops here, with a sentence). The
password, token and TOTP secret are shown once and written to a credentials file readable only
by the owner (mode 0600). A second run finds the account and changes nothing.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from settlement.keystore import keystore_check, node_identity_ensure
from settlement.models import ApiToken, Role


class Command(BaseCommand):
    help = "Create the operator account and an API token once, and record them in a credentials file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--credentials", type=Path, required=True, help="JSON file of all nodes' credentials"
        )
        parser.add_argument("--url", required=True, help="The node's dashboard URL, recorded with the login")
        parser.add_argument("--username", default="operator")

    @transaction.atomic
    def handle(self, *args: Any, credentials: Path, url: str, username: str, **options: Any) -> None:
        keystore_check()
        for key in node_identity_ensure():
            self.stdout.write(f"{settings.NODE_NAME}: made key {key.key_id}")
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            self.stdout.write(f"{settings.NODE_NAME}: account {username!r} exists; credentials unchanged")
            return
        password = secrets.token_urlsafe(12)
        user = users.objects.create_user(
            username=username, password=password, is_staff=True, is_superuser=True
        )
        # get_or_create: the groups come from a data migration, but a flushed database has none.
        user.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in (Role.ADMIN, Role.OPERATOR)))
        _token, plain_token = ApiToken.issue(user=user, name="make run", role=Role.OPERATOR)
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
        _record(
            credentials,
            settings.NODE_NAME,
            {
                "url": url,
                "username": username,
                "password": password,
                "api_token": plain_token,
                # For an authenticator app (scan or paste the URI), or `oathtool --totp <hex>`.
                "totp_uri": device.config_url,
                "totp_key_hex": device.key,
            },
        )
        self.stdout.write(
            f"{settings.NODE_NAME}: created {username!r}; password and API token written to {credentials}"
        )


def _record(path: Path, node: str, entry: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    everything = json.loads(path.read_text()) if path.exists() else {}
    everything[node] = entry
    # Create with 0600 from the start: a chmod after writing leaves a window.
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(everything, handle, indent=2, sort_keys=True)
    os.replace(path.with_suffix(".tmp"), path)
    os.chmod(path, 0o600)

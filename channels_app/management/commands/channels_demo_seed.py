"""`python manage.py channels_demo_seed --stage fund|use`: the channels of the `make run` demo.

The nodes in name order (this one and its peers; bank-a, bank-b, bank-c in `make run`) play
three parts: the first opens a ledger channel with the second, the second with the third, each
depositing its share on anvil (stage ``fund``, run on every node first). Then (stage ``use``)
the first node also opens channels with two of its custodial counterparties (Alice, with a
micro-payment stream, for a settlement by dispute; Bob, with a few payments, for a cooperative
one), pays the second node a few times, and opens a virtual channel with the third node through
the second, paying inside it. Challenge periods are short (``--challenge-seconds``) so a dispute
settles within minutes. Safe to run again: what exists is left alone. Local chain only.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_app import services, virtual, watcher
from channels_app.models import Channel, ChannelKind, ChannelPhase, OnChainTransaction, Stream
from channels_app.protocol.errors import ChannelError
from channels_app.protocol.types import ETH
from settlement import ethereum
from settlement.counterparties.models import Counterparty, Custody, KycStatus
from settlement.models import Peer
from settlement.transport import PeerUnreachable

ACTOR = "demo-seed"
DEV_CHAIN_ID = 31337
ETHER = 10**18
LEDGER_DEPOSIT = 2 * ETHER
COUNTERPARTY_DEPOSIT = ETHER
VIRTUAL_DEPOSIT = ETHER // 2
PAYMENT = ETHER // 20
MICRO_PAYMENT = ETHER // 100


class Command(BaseCommand):
    help = "Demo channels: ledger channels between banks, counterparty channels, a stream, a virtual channel."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stage", choices=["fund", "use", "all"], default="all")
        parser.add_argument("--challenge-seconds", type=int, default=120)
        parser.add_argument("--wait-seconds", type=int, default=90, help="how long to wait for funding")

    def handle(
        self, *args: Any, stage: str, challenge_seconds: int, wait_seconds: int, **options: Any
    ) -> None:
        if ethereum.chain_id() != DEV_CHAIN_ID:
            raise CommandError("demo channels only on a local anvil chain (chain id 31337)")
        self.challenge = challenge_seconds
        self.wait_seconds = wait_seconds
        _top_up(services.node_address())
        names = sorted(
            [
                str(settings.NODE_NAME),
                *Peer.objects.exclude(ethereum_address="").values_list("name", flat=True),
            ]
        )
        parts = names[:3]
        me = str(settings.NODE_NAME)
        if me not in parts:
            self.stdout.write(f"{me}: no part in the channels demo")
            return
        position = parts.index(me)
        peers = {name: Peer.objects.get(name=name) for name in parts if name != me}
        if stage in ("fund", "all") and position + 1 < len(parts):
            self._ledger(peers[parts[position + 1]])
        if stage in ("use", "all") and position == 0:
            self._counterparty_channels()
            if len(parts) > 1:
                self._pay_peer(peers[parts[1]])
            if len(parts) > 2:
                self._virtual(peers[parts[1]], peers[parts[2]])

    # ------------------------------------------------------------ stage fund

    def _ledger(self, peer: Peer) -> None:
        """A ledger channel with the next node: we deposit, it deposits nothing (so no node
        waits on another's deposit), and the virtual channel later draws on our side."""
        channel = Channel.objects.filter(peer=peer, kind=ChannelKind.LEDGER, our_index=0).first()
        if channel is None:
            channel = services.peer_channel_open(
                peer=peer, deposits={ETH: (LEDGER_DEPOSIT, 0)}, actor=ACTOR, challenge_duration=self.challenge
            )
            self.stdout.write(
                f"{settings.NODE_NAME}: ledger channel {channel.channel_id[:12]}… with {peer.name}"
            )
        if not OnChainTransaction.objects.filter(channel=channel, purpose="deposit").exists():
            services.channel_deposit(channel=channel, asset=ETH, amount=LEDGER_DEPOSIT, actor=ACTOR)

    # ------------------------------------------------------------ stage use

    def _wait_open(self, channel: Channel) -> Channel:
        """Until we, and a peer node on the other side, have seen the deposits on-chain."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            services.onchain_transactions_follow()
            watcher.watcher_poll()
            channel.refresh_from_db()
            if channel.phase == ChannelPhase.OPEN and (
                channel.peer is None or virtual.peer_channel_phase(channel=channel) == ChannelPhase.OPEN
            ):
                return channel
            if time.monotonic() > deadline:
                raise CommandError(
                    f"channel {channel.channel_id} is still {channel.phase} after {self.wait_seconds} s"
                )
            time.sleep(1)

    def _counterparty(self, name: str) -> Counterparty | None:
        return Counterparty.objects.filter(
            federation_name=name,
            federation_domain=settings.NODE_DOMAIN,
            kyc_status=KycStatus.ACCEPTED,
            custody=Custody.CUSTODIAL,
        ).first()

    def _counterparty_channel(self, counterparty: Counterparty) -> tuple[Channel, bool]:
        channel = Channel.objects.filter(counterparty=counterparty, kind=ChannelKind.LEDGER).first()
        if channel is not None:
            return channel, False
        _top_up(counterparty.ethereum_address)  # gas for its own deposit
        channel = services.channel_open(
            counterparty=counterparty,
            deposits={ETH: (COUNTERPARTY_DEPOSIT, COUNTERPARTY_DEPOSIT)},
            actor=ACTOR,
            challenge_duration=self.challenge,
        )
        services.channel_deposit(channel=channel, asset=ETH, amount=COUNTERPARTY_DEPOSIT, actor=ACTOR)
        services.channel_deposit(
            channel=channel, asset=ETH, amount=COUNTERPARTY_DEPOSIT, actor=ACTOR, by_counterparty=True
        )
        return self._wait_open(channel), True

    def _counterparty_channels(self) -> None:
        alice, bob = self._counterparty("alice"), self._counterparty("bob")
        if alice is None or bob is None:
            self.stdout.write(
                f"{settings.NODE_NAME}: no demo counterparties alice and bob; run counterparties_demo_seed"
            )
            return
        channel, new = self._counterparty_channel(alice)
        if new and not Stream.objects.filter(channel=channel).exists():
            # Alice streams micro-payments to the bank; a checkpoint goes on-chain every 5.
            services.stream_open(
                channel=channel, asset=ETH, window=16, checkpoint_every=5, checkpoint_timeout=60, actor=ACTOR
            )
            for _ in range(7):
                services.stream_pay_custodial(channel=channel, amount=MICRO_PAYMENT, actor=ACTOR)
        channel, new = self._counterparty_channel(bob)
        if new:
            for _ in range(3):
                services.channel_pay(channel=channel, asset=ETH, amount=PAYMENT, actor=ACTOR)
            services.channel_pay(
                channel=channel, asset=ETH, amount=PAYMENT, actor=ACTOR, from_counterparty=True
            )
        self.stdout.write(f"{settings.NODE_NAME}: channels with alice (streaming) and bob (paid)")

    def _pay_peer(self, peer: Peer) -> None:
        channel = Channel.objects.filter(peer=peer, kind=ChannelKind.LEDGER, our_index=0).first()
        if (
            channel is None
            or channel.version > 0
            or channel.phase not in (ChannelPhase.FUNDING, ChannelPhase.OPEN)
        ):
            return  # paid already, or settled since by the operator: a later run leaves it alone
        channel = self._wait_open(channel)
        if channel.version == 0:
            for _ in range(3):
                services.channel_pay(channel=channel, asset=ETH, amount=PAYMENT, actor=ACTOR)
            self.stdout.write(f"{settings.NODE_NAME}: paid {peer.name} three times off-chain")

    def _virtual(self, intermediary: Peer, peer: Peer) -> None:
        if Channel.objects.filter(peer=peer, kind=ChannelKind.VIRTUAL).exists():
            return
        try:
            channel = virtual.virtual_channel_open_through(
                intermediary=intermediary, peer=peer, asset=ETH, ours=VIRTUAL_DEPOSIT, theirs=0, actor=ACTOR
            )
            for _ in range(2):
                services.channel_pay(channel=channel, asset=ETH, amount=PAYMENT, actor=ACTOR)
        except (ChannelError, PeerUnreachable) as error:
            # The rest of the demo stands; say what is missing instead of stopping `make run`.
            message = error.message if isinstance(error, ChannelError) else str(error)
            self.stdout.write(
                f"{settings.NODE_NAME}: the virtual channel with {peer.name} did not open: {message}"
            )
            return
        self.stdout.write(
            f"{settings.NODE_NAME}: virtual channel {channel.channel_id[:12]}… with {peer.name} through {intermediary.name}"
        )


def _top_up(account: str, minimum: int = 10 * ETHER, amount: int = 100 * ETHER) -> None:
    """Ether for gas and deposits from anvil's unlocked dev account (local chain only)."""
    web3 = ethereum.web3()
    target = web3.to_checksum_address(account)
    if int(web3.eth.get_balance(target)) >= minimum:
        return
    tx_hash = web3.eth.send_transaction({"from": web3.eth.accounts[0], "to": target, "value": amount})  # type: ignore[typeddict-item]
    web3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

"""REST API of channels, mounted under /api/."""

from django.urls import path

from channels_app import api

_ID = "channels/<str:channel_id>/"

urlpatterns = [
    path("channels/", api.ChannelListApi.as_view(), name="api-channels"),
    path("virtual-channels/", api.VirtualChannelListApi.as_view(), name="api-virtual-channels"),
    path(
        "virtual-channels/through-peer/",
        api.VirtualChannelThroughPeerApi.as_view(),
        name="api-virtual-channels-through-peer",
    ),
    path(
        "virtual-channels/<str:channel_id>/settle/",
        api.VirtualChannelSettleApi.as_view(),
        name="api-virtual-channel-settle",
    ),
    path(_ID, api.ChannelDetailApi.as_view(), name="api-channel"),
    path(_ID + "opening-signature/", api.OpeningSignatureApi.as_view(), name="api-channel-opening-signature"),
    path(_ID + "deposits/", api.DepositApi.as_view(), name="api-channel-deposits"),
    path(_ID + "payments/", api.PaymentApi.as_view(), name="api-channel-payments"),
    path(_ID + "proposals/", api.ProposalApi.as_view(), name="api-channel-proposals"),
    path(_ID + "countersignatures/", api.CountersignatureApi.as_view(), name="api-channel-countersignatures"),
    path(_ID + "settle/", api.SettleApi.as_view(), name="api-channel-settle"),
    path(_ID + "checkpoint/", api.CheckpointApi.as_view(), name="api-channel-checkpoint"),
    path(_ID + "withdraw/", api.WithdrawApi.as_view(), name="api-channel-withdraw"),
    path(_ID + "states/", api.StatesApi.as_view(), name="api-channel-states"),
    path(_ID + "transactions/", api.TransactionsApi.as_view(), name="api-channel-transactions"),
    path(_ID + "dispute/", api.DisputeApi.as_view(), name="api-channel-dispute"),
    path(_ID + "nanocontracts/", api.NanocontractApi.as_view(), name="api-channel-nanocontracts"),
    path(_ID + "release/", api.ReleaseApi.as_view(), name="api-channel-release"),
    path(_ID + "streams/", api.StreamApi.as_view(), name="api-channel-streams"),
    path(_ID + "stream-payments/", api.StreamPaymentApi.as_view(), name="api-channel-stream-payments"),
]

"""REST API of messaging, mounted under /api/."""

from django.urls import path

from messaging import api

urlpatterns = [
    path("messages/", api.MessageListSendApi.as_view(), name="api-messages"),
    path("messages/batch/", api.MessageBatchApi.as_view(), name="api-messages-batch"),
    path("messages/compact-batch/", api.CompactBatchApi.as_view(), name="api-messages-compact-batch"),
    path("messages/undeliverable/", api.UndeliverableApi.as_view(), name="api-messages-undeliverable"),
    path("messages/attachments/", api.AttachmentUploadApi.as_view(), name="api-message-attachments"),
    path(
        "messages/attachments/<str:sha256>/",
        api.AttachmentDownloadApi.as_view(),
        name="api-message-attachment",
    ),
    path("messages/<str:message_id>/", api.MessageDetailApi.as_view(), name="api-message"),
    path("messages/<str:message_id>/receipt", api.MessageReceiptApi.as_view(), name="api-message-receipt"),
    path("messages/<str:message_id>/receipt/", api.MessageReceiptApi.as_view()),
    path("messages/<str:message_id>/reject/", api.MessageRejectApi.as_view(), name="api-message-reject"),
    path(
        "counterparties/<int:counterparty_id>/messages/inbox/",
        api.CounterpartyInboxApi.as_view(),
        name="api-counterparty-inbox",
    ),
    path(
        "counterparties/<int:counterparty_id>/messages/outbox/",
        api.CounterpartyOutboxApi.as_view(),
        name="api-counterparty-outbox",
    ),
]

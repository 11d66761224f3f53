"""The generic webhook adapter: every canonical event, signed with Standard Webhooks headers."""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from standardwebhooks.webhooks import Webhook

from partner_signals.adapters.base import (
    CANONICAL_EVENT_TYPES,
    SIGNALS,
    Adapter,
    CredentialError,
    Message,
    Outgoing,
    Target,
    dumps,
    require_url,
)

# During a rotation the new secret comes first and at most this many previous ones follow.
MAX_SECRETS = 3


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    # Decoding the base64 secret costs more than the HMAC itself; keep one per secret.
    return Webhook(secret)


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature value: one `v1,<sig>` per secret, space separated, so a
    receiver holding either the old or the new secret verifies during a rotation."""
    at = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(_signer(s).sign(msg_id, at, body) for s in secrets)


class WebhookAdapter(Adapter):
    name: ClassVar[str] = "webhook"
    description: ClassVar[str] = "Generic HTTPS webhook, Standard Webhooks signatures"
    event_types: ClassVar[frozenset[str]] = CANONICAL_EVENT_TYPES
    signals: ClassVar[frozenset[str]] = SIGNALS
    secret_fields: ClassVar[tuple[str, ...]] = ("secrets",)

    def validate(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        super().validate(config, secrets)
        require_url(config)
        values = secrets["secrets"]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_SECRETS:
            raise CredentialError(f"webhook needs 1 to {MAX_SECRETS} signing secrets")
        for value in values:
            if not isinstance(value, str) or not value.startswith("whsec_"):
                raise CredentialError("webhook secrets look like whsec_<base64>")
            try:
                raw = binascii.a2b_base64(value.removeprefix("whsec_") + "==")
            except binascii.Error:
                raise CredentialError("webhook secret is not valid base64") from None
            if len(raw) < 24:
                raise CredentialError("webhook secret must carry at least 24 random bytes")

    def build_request(self, target: Target, message: Message, *, now: float) -> Outgoing:
        body = dumps(message.payload).decode()
        timestamp = int(now)
        return Outgoing(
            method="POST",
            url=str(target.config["url"]),
            headers={
                "content-type": "application/json",
                "user-agent": "partner-signals-webhooks/1",
                # The idempotency key doubles as the message id: a retry or a replay
                # carries the same webhook-id, which receivers use to drop duplicates.
                "webhook-id": message.idempotency_key,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(
                    target.secrets["secrets"], message.idempotency_key, timestamp, body
                ),
            },
            content=body.encode(),
        )

"""The generic webhook adapter: every canonical event, signed with Standard Webhooks headers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator
from standardwebhooks.webhooks import Webhook

from partner_signals.adapters.base import (
    CANONICAL_EVENT_TYPES,
    SIGNALS,
    Adapter,
    Message,
    Outgoing,
    Target,
    dumps,
)
from partner_signals.adapters.config import (
    AdapterConfig,
    AdapterSecrets,
    Cli,
    check_url,
    check_whsec,
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


class WebhookConfig(AdapterConfig):
    url: Annotated[str, Field(description="The partner's endpoint (http or https)")]

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any, info: ValidationInfo) -> str:
        return check_url(value, str(info.field_name))


class WebhookSecrets(AdapterSecrets):
    secrets: Annotated[
        list[str],
        Field(description="Standard Webhooks signing secret, whsec_<base64>; newest first"),
        Cli(
            flag="--secret",
            stdin=True,
            envvar="PARTNER_SIGNALS_ADAPTER_SECRET",
            keep=MAX_SECRETS - 1,
        ),
    ]

    @field_validator("secrets", mode="before")
    @classmethod
    def _whsec(cls, value: Any) -> list[str]:
        return check_whsec(value, at_most=MAX_SECRETS)


class WebhookAdapter(Adapter):
    name: ClassVar[str] = "webhook"
    description: ClassVar[str] = "Generic HTTPS webhook, Standard Webhooks signatures"
    event_types: ClassVar[frozenset[str]] = CANONICAL_EVENT_TYPES
    signals: ClassVar[frozenset[str]] = SIGNALS
    config_model: ClassVar[type[AdapterConfig]] = WebhookConfig
    secrets_model: ClassVar[type[AdapterSecrets]] = WebhookSecrets

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

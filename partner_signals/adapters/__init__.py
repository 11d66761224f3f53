"""Partner adapters: the registry of adapters and which plan tier may enable which."""

from __future__ import annotations

from partner_signals.adapters.base import (
    CANONICAL_EVENT_TYPES,
    SIGNALS,
    Adapter,
    ConnectionCheck,
    CredentialError,
    Message,
    Outgoing,
    Planned,
    Target,
)
from partner_signals.adapters.jsonpush import CrmAdapter, WorkforceAdapter
from partner_signals.adapters.messaging import MessagingAdapter
from partner_signals.adapters.webhook import WebhookAdapter

ADAPTERS: dict[str, Adapter] = {
    a.name: a for a in (WebhookAdapter(), WorkforceAdapter(), CrmAdapter(), MessagingAdapter())
}

# The one place that says which plan tier may enable which adapter.
PLAN_ADAPTERS: dict[str, frozenset[str]] = {
    "starter": frozenset({"webhook"}),
    "standard": frozenset({"webhook", "workforce", "crm"}),
    "enterprise": frozenset(ADAPTERS),
}


class PlanError(CredentialError):
    """The company's plan tier does not include this adapter."""


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise CredentialError(
            f"unknown adapter {name!r}; one of {', '.join(sorted(ADAPTERS))}"
        ) from None


def check_plan(plan: str, adapter: str) -> None:
    allowed = PLAN_ADAPTERS.get(plan, frozenset())
    if adapter not in allowed:
        tiers = [p for p, names in PLAN_ADAPTERS.items() if adapter in names]
        raise PlanError(
            f"the {plan} plan does not include the {adapter} adapter "
            f"(it allows {', '.join(sorted(allowed)) or 'none'}; {adapter} needs "
            f"{' or '.join(tiers)})"
        )


__all__ = [
    "ADAPTERS",
    "CANONICAL_EVENT_TYPES",
    "PLAN_ADAPTERS",
    "SIGNALS",
    "Adapter",
    "ConnectionCheck",
    "CredentialError",
    "Message",
    "Outgoing",
    "PlanError",
    "Planned",
    "Target",
    "check_plan",
    "get_adapter",
]

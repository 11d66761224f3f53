"""What a guest or staff message says: kinds, variables, default texts per language, the
opt-out line, and rendering. Pure: the stored templates are read by the caller."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any, Literal

Audience = Literal["guest", "staff"]
KIND = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
LANGUAGE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")
BODY_MAX = 1600  # Twilio's limit for one message body
DEFAULT_LANGUAGE = "en"

# Who each kind goes to. A kind not listed is a guest message: it carries the opt-out line
# and needs the guest's consent, like a receipt.
AUDIENCES: Mapping[str, Audience] = {"receipt": "guest", "nudge": "staff"}

# What a template may name, as {name}. Values missing for a message render empty.
VARIABLES: Mapping[str, str] = {
    "restaurant_name": "the restaurant's name",
    "order_id": "the POS order",
    "table_id": "the table (nudges; receipts when the event names it)",
    "amount": "the amount paid (receipts)",
    "currency": "its currency (receipts)",
    "paid_at": "when it was paid (receipts)",
    "minutes_unpaid": "how long the bill has waited (nudges)",
    "bill_requested_at": "when the bill was requested (nudges)",
}

DEFAULTS: Mapping[tuple[str, str], str] = {
    ("receipt", "en"): (
        "Thank you for dining at {restaurant_name}. Your payment of {amount} {currency} "
        "for order {order_id} was received."
    ),
    (
        "receipt",
        "ar",
    ): "شكراً لزيارتكم {restaurant_name}. تم استلام دفعتكم {amount} {currency} للطلب {order_id}.",
    ("nudge", "en"): (
        "Bill for order {order_id} at table {table_id} has been waiting {minutes_unpaid} "
        "minutes to be paid."
    ),
    (
        "nudge",
        "ar",
    ): "فاتورة الطلب {order_id} على الطاولة {table_id} بانتظار الدفع منذ {minutes_unpaid} دقيقة.",
}

# Appended to every guest message; each says STOP, the word carriers and Twilio honour.
OPT_OUT: Mapping[str, str] = {
    "en": "Reply STOP to opt out",
    "ar": "أرسل STOP لإلغاء الاشتراك",
}
# The words a reply may carry to opt out (Twilio's standard opt-out keywords).
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit"})
START_WORDS = frozenset({"start", "unstop"})


class TemplateError(ValueError):
    """A template, kind or language that cannot be used; `field` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def audience(kind: str) -> Audience:
    return AUDIENCES.get(kind, "guest")


def check_kind(kind: str) -> str:
    if not KIND.match(kind):
        raise TemplateError("kind", "lower-case letters, digits and _, 2 to 32, a letter first")
    return kind


def check_language(language: str) -> str:
    if not LANGUAGE.match(language):
        raise TemplateError("language", "an ISO 639-1 code such as en, ar or en-GB")
    return language


def check_body(body: str) -> str:
    """The template's {variables} are known ones and plain (no attribute, index or format
    spec, so rendering can only substitute); its length leaves room for the opt-out line."""
    if not body.strip():
        raise TemplateError("body", "must not be empty")
    if len(body) > BODY_MAX - 40:
        raise TemplateError("body", f"at most {BODY_MAX - 40} characters")
    try:
        parts = list(Formatter().parse(body))
    except ValueError as exc:
        raise TemplateError(
            "body", f"braces do not balance ({exc}); write {{{{ for a brace}}"
        ) from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in VARIABLES or spec or conversion:
            raise TemplateError(
                "body",
                f"unknown variable {{{name}}}; one of " + ", ".join(f"{{{v}}}" for v in VARIABLES),
            )
    return body


def opt_out_line(language: str) -> str:
    return OPT_OUT.get(language) or OPT_OUT.get(language.split("-")[0]) or OPT_OUT["en"]


def default_template(kind: str, language: str) -> str | None:
    return DEFAULTS.get((kind, language)) or DEFAULTS.get((kind, language.split("-")[0]))


@dataclass(frozen=True)
class Rendered:
    body: str
    language: str
    audience: Audience


def render(kind: str, template: str, language: str, values: Mapping[str, Any]) -> Rendered:
    """The message text: the template with its variables filled, and for a guest the
    opt-out line in the same language."""
    filled = {name: "" if values.get(name) is None else str(values[name]) for name in VARIABLES}
    body = " ".join(template.format_map(filled).split())
    who = audience(kind)
    if who == "guest":
        body = with_opt_out(body, language)
    return Rendered(body, language, who)


def with_opt_out(body: str, language: str) -> str:
    """`body` ending with the opt-out line (added once)."""
    line = opt_out_line(language)
    body = body.rstrip()
    return body if body.endswith(line) else f"{body} {line}"


def _first_word(text: str) -> str:
    words = text.strip().split()
    return words[0].strip(".!").lower() if words else ""


def is_stop(text: str) -> bool:
    """A reply that opts out: the first word is one of the stop words, any case."""
    return _first_word(text) in STOP_WORDS


def is_start(text: str) -> bool:
    """A reply that opts back in (Twilio's START and UNSTOP), any case."""
    return _first_word(text) in START_WORDS

"""Admin routes: guest and staff messaging: templates per restaurant, opt-ins and opt-outs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.admin.deps import CurrentActor, Engine, request_id, transaction
from partner_signals.adapters import message_templates as templates
from partner_signals.control import messaging

router = APIRouter(tags=["messaging"])
TEMPLATES = "/companies/{company_id}/restaurants/{restaurant_id}/message-templates"


class TemplateOut(BaseModel):
    restaurant_id: str
    kind: str
    language: str
    audience: str = Field(description="guest (consent needed, opt-out line added) or staff")
    body: str
    source: str = Field(description="restaurant (its own) or default")
    updated_at: datetime | None = None
    updated_by: str | None = None


class TemplateIn(BaseModel):
    body: str = Field(
        description="The text with {variables}: " + ", ".join(templates.VARIABLES),
        examples=["Thank you for visiting {restaurant_name}: {amount} {currency} received."],
    )
    language: str | None = Field(None, description="ISO 639-1 (default: the restaurant's)")


class PreviewIn(BaseModel):
    values: dict[str, Any] = Field(default_factory=dict, description="Variables to fill in")


class PreviewOut(BaseModel):
    restaurant_id: str
    kind: str
    language: str
    audience: str
    text: str


class LanguageIn(BaseModel):
    language: str = Field(examples=["ar"])


class LanguageOut(BaseModel):
    restaurant_id: str
    language: str


class ConsentIn(BaseModel):
    contact: str = Field(description="The guest's number, E.164", examples=["+971501234567"])
    source: str = Field(description="Where the guest agreed", examples=["booking-form"])
    restaurant_id: str | None = Field(None, description="One restaurant (default: every one)")
    opted_in_at: datetime | None = Field(None, description="When (default: now)")


class ConsentOut(BaseModel):
    consent_id: int
    company_id: str
    restaurant_id: str | None
    contact: str
    opted_in_at: datetime | None
    source: str
    opted_out_at: datetime | None
    opt_out_source: str | None
    active: bool


class OptOutIn(BaseModel):
    contact: str = Field(examples=["+971501234567"])
    source: str = Field("operator", description="How the guest asked (phone call, email...)")


class OptOutOut(BaseModel):
    company_id: str
    contact: str
    consents_opted_out: int
    messages_cancelled: int


def _consent(c: messaging.Consent) -> ConsentOut:
    return ConsentOut(**vars(c), active=c.active)


@router.get(TEMPLATES, response_model=list[TemplateOut])
def list_templates(
    company_id: str, restaurant_id: str, actor: CurrentActor, eng: Engine
) -> list[TemplateOut]:
    """The restaurant's templates, and the defaults of its language where it has none."""
    with transaction(eng) as conn:
        rows = messaging.list_templates(conn, actor, company_id, restaurant_id)
    return [TemplateOut(**vars(t)) for t in rows]


@router.post(TEMPLATES + "/{kind}", response_model=TemplateOut)
def set_template(
    company_id: str,
    restaurant_id: str,
    kind: str,
    body: TemplateIn,
    actor: CurrentActor,
    eng: Engine,
) -> TemplateOut:
    """Set the template of a kind (receipt, nudge, or a new one) in a language (operator;
    audited). Unknown variables are refused (422 naming `body`)."""
    with transaction(eng) as conn:
        t = messaging.set_template(
            conn,
            actor,
            company_id,
            restaurant_id,
            kind=kind,
            body=body.body,
            language=body.language,
        )
    return TemplateOut(**vars(t))


@router.post(TEMPLATES + "/{kind}/preview", response_model=PreviewOut)
def preview_template(
    company_id: str,
    restaurant_id: str,
    kind: str,
    body: PreviewIn,
    actor: CurrentActor,
    eng: Engine,
) -> PreviewOut:
    """The text a message of this kind would carry, with these variables filled in."""
    with transaction(eng) as conn:
        p = messaging.preview(conn, actor, company_id, restaurant_id, kind=kind, values=body.values)
    return PreviewOut(**vars(p))


@router.get(
    "/companies/{company_id}/restaurants/{restaurant_id}/message-language",
    response_model=LanguageOut,
)
def show_language(
    company_id: str, restaurant_id: str, actor: CurrentActor, eng: Engine
) -> LanguageOut:
    with transaction(eng) as conn:
        language = messaging.get_language(conn, actor, company_id, restaurant_id)
    return LanguageOut(restaurant_id=restaurant_id, language=language)


@router.post(
    "/companies/{company_id}/restaurants/{restaurant_id}/message-language",
    response_model=LanguageOut,
)
def set_language(
    company_id: str, restaurant_id: str, body: LanguageIn, actor: CurrentActor, eng: Engine
) -> LanguageOut:
    """The language its messages are written in (operator; audited)."""
    with transaction(eng) as conn:
        language = messaging.set_language(conn, actor, company_id, restaurant_id, body.language)
    return LanguageOut(restaurant_id=restaurant_id, language=language)


@router.get("/companies/{company_id}/message-consents", response_model=list[ConsentOut])
def list_consents(
    company_id: str, actor: CurrentActor, eng: Engine, contact: str | None = None
) -> list[ConsentOut]:
    with transaction(eng) as conn:
        rows = messaging.list_consents(conn, actor, company_id, contact=contact)
    return [_consent(c) for c in rows]


@router.post("/companies/{company_id}/message-consents", response_model=ConsentOut, status_code=201)
def opt_in(company_id: str, body: ConsentIn, actor: CurrentActor, eng: Engine) -> ConsentOut:
    """Record a guest's opt-in (operator; audited)."""
    with transaction(eng) as conn:
        c = messaging.opt_in(
            conn,
            actor,
            company_id,
            contact=body.contact,
            source=body.source,
            restaurant_id=body.restaurant_id,
            opted_in_at=body.opted_in_at,
        )
    return _consent(c)


@router.post("/companies/{company_id}/message-consents/opt-out", response_model=OptOutOut)
def opt_out(company_id: str, body: OptOutIn, actor: CurrentActor, eng: Engine) -> OptOutOut:
    """Opt a guest out of every message of the company; what waits for them is cancelled."""
    with transaction(eng) as conn:
        o = messaging.opt_out(conn, actor, company_id, contact=body.contact, source=body.source)
    return OptOutOut(**vars(o))


@router.post(
    "/companies/{company_id}/messaging/replies",
    response_class=Response,
    responses={200: {"content": {"text/xml": {}}, "description": "Empty TwiML: no answer"}},
)
async def reply(company_id: str, request: Request, eng: Engine) -> Response:
    """Where the messaging provider posts a guest's reply (Twilio's inbound webhook: no
    operator token; signed in X-Twilio-Signature with the company's AuthToken). STOP
    opts the guest out."""
    form = [(k, str(v)) for k, v in (await request.form()).multi_items()]

    def receive() -> None:
        with transaction(eng) as conn:
            messaging.receive_reply(
                conn,
                company_id,
                key=request.app.state.settings.master_key(),
                url=str(request.url),
                form=form,
                signature=request.headers.get("x-twilio-signature", ""),
                request_id=request_id(request),
            )

    # The database calls are blocking: off the event loop, like the sync routes.
    await run_in_threadpool(receive)
    return Response(b"<Response/>", media_type="text/xml")
